"""CKKS contexts and vectors as :mod:`privet.wire` messages: TenSEAL's bytes inside
privet's framing (never pickle).

Four kinds, so that no message is taken for another::

    kind                      arrays                        meta
    he.ckks.public_context    context u8 (bytes,)           scheme, parameters, keys,
                                                            fingerprint
    he.ckks.secret_context    context u8 (bytes,)           the same
    he.ckks.vector            chunk_0 ... u8 (bytes,)       scheme, fingerprint, lengths,
    he.ckks.columns           v0_c0, v0_c1, ... u8          chunks, digest

A public context carries the public key and only the evaluation keys its
:class:`~privet.he.ckks.KeyNeeds` name (relinearization keys, and Galois keys only
for rotations: a public context with Galois keys is about 20 times larger). The
secret key travels only as a ``secret_context``: :func:`decode_public_context`
refuses a context holding one, :func:`encode_public_context` never writes it.

Decoding checks, before anything is used: the exact meta keys; that the loaded
context's ring degree, prime chain and scale are the declared parameters, that
it holds the declared keys, and that its fingerprint (SHA-256 of parameters and
public key) is the declared one; for vectors, that the fingerprint is the
receiving context's (else :class:`~privet.errors.PrivacyError`: wrong key) and
that the SHA-256 ``digest`` of meta and bytes matches (else
:class:`~privet.wire.WireError`). SEAL loads a corrupted ciphertext without
complaint and decrypts it to noise, so the digest is what catches corruption; it
is not authentication (anyone can recompute it), which is the transport's job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.he.ckks import _tenseal
from privet.he.ckks.columns import EncryptedColumns
from privet.he.ckks.context import CkksContext, KeyNeeds
from privet.he.ckks.parameters import CkksParameters
from privet.he.ckks.vector import CkksVector
from privet.wire import WireError, decode_message, encode_message

__all__ = [
    "COLUMNS_KIND",
    "PUBLIC_CONTEXT_KIND",
    "SECRET_CONTEXT_KIND",
    "VECTOR_KIND",
    "decode_columns",
    "decode_public_context",
    "decode_secret_context",
    "decode_vector",
    "encode_columns",
    "encode_public_context",
    "encode_secret_context",
    "encode_vector",
]

PUBLIC_CONTEXT_KIND: Final = "he.ckks.public_context"
SECRET_CONTEXT_KIND: Final = "he.ckks.secret_context"
VECTOR_KIND: Final = "he.ckks.vector"
COLUMNS_KIND: Final = "he.ckks.columns"
_SCHEME: Final = "ckks"
_CONTEXT_META: Final = frozenset({"scheme", "parameters", "keys", "fingerprint"})
_VECTORS_META: Final = frozenset({"scheme", "fingerprint", "lengths", "chunks", "digest"})
_PARAMETER_FIELDS: Final = frozenset(CkksParameters.__dataclass_fields__)


def _bytes_array(data: bytes) -> NDArray[np.uint8]:
    return np.frombuffer(data, dtype=np.uint8)


def _check_meta(meta: Mapping[str, Any], keys: frozenset[str], kind: str) -> None:
    if set(meta) != keys:
        raise WireError(f"{kind} meta keys must be exactly {sorted(keys)}, got {sorted(meta)}")
    if meta["scheme"] != _SCHEME:
        raise WireError(f"{kind} scheme must be {_SCHEME!r}, got {meta['scheme']!r}")


def _encode_context(context: CkksContext, kind: str, keys: KeyNeeds, secret: bool) -> bytes:
    data = context.tenseal.serialize(
        save_public_key=True,
        save_secret_key=secret,
        save_galois_keys=keys.rotations,
        save_relin_keys=keys.relinearization,
    )
    parameters = asdict(context.parameters)
    parameters["coeff_mod_bit_sizes"] = list(context.parameters.coeff_mod_bit_sizes)
    meta = {
        "scheme": _SCHEME,
        "parameters": parameters,
        "keys": {"relinearization": keys.relinearization, "rotations": keys.rotations},
        "fingerprint": context.fingerprint,
    }
    return encode_message(kind, meta, {"context": _bytes_array(data)})


def encode_public_context(context: CkksContext, keys: KeyNeeds | None = None) -> bytes:
    """The public part of ``context`` (never its secret key) with only ``keys``
    (default: the keys the context holds)."""
    keys = context.keys if keys is None else keys
    context.require(keys)
    return _encode_context(context, PUBLIC_CONTEXT_KIND, keys, secret=False)


def encode_secret_context(context: CkksContext) -> bytes:
    """``context`` with its secret key, for the key holder's own storage."""
    if not context.is_private:
        raise PrivacyError("encode_secret_context needs a private context (with the secret key)")
    return _encode_context(context, SECRET_CONTEXT_KIND, context.keys, secret=True)


def _parameters_from(meta: Mapping[str, Any], kind: str) -> CkksParameters:
    raw = meta["parameters"]
    if not isinstance(raw, Mapping) or set(raw) != _PARAMETER_FIELDS:
        raise WireError(f"{kind} parameters must have exactly {sorted(_PARAMETER_FIELDS)}")
    values = dict(raw)
    chain = values["coeff_mod_bit_sizes"]
    if not isinstance(chain, list) or not all(type(bits) is int for bits in chain):
        raise WireError(f"{kind} coeff_mod_bit_sizes must be a list of ints, got {chain!r:.60}")
    values["coeff_mod_bit_sizes"] = tuple(chain)
    for name, value in values.items():
        if name != "coeff_mod_bit_sizes" and type(value) is not int:
            raise WireError(f"{kind} parameter {name!r} must be an int, got {value!r:.60}")
    return CkksParameters(**values)


def _keys_from(meta: Mapping[str, Any], kind: str) -> KeyNeeds:
    raw = meta["keys"]
    if (
        not isinstance(raw, Mapping)
        or set(raw) != {"relinearization", "rotations"}
        or not all(type(value) is bool for value in raw.values())
    ):
        raise WireError(f"{kind} keys must be {{relinearization: bool, rotations: bool}}")
    return KeyNeeds(relinearization=raw["relinearization"], rotations=raw["rotations"])


def _decode_context(data: bytes, kind: str) -> CkksContext:
    message = decode_message(data, expected_kind=kind)
    _check_meta(message.meta, _CONTEXT_META, kind)
    if list(message.arrays) != ["context"] or message.arrays["context"].dtype != np.uint8:
        raise WireError(f"{kind} arrays must be exactly ['context'] (uint8)")
    parameters = _parameters_from(message.meta, kind)
    keys = _keys_from(message.meta, kind)
    try:
        loaded = _tenseal.tenseal.context_from(message.arrays["context"].tobytes())
    except (RuntimeError, ValueError) as error:
        raise WireError(f"{kind} bytes are not a TenSEAL context: {error}") from error
    if loaded.is_private() != (kind == SECRET_CONTEXT_KIND):
        raise PrivacyError(
            "a public context must not hold a secret key"
            if kind == PUBLIC_CONTEXT_KIND
            else "a secret context must hold its secret key"
        )
    _check_loaded_parameters(loaded, parameters, kind)
    context = CkksContext(loaded, parameters, keys)
    if context.fingerprint != message.meta["fingerprint"]:
        raise WireError(f"{kind} fingerprint does not match its parameters and public key")
    return context


def _check_loaded_parameters(loaded: Any, parameters: CkksParameters, kind: str) -> None:
    # Reading the chain needs sealapi's Modulus type registered with pybind11.
    import tenseal.sealapi  # type: ignore[import-untyped]  # noqa: F401

    parms = loaded.seal_context().data.key_context_data().parms()
    degree = int(parms.poly_modulus_degree())
    chain = tuple(int(prime.bit_count()) for prime in parms.coeff_modulus())
    scale = float(loaded.global_scale)
    declared = (parameters.poly_modulus_degree, parameters.coeff_mod_bit_sizes)
    if (degree, chain) != declared or scale != 2.0**parameters.scale_bits:
        raise WireError(
            f"{kind} holds N = {degree}, chain {list(chain)}, scale {scale:g}, but declares "
            f"N = {declared[0]}, chain {list(declared[1])}, scale 2^{parameters.scale_bits}"
        )


def decode_public_context(data: bytes) -> CkksContext:
    """A public context from :func:`encode_public_context` (refuses a secret key)."""
    return _decode_context(data, PUBLIC_CONTEXT_KIND)


def decode_secret_context(data: bytes) -> CkksContext:
    """A private context from :func:`encode_secret_context`."""
    return _decode_context(data, SECRET_CONTEXT_KIND)


def _digest(meta: Mapping[str, Any], raw: Sequence[bytes]) -> str:
    header = json.dumps(dict(meta), sort_keys=True, separators=(",", ":")).encode()
    hasher = hashlib.sha256(len(header).to_bytes(8, "big") + header)
    for piece in raw:
        hasher.update(len(piece).to_bytes(8, "big"))
        hasher.update(piece)
    return hasher.hexdigest()


def _encode_vectors(kind: str, vectors: Sequence[CkksVector]) -> bytes:
    fingerprint = vectors[0].context.fingerprint
    if any(vector.context.fingerprint != fingerprint for vector in vectors):
        raise PrivacyError("vectors must be encrypted under one context's keys")
    arrays: dict[str, NDArray[np.uint8]] = {}
    raw: list[bytes] = []
    for index, vector in enumerate(vectors):
        for chunk_index, chunk in enumerate(vector.chunks):
            data = chunk.serialize()
            raw.append(data)
            arrays[f"v{index}_c{chunk_index}"] = _bytes_array(data)
    meta: dict[str, Any] = {
        "scheme": _SCHEME,
        "fingerprint": fingerprint,
        "lengths": [len(vector) for vector in vectors],
        "chunks": [len(vector.chunks) for vector in vectors],
    }
    meta["digest"] = _digest(meta, raw)
    return encode_message(kind, meta, arrays)


def _decode_vectors(kind: str, context: CkksContext, data: bytes) -> tuple[CkksVector, ...]:
    message = decode_message(data, expected_kind=kind)
    meta = message.meta
    _check_meta(meta, _VECTORS_META, kind)
    lengths, chunks = meta["lengths"], meta["chunks"]
    if (
        not isinstance(lengths, list)
        or not isinstance(chunks, list)
        or len(lengths) != len(chunks)
        or not lengths
        or not all(type(n) is int and n >= 1 for n in [*lengths, *chunks])
    ):
        raise WireError(f"{kind} lengths and chunks must be equal-length lists of positive ints")
    names = [f"v{i}_c{k}" for i, count in enumerate(chunks) for k in range(count)]
    if list(message.arrays) != names:
        raise WireError(
            f"{kind} arrays must be exactly {names[:4]}..., got {list(message.arrays)[:4]}"
        )
    raw = [message.arrays[name].tobytes() for name in names]
    if meta["digest"] != _digest({k: v for k, v in meta.items() if k != "digest"}, raw):
        raise WireError(f"{kind} digest must be SHA-256 of its meta and bytes: corrupted message")
    if meta["fingerprint"] != context.fingerprint:
        raise PrivacyError(f"{kind} was encrypted under another key pair than the given context's")
    vectors: list[CkksVector] = []
    position = 0
    for length, count in zip(lengths, chunks, strict=True):
        pieces = []
        for _ in range(count):
            try:
                pieces.append(_tenseal.tenseal.ckks_vector_from(context.tenseal, raw[position]))
            except (RuntimeError, ValueError) as error:
                raise WireError(f"{kind} bytes are not a TenSEAL CKKS vector: {error}") from error
            position += 1
        vector = CkksVector(context, pieces)
        if len(vector) != length:
            raise WireError(f"{kind} declares length {length}, holds {len(vector)}")
        vectors.append(vector)
    return tuple(vectors)


def encode_vector(vector: CkksVector) -> bytes:
    """``vector`` as bytes (its ciphertexts only; no keys)."""
    return _encode_vectors(VECTOR_KIND, [vector])


def decode_vector(context: CkksContext, data: bytes) -> CkksVector:
    """A vector from :func:`encode_vector`, bound to ``context`` (the same keys)."""
    (vector,) = _decode_vectors(VECTOR_KIND, context, data)
    return vector


def encode_columns(columns: EncryptedColumns) -> bytes:
    """Encrypted columns as one message."""
    return _encode_vectors(COLUMNS_KIND, columns.columns)


def decode_columns(context: CkksContext, data: bytes) -> EncryptedColumns:
    """Columns from :func:`encode_columns`, bound to ``context`` (the same keys)."""
    return EncryptedColumns(_decode_vectors(COLUMNS_KIND, context, data))
