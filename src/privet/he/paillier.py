"""Paillier keys and the raw scheme on GMP integers, with ``g = n + 1``.

Paillier, "Public-Key Cryptosystems Based on Composite Degree Residuosity
Classes", EUROCRYPT 1999, LNCS 1592, pp. 223-238. With ``g = n + 1`` (the
choice of Damgård and Jurik, PKC 2001, and of python-paillier ``phe``, so
ciphertexts are interchangeable with phe's for the same key pair)::

    Enc(m; r) = (1 + m n) r^n  mod n^2        m in Z_n, r in Z_n^*

since ``(1 + n)^m = 1 + m n (mod n^2)``. Decryption is by Chinese remaindering
(Paillier 1999, §7): ``m_p = L_p(c^(p-1) mod p^2) h_p mod p`` with
``L_p(x) = (x - 1) / p`` and ``h_p = L_p(g^(p-1) mod p^2)^-1 mod p``, the same
mod ``q``, then CRT; :func:`raw_decrypt_plain` is the textbook
``L(c^lambda mod n^2) mu mod n`` (Scheme 1), the slow oracle it is tested against.

Keys. :class:`PaillierPublicKey` holds ``n`` only; :class:`PaillierSecretKey`
holds its public key, ``p``, ``q`` and the CRT precomputation. A public key
never refers to a secret key. :func:`generate_keypair` takes ``p`` and ``q``
from the ``cryptography`` package's RSA key generation (vetted primes of
exactly half the modulus size each; ``n`` has exactly ``bits`` bits) and checks
``gcd(n, (p-1)(q-1)) = 1``, the condition for ``g = n + 1`` to work (Paillier 1999,
§4; always true for primes of equal length, checked all the same).

Key sizes: at least :data:`MIN_BITS` = 2048 (112-bit security, NIST SP 800-57
Part 1 Rev. 5, Table 2). Keys of :data:`MIN_TEST_BITS` = 1024 up to 2048 bits
are accepted only with ``insecure_for_tests=True``, everywhere a key is made or
decoded; nothing below 1024 bits is ever accepted.

The raw functions take and return ``gmpy2.mpz`` (plain ``int`` is accepted);
plaintexts are residues in ``[0, n)``. Signed, fixed-point and packed encodings
are in :mod:`privet.he.encoding` and :mod:`privet.he.packing`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from cryptography.hazmat.primitives.asymmetric import rsa

from privet.errors import PrivacyError
from privet.he._gmp import Mpz, gmpy2, mpz, to_bytes

__all__ = [
    "MIN_BITS",
    "MIN_TEST_BITS",
    "PaillierPublicKey",
    "PaillierSecretKey",
    "check_ciphertext",
    "fingerprint_of",
    "generate_keypair",
    "raw_add",
    "raw_add_plain",
    "raw_decrypt",
    "raw_decrypt_many",
    "raw_decrypt_plain",
    "raw_encrypt",
    "raw_multiply",
    "raw_negate",
]

MIN_BITS: Final = 2048
MIN_TEST_BITS: Final = 1024
_FINGERPRINT_DOMAIN: Final = b"privet.he.paillier/v1 n="
# Miller-Rabin rounds for a decoded secret key's primes (error < 4^-40 each).
_PRIMALITY_ROUNDS: Final = 40


def fingerprint_of(n: int) -> str:
    """SHA-256 (hex) of ``n`` as big-endian bytes of its own width, domain-separated."""
    return hashlib.sha256(_FINGERPRINT_DOMAIN + to_bytes(n, (n.bit_length() + 7) // 8)).hexdigest()


def _check_bits(bits: int, insecure_for_tests: bool, what: str) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise PrivacyError(f"{what} must be an int, got {type(bits).__name__}")
    if bits < MIN_TEST_BITS:
        raise PrivacyError(f"{what} must be >= {MIN_BITS}, got {bits}")
    if bits < MIN_BITS and not insecure_for_tests:
        raise PrivacyError(
            f"{what} must be >= {MIN_BITS} (or >= {MIN_TEST_BITS} with "
            f"insecure_for_tests=True), got {bits}"
        )


_MPZ_TYPE: Final = type(mpz(0))


def _as_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | _MPZ_TYPE):
        raise PrivacyError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


class PaillierPublicKey:
    """A Paillier public key ``(n, g = n + 1)``.

    Parameters
    ----------
    n
        The modulus, odd, of at least :data:`MIN_BITS` bits (or
        :data:`MIN_TEST_BITS` with ``insecure_for_tests``).
    insecure_for_tests
        Accept a modulus of 1024 to 2047 bits.

    Attributes
    ----------
    n, n_squared
        The modulus and its square (``int``).
    bits
        Bit length of ``n``.
    max_int
        ``n // 3 - 1``: signed plaintexts live in ``[-max_int, max_int]``, the
        convention of phe, so a residue in the middle third of ``Z_n`` is an
        overflow rather than a value.
    fingerprint
        SHA-256 of ``n`` (hex), carried with every encrypted array so that a
        ciphertext meeting the wrong key is refused.
    """

    __slots__ = ("_fingerprint", "_max_int", "_n", "_n2")

    def __init__(self, n: int, *, insecure_for_tests: bool = False) -> None:
        value = _as_int(n, "n")
        if value < 3 or value % 2 == 0:
            shown = value if value < 1 << 64 else f"an even {value.bit_length()}-bit number"
            raise PrivacyError(f"n must be an odd modulus > 2, got {shown}")
        _check_bits(value.bit_length(), insecure_for_tests, "n.bit_length()")
        self._n: Mpz = mpz(value)
        self._n2: Mpz = self._n * self._n
        self._max_int: Mpz = self._n // 3 - 1
        self._fingerprint = fingerprint_of(value)

    @property
    def n(self) -> int:
        return int(self._n)

    @property
    def n_squared(self) -> int:
        return int(self._n2)

    @property
    def bits(self) -> int:
        return int(self._n.bit_length())

    @property
    def max_int(self) -> int:
        return int(self._max_int)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def ciphertext_bytes(self) -> int:
        """Bytes of one ciphertext on the wire (the width of ``n^2``)."""
        return int((self._n2.bit_length() + 7) // 8)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PaillierPublicKey):
            return NotImplemented
        return bool(self._n == other._n)

    def __hash__(self) -> int:
        return hash(self._fingerprint)

    def __repr__(self) -> str:
        return f"PaillierPublicKey(bits={self.bits}, fingerprint={self._fingerprint[:16]}...)"


class PaillierSecretKey:
    """A Paillier secret key: the factors ``p``, ``q`` of its public key's ``n``.

    Holds the CRT decryption constants of Paillier 1999, §7. Its ``repr`` never
    shows the factors.

    Parameters
    ----------
    public_key
        The matching public key.
    p, q
        Distinct primes with ``p q = n`` and ``gcd(n, (p-1)(q-1)) = 1``.
    check_primality
        Run Miller-Rabin on ``p`` and ``q`` (40 rounds each); on by default, off
        only right after :func:`generate_keypair`, whose primes are vetted.
    """

    __slots__ = (
        "_hp",
        "_hq",
        "_lambda",
        "_mu",
        "_p",
        "_p2",
        "_p_inverse",
        "_public",
        "_q",
        "_q2",
    )

    def __init__(
        self,
        public_key: PaillierPublicKey,
        p: int,
        q: int,
        *,
        check_primality: bool = True,
    ) -> None:
        if not isinstance(public_key, PaillierPublicKey):
            raise PrivacyError(
                f"public_key must be a PaillierPublicKey, got {type(public_key).__name__}"
            )
        p_int, q_int = _as_int(p, "p"), _as_int(q, "q")
        n = public_key._n
        if p_int < 3 or q_int < 3 or p_int == q_int or p_int * q_int != n:
            raise PrivacyError(
                "p and q must be distinct factors > 2 of the public key's n "
                f"(fingerprint {public_key.fingerprint[:16]}...), got factors that are not"
            )
        mp, mq = mpz(p_int), mpz(q_int)
        if check_primality and not (
            gmpy2.is_prime(mp, _PRIMALITY_ROUNDS) and gmpy2.is_prime(mq, _PRIMALITY_ROUNDS)
        ):
            raise PrivacyError("p and q must be primes, got a composite factor")
        if gmpy2.gcd(n, (mp - 1) * (mq - 1)) != 1:
            raise PrivacyError("gcd(n, (p-1)(q-1)) must be 1, got a key pair where it is not")
        self._public = public_key
        self._p, self._q = mp, mq
        self._p2, self._q2 = mp * mp, mq * mq
        g = n + 1
        self._hp: Mpz = gmpy2.invert((gmpy2.powmod(g, mp - 1, self._p2) - 1) // mp, mp)
        self._hq: Mpz = gmpy2.invert((gmpy2.powmod(g, mq - 1, self._q2) - 1) // mq, mq)
        self._p_inverse: Mpz = gmpy2.invert(mp, mq)
        # Scheme 1 constants, for the slow reference decryption only.
        self._lambda: Mpz = gmpy2.lcm(mp - 1, mq - 1)
        self._mu: Mpz = gmpy2.invert((gmpy2.powmod(g, self._lambda, public_key._n2) - 1) // n, n)

    @property
    def public_key(self) -> PaillierPublicKey:
        return self._public

    @property
    def p(self) -> int:
        return int(self._p)

    @property
    def q(self) -> int:
        return int(self._q)

    def __repr__(self) -> str:
        public = self._public
        return f"PaillierSecretKey(bits={public.bits}, fingerprint={public.fingerprint[:16]}...)"


def generate_keypair(
    bits: int = MIN_BITS, *, insecure_for_tests: bool = False
) -> tuple[PaillierPublicKey, PaillierSecretKey]:
    """A fresh key pair whose primes come from ``cryptography``'s RSA key generation.

    Parameters
    ----------
    bits
        Bit length of ``n``: at least 2048, or at least 1024 with
        ``insecure_for_tests=True`` (never for real data).
    insecure_for_tests
        Allow 1024 <= ``bits`` < 2048, to keep tests fast.

    Raises
    ------
    PrivacyError
        ``bits`` below the floor.
    """
    _check_bits(bits, insecure_for_tests, "bits")
    while True:
        numbers = rsa.generate_private_key(public_exponent=65537, key_size=bits).private_numbers()
        p, q = mpz(numbers.p), mpz(numbers.q)
        n = p * q
        # Equal-length primes always pass; a failure would only mean drawing again.
        if p != q and gmpy2.gcd(n, (p - 1) * (q - 1)) == 1:
            break
    public = PaillierPublicKey(int(n), insecure_for_tests=insecure_for_tests)
    return public, PaillierSecretKey(public, int(p), int(q), check_primality=False)


# -- the raw scheme ----------------------------------------------------------------------------


def check_ciphertext(public_key: PaillierPublicKey, ciphertext: int | Mpz) -> None:
    """Refuse anything that is not an element of ``Z_{n^2}^*``.

    Raises
    ------
    PrivacyError
        ``ciphertext`` outside ``[1, n^2)`` or sharing a factor with ``n``.
    """
    c = mpz(ciphertext)
    if not 1 <= c < public_key._n2:
        raise PrivacyError(
            f"ciphertext must be in [1, n^2) for the key {public_key.fingerprint[:16]}..., "
            f"got a {c.bit_length()}-bit value"
        )
    if gmpy2.gcd(c, public_key._n) != 1:
        raise PrivacyError("ciphertext must be coprime to n, got one that shares a factor with n")


def raw_encrypt(public_key: PaillierPublicKey, plaintext: int | Mpz, r: int | Mpz) -> Mpz:
    """``(1 + m n) r^n mod n^2``: plain Paillier with a caller-chosen ``r`` in ``Z_n^*``.

    The reference ("slow naive") path; fresh encryption draws ``r`` through
    :mod:`privet.he.randomness`.
    """
    n, n2 = public_key._n, public_key._n2
    r = mpz(r)
    if not 0 < r < n or gmpy2.gcd(r, n) != 1:
        raise PrivacyError("r must be in Z_n^* (in [1, n) and coprime to n), got one that is not")
    return (1 + mpz(plaintext) % n * n) * gmpy2.powmod(r, n, n2) % n2


def raw_decrypt(secret_key: PaillierSecretKey, ciphertext: int | Mpz) -> Mpz:
    """The plaintext residue in ``[0, n)``, by CRT (Paillier 1999, §7)."""
    return raw_decrypt_many(secret_key, [ciphertext])[0]


def raw_decrypt_many(secret_key: PaillierSecretKey, ciphertexts: Sequence[int | Mpz]) -> list[Mpz]:
    """:func:`raw_decrypt` over a sequence; the loop the vectorized decryption runs.

    Two exponentiations with ``(|n|/2)``-bit exponents modulo ``p^2`` and
    ``q^2`` per ciphertext dominate; everything else is a few multiplications, so
    a plain loop over ``gmpy2.powmod`` is as fast as ``gmpy2.powmod_base_list``
    (measured: no difference single-threaded).
    """
    p, q, p2, q2 = secret_key._p, secret_key._q, secret_key._p2, secret_key._q2
    hp, hq, p_inverse = secret_key._hp, secret_key._hq, secret_key._p_inverse
    pm1, qm1 = p - 1, q - 1
    powmod = gmpy2.powmod
    plaintexts: list[Mpz] = []
    append = plaintexts.append
    for c in ciphertexts:
        mp_ = (powmod(c, pm1, p2) - 1) // p * hp % p
        mq_ = (powmod(c, qm1, q2) - 1) // q * hq % q
        append(mp_ + (mq_ - mp_) * p_inverse % q * p)
    return plaintexts


def raw_decrypt_plain(secret_key: PaillierSecretKey, ciphertext: int | Mpz) -> Mpz:
    """``L(c^lambda mod n^2) mu mod n`` (Paillier 1999, Scheme 1): the slow reference."""
    n, n2 = secret_key._public._n, secret_key._public._n2
    return (gmpy2.powmod(mpz(ciphertext), secret_key._lambda, n2) - 1) // n * secret_key._mu % n


def raw_add(public_key: PaillierPublicKey, a: int | Mpz, b: int | Mpz) -> Mpz:
    """``Enc(x) * Enc(y) = Enc(x + y)``."""
    return mpz(a) * mpz(b) % public_key._n2


def raw_add_plain(
    public_key: PaillierPublicKey, ciphertext: int | Mpz, plaintext: int | Mpz
) -> Mpz:
    """``Enc(x) (1 + y n) = Enc(x + y)`` for a public residue ``y``."""
    n = public_key._n
    return mpz(ciphertext) * (1 + mpz(plaintext) % n * n) % public_key._n2


def raw_negate(public_key: PaillierPublicKey, ciphertext: int | Mpz) -> Mpz:
    """``Enc(x)^-1 = Enc(-x)``."""
    return gmpy2.invert(mpz(ciphertext), public_key._n2)


def raw_multiply(public_key: PaillierPublicKey, ciphertext: int | Mpz, scalar: int) -> Mpz:
    """``Enc(x)^k = Enc(k x)`` for a public integer ``k`` (a negative one inverts first)."""
    c, k = mpz(ciphertext), int(scalar)
    if k < 0:
        c, k = gmpy2.invert(c, public_key._n2), -k
    return gmpy2.powmod(c, k, public_key._n2)
