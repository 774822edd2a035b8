"""X25519 + HKDF-SHA256 key agreement and AES-256-GCM sealing, against the RFC test vectors."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from privet.errors import PrivacyError
from privet.secagg.crypto import (
    KEY_BYTES,
    NONCE_BYTES,
    TAG_BYTES,
    DecryptionError,
    KeyPair,
    KeyPurpose,
    agree,
    agreement_info,
    exchange,
    hkdf_sha256,
    open_sealed,
    seal,
)

# RFC 7748 ("Elliptic Curves for Security"), section 6.1, the X25519 Diffie-Hellman example.
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIVATE = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def test_x25519_matches_rfc_7748_section_6_1() -> None:
    alice, bob = KeyPair.from_private_bytes(ALICE_PRIVATE), KeyPair.from_private_bytes(BOB_PRIVATE)
    assert alice.public_bytes == ALICE_PUBLIC
    assert bob.public_bytes == BOB_PUBLIC
    assert exchange(alice, BOB_PUBLIC) == SHARED
    assert exchange(bob, ALICE_PUBLIC) == SHARED
    assert alice.private_bytes() == ALICE_PRIVATE


def test_agree_is_hkdf_of_the_rfc_7748_secret() -> None:
    info = agreement_info(KeyPurpose.MASK, 0, 1, 2)
    key = agree(KeyPair.from_private_bytes(ALICE_PRIVATE), BOB_PUBLIC, info=info)
    assert key == hkdf_sha256(SHARED, info=info)
    assert len(key) == KEY_BYTES


def test_hkdf_matches_rfc_5869_test_case_1() -> None:
    # RFC 5869, appendix A.1: basic test case with SHA-256.
    okm = hkdf_sha256(
        bytes.fromhex("0b" * 22),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm == bytes.fromhex(
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hkdf_without_salt_matches_rfc_5869_test_case_3() -> None:
    # RFC 5869, appendix A.3: zero-length salt and info. A missing salt is HashLen zero bytes
    # (section 2.2), which HMAC pads to the same key as the empty salt.
    okm = hkdf_sha256(bytes.fromhex("0b" * 22), info=b"", length=42)
    assert okm == bytes.fromhex(
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_agreement_is_symmetric_for_fresh_keys() -> None:
    for _ in range(20):
        u, v = KeyPair.generate(), KeyPair.generate()
        info = agreement_info(KeyPurpose.CHANNEL, 5, 3, 9)
        assert agree(u, v.public_bytes, info=info) == agree(v, u.public_bytes, info=info)
        # The other side builds its info with the pair the other way round: same bytes.
        assert agreement_info(KeyPurpose.CHANNEL, 5, 9, 3) == info


def test_different_info_or_peer_gives_different_keys() -> None:
    u, v, w = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    infos = [
        agreement_info(purpose, round_id, a, b)
        for purpose in KeyPurpose
        for round_id in (0, 1, 12)
        for a, b in ((1, 2), (1, 3), (2, 3), (1, 23), (12, 3))
    ]
    assert len(set(infos)) == len(infos)
    keys = {agree(u, v.public_bytes, info=info) for info in infos}
    assert len(keys) == len(infos)
    info = infos[0]
    assert agree(u, v.public_bytes, info=info) != agree(u, w.public_bytes, info=info)


def test_agreement_info_format_is_pinned() -> None:
    # The protocol on both ends and any peer implementation depend on these exact bytes.
    assert agreement_info(KeyPurpose.MASK, 3, 7, 2) == b"privet-secagg/v1/mask/round=3/pair=2,7"
    assert (
        agreement_info(KeyPurpose.CHANNEL, 0, 1, 2) == b"privet-secagg/v1/channel/round=0/pair=1,2"
    )


@pytest.mark.parametrize(
    "low_order",
    [
        bytes(32),  # u = 0
        (1).to_bytes(32, "little"),  # u = 1, a point of order 4
        # u = 325606250916557431795983626356110631294008115727848805560023387167927233504,
        # a point of order 8 listed on https://cr.yp.to/ecdh.html ("How do I validate
        # Curve25519 public keys?").
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    ],
)
def test_low_order_public_keys_are_refused(low_order: bytes) -> None:
    with pytest.raises(PrivacyError, match=r"peer public key must not be a low-order point"):
        agree(KeyPair.generate(), low_order, info=b"x")


def test_bad_key_agreement_inputs() -> None:
    pair = KeyPair.generate()
    with pytest.raises(PrivacyError, match=r"peer public key must be 32 bytes, got 31 bytes"):
        exchange(pair, bytes(31))
    with pytest.raises(PrivacyError, match=r"peer public key must be 32 bytes, got str"):
        exchange(pair, "ab" * 16)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"own must be a KeyPair, got bytes"):
        exchange(ALICE_PRIVATE, BOB_PUBLIC)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"private key must be 32 bytes, got 33 bytes"):
        KeyPair.from_private_bytes(bytes(33))
    with pytest.raises(PrivacyError, match=r"info must be bytes, got str"):
        agree(pair, BOB_PUBLIC, info="privet")  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"purpose must be a KeyPurpose, got 'mask'"):
        agreement_info("mask", 0, 1, 2)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"round_id must be an integer >= 0, got -1"):
        agreement_info(KeyPurpose.MASK, -1, 1, 2)
    with pytest.raises(PrivacyError, match=r"u must be an integer >= 0, got True"):
        agreement_info(KeyPurpose.MASK, 0, True, 2)
    with pytest.raises(PrivacyError, match=r"v must be an integer >= 0, got 2.0"):
        agreement_info(KeyPurpose.MASK, 0, 1, 2.0)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"v must differ from u .*got u = v = 4"):
        agreement_info(KeyPurpose.MASK, 0, 4, 4)
    with pytest.raises(PrivacyError, match=r"length must be an integer in \[1, 8160\], got 0"):
        hkdf_sha256(b"k", info=b"", length=0)
    with pytest.raises(PrivacyError, match=r"length must be an integer in \[1, 8160\], got 8161"):
        hkdf_sha256(b"k", info=b"", length=8161)
    with pytest.raises(PrivacyError, match=r"salt must be bytes, got str"):
        hkdf_sha256(b"k", info=b"", salt="s")  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"ikm must be bytes, got bytearray"):
        hkdf_sha256(bytearray(b"k"), info=b"")  # type: ignore[arg-type]


def test_key_pair_repr_hides_the_private_key() -> None:
    pair = KeyPair.from_private_bytes(ALICE_PRIVATE)
    assert repr(pair) == f"KeyPair(public={ALICE_PUBLIC.hex()})"
    assert ALICE_PRIVATE.hex() not in repr(pair) + str(pair)


KEY = bytes(range(32))
AD = b"privet-secagg/v1/shares/round=1/from=3/to=5"


@pytest.mark.parametrize("plaintext", [b"", b"x", bytes(range(256)) * 5])
def test_seal_open_round_trip(plaintext: bytes) -> None:
    sealed = seal(KEY, plaintext, AD)
    assert len(sealed) == NONCE_BYTES + len(plaintext) + TAG_BYTES
    # A short plaintext can occur in random bytes by chance (a 1-byte one in about 11% of
    # 29-byte ciphertexts); a 16-byte run by chance has probability < 2^-120.
    assert len(plaintext) < 16 or plaintext[:16] not in sealed
    assert open_sealed(KEY, sealed, AD) == plaintext


def test_sealing_with_an_agreed_key_round_trips_between_peers() -> None:
    u, v = KeyPair.generate(), KeyPair.generate()
    info = agreement_info(KeyPurpose.CHANNEL, 2, 1, 4)
    sealed = seal(agree(u, v.public_bytes, info=info), b"share of u for v", AD)
    assert open_sealed(agree(v, u.public_bytes, info=info), sealed, AD) == b"share of u for v"


def test_tampering_with_any_bit_of_any_byte_is_detected() -> None:
    sealed = seal(KEY, b"hello", AD)
    for index in range(len(sealed)):
        for bit in (0x01, 0x80):
            tampered = bytearray(sealed)
            tampered[index] ^= bit
            with pytest.raises(DecryptionError, match=r"ciphertext must authenticate"):
                open_sealed(KEY, bytes(tampered), AD)
    for changed in (sealed[:-1], sealed + b"\x00", sealed[1:], b"\x00" + sealed):
        with pytest.raises(DecryptionError, match=r"ciphertext must authenticate"):
            open_sealed(KEY, changed, AD)


def test_wrong_key_or_associated_data_is_detected_as_a_privet_error() -> None:
    sealed = seal(KEY, b"hello", AD)
    wrong_key = bytes([KEY[0] ^ 1]) + KEY[1:]
    for key, ad in ((wrong_key, AD), (KEY, AD + b"x"), (KEY, b""), (KEY, AD[:-1])):
        with pytest.raises(DecryptionError, match=r"wrong key, wrong associated data") as info:
            open_sealed(key, sealed, ad)
        assert isinstance(info.value, PrivacyError)
        assert not isinstance(info.value, InvalidTag)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__


def test_nonces_are_fresh_across_many_seals() -> None:
    sealed = [seal(KEY, b"same plaintext", AD) for _ in range(20_000)]
    nonces = {item[:NONCE_BYTES] for item in sealed}
    assert len(nonces) == len(sealed)
    assert len(set(sealed)) == len(sealed)


def test_bad_sealing_inputs() -> None:
    with pytest.raises(PrivacyError, match=r"key must be 32 bytes, got 16 bytes"):
        seal(bytes(16), b"x", AD)
    with pytest.raises(PrivacyError, match=r"key must be 32 bytes, got str"):
        open_sealed("k" * 32, bytes(40), AD)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"plaintext must be bytes, got str"):
        seal(KEY, "x", AD)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"associated_data must be bytes, got NoneType"):
        seal(KEY, b"x", None)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"ciphertext must be bytes, got bytearray"):
        open_sealed(KEY, bytearray(40), AD)  # type: ignore[arg-type]
    with pytest.raises(DecryptionError, match=r"ciphertext must be at least 28 bytes .*got 27"):
        open_sealed(KEY, bytes(27), AD)
