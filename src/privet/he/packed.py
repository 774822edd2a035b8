"""Encrypted arrays packed ``k`` values per Paillier ciphertext (:mod:`privet.he.packing`).

:func:`encrypt_packed` flattens an array (C order), encodes it in fixed point,
offsets each value by the bound ``B`` and packs ``k`` of them per plaintext; a
2048-bit key holds 34 slots of 60 bits for 32 fractional bits, values up to
``|x| <= 2^10`` and 16 headroom bits. What a packed array supports is what
slot-wise arithmetic allows without borrowing across slots:

* ``+`` with another packed array of the same shape, layout and key (the
  elementwise sum), or with a public array (encoded at the array's fractional
  bits and offset by its own magnitude);
* ``*`` by a public integer ``k >= 0`` (every slot times ``k``);
* :meth:`PackedEncryptedArray.fold`: all ciphertexts multiplied into one, whose
  slot ``j`` holds the sum of elements ``j, j + k, j + 2k, ...``; decrypt it and add
  the ``k`` slot values in the clear for the total. The decryptor so learns these
  ``k`` partial sums, not only the total.

Each result's slot bound is checked against the headroom before it is computed.
Sums of packed arrays are the cheap path for aggregation (federated averaging,
histograms); elementwise products by different scalars need one value per
ciphertext (:class:`~privet.he.arrays.EncryptedArray`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError
from privet.he._gmp import Mpz, gmpy2, mpz
from privet.he.arrays import (
    check_public_key,
    check_same_key,
    check_secret_key,
    resolve_randomness,
)
from privet.he.encoding import (
    DEFAULT_FRAC_BITS,
    check_frac_bits,
    check_within,
    decode_fixed,
    encode_bound,
    encode_fixed,
)
from privet.he.packing import DEFAULT_HEADROOM_BITS, PackingLayout, pack, unpack
from privet.he.paillier import PaillierPublicKey, PaillierSecretKey, raw_decrypt_many
from privet.he.randomness import Randomness

__all__ = ["PackedEncryptedArray", "decrypt_packed", "encrypt_packed"]


@dataclass(frozen=True, eq=False, repr=False)
class PackedEncryptedArray:
    """An array packed ``layout.slots`` values per ciphertext, with its public slot bounds.

    Attributes
    ----------
    public_key
        The key the ciphertexts are under.
    ciphertexts
        ``ceil(size / slots)`` ciphertexts (``gmpy2.mpz``).
    shape
        The array's shape (elements in C order fill the slots in order).
    frac_bits
        Fixed-point fractional bits.
    layout
        Slot width and count, the fresh value bound and the headroom.
    offset
        Every slot's content is its value plus ``offset``.
    upper
        Every slot's content is at most ``upper`` (``< 2^slot_bits``).
    """

    public_key: PaillierPublicKey
    ciphertexts: tuple[Mpz, ...]
    shape: tuple[int, ...]
    frac_bits: int
    layout: PackingLayout
    offset: int
    upper: int

    def __post_init__(self) -> None:
        check_public_key(self.public_key)
        check_frac_bits(self.frac_bits)
        if not isinstance(self.layout, PackingLayout):
            raise PrivacyError(f"layout must be a PackingLayout, got {type(self.layout).__name__}")
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in self.shape):
            raise PrivacyError(f"shape must hold non-negative ints, got {self.shape!r}")
        expected = self.layout.ciphertexts_for(self.size)
        if len(self.ciphertexts) != expected:
            raise PrivacyError(
                f"ciphertexts must number ceil(size / slots) = {expected}, "
                f"got {len(self.ciphertexts)}"
            )
        for name in ("offset", "upper"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise PrivacyError(f"{name} must be an int >= 0, got {value!r}")
        if self.offset > self.upper:
            raise PrivacyError(f"offset must be at most upper = {self.upper}, got {self.offset}")
        self.layout.check_upper(self.upper, "upper")

    __array_ufunc__ = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def headroom_left(self) -> int:
        """How many more fresh packed arrays this one can absorb by addition."""
        return (self.layout.capacity - 1 - self.upper) // (2 * self.layout.value_bound)

    def __repr__(self) -> str:
        return (
            f"PackedEncryptedArray(shape={self.shape}, ciphertexts={len(self.ciphertexts)}, "
            f"slots={self.layout.slots}x{self.layout.slot_bits} bits, "
            f"headroom_left={self.headroom_left}, key={self.public_key.fingerprint[:16]}...)"
        )

    def _derive(
        self, ciphertexts: list[Mpz], offset: int, upper: int, shape: tuple[int, ...] | None = None
    ) -> PackedEncryptedArray:
        return PackedEncryptedArray(
            self.public_key,
            tuple(ciphertexts),
            self.shape if shape is None else shape,
            self.frac_bits,
            self.layout,
            offset,
            upper,
        )

    def __add__(self, other: object) -> PackedEncryptedArray:
        n2 = self.public_key._n2
        if isinstance(other, PackedEncryptedArray):
            check_same_key(self.public_key, other.public_key, "the other operand")
            facts = (self.shape, self.frac_bits, self.layout)
            if (other.shape, other.frac_bits, other.layout) != facts:
                raise PrivacyError(
                    "packed operands must share shape, frac_bits and layout, got "
                    f"{(self.shape, self.frac_bits)} and {(other.shape, other.frac_bits)}"
                    + ("" if other.layout == self.layout else " with different layouts")
                )
            upper = self.upper + other.upper
            self.layout.check_upper(upper, "the packed sum")
            added = [a * b % n2 for a, b in zip(self.ciphertexts, other.ciphertexts, strict=True)]
            return self._derive(added, self.offset + other.offset, upper)
        if isinstance(other, np.ndarray | int | float | np.integer | np.floating | list | tuple):
            return self._add_public(other)
        raise PrivacyError(
            f"operand must be a PackedEncryptedArray or a public array, got {type(other).__name__}"
        )

    def _add_public(self, other: ArrayLike) -> PackedEncryptedArray:
        array = np.asarray(other)
        try:
            array = np.broadcast_to(array, self.shape)
        except ValueError:
            raise PrivacyError(
                f"public operand must broadcast to shape {self.shape}, got shape {array.shape}"
            ) from None
        ints, _ = encode_fixed(array, self.frac_bits)
        own = max(map(abs, ints)) if ints else 0
        upper = self.upper + 2 * own
        self.layout.check_upper(upper, "the packed sum")
        n, n2 = self.public_key._n, self.public_key._n2
        plaintexts = pack([v + own for v in ints], self.layout, padding=own)
        added = [
            c * (1 + mpz(m) * n) % n2 for c, m in zip(self.ciphertexts, plaintexts, strict=True)
        ]
        return self._derive(added, self.offset + own, upper)

    def __radd__(self, other: object) -> PackedEncryptedArray:
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self  # Python's sum() starts from 0
        return self.__add__(other)

    def __mul__(self, other: object) -> PackedEncryptedArray:
        if isinstance(other, bool) or not isinstance(other, int | np.integer):
            raise PrivacyError(
                f"packed arrays multiply by a public int >= 0 only, got {type(other).__name__}"
            )
        k = int(other)
        if k < 0:
            raise PrivacyError(
                f"packed arrays multiply by a public int >= 0 only (a negative factor would "
                f"borrow across slots), got {k}"
            )
        upper = self.upper * k
        self.layout.check_upper(upper, "the packed product")
        n2 = self.public_key._n2
        powered = [gmpy2.powmod(c, k, n2) for c in self.ciphertexts]
        return self._derive(powered, self.offset * k, upper)

    __rmul__ = __mul__

    def fold(self) -> PackedEncryptedArray:
        """One ciphertext whose slot ``j`` holds the sum of elements ``j, j + k, j + 2k, ...``.

        Its shape is ``(min(size, k),)``; decrypt it and ``.sum()`` in the clear for the
        sum of all elements.
        """
        count = len(self.ciphertexts)
        if count == 0:
            raise PrivacyError("fold needs at least one element, got an empty array")
        upper = self.upper * count
        self.layout.check_upper(upper, "the fold")
        n2 = self.public_key._n2
        total = functools.reduce(lambda a, b: a * b % n2, self.ciphertexts)
        shape = (min(self.size, self.layout.slots),)
        return self._derive([total], self.offset * count, upper, shape)

    def rerandomize(self, randomness: Randomness | None = None) -> PackedEncryptedArray:
        """The same slots under fresh randomness."""
        source = resolve_randomness(randomness, self.public_key)
        return self._derive(source.obfuscate(list(self.ciphertexts)), self.offset, self.upper)


def encrypt_packed(
    public_key: PaillierPublicKey,
    values: ArrayLike,
    *,
    bound: float,
    frac_bits: int = DEFAULT_FRAC_BITS,
    headroom_bits: int = DEFAULT_HEADROOM_BITS,
    randomness: Randomness | None = None,
) -> PackedEncryptedArray:
    """Encrypt an array of reals packed many values per ciphertext.

    Parameters
    ----------
    public_key
        The key to encrypt under (a secret key is refused).
    values
        Integers or finite floats, any shape.
    bound
        The owner's public bound on ``|x|``; values beyond it are refused.
    frac_bits
        Fixed-point fractional bits (default 32).
    headroom_bits
        ``h``: sums of up to ``2^h`` such arrays are allowed (default 16).
    randomness
        Source of fresh ``r^n`` factors; ``None`` is plain Paillier.
    """
    key = check_public_key(public_key)
    frac_bits = check_frac_bits(frac_bits)
    value_bound = encode_bound(bound, frac_bits)
    check_within(value_bound, key.max_int, "the declared bound")
    layout = PackingLayout.for_key(key.bits, value_bound, headroom_bits)
    ints, shape = encode_fixed(values, frac_bits, bound=value_bound)
    plaintexts = pack([v + value_bound for v in ints], layout, padding=value_bound)
    source = resolve_randomness(randomness, key)
    n = key._n
    fresh = source.obfuscate([1 + mpz(m) * n for m in plaintexts])
    return PackedEncryptedArray(
        key, tuple(fresh), shape, frac_bits, layout, value_bound, 2 * value_bound
    )


def decrypt_packed(
    secret_key: PaillierSecretKey, packed: PackedEncryptedArray
) -> NDArray[np.float64]:
    """The float64 array ``packed`` holds.

    Raises
    ------
    PrivacyError
        ``packed`` is under another key, or a plaintext does not unpack within
        its tracked slot bounds (a corrupted ciphertext).
    """
    key = check_secret_key(secret_key)
    if not isinstance(packed, PackedEncryptedArray):
        raise PrivacyError(f"packed must be a PackedEncryptedArray, got {type(packed).__name__}")
    check_same_key(key.public_key, packed.public_key, "packed")
    residues: list[Any] = raw_decrypt_many(key, list(packed.ciphertexts))
    values = unpack(
        [int(r) for r in residues], packed.layout, packed.offset, packed.upper, packed.size
    )
    return decode_fixed(values, packed.frac_bits, packed.shape)
