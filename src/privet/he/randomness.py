"""Fresh randomness for Paillier encryption: the factor ``rho`` in ``Enc(m) = (1 + m n) rho``.

Three sources. Each yields ciphertexts that any Paillier implementation with
``g = n + 1`` decrypts (phe included); they differ in speed and in what their
security rests on.

:class:`NaiveRandomness` (the reference, "slow naive")
    ``rho = r^n mod n^2`` with ``r`` uniform in ``Z_n^*``: Paillier's scheme as
    published, semantically secure under the decisional composite residuosity
    assumption (DCRA; Paillier 1999, §4). One exponentiation with an
    ``|n|``-bit exponent modulo ``n^2`` per ciphertext.

:class:`CrtRandomness` (needs the secret key; exact)
    ``rho = CRT(y_p^p mod p^2, y_q^q mod q^2)`` with ``y_p``, ``y_q`` uniform in
    ``Z_{p^2}^*`` and ``Z_{q^2}^*``. Same distribution as ``r^n``, so no assumption
    beyond DCRA: ``Z_{p^2}^*`` is the direct product of ``G_p = {1 + kp}`` (order
    ``p``) and a cyclic ``G_{p-1}`` (order ``p - 1``). Raising to ``p`` kills
    ``G_p`` and permutes ``G_{p-1}`` (``gcd(p, p-1) = 1``), so ``y_p^p`` is uniform
    on ``G_{p-1}``. ``r^n mod p^2`` is uniform on ``G_{p-1}`` too: ``p | n`` kills the
    ``G_p`` part, the ``G_{p-1}`` part of ``r`` is fixed by ``r mod p`` (uniform on
    ``Z_p^*`` and independent of ``r mod q``), and ``s -> s^n`` permutes
    ``G_{p-1}`` because ``gcd(n, p-1) = 1``. The same holds mod ``q^2``, and the two
    halves are independent in both constructions. Two exponentiations with
    ``|n|/2``-bit exponents modulo ``p^2`` and ``q^2`` instead of one with an
    ``|n|``-bit exponent modulo ``n^2``. For a key holder encrypting its own data.

:class:`DjnRandomness` (public key only; an extra assumption)
    Damgård, Jurik and Nielsen, "A generalization of Paillier's public-key
    system with applications to electronic voting", Int. J. Inf. Secur. 9
    (2010), §4.1: once per public key draw ``x`` uniform in ``Z_n^*`` and set
    ``h = -x^2 mod n``, ``h_s = h^n mod n^2``; per ciphertext ``rho = h_s^a`` for
    ``a`` uniform on ``[0, 2^l)``. ``h_s^a`` comes from a fixed-base table
    ``T[i][d] = h_s^(d 256^i)`` (Brickell, Gordon, McCurley and Wilson, "Fast
    exponentiation with precomputation", EUROCRYPT 1992): ``l/8``
    multiplications modulo ``n^2`` and no squarings per ciphertext, after
    ``255 l/8`` multiplications and ``255 l/8`` table entries of ``2|n|`` bits once
    (16 MB for ``l = 1024``).

    *What it rests on.* Because ``(y + t n)^n = y^n (mod n^2)``, ``h_s^a =
    (h^a mod n)^n mod n^2``: a DJN ciphertext *is* a plain Paillier ciphertext
    whose ``r`` is ``h^a mod n``. Correctness and interoperability are therefore
    exact; only the distribution of ``r`` changes, and semantic security needs an
    assumption beyond DCRA, stated here as DJN's short-exponent variant of
    DCRA: *given* ``n`` *and* ``h_s``, *the distributions* ``(1 + m n) h_s^a`` *for
    two messages* ``m``, ``m'`` *are computationally indistinguishable when* ``a``
    *is uniform on* ``[0, 2^l)``. It splits in two. (i) With ``a`` uniform over
    the order of ``h_s`` this is DCRA on the subgroup ``<h_s>``; DJN relate it to
    DCRA in their key setting (``h`` generating the elements of Jacobi symbol 1);
    with general RSA primes, as here, we take it as part of the assumption.
    (ii) Short ``a`` is indistinguishable from full-length ``a``. For ``l`` about
    ``|n|/2`` (DJN's own choice, and this module's default) there is supporting
    evidence: Håstad, Schrift and Shamir, "The discrete logarithm modulo a
    composite hides O(n) bits", JCSS 47 (1993), show that ``g^a mod n`` with
    ``a`` of half the length of ``n`` is indistinguishable from a full-length
    exponent if factoring is hard. For ``l = 2 kappa = 256`` (allowed,
    ``exponent_bits=256``; a quarter of the multiplications) no such reduction is
    known: the best known attack is a generic search for ``a`` (Pollard's
    kangaroo) in about ``2^(l/2) = 2^128`` group operations, above the ~112-bit
    security of a 2048-bit ``n``, and the assumption is only that nothing better
    exists. Each
    :class:`DjnRandomness` draws its own ``x`` from the OS CSPRNG, so an encryptor
    never depends on an ``h_s`` chosen by someone else. Observable difference
    from naive ciphertexts, independent of ``m``: ``c mod n`` always has Jacobi
    symbol ``(-1 | n)^a``.

Randomness comes from ``os.urandom`` unless a ``random_bytes`` callable is
passed; a seeded one (``numpy.random.default_rng(seed).bytes``) is for tests only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Final

from privet.errors import PrivacyError
from privet.he._gmp import OS_RANDOM, Mpz, RandomBytes, gmpy2, mpz, random_below, random_unit
from privet.he.paillier import PaillierPublicKey, PaillierSecretKey

__all__ = [
    "KAPPA",
    "CrtRandomness",
    "DjnRandomness",
    "NaiveRandomness",
    "Randomness",
]

#: The statistical/computational security parameter the short exponents are sized by.
KAPPA: Final = 128
_WINDOW_BITS: Final = 8  # one table row per exponent byte: digits are the random bytes themselves


class Randomness(ABC):
    """A source of the factors ``rho`` (distributed like ``r^n``) that make ciphertexts fresh."""

    public_key: PaillierPublicKey

    @property
    @abstractmethod
    def name(self) -> str:
        """Short label (tables, logs)."""

    @abstractmethod
    def obfuscate(self, values: Sequence[Mpz]) -> list[Mpz]:
        """``values[i] * rho_i mod n^2`` with a fresh, independent ``rho_i`` for each."""


class NaiveRandomness(Randomness):
    """``r^n mod n^2`` for ``r`` uniform in ``Z_n^*``: plain Paillier, the reference."""

    def __init__(self, public_key: PaillierPublicKey, *, random_bytes: RandomBytes = OS_RANDOM):
        if not isinstance(public_key, PaillierPublicKey):
            raise PrivacyError(
                f"public_key must be a PaillierPublicKey, got {type(public_key).__name__}"
            )
        self.public_key = public_key
        self._random_bytes = random_bytes

    @property
    def name(self) -> str:
        return "naive r^n"

    def obfuscate(self, values: Sequence[Mpz]) -> list[Mpz]:
        n, n2 = self.public_key._n, self.public_key._n2
        powmod, draw = gmpy2.powmod, self._random_bytes
        return [v * powmod(random_unit(n, draw), n, n2) % n2 for v in values]


class CrtRandomness(Randomness):
    """``r^n`` drawn exactly by Chinese remaindering modulo ``p^2`` and ``q^2`` (secret key)."""

    def __init__(self, secret_key: PaillierSecretKey, *, random_bytes: RandomBytes = OS_RANDOM):
        if not isinstance(secret_key, PaillierSecretKey):
            raise PrivacyError(
                f"secret_key must be a PaillierSecretKey, got {type(secret_key).__name__}"
            )
        self.public_key = secret_key.public_key
        self._p, self._q = secret_key._p, secret_key._q
        self._p2, self._q2 = secret_key._p2, secret_key._q2
        self._p2_inverse: Mpz = gmpy2.invert(self._p2, self._q2)
        self._random_bytes = random_bytes

    @property
    def name(self) -> str:
        return "CRT (secret key)"

    def _unit(self, modulus: Mpz, prime: Mpz) -> Mpz:
        while True:
            y = random_below(modulus, self._random_bytes)
            if y % prime:
                return y

    def obfuscate(self, values: Sequence[Mpz]) -> list[Mpz]:
        p, q, p2, q2 = self._p, self._q, self._p2, self._q2
        p2_inverse, n2, powmod = self._p2_inverse, self.public_key._n2, gmpy2.powmod
        result: list[Mpz] = []
        for v in values:
            rho_p = powmod(self._unit(p2, p), p, p2)
            rho_q = powmod(self._unit(q2, q), q, q2)
            rho = rho_p + (rho_q - rho_p) * p2_inverse % q2 * p2
            result.append(v * rho % n2)
        return result


class DjnRandomness(Randomness):
    """``h_s^a`` for a short random ``a`` (Damgård-Jurik-Nielsen), from a fixed-base table.

    Parameters
    ----------
    public_key
        The key to encrypt under.
    exponent_bits
        ``l``, the length of ``a``; a multiple of 8 in ``[2 KAPPA, 2 |n|]``. Default:
        ``|n|/2`` rounded up to bytes (DJN's choice; see the module docstring for
        what each length assumes).
    random_bytes
        Source of ``x`` and of the exponents: ``os.urandom`` unless testing.

    Raises
    ------
    PrivacyError
        ``exponent_bits`` out of range.
    """

    def __init__(
        self,
        public_key: PaillierPublicKey,
        *,
        exponent_bits: int | None = None,
        random_bytes: RandomBytes = OS_RANDOM,
    ) -> None:
        if not isinstance(public_key, PaillierPublicKey):
            raise PrivacyError(
                f"public_key must be a PaillierPublicKey, got {type(public_key).__name__}"
            )
        bits = public_key.bits
        if exponent_bits is None:
            half = (bits + 1) // 2
            exponent_bits = -(-half // _WINDOW_BITS) * _WINDOW_BITS
        if (
            isinstance(exponent_bits, bool)
            or not isinstance(exponent_bits, int)
            or not 2 * KAPPA <= exponent_bits <= 2 * bits
            or exponent_bits % _WINDOW_BITS
        ):
            raise PrivacyError(
                f"exponent_bits must be a multiple of {_WINDOW_BITS} in [{2 * KAPPA}, {2 * bits}], "
                f"got {exponent_bits!r}"
            )
        self.public_key = public_key
        self.exponent_bits = exponent_bits
        self._random_bytes = random_bytes
        n, n2 = public_key._n, public_key._n2
        x = random_unit(n, random_bytes)
        self._hs: Mpz = gmpy2.powmod(-x * x % n, n, n2)
        self._table = self._build_table(self._hs, exponent_bits // _WINDOW_BITS, n2)

    @staticmethod
    def _build_table(hs: Mpz, rows: int, n2: Mpz) -> tuple[tuple[Mpz, ...], ...]:
        table: list[tuple[Mpz, ...]] = []
        base = hs
        for _ in range(rows):
            row = [mpz(1), base]
            for _ in range(2, 1 << _WINDOW_BITS):
                row.append(row[-1] * base % n2)
            table.append(tuple(row))
            base = row[-1] * base % n2  # base^256: the next byte's weight
        return tuple(table)

    @property
    def name(self) -> str:
        return f"DJN l={self.exponent_bits}"

    @property
    def hs(self) -> int:
        """``h_s = h^n mod n^2``, the fixed base (public)."""
        return int(self._hs)

    def power(self, exponent: int) -> Mpz:
        """``h_s^exponent mod n^2`` from the table, for ``0 <= exponent < 2^l``."""
        if not 0 <= exponent < 1 << self.exponent_bits:
            raise PrivacyError(
                f"exponent must be in [0, 2^{self.exponent_bits}), got {exponent.bit_length()} bits"
            )
        digits = exponent.to_bytes(self.exponent_bits // _WINDOW_BITS, "little")
        return self._apply(mpz(1), digits)

    def _apply(self, value: Mpz, digits: bytes) -> Mpz:
        n2, table = self.public_key._n2, self._table
        for row, digit in zip(table, digits, strict=True):
            if digit:
                value = value * row[digit] % n2
        return value

    def obfuscate(self, values: Sequence[Mpz]) -> list[Mpz]:
        size = self.exponent_bits // _WINDOW_BITS
        pool = self._random_bytes(size * len(values))
        n2, table = self.public_key._n2, self._table
        result: list[Mpz] = []
        for index, value in enumerate(values):
            # The exponent's bytes, little-endian, are its base-256 digits: no conversion.
            for row, digit in zip(table, pool[index * size : (index + 1) * size], strict=True):
                if digit:
                    value = value * row[digit] % n2
            result.append(value)
        return result
