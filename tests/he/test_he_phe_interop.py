"""Interoperability with python-paillier (phe 1.5): same scheme, g = n + 1, same key pair.

phe's key pair is built from privet's primes (``phe.PaillierPublicKey(n)``,
``phe.PaillierPrivateKey(public, p, q)``). Both directions: phe decrypts
privet's ciphertexts (every randomness source, packed ones included) and
privet decrypts phe's (``raw_encrypt`` and ``EncryptedNumber.ciphertext
(be_secure=True)``); with the same ``r`` the two produce the same ciphertext
bit for bit. phe reads plaintexts with the same n/3 sign convention, so
signed and fixed-point values agree too (phe's base-16 exponent ``-f/4`` is
``f`` fractional bits).
"""

from __future__ import annotations

import secrets

import numpy as np
import pytest

from privet.he import (
    CrtRandomness,
    DjnRandomness,
    EncryptedArray,
    NaiveRandomness,
    PaillierPublicKey,
    PaillierSecretKey,
    decrypt,
    decrypt_packed,
    encrypt,
    encrypt_packed,
)
from privet.he._gmp import mpz
from privet.he.arrays import object_array
from privet.he.paillier import raw_decrypt, raw_encrypt

phe = pytest.importorskip("phe", reason="the bench extra (pip install 'privet[bench]')")

KeyPair = tuple[PaillierPublicKey, PaillierSecretKey]


@pytest.fixture(scope="module")
def phe_keys(keypair: KeyPair) -> tuple[object, object]:
    public, secret = keypair
    phe_public = phe.PaillierPublicKey(public.n)
    return phe_public, phe.PaillierPrivateKey(phe_public, secret.p, secret.q)


def test_same_r_gives_the_same_ciphertext(keypair: KeyPair, phe_keys: tuple) -> None:
    public, _ = keypair
    phe_public, _ = phe_keys
    for m in (0, 1, 12345, public.max_int, secrets.randbelow(public.max_int)):
        r = secrets.randbelow(public.n - 2) + 1
        assert raw_encrypt(public, m, r) == phe_public.raw_encrypt(m, r_value=r)


@pytest.mark.parametrize("source", ["naive", "crt", "djn-256", "djn-default"])
def test_phe_decrypts_privet_ciphertexts(
    keypair: KeyPair, phe_keys: tuple, djn: DjnRandomness, source: str
) -> None:
    public, secret = keypair
    phe_public, phe_private = phe_keys
    randomness = {
        "naive": NaiveRandomness(public),
        "crt": CrtRandomness(secret),
        "djn-256": djn,
        "djn-default": DjnRandomness(public),
    }[source]
    x = np.array([0.0, 1.5, -2.25, 1000.0, -1000.0, 2.0**-32])
    encrypted = encrypt(public, x, bound=1000, randomness=randomness)
    residues = [phe_private.raw_decrypt(int(c)) for c in encrypted.ciphertexts]
    assert residues == [int(raw_decrypt(secret, c)) for c in encrypted.ciphertexts]
    # As phe numbers: exponent -8 in base 16 is 2^-32, privet's 32 fractional bits.
    values = [
        phe_private.decrypt(phe.EncryptedNumber(phe_public, int(c), exponent=-8))
        for c in encrypted.ciphertexts
    ]
    assert values == x.tolist()
    total = phe.EncryptedNumber(phe_public, int(encrypted.sum().ciphertexts[()]), exponent=-8)
    assert phe_private.decrypt(total) == x.sum()


def test_phe_decrypts_packed_plaintexts(
    keypair: KeyPair, phe_keys: tuple, djn: DjnRandomness
) -> None:
    public, secret = keypair
    _, phe_private = phe_keys
    packed = encrypt_packed(public, np.arange(30.0), bound=30, randomness=djn)
    assert [phe_private.raw_decrypt(int(c)) for c in packed.ciphertexts] == [
        int(raw_decrypt(secret, c)) for c in packed.ciphertexts
    ]


def test_privet_decrypts_phe_ciphertexts(keypair: KeyPair, phe_keys: tuple) -> None:
    public, secret = keypair
    phe_public, _ = phe_keys
    plaintexts = [0, 1, 7, public.max_int, public.n - 1, secrets.randbelow(public.n)]
    for m in plaintexts:
        assert raw_decrypt(secret, phe_public.raw_encrypt(m)) == m
    # Signed integers and fixed-point values through phe's own encoding.
    ints = [5, -5, 0, 2**40, -(2**40)]
    numbers = [phe_public.encrypt(v) for v in ints]
    assert {n.exponent for n in numbers} == {0}
    array = EncryptedArray(
        public,
        object_array([mpz(n.ciphertext(be_secure=True)) for n in numbers], (5,)),
        frac_bits=0,
        bound=2**40,
    )
    np.testing.assert_array_equal(decrypt(secret, array), np.array(ints, dtype=np.float64))
    reals = [0.5, -0.25, 3.75]
    fixed = [phe_public.encrypt(v, precision=2.0**-32) for v in reals]
    fixed = [n.decrease_exponent_to(-8) for n in fixed]
    array = EncryptedArray(
        public,
        object_array([mpz(n.ciphertext(be_secure=True)) for n in fixed], (3,)),
        frac_bits=32,
        bound=4 * 2**32,
    )
    np.testing.assert_array_equal(decrypt(secret, array), reals)
    # And homomorphic sums of phe ciphertexts, added on privet's side.
    np.testing.assert_array_equal(decrypt(secret, array.sum()), sum(reals))


def test_phe_sums_of_privet_packed_ciphertexts(
    keypair: KeyPair, phe_keys: tuple, djn: DjnRandomness
) -> None:
    """phe's ciphertext addition on privet's packed ciphertexts is a slot-wise sum."""
    public, secret = keypair
    phe_public, _ = phe_keys
    a = encrypt_packed(public, np.arange(10.0), bound=10, randomness=djn)
    b = encrypt_packed(public, -np.arange(10.0) / 2, bound=10, randomness=djn)
    phe_sum = phe.EncryptedNumber(phe_public, int(a.ciphertexts[0])) + phe.EncryptedNumber(
        phe_public, int(b.ciphertexts[0])
    )
    ours = a + b
    assert phe_sum.ciphertext(be_secure=False) == ours.ciphertexts[0]
    np.testing.assert_array_equal(decrypt_packed(secret, ours), np.arange(10.0) / 2)
