"""The fast randomness sources against plain r^n (privet.he.randomness).

* the DJN fixed-base table against ``powmod(h_s, a, n^2)`` (the slow oracle);
* every source's factors are n-th residues (they encrypt 0) and leave decryption
  unchanged;
* statistics, seeded: the Jacobi symbol of ``c mod n`` is +-1 with probability
  exactly 1/2 for naive and CRT randomness (``r`` uniform in ``Z_n^*``); an exact
  two-sided binomial test at a false-alarm rate of 1e-6 per source;
* ciphertexts of one message are all distinct: a false alarm needs two equal
  exponents among 200 draws, probability below 200^2 / 2^256 < 2^-240 for DJN
  with 256-bit exponents (less for the others).
"""

from __future__ import annotations

import numpy as np
import pytest
from gmpy2 import jacobi, mpz, powmod
from scipy.stats import binomtest

from privet.errors import PrivacyError
from privet.he import (
    CrtRandomness,
    DjnRandomness,
    NaiveRandomness,
    PaillierPublicKey,
    PaillierSecretKey,
    Randomness,
)
from privet.he.paillier import raw_decrypt_many

KeyPair = tuple[PaillierPublicKey, PaillierSecretKey]
FALSE_ALARM = 1e-6
SEED = 20260501


def sources(keypair: KeyPair, djn: DjnRandomness) -> list[Randomness]:
    public, secret = keypair
    return [NaiveRandomness(public), CrtRandomness(secret), djn, DjnRandomness(public)]


def test_djn_table_matches_powmod(keypair: KeyPair, djn: DjnRandomness) -> None:
    n2 = mpz(keypair[0].n_squared)
    hs = mpz(djn.hs)
    rng = np.random.default_rng(SEED)
    top = (1 << djn.exponent_bits) - 1
    exponents = [0, 1, 2, 255, 256, 257, 1 << 200, top, top - 1]
    exponents += [int.from_bytes(rng.bytes(32), "big") for _ in range(20)]
    for a in exponents:
        assert djn.power(a) == powmod(hs, a, n2)
    with pytest.raises(PrivacyError, match=r"exponent must be in \[0, 2\^256\), got 257 bits"):
        djn.power(1 << 256)


def test_djn_obfuscate_uses_the_random_bytes_as_exponent_digits(keypair: KeyPair) -> None:
    public, _ = keypair
    n2 = mpz(public.n_squared)
    rng = np.random.default_rng(SEED)
    draws: list[bytes] = []

    def recorded(size: int) -> bytes:
        draws.append(rng.bytes(size))
        return draws[-1]

    djn = DjnRandomness(public, exponent_bits=256, random_bytes=recorded)
    values = [mpz(1), mpz(12345), mpz(n2 - 1)]
    obfuscated = djn.obfuscate(values)
    pool = draws[-1]  # one draw for all exponents: 32 little-endian bytes each
    assert len(pool) == 32 * len(values)
    for i, (value, got) in enumerate(zip(values, obfuscated, strict=True)):
        a = int.from_bytes(pool[32 * i : 32 * (i + 1)], "little")
        assert got == value * powmod(mpz(djn.hs), a, n2) % n2


def test_djn_base_is_h_to_the_n(keypair: KeyPair, djn: DjnRandomness) -> None:
    public, secret = keypair
    n = public.n
    # h_s is an n-th power of h = -x^2: it encrypts 0, and h_s mod n has the Jacobi
    # symbol of -1 (x^2 contributes +1, and (-1)^n = -1).
    assert raw_decrypt_many(secret, [djn.hs]) == [0]
    assert jacobi(djn.hs % n, n) == jacobi(-1, n)


@pytest.mark.parametrize("index", range(4))
def test_factors_are_nth_residues_and_keep_decryption(
    keypair: KeyPair, djn: DjnRandomness, index: int
) -> None:
    public, secret = keypair
    source = sources(keypair, djn)[index]
    n, p, q = mpz(public.n), mpz(secret.p), mpz(secret.q)
    factors = source.obfuscate([mpz(1)] * 8)
    for rho in factors:
        # n-th residues mod n^2 are exactly the elements of order dividing p-1 mod p^2
        # and q-1 mod q^2 (the G_{p-1} x G_{q-1} part).
        assert powmod(rho, p - 1, p * p) == 1
        assert powmod(rho, q - 1, q * q) == 1
    plaintexts = [0, 1, 7, public.n - 1, public.max_int]
    nudes = [1 + mpz(m) * n for m in plaintexts]
    assert raw_decrypt_many(secret, source.obfuscate(nudes)) == plaintexts


@pytest.mark.parametrize("index", range(4))
def test_ciphertexts_of_one_message_are_distinct(
    keypair: KeyPair, djn: DjnRandomness, index: int
) -> None:
    public, _ = keypair
    source = sources(keypair, djn)[index]
    count = 200 if index else 50  # naive r^n is the slow one
    nude = 1 + 42 * mpz(public.n)
    ciphertexts = source.obfuscate([nude] * count)
    assert len({int(c) for c in ciphertexts}) == count


@pytest.mark.parametrize("kind", ["naive", "crt"])
def test_jacobi_symbol_of_ciphertexts_is_balanced(keypair: KeyPair, kind: str) -> None:
    public, secret = keypair
    draw = np.random.default_rng(SEED).bytes
    source: Randomness = (
        NaiveRandomness(public, random_bytes=draw)
        if kind == "naive"
        else CrtRandomness(secret, random_bytes=draw)
    )
    count = 400
    n = mpz(public.n)
    ciphertexts = source.obfuscate([1 + 5 * n] * count)
    # c mod n = r^n mod n and jacobi(r^n) = jacobi(r) (n odd): +-1 with probability 1/2.
    plus = sum(1 for c in ciphertexts if jacobi(c % n, n) == 1)
    assert binomtest(plus, count, 0.5).pvalue > FALSE_ALARM


def test_djn_jacobi_symbol_is_that_of_minus_one_to_the_a(
    keypair: KeyPair, djn: DjnRandomness
) -> None:
    """The documented observable difference from naive ciphertexts (independent of m)."""
    n = mpz(keypair[0].n)
    for a in (0, 1, 2, 3, 1000, 1001):
        assert jacobi(djn.power(a) % n, n) == jacobi(-1, n) ** a


def test_exponent_bits_are_checked(keypair: KeyPair) -> None:
    public, _ = keypair
    assert DjnRandomness(public).exponent_bits == 512  # |n| / 2 for the 1024-bit test key
    for bits in (128, 255, 260, 2056):
        with pytest.raises(
            PrivacyError,
            match=rf"exponent_bits must be a multiple of 8 in \[256, 2048\], got {bits}",
        ):
            DjnRandomness(public, exponent_bits=bits)


def test_sources_refuse_the_wrong_key_kind(keypair: KeyPair) -> None:
    public, secret = keypair
    with pytest.raises(
        PrivacyError, match="public_key must be a PaillierPublicKey, got PaillierSecretKey"
    ):
        DjnRandomness(secret)  # type: ignore[arg-type]
    with pytest.raises(
        PrivacyError, match="public_key must be a PaillierPublicKey, got PaillierSecretKey"
    ):
        NaiveRandomness(secret)  # type: ignore[arg-type]
    with pytest.raises(
        PrivacyError, match="secret_key must be a PaillierSecretKey, got PaillierPublicKey"
    ):
        CrtRandomness(public)  # type: ignore[arg-type]
