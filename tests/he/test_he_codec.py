"""Paillier keys and encrypted arrays on the wire (privet.he.codec): round trips and refusals."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from privet.errors import PrivacyError
from privet.he import (
    DjnRandomness,
    PaillierPublicKey,
    PaillierSecretKey,
    decode_encrypted_array,
    decode_packed_array,
    decode_public_key,
    decode_secret_key,
    decrypt,
    decrypt_packed,
    encode_encrypted_array,
    encode_packed_array,
    encode_public_key,
    encode_secret_key,
    encrypt,
    encrypt_packed,
    generate_keypair,
)
from privet.he.codec import _digest
from privet.wire import WireError, decode_message, encode_message

KeyPair = tuple[PaillierPublicKey, PaillierSecretKey]


def rewrite(data: bytes, **meta_changes: object) -> bytes:
    """The message with meta entries replaced (arrays kept), re-encoded."""
    message = decode_message(data)
    meta = dict(message.meta) | meta_changes
    return encode_message(message.kind, meta, dict(message.arrays))


def replace_ciphertexts(data: bytes, rows: np.ndarray, *, fix_digest: bool) -> bytes:
    message = decode_message(data)
    meta = dict(message.meta)
    if fix_digest:
        rest = {k: v for k, v in meta.items() if k != "digest"}
        meta["digest"] = _digest(rest, rows.tobytes())
    return encode_message(message.kind, meta, {"ciphertexts": rows})


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def test_keys_round_trip(keypair: KeyPair) -> None:
    public, secret = keypair
    decoded = decode_public_key(encode_public_key(public), insecure_for_tests=True)
    assert decoded == public
    assert decoded.fingerprint == public.fingerprint
    restored = decode_secret_key(encode_secret_key(secret), insecure_for_tests=True)
    assert (restored.p, restored.q, restored.public_key) == (secret.p, secret.q, public)


def test_2048_bit_keys_decode_without_the_test_flag() -> None:
    public, secret = generate_keypair(2048)
    assert decode_public_key(encode_public_key(public)) == public
    assert decode_secret_key(encode_secret_key(secret)).p == secret.p


def test_test_sized_keys_need_the_flag(keypair: KeyPair) -> None:
    public, secret = keypair
    with pytest.raises(PrivacyError, match=r"n\.bit_length\(\) must be >= 2048"):
        decode_public_key(encode_public_key(public))
    with pytest.raises(PrivacyError, match=r"n\.bit_length\(\) must be >= 2048"):
        decode_secret_key(encode_secret_key(secret))


def test_a_secret_key_is_never_taken_for_a_public_one(keypair: KeyPair) -> None:
    public, secret = keypair
    with pytest.raises(
        WireError, match=r"message kind must be 'he\.paillier\.public_key', got 'he"
    ):
        decode_public_key(encode_secret_key(secret), insecure_for_tests=True)
    with pytest.raises(WireError, match=r"message kind must be 'he\.paillier\.secret_key'"):
        decode_secret_key(encode_public_key(public), insecure_for_tests=True)
    with pytest.raises(PrivacyError, match="public_key must be a PaillierPublicKey, got a Pai"):
        encode_public_key(secret)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="public_key must be a PaillierPublicKey, got a Pai"):
        decode_encrypted_array(b"", secret)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="secret_key must be a PaillierSecretKey, got Paillier"):
        encode_secret_key(public)  # type: ignore[arg-type]


def test_corrupted_keys_are_refused(keypair: KeyPair, other_keypair: KeyPair) -> None:
    public, secret = keypair
    data = encode_public_key(public)
    for position in (len(data) - 1, len(data) - 60):  # the lowest byte of n, and one inside
        corrupted = bytearray(data)
        corrupted[position] ^= 0x01
        with pytest.raises(WireError, match=r"fingerprint must be SHA-256 of n.*corrupted"):
            decode_public_key(bytes(corrupted), insecure_for_tests=True)
    with pytest.raises(WireError, match="fingerprint must be SHA-256 of n"):
        decode_public_key(
            rewrite(encode_public_key(public), fingerprint="0" * 64), insecure_for_tests=True
        )
    with pytest.raises(WireError, match="n must have the declared 1023 bits, got 1024"):
        decode_public_key(rewrite(encode_public_key(public), bits=1023), insecure_for_tests=True)
    with pytest.raises(WireError, match="meta keys must be exactly"):
        decode_public_key(rewrite(encode_public_key(public), extra=1), insecure_for_tests=True)
    with pytest.raises(WireError, match="scheme must be 'paillier/g=n\\+1/v1'"):
        decode_public_key(rewrite(encode_public_key(public), scheme="x"), insecure_for_tests=True)
    # Swapping in the other key's factors: p q != n.
    message = decode_message(encode_secret_key(secret))
    arrays = dict(message.arrays)
    foreign = decode_message(encode_secret_key(other_keypair[1])).arrays
    arrays["p"], arrays["q"] = foreign["p"], foreign["q"]
    forged = encode_message(message.kind, dict(message.meta), arrays)
    with pytest.raises(WireError, match="secret_key is not a valid key: p and q must be distinct"):
        decode_secret_key(forged, insecure_for_tests=True)
    with pytest.raises(WireError):
        decode_public_key(encode_public_key(public)[:-3], insecure_for_tests=True)


def test_encrypted_arrays_round_trip(keypair: KeyPair, djn: DjnRandomness) -> None:
    public, secret = keypair
    x = np.array([[1.5, -2.25], [0.0, 7.0]])
    encrypted = encrypt(public, x, bound=8, randomness=djn)
    data = encode_encrypted_array(encrypted)
    decoded = decode_encrypted_array(data, public)
    assert decoded.shape == (2, 2)
    assert (decoded.frac_bits, decoded.bound) == (encrypted.frac_bits, encrypted.bound)
    assert decoded.ciphertexts.tolist() == encrypted.ciphertexts.tolist()
    np.testing.assert_array_equal(decrypt(secret, decoded), x)
    scalar = decode_encrypted_array(encode_encrypted_array(encrypted.sum()), public)
    assert decrypt(secret, scalar) == x.sum()
    rows = decode_message(data).arrays["ciphertexts"]
    assert rows.dtype == np.uint8
    assert rows.shape == (4, public.ciphertext_bytes)


def test_packed_arrays_round_trip(keypair: KeyPair, djn: DjnRandomness) -> None:
    public, secret = keypair
    x = np.linspace(-3, 3, 50)
    packed = encrypt_packed(public, x, bound=3, randomness=djn)
    total = packed + packed
    decoded = decode_packed_array(encode_packed_array(total), public)
    assert (decoded.offset, decoded.upper, decoded.layout) == (
        total.offset,
        total.upper,
        total.layout,
    )
    np.testing.assert_array_equal(decrypt_packed(secret, decoded), decrypt_packed(secret, total))
    folded = decode_packed_array(encode_packed_array(total.fold()), public)
    assert decrypt_packed(secret, folded).sum() == pytest.approx(2 * x.sum(), abs=1e-8)


def test_corrupted_ciphertext_bytes_are_refused(keypair: KeyPair, djn: DjnRandomness) -> None:
    public, _ = keypair
    encrypted = encrypt(public, [1.0, 2.0, 3.0], bound=4, randomness=djn)
    data = encode_encrypted_array(encrypted)
    for position in (len(data) - 1, len(data) - public.ciphertext_bytes - 7):
        corrupted = bytearray(data)
        corrupted[position] ^= 0x40
        with pytest.raises(WireError, match=r"digest must be SHA-256 .* the message is corrupted"):
            decode_encrypted_array(bytes(corrupted), public)
    with pytest.raises(WireError, match="digest must be SHA-256"):
        decode_encrypted_array(rewrite(data, bound="1"), public)  # a forged smaller bound
    with pytest.raises(WireError, match="digest must be SHA-256"):
        decode_packed_array(
            flip_last_byte(encode_packed_array(encrypt_packed(public, [1.0], bound=2))), public
        )


def test_ciphertexts_outside_the_units_are_refused(keypair: KeyPair, djn: DjnRandomness) -> None:
    """Even with a matching digest (it only detects accidents), each ciphertext is checked."""
    public, secret = keypair
    data = encode_encrypted_array(encrypt(public, [1.0, 2.0], bound=4, randomness=djn))
    width = public.ciphertext_bytes
    for bad in (0, public.n_squared + 1, secret.p * 3):
        rows = np.frombuffer(
            bad.to_bytes(width + 1, "big")[-width:] + bytes(width), dtype=np.uint8
        ).reshape(2, width)
        if bad > public.n_squared:
            rows = np.full((2, width), 0xFF, dtype=np.uint8)
        forged = replace_ciphertexts(data, rows, fix_digest=True)
        with pytest.raises(WireError, match=r"ciphertext 0 must be in \[1, n\^2\) and coprime"):
            decode_encrypted_array(forged, public)
    wrong_shape = np.zeros((3, width), dtype=np.uint8)
    with pytest.raises(WireError, match=r"ciphertexts must be uint8 of shape \(2, "):
        decode_encrypted_array(replace_ciphertexts(data, wrong_shape, fix_digest=True), public)


def test_arrays_under_another_key_are_refused(
    keypair: KeyPair, other_keypair: KeyPair, djn: DjnRandomness
) -> None:
    public, _ = keypair
    data = encode_encrypted_array(encrypt(public, [1.0], bound=4, randomness=djn))
    with pytest.raises(PrivacyError, match=r"he\.paillier\.array must be encrypted under the key"):
        decode_encrypted_array(data, other_keypair[0])
    packed = encode_packed_array(encrypt_packed(public, [1.0], bound=4, randomness=djn))
    with pytest.raises(PrivacyError, match="wrong key"):
        decode_packed_array(packed, other_keypair[0])
    with pytest.raises(WireError, match=r"message kind must be 'he\.paillier\.packed_array'"):
        decode_packed_array(data, public)


def test_meta_is_checked(keypair: KeyPair, djn: DjnRandomness) -> None:
    public, _ = keypair
    data = encode_encrypted_array(encrypt(public, [1.0, 2.0], bound=4, randomness=djn))

    def digest_fixed(**changes: object) -> bytes:
        message = decode_message(data)
        meta = {k: v for k, v in message.meta.items() if k != "digest"} | changes
        rows = message.arrays["ciphertexts"]
        meta["digest"] = _digest(meta, rows.tobytes())
        return encode_message(message.kind, meta, {"ciphertexts": rows})

    with pytest.raises(WireError, match="meta 'bound' must be a lowercase hex integer"):
        decode_encrypted_array(digest_fixed(bound="0x10"), public)
    with pytest.raises(WireError, match="bound must be at most max_int"):
        decode_encrypted_array(digest_fixed(bound=format(public.max_int + 1, "x")), public)
    with pytest.raises(WireError, match=r"meta 'frac_bits' must be an int in \[0, 1024\]"):
        decode_encrypted_array(digest_fixed(frac_bits=-1), public)
    with pytest.raises(WireError, match="meta 'shape' must be a list of non-negative ints"):
        decode_encrypted_array(digest_fixed(shape=[-2]), public)
    with pytest.raises(WireError, match=r"ciphertexts must be uint8 of shape \(3, "):
        decode_encrypted_array(digest_fixed(shape=[3]), public)
    packed = encode_packed_array(encrypt_packed(public, [1.0, 2.0], bound=4, randomness=djn))
    message = decode_message(packed)
    meta = {k: v for k, v in message.meta.items() if k != "digest"}
    rows = message.arrays["ciphertexts"]
    for changes, error in (
        ({"slots": 3}, "slot_bits and slots must be"),
        ({"upper": format(1 << 80, "x")}, "is inconsistent: upper must keep every slot below"),
        ({"offset": format(1 << 40, "x")}, "is inconsistent: offset must be at most upper"),
    ):
        forged_meta = meta | changes
        forged_meta["digest"] = _digest(forged_meta, rows.tobytes())
        forged = encode_message(message.kind, forged_meta, {"ciphertexts": rows})
        with pytest.raises(WireError, match=error):
            decode_packed_array(forged, public)


def test_header_layout_is_the_wire_format(keypair: KeyPair) -> None:
    """The bytes are a privet.wire message: magic, version, JSON header (not pickle)."""
    public, _ = keypair
    data = encode_public_key(public)
    magic, version, size = struct.unpack_from("<4sHI", data)
    assert (magic, version) == (b"PRVW", 1)
    header = json.loads(data[10 : 10 + size])
    assert header["kind"] == "he.paillier.public_key"
    assert header["arrays"] == [
        {"name": "n", "dtype": "uint8", "shape": [128], "offset": 0, "nbytes": 128}
    ]
    assert int.from_bytes(data[10 + size :], "big") == public.n
