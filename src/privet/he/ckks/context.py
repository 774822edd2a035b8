"""A CKKS context built from chosen parameters, with only the evaluation keys it needs.

A :class:`CkksContext` wraps a TenSEAL context together with the
:class:`~privet.he.ckks.parameters.CkksParameters` it was built from and the
:class:`KeyNeeds` of the computations it is for. The key holder creates it
(:meth:`CkksContext.create`: private, it can decrypt) and sends the evaluator its
:meth:`~CkksContext.public` part, which holds the public key and only the
evaluation keys the computation needs: relinearization keys for products of two
ciphertexts (about 2.5 MB at N = 8192), Galois keys only for rotations (sums and
dot products across slots: about 48 MB more at N = 8192, which one ciphertext per
feature avoids).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property

from privet.errors import PrivacyError
from privet.he.ckks._tenseal import TenSealContext, tenseal
from privet.he.ckks.parameters import CkksParameters, choose_parameters

__all__ = ["CkksContext", "KeyNeeds", "Requirements", "bits_for_magnitude"]


@dataclass(frozen=True)
class KeyNeeds:
    """Which evaluation keys a computation uses.

    Attributes
    ----------
    relinearization
        Products of two ciphertexts (squares, polynomial activations).
    rotations
        Moving values across slots (``sum``, ``dot``, vector-matrix products).
    """

    relinearization: bool = True
    rotations: bool = False

    def union(self, other: KeyNeeds) -> KeyNeeds:
        """The keys either computation needs."""
        return KeyNeeds(
            self.relinearization or other.relinearization, self.rotations or other.rotations
        )


def bits_for_magnitude(magnitude: float) -> int:
    """Integer bits for values below ``magnitude``: ``|value| < 2^bits``, one bit of slack
    for CKKS noise on top."""
    return max(1, math.ceil(math.log2(max(magnitude, 1.0))) + 1)


@dataclass(frozen=True)
class Requirements:
    """What a computation needs of a context, known before anything is encrypted.

    Attributes
    ----------
    depth
        Multiplications in sequence.
    integer_bits
        Intermediates and results stay below ``2^integer_bits`` in magnitude.
    keys
        Evaluation keys it uses.
    """

    depth: int
    integer_bits: int
    keys: KeyNeeds

    def parameters(
        self, *, precision_bits: int = 20, length: int = 1, input_bound: float | None = None
    ) -> CkksParameters:
        """The smallest 128-bit-secure parameters for the computation
        (:func:`~privet.he.ckks.choose_parameters`).

        ``input_bound``, if given, is the largest magnitude of the values to encrypt;
        the integer bits then cover it too.
        """
        integer_bits = self.integer_bits
        if input_bound is not None:
            if not (math.isfinite(input_bound) and input_bound > 0):
                raise PrivacyError(f"input_bound must be finite and > 0, got {input_bound}")
            integer_bits = max(integer_bits, bits_for_magnitude(input_bound))
        return choose_parameters(
            self.depth, precision_bits=precision_bits, integer_bits=integer_bits, length=length
        )

    def check(self, context: CkksContext) -> None:
        """Refuse a context too shallow, too narrow or missing keys, naming what is needed."""
        parameters = context.parameters
        if parameters.depth < self.depth:
            raise PrivacyError(
                f"the computation needs multiplicative depth {self.depth}, but the context has "
                f"depth {parameters.depth} (chain {list(parameters.coeff_mod_bit_sizes)}); "
                f"build it from requirements.parameters()"
            )
        if parameters.integer_bits < self.integer_bits:
            raise PrivacyError(
                f"the computation needs {self.integer_bits} integer bits, but the context has "
                f"{parameters.integer_bits}; build it from requirements.parameters()"
            )
        context.require(self.keys)


class CkksContext:
    """A TenSEAL CKKS context, its parameters and its keys.

    Build one with :meth:`create` (the key holder) or receive a public one through
    :func:`privet.he.ckks.decode_public_context`; the constructor wraps an
    existing TenSEAL context whose parameters it checks.
    """

    def __init__(
        self, tenseal_context: TenSealContext, parameters: CkksParameters, keys: KeyNeeds
    ) -> None:
        if not isinstance(tenseal_context, tenseal.Context):
            raise PrivacyError(
                f"tenseal_context must be a tenseal.Context, got {type(tenseal_context).__name__}"
            )
        if keys.relinearization and not tenseal_context.has_relin_keys():
            raise PrivacyError("keys need relinearization, but the context holds no relin keys")
        if keys.rotations and not tenseal_context.has_galois_keys():
            raise PrivacyError("keys need rotations, but the context holds no Galois keys")
        self._context = tenseal_context
        self._parameters = parameters
        self._keys = keys

    @classmethod
    def create(cls, parameters: CkksParameters, keys: KeyNeeds | None = None) -> CkksContext:
        """A fresh private context (secret key included) for ``parameters``.

        Parameters
        ----------
        parameters
            From :func:`~privet.he.ckks.choose_parameters` or a model's
            ``requirements.parameters()``.
        keys
            Evaluation keys to generate; relinearization keys only by default.
            Keys come from SEAL's key generator, seeded by the OS CSPRNG.
        """
        keys = KeyNeeds() if keys is None else keys
        try:
            context = tenseal.context(
                tenseal.SCHEME_TYPE.CKKS,
                poly_modulus_degree=parameters.poly_modulus_degree,
                coeff_mod_bit_sizes=list(parameters.coeff_mod_bit_sizes),
            )
        except ValueError as error:
            raise PrivacyError(
                f"SEAL refused the parameters {parameters.coeff_mod_bit_sizes} at "
                f"N = {parameters.poly_modulus_degree}: {error}"
            ) from error
        context.global_scale = 2.0**parameters.scale_bits
        if keys.rotations:
            context.generate_galois_keys()
        return cls(context, parameters, keys)

    @property
    def parameters(self) -> CkksParameters:
        """The parameters the context was built from."""
        return self._parameters

    @property
    def keys(self) -> KeyNeeds:
        """The evaluation keys the context holds."""
        return self._keys

    @property
    def tenseal(self) -> TenSealContext:
        """The TenSEAL context, for operations privet does not wrap."""
        return self._context

    @property
    def is_private(self) -> bool:
        """Whether the context holds the secret key (can decrypt)."""
        return bool(self._context.is_private())

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the parameters and public key, shared by a context and its public part."""
        public_only = self._context.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=False,
        )
        return hashlib.sha256(public_only).hexdigest()

    def public(self, keys: KeyNeeds | None = None) -> CkksContext:
        """A copy without the secret key, holding only ``keys`` (default: this context's)."""
        keys = self._keys if keys is None else keys
        self._check_holds(keys)
        data = self._context.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=keys.rotations,
            save_relin_keys=keys.relinearization,
        )
        public = CkksContext(tenseal.context_from(data), self._parameters, keys)
        public.__dict__["fingerprint"] = self.fingerprint
        return public

    def _check_holds(self, keys: KeyNeeds) -> None:
        if keys.rotations and not self._keys.rotations:
            raise PrivacyError(
                "the computation needs rotations (Galois keys), which this context was not "
                "created with: CkksContext.create(parameters, KeyNeeds(rotations=True))"
            )
        if keys.relinearization and not self._keys.relinearization:
            raise PrivacyError(
                "the computation needs relinearization keys, which this context does not hold"
            )

    def require(self, keys: KeyNeeds) -> None:
        """Raise :class:`~privet.errors.PrivacyError` unless the context holds ``keys``."""
        self._check_holds(keys)

    def __repr__(self) -> str:
        kind = "private" if self.is_private else "public"
        return (
            f"CkksContext({kind}, N={self._parameters.poly_modulus_degree}, "
            f"chain={list(self._parameters.coeff_mod_bit_sizes)}, keys={self._keys})"
        )
