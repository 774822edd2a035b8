"""Paillier keys and the raw scheme (Paillier, EUROCRYPT 1999; g = n + 1).

CRT decryption (§7) is checked against the textbook L(c^lambda) mu decryption
(Scheme 1), the homomorphic identities on random and boundary plaintexts, and
every key check for its error.
"""

from __future__ import annotations

import math
import secrets

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privet.errors import PrivacyError
from privet.he import (
    MIN_BITS,
    PaillierPublicKey,
    PaillierSecretKey,
    generate_keypair,
)
from privet.he.paillier import (
    check_ciphertext,
    raw_add,
    raw_add_plain,
    raw_decrypt,
    raw_decrypt_many,
    raw_decrypt_plain,
    raw_encrypt,
    raw_multiply,
    raw_negate,
)

KeyPair = tuple[PaillierPublicKey, PaillierSecretKey]
PROPERTY = settings(max_examples=25, deadline=None)


def fresh_r(public: PaillierPublicKey) -> int:
    while True:
        r = secrets.randbelow(public.n)
        if r > 0 and math.gcd(r, public.n) == 1:
            return r


def encrypt(public: PaillierPublicKey, m: int) -> int:
    return int(raw_encrypt(public, m % public.n, fresh_r(public)))


def test_2048_bit_keygen_has_the_declared_size_and_decrypts() -> None:
    public, secret = generate_keypair(2048)
    assert public.bits == 2048
    assert secret.p * secret.q == public.n
    assert secret.p.bit_length() == secret.q.bit_length() == 1024
    assert math.gcd(public.n, (secret.p - 1) * (secret.q - 1)) == 1
    assert gmpy2.is_prime(secret.p)
    assert gmpy2.is_prime(secret.q)
    assert public.max_int == public.n // 3 - 1
    m = secrets.randbelow(public.n)
    assert raw_decrypt(secret, encrypt(public, m)) == m


def test_default_keygen_is_2048_bits() -> None:
    assert generate_keypair.__defaults__ == (MIN_BITS,)


@pytest.mark.parametrize(
    ("bits", "flag", "message"),
    [
        (
            1024,
            False,
            r"bits must be >= 2048 \(or >= 1024 with insecure_for_tests=True\), got 1024",
        ),
        (2047, False, "got 2047"),
        (512, True, "bits must be >= 2048, got 512"),
        (1023, True, "bits must be >= 2048, got 1023"),
        (2048.0, False, "bits must be an int, got float"),
        (True, True, "bits must be an int, got bool"),
    ],
)
def test_small_or_bad_key_sizes_are_refused(bits: object, flag: bool, message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        generate_keypair(bits, insecure_for_tests=flag)  # type: ignore[arg-type]


def test_public_key_checks_its_modulus(keypair: KeyPair) -> None:
    public, _ = keypair
    with pytest.raises(PrivacyError, match=r"n\.bit_length\(\) must be >= 2048 .* got 1024"):
        PaillierPublicKey(public.n)
    with pytest.raises(PrivacyError, match="n must be an odd modulus > 2, got 4"):
        PaillierPublicKey(4)
    with pytest.raises(PrivacyError, match="n must be an int, got str"):
        PaillierPublicKey("77")  # type: ignore[arg-type]
    assert PaillierPublicKey(public.n, insecure_for_tests=True) == public
    assert hash(PaillierPublicKey(public.n, insecure_for_tests=True)) == hash(public)


def test_secret_key_checks_its_factors(keypair: KeyPair, other_keypair: KeyPair) -> None:
    public, secret = keypair
    with pytest.raises(PrivacyError, match="p and q must be distinct factors > 2"):
        PaillierSecretKey(public, secret.p, secret.p)
    with pytest.raises(PrivacyError, match="p and q must be distinct factors > 2"):
        PaillierSecretKey(public, other_keypair[1].p, other_keypair[1].q)
    with pytest.raises(PrivacyError, match="p and q must be distinct factors > 2"):
        PaillierSecretKey(public, 1, public.n)
    # A composite factorization n = (p q / 3) * 3 needs 3 | n: build one to reach the check.
    composite = PaillierPublicKey(3 * secret.p * secret.q, insecure_for_tests=True)
    with pytest.raises(PrivacyError, match="p and q must be primes, got a composite factor"):
        PaillierSecretKey(composite, 3 * secret.p, secret.q)
    with pytest.raises(PrivacyError, match="public_key must be a PaillierPublicKey, got int"):
        PaillierSecretKey(public.n, secret.p, secret.q)  # type: ignore[arg-type]


def test_gcd_condition_is_checked() -> None:
    # 7 * 43: 7 divides 43 - 1, so gcd(n, (p-1)(q-1)) = 7. Too small for a real key, so the
    # public key is built around the size check to reach the secret key's own check.
    public = object.__new__(PaillierPublicKey)
    public._n = gmpy2.mpz(7 * 43)
    public._n2 = public._n**2
    public._max_int = public._n // 3 - 1
    public._fingerprint = "0" * 64
    with pytest.raises(PrivacyError, match=r"gcd\(n, \(p-1\)\(q-1\)\) must be 1"):
        PaillierSecretKey(public, 7, 43)


def test_secret_key_repr_hides_the_factors(keypair: KeyPair) -> None:
    public, secret = keypair
    for text in (repr(secret), str(secret)):
        assert str(secret.p) not in text
        assert str(secret.q) not in text
        assert public.fingerprint[:16] in text
    assert not hasattr(public, "secret_key")
    assert all(slot.strip("_") != "p" for slot in PaillierPublicKey.__slots__)


def boundary_plaintexts(public: PaillierPublicKey) -> list[int]:
    n, max_int = public.n, public.max_int
    return [0, 1, 2, max_int, max_int + 1, n - max_int - 1, n - max_int, n - 2, n - 1]


def test_crt_decryption_equals_the_textbook_decryption(keypair: KeyPair) -> None:
    public, secret = keypair
    plaintexts = boundary_plaintexts(public) + [secrets.randbelow(public.n) for _ in range(20)]
    ciphertexts = [encrypt(public, m) for m in plaintexts]
    assert [raw_decrypt_plain(secret, c) for c in ciphertexts] == plaintexts
    assert raw_decrypt_many(secret, ciphertexts) == plaintexts
    # On arbitrary elements of Z_{n^2}^* too, not only on well-formed encryptions.
    for _ in range(20):
        c = fresh_r(public) * fresh_r(public) % public.n_squared
        assert raw_decrypt(secret, c) == raw_decrypt_plain(secret, c)


def test_encryption_is_the_published_formula(keypair: KeyPair) -> None:
    public, secret = keypair
    n, n2 = public.n, public.n_squared
    m, r = secrets.randbelow(n), fresh_r(public)
    # Paillier 1999, Scheme 1 with g = n + 1: c = g^m r^n mod n^2.
    assert raw_encrypt(public, m, r) == pow(n + 1, m, n2) * pow(r, n, n2) % n2
    assert raw_decrypt(secret, raw_encrypt(public, m, r)) == m


@PROPERTY
@given(data=st.data())
def test_homomorphic_identities(keypair: KeyPair, data: st.DataObject) -> None:
    public, secret = keypair
    n = public.n
    residues = st.one_of(st.sampled_from(boundary_plaintexts(public)), st.integers(0, n - 1))
    a, b = data.draw(residues), data.draw(residues)
    k = data.draw(st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, 1, -1, n - 1])))
    ca, cb = encrypt(public, a), encrypt(public, b)
    assert raw_decrypt(secret, raw_add(public, ca, cb)) == (a + b) % n
    assert raw_decrypt(secret, raw_add_plain(public, ca, b)) == (a + b) % n
    assert raw_decrypt(secret, raw_multiply(public, ca, k)) == k * a % n
    assert raw_decrypt(secret, raw_negate(public, ca)) == -a % n
    terms = data.draw(st.lists(residues, min_size=1, max_size=6))
    total = encrypt(public, terms[0])
    for t in terms[1:]:
        total = raw_add(public, total, encrypt(public, t))
    assert raw_decrypt(secret, total) == sum(terms) % n


def test_raw_encrypt_refuses_an_r_outside_the_units(keypair: KeyPair) -> None:
    public, secret = keypair
    for r in (0, public.n, secret.p):
        with pytest.raises(PrivacyError, match=r"r must be in Z_n\^\*"):
            raw_encrypt(public, 5, r)


def test_check_ciphertext_refuses_non_units(keypair: KeyPair) -> None:
    public, secret = keypair
    check_ciphertext(public, encrypt(public, 3))
    for c in (0, public.n_squared, public.n_squared + 5, -1):
        with pytest.raises(PrivacyError, match=r"ciphertext must be in \[1, n\^2\)"):
            check_ciphertext(public, c)
    with pytest.raises(PrivacyError, match="ciphertext must be coprime to n"):
        check_ciphertext(public, secret.p * 12345)
