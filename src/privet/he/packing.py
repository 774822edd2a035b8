"""Packing many bounded integers into one Paillier plaintext, with carries ruled out by headroom.

A plaintext of ``k`` slots of ``b`` bits holds ``sum_j s_j 2^(b j)`` with every
slot content ``0 <= s_j < 2^b``. A value ``|v| <= B`` enters as ``s = v + B`` (an
offset makes it non-negative), so a fresh slot holds at most ``2B``. Slots are
``b = bitlen(2B) + h`` bits wide: ``h`` headroom bits let up to ``2^h`` fresh
packed plaintexts be added slot by slot, since ``2^h 2B < 2^b``, with no carry
from one slot into the next. The packed integer stays below ``2^(k b) <= 2^(|n| - 1) < n``,
so it is never reduced mod ``n``.

The headroom is counted, not hoped for: a packed array tracks, for all its
slots, the public ``offset`` (the total of offsets its contents carry: value =
content - offset) and ``upper`` (a bound on every content). Adding two arrays
adds both; a scalar ``k >= 0`` multiplies both; an operation whose ``upper``
would reach ``2^b`` is refused before it runs. Unpacking refuses a plaintext with
bits above slot ``k`` or a slot above ``upper`` (a corrupted ciphertext or the
wrong key: garbage passes a slot check with probability about ``2^-h``).

Packing amortizes Paillier's cost over ``k`` values per ciphertext (Bianchi,
Piva and Barni, "Composite signal representation for fast and storage-efficient
processing of encrypted signals", IEEE TIFS 5(1), 2010).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from privet.errors import PrivacyError
from privet.he.encoding import describe_magnitude

__all__ = ["DEFAULT_HEADROOM_BITS", "PackingLayout", "pack", "unpack"]

#: Headroom bits by default: sums of up to 2^16 = 65,536 fresh packed arrays.
DEFAULT_HEADROOM_BITS: Final = 16
MAX_HEADROOM_BITS: Final = 1024


def _check_int(value: object, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PrivacyError(f"{name} must be an int, got {type(value).__name__}")
    if high is None and value < low:
        raise PrivacyError(f"{name} must be >= {low}, got {value}")
    if high is not None and not low <= value <= high:
        raise PrivacyError(f"{name} must be in [{low}, {high}], got {value}")
    return value


@dataclass(frozen=True)
class PackingLayout:
    """How values are laid out in a plaintext.

    Attributes
    ----------
    slot_bits
        ``b``: bits per slot, ``bitlen(2 value_bound) + headroom_bits``.
    slots
        ``k``: slots per plaintext, ``(|n| - 1) // b``.
    value_bound
        ``B``: fresh values satisfy ``|v| <= B`` (encoded integers).
    headroom_bits
        ``h``: sums of up to ``2^h`` fresh packed arrays cannot carry.
    """

    slot_bits: int
    slots: int
    value_bound: int
    headroom_bits: int

    def __post_init__(self) -> None:
        _check_int(self.value_bound, "value_bound", 1)
        _check_int(self.headroom_bits, "headroom_bits", 0, MAX_HEADROOM_BITS)
        expected = (2 * self.value_bound).bit_length() + self.headroom_bits
        if self.slot_bits != expected:
            raise PrivacyError(
                f"slot_bits must be bitlen(2 value_bound) + headroom_bits = {expected}, "
                f"got {self.slot_bits!r}"
            )
        _check_int(self.slots, "slots", 1)

    @classmethod
    def for_key(
        cls, key_bits: int, value_bound: int, headroom_bits: int = DEFAULT_HEADROOM_BITS
    ) -> PackingLayout:
        """The layout with as many slots as a ``key_bits``-bit modulus holds."""
        _check_int(value_bound, "value_bound", 1)
        _check_int(headroom_bits, "headroom_bits", 0, MAX_HEADROOM_BITS)
        slot_bits = (2 * value_bound).bit_length() + headroom_bits
        slots = (key_bits - 1) // slot_bits
        if slots < 1:
            raise PrivacyError(
                f"slot_bits must be at most {key_bits - 1} for a {key_bits}-bit key, got "
                f"{slot_bits} (value bound {describe_magnitude(value_bound)}, headroom "
                f"{headroom_bits} bits)"
            )
        return cls(slot_bits, slots, value_bound, headroom_bits)

    @property
    def capacity(self) -> int:
        """``2^b``: every slot content must stay below it."""
        return 1 << self.slot_bits

    def ciphertexts_for(self, count: int) -> int:
        """Plaintexts needed for ``count`` values."""
        return -(-count // self.slots)

    def check_upper(self, upper: int, what: str) -> None:
        """Refuse a result whose slots could reach ``2^b`` (carry into the next slot)."""
        if upper >= self.capacity:
            fresh = 2 * self.value_bound
            raise PrivacyError(
                f"{what} must keep every slot below 2^{self.slot_bits} (headroom of "
                f"{self.headroom_bits} bits: at most {1 << self.headroom_bits} fresh packed "
                f"arrays summed), got a slot bound of {describe_magnitude(upper)} "
                f"(= {upper / fresh:.4g} fresh arrays); refused before computing, it would "
                "carry between slots"
            )


def pack(contents: Sequence[int], layout: PackingLayout, padding: int) -> list[int]:
    """Plaintexts holding ``contents`` (each in ``[0, 2^b)``), ``k`` per plaintext, padded.

    ``padding`` fills the last plaintext's unused slots (the offset of a zero, so
    every slot carries the same offset and the tracked bounds hold for all).
    """
    b, k, capacity = layout.slot_bits, layout.slots, layout.capacity
    if not 0 <= padding < capacity:
        raise PrivacyError(f"padding must be in [0, 2^{b}), got {padding}")
    plaintexts: list[int] = []
    for start in range(0, len(contents), k):
        chunk = list(contents[start : start + k])
        chunk.extend([padding] * (k - len(chunk)))
        packed = 0
        for content in reversed(chunk):
            if not 0 <= content < capacity:
                raise PrivacyError(
                    f"slot contents must be in [0, 2^{b}), got {describe_magnitude(abs(content))}"
                    + (" (negative)" if content < 0 else "")
                )
            packed = (packed << b) | content
        plaintexts.append(packed)
    return plaintexts


def unpack(
    plaintexts: Sequence[int], layout: PackingLayout, offset: int, upper: int, count: int
) -> list[int]:
    """The first ``count`` signed values ``content - offset`` the plaintexts hold.

    Raises
    ------
    PrivacyError
        A plaintext with bits above its last slot, or a slot content above
        ``upper``: the ciphertext was corrupted or decrypted with the wrong key.
    """
    b, k = layout.slot_bits, layout.slots
    mask = layout.capacity - 1
    values: list[int] = []
    for plaintext in plaintexts:
        if plaintext >> (b * k):
            raise PrivacyError(
                f"packed plaintexts must be below 2^{b * k}, got one of {plaintext.bit_length()} "
                "bits: the ciphertext is corrupted or was encrypted under another key"
            )
        for j in range(k):
            content = (plaintext >> (b * j)) & mask
            if content > upper:
                raise PrivacyError(
                    f"slot contents must be at most their tracked bound "
                    f"{describe_magnitude(upper)}, got {describe_magnitude(content)}: the "
                    "ciphertext is corrupted or was encrypted under another key"
                )
            values.append(content - offset)
    if count > len(values):
        raise PrivacyError(f"count must be at most {len(values)} slots, got {count}")
    return values[:count]
