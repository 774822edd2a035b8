"""The ring ``Z_{2^64}`` and fixed-point numbers in it.

Secret-sharing MPC over ``Z_{2^64}`` (SPDZ2k, ABY, SecureML and CrypTen all
use this ring) needs no modular reduction: numpy's ``uint64`` arithmetic
wraps exactly modulo ``2^64``. Real numbers are stored in two's complement as
``round(x * 2^f)`` (Catrina & Saxena, "Secure Computation with Fixed-Point
Numbers", FC 2010).

Ranges, with ``f`` fractional bits (default 16):

* :meth:`FixedPoint.encode` accepts ``|x| < 2^(62 - f)``, so every encoding
  ``v`` has ``|v| < 2^62``: the precondition of
  :func:`privet.mpc.protocols.truncate` and of exact comparisons.
* Decoding is exact (the float64 equals ``v / 2^f``) whenever ``|v| < 2^53``,
  i.e. ``|x| < 2^(53 - f)``; in particular ``decode(encode(x)) == x`` for
  every multiple of ``2^-f`` in that range, negative values included.
* A product of two fixed-point values carries ``2f`` fractional bits until it
  is truncated; truncation needs ``|x y| < 2^(62 - 2f)`` (``2^30`` for ``f =
  16``), the range within which privet's multiplications are correct.

:func:`ring_matmul` multiplies ``uint64`` matrices modulo ``2^64`` exactly:
with torch's integer GEMM where available (:mod:`privet.mpc.torch_kernels`),
else through float64 BLAS on 22-bit limbs (:func:`ring_matmul_limbs`; each
partial product has at most ``44 + log2(k) <= 53`` bits).
:func:`ring_conv2d` is a 2-d convolution (cross-correlation, as in torch)
lowered to it by im2col. :func:`ring_matmul_naive` is numpy's integer loop,
the reference both are tested against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError

__all__ = [
    "LOW_MASK",
    "RING_BITS",
    "TOP_BIT",
    "ConvGeometry",
    "FixedPoint",
    "RingArray",
    "bit_planes",
    "ring_conv2d",
    "ring_matmul",
    "ring_matmul_limbs",
    "ring_matmul_naive",
    "to_signed",
]

RING_BITS: Final = 64
RingArray = NDArray[np.uint64]
#: Shift that brings the top (sign) bit down to bit 0.
TOP_BIT: Final = np.uint64(RING_BITS - 1)
#: The 63 bits below the top one.
LOW_MASK: Final = np.uint64((1 << (RING_BITS - 1)) - 1)

_LIMB_BITS: Final = 22
_LIMB_MASK: Final = np.uint64((1 << _LIMB_BITS) - 1)
# Limb products have < 2^44; float64 sums them exactly while the total stays below 2^53.
_MAX_EXACT_INNER: Final = 1 << (53 - 2 * _LIMB_BITS)


def to_signed(values: RingArray) -> NDArray[np.int64]:
    """Two's-complement view of ring elements (no copy)."""
    return values.view(np.int64)


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point encoding of reals into ``Z_{2^64}`` with ``fractional_bits`` bits.

    Parameters
    ----------
    fractional_bits
        ``f`` in ``[0, 30]``: resolution ``2^-f``; 16 (CrypTen's default) keeps
        products of values below ``2^15`` in range.
    """

    fractional_bits: int = 16

    def __post_init__(self) -> None:
        f = self.fractional_bits
        if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f <= 30:
            raise PrivacyError(f"fractional_bits must be an integer in [0, 30], got {f!r}")

    @property
    def scale(self) -> int:
        """``2^f``."""
        return 1 << self.fractional_bits

    @property
    def max_abs(self) -> float:
        """``2^(62 - f)``: inputs must be strictly smaller in magnitude."""
        return math.ldexp(1.0, 62 - self.fractional_bits)

    @property
    def max_exact(self) -> float:
        """``2^(53 - f)``: below it, decoding is exact."""
        return math.ldexp(1.0, 53 - self.fractional_bits)

    def encode(self, values: ArrayLike) -> RingArray:
        """``round(x * 2^f)`` (ties to even) in two's complement, as ``uint64``.

        Raises
        ------
        PrivacyError
            If a value is not finite or ``|x| >= 2^(62 - f)``.
        """
        array = np.asarray(values, dtype=np.float64)
        if not np.isfinite(array).all():
            raise PrivacyError("values must be finite, got NaN or infinity")
        if array.size and float(np.max(np.abs(array))) >= self.max_abs:
            worst = float(array.flat[int(np.argmax(np.abs(array)))])
            raise PrivacyError(
                f"values must be in (-2**{62 - self.fractional_bits}, "
                f"2**{62 - self.fractional_bits}) for {self.fractional_bits} fractional bits, "
                f"got {worst!r}"
            )
        # Scaling by a power of two is exact; rint rounds half to even.
        scaled = np.rint(np.ldexp(array, self.fractional_bits))
        encoded: RingArray = scaled.astype(np.int64).view(np.uint64)
        return encoded

    def decode(self, values: RingArray) -> NDArray[np.float64]:
        """``v / 2^f`` of the signed reading of ``v``; exact when ``|v| < 2^53``."""
        ring = _as_ring(values, "values")
        decoded: NDArray[np.float64] = np.ldexp(
            to_signed(ring).astype(np.float64), -self.fractional_bits
        )
        return decoded


def bit_planes(values: RingArray) -> RingArray:
    """Bit ``k`` of every element, packed 64 elements to a word: shape ``(64, ceil(N / 64))``
    for ``N`` values (bit ``j`` of word ``w`` in plane ``k`` is bit ``k`` of element ``64 w +
    j``), the layout of :func:`privet.mpc.dealer.pack_bits`.

    Works on bytes (unpack, transpose, repack), 8x less memory traffic than shifting
    ``uint64`` planes.
    """
    flat = np.ascontiguousarray(_as_ring(values, "values").reshape(-1), dtype="<u8")
    count = flat.size
    words = (count + 63) // 64
    padded = np.zeros(words * 64, dtype="<u8")
    padded[:count] = flat
    bits = np.unpackbits(padded.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    planes = np.packbits(np.ascontiguousarray(bits.T), axis=1, bitorder="little")
    packed: RingArray = planes.view("<u8").astype(np.uint64)
    return packed


def _as_ring(values: object, name: str) -> RingArray:
    if not isinstance(values, np.ndarray) or values.dtype != np.uint64:
        kind = values.dtype if isinstance(values, np.ndarray) else type(values).__name__
        raise PrivacyError(f"{name} must be a uint64 numpy array, got {kind}")
    return values


def _limbs(values: RingArray) -> list[NDArray[np.float64]]:
    return [
        ((values >> np.uint64(_LIMB_BITS * i)) & _LIMB_MASK).astype(np.float64) for i in range(3)
    ]


def ring_matmul(left: RingArray, right: RingArray) -> RingArray:
    """``left @ right`` modulo ``2^64`` (numpy matmul semantics, batch dims broadcast).

    Uses torch's integer GEMM when torch is installed and wraps modulo ``2^64``
    in this process (:mod:`privet.mpc.torch_kernels`), else
    :func:`ring_matmul_limbs`; both are exact, so results are identical.
    """
    left, right = _as_ring(left, "left"), _as_ring(right, "right")
    _check_matmul_shapes(left.shape, right.shape)
    # Imported here: the kernel module imports this one, and torch stays optional.
    from privet.mpc.torch_kernels import torch_ring_matmul

    kernel = torch_ring_matmul()
    return kernel(left, right) if kernel is not None else ring_matmul_limbs(left, right)


def _check_matmul_shapes(left: tuple[int, ...], right: tuple[int, ...]) -> None:
    """numpy's matmul rules, refused as PrivacyError before any kernel sees the operands."""
    if not left or not right:
        raise PrivacyError(f"matmul operands must have >= 1 axis, got {left} and {right}")
    inner_right = right[-2] if len(right) > 1 else right[0]
    if left[-1] != inner_right:
        raise PrivacyError(f"matmul inner dimensions must agree, got {left} and {right}")
    try:
        np.broadcast_shapes(left[:-2], right[:-2])
    except ValueError:
        raise PrivacyError(f"matmul batch axes must broadcast, got {left} and {right}") from None


def ring_matmul_limbs(left: RingArray, right: RingArray) -> RingArray:
    """``left @ right`` modulo ``2^64`` through float64 BLAS, without torch.

    Splits both operands into three 22-bit limbs and multiplies the six limb
    pairs whose weight is below ``2^64`` with float64 BLAS; every partial sum
    is an integer below ``2^53``, hence exact, for inner dimensions up to
    ``2^9``; longer ones are cut into chunks of that size.
    """
    left, right = _as_ring(left, "left"), _as_ring(right, "right")
    _check_matmul_shapes(left.shape, right.shape)
    inner = left.shape[-1]
    if inner > _MAX_EXACT_INNER:
        total: RingArray | None = None
        for start in range(0, inner, _MAX_EXACT_INNER):
            stop = start + _MAX_EXACT_INNER
            rows = right[start:stop] if right.ndim == 1 else right[..., start:stop, :]
            part = ring_matmul_limbs(left[..., start:stop], rows)
            total = part if total is None else total + part
        if total is None:  # pragma: no cover - inner > 0 here
            raise PrivacyError("inner dimension must be >= 1")
        return total
    a, b = _limbs(left), _limbs(right)
    result: RingArray | None = None
    # Two vectors give 0-d results, which numpy turns into scalars whose sums warn on wrap.
    with np.errstate(over="ignore"):
        for i in range(3):
            for j in range(3 - i):
                limb = np.asarray(np.matmul(a[i], b[j])).astype(np.uint64)
                product = limb << np.uint64(_LIMB_BITS * (i + j))
                result = product if result is None else result + product
    if result is None:  # pragma: no cover - the loops always run
        raise PrivacyError("ring_matmul produced nothing")
    return np.asarray(result, dtype=np.uint64)


def ring_matmul_naive(left: RingArray, right: RingArray) -> RingArray:
    """Reference: numpy's integer matmul, which wraps modulo ``2^64`` (slow, no BLAS)."""
    product: Any = np.matmul(_as_ring(left, "left"), _as_ring(right, "right"))
    return np.asarray(product, dtype=np.uint64)


@dataclass(frozen=True)
class ConvGeometry:
    """Stride and zero padding of a 2-d convolution (torch's ``Conv2d`` semantics)."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        for name, pair, low in (("stride", self.stride, 1), ("padding", self.padding, 0)):
            if (
                not isinstance(pair, tuple)
                or len(pair) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in pair)
            ):
                raise PrivacyError(f"{name} must be a pair of integers >= {low}, got {pair!r}")

    def output_size(self, input_hw: tuple[int, int], kernel_hw: tuple[int, int]) -> tuple[int, int]:
        """``(H_out, W_out)``; raises if the kernel does not fit the padded input."""
        sizes = []
        for size, kernel, stride, pad in zip(
            input_hw, kernel_hw, self.stride, self.padding, strict=True
        ):
            span = size + 2 * pad - kernel
            if span < 0:
                raise PrivacyError(
                    f"kernel size must be <= padded input size {size + 2 * pad}, got {kernel}"
                )
            sizes.append(span // stride + 1)
        return sizes[0], sizes[1]


def _im2col(images: RingArray, kernel_hw: tuple[int, int], geometry: ConvGeometry) -> RingArray:
    """Patches of ``(..., C, H, W)`` as ``(..., H_out * W_out, C * kh * kw)`` (a copy)."""
    (ph, pw), (sh, sw) = geometry.padding, geometry.stride
    lead = images.ndim - 3
    padded = np.pad(images, [(0, 0)] * lead + [(0, 0), (ph, ph), (pw, pw)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel_hw, axis=(-2, -1))
    windows = windows[..., ::sh, ::sw, :, :]  # (..., C, Ho, Wo, kh, kw)
    ho, wo = windows.shape[-4], windows.shape[-3]
    channels = images.shape[-3]
    moved = np.moveaxis(windows, -5, -3)  # (..., Ho, Wo, C, kh, kw)
    cols: RingArray = np.ascontiguousarray(moved).reshape(
        (*images.shape[:-3], ho * wo, channels * kernel_hw[0] * kernel_hw[1])
    )
    return cols


def ring_conv2d(
    images: RingArray, kernels: RingArray, geometry: ConvGeometry | None = None
) -> RingArray:
    """Cross-correlation modulo ``2^64``: ``(..., N, C, H, W)`` with ``(..., O, C, kh, kw)``.

    Leading axes (before ``N`` and ``O``) broadcast, so a party axis on
    either operand batches the parties. Returns ``(..., N, O, H_out, W_out)``.
    """
    images, kernels = _as_ring(images, "images"), _as_ring(kernels, "kernels")
    geometry = geometry if geometry is not None else ConvGeometry()
    if images.ndim < 4 or kernels.ndim < 4:
        raise PrivacyError(
            "images must be (..., N, C, H, W) and kernels (..., O, C, kh, kw), "
            f"got shapes {images.shape} and {kernels.shape}"
        )
    if images.shape[-3] != kernels.shape[-3]:
        raise PrivacyError(
            f"kernel channels must equal image channels {images.shape[-3]}, got {kernels.shape[-3]}"
        )
    try:
        np.broadcast_shapes(images.shape[:-4], kernels.shape[:-4])
    except ValueError:
        raise PrivacyError(
            f"leading axes must broadcast, got images {images.shape} and kernels {kernels.shape}"
        ) from None
    kernel_hw = (kernels.shape[-2], kernels.shape[-1])
    ho, wo = geometry.output_size((images.shape[-2], images.shape[-1]), kernel_hw)
    cols = _im2col(images, kernel_hw, geometry)  # (..., N, L, K)
    flat = kernels.reshape((*kernels.shape[:-4], 1, kernels.shape[-4], -1))  # (..., 1, O, K)
    product = ring_matmul(cols, np.swapaxes(flat, -1, -2))  # (..., N, L, O)
    moved = np.moveaxis(product, -1, -2)  # (..., N, O, L)
    out: RingArray = np.ascontiguousarray(moved).reshape((*moved.shape[:-1], ho, wo))
    return out
