"""Nonlinear functions of shared tensors: max/argmax, exp, reciprocal, sigmoid, softmax.

All are built from three exact or bounded primitives of
:mod:`privet.mpc.protocols`: Beaver products, one-round truncation (error
below one unit of the last place, unbiased) and exact sign bits. Error
bounds below are for the default ``f = 16`` fractional bits (``ulp =
2^-16``) and are checked over random and boundary inputs in
``tests/mpc/test_mpc_functions.py``.

* :func:`relu_with_step`: ReLU and its derivative bit, exact (for training).
* :func:`max` / :func:`argmax`: a tournament of exact comparisons, ``ceil(log2
  L)`` levels of one sign extraction and one product (9 rounds each); exact.
  :func:`argmax` returns a one-hot tensor (the first maximum on ties, as
  numpy and torch).
* :func:`exp`: range reduction by ``2^6`` for free (the shares of ``x`` at
  ``f`` bits *are* shares of ``x / 64`` at ``f + 6`` bits), a cubic Taylor
  polynomial for ``e^(x/64)`` at that finer precision, and six squarings
  (CrypTen uses the cruder limit ``(1 + x/2^n)^(2^n)`` at ``f`` bits, whose
  error near ``x = -2`` is ``1e-3`` for ``n = 8``). Inputs below ``-64`` are
  clamped there by an exact ReLU (``e^-64`` is 0 in fixed point); inputs must
  be at most 6 (``e^x < 2^9`` keeps the squarings in range). Error at most
  ``2^-13`` for ``x <= 0`` and ``2^-11 e^x`` for ``0 < x <= 6`` (measured
  worst cases over 200,000 points: ``2^-14.9`` and ``2^-12.2 e^x``).
* :func:`reciprocal`: exact normalization to ``[1/2, 1)`` by comparing ``|x|``
  with every power of two in range (one batched sign extraction of ``61 - f``
  comparisons, 45 at ``f = 16``), then Newton's iteration
  ``y <- y (2 - z y)`` from the minimax linear start ``48/17 - 32/17 z``
  (relative error ``1/17``, squared by each of three steps; Catrina &
  Saxena, "Secure Computation with Fixed-Point Numbers", FC 2010). For
  ``|x|`` in :func:`reciprocal_range` (``[2^-16, 2^29)`` at ``f = 16``) the error
  is at most ``2^-13 / |x| + 2^-f``; 0 maps to 0.
* :func:`sigmoid`: ``s = 1 / (1 + e^-|x|)`` (the denominator lies in ``(1,
  2]``, so Newton needs no normalization), then ``s`` or ``1 - s`` by the sign
  bit; every encodable ``x`` works; error at most ``2^-13``.
* :func:`softmax`: ``e^(x - max) / sum e^(x - max)``; error at most ``2^-12``
  per entry.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from privet.errors import PrivacyError
from privet.mpc import protocols
from privet.mpc.protocols import wrapping
from privet.mpc.ring import FixedPoint, RingArray
from privet.mpc.tensor import SharedTensor

__all__ = [
    "argmax",
    "exp",
    "max",
    "reciprocal",
    "reciprocal_range",
    "relu_with_step",
    "sigmoid",
    "softmax",
]

_EXP_REDUCTION_BITS: Final = 6
_EXP_LOWEST: Final = -64.0
_NEWTON_STEPS: Final = 3


# -- helpers on raw shares ---------------------------------------------------------------------


def _axis(x: SharedTensor, axis: int) -> int:
    if x.ndim == 0:
        raise PrivacyError("x must have at least one axis, got a 0-d tensor")
    if isinstance(axis, bool) or not isinstance(axis, int) or not -x.ndim <= axis < x.ndim:
        raise PrivacyError(f"axis must be in [{-x.ndim}, {x.ndim - 1}], got {axis!r}")
    return axis % x.ndim


@wrapping
def _mul(x: SharedTensor, left: RingArray, right: RingArray) -> RingArray:
    session = x.session
    return protocols.mul(session.runtime, session.dealer, left, right)


def _truncate(x: SharedTensor, shares: RingArray, bits: int) -> RingArray:
    session = x.session
    return protocols.truncate(session.runtime, session.dealer, shares, bits)


def _mul_truncate(x: SharedTensor, left: RingArray, right: RingArray, bits: int) -> RingArray:
    return _truncate(x, _mul(x, left, right), bits)


def _scale_public(x: SharedTensor, shares: RingArray, factor: float, bits: int) -> RingArray:
    """Shares of ``v * factor`` for ``v`` at ``bits`` fractional bits (``factor`` encoded at
    ``bits`` too, so a relative error of ``2^-bits / |factor|``)."""
    encoded = np.int64(round(factor * (1 << bits))).view(np.uint64)
    with np.errstate(over="ignore"):
        return _truncate(x, shares * encoded, bits)


def _add_public(x: SharedTensor, shares: RingArray, value: float, bits: int) -> RingArray:
    encoded = np.int64(round(value * (1 << bits))).view(np.uint64)
    return protocols.add_public(x.session.runtime, shares, encoded)


@wrapping
def _signs_and_magnitude(x: SharedTensor) -> tuple[RingArray, RingArray, RingArray]:
    """Integer shares of ``[x < 0]`` and of ``1 - 2 [x < 0]``, and shares of ``|x|``."""
    negative = protocols.msb(x.session.runtime, x.session.dealer, x.shares)
    signs = protocols.add_public(x.session.runtime, np.uint64(0) - 2 * negative, np.uint64(1))
    return negative, signs, _mul(x, x.shares, signs)


def relu_with_step(x: SharedTensor) -> tuple[SharedTensor, SharedTensor]:
    """``relu(x)`` and its derivative ``[x >= 0]`` (fixed-point 0/1) from one sign
    extraction: what backpropagation through a ReLU needs. Both exact."""
    activation, keep = protocols.relu(x.session.runtime, x.session.dealer, x.shares)
    f = np.uint64(x.session.encoding.fractional_bits)
    return SharedTensor(x.session, activation), SharedTensor(x.session, keep << f)


# -- max and argmax ----------------------------------------------------------------------------


@wrapping
def _tournament(x: SharedTensor, axis: int, with_index: bool) -> tuple[RingArray, RingArray | None]:
    """Max along ``axis`` (moved last) and, if asked, integer one-hot shares of its position."""
    session = x.session
    values = np.moveaxis(x.shares, axis + 1, -1)
    index = None
    if with_index:
        length = values.shape[-1]
        zeros = np.zeros((*values.shape, length), dtype=np.uint64)
        index = protocols.add_public(session.runtime, zeros, np.eye(length, dtype=np.uint64))
    while values.shape[-1] > 1:
        pairs = values.shape[-1] // 2
        first, second = slice(0, 2 * pairs, 2), slice(1, 2 * pairs, 2)
        left, right = values[..., first], values[..., second]
        # [left >= right]: ties keep the first.
        keep_left = protocols.nonnegative(session.runtime, session.dealer, left - right)
        difference = (left - right)[..., None]
        if index is not None:
            positions = index[..., first, :] - index[..., second, :]
            difference = np.concatenate([difference, positions], axis=-1)
        chosen = _mul(x, difference, keep_left[..., None])  # one round for both
        values = np.concatenate([right + chosen[..., 0], values[..., 2 * pairs :]], axis=-1)
        if index is not None:
            winners = index[..., second, :] + chosen[..., 1:]
            index = np.concatenate([winners, index[..., 2 * pairs :, :]], axis=-2)
    return values[..., 0], None if index is None else index[..., 0, :]


def max(x: SharedTensor, axis: int = -1, keepdims: bool = False) -> SharedTensor:
    """The largest entry along ``axis``, exactly (``ceil(log2 L)`` comparison levels)."""
    axis = _axis(x, axis)
    if x.shape[axis] == 0:
        raise PrivacyError(f"axis {axis} must not be empty, got shape {x.shape}")
    largest, _ = _tournament(x, axis, with_index=False)
    result = SharedTensor(x.session, largest)
    if keepdims:
        result = result.reshape(*x.shape[:axis], 1, *x.shape[axis + 1 :])
    return result


def argmax(x: SharedTensor, axis: int = -1) -> SharedTensor:
    """One-hot fixed-point ``0/1`` tensor of ``x``'s shape marking the first maximum
    along ``axis`` (multiply by ``arange`` and sum for the index itself)."""
    axis = _axis(x, axis)
    if x.shape[axis] == 0:
        raise PrivacyError(f"axis {axis} must not be empty, got shape {x.shape}")
    _, one_hot = _tournament(x, axis, with_index=True)
    if one_hot is None:  # pragma: no cover - asked for
        raise PrivacyError("argmax lost its index")
    bits = np.moveaxis(one_hot, -1, axis + 1)
    return SharedTensor(x.session, bits << np.uint64(x.session.encoding.fractional_bits))


# -- exp ---------------------------------------------------------------------------------------


@wrapping
def _exp_shares(x: SharedTensor, shares: RingArray) -> RingArray:
    """``e^v`` at ``f`` bits for shares of ``v`` at ``f`` bits, ``-64 <= v <= 6``."""
    f = x.session.encoding.fractional_bits
    fine = f + _EXP_REDUCTION_BITS  # the same shares read as u = v / 64 at `fine` bits
    # e^u ~ 1 + u + u^2 (1/2 + u/6): |u| <= 1, error u^4/24 before the squarings.
    square = _mul(x, shares, shares)
    sixth = shares * np.uint64(round((1 << fine) / 6))
    truncated = _truncate(x, np.stack([square, sixth], axis=1), fine)  # one round for both
    u_square, u_sixth = truncated[:, 0], truncated[:, 1]
    inner = _add_public(x, u_sixth, 0.5, fine)
    cubic = _mul_truncate(x, u_square, inner, fine)
    power = _add_public(x, shares + cubic, 1.0, fine)
    for step in range(_EXP_REDUCTION_BITS):
        last = step == _EXP_REDUCTION_BITS - 1
        # The last squaring also drops the 6 extra bits: back to f.
        power = _mul_truncate(x, power, power, fine + (_EXP_REDUCTION_BITS if last else 0))
    return power


def exp(x: SharedTensor) -> SharedTensor:
    """``e^x`` for ``x <= 6`` (values below ``-64`` are taken as ``-64``: ``e^-64`` is 0 at
    ``f <= 30``). Error at most ``2^-13`` for ``x <= 0`` and ``2^-11 e^x`` above (module
    docstring)."""
    return SharedTensor(x.session, _exp_shares(x, _clamp_below(x, x.shares, _EXP_LOWEST)))


def _clamp_below(x: SharedTensor, shares: RingArray, lowest: float) -> RingArray:
    """``max(v, lowest)`` exactly: ``relu(v - lowest) + lowest``."""
    f = x.session.encoding.fractional_bits
    runtime, dealer = x.session.runtime, x.session.dealer
    shifted, _ = protocols.relu(runtime, dealer, _add_public(x, shares, -lowest, f))
    return _add_public(x, shifted, lowest, f)


# -- reciprocal --------------------------------------------------------------------------------


def _normalizing_shift(f: int) -> int:
    """``T``: ``|x| < 2^T`` is normalized; ``y * 2^(T - K - 1)`` with ``y < 2`` at ``f`` bits
    must stay below ``2^62`` for the smallest ``K = -f``, so ``T = 61 - 2f``."""
    return 61 - 2 * f


def reciprocal_range(fractional_bits: int = 16) -> tuple[float, float]:
    """``[low, high)``: the magnitudes :func:`reciprocal` inverts within its bound."""
    FixedPoint(fractional_bits)  # validates: [0, 30]
    return 2.0**-fractional_bits, 2.0 ** _normalizing_shift(fractional_bits)


@wrapping
def _newton_reciprocal(x: SharedTensor, z: RingArray, start: tuple[float, float]) -> RingArray:
    """``1 / z`` at ``f`` bits from the linear start ``a - b z`` (relative error ``1/17`` on
    its interval), three Newton steps ``y <- y (2 - z y)``."""
    f = x.session.encoding.fractional_bits
    intercept, slope = start
    y = _add_public(x, np.uint64(0) - _scale_public(x, z, slope, f), intercept, f)
    for _ in range(_NEWTON_STEPS):
        error = _add_public(x, np.uint64(0) - _mul_truncate(x, z, y, f), 2.0, f)
        y = _mul_truncate(x, y, error, f)
    return y


@wrapping
def _reciprocal_positive(x: SharedTensor, shares: RingArray) -> RingArray:
    f = x.session.encoding.fractional_bits
    shift = _normalizing_shift(f)
    exponents = np.arange(-f, shift, dtype=np.int64)  # k: compare |x| with 2^k
    thresholds = (np.int64(1) << (exponents + f)).view(np.uint64)
    differences = protocols.add_public(x.session.runtime, shares[..., None], -thresholds)
    at_least = protocols.nonnegative(
        x.session.runtime, x.session.dealer, differences
    )  # c_k = [|x| >= 2^k]
    exactly = at_least.copy()
    exactly[..., :-1] -= at_least[..., 1:]  # one-hot at K = floor(log2 |x|)
    weights = (np.int64(1) << (shift - exponents - 1)).view(np.uint64)  # 2^(T - k - 1)
    scale = np.add.reduce(exactly * weights, axis=-1, dtype=np.uint64)  # 2^(T - K - 1)
    normalized = _mul_truncate(x, shares, scale, shift)  # |x| 2^-(K+1) in [1/2, 1)
    inverse = _newton_reciprocal(x, normalized, (48 / 17, 32 / 17))
    return _mul_truncate(x, inverse, scale, shift)  # 2^(K+1) / |x| * 2^-(K+1)


def reciprocal(x: SharedTensor, positive: bool = False) -> SharedTensor:
    """``1 / x`` for ``|x|`` in :func:`reciprocal_range` (``[2^-16, 2^29)`` at ``f = 16``);
    error at most ``2^-13 / |x| + 2^-f``. ``positive=True`` skips the
    sign (saving a sign extraction) when ``x > 0`` is known; 0 maps to 0."""
    if positive:
        return SharedTensor(x.session, _reciprocal_positive(x, x.shares))
    _, signs, magnitude = _signs_and_magnitude(x)
    return SharedTensor(x.session, _mul(x, _reciprocal_positive(x, magnitude), signs))


# -- sigmoid and softmax -----------------------------------------------------------------------


@wrapping
def sigmoid(x: SharedTensor) -> SharedTensor:
    """``1 / (1 + e^-x)`` for every encodable ``x``; error at most ``2^-13``."""
    f = x.session.encoding.fractional_bits
    negative, _, magnitude = _signs_and_magnitude(x)
    decay = _exp_shares(x, _clamp_below(x, np.uint64(0) - magnitude, _EXP_LOWEST))
    # 1 / (1 + t) for t in (0, 1]: the linear start 24/17 - 8/17 w is the [1/2, 1) one, scaled.
    half = _newton_reciprocal(x, _add_public(x, decay, 1.0, f), (24 / 17, 8 / 17))
    flipped = _add_public(x, np.uint64(0) - 2 * half, 1.0, f)  # 1 - 2 s
    return SharedTensor(x.session, half + _mul(x, negative, flipped))


def softmax(x: SharedTensor, axis: int = -1) -> SharedTensor:
    """``e^(x - max) / sum e^(x - max)`` along ``axis``; error at most ``2^-12`` per entry."""
    axis = _axis(x, axis)
    shifted = x - max(x, axis, keepdims=True)
    powers = exp(shifted)
    total = powers.sum(axis)
    inverse = reciprocal(total, positive=True)
    return powers * inverse.reshape(*total.shape[:axis], 1, *total.shape[axis:])
