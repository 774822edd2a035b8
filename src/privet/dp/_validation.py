"""Argument checks shared by every public function of ``privet.dp``.

One message format everywhere: ``<name> must be <range>, got <value>``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from privet.errors import PrivacyError


def _finite_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise PrivacyError(f"{name} must be a real number, got {value!r}")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise PrivacyError(f"{name} must be finite, got {value!r}")
    return as_float


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise unless it is finite and > 0."""
    as_float = _finite_float(name, value)
    if as_float <= 0:
        raise PrivacyError(f"{name} must be > 0, got {value!r}")
    return as_float


def non_negative(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise unless it is finite and >= 0."""
    as_float = _finite_float(name, value)
    if as_float < 0:
        raise PrivacyError(f"{name} must be >= 0, got {value!r}")
    return as_float


def check_epsilon(value: Any, name: str = "epsilon") -> float:
    """Return epsilon as a float; it must be finite and > 0."""
    return check_positive(name, value)


def check_delta(value: Any, name: str = "delta", *, allow_zero: bool = True) -> float:
    """Return delta as a float; it must lie in [0, 1) (or (0, 1) if ``allow_zero`` is False)."""
    as_float = _finite_float(name, value)
    low_ok = as_float >= 0 if allow_zero else as_float > 0
    if not low_ok or as_float >= 1:
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise PrivacyError(f"{name} must be in {interval}, got {value!r}")
    return as_float


def check_probability(name: str, value: Any, *, open_low: bool = False) -> float:
    """Return a probability in [0, 1] (or (0, 1] when ``open_low``)."""
    as_float = _finite_float(name, value)
    low_ok = as_float > 0 if open_low else as_float >= 0
    if not low_ok or as_float > 1:
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise PrivacyError(f"{name} must be in {interval}, got {value!r}")
    return as_float


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise PrivacyError(f"{name} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise PrivacyError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_bounds(lower: Any, upper: Any) -> tuple[float, float]:
    """Return finite ``(lower, upper)`` with ``lower < upper``."""
    low = _finite_float("lower", lower)
    high = _finite_float("upper", upper)
    if not low < high:
        raise PrivacyError(
            f"bounds must satisfy lower < upper, got lower={lower!r}, upper={upper!r}"
        )
    return low, high


def check_finite_array(name: str, values: Any) -> np.ndarray:
    """Return ``values`` as a float64 array with no NaN or infinity."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PrivacyError(f"{name} must be an array of real numbers, got {values!r}") from exc
    if not np.all(np.isfinite(array)):
        bad = float(array[~np.isfinite(array)].ravel()[0])
        raise PrivacyError(f"{name} must contain only finite values, got {bad!r}")
    return array


#: Integer data must stay this far inside int64 so that adding noise cannot wrap.
MAX_INTEGER_VALUE = 2**62


def check_integer_array(name: str, values: Any) -> np.ndarray:
    """Return ``values`` as an int64 array of integers with ``|x| <= 2**62``."""
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        as_float = check_finite_array(name, array)
        if not np.all(as_float == np.round(as_float)):
            raise PrivacyError(f"{name} must contain only integers, got {values!r}")
        array = as_float
    if array.size:
        largest = max(abs(int(array.max())), abs(int(array.min())))
        if largest > MAX_INTEGER_VALUE:
            raise PrivacyError(
                f"{name} must hold integers in [-2**62, 2**62], got one of magnitude {largest}"
            )
    return array.astype(np.int64)


def check_choice(name: str, value: Any, options: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``options``."""
    if value not in options:
        raise PrivacyError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return str(value)
