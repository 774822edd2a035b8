"""Encrypted CKKS vectors with the usual arithmetic and their depth checked before use.

A :class:`CkksVector` is one or more TenSEAL ``CKKSVector`` chunks (at most
``N / 2`` values each) encrypted under one :class:`~privet.he.ckks.CkksContext`.
Element-wise ``+``, ``-``, ``*`` with another vector, a scalar or a plaintext array
of the same length map over the chunks; ``sum``, ``dot`` and ``matmul`` move
values across slots (rotations: Galois keys, one chunk).

Every multiplication spends one level of the modulus chain. The levels a vector
has left are read from SEAL (the chain index of its ciphertexts), and an
operation that needs more than that is refused with the depth it needs, instead
of TenSEAL's "scale out of bounds" after the fact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError
from privet.he.ckks._tenseal import TenSealVector, tenseal
from privet.he.ckks.context import CkksContext, KeyNeeds
from privet.he.ckks.polynomial import PolynomialApproximation, polyval_depth

__all__ = ["CkksVector", "decrypt", "encrypt"]

_ROTATIONS: Final = KeyNeeds(relinearization=False, rotations=True)


class CkksVector:
    """An encrypted vector of reals.

    Build one with :func:`encrypt`; results of operations are new vectors (the
    operands are left unchanged).
    """

    def __init__(self, context: CkksContext, chunks: Sequence[TenSealVector]) -> None:
        if not chunks:
            raise PrivacyError("a CkksVector needs at least one chunk, got none")
        for chunk in chunks:
            if not isinstance(chunk, tenseal.CKKSVector):
                raise PrivacyError(f"chunks must be tenseal.CKKSVector, got {type(chunk).__name__}")
        self._context = context
        self._chunks = tuple(chunks)

    @classmethod
    def encrypt(cls, context: CkksContext, values: ArrayLike) -> CkksVector:
        """Encrypt a 1-D array of finite reals under ``context`` (public or private)."""
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1 or array.size == 0:
            raise PrivacyError(f"values must be a non-empty 1-D array, got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise PrivacyError("values must be finite, got NaN or infinity")
        limit = 2.0**context.parameters.integer_bits
        largest = float(np.max(np.abs(array)))
        if largest >= limit:
            raise PrivacyError(
                f"values must be below 2^integer_bits = {limit:g} in magnitude for these "
                f"parameters, got {largest:g}; choose parameters with more integer_bits "
                f"(requirements.parameters(input_bound={largest:g}))"
            )
        slots = context.parameters.slots
        chunks = [
            tenseal.ckks_vector(context.tenseal, array[start : start + slots].tolist())
            for start in range(0, array.size, slots)
        ]
        return cls(context, chunks)

    @property
    def context(self) -> CkksContext:
        """The context the vector is encrypted under."""
        return self._context

    @property
    def chunks(self) -> tuple[TenSealVector, ...]:
        """The TenSEAL vectors, for operations privet does not wrap."""
        return self._chunks

    def __len__(self) -> int:
        return sum(int(chunk.size()) for chunk in self._chunks)

    @property
    def levels_left(self) -> int:
        """Multiplications the vector can still take (SEAL's chain index)."""
        seal = self._context.tenseal.seal_context().data
        return min(
            int(seal.get_context_data(chunk.ciphertext()[0].parms_id()).chain_index())
            for chunk in self._chunks
        )

    def require_levels(self, needed: int, what: str) -> None:
        """Refuse ``what`` unless ``needed`` levels are left, naming the depth it takes."""
        left = self.levels_left
        if needed > left:
            depth = self._context.parameters.depth
            raise PrivacyError(
                f"{what} needs {needed} more multiplicative level(s), but this vector has "
                f"{left} of the context's depth {depth} left; build the context for depth "
                f">= {depth - left + needed} (privet.he.ckks.choose_parameters)"
            )

    def _map(
        self, other: object, operation: Callable[[TenSealVector, object], TenSealVector]
    ) -> CkksVector:
        pieces = self._split(other)
        return CkksVector(
            self._context,
            [operation(chunk, piece) for chunk, piece in zip(self._chunks, pieces, strict=True)],
        )

    def _split(self, other: object) -> list[object]:
        if isinstance(other, CkksVector):
            if other._context.fingerprint != self._context.fingerprint:
                raise PrivacyError("vectors must be encrypted under the same context's keys")
            if len(other) != len(self):
                raise PrivacyError(
                    f"vectors must have the same length, got {len(self)} and {len(other)}"
                )
            return list(other._chunks)
        if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(other, bool):
            value = float(other)
            if not np.isfinite(value):
                raise PrivacyError(f"a scalar operand must be finite, got {value}")
            return [value] * len(self._chunks)
        array = np.asarray(other, dtype=np.float64)
        if array.shape != (len(self),):
            raise PrivacyError(
                f"a plaintext operand must be a scalar or have shape ({len(self)},), "
                f"got {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise PrivacyError("a plaintext operand must be finite, got NaN or infinity")
        pieces: list[object] = []
        start = 0
        for chunk in self._chunks:
            size = int(chunk.size())
            pieces.append(array[start : start + size].tolist())
            start += size
        return pieces

    def __add__(self, other: object) -> CkksVector:
        return self._map(other, lambda chunk, piece: chunk + piece)

    __radd__ = __add__

    def __sub__(self, other: object) -> CkksVector:
        return self._map(other, lambda chunk, piece: chunk - piece)

    def __rsub__(self, other: object) -> CkksVector:
        return (-self) + other

    def __neg__(self) -> CkksVector:
        return CkksVector(self._context, [-chunk for chunk in self._chunks])

    def __mul__(self, other: object) -> CkksVector:
        self.require_levels(1, "multiplying")
        if isinstance(other, CkksVector):
            other.require_levels(1, "multiplying")
            self._context.require(KeyNeeds(relinearization=True))
        return self._map(other, lambda chunk, piece: chunk * piece)

    __rmul__ = __mul__

    def square(self) -> CkksVector:
        """Element-wise square (one level, relinearization keys)."""
        self.require_levels(1, "squaring")
        self._context.require(KeyNeeds(relinearization=True))
        return CkksVector(self._context, [chunk.square() for chunk in self._chunks])

    def polyval(self, polynomial: PolynomialApproximation | Sequence[float]) -> CkksVector:
        """``sum_k c_k x^k`` element-wise, by TenSEAL's ``polyval`` (depth
        :func:`~privet.he.ckks.polynomial.polyval_depth`)."""
        coefficients = (
            polynomial.coefficients
            if isinstance(polynomial, PolynomialApproximation)
            else tuple(float(c) for c in polynomial)
        )
        if not coefficients or not all(np.isfinite(coefficients)):
            raise PrivacyError(f"coefficients must be finite and non-empty, got {coefficients}")
        degree = max((k for k, c in enumerate(coefficients) if c != 0.0), default=0)
        if degree == 0:
            # TenSEAL's polyval fails on a constant (and SEAL refuses x - x, a transparent
            # ciphertext): a fresh encryption of the constant spends no level.
            return CkksVector.encrypt(self._context, np.full(len(self), coefficients[0]))
        depth = polyval_depth(coefficients)
        self.require_levels(depth, f"a polynomial of degree {degree}")
        if degree > 1:
            self._context.require(KeyNeeds(relinearization=True))
        return CkksVector(
            self._context, [chunk.polyval(list(coefficients)) for chunk in self._chunks]
        )

    def _single_chunk(self, what: str) -> TenSealVector:
        self._context.require(_ROTATIONS)
        if len(self._chunks) != 1:
            raise PrivacyError(
                f"{what} needs the vector in one ciphertext (at most "
                f"{self._context.parameters.slots} values), got {len(self)}"
            )
        return self._chunks[0]

    def sum(self) -> CkksVector:
        """The sum of the values, as a vector of length 1 (rotations, no level)."""
        return CkksVector(self._context, [self._single_chunk("sum").sum()])

    def dot(self, other: CkksVector | ArrayLike) -> CkksVector:
        """Inner product with another vector or a plaintext array (one level, rotations)."""
        chunk = self._single_chunk("dot")
        self.require_levels(1, "a dot product")
        (piece,) = self._split(other)
        if isinstance(other, CkksVector):
            self._context.require(KeyNeeds(relinearization=True))
        return CkksVector(self._context, [chunk.dot(piece)])

    def matmul(self, matrix: ArrayLike) -> CkksVector:
        """Vector-matrix product ``x @ M`` with a plaintext ``(len(x), k)`` matrix
        (one level, rotations)."""
        chunk = self._single_chunk("matmul")
        self.require_levels(1, "a vector-matrix product")
        plain = np.asarray(matrix, dtype=np.float64)
        if plain.ndim != 2 or plain.shape[0] != len(self) or not np.all(np.isfinite(plain)):
            raise PrivacyError(
                f"matrix must be finite with shape ({len(self)}, k), got {plain.shape}"
            )
        return CkksVector(self._context, [chunk.matmul(plain.tolist())])

    def decrypt(self, secret: CkksContext | None = None) -> NDArray[np.float64]:
        """The values; needs the private context (``secret``, or the vector's own)."""
        return decrypt(self._context if secret is None else secret, self)

    def __repr__(self) -> str:
        return f"CkksVector(length={len(self)}, levels_left={self.levels_left})"


def encrypt(context: CkksContext, values: ArrayLike) -> CkksVector:
    """Encrypt a 1-D array of reals under ``context`` (split over ciphertexts of
    ``parameters.slots`` values)."""
    return CkksVector.encrypt(context, values)


def decrypt(secret: CkksContext, vector: CkksVector | Sequence[CkksVector]) -> NDArray[np.float64]:
    """Decrypt ``vector`` with the private context ``secret`` of the same keys; a sequence
    of vectors of one length (a model's outputs) decrypts to the rows of a 2-D array."""
    if not isinstance(vector, CkksVector):
        if not isinstance(vector, Sequence) or not vector:
            raise PrivacyError(
                f"vector must be a CkksVector or a non-empty sequence of them, "
                f"got {type(vector).__name__}"
            )
        return np.stack([decrypt(secret, item) for item in vector])
    if not secret.is_private:
        raise PrivacyError("decrypting needs the private context (with the secret key)")
    if secret.fingerprint != vector.context.fingerprint:
        raise PrivacyError("the vector was encrypted under another key pair than this context's")
    key = secret.tenseal.secret_key()
    pieces = [np.asarray(chunk.decrypt(key), dtype=np.float64) for chunk in vector.chunks]
    return np.concatenate(pieces)
