"""Packing many values per plaintext (privet.he.packing) and packed encrypted arrays.

The headroom claim checked at its edge: ``2^h`` fresh packed arrays whose values
all sit at the bound (all ``+B``, the largest slot contents, or all ``-B``, the
smallest) sum without a carry, and the next addition that could carry is
refused before it runs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privet.errors import PrivacyError
from privet.he import (
    DjnRandomness,
    PackedEncryptedArray,
    PackingLayout,
    PaillierPublicKey,
    PaillierSecretKey,
    decrypt_packed,
    encrypt_packed,
)
from privet.he.packing import pack, unpack

KeyPair = tuple[PaillierPublicKey, PaillierSecretKey]
F = 32


def q(values: object) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return np.ldexp(np.rint(np.ldexp(array, F)), -F)


def test_layout_for_a_2048_bit_key() -> None:
    # Values up to |x| <= 2^10 with 32 fractional bits: B = 2^42, 2B needs 44 bits, plus 16
    # headroom bits: 60-bit slots, 34 of them below 2^2047.
    layout = PackingLayout.for_key(2048, 2**42, 16)
    assert (layout.slot_bits, layout.slots) == (60, 34)
    assert layout.ciphertexts_for(1000) == 30
    assert layout.capacity == 2**60
    with pytest.raises(PrivacyError, match="slot_bits must be at most 1023 for a 1024-bit key"):
        PackingLayout.for_key(1024, 2**1020, 16)
    with pytest.raises(PrivacyError, match="slot_bits must be bitlen"):
        PackingLayout(59, 34, 2**42, 16)
    with pytest.raises(PrivacyError, match=r"headroom_bits must be in \[0, 1024\], got -1"):
        PackingLayout.for_key(2048, 2**42, -1)
    with pytest.raises(PrivacyError, match="value_bound must be >= 1, got 0"):
        PackingLayout.for_key(2048, 0)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), bound_bits=st.integers(1, 80), headroom=st.integers(0, 20))
def test_pack_unpack_round_trip(data: st.DataObject, bound_bits: int, headroom: int) -> None:
    bound = 2**bound_bits - 1
    layout = PackingLayout.for_key(1024, bound, headroom)
    values = data.draw(st.lists(st.integers(-bound, bound), max_size=3 * layout.slots))
    plaintexts = pack([v + bound for v in values], layout, padding=bound)
    assert len(plaintexts) == layout.ciphertexts_for(len(values))
    assert all(0 <= p < 2 ** (layout.slots * layout.slot_bits) for p in plaintexts)
    assert unpack(plaintexts, layout, bound, 2 * bound, len(values)) == values


def test_unpack_refuses_what_cannot_be_a_packed_plaintext() -> None:
    layout = PackingLayout.for_key(1024, 7, 2)  # 4 + 2 = 6-bit slots
    [plaintext] = pack([3, 14], layout, padding=7)
    with pytest.raises(PrivacyError, match="slot contents must be at most their tracked bound 13"):
        unpack([plaintext], layout, 7, 13, 2)
    with pytest.raises(PrivacyError, match="packed plaintexts must be below 2\\^"):
        unpack([plaintext | 1 << (6 * layout.slots)], layout, 7, 14, 2)
    with pytest.raises(PrivacyError, match=r"slot contents must be in \[0, 2\^6\)"):
        pack([64], layout, padding=7)
    with pytest.raises(PrivacyError, match=r"slot contents must be in \[0, 2\^6\), got 1 \(neg"):
        pack([-1], layout, padding=7)


@settings(max_examples=15, deadline=None)
@given(data=st.data(), size=st.integers(1, 40), terms=st.integers(1, 4))
def test_packed_sums_equal_plaintext_sums(
    keypair: KeyPair, djn: DjnRandomness, data: st.DataObject, size: int, terms: int
) -> None:
    public, secret = keypair
    reals = st.one_of(st.sampled_from([0.0, 50.0, -50.0]), st.floats(-50, 50))
    arrays = [
        np.array(data.draw(st.lists(reals, min_size=size, max_size=size))) for _ in range(terms)
    ]
    packed = [encrypt_packed(public, a, bound=50, randomness=djn) for a in arrays]
    total = sum(packed[1:], packed[0])
    expected = sum((q(a) for a in arrays[1:]), q(arrays[0]))
    np.testing.assert_array_equal(decrypt_packed(secret, total), expected)
    folded = total.fold()
    assert folded.shape == (min(size, total.layout.slots),)
    assert math.fsum(decrypt_packed(secret, folded)) == math.fsum(expected)
    np.testing.assert_array_equal(decrypt_packed(secret, total * 3), 3 * expected)
    np.testing.assert_array_equal(decrypt_packed(secret, total + 1.25), expected + 1.25)
    np.testing.assert_array_equal(decrypt_packed(secret, 0 + total), expected)


def test_headroom_is_counted_at_its_edge(keypair: KeyPair, djn: DjnRandomness) -> None:
    public, secret = keypair
    headroom = 3
    # bound 2^8 - 1 with no fractional bits: 2B = 510 needs 9 bits, slots of 12 bits, so
    # floor((2^12 - 1) / 510) = 8 = 2^3 fresh arrays fit and a 9th would not.
    bound = 255
    top = encrypt_packed(
        public, [bound] * 100, bound=bound, frac_bits=0, headroom_bits=headroom, randomness=djn
    )
    low = encrypt_packed(
        public, [-bound] * 100, bound=bound, frac_bits=0, headroom_bits=headroom, randomness=djn
    )
    assert top.layout.slot_bits == 12
    assert top.headroom_left == 2**headroom - 1
    for fresh, sign in ((top, 1), (low, -1)):
        total = fresh
        for _ in range(2**headroom - 1):
            total = total + fresh
        assert total.headroom_left == 0
        np.testing.assert_array_equal(decrypt_packed(secret, total), [sign * 8 * bound] * 100)
        with pytest.raises(PrivacyError, match=r"at most 8 fresh packed arrays summed.*carry"):
            total + fresh
    with pytest.raises(PrivacyError, match=r"the packed product .*= 9 fresh arrays"):
        top * 9
    with pytest.raises(PrivacyError, match="the fold must keep every slot below 2\\^12"):
        encrypt_packed(
            public, [1] * 1000, bound=bound, frac_bits=0, headroom_bits=headroom, randomness=djn
        ).fold()  # 1000 values in 12-bit slots: 85 per ciphertext, 12 ciphertexts > 8


def test_packed_operations_refuse_what_slots_cannot_do(
    keypair: KeyPair, other_keypair: KeyPair, djn: DjnRandomness
) -> None:
    public, secret = keypair
    packed = encrypt_packed(public, [1.0, 2.0, 3.0], bound=4, randomness=djn)
    with pytest.raises(PrivacyError, match="a negative factor would borrow across slots"):
        packed * -1
    with pytest.raises(PrivacyError, match="multiply by a public int >= 0 only, got float"):
        packed * 0.5
    other_shape = encrypt_packed(public, [1.0, 2.0], bound=4, randomness=djn)
    with pytest.raises(PrivacyError, match="packed operands must share shape"):
        packed + other_shape
    with pytest.raises(PrivacyError, match="with different layouts"):
        packed + encrypt_packed(public, [1.0, 2.0, 3.0], bound=400, randomness=djn)
    with pytest.raises(PrivacyError, match=r"public operand must broadcast to shape \(3,\)"):
        packed + np.ones(2)
    foreign = encrypt_packed(other_keypair[0], [1.0, 2.0, 3.0], bound=4)
    with pytest.raises(PrivacyError, match="the other operand must be encrypted under the key"):
        packed + foreign
    with pytest.raises(PrivacyError, match=r"packed must be encrypted under the key .*wrong key"):
        decrypt_packed(other_keypair[1], packed)
    relabelled = PackedEncryptedArray(
        other_keypair[0], packed.ciphertexts, packed.shape, F, packed.layout, packed.offset,
        packed.upper,
    )  # fmt: skip
    with pytest.raises(PrivacyError, match="encrypted under another key"):
        decrypt_packed(other_keypair[1], relabelled)
    with pytest.raises(PrivacyError, match="ciphertexts must number ceil"):
        PackedEncryptedArray(public, (), (3,), F, packed.layout, packed.offset, packed.upper)
    with pytest.raises(PrivacyError, match="fold needs at least one element"):
        encrypt_packed(public, np.zeros(0), bound=1, randomness=djn).fold()
    np.testing.assert_array_equal(decrypt_packed(secret, packed.rerandomize(djn)), [1.0, 2.0, 3.0])
    assert "slots=" in repr(packed)


def test_packed_shapes_round_trip(keypair: KeyPair, djn: DjnRandomness) -> None:
    public, secret = keypair
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 11.5
    packed = encrypt_packed(public, x, bound=12, randomness=djn)
    assert len(packed.ciphertexts) == packed.layout.ciphertexts_for(24)
    np.testing.assert_array_equal(decrypt_packed(secret, packed), x)
    np.testing.assert_array_equal(decrypt_packed(secret, packed + packed), 2 * x)
