"""Fixed-point encoding of float vectors into ``Z_{2^k}`` for secure aggregation.

Secure aggregation sums integers modulo ``2^k`` (Bonawitz et al., "Practical
Secure Aggregation for Privacy-Preserving Machine Learning", CCS 2017, §4), so
real-valued updates are clipped, scaled, rounded to integers and stored in
two's complement. The scheme follows Kairouz, Liu and Steinke, "The
Distributed Discrete Gaussian Mechanism for Federated Learning with Secure
Aggregation" (ICML 2021, §4): clip each coordinate, scale, round (stochastic
rounding keeps the encoding unbiased), and pick the modulus large enough that
the sum of all clients never wraps around.

Overflow guarantee: a clipped coordinate encodes to an integer of magnitude at
most ``L = ceil(clip_bound * scale)`` (rounding may go up by less than one
level), so the sum of ``n`` clients lies in ``[-n L, n L]``. A
:class:`Quantizer` refuses parameters unless ``n L < 2^(k-1)``, which makes the
signed sum decodable from its residue modulo ``2^k`` without ambiguity (and
implies ``n * clip_bound * scale < 2^(k-1)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from privet.dp.randomness import RngLike, resolve_rng
from privet.errors import PrivacyError

__all__ = ["Quantizer"]

_MAX_MODULUS_BITS = 64


@dataclass(frozen=True)
class Quantizer:
    """Clip, scale, round and wrap float vectors into ``Z_{2^k}``.

    Parameters
    ----------
    clip_bound
        ``c > 0``: each coordinate is clipped to ``[-c, c]`` first.
    modulus_bits
        ``k`` in ``1..64``: encodings live in ``[0, 2^k)`` (uint64).
    scale
        Integer levels per unit: ``x`` encodes to ``round(x * scale)``.
    num_clients
        ``n >= 1``, the most encodings that will be summed.
    stochastic
        True for unbiased stochastic rounding (``floor(y)`` plus
        Bernoulli(``y - floor(y)``), Kairouz et al. 2021, §4); False for
        round-half-to-even.

    Raises
    ------
    PrivacyError
        If a parameter is out of range, or if ``n * ceil(c * scale) >=
        2^(k-1)``, i.e. the sum of ``n`` clients could wrap modulo ``2^k``.
    """

    clip_bound: float
    modulus_bits: int
    scale: float
    num_clients: int
    stochastic: bool = False

    def __post_init__(self) -> None:
        _check_positive_finite(self.clip_bound, "clip_bound")
        _check_positive_finite(self.scale, "scale")
        k = self.modulus_bits
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= _MAX_MODULUS_BITS:
            raise PrivacyError(f"modulus_bits must be an integer in [1, 64], got {k!r}")
        n = self.num_clients
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise PrivacyError(f"num_clients must be an integer >= 1, got {n!r}")
        if not isinstance(self.stochastic, bool):
            raise PrivacyError(f"stochastic must be a bool, got {self.stochastic!r}")
        top = float(self.clip_bound) * float(self.scale)
        if not math.isfinite(top):
            raise PrivacyError(f"clip_bound * scale must be finite, got {top}")
        bound = n * math.ceil(top)
        if bound >= 1 << (k - 1):
            raise PrivacyError(
                f"num_clients * ceil(clip_bound * scale) must be < 2**(modulus_bits - 1) = "
                f"{1 << (k - 1)} so that the sum of {n} clients cannot wrap modulo "
                f"2**{k}, got {n} * ceil({self.clip_bound!r} * {self.scale!r}) = {bound}"
            )

    @classmethod
    def with_max_scale(
        cls,
        clip_bound: float,
        modulus_bits: int,
        num_clients: int,
        *,
        stochastic: bool = False,
    ) -> Quantizer:
        """The quantizer with the largest scale whose ``n``-client sum cannot wrap.

        The scale is ``floor((2^(k-1) - 1) / n) / c``, nudged down past float
        rounding until the overflow guarantee holds. It leaves no headroom, so
        noise added to the integers later (e.g. the distributed discrete
        Gaussian of Kairouz et al. 2021) needs a quantizer with a smaller scale.
        """
        _check_positive_finite(clip_bound, "clip_bound")
        if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
            raise PrivacyError(f"num_clients must be an integer >= 1, got {num_clients!r}")
        if (
            isinstance(modulus_bits, bool)
            or not isinstance(modulus_bits, int)
            or not 2 <= modulus_bits <= _MAX_MODULUS_BITS
        ):
            raise PrivacyError(f"modulus_bits must be an integer in [2, 64], got {modulus_bits!r}")
        levels = ((1 << (modulus_bits - 1)) - 1) // num_clients
        if levels < 1:
            raise PrivacyError(
                f"num_clients must be < 2**(modulus_bits - 1) = {1 << (modulus_bits - 1)} "
                f"for at least one level per unit, got {num_clients}"
            )
        scale = levels / float(clip_bound)
        while math.ceil(float(clip_bound) * scale) > levels:
            scale = math.nextafter(scale, 0.0)
        return cls(clip_bound, modulus_bits, scale, num_clients, stochastic)

    @property
    def max_level(self) -> int:
        """``ceil(clip_bound * scale)``: the largest magnitude one encoding can have."""
        return math.ceil(float(self.clip_bound) * float(self.scale))

    def encode(self, values: np.ndarray, rng: RngLike = None) -> np.ndarray:
        """Encode a float vector into ``Z_{2^k}``.

        Parameters
        ----------
        values
            Finite floats, any shape.
        rng
            Source of the stochastic-rounding coins: ``None`` for the OS
            CSPRNG, a seeded ``numpy.random.Generator`` for simulation. Unused
            with deterministic rounding.

        Returns
        -------
        numpy.ndarray
            uint64 array of the same shape: ``round(clip(x) * scale) mod 2^k``,
            negatives in two's complement.
        """
        array = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise PrivacyError("values must be finite, got NaN or infinity")
        c = float(self.clip_bound)
        scaled = np.clip(array, -c, c) * float(self.scale)
        if self.stochastic:
            floor = np.floor(scaled)
            coins = resolve_rng(rng, release=False).uniform(scaled.size).reshape(scaled.shape)
            # P(u < f) = f for u uniform on (0, 1): E[rounded] = scaled (to 2^-52).
            rounded = floor + (coins < scaled - floor)
        else:
            rounded = np.rint(scaled)
        # |rounded| <= max_level < 2^63, so int64 holds it exactly; the cast to
        # uint64 is two's complement modulo 2^64.
        encoded: np.ndarray = rounded.astype(np.int64).astype(np.uint64)
        return self._reduce(encoded)

    def sum_mod(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """Add encodings (or masked encodings) modulo ``2^k``.

        Parameters
        ----------
        arrays
            One or more uint64 arrays of equal shape with entries in ``[0, 2^k)``.

        Returns
        -------
        numpy.ndarray
            Their sum modulo ``2^k`` (uint64 wraps modulo ``2^64``, a multiple
            of ``2^k``; the low ``k`` bits are then kept).
        """
        if len(arrays) == 0:
            raise PrivacyError("arrays must hold at least one array, got none")
        shape = np.shape(arrays[0])
        total = np.zeros(shape, dtype=np.uint64)
        for index, array in enumerate(arrays):
            self._check_encoded(array, f"arrays[{index}]", shape)
            total += array
        return self._reduce(total)

    def decode_sum(self, total: np.ndarray, count: int) -> np.ndarray:
        """Decode the modular sum of ``count`` encodings back to floats.

        Parameters
        ----------
        total
            uint64 array with entries in ``[0, 2^k)``: the sum modulo ``2^k``.
        count
            Number of encodings summed, ``1..num_clients`` (the overflow
            guarantee covers no more).

        Returns
        -------
        numpy.ndarray
            float64: the residue read as a signed integer in
            ``[-2^(k-1), 2^(k-1))``, divided by ``scale``. With deterministic
            rounding it is within ``count * 0.5 / scale`` of the sum of the
            clipped inputs; with stochastic rounding within ``count / scale``.
        """
        if isinstance(count, bool) or not isinstance(count, int):
            raise PrivacyError(
                f"count must be an integer in [1, {self.num_clients}], got {count!r}"
            )
        if not 1 <= count <= self.num_clients:
            raise PrivacyError(f"count must be in [1, {self.num_clients}], got {count}")
        self._check_encoded(total, "total", None)
        shift = np.uint64(_MAX_MODULUS_BITS - self.modulus_bits)
        # Move bit k-1 to the sign bit, then shift back arithmetically: sign extension.
        signed = (total << shift).view(np.int64) >> shift.astype(np.int64)
        decoded: np.ndarray = signed.astype(np.float64) / float(self.scale)
        return decoded

    def _reduce(self, values: np.ndarray) -> np.ndarray:
        if self.modulus_bits < _MAX_MODULUS_BITS:
            values &= np.uint64((1 << self.modulus_bits) - 1)
        return values

    def _check_encoded(self, array: object, name: str, shape: tuple[int, ...] | None) -> None:
        if not isinstance(array, np.ndarray) or array.dtype != np.uint64:
            got = f"{array.dtype} array" if isinstance(array, np.ndarray) else type(array).__name__
            raise PrivacyError(f"{name} must be a uint64 numpy array, got {got}")
        if shape is not None and array.shape != shape:
            raise PrivacyError(f"{name} must have shape {shape}, got {array.shape}")
        k = self.modulus_bits
        if k < _MAX_MODULUS_BITS and array.size and int(array.max()) >> k:
            raise PrivacyError(f"{name} must be in [0, 2**{k}), got maximum {int(array.max())}")


def _check_positive_finite(value: object, name: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise PrivacyError(f"{name} must be a finite number > 0, got {value!r}")
