"""The online protocols on share arrays (party axis first), written once for every runtime.

* :func:`mul`, :func:`matmul`: Beaver's multiplication (CRYPTO 1991): open
  ``d = x - a`` and ``e = y - b`` in one round, then ``z = c + d b + a e +
  d e`` (the public ``d e`` added by party 0).
* :func:`conv2d`: the same with a convolution triple ``c = conv(a, b)``;
  convolution is bilinear, so ``conv(x, w) = c + conv(d, b + e) + conv(a,
  e)`` and only the images and kernels (not their im2col patches) are
  opened.
* :func:`truncate`: divides a fixed-point product by ``2^f`` in one round
  with a dealer pair ``(r, (r mod 2^63) >> f, r >> 63)``. With ``v' = v +
  2^62`` (so ``0 <= v' < 2^63`` when ``|v| < 2^62``) and ``c = v' + r``
  opened, the carry into bit 63 is ``c_63 XOR r_63``, linear in the shared
  bit ``r_63`` because ``c`` is public; so ``v' = c mod 2^63 - r mod 2^63 +
  2^63 (c_63 XOR r_63)`` holds exactly, and shifting the two low parts
  separately drops only the borrow between them. The result is ``floor(v /
  2^f)`` or one more, the latter with probability ``(v mod 2^f) / 2^f``: an
  unbiased stochastic rounding with **no** large-error failure for ``|v| <
  2^62`` (unlike SecureML's local truncation, Mohassel & Zhang 2017, whose
  failure probability is ``2^(l_v + 1 - 64)``). This is the exact-carry
  idea of Escudero et al., "Improved Primitives for MPC over Mixed
  Arithmetic-Binary Circuits", CRYPTO 2020, applied with a dealer.
* :func:`msb`: the sign bit of ``x`` exactly (for ``|x| < 2^63``), by the
  Rabbit comparison (Makri et al., FC 2021): open ``c = x + r``; then
  ``msb(x) = c_63 XOR r_63 XOR [c mod 2^63 < r mod 2^63]``, a comparison of a
  public number with a secret one whose bits the dealer shared. Its leaves
  are local (one input is public); a log-depth tree of AND gates on bits
  packed 64 to a word combines them (6 rounds for 64 bits), and a dealer bit
  converts the XOR-shared result to an arithmetic share (1 round).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

import numpy as np

from privet.errors import PrivacyError
from privet.mpc.dealer import CorrelationSource, packed_words, unpack_bits
from privet.mpc.ring import (
    LOW_MASK,
    TOP_BIT,
    ConvGeometry,
    RingArray,
    bit_planes,
    ring_conv2d,
    ring_matmul,
)
from privet.mpc.runtime import Runtime, first_party_mask

__all__ = [
    "add_public",
    "aligned",
    "and_gates",
    "conv2d",
    "conv2d_public",
    "matmul",
    "matmul_public",
    "msb",
    "mul",
    "nonnegative",
    "relu",
    "truncate",
]

_BIAS: Final = np.uint64(1 << 62)

P = ParamSpec("P")
R = TypeVar("R")


def wrapping(function: Callable[P, R]) -> Callable[P, R]:
    """Run under ``np.errstate(over="ignore")``: ring arithmetic wraps modulo ``2^64`` by
    design, and numpy warns about it on 0-d operands."""

    @functools.wraps(function)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        with np.errstate(over="ignore"):
            return function(*args, **kwargs)

    return wrapped


def local(runtime: Runtime, stack: RingArray) -> RingArray:
    """The rows of a dealer's full share stack that this process holds."""
    parties = runtime.local_parties
    if len(parties) == stack.shape[0]:
        return stack
    rows: RingArray = stack[list(parties)]
    return rows


@wrapping
def add_public(runtime: Runtime, shares: RingArray, public: RingArray | np.uint64) -> RingArray:
    """Shares of ``x + p`` for a public ``p`` (party 0 adds it)."""
    total: RingArray = shares + first_party_mask(runtime, shares.ndim - 1) * public
    return total


def _open_pair(runtime: Runtime, left: RingArray, right: RingArray) -> tuple[RingArray, RingArray]:
    """Open two share arrays in one round."""
    rows = left.shape[0]
    both = np.concatenate([left.reshape(rows, -1), right.reshape(rows, -1)], axis=1)
    opened = runtime.open_ring(both)
    split = left[0].size
    return opened[:split].reshape(left.shape[1:]), opened[split:].reshape(right.shape[1:])


def aligned(shares: RingArray, ndim: int) -> RingArray:
    """Share arrays with singleton axes after the party axis, so that ``ndim`` axes follow
    it: numpy then broadcasts the tensors' own axes, never the party axis against them."""
    missing = ndim - (shares.ndim - 1)
    if missing <= 0:
        return shares
    aligned: RingArray = shares.reshape((shares.shape[0],) + (1,) * missing + shares.shape[1:])
    return aligned


@wrapping
def mul(runtime: Runtime, dealer: CorrelationSource, x: RingArray, y: RingArray) -> RingArray:
    """Shares of ``x * y`` elementwise (numpy broadcasting), one round."""
    ndim = max(x.ndim, y.ndim) - 1
    x, y = aligned(x, ndim), aligned(y, ndim)
    a, b, c = (local(runtime, t) for t in dealer.mul_triple(x.shape[1:], y.shape[1:]))
    d, e = _open_pair(runtime, x - a, y - b)
    # c + d b + a e + d e = c + d (b + e) + a e: b + e (e added by party 0) shares y.
    product: RingArray = c + d[None] * add_public(runtime, b, e) + a * e[None]
    return product


@wrapping
def matmul(runtime: Runtime, dealer: CorrelationSource, x: RingArray, y: RingArray) -> RingArray:
    """Shares of ``x @ y`` for operands with >= 2 axes each (batch axes broadcast), one round."""
    if x.ndim < 3 or y.ndim < 3:
        raise PrivacyError(
            f"matmul operands must have >= 2 axes each, got shapes {x.shape[1:]} and {y.shape[1:]}"
        )
    ndim = max(x.ndim, y.ndim) - 1
    x, y = aligned(x, ndim), aligned(y, ndim)
    a, b, c = (local(runtime, t) for t in dealer.matmul_triple(x.shape[1:], y.shape[1:]))
    d, e = _open_pair(runtime, x - a, y - b)
    # Two products per party: c + d (b + e) + a e.
    product: RingArray = (
        c + ring_matmul(d[None], add_public(runtime, b, e)) + ring_matmul(a, e[None])
    )
    return product


@wrapping
def conv2d(
    runtime: Runtime, dealer: CorrelationSource, x: RingArray, w: RingArray, geometry: ConvGeometry
) -> RingArray:
    """Shares of ``conv2d(x, w)``: images ``(N, C, H, W)``, kernels ``(O, C, kh, kw)``; one
    round."""
    if x.ndim != 5 or w.ndim != 5:
        raise PrivacyError(
            "conv2d needs images (N, C, H, W) and kernels (O, C, kh, kw), "
            f"got shapes {x.shape[1:]} and {w.shape[1:]}"
        )
    a, b, c = (local(runtime, t) for t in dealer.conv_triple(x.shape[1:], w.shape[1:], geometry))
    d, e = _open_pair(runtime, x - a, w - b)
    product: RingArray = (
        c
        + ring_conv2d(d[None], add_public(runtime, b, e), geometry)
        + ring_conv2d(a, e[None], geometry)
    )
    return product


@wrapping
def conv2d_public(shares: RingArray, kernels: RingArray, geometry: ConvGeometry) -> RingArray:
    """Shares of ``conv2d(x, k)`` for public kernels: local, no round."""
    return ring_conv2d(shares, kernels[None], geometry)


@wrapping
def truncate(
    runtime: Runtime, dealer: CorrelationSource, x: RingArray, fractional_bits: int
) -> RingArray:
    """Shares of ``floor(x / 2^f)`` or one more (stochastic rounding), one round.

    Correct for every ``|x| < 2^62`` (signed); see the module docstring.
    """
    f = np.uint64(fractional_bits)
    r, low_shifted, high_bit = (
        local(runtime, t) for t in dealer.truncation_pair(x.shape[1:], fractional_bits)
    )
    c = runtime.open_ring(add_public(runtime, x, _BIAS) + r)
    c_high = c >> TOP_BIT
    # carry = c_63 XOR r_63 = c_63 + r_63 (1 - 2 c_63), linear in the shared bit r_63.
    carry = add_public(runtime, high_bit * (np.uint64(1) - np.uint64(2) * c_high), c_high)
    shifted: RingArray = carry << (TOP_BIT - f)
    shifted -= low_shifted
    return add_public(runtime, shifted, ((c & LOW_MASK) >> f) - (_BIAS >> f))


@wrapping
def and_gates(runtime: Runtime, dealer: CorrelationSource, x: RingArray, y: RingArray) -> RingArray:
    """XOR shares of ``x & y`` for packed bits, one round (Beaver triples over GF(2))."""
    a, b, c = (local(runtime, t) for t in dealer.and_triples(x.shape[1:]))
    rows = x.shape[0]
    both = np.concatenate([(x ^ a).reshape(rows, -1), (y ^ b).reshape(rows, -1)], axis=1)
    opened = runtime.open_bits(both)
    split = x[0].size
    d, e = opened[:split].reshape(x.shape[1:]), opened[split:].reshape(y.shape[1:])
    product: RingArray = c ^ (d & b) ^ (e & a)
    return product ^ (first_party_mask(runtime, product.ndim - 1) * (d & e))


def _less_than(
    runtime: Runtime, dealer: CorrelationSource, public: RingArray, bits: RingArray
) -> RingArray:
    """XOR shares of ``[public < secret]`` per element, from packed bits (positions first).

    ``public``: (64, W) packed public bits; ``bits``: (rows, 64, W) XOR shares of the
    secret's bits. Pairs of bit ranges combine as ``lt = lt_hi XOR (eq_hi AND lt_lo)``,
    ``eq = eq_hi AND eq_lo`` (``lt_hi`` and ``eq_hi`` never both hold).
    """
    first = first_party_mask(runtime, 2)
    less = bits & ~public  # public bit 0, secret bit 1: local, one input is public
    equal = bits ^ (first * ~public)  # NOT(public XOR secret)
    while less.shape[1] > 1:
        high_less, low_less = less[:, 1::2], less[:, 0::2]
        high_equal, low_equal = equal[:, 1::2], equal[:, 0::2]
        if less.shape[1] == 2:  # the last level needs no "equal"
            return high_less ^ and_gates(runtime, dealer, high_equal, low_less)
        gated = and_gates(
            runtime,
            dealer,
            np.concatenate([high_equal, high_equal], axis=1),
            np.concatenate([low_less, low_equal], axis=1),
        )
        half = high_less.shape[1]
        less, equal = high_less ^ gated[:, :half], gated[:, half:]
    return less


@wrapping
def msb(runtime: Runtime, dealer: CorrelationSource, x: RingArray) -> RingArray:
    """Arithmetic shares (integers 0/1) of the sign bit of every element of ``x``.

    Exact for every ``x`` (as a 64-bit two's-complement number); 8 rounds.
    """
    shape, rows = x.shape[1:], x.shape[0]
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:
        return np.zeros(x.shape, dtype=np.uint64)
    mask = dealer.comparison_mask(count)
    r, low_bits, high_bit, rho_bits, rho = (local(runtime, t) for t in mask)
    c = runtime.open_ring(x.reshape(rows, count) + r)
    public = bit_planes(c)
    top = public[63].copy()
    # Compare 64 positions whose top bit is 0 in both numbers (less 0, equal 1).
    public[63] = 0
    words = packed_words(count)
    secret = np.concatenate([low_bits, np.zeros((rows, 1, words), dtype=np.uint64)], axis=1)
    less = _less_than(runtime, dealer, public, secret)[:, 0]
    sign = less ^ high_bit ^ (first_party_mask(runtime, 1) * top)
    # XOR share to arithmetic share: open sign XOR rho, then b = e + rho (1 - 2 e).
    e = unpack_bits(runtime.open_bits(sign ^ rho_bits), count)
    arithmetic = add_public(runtime, rho * (np.uint64(1) - np.uint64(2) * e), e)
    return arithmetic.reshape(x.shape)


@wrapping
def nonnegative(runtime: Runtime, dealer: CorrelationSource, x: RingArray) -> RingArray:
    """Integer 0/1 shares of ``[x >= 0]``: ``1 - msb(x)``, exact, 8 rounds."""
    return add_public(runtime, np.uint64(0) - msb(runtime, dealer, x), np.uint64(1))


@wrapping
def relu(runtime: Runtime, dealer: CorrelationSource, x: RingArray) -> tuple[RingArray, RingArray]:
    """Shares of ``max(x, 0)`` and the integer bits ``[x >= 0]``; exact, 9 rounds (the
    product with an integer bit needs no truncation)."""
    keep = nonnegative(runtime, dealer, x)
    return mul(runtime, dealer, x, keep), keep


def check_same_parties(runtime: Runtime, dealer: CorrelationSource) -> None:
    if runtime.num_parties != dealer.num_parties:
        raise PrivacyError(
            f"dealer must serve the runtime's {runtime.num_parties} parties, "
            f"got one for {dealer.num_parties}"
        )


@wrapping
def matmul_public(shares: RingArray, public: RingArray, *, public_on_left: bool) -> RingArray:
    """Shares of ``x @ p`` (or ``p @ x``) for a public ``p``: local, no round."""
    ndim = max(shares.ndim - 1, public.ndim)
    x = aligned(shares, ndim)
    p = public.reshape((1,) * (ndim + 1 - public.ndim) + public.shape)
    return ring_matmul(p, x) if public_on_left else ring_matmul(x, p)
