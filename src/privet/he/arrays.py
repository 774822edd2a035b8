"""Encrypted numpy arrays under Paillier: one ciphertext per element, fixed-point, bounds tracked.

:func:`encrypt` turns an array of reals into an :class:`EncryptedArray`;
arithmetic follows numpy broadcasting: ``+``/``-`` with another encrypted array
(same key) or a public array, ``*`` by public scalars or arrays, unary ``-``,
``.sum(axis)``; :func:`decrypt` returns float64. Every operation computes its
result's public bound first and refuses (:class:`~privet.errors.PrivacyError`)
one that could leave the plaintext range (:mod:`privet.he.encoding`), so a
result never wraps.

Homomorphic results are not fresh: ``c^k`` and products of ciphertexts carry
randomness derived from their inputs (a product with ``k = 0`` is the constant
ciphertext 1, an encryption of 0 anyone can recognize). When the party that
will decrypt must learn nothing but the result (circuit privacy, e.g. about
public-to-the-evaluator weights), call :meth:`EncryptedArray.rerandomize` before
sending; phe does the same on its first serialization (``be_secure``).

The per-element work is a Python loop over gmpy2 calls: encryption's cost is
the randomness source's (:mod:`privet.he.randomness`), decryption's two
exponentiations modulo ``p^2`` and ``q^2``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError
from privet.he._gmp import Mpz, gmpy2, mpz
from privet.he.encoding import (
    DEFAULT_FRAC_BITS,
    as_numeric,
    check_frac_bits,
    check_within,
    decode_fixed,
    encode_bound,
    encode_fixed,
    from_residue,
)
from privet.he.paillier import PaillierPublicKey, PaillierSecretKey, raw_decrypt_many
from privet.he.randomness import NaiveRandomness, Randomness

__all__ = ["EncryptedArray", "decrypt", "encrypt", "object_array"]


def object_array(items: Sequence[Any], shape: tuple[int, ...]) -> NDArray[np.object_]:
    """A read-only object array of ``shape`` holding ``items`` (C order) without unpacking them."""
    array = np.empty(len(items), dtype=object)
    for index, item in enumerate(items):
        array[index] = item
    result = array.reshape(shape)
    result.flags.writeable = False
    return result


def check_public_key(public_key: object, what: str = "public_key") -> PaillierPublicKey:
    """Refuse anything but a public key; a secret key is named, so it is never used as one."""
    if isinstance(public_key, PaillierSecretKey):
        raise PrivacyError(
            f"{what} must be a PaillierPublicKey, got a PaillierSecretKey (pass "
            "secret_key.public_key: secret keys are kept apart from public ones)"
        )
    if not isinstance(public_key, PaillierPublicKey):
        raise PrivacyError(f"{what} must be a PaillierPublicKey, got {type(public_key).__name__}")
    return public_key


def check_secret_key(secret_key: object) -> PaillierSecretKey:
    if not isinstance(secret_key, PaillierSecretKey):
        raise PrivacyError(
            f"secret_key must be a PaillierSecretKey, got {type(secret_key).__name__}"
        )
    return secret_key


def check_same_key(expected: PaillierPublicKey, actual: PaillierPublicKey, what: str) -> None:
    """Refuse a ciphertext made under another key, naming both fingerprints."""
    if expected != actual:
        raise PrivacyError(
            f"{what} must be encrypted under the key {expected.fingerprint[:16]}..., got one "
            f"under {actual.fingerprint[:16]}... (wrong key)"
        )


def resolve_randomness(randomness: Randomness | None, public_key: PaillierPublicKey) -> Randomness:
    """``None`` is plain Paillier from the OS CSPRNG; a given source must match the key."""
    if randomness is None:
        return NaiveRandomness(public_key)
    if not isinstance(randomness, Randomness):
        raise PrivacyError(
            f"randomness must be a privet.he Randomness, got {type(randomness).__name__}"
        )
    check_same_key(public_key, randomness.public_key, "randomness")
    return randomness


@dataclass(frozen=True, eq=False, repr=False)
class EncryptedArray:
    """An array of Paillier ciphertexts, one per element, with its public encoding facts.

    Attributes
    ----------
    public_key
        The key every element is encrypted under.
    ciphertexts
        Read-only object array of ``gmpy2.mpz`` in ``Z_{n^2}^*``, the array's shape.
    frac_bits
        Fixed-point fractional bits ``f``: element ``i`` encrypts ``round(x_i 2^f)``.
    bound
        Public bound on every element's encoded magnitude, ``<= max_int``.
    """

    public_key: PaillierPublicKey
    ciphertexts: NDArray[np.object_]
    frac_bits: int
    bound: int

    def __post_init__(self) -> None:
        check_public_key(self.public_key)
        if not isinstance(self.ciphertexts, np.ndarray) or self.ciphertexts.dtype != object:
            raise PrivacyError("ciphertexts must be a numpy object array of gmpy2.mpz")
        check_frac_bits(self.frac_bits)
        if isinstance(self.bound, bool) or not isinstance(self.bound, int) or self.bound < 0:
            raise PrivacyError(f"bound must be an int >= 0, got {self.bound!r}")
        check_within(self.bound, self.public_key.max_int, "bound")

    # numpy must not treat us as an array-like: ``ndarray + EncryptedArray`` calls __radd__.
    __array_ufunc__ = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.ciphertexts.shape)

    @property
    def ndim(self) -> int:
        return int(self.ciphertexts.ndim)

    @property
    def size(self) -> int:
        return int(self.ciphertexts.size)

    def __len__(self) -> int:
        return len(self.ciphertexts)

    def __repr__(self) -> str:
        return (
            f"EncryptedArray(shape={self.shape}, frac_bits={self.frac_bits}, "
            f"key={self.public_key.fingerprint[:16]}...)"
        )

    def __getitem__(self, index: Any) -> EncryptedArray:
        picked = self.ciphertexts[index]
        if not isinstance(picked, np.ndarray):
            picked = object_array([picked], ())
        return EncryptedArray(self.public_key, picked, self.frac_bits, self.bound)

    def _derive(
        self, ciphertexts: NDArray[np.object_], frac_bits: int, bound: int
    ) -> EncryptedArray:
        if not isinstance(ciphertexts, np.ndarray):  # a 0-d result comes back as a scalar
            ciphertexts = object_array([ciphertexts], ())
        ciphertexts.flags.writeable = False
        return EncryptedArray(self.public_key, ciphertexts, frac_bits, bound)

    def _ufunc(self, op: Callable[..., Mpz], nin: int) -> np.ufunc:
        ufunc: np.ufunc = np.frompyfunc(op, nin, 1)
        return ufunc

    def _scaled(self, shift: int) -> NDArray[np.object_]:
        """Ciphertexts of ``x 2^shift`` (to align fractional bits)."""
        if shift == 0:
            return self.ciphertexts
        n2, factor = self.public_key._n2, mpz(1) << shift
        result: NDArray[np.object_] = self._ufunc(lambda c: gmpy2.powmod(c, factor, n2), 1)(
            self.ciphertexts
        )
        return result

    # -- addition ------------------------------------------------------------------------------

    def __add__(self, other: object) -> EncryptedArray:
        n, n2 = self.public_key._n, self.public_key._n2
        if isinstance(other, EncryptedArray):
            check_same_key(self.public_key, other.public_key, "the other operand")
            frac_bits = max(self.frac_bits, other.frac_bits)
            left, right = frac_bits - self.frac_bits, frac_bits - other.frac_bits
            bound = (self.bound << left) + (other.bound << right)
            check_within(bound, self.public_key.max_int, "the sum")
            product = self._ufunc(lambda a, b: a * b % n2, 2)(
                self._scaled(left), other._scaled(right)
            )
            return self._derive(product, frac_bits, bound)
        ints, shape = encode_fixed(_public_operand(other), self.frac_bits)
        bound = self.bound + (max(map(abs, ints)) if ints else 0)
        check_within(bound, self.public_key.max_int, "the sum")
        plain = object_array(ints, shape)
        added = self._ufunc(lambda c, m: c * (1 + mpz(m) % n * n) % n2, 2)(self.ciphertexts, plain)
        return self._derive(added, self.frac_bits, bound)

    def __radd__(self, other: object) -> EncryptedArray:
        # Python's sum() starts from the int 0.
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return self.__add__(other)

    def __neg__(self) -> EncryptedArray:
        n2 = self.public_key._n2
        inverted = self._ufunc(lambda c: gmpy2.invert(c, n2), 1)(self.ciphertexts)
        return self._derive(inverted, self.frac_bits, self.bound)

    def __sub__(self, other: object) -> EncryptedArray:
        if isinstance(other, EncryptedArray):
            return self.__add__(-other)
        return self.__add__(-_public_operand(other))

    def __rsub__(self, other: object) -> EncryptedArray:
        return (-self).__add__(other)

    # -- scalar products -----------------------------------------------------------------------

    def __mul__(self, other: object) -> EncryptedArray:
        return self.multiply(other)

    def __rmul__(self, other: object) -> EncryptedArray:
        return self.multiply(other)

    def multiply(self, scalars: object, *, frac_bits: int | None = None) -> EncryptedArray:
        """``k x`` elementwise for public ``k`` (broadcast), as ``Enc(x)^k``.

        Parameters
        ----------
        scalars
            Public integers or reals. Integers are exact and keep ``frac_bits``;
            reals are encoded with ``frac_bits`` fractional bits (default: this
            array's), which the product adds to its own.
        frac_bits
            Fractional bits for real scalars.
        """
        if isinstance(scalars, EncryptedArray):
            raise PrivacyError(
                "scalars must be public numbers, got an EncryptedArray (Paillier multiplies a "
                "ciphertext by public scalars only)"
            )
        scalars = _public_operand(scalars)
        if scalars.dtype.kind == "f":
            scalar_bits = self.frac_bits if frac_bits is None else check_frac_bits(frac_bits)
        else:
            scalar_bits = 0
        ints, shape = encode_fixed(scalars, scalar_bits)
        bound = self.bound * (max(map(abs, ints)) if ints else 0)
        check_within(bound, self.public_key.max_int, "the product")
        total_bits = self.frac_bits + scalar_bits
        check_frac_bits(total_bits)
        n2 = self.public_key._n2

        def power(c: Mpz, k: int) -> Mpz:
            if k < 0:
                return gmpy2.powmod(gmpy2.invert(c, n2), -k, n2)
            return gmpy2.powmod(c, k, n2)

        product = self._ufunc(power, 2)(self.ciphertexts, object_array(ints, shape))
        return self._derive(product, total_bits, bound)

    # -- reductions ----------------------------------------------------------------------------

    def sum(self, axis: int | None = None) -> EncryptedArray:
        """The homomorphic sum over ``axis`` (``None``: all elements, a 0-d result)."""
        n2 = self.public_key._n2
        if axis is None:
            count = self.size
            if count == 0:
                raise PrivacyError("sum needs at least one element, got an empty array")
            bound = self.bound * count
            check_within(bound, self.public_key.max_int, "the sum")
            total = functools.reduce(lambda a, b: a * b % n2, self.ciphertexts.ravel().tolist())
            return self._derive(object_array([total], ()), self.frac_bits, bound)
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
            raise PrivacyError(f"axis must be an int or None, got {type(axis).__name__}")
        if not -self.ndim <= axis < self.ndim:
            raise PrivacyError(f"axis must be in [{-self.ndim}, {self.ndim}), got {axis}")
        count = self.shape[axis]
        if count == 0:
            raise PrivacyError(f"sum needs at least one element along axis {axis}, got 0")
        bound = self.bound * count
        check_within(bound, self.public_key.max_int, "the sum")
        reduced = self._ufunc(lambda a, b: a * b % n2, 2).reduce(self.ciphertexts, axis=int(axis))
        return self._derive(np.asarray(reduced, dtype=object), self.frac_bits, bound)

    def rerandomize(self, randomness: Randomness | None = None) -> EncryptedArray:
        """The same plaintexts under fresh randomness (multiplied by a fresh ``r^n`` each)."""
        source = resolve_randomness(randomness, self.public_key)
        fresh = source.obfuscate(self.ciphertexts.ravel().tolist())
        return self._derive(object_array(fresh, self.shape), self.frac_bits, self.bound)


def _public_operand(value: object) -> NDArray[Any]:
    if isinstance(value, EncryptedArray | PaillierPublicKey | PaillierSecretKey):
        raise PrivacyError(f"operand must be a public number or array, got {type(value).__name__}")
    return as_numeric(value, "operand")  # type: ignore[arg-type]


def encrypt(
    public_key: PaillierPublicKey,
    values: ArrayLike,
    *,
    bound: float,
    frac_bits: int = DEFAULT_FRAC_BITS,
    randomness: Randomness | None = None,
) -> EncryptedArray:
    """Encrypt an array of reals elementwise.

    Parameters
    ----------
    public_key
        The key to encrypt under (a secret key is refused).
    values
        Integers or finite floats, any shape.
    bound
        The owner's public bound on ``|x|`` (required: a bound computed from the
        data would publish its maximum). A value beyond it is refused.
    frac_bits
        Fixed-point fractional bits (default 32).
    randomness
        The source of fresh ``r^n`` factors (:mod:`privet.he.randomness`); ``None``
        is plain Paillier (:class:`~privet.he.randomness.NaiveRandomness`). Reuse
        one :class:`~privet.he.randomness.DjnRandomness` per key for speed.

    Raises
    ------
    PrivacyError
        A bad key, bound, value or randomness source, or ``bound 2^f`` above
        ``max_int``.
    """
    key = check_public_key(public_key)
    frac_bits = check_frac_bits(frac_bits)
    encoded_bound = encode_bound(bound, frac_bits)
    check_within(encoded_bound, key.max_int, "the declared bound")
    ints, shape = encode_fixed(values, frac_bits, bound=encoded_bound)
    source = resolve_randomness(randomness, key)
    n = key._n
    fresh = source.obfuscate([1 + mpz(v) % n * n for v in ints])
    return EncryptedArray(key, object_array(fresh, shape), frac_bits, encoded_bound)


def decrypt(secret_key: PaillierSecretKey, encrypted: EncryptedArray) -> NDArray[np.float64]:
    """The float64 array ``encrypted`` holds, by CRT decryption.

    Raises
    ------
    PrivacyError
        ``encrypted`` is under another key (fingerprints differ), or an element
        decrypts outside its tracked bound or into the overflow band (a corrupted
        ciphertext).
    """
    key = check_secret_key(secret_key)
    if not isinstance(encrypted, EncryptedArray):
        raise PrivacyError(f"encrypted must be an EncryptedArray, got {type(encrypted).__name__}")
    check_same_key(key.public_key, encrypted.public_key, "encrypted")
    public = key.public_key
    n, max_int = public.n, public.max_int
    residues = raw_decrypt_many(key, encrypted.ciphertexts.ravel().tolist())
    values = [from_residue(int(r), n, max_int, encrypted.bound) for r in residues]
    return decode_fixed(values, encrypted.frac_bits, encrypted.shape)
