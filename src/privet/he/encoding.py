"""Fixed-point encoding of reals as Paillier plaintexts: overflow is refused, never wrapped.

A real ``x`` is the integer ``round(x 2^f)`` (``f`` fractional bits, round half
to even, exact: float64 scaling by a power of two is exact); a signed integer
``v`` is the residue ``v mod n``. Plaintexts use phe's convention: values live in
``[-max_int, max_int]`` with ``max_int = n // 3 - 1``, residues in
``[0, max_int]`` are non-negative, in ``[n - max_int, n)`` negative, and a residue
in the middle third is an overflow (or a wrong key, or a corrupted ciphertext)
and is refused on decryption, never read as a value.

Overflow is refused *before* it can happen: every encrypted array carries a
public bound ``B`` on the magnitude of each of its encoded integers. A fresh
array's bound is the one its owner declares (``bound`` times ``2^f``, rounded up;
never computed from the data, which would publish its maximum), and each
operation computes its result's bound (``B_a + B_b`` for a sum, ``B |k|`` for a
scalar product, ``B m`` for a sum of ``m`` elements) and raises
:class:`~privet.errors.PrivacyError` naming that bound if it exceeds ``max_int``,
before touching a ciphertext. On decryption a value whose magnitude exceeds
its bound is refused too (a corrupted ciphertext or the wrong key).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError

__all__ = [
    "DEFAULT_FRAC_BITS",
    "MAX_FRAC_BITS",
    "as_numeric",
    "check_frac_bits",
    "check_within",
    "decode_fixed",
    "describe_magnitude",
    "encode_bound",
    "encode_fixed",
    "from_residue",
]

#: Fractional bits of the default encoding: a resolution of 2^-32 (about 2.3e-10).
DEFAULT_FRAC_BITS: Final = 32
MAX_FRAC_BITS: Final = 1024
# Below this magnitude float64 <-> int64 conversions are exact and vectorized.
_FAST_LIMIT: Final = 1 << 53


def check_frac_bits(frac_bits: object) -> int:
    """``frac_bits`` as an int in ``[0, MAX_FRAC_BITS]``."""
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, int | np.integer):
        raise PrivacyError(f"frac_bits must be an int, got {type(frac_bits).__name__}")
    if not 0 <= frac_bits <= MAX_FRAC_BITS:
        raise PrivacyError(f"frac_bits must be in [0, {MAX_FRAC_BITS}], got {frac_bits}")
    return int(frac_bits)


def describe_magnitude(value: int) -> str:
    """A big bound in words: ``2^12.3`` (exact integers when small)."""
    if value < 1 << 20:
        return str(value)
    return f"2^{math.log2(value):.1f}"


def check_within(bound: int, max_int: int, what: str) -> None:
    """Refuse an operation whose result could exceed the plaintext range, before it runs."""
    if bound > max_int:
        raise PrivacyError(
            f"{what} must stay within the plaintext range |value| <= max_int = n//3 - 1 "
            f"({describe_magnitude(max_int)}), got a bound of {describe_magnitude(bound)}; "
            "refused before computing"
        )


def encode_bound(bound: object, frac_bits: int) -> int:
    """``ceil(bound 2^f)``: a declared real bound on ``|x|`` as a bound on encoded integers."""
    if isinstance(bound, bool) or not isinstance(bound, int | float | np.integer | np.floating):
        raise PrivacyError(f"bound must be a real number, got {type(bound).__name__}")
    value = float(bound) if isinstance(bound, float | np.floating) else int(bound)
    if not (math.isfinite(value) and value > 0):
        raise PrivacyError(f"bound must be finite and > 0, got {bound}")
    return math.ceil(Fraction(value) * (1 << frac_bits))


def as_numeric(values: ArrayLike, name: str = "values") -> NDArray[Any]:
    """``values`` as an integer, float or (for Python ints beyond 64 bits) object array."""
    array = np.asarray(values)
    if array.dtype.kind == "O" and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in array.flat
    ):
        return array
    if array.dtype.kind not in "iuf":
        raise PrivacyError(f"{name} must be an integer or float array, got dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise PrivacyError(f"{name} must be finite, got NaN or infinity")
    return array


def encode_fixed(
    values: ArrayLike, frac_bits: int, bound: int | None = None
) -> tuple[list[int], tuple[int, ...]]:
    """``round(x 2^f)`` of every element (C order) as Python ints, and the shape.

    Parameters
    ----------
    values
        Integers or floats (finite).
    frac_bits
        ``f``.
    bound
        If given, an encoded bound every result must respect: a value beyond it
        is refused (the owner declared a bound the data does not keep).
    """
    array = as_numeric(values)
    if array.dtype.kind == "f":
        with np.errstate(over="ignore"):  # an infinite scaled value takes the exact path
            scaled = np.rint(np.ldexp(array.astype(np.float64, copy=False), frac_bits))
        if array.size == 0 or float(np.max(np.abs(scaled))) < _FAST_LIMIT:
            ints = scaled.astype(np.int64).ravel().tolist()
        else:
            # Fraction of a float is exact; round() of a Fraction rounds half to even.
            scale = 1 << frac_bits
            ints = [round(Fraction(x) * scale) for x in array.ravel().tolist()]
    else:
        ints = [int(x) << frac_bits for x in array.ravel().tolist()]
    if bound is not None and ints and max(max(ints), -min(ints)) > bound:
        raise PrivacyError(
            f"values must lie within the declared bound (|x| 2^{frac_bits} <= "
            f"{describe_magnitude(bound)}), got a value beyond it"
        )
    return ints, tuple(int(d) for d in array.shape)


def decode_fixed(
    ints: Sequence[int], frac_bits: int, shape: tuple[int, ...]
) -> NDArray[np.float64]:
    """``v / 2^f`` for every ``v`` (correctly rounded to float64), as an array of ``shape``."""
    if not ints or max(max(ints), -min(ints)) < _FAST_LIMIT:
        exact = np.array(ints, dtype=np.int64).astype(np.float64)
        return np.ldexp(exact, -frac_bits).reshape(shape)
    scale = 1 << frac_bits
    try:
        floats = [v / scale for v in ints]  # int / int is correctly rounded
    except OverflowError:
        raise PrivacyError(
            "decrypted values must fit float64, got one beyond 1.8e308 after scaling"
        ) from None
    return np.array(floats, dtype=np.float64).reshape(shape)


def from_residue(residue: int, n: int, max_int: int, bound: int) -> int:
    """The signed value of a decrypted residue, refusing overflow and out-of-bound values.

    Raises
    ------
    PrivacyError
        The residue is in the middle third of ``Z_n`` (an overflow: never wrapped),
        or its value exceeds the array's tracked ``bound`` (a corrupted ciphertext
        or one decrypted with the wrong key).
    """
    if residue <= max_int:
        value = residue
    elif residue >= n - max_int:
        value = residue - n
    else:
        raise PrivacyError(
            "decrypted plaintext must lie in [-max_int, max_int] (max_int = n//3 - 1), got a "
            "residue in the overflow band: the ciphertext is corrupted, was encrypted under "
            "another key, or overflowed"
        )
    if abs(value) > bound:
        raise PrivacyError(
            f"decrypted value must be within its tracked bound {describe_magnitude(bound)}, got "
            f"one of magnitude {describe_magnitude(abs(value))}: the ciphertext is corrupted "
            "or was encrypted under another key"
        )
    return value
