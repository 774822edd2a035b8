"""The dealer (a "crypto provider"): correlated randomness for the online phase.

A trusted third party that never sees inputs hands the computing parties
shares of random values with a known relation (Beaver, "Efficient
Multiparty Protocols Using Circuit Randomization", CRYPTO 1991): triples
``c = a * b`` (elementwise, matrix product, convolution), truncation pairs, and the
masks and bit decompositions comparisons need (Makri et al., "Rabbit:
Efficient Comparison for Secure Multi-Party Computation", FC 2021).

Shares are seed-compressed: party ``i < n - 1`` draws its share of every
item from a :class:`~privet.mpc.prg.Prg` keyed by a seed it shares with the
dealer, so only the last party's shares (value minus the others) must be
sent. :class:`DealerStats` counts items and those bytes.

The dealer is seeded: a fixed seed reproduces a simulation exactly (and the
multi-process run that must match it bit for bit); ``None`` draws it from
the OS CSPRNG, as a real deployment must.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from privet.errors import PrivacyError
from privet.mpc.prg import SEED_BYTES, Prg, fresh_seed
from privet.mpc.ring import LOW_MASK, TOP_BIT, ConvGeometry, RingArray, ring_conv2d, ring_matmul

__all__ = [
    "ComparisonMask",
    "Dealer",
    "DealerStats",
    "InputMask",
    "Triple",
    "TruncationPair",
    "pack_bits",
    "packed_words",
    "unpack_bits",
]


def packed_words(count: int) -> int:
    """Words needed to pack ``count`` bits, 64 to a word."""
    return (count + 63) // 64


class InputMask(NamedTuple):
    """Shares of a uniform ``r`` and, where the input's owner is local, ``r`` itself
    (``None`` in a process that does not play the owner)."""

    shares: RingArray
    value: RingArray | None


class Triple(NamedTuple):
    """Shares (party axis first) of ``a``, ``b`` and ``c = a op b``."""

    a: RingArray
    b: RingArray
    c: RingArray


class TruncationPair(NamedTuple):
    """Shares of a uniform ``r``, of ``(r mod 2^63) >> f`` and of the bit ``r >> 63``."""

    r: RingArray
    low_shifted: RingArray
    high_bit: RingArray


class ComparisonMask(NamedTuple):
    """What one batch of ``N`` sign extractions needs (Rabbit, Makri et al. 2021).

    ``r``: ring shares of a uniform mask (shape of the values);
    ``low_bits``: XOR shares of the bits 0..62 of ``r``, packed (63, W);
    ``high_bit``: XOR shares of bit 63 of ``r``, packed (W,);
    ``rho_bits`` / ``rho``: a uniform bit per value as packed XOR shares (W,)
    and as ring shares (N,), for converting the result to arithmetic shares.
    """

    r: RingArray
    low_bits: RingArray
    high_bit: RingArray
    rho_bits: RingArray
    rho: RingArray


@dataclass
class DealerStats:
    """What the dealer produced: items, and the bytes it must send (the last party's)."""

    items: int = 0
    bytes_sent: int = 0


def pack_bits(bits: RingArray) -> RingArray:
    """Pack 0/1 values along the last axis, 64 per ``uint64`` word (bit ``k`` of word ``w``
    is element ``64 w + k``)."""
    count = bits.shape[-1]
    padded = np.zeros((*bits.shape[:-1], packed_words(count) * 64), dtype=np.uint8)
    padded[..., :count] = bits.astype(np.uint8)
    packed = np.packbits(padded, axis=-1, bitorder="little")
    words: RingArray = packed.view("<u8").astype(np.uint64)
    return words


def unpack_bits(words: RingArray, count: int) -> RingArray:
    """Inverse of :func:`pack_bits`: the first ``count`` bits as 0/1 ``uint64``."""
    raw = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    bits = np.unpackbits(raw, axis=-1, bitorder="little")[..., :count]
    unpacked: RingArray = bits.astype(np.uint64)
    return unpacked


class Dealer:
    """Correlated randomness for ``num_parties`` parties, shares seed-compressed.

    Parameters
    ----------
    num_parties
        ``n >= 2`` computing parties.
    seed
        32 bytes fixing everything the dealer draws (simulation and tests);
        ``None`` draws it from the OS CSPRNG.
    """

    def __init__(self, num_parties: int, seed: bytes | None = None) -> None:
        if isinstance(num_parties, bool) or not isinstance(num_parties, int) or num_parties < 2:
            raise PrivacyError(f"num_parties must be an integer >= 2, got {num_parties!r}")
        master = Prg(seed if seed is not None else fresh_seed())
        seeds = master.words((num_parties + 1, SEED_BYTES // 8))
        self.num_parties = num_parties
        self._secret = Prg(seeds[0].tobytes())
        self._party_streams = [Prg(row.tobytes()) for row in seeds[1:num_parties]]
        self.stats = DealerStats()

    # -- sharing -------------------------------------------------------------------------------

    def _share(self, value: RingArray) -> RingArray:
        """Additive shares of ``value`` (party axis first); the last party's is the rest."""
        shares = np.empty((self.num_parties, *value.shape), dtype=np.uint64)
        total = np.zeros(value.shape, dtype=np.uint64)
        for party, stream in enumerate(self._party_streams):
            shares[party] = stream.words(value.shape)
            total += shares[party]
        shares[-1] = value - total
        self._count(value)
        return shares

    def _share_bits(self, value: RingArray) -> RingArray:
        """XOR shares of packed bits ``value``."""
        shares = np.empty((self.num_parties, *value.shape), dtype=np.uint64)
        total = np.zeros(value.shape, dtype=np.uint64)
        for party, stream in enumerate(self._party_streams):
            shares[party] = stream.words(value.shape)
            total ^= shares[party]
        shares[-1] = value ^ total
        self._count(value)
        return shares

    def _count(self, value: RingArray) -> None:
        self.stats.items += 1
        self.stats.bytes_sent += value.nbytes

    def _uniform(self, shape: Sequence[int]) -> RingArray:
        return self._secret.words(tuple(shape))

    # -- correlations --------------------------------------------------------------------------

    def input_mask(self, shape: tuple[int, ...], owner: int) -> InputMask:
        """A mask for secret-sharing ``owner``'s input: the owner opens ``x - r`` to all."""
        if isinstance(owner, bool) or not isinstance(owner, int):
            raise PrivacyError(f"owner must be a party index, got {owner!r}")
        if not 0 <= owner < self.num_parties:
            raise PrivacyError(f"owner must be in [0, {self.num_parties - 1}], got {owner}")
        r = self._uniform(shape)
        shares = self._share(r)
        self.stats.bytes_sent += r.nbytes  # r itself also goes to the owner
        return InputMask(shares, r)

    def mul_triple(self, left_shape: tuple[int, ...], right_shape: tuple[int, ...]) -> Triple:
        """``c = a * b`` elementwise with numpy broadcasting (``c`` has the broadcast shape)."""
        a, b = self._uniform(left_shape), self._uniform(right_shape)
        return Triple(self._share(a), self._share(b), self._share(a * b))

    def matmul_triple(self, left_shape: tuple[int, ...], right_shape: tuple[int, ...]) -> Triple:
        """``c = a @ b`` in the ring (numpy matmul semantics)."""
        a, b = self._uniform(left_shape), self._uniform(right_shape)
        return Triple(self._share(a), self._share(b), self._share(ring_matmul(a, b)))

    def conv_triple(
        self,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, ...],
        geometry: ConvGeometry,
    ) -> Triple:
        """``c = conv2d(a, b)`` in the ring (:func:`~privet.mpc.ring.ring_conv2d`): images
        ``(N, C, H, W)``, kernels ``(O, C, kh, kw)``."""
        a, b = self._uniform(image_shape), self._uniform(kernel_shape)
        return Triple(self._share(a), self._share(b), self._share(ring_conv2d(a, b, geometry)))

    def and_triples(self, shape: tuple[int, ...]) -> Triple:
        """Packed bitwise triples ``c = a & b`` as XOR shares."""
        a, b = self._uniform(shape), self._uniform(shape)
        return Triple(self._share_bits(a), self._share_bits(b), self._share_bits(a & b))

    def truncation_pair(self, shape: tuple[int, ...], fractional_bits: int) -> TruncationPair:
        """Shares of ``r``, ``(r mod 2^63) >> f`` and ``r >> 63`` for :func:`truncate`."""
        r = self._uniform(shape)
        low_shifted = (r & LOW_MASK) >> np.uint64(fractional_bits)
        return TruncationPair(self._share(r), self._share(low_shifted), self._share(r >> TOP_BIT))

    def comparison_mask(self, count: int) -> ComparisonMask:
        """Randomness for one batch of ``count`` sign extractions (:class:`ComparisonMask`)."""
        r = self._uniform((count,))
        positions = np.arange(63, dtype=np.uint64)[:, None]
        low_bits = pack_bits((r[None, :] >> positions) & np.uint64(1))
        rho = self._uniform((count,)) & np.uint64(1)
        return ComparisonMask(
            self._share(r),
            self._share_bits(low_bits),
            self._share_bits(pack_bits(r >> TOP_BIT)),
            self._share_bits(pack_bits(rho)),
            self._share(rho),
        )
