"""Where privet's noise comes from.

Releases default to the operating system's CSPRNG (``os.urandom``), so that the
noise protecting a release cannot be predicted from a leaked seed. A seeded
``numpy.random.Generator`` is accepted for simulation and tests; passing one to
a *release* emits :class:`SeededRandomnessWarning` (see DESIGN.md).

Every sampler in privet draws through a :class:`RandomSource`, which offers the
few primitives the mechanisms need: uniform doubles on the open interval
(0, 1), standard normals and exponentials, uniform integers, and exact uniform
big integers for the exact samplers of :mod:`privet.dp.exact`.
"""

from __future__ import annotations

import math
import os
import secrets
import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

__all__ = [
    "GeneratorRandom",
    "OsRandom",
    "RandomSource",
    "RngLike",
    "SeededRandomnessWarning",
    "resolve_rng",
]

_TWO_POW_MINUS_52 = 2.0**-52
_MAX_VECTOR_HIGH = 2**62


class SeededRandomnessWarning(UserWarning):
    """A seeded, non-cryptographic generator was used to release private data."""


class RandomSource(ABC):
    """The primitives privet's samplers draw from."""

    #: True when the source is unpredictable to an adversary (a CSPRNG).
    is_cryptographic: bool = False

    @abstractmethod
    def uniform(self, size: int) -> np.ndarray:
        """``size`` doubles uniform on the open interval (0, 1)."""

    @abstractmethod
    def standard_normal(self, size: int) -> np.ndarray:
        """``size`` draws from N(0, 1)."""

    @abstractmethod
    def integers(self, high: int, size: int) -> np.ndarray:
        """``size`` int64 values uniform on ``[0, high)``; ``1 <= high <= 2**62``."""

    @abstractmethod
    def randbelow(self, high: int) -> int:
        """One exact uniform integer on ``[0, high)`` for any ``high >= 1``."""

    def standard_exponential(self, size: int) -> np.ndarray:
        """``size`` draws from Exp(1)."""
        draws: np.ndarray = -np.log(self.uniform(size))
        return draws

    def standard_gumbel(self, size: int) -> np.ndarray:
        """``size`` draws from the standard Gumbel distribution."""
        draws: np.ndarray = -np.log(self.standard_exponential(size))
        return draws

    def bernoulli_fraction(self, numerator: int, denominator: int) -> bool:
        """Exactly Bernoulli(numerator / denominator), with ``0 <= numerator <= denominator``."""
        return self.randbelow(denominator) < numerator


class OsRandom(RandomSource):
    """The operating system's CSPRNG (``os.urandom`` / ``secrets``).

    Doubles carry 52 random bits each and never equal 0 or 1; normals come
    from the Box–Muller transform of those doubles.
    """

    is_cryptographic = True

    def _uint64(self, size: int) -> np.ndarray:
        return np.frombuffer(os.urandom(8 * size), dtype=np.uint64)

    def uniform(self, size: int) -> np.ndarray:
        return _cell_midpoints(self._uint64(size) >> np.uint64(12))

    def standard_normal(self, size: int) -> np.ndarray:
        pairs = (size + 1) // 2
        radius = np.sqrt(-2.0 * np.log(self.uniform(pairs)))
        angle = (2.0 * math.pi) * self.uniform(pairs)
        return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:size]

    def integers(self, high: int, size: int) -> np.ndarray:
        _check_vector_high(high)
        bits = max(1, (high - 1).bit_length())
        # Ranges below 2**32 need half the entropy: draw 4-byte words for them.
        dtype: type[np.unsignedinteger[Any]] = np.uint32 if bits <= 32 else np.uint64
        mask = (1 << bits) - 1
        acceptance = high / (1 << bits)  # >= 1/2
        out = np.empty(size, dtype=np.int64)
        filled = 0
        # Rejection from the smallest power of two above `high`: exact and unbiased.
        while filled < size:
            wanted = int((size - filled) / acceptance * 1.02) + 16
            raw = os.urandom(wanted * np.dtype(dtype).itemsize)
            draws: np.ndarray = np.frombuffer(raw, dtype=dtype) & dtype(mask)
            kept = draws[draws < high][: size - filled]
            out[filled : filled + kept.size] = kept
            filled += kept.size
        return out

    def randbelow(self, high: int) -> int:
        _check_randbelow_high(high)
        return secrets.randbelow(high)


class GeneratorRandom(RandomSource):
    """A ``numpy.random.Generator``: reproducible, for simulation and tests only."""

    def __init__(self, generator: np.random.Generator) -> None:
        self.generator = generator

    def uniform(self, size: int) -> np.ndarray:
        # Generator.random() is on [0, 1); use the same cell midpoints as OsRandom.
        return _cell_midpoints(self.generator.integers(0, 2**52, size=size, dtype=np.uint64))

    def standard_normal(self, size: int) -> np.ndarray:
        return self.generator.standard_normal(size)

    def standard_exponential(self, size: int) -> np.ndarray:
        return self.generator.standard_exponential(size)

    def integers(self, high: int, size: int) -> np.ndarray:
        _check_vector_high(high)
        return self.generator.integers(0, high, size=size, dtype=np.int64)

    def randbelow(self, high: int) -> int:
        _check_randbelow_high(high)
        if high <= 2**63:
            return int(self.generator.integers(0, high, dtype=np.uint64))
        n_bytes = (high.bit_length() + 7) // 8
        excess_bits = 8 * n_bytes - high.bit_length()
        while True:
            candidate = int.from_bytes(self.generator.bytes(n_bytes), "little") >> excess_bits
            if candidate < high:
                return candidate


RngLike = np.random.Generator | RandomSource | None
"""What public functions accept as ``rng``: ``None`` means the OS CSPRNG."""


def resolve_rng(rng: RngLike, *, release: bool) -> RandomSource:
    """Turn a user's ``rng`` argument into a :class:`RandomSource`.

    Parameters
    ----------
    rng
        ``None`` for the OS CSPRNG, a ``numpy.random.Generator`` for
        reproducible simulation, or a :class:`RandomSource`.
    release
        True when the draw protects a release of private data; a
        non-cryptographic source then emits :class:`SeededRandomnessWarning`.
    """
    if rng is None:
        return OsRandom()
    if isinstance(rng, RandomSource):
        source = rng
    elif isinstance(rng, np.random.Generator):
        source = GeneratorRandom(rng)
    else:
        raise TypeError(
            f"rng must be None, a numpy.random.Generator or a privet RandomSource, got {rng!r}"
        )
    if release and not source.is_cryptographic:
        warnings.warn(
            "a seeded, non-cryptographic generator protects this release; its noise can be "
            "reproduced by anyone who learns the seed. Pass rng=None for the OS CSPRNG.",
            SeededRandomnessWarning,
            stacklevel=3,
        )
    return source


def _cell_midpoints(bits: np.ndarray) -> np.ndarray:
    """Map 52-bit integers to the midpoints of 2**52 equal cells of (0, 1).

    ``bits + 0.5`` needs 53 significant bits, which a double has, so every
    value is exact and lies strictly inside (0, 1) — never 0 or 1, so
    ``log(u)`` and ``log(1 - u)`` are always finite.
    """
    midpoints: np.ndarray = (bits.astype(np.float64) + 0.5) * _TWO_POW_MINUS_52
    return midpoints


def _check_vector_high(high: int) -> None:
    if not 1 <= high <= _MAX_VECTOR_HIGH:
        raise ValueError(f"high must be in [1, 2**62], got {high}")


def _check_randbelow_high(high: int) -> None:
    if high < 1:
        raise ValueError(f"high must be >= 1, got {high}")
