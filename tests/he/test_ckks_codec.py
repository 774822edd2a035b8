"""CKKS contexts and vectors through privet.wire: round trips, the secret key kept apart,
only the needed evaluation keys sent, and wrong keys, corrupted bytes and forged
declarations refused."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tenseal", reason="the he extra (pip install 'privet[he]')")

from privet.errors import PrivacyError
from privet.he.ckks import (
    CkksContext,
    KeyNeeds,
    choose_parameters,
    decode_columns,
    decode_public_context,
    decode_secret_context,
    decode_vector,
    decrypt,
    encode_columns,
    encode_public_context,
    encode_secret_context,
    encode_vector,
    encrypt,
    encrypt_columns,
)
from privet.wire import WireError, decode_message, encode_message


@pytest.fixture(scope="module")
def secret() -> CkksContext:
    parameters = choose_parameters(2, precision_bits=16, integer_bits=4, length=8)
    return CkksContext.create(parameters, KeyNeeds(relinearization=True, rotations=True))


def test_public_context_round_trip_computes_and_cannot_decrypt(secret: CkksContext) -> None:
    public = decode_public_context(encode_public_context(secret))
    assert not public.is_private
    assert public.fingerprint == secret.fingerprint
    assert public.parameters == secret.parameters
    assert public.keys == secret.keys
    # The evaluator encrypts and computes under the public context; only the key holder
    # decrypts.
    result = encrypt(public, [0.5, -0.25]) * encrypt(public, [0.5, 0.5])
    with pytest.raises(PrivacyError, match="needs the private context"):
        result.decrypt()
    np.testing.assert_allclose(decrypt(secret, result), [0.25, -0.125], atol=2.0**-16)


def test_secret_context_round_trip_decrypts(secret: CkksContext) -> None:
    restored = decode_secret_context(encode_secret_context(secret))
    assert restored.is_private
    assert restored.fingerprint == secret.fingerprint
    vector = encrypt(secret, [0.125, 0.75])
    np.testing.assert_allclose(decrypt(restored, vector), [0.125, 0.75], atol=2.0**-16)


def test_the_secret_key_never_travels_as_a_public_context(secret: CkksContext) -> None:
    secret_bytes = encode_secret_context(secret)
    with pytest.raises(WireError, match="kind"):
        decode_public_context(secret_bytes)
    # Relabelled as public, the secret key inside is still refused.
    forged = decode_message(secret_bytes)
    relabelled = encode_message("he.ckks.public_context", dict(forged.meta), dict(forged.arrays))
    with pytest.raises(PrivacyError, match="a public context must not hold a secret key"):
        decode_public_context(relabelled)
    with pytest.raises(PrivacyError, match="needs a private context"):
        encode_secret_context(secret.public())


def test_only_the_needed_keys_are_sent(secret: CkksContext) -> None:
    # Measured sizes: Galois keys dominate a public context; relinearization keys are
    # a fraction of them; the public key alone is smaller still.
    everything = encode_public_context(secret)
    relin_only = encode_public_context(secret, KeyNeeds(relinearization=True))
    bare = encode_public_context(secret, KeyNeeds(relinearization=False))
    assert len(everything) > 5 * len(relin_only) > 5 * len(bare)
    received = decode_public_context(relin_only)
    assert received.keys == KeyNeeds(relinearization=True, rotations=False)
    assert not received.tenseal.has_galois_keys()
    with pytest.raises(PrivacyError, match="needs rotations"):
        encrypt(received, [1.0, 2.0]).sum()
    bare_context = decode_public_context(bare)
    assert not bare_context.tenseal.has_relin_keys()
    with pytest.raises(PrivacyError, match="needs relinearization keys"):
        encrypt(bare_context, [1.0]) * encrypt(bare_context, [1.0])
    # A context cannot send keys it does not hold.
    with pytest.raises(PrivacyError, match="needs rotations"):
        encode_public_context(received, KeyNeeds(rotations=True))


def test_vectors_and_columns_round_trip(secret: CkksContext) -> None:
    public = secret.public()
    vector = encrypt(public, np.linspace(-1, 1, 9000))  # three chunks at 4096 slots
    restored = decode_vector(public, encode_vector(vector))
    assert len(restored) == 9000
    assert len(restored.chunks) == len(vector.chunks)
    np.testing.assert_allclose(decrypt(secret, restored), np.linspace(-1, 1, 9000), atol=2.0**-16)
    rows = np.arange(12, dtype=np.float64).reshape(4, 3) / 12
    columns = decode_columns(public, encode_columns(encrypt_columns(public, rows)))
    assert (columns.n_rows, columns.n_features) == (4, 3)
    np.testing.assert_allclose(decrypt(secret, columns.columns), rows.T, atol=2.0**-16)


def test_a_vector_under_another_key_is_refused(secret: CkksContext) -> None:
    other = CkksContext.create(secret.parameters)
    data = encode_vector(encrypt(other, [0.5]))
    with pytest.raises(PrivacyError, match="another key pair than the given context's"):
        decode_vector(secret, data)


def test_corrupted_ciphertext_bytes_are_refused(secret: CkksContext) -> None:
    # SEAL would load the flipped byte and decrypt noise; the digest refuses it.
    message = decode_message(encode_vector(encrypt(secret, [0.5, 0.25])))
    chunk = message.arrays["v0_c0"].copy()
    chunk[len(chunk) // 2] ^= 0xFF
    corrupted = encode_message(message.kind, dict(message.meta), {"v0_c0": chunk})
    with pytest.raises(WireError, match=r"digest .* corrupted message"):
        decode_vector(secret, corrupted)


def test_corrupted_context_bytes_are_refused(secret: CkksContext) -> None:
    message = decode_message(encode_public_context(secret, KeyNeeds(relinearization=False)))
    data = message.arrays["context"].copy()
    data[len(data) // 2] ^= 0xFF
    corrupted = encode_message(message.kind, dict(message.meta), {"context": data})
    with pytest.raises(WireError, match=r"not a TenSEAL context|fingerprint"):
        decode_public_context(corrupted)


def test_forged_declarations_are_refused(secret: CkksContext) -> None:
    message = decode_message(encode_public_context(secret, KeyNeeds(relinearization=False)))
    arrays = dict(message.arrays)

    def variant(**changes: object) -> bytes:
        return encode_message(message.kind, {**message.meta, **changes}, arrays)

    parameters = dict(message.meta["parameters"])
    bigger = {**parameters, "poly_modulus_degree": parameters["poly_modulus_degree"] * 2}
    with pytest.raises(WireError, match=r"holds N = 8192, .* but declares N = 16384"):
        decode_public_context(variant(parameters=bigger))
    with pytest.raises(WireError, match="fingerprint does not match"):
        decode_public_context(variant(fingerprint="0" * 64))
    with pytest.raises(PrivacyError, match="keys need relinearization, but the context holds no"):
        decode_public_context(variant(keys={"relinearization": True, "rotations": False}))
    with pytest.raises(WireError, match="meta keys must be exactly"):
        decode_public_context(variant(extra=1))
    with pytest.raises(WireError, match="scheme must be 'ckks'"):
        decode_public_context(variant(scheme="bfv"))
    vector = decode_message(encode_vector(encrypt(secret, [0.5])))
    forged = encode_message(vector.kind, {**vector.meta, "lengths": [2]}, dict(vector.arrays))
    with pytest.raises(WireError, match="digest"):
        decode_vector(secret, forged)
