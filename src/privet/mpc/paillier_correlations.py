"""Dealer-free correlations for two parties: every dealer item from Paillier products.

:class:`PaillierCorrelations` is a :class:`~privet.mpc.dealer.CorrelationSource` for
exactly two parties that no third party has to be trusted for: each party draws its own
shares and its own Paillier key pair, and the cross terms of every product between the
two parties' shares are computed by :mod:`privet.mpc.paillier_products` (one party
encrypts, the other multiplies homomorphically and masks). Each item satisfies the
dealer's relation exactly; items differ from a :class:`~privet.mpc.dealer.Dealer`'s only
in their random values, so exact programs reveal the same outputs with either, and
fixed-point programs agree up to their stochastic roundings.

The items, with ``u`` drawn by party 0 and ``v`` by party 1:

* input mask: the owner draws ``r`` and holds it as its share; the other's share is 0.
  Nothing is sent; the online phase opens ``x - r`` as with the dealer.
* ``mul``/``matmul``/``conv`` triples: each party draws ``a_i``, ``b_i`` and keeps
  ``a_i op b_i``; the cross terms ``a_0 op b_1`` and ``a_1 op b_0`` are Paillier products
  (each party encrypts its ``a_i``), Beaver triples generated as in ABY (Demmler et al.,
  NDSS 2015) and SecureML (Mohassel and Zhang, S&P 2017, §IV-B). Convolution is
  bilinear, so its cross terms are matrix products of one party's im2col patches with
  the other's flattened kernels.
* AND triples: the same over bits, XOR-shared; the cross term ``a_0 AND b_1`` of each bit
  is the parity of ``a_0 b_1 + s``, one Paillier product (one encryption) per bit.
* truncation pairs and comparison masks: ``r = u XOR v``, bit by bit, so its bits are
  XOR-shared for free (the comparison mask's planes), and its arithmetic shares follow
  from ``u XOR v = u + v - 2 (u AND v)`` with ``2 (u AND v) = sum_k 2^(k+1) u_k v_k``:
  64 bit products per element, weighted into a few slots. The truncation pair's
  ``(r mod 2^63) >> f = sum_{f <= k < 63} 2^(k-f) (u_k + v_k - 2 u_k v_k)`` and ``r >> 63 =
  u_63 + v_63 - 2 u_63 v_63`` come from the same products, so every relation holds exactly
  (no carry is dropped) and :func:`~privet.mpc.protocols.truncate` keeps its guarantees.
  The comparison mask's bit ``rho = rho_0 XOR rho_1`` takes one more product.

Security: semi-honest parties. Each party sees its own shares, ciphertexts under the
other's key, and slot values ``X + s`` masked statistically (distance ``2^-sigma`` from a
value independent of the other's shares, ``sigma = statistical_bits >= 40``).

Keys: 2048-bit moduli by default, about 112-bit security (NIST SP 800-57 Part 1 Rev. 5,
Table 2), privet.he's floor. Pass ``key_bits=3072`` for 128-bit security. Keys are
fresh for every instance and their secret halves never leave their party, but a
ciphertext recorded now protects a share for as long as the modulus stands; the
correlations are consumed within a session, and what breaking a key later exposes is one
party's shares of the triples (inputs follow only with the online transcript as well).

This module needs gmpy2 (``pip install 'privet[he]'``), so :mod:`privet.mpc` does not
import it: ``from privet.mpc.paillier_correlations import PaillierCorrelations``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Final

import numpy as np

from privet.errors import PrivacyError
from privet.he._gmp import RandomBytes
from privet.he.paillier import MIN_BITS
from privet.mpc.dealer import (
    DealerStats,
    Delivery,
    ItemRequest,
    Method,
    _Correlations,
    pack_bits,
    unpack_bits,
)
from privet.mpc.paillier_products import (
    MIN_STATISTICAL_BITS,
    BilinearForm,
    EncryptionRandomness,
    ProductParty,
    Reduce,
    bilinear_products,
    matrix_products,
    slot_layout,
)
from privet.mpc.prg import SEED_BYTES, Prg, fresh_seed
from privet.mpc.ring import (
    LOW_MASK,
    RING_BITS,
    TOP_BIT,
    ConvGeometry,
    RingArray,
    bit_planes,
    ring_conv2d,
    ring_matmul,
)

__all__ = ["PaillierCorrelations"]

_PRODUCT: Final = BilinearForm(((1,),), RING_BITS, RING_BITS, Reduce.RING)
_AND: Final = BilinearForm(((1,),), 1, 1, Reduce.PARITY)
_ONE: Final = np.uint64(1)
_TWO: Final = np.uint64(2)


def _truncation_form(fractional_bits: int) -> BilinearForm:
    """Outputs ``sum_{k<63} 2^(k+1) t_k``, ``sum_{f<=k<63} 2^(k-f+1) t_k`` and ``t_63``."""
    f = fractional_bits
    return BilinearForm(
        (
            tuple(1 << (k + 1) if k < 63 else 0 for k in range(64)),
            tuple(1 << (k - f + 1) if f <= k < 63 else 0 for k in range(64)),
            tuple(int(k == 63) for k in range(64)),
        ),
        1,
        1,
        Reduce.RING,
    )


# Terms 0..62: the bits below the top of r; term 63: rho_0 rho_1.
_COMPARISON: Final = BilinearForm(
    (
        tuple(1 << (k + 1) if k < 63 else 0 for k in range(64)),
        tuple(int(k == 63) for k in range(64)),
    ),
    1,
    1,
    Reduce.RING,
)


def _bits(words: RingArray) -> RingArray:
    """(count, 64): bit ``k`` of every element."""
    flat = words.reshape(-1, 1)
    bits: RingArray = (flat >> np.arange(64, dtype=np.uint64)) & _ONE
    return bits


def _stream_bytes(prg: Prg) -> RandomBytes:
    """Seeded coins (tests and simulation): the Prg's keystream as bytes."""

    def draw(size: int) -> bytes:
        return prg.words((-(-size // 8),)).tobytes()[:size]

    return draw


def _as_matrix(values: RingArray, left: bool) -> RingArray:
    """numpy's 1-d matmul rule: a vector is a row on the left, a column on the right."""
    if values.ndim > 1:
        return values
    matrix: RingArray = values[None, :] if left else values[:, None]
    return matrix


def _im2col(images: RingArray, kernel_shape: tuple[int, ...], geometry: ConvGeometry) -> RingArray:
    """Patches ``(..., N, L, C kh kw)`` in :func:`~privet.mpc.ring.ring_conv2d`'s order, as
    its convolution with one-hot kernels (exact, and local to the party)."""
    channels, kh, kw = kernel_shape[-3:]
    width = channels * kh * kw
    one_hot = np.eye(width, dtype=np.uint64).reshape(width, channels, kh, kw)
    patches = ring_conv2d(images, one_hot, geometry)  # (..., N, K, Ho, Wo)
    cols: RingArray = np.swapaxes(patches.reshape((*patches.shape[:-2], -1)), -1, -2)
    return cols


class PaillierCorrelations(_Correlations):
    """Correlated randomness made by two parties between themselves (no dealer).

    Both parties' rows come out, like :class:`~privet.mpc.dealer.Dealer`'s, so the
    simulator (:class:`~privet.mpc.runtime.Simulator` and
    :class:`~privet.mpc.tensor.Session`) can use it directly; the two
    :class:`~privet.mpc.paillier_products.ProductParty` objects it drives each hold only
    their own key pair, shares and what they received.

    Parameters
    ----------
    num_parties
        Must be 2.
    seed
        32 bytes fixing both parties' shares and coins (tests and simulation only: the
        key pairs stay fresh, and the shares do not depend on them); ``None``: shares and
        masks from :class:`~privet.mpc.prg.Prg` streams keyed from the OS CSPRNG (as the
        dealer's), encryption coins from ``os.urandom``.
    key_bits
        Paillier modulus bits (2048: ~112-bit security; 3072: 128-bit).
    insecure_for_tests
        Accept 1024 <= ``key_bits`` < 2048 (never for real data).
    randomness
        :class:`~privet.mpc.paillier_products.EncryptionRandomness`: ``EXACT`` (DCRA
        only) or ``DJN`` (faster, under DJN's short-exponent assumption).
    statistical_bits
        ``sigma >= 40``: the masks' statistical hiding.

    Attributes
    ----------
    stats
        Items made, bytes the parties sent each other (public keys, then ciphertexts) and
        seconds spent.
    parties
        The two :class:`~privet.mpc.paillier_products.ProductParty` objects.
    """

    def __init__(
        self,
        num_parties: int = 2,
        seed: bytes | None = None,
        *,
        key_bits: int = MIN_BITS,
        insecure_for_tests: bool = False,
        randomness: EncryptionRandomness | str = EncryptionRandomness.EXACT,
        statistical_bits: int = MIN_STATISTICAL_BITS,
    ) -> None:
        if isinstance(num_parties, bool) or num_parties != 2:
            raise PrivacyError(
                f"num_parties must be 2 (Paillier correlations are two-party), got {num_parties!r}"
            )
        if isinstance(key_bits, bool) or not isinstance(key_bits, int):
            raise PrivacyError(f"key_bits must be an int, got {type(key_bits).__name__}")
        sigma = statistical_bits
        if isinstance(sigma, bool) or not isinstance(sigma, int) or sigma < MIN_STATISTICAL_BITS:
            raise PrivacyError(
                f"statistical_bits must be an int >= {MIN_STATISTICAL_BITS}, got {sigma!r}"
            )
        try:
            kind = EncryptionRandomness(randomness)
        except ValueError:
            names = ", ".join(k.value for k in EncryptionRandomness)
            raise PrivacyError(f"randomness must be one of {names}, got {randomness!r}") from None
        # The widest fixed items: a 128-bit product, and a truncation pair's three slots.
        slot_layout(key_bits, 2 * RING_BITS, Reduce.RING, sigma)
        slot_layout(key_bits, RING_BITS, Reduce.RING, sigma, group=3)
        master = Prg(seed if seed is not None else fresh_seed())
        seeds = [row.tobytes() for row in master.words((4, SEED_BYTES // 8))]
        coins: list[Callable[[int], bytes]] = (
            [os.urandom, os.urandom]
            if seed is None
            else [_stream_bytes(Prg(seeds[2])), _stream_bytes(Prg(seeds[3]))]
        )
        self.parties = tuple(
            ProductParty(
                index,
                key_bits=key_bits,
                insecure_for_tests=insecure_for_tests,
                randomness=kind,
                seed=seeds[index],
                random_bytes=coins[index],
            )
            for index in range(2)
        )
        self.parties[0].meet(self.parties[1].public_key)
        self.parties[1].meet(self.parties[0].public_key)
        self.num_parties = 2
        self.statistical_bits = sigma
        # Each public key crosses once: n, at its own width.
        self._key_bytes = sum((p.public_key.bits + 7) // 8 for p in self.parties)
        self.stats = DealerStats(bytes_sent=self._key_bytes)

    def produce(self, request: ItemRequest) -> Delivery:
        """Both parties' rows of the item ``request`` describes (and ``r`` for an input mask)."""
        if not isinstance(request, ItemRequest):
            raise PrivacyError(f"request must be an ItemRequest, got {request!r:.80}")
        started = time.perf_counter()
        delivery = self._make(request)
        self.stats.items += len(request.layout())
        self.stats.bytes_sent = self._key_bytes + sum(p.traffic.bytes_sent for p in self.parties)
        self.stats.seconds += time.perf_counter() - started
        return delivery

    def _make(self, request: ItemRequest) -> Delivery:
        shapes, params = request.shapes, request.params
        match request.method:
            case Method.INPUT_MASK:
                owner = params[0]
                r = self.parties[owner].uniform(shapes[0])
                shares = np.zeros((2, *r.shape), dtype=np.uint64)
                shares[owner] = r
                return Delivery((shares,), r)
            case Method.MUL:
                return self._triple(request, lambda a, b: a * b, self._elementwise)
            case Method.MATMUL:
                return self._triple(request, ring_matmul, self._matmul_cross)
            case Method.CONV:
                geometry = request.geometry
                return self._triple(
                    request,
                    lambda a, b: ring_conv2d(a, b, geometry),
                    lambda i, a, b: self._conv_cross(i, a, b, geometry),
                )
            case Method.AND:
                return self._and_triples(shapes[0])
            case Method.TRUNCATION:
                return self._truncation_pair(shapes[0], params[0])
            case Method.COMPARISON:
                return self._comparison_mask(params[0])
        raise PrivacyError(f"method has no producer: {request.method!r}")  # pragma: no cover

    # -- triples -------------------------------------------------------------------------------

    def _triple(
        self,
        request: ItemRequest,
        local: Callable[[RingArray, RingArray], RingArray],
        cross: Callable[[int, RingArray, RingArray], tuple[RingArray, RingArray]],
    ) -> Delivery:
        """``c_i = a_i op b_i`` plus both parties' shares of ``a_0 op b_1`` and ``a_1 op b_0``;
        ``cross(i, a_i, b_j)`` returns (party i's share, party j's share)."""
        left, right = request.shapes[0], request.shapes[1]
        out = request.layout()[2]
        a = [p.uniform(left) for p in self.parties]
        b = [p.uniform(right) for p in self.parties]
        with np.errstate(over="ignore"):
            c = [np.asarray(local(a[i], b[i]), dtype=np.uint64).reshape(out) for i in range(2)]
            for i in range(2):
                j = 1 - i
                mine, theirs = cross(i, a[i], b[j])
                c[i] = c[i] + mine.reshape(out)
                c[j] = c[j] + theirs.reshape(out)
        return Delivery(tuple(np.stack(rows) for rows in (a, b, c)), None)

    def _elementwise(self, i: int, a: RingArray, b: RingArray) -> tuple[RingArray, RingArray]:
        out = np.broadcast_shapes(a.shape, b.shape)
        x = np.broadcast_to(a, out).reshape(-1, 1)
        y = np.broadcast_to(b, out).reshape(-1, 1)
        return self._bilinear(i, x, y, _PRODUCT)

    def _bilinear(
        self, i: int, x: RingArray, y: RingArray, form: BilinearForm
    ) -> tuple[RingArray, RingArray]:
        """Party ``i`` encrypts ``x``, the other multiplies by ``y``: (i's, other's) shares."""
        if x.shape[0] == 0:
            empty = np.zeros((0, form.outputs), dtype=np.uint64)
            return empty, empty.copy()
        return bilinear_products(
            self.parties[i], self.parties[1 - i], x, y, form, self.statistical_bits
        )

    def _matmul_cross(self, i: int, a: RingArray, b: RingArray) -> tuple[RingArray, RingArray]:
        """Shares of ``a @ b`` (numpy semantics, batch axes broadcast), ``a`` party ``i``'s."""
        left, right = _as_matrix(a, left=True), _as_matrix(b, left=False)
        batch = np.broadcast_shapes(left.shape[:-2], right.shape[:-2])
        m, k, n = left.shape[-2], left.shape[-1], right.shape[-1]
        shape = (*batch, m, n)
        if math.prod(shape) == 0 or k == 0:  # nothing to multiply: c = 0
            zeros = np.zeros(shape, dtype=np.uint64)
            return zeros, zeros.copy()
        count = math.prod(batch)
        x = np.broadcast_to(left, (*batch, m, k)).reshape(count, m, k)
        y = np.broadcast_to(right, (*batch, k, n)).reshape(count, k, n)
        mine, theirs = matrix_products(
            self.parties[i], self.parties[1 - i], x, y, self.statistical_bits
        )
        return mine.reshape(shape), theirs.reshape(shape)

    def _conv_cross(
        self, i: int, images: RingArray, kernels: RingArray, geometry: ConvGeometry
    ) -> tuple[RingArray, RingArray]:
        """Shares of ``ring_conv2d(images, kernels)``: patches ``(..., N, L, K)`` of party
        ``i`` times the other's kernels as ``(..., 1, K, O)``, as ring_conv2d lowers it."""
        cols = _im2col(images, kernels.shape, geometry)
        flat = kernels.reshape((*kernels.shape[:-4], 1, kernels.shape[-4], -1))
        mine, theirs = self._matmul_cross(i, cols, np.swapaxes(flat, -1, -2))
        out_h, out_w = geometry.output_size(
            (images.shape[-2], images.shape[-1]), (kernels.shape[-2], kernels.shape[-1])
        )

        def image(product: RingArray) -> RingArray:
            moved = np.moveaxis(product, -1, -2)  # (..., N, O, L)
            shaped: RingArray = np.ascontiguousarray(moved).reshape(
                (*moved.shape[:-1], out_h, out_w)
            )
            return shaped

        return image(mine), image(theirs)

    def _and_triples(self, shape: tuple[int, ...]) -> Delivery:
        a = [p.uniform(shape) for p in self.parties]
        b = [p.uniform(shape) for p in self.parties]
        c = [a[i] & b[i] for i in range(2)]
        count = 64 * math.prod(shape)
        for i in range(2):
            j = 1 - i
            x = unpack_bits(a[i].reshape(-1), count).reshape(-1, 1)
            y = unpack_bits(b[j].reshape(-1), count).reshape(-1, 1)
            mine, theirs = self._bilinear(i, x, y, _AND)
            c[i] ^= pack_bits(mine.reshape(-1)).reshape(shape)
            c[j] ^= pack_bits(theirs.reshape(-1)).reshape(shape)
        return Delivery(tuple(np.stack(rows) for rows in (a, b, c)), None)

    # -- bits of r = u XOR v -------------------------------------------------------------------

    def _bit_products(
        self, x: RingArray, y: RingArray, form: BilinearForm
    ) -> tuple[RingArray, RingArray]:
        """Both parties' shares of ``form`` over bits ``x`` (party 0's) and ``y`` (party
        1's), (units, 64) each; party 0 encrypts for the first half of the units, party 1
        for the rest, so the two do equal work."""
        half = x.shape[0] // 2
        first0, first1 = self._bilinear(0, x[:half], y[:half], form)
        second1, second0 = self._bilinear(1, y[half:], x[half:], form)
        return np.concatenate([first0, second0]), np.concatenate([first1, second1])

    def _truncation_pair(self, shape: tuple[int, ...], fractional_bits: int) -> Delivery:
        own = [p.uniform(shape).reshape(-1) for p in self.parties]
        sums = self._bit_products(_bits(own[0]), _bits(own[1]), _truncation_form(fractional_bits))
        f = np.uint64(fractional_bits)
        rows: list[list[RingArray]] = [[], [], []]
        with np.errstate(over="ignore"):
            for value, share in zip(own, sums, strict=True):
                rows[0].append((value - share[:, 0]).reshape(shape))
                rows[1].append((((value & LOW_MASK) >> f) - share[:, 1]).reshape(shape))
                rows[2].append(((value >> TOP_BIT) - _TWO * share[:, 2]).reshape(shape))
        return Delivery(tuple(np.stack(row) for row in rows), None)

    def _comparison_mask(self, count: int) -> Delivery:
        own = [p.uniform((count,)) for p in self.parties]
        rho = [p.uniform((count,)) & _ONE for p in self.parties]
        x, y = _bits(own[0]), _bits(own[1])
        x[:, 63], y[:, 63] = rho[0], rho[1]
        sums = self._bit_products(x, y, _COMPARISON)
        rows: list[list[RingArray]] = [[], [], [], [], []]
        with np.errstate(over="ignore"):
            for value, bit, share in zip(own, rho, sums, strict=True):
                planes = bit_planes(value)
                rows[0].append(value - share[:, 0])
                rows[1].append(planes[:63])
                rows[2].append(planes[63])
                rows[3].append(pack_bits(bit))
                rows[4].append(bit - _TWO * share[:, 1])
        return Delivery(tuple(np.stack(row) for row in rows), None)
