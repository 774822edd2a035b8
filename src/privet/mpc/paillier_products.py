"""Two-party products of private values under Paillier: the cross terms of dealer-free triples.

One party, the *encryptor* ``E``, holds integers ``x``; the other, the *multiplier* ``M``,
holds integers ``y``. Afterwards they hold additive shares modulo ``2^64`` (or XOR shares
of the parity) of public bilinear forms in ``x`` and ``y``, and neither has learnt anything
about the other's values (semi-honest parties):

1. ``E`` encrypts its values under its own Paillier key and sends the ciphertexts;
2. ``M`` raises them to its values and multiplies them together (``Enc(x)^y = Enc(x y)``,
   ``Enc(u) Enc(v) = Enc(u + v)``), so that each slot of a reply holds one bilinear
   form ``X``; it multiplies in a fresh encryption of a uniform mask ``s`` per slot (which
   also rerandomizes the reply), sends the replies back and keeps ``-s``;
3. ``E`` decrypts and reads ``X + s`` in each slot; ``(X + s) + (-s) = X``.

This is Gilboa's two-party sharing of a product ("Two Party RSA Key Generation", CRYPTO
1999, there with oblivious transfer) done with an additively homomorphic scheme, as in the
HE-based triple generation of Mohassel and Zhang, "SecureML", IEEE S&P 2017, §IV-B, and of
Demmler, Schneider and Zohner, "ABY", NDSS 2015. Replies are packed many to a plaintext
(Bianchi, Piva and Barni, IEEE TIFS 5(1), 2010; :mod:`privet.he.packing`).

Masks. A form ``X < 2^B`` is masked by ``s`` uniform on ``[0, 2^L)``, ``L = max(B, 64) +
sigma`` for ring shares (``L = B + sigma`` for parities), so the statistical distance
between what ``E`` sees for any two values of ``y`` is at most ``2^(B - L) <= 2^-sigma``,
and ``-s mod 2^64`` (``s mod 2``) is exactly uniform: both shares are uniform. A slot is
``L + 1`` bits wide and a plaintext holds ``(|n| - 1) // (L + 1)`` slots, so nothing
is ever reduced modulo ``n``. The fresh mask encryption makes a reply's Paillier
randomness uniform too; without it ``E``, who can extract the randomness of a ciphertext
under its own key, could search for a 64-bit ``y`` in ``r^y``.

Layouts. :func:`bilinear_products`: per *unit* (an element), outputs ``O_o = sum_t
W[o][t] x_t y_t`` for a public weight matrix ``W``; ``E`` encrypts each ``x_t`` already
weighted and shifted into its unit's slots (one ciphertext per term, whatever ``W``), and
``M`` multiplies a reply per group of units. :func:`matrix_products`: ``Z = X @ Y``; ``E``
packs the columns of ``X`` (one ciphertext per column and block of rows) and ``M`` computes
each column of a block as one multi-exponentiation (Straus' interleaved windows,
:func:`multi_power`, against the plain :func:`multi_power_naive`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np

from privet.errors import PrivacyError
from privet.he._gmp import Mpz, RandomBytes, gmpy2, mpz
from privet.he.paillier import (
    PaillierPublicKey,
    check_ciphertext,
    generate_keypair,
    raw_decrypt_many,
)
from privet.he.randomness import CrtRandomness, DjnRandomness, NaiveRandomness, Randomness
from privet.mpc.prg import SEED_BYTES, Prg
from privet.mpc.ring import RING_BITS, RingArray

__all__ = [
    "MIN_STATISTICAL_BITS",
    "BilinearForm",
    "Ciphertexts",
    "EncryptionRandomness",
    "PartyTraffic",
    "ProductParty",
    "Reduce",
    "SlotLayout",
    "bilinear_products",
    "matrix_products",
    "multi_power",
    "multi_power_naive",
    "slot_layout",
]

#: The floor on ``sigma``: masks hide every form up to a statistical distance of ``2^-40``.
MIN_STATISTICAL_BITS: Final = 40
_RING_MASK: Final = (1 << RING_BITS) - 1
_MAX_WINDOW: Final = 8
# Straus' tables hold k 2^w ciphertexts: 2^16 of them is 32 MiB at 2048-bit keys.
_MAX_TABLE: Final = 1 << 16


class Reduce(StrEnum):
    """What the parties keep of a slot: shares modulo ``2^64``, or XOR shares of its parity."""

    RING = "ring"
    PARITY = "parity"


class EncryptionRandomness(StrEnum):
    """Where fresh Paillier randomness comes from (:mod:`privet.he.randomness`).

    ``EXACT``: ``r^n`` for uniform ``r`` (CRT for the key holder's own encryptions, plain
    ``r^n`` for masks under the peer's key); DCRA only. ``DJN``: Damgard-Jurik-Nielsen short
    exponents for both, under their extra assumption (:class:`~privet.he.DjnRandomness`).
    Measured once at 2048 bits: 0.5 ms per fresh factor by DJN, 2.4 ms by CRT, 8.1 ms by
    plain ``r^n``.
    """

    EXACT = "exact"
    DJN = "djn"


@dataclass(frozen=True)
class SlotLayout:
    """How replies are packed: forms below ``2^bound_bits``, masks on ``[0, 2^mask_bits)``,
    slots of ``mask_bits + 1`` bits, ``slots`` of them per plaintext."""

    bound_bits: int
    mask_bits: int
    slots: int

    @property
    def slot_bits(self) -> int:
        return self.mask_bits + 1


def slot_layout(
    key_bits: int, bound_bits: int, reduce: Reduce, statistical_bits: int, group: int = 1
) -> SlotLayout:
    """The packing for forms below ``2^bound_bits``; ``group`` slots must share a plaintext.

    Raises
    ------
    PrivacyError
        A key too small for ``group`` slots of form plus mask.
    """
    floor = RING_BITS if reduce is Reduce.RING else 0
    mask_bits = max(bound_bits, floor) + statistical_bits
    slots = (key_bits - 1) // (mask_bits + 1)
    if slots < group:
        needed = group * (mask_bits + 1) + 1
        raise PrivacyError(
            f"key_bits must be >= {needed} to hold {group} slot(s) of a {bound_bits}-bit product "
            f"and its {mask_bits}-bit mask, got {key_bits}"
        )
    return SlotLayout(bound_bits, mask_bits, slots - slots % group)


@dataclass(frozen=True)
class BilinearForm:
    """Per unit, outputs ``O_o = sum_t weights[o][t] x_t y_t`` with ``x_t < 2^x_bits``,
    ``y_t < 2^y_bits`` and non-negative public weights."""

    weights: tuple[tuple[int, ...], ...]
    x_bits: int
    y_bits: int
    reduce: Reduce

    @property
    def outputs(self) -> int:
        return len(self.weights)

    @property
    def terms(self) -> int:
        return len(self.weights[0])

    @property
    def bound_bits(self) -> int:
        """Bits of the largest output: ``max_o sum_t W[o][t] (2^x_bits - 1)(2^y_bits - 1)``."""
        top = ((1 << self.x_bits) - 1) * ((1 << self.y_bits) - 1)
        return max(sum(row) * top for row in self.weights).bit_length()


@dataclass(frozen=True, eq=False)
class Ciphertexts:
    """One message: ciphertexts under the key with ``fingerprint``, each ``width`` bytes."""

    fingerprint: str
    values: tuple[Mpz, ...]
    width: int

    @property
    def nbytes(self) -> int:
        return self.width * len(self.values)


@dataclass
class PartyTraffic:
    """What one party sent, and its Paillier work."""

    ciphertexts_sent: int = 0
    bytes_sent: int = 0
    encryptions: int = 0
    decryptions: int = 0


def multi_power(bases: Sequence[Mpz], exponents: RingArray, modulus: Mpz) -> list[Mpz]:
    """``prod_l bases[l]^exponents[l, c] mod modulus`` for every column ``c``.

    Straus' simultaneous exponentiation (Menezes, van Oorschot and Vanstone, *Handbook of
    Applied Cryptography*, Alg. 14.88) with one window table ``bases[l]^d``, ``d < 2^w``,
    per base (Moller's interleaving, "Algorithms for multi-exponentiation", SAC 2001),
    shared by all columns: per column, 64 squarings and at most ``k ceil(64 / w)``
    multiplications; ``w`` minimizes the total with the tables' cost.
    """
    k, columns = exponents.shape
    if k != len(bases):
        raise PrivacyError(f"exponents must have {len(bases)} rows, got {k}")
    candidates = [w for w in range(1, _MAX_WINDOW + 1) if k << w <= _MAX_TABLE] or [1]
    w = min(candidates, key=lambda w: k * (1 << w) + columns * k * math.ceil(RING_BITS / w))
    windows = math.ceil(RING_BITS / w)
    tables = []
    for base in bases:
        row = [mpz(1), mpz(base)]
        for _ in range(2, 1 << w):
            row.append(row[-1] * base % modulus)
        tables.append(row)
    digit = np.uint64((1 << w) - 1)
    digits = [((exponents >> np.uint64(w * i)) & digit).T.tolist() for i in range(windows)]
    powmod, lift = gmpy2.powmod, 1 << w
    results: list[Mpz] = []
    for c in range(columns):
        acc: Mpz = None
        for i in reversed(range(windows)):
            if acc is not None:
                acc = powmod(acc, lift, modulus)
            for table, d in zip(tables, digits[i][c], strict=True):
                if d:
                    acc = table[d] if acc is None else acc * table[d] % modulus
        results.append(mpz(1) if acc is None else acc)
    return results


def multi_power_naive(bases: Sequence[Mpz], exponents: RingArray, modulus: Mpz) -> list[Mpz]:
    """The reference for :func:`multi_power`: one ``powmod`` per base and column."""
    results = []
    for column in exponents.T.tolist():
        acc = mpz(1)
        for base, e in zip(bases, column, strict=True):
            acc = acc * gmpy2.powmod(base, e, modulus) % modulus
        results.append(acc)
    return results


class ProductParty:
    """One party of the product protocols: its own key pair, share stream and coins.

    The secret key never leaves the object; the peer's public key arrives through
    :meth:`meet`. Its methods are the protocol steps: messages in, messages out.

    Parameters
    ----------
    index
        0 or 1.
    key_bits, insecure_for_tests
        Its Paillier modulus (:func:`privet.he.generate_keypair`).
    randomness
        Fresh encryption randomness (:class:`EncryptionRandomness`).
    seed
        32 bytes keying the :class:`~privet.mpc.prg.Prg` streams its shares and its masks
        come from (two streams, so neither depends on how much the other was used).
    random_bytes
        Its coins for encryption randomness (``os.urandom`` unless testing; how many it
        takes depends on the key, so the masks do not come from it).
    """

    def __init__(
        self,
        index: int,
        *,
        key_bits: int,
        insecure_for_tests: bool,
        randomness: EncryptionRandomness,
        seed: bytes,
        random_bytes: RandomBytes,
    ) -> None:
        public, secret = generate_keypair(key_bits, insecure_for_tests=insecure_for_tests)
        self.index = index
        self.public_key = public
        self._secret_key = secret
        self._kind = randomness
        self._random_bytes = random_bytes
        self._own: Randomness = (
            CrtRandomness(secret, random_bytes=random_bytes)
            if randomness is EncryptionRandomness.EXACT
            else DjnRandomness(public, random_bytes=random_bytes)
        )
        streams = Prg(seed).words((2, SEED_BYTES // 8))
        self._shares = Prg(streams[0].tobytes())
        self._mask_stream = Prg(streams[1].tobytes())
        self._peer: PaillierPublicKey | None = None
        self._masking: Randomness | None = None
        self.traffic = PartyTraffic()

    def meet(self, peer: PaillierPublicKey) -> None:
        """Take the peer's public key (the masks of replies are encrypted under it)."""
        if not isinstance(peer, PaillierPublicKey) or peer == self.public_key:
            raise PrivacyError(f"peer must be the other party's public key, got {peer!r:.80}")
        self._peer = peer
        self._masking = (
            NaiveRandomness(peer, random_bytes=self._random_bytes)
            if self._kind is EncryptionRandomness.EXACT
            else DjnRandomness(peer, random_bytes=self._random_bytes)
        )

    def uniform(self, shape: tuple[int, ...]) -> RingArray:
        """This party's own uniform ring elements (its shares and secret bits)."""
        return self._shares.words(shape)

    # -- the encryptor's steps -----------------------------------------------------------------

    def _send(self, plaintexts: list[int]) -> Ciphertexts:
        key = self.public_key
        n, n2 = mpz(key.n), mpz(key.n_squared)
        values = self._own.obfuscate([(1 + mpz(m) * n) % n2 for m in plaintexts])
        self.traffic.encryptions += len(values)
        return self._message(key, values)

    def _message(self, key: PaillierPublicKey, values: list[Mpz]) -> Ciphertexts:
        message = Ciphertexts(key.fingerprint, tuple(values), key.ciphertext_bytes)
        self.traffic.ciphertexts_sent += len(values)
        self.traffic.bytes_sent += message.nbytes
        return message

    def encrypt_units(self, x: RingArray, form: BilinearForm, layout: SlotLayout) -> Ciphertexts:
        """Step 1 of :func:`bilinear_products`: ``Enc(x[u, t] sum_o W[o][t] 2^(b slot(u, o)))``."""
        group, b = layout.slots // form.outputs, layout.slot_bits
        placed = [
            [
                sum(w << (b * (pos * form.outputs + o)) for o, w in enumerate(column))
                for column in zip(*form.weights, strict=True)
            ]
            for pos in range(group)
        ]
        rows = x.tolist()
        return self._send(
            [v * placed[u % group][t] for u, row in enumerate(rows) for t, v in enumerate(row)]
        )

    def encrypt_columns(self, x: RingArray, layout: SlotLayout) -> Ciphertexts:
        """Step 1 of :func:`matrix_products`: ``x`` (B, m, k); per batch, block of
        ``slots`` rows and column ``l``, the block's entries of column ``l`` packed."""
        s, b = layout.slots, layout.slot_bits
        plaintexts = []
        for matrix in x:
            columns = matrix.T.tolist()
            for start in range(0, matrix.shape[0], s):
                for column in columns:
                    plaintexts.append(
                        sum(v << (b * j) for j, v in enumerate(column[start : start + s]))
                    )
        return self._send(plaintexts)

    def read_slots(self, reply: Ciphertexts, layout: SlotLayout, per_reply: int) -> list[int]:
        """Step 3: decrypt the replies and read ``per_reply`` slots of each (a slot no unit
        filled reads 0)."""
        if not isinstance(reply, Ciphertexts):
            raise PrivacyError(f"reply must be Ciphertexts, got {type(reply).__name__}")
        self._check(reply, self.public_key, len(reply.values))
        plaintexts = raw_decrypt_many(self._secret_key, list(reply.values))
        self.traffic.decryptions += len(plaintexts)
        b = layout.slot_bits
        mask = (1 << b) - 1
        values: list[int] = []
        for plaintext in plaintexts:
            if plaintext >> (b * per_reply):
                raise PrivacyError(
                    f"replies must fill at most {per_reply} slots of {b} bits, got a plaintext "
                    f"of {int(plaintext).bit_length()} bits: corrupted, or under another key"
                )
            values.extend(int(plaintext >> (b * j)) & mask for j in range(per_reply))
        return values

    # -- the multiplier's steps ----------------------------------------------------------------

    def _check(self, message: Ciphertexts, key: PaillierPublicKey, count: int) -> None:
        if not isinstance(message, Ciphertexts) or message.fingerprint != key.fingerprint:
            raise PrivacyError(
                f"ciphertexts must be under the key {key.fingerprint[:16]}..., got {message!r:.80}"
            )
        if len(message.values) != count:
            raise PrivacyError(f"message must hold {count} ciphertexts, got {len(message.values)}")
        for value in message.values:
            check_ciphertext(key, value)

    def _masks(self, count: int, bits: int) -> list[int]:
        size = (bits + 7) // 8
        raw = self._mask_stream.words((-(-size * count // 8),)).tobytes()
        excess = 8 * size - bits
        return [
            int.from_bytes(raw[i * size : (i + 1) * size], "big") >> excess for i in range(count)
        ]

    def _masked(self, products: list[Mpz], masks: list[list[int]], b: int) -> Ciphertexts:
        """Multiply each product by a fresh encryption of its packed masks, under the peer's key."""
        if self._peer is None or self._masking is None:
            raise PrivacyError("meet must come first: the peer's public key is needed")
        n, n2 = mpz(self._peer.n), mpz(self._peer.n_squared)
        packed = [sum(s << (b * j) for j, s in enumerate(slot_masks)) for slot_masks in masks]
        fresh = self._masking.obfuscate([(1 + mpz(m) * n) % n2 for m in packed])
        return self._message(self._peer, [p * f % n2 for p, f in zip(products, fresh, strict=True)])

    def answer_units(
        self, request: Ciphertexts, y: RingArray, form: BilinearForm, layout: SlotLayout
    ) -> tuple[Ciphertexts, list[int]]:
        """Step 2 of :func:`bilinear_products`: the masked replies and the masks (unit, output)."""
        if self._peer is None:
            raise PrivacyError("meet must come first: the peer's public key is needed")
        units, terms = y.shape
        self._check(request, self._peer, units * terms)
        n2, powmod = mpz(self._peer.n_squared), gmpy2.powmod
        group = layout.slots // form.outputs
        masks = self._masks(units * form.outputs, layout.mask_bits)
        products, grouped = [], []
        rows, values = y.tolist(), request.values
        for start in range(0, units, group):
            acc = mpz(1)
            for u in range(start, min(start + group, units)):
                for t, e in enumerate(rows[u]):
                    if e:
                        c = values[u * terms + t]
                        acc = acc * (c if e == 1 else powmod(c, e, n2)) % n2
            products.append(acc)
            stop = min(start + group, units) * form.outputs
            grouped.append(masks[start * form.outputs : stop])
        return self._masked(products, grouped, layout.slot_bits), masks

    def answer_columns(
        self, request: Ciphertexts, y: RingArray, layout: SlotLayout, rows: int
    ) -> tuple[Ciphertexts, list[int]]:
        """Step 2 of :func:`matrix_products`: ``y`` (B, k, n) against ``rows`` rows of ``x``;
        the replies (batch, block, column) and the masks in (batch, row, column) order."""
        if self._peer is None:
            raise PrivacyError("meet must come first: the peer's public key is needed")
        batches, k, columns = y.shape
        s = layout.slots
        blocks = -(-rows // s)
        self._check(request, self._peer, batches * blocks * k)
        n2 = mpz(self._peer.n_squared)
        masks = self._masks(batches * rows * columns, layout.mask_bits)
        grid = np.array(masks, dtype=object).reshape(batches, rows, columns)
        products, grouped = [], []
        for batch in range(batches):
            for block in range(blocks):
                first = (batch * blocks + block) * k
                bases = request.values[first : first + k]
                products.extend(multi_power(bases, y[batch], n2))
                block_masks = grid[batch, block * s : (block + 1) * s].T.tolist()
                grouped.extend(block_masks)  # one list of row masks per column
        return self._masked(products, grouped, layout.slot_bits), masks


def _shares(
    values: list[int], masks: list[int], reduce: Reduce, shape: tuple[int, ...]
) -> tuple[RingArray, RingArray]:
    """The encryptor's ``X + s`` and the multiplier's ``-s``, reduced as ``reduce`` says."""
    if reduce is Reduce.PARITY:
        mine = [v & 1 for v in values]
        theirs = [s & 1 for s in masks]
    else:
        mine = [v & _RING_MASK for v in values]
        theirs = [-s & _RING_MASK for s in masks]
    return (
        np.array(mine, dtype=np.uint64).reshape(shape),
        np.array(theirs, dtype=np.uint64).reshape(shape),
    )


def bilinear_products(
    encryptor: ProductParty,
    multiplier: ProductParty,
    x: RingArray,
    y: RingArray,
    form: BilinearForm,
    statistical_bits: int,
) -> tuple[RingArray, RingArray]:
    """Shares of ``O[u, o] = sum_t W[o][t] x[u, t] y[u, t]`` (``x``, ``y``: (units, terms)):
    the encryptor's and the multiplier's, each (units, outputs)."""
    units = x.shape[0]
    layout = slot_layout(
        encryptor.public_key.bits, form.bound_bits, form.reduce, statistical_bits, form.outputs
    )
    request = encryptor.encrypt_units(x, form, layout)
    reply, masks = multiplier.answer_units(request, y, form, layout)
    values = encryptor.read_slots(reply, layout, layout.slots)
    return _shares(values[: units * form.outputs], masks, form.reduce, (units, form.outputs))


def matrix_products(
    holder_x: ProductParty,
    holder_y: ProductParty,
    x: RingArray,
    y: RingArray,
    statistical_bits: int,
) -> tuple[RingArray, RingArray]:
    """Shares of ``x @ y mod 2^64`` for ``x`` (B, m, k) held by ``holder_x`` and ``y``
    (B, k, n) held by ``holder_y``: ``holder_x``'s and ``holder_y``'s, each (B, m, n).

    The party whose side of the product is longer encrypts (its matrix is packed along
    that side): fewer blocks, so fewer ciphertexts and exponentiations.
    """
    batches, m, k = (int(d) for d in x.shape)
    n = int(y.shape[2])
    bound = k * _RING_MASK * _RING_MASK
    key_bits = holder_x.public_key.bits
    layout = slot_layout(key_bits, bound.bit_length(), Reduce.RING, statistical_bits)

    def cost(packed: int, other: int) -> int:
        # In 64ths of an encryption, per block: k encryptions, `other` replies (a mask
        # encryption and a decryption, about 4 encryptions) and `other` multi-exponentiations
        # of k 64-bit exponents (about k / 64 encryptions each).
        return -(-packed // layout.slots) * (64 * k + other * (256 + k))

    transposed = cost(n, m) < cost(m, n)
    if transposed:
        encryptor, multiplier = holder_y, holder_x
        left, right = np.swapaxes(y, 1, 2), np.swapaxes(x, 1, 2)
    else:
        encryptor, multiplier, left, right = holder_x, holder_y, x, y
    rows = left.shape[1]
    request = encryptor.encrypt_columns(left, layout)
    reply, masks = multiplier.answer_columns(request, right, layout, rows)
    values = encryptor.read_slots(reply, layout, layout.slots)
    # Replies come (batch, block, column) with a block's rows in slots: to (batch, row, column).
    columns = right.shape[2]
    grid = np.array(values, dtype=object).reshape(batches, -1, columns, layout.slots)
    ordered = grid.transpose(0, 1, 3, 2).reshape(batches, -1, columns)[:, :rows]
    mine, theirs = _shares(ordered.ravel().tolist(), masks, Reduce.RING, ordered.shape)
    if transposed:
        return np.swapaxes(theirs, 1, 2).copy(), np.swapaxes(mine, 1, 2).copy()
    return mine, theirs
