"""Paillier keys and encrypted arrays as :mod:`privet.wire` messages (never pickle).

Big integers travel as fixed-width big-endian ``uint8`` rows; everything else
is JSON meta. Four kinds, so that no message is ever taken for another::

    kind                        arrays                              meta
    he.paillier.public_key      n u8 (w,)                           scheme, bits, fingerprint
    he.paillier.secret_key      n, p, q u8 (w,)                     scheme, bits, fingerprint
    he.paillier.array           ciphertexts u8 (size, 2w)           scheme, fingerprint, shape,
                                                                    frac_bits, bound, digest
    he.paillier.packed_array    ciphertexts u8 (ceil(size/k), 2w)   the above, slot_bits, slots,
                                                                    value_bound, headroom_bits,
                                                                    offset, upper

``w`` is the byte width of ``n``; big bounds are lowercase hex strings. A secret
key is its own kind: :func:`decode_public_key` refuses one (the wire layer's
kind check), and the encoders refuse a secret key where a public key belongs.

Decoding checks, before anything is built: the exact meta keys; ``n`` of the
declared length, its fingerprint (SHA-256 of ``n``) equal to the declared one;
for a secret key ``p q = n``, both prime; for arrays, that the fingerprint is
the expected key's (else :class:`~privet.errors.PrivacyError`: wrong key), that
the SHA-256 ``digest`` of the meta and ciphertext bytes matches (else
:class:`~privet.wire.WireError`: corrupted bytes), and that every ciphertext is
in ``[1, n^2)`` and coprime to ``n``. The digest detects accidental corruption
only: anyone can recompute it, and Paillier ciphertexts are malleable by
design, so authenticity is the transport's job (an authenticated channel).
Bounds and slot layouts are re-checked against the key as when computed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.he._gmp import Mpz, gmpy2, mpz, to_bytes
from privet.he.arrays import EncryptedArray, check_public_key, object_array
from privet.he.encoding import MAX_FRAC_BITS
from privet.he.packed import PackedEncryptedArray
from privet.he.packing import MAX_HEADROOM_BITS, PackingLayout
from privet.he.paillier import PaillierPublicKey, PaillierSecretKey, fingerprint_of
from privet.wire import WireError, decode_message, encode_message

__all__ = [
    "ARRAY_KIND",
    "PACKED_ARRAY_KIND",
    "PUBLIC_KEY_KIND",
    "SECRET_KEY_KIND",
    "decode_encrypted_array",
    "decode_packed_array",
    "decode_public_key",
    "decode_secret_key",
    "encode_encrypted_array",
    "encode_packed_array",
    "encode_public_key",
    "encode_secret_key",
]

PUBLIC_KEY_KIND: Final = "he.paillier.public_key"
SECRET_KEY_KIND: Final = "he.paillier.secret_key"
ARRAY_KIND: Final = "he.paillier.array"
PACKED_ARRAY_KIND: Final = "he.paillier.packed_array"
_SCHEME: Final = "paillier/g=n+1/v1"
_HEX = re.compile(r"0|[1-9a-f][0-9a-f]{0,2047}", re.ASCII)
_KEY_META: Final = frozenset({"scheme", "bits", "fingerprint"})
_ARRAY_META: Final = frozenset({"scheme", "fingerprint", "shape", "frac_bits", "bound", "digest"})
_PACKED_META: Final = frozenset(
    {
        "scheme",
        "fingerprint",
        "shape",
        "frac_bits",
        "digest",
        "slot_bits",
        "slots",
        "value_bound",
        "headroom_bits",
        "offset",
        "upper",
    }
)


# -- helpers -----------------------------------------------------------------------------------


def _check_meta(meta: Mapping[str, Any], keys: frozenset[str], kind: str) -> None:
    if set(meta) != keys:
        raise WireError(f"{kind} meta keys must be exactly {sorted(keys)}, got {sorted(meta)}")
    if meta["scheme"] != _SCHEME:
        raise WireError(f"{kind} scheme must be {_SCHEME!r}, got {meta['scheme']!r}")


def _meta_int(meta: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = meta[name]
    if type(value) is not int or not low <= value <= high:
        raise WireError(f"meta {name!r} must be an int in [{low}, {high}], got {value!r}")
    return value


def _meta_hex(meta: Mapping[str, Any], name: str) -> int:
    value = meta[name]
    if not isinstance(value, str) or _HEX.fullmatch(value) is None:
        raise WireError(f"meta {name!r} must be a lowercase hex integer, got {value!r:.60}")
    return int(value, 16)


def _meta_shape(meta: Mapping[str, Any]) -> tuple[int, ...]:
    shape = meta["shape"]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise WireError(f"meta 'shape' must be a list of non-negative ints, got {shape!r:.60}")
    return tuple(shape)


def _n_bytes(public_key: PaillierPublicKey) -> int:
    return (public_key.bits + 7) // 8


def _key_arrays(
    message_arrays: Mapping[str, NDArray[Any]], names: Sequence[str], width: int
) -> list[int]:
    if list(message_arrays) != list(names):
        raise WireError(f"key arrays must be exactly {list(names)}, got {list(message_arrays)}")
    values = []
    for name in names:
        array = message_arrays[name]
        if array.dtype != np.uint8 or array.shape != (width,):
            raise WireError(
                f"array {name!r} must be uint8 of shape ({width},), got {array.dtype} {array.shape}"
            )
        values.append(int.from_bytes(array.tobytes(), "big"))
    return values


def _key_meta(public_key: PaillierPublicKey) -> dict[str, Any]:
    return {"scheme": _SCHEME, "bits": public_key.bits, "fingerprint": public_key.fingerprint}


def _read_public(
    meta: Mapping[str, Any], n: int, kind: str, insecure_for_tests: bool
) -> PaillierPublicKey:
    bits = meta["bits"]
    if n.bit_length() != bits:
        raise WireError(f"{kind} n must have the declared {bits!r} bits, got {n.bit_length()}")
    if fingerprint_of(n) != meta["fingerprint"]:
        raise WireError(
            f"{kind} fingerprint must be SHA-256 of n, got {meta['fingerprint']!r:.40}: "
            "the key bytes are corrupted"
        )
    return PaillierPublicKey(n, insecure_for_tests=insecure_for_tests)


def _uint8(value: int, width: int) -> NDArray[np.uint8]:
    return np.frombuffer(to_bytes(value, width), dtype=np.uint8)


def _digest(meta: Mapping[str, Any], raw: bytes) -> str:
    header = json.dumps(dict(meta), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(len(header).to_bytes(8, "big") + header + raw).hexdigest()


def _ciphertext_rows(ciphertexts: Sequence[Mpz], width: int) -> bytes:
    return b"".join(to_bytes(c, width) for c in ciphertexts)


def _read_ciphertexts(
    array: NDArray[Any], rows: int, public_key: PaillierPublicKey, kind: str
) -> list[Mpz]:
    width = public_key.ciphertext_bytes
    if array.dtype != np.uint8 or array.shape != (rows, width):
        raise WireError(
            f"{kind} ciphertexts must be uint8 of shape ({rows}, {width}), "
            f"got {array.dtype} {array.shape}"
        )
    raw = array.tobytes()
    n, n2 = public_key._n, public_key._n2
    result = []
    for index in range(rows):
        c = mpz(int.from_bytes(raw[index * width : (index + 1) * width], "big"))
        if not 0 < c < n2 or gmpy2.gcd(c, n) != 1:
            raise WireError(
                f"{kind} ciphertext {index} must be in [1, n^2) and coprime to n, got one that "
                "is not: the bytes are corrupted"
            )
        result.append(c)
    return result


def _check_digest(meta: Mapping[str, Any], raw: bytes, kind: str) -> None:
    rest = {key: value for key, value in meta.items() if key != "digest"}
    if meta["digest"] != _digest(rest, raw):
        raise WireError(
            f"{kind} digest must be SHA-256 of its meta and ciphertext bytes, got a mismatch: "
            "the message is corrupted"
        )


# -- keys --------------------------------------------------------------------------------------


def encode_public_key(public_key: PaillierPublicKey) -> bytes:
    """A public key as a ``he.paillier.public_key`` message (a secret key is refused)."""
    key = check_public_key(public_key)
    return encode_message(PUBLIC_KEY_KIND, _key_meta(key), {"n": _uint8(key.n, _n_bytes(key))})


def decode_public_key(data: bytes, *, insecure_for_tests: bool = False) -> PaillierPublicKey:
    """Decode and check a public key (a secret key message is refused by kind).

    Raises
    ------
    WireError
        Malformed or corrupted bytes, or another message kind.
    PrivacyError
        A modulus below the size floor.
    """
    message = decode_message(data, expected_kind=PUBLIC_KEY_KIND)
    _check_meta(message.meta, _KEY_META, PUBLIC_KEY_KIND)
    bits = _meta_int(message.meta, "bits", 1, 1 << 20)
    (n,) = _key_arrays(message.arrays, ["n"], (bits + 7) // 8)
    return _read_public(message.meta, n, PUBLIC_KEY_KIND, insecure_for_tests)


def encode_secret_key(secret_key: PaillierSecretKey) -> bytes:
    """A secret key as a ``he.paillier.secret_key`` message: keep it secret."""
    if not isinstance(secret_key, PaillierSecretKey):
        raise PrivacyError(
            f"secret_key must be a PaillierSecretKey, got {type(secret_key).__name__}"
        )
    public = secret_key.public_key
    width = _n_bytes(public)
    arrays = {
        "n": _uint8(public.n, width),
        "p": _uint8(secret_key.p, width),
        "q": _uint8(secret_key.q, width),
    }
    return encode_message(SECRET_KEY_KIND, _key_meta(public), arrays)


def decode_secret_key(data: bytes, *, insecure_for_tests: bool = False) -> PaillierSecretKey:
    """Decode a secret key and check it: ``p q = n``, both prime, ``n`` as fingerprinted."""
    message = decode_message(data, expected_kind=SECRET_KEY_KIND)
    _check_meta(message.meta, _KEY_META, SECRET_KEY_KIND)
    bits = _meta_int(message.meta, "bits", 1, 1 << 20)
    n, p, q = _key_arrays(message.arrays, ["n", "p", "q"], (bits + 7) // 8)
    public = _read_public(message.meta, n, SECRET_KEY_KIND, insecure_for_tests)
    try:
        return PaillierSecretKey(public, p, q)
    except PrivacyError as error:
        raise WireError(f"{SECRET_KEY_KIND} is not a valid key: {error}") from None


# -- encrypted arrays --------------------------------------------------------------------------


def _array_meta(
    public_key: PaillierPublicKey, shape: tuple[int, ...], frac_bits: int
) -> dict[str, Any]:
    return {
        "scheme": _SCHEME,
        "fingerprint": public_key.fingerprint,
        "shape": list(shape),
        "frac_bits": frac_bits,
    }


def _read_array_header(
    data: bytes, kind: str, keys: frozenset[str], public_key: PaillierPublicKey
) -> tuple[Mapping[str, Any], NDArray[Any], tuple[int, ...], int]:
    key = check_public_key(public_key)
    message = decode_message(data, expected_kind=kind)
    meta = message.meta
    _check_meta(meta, keys, kind)
    if meta["fingerprint"] != key.fingerprint:
        raise PrivacyError(
            f"{kind} must be encrypted under the key {key.fingerprint[:16]}..., got one under "
            f"{str(meta['fingerprint'])[:16]}... (wrong key)"
        )
    if list(message.arrays) != ["ciphertexts"]:
        raise WireError(
            f"{kind} arrays must be exactly ['ciphertexts'], got {list(message.arrays)}"
        )
    shape = _meta_shape(meta)
    frac_bits = _meta_int(meta, "frac_bits", 0, MAX_FRAC_BITS)
    ciphertexts = message.arrays["ciphertexts"]
    _check_digest(meta, ciphertexts.tobytes(), kind)
    return meta, ciphertexts, shape, frac_bits


def encode_encrypted_array(array: EncryptedArray) -> bytes:
    """An :class:`~privet.he.arrays.EncryptedArray` as a ``he.paillier.array`` message."""
    if not isinstance(array, EncryptedArray):
        raise PrivacyError(f"array must be an EncryptedArray, got {type(array).__name__}")
    key = array.public_key
    width = key.ciphertext_bytes
    raw = _ciphertext_rows(array.ciphertexts.ravel().tolist(), width)
    meta = _array_meta(key, array.shape, array.frac_bits)
    meta["bound"] = format(array.bound, "x")
    meta["digest"] = _digest(meta, raw)
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(array.size, width)
    return encode_message(ARRAY_KIND, meta, {"ciphertexts": rows})


def decode_encrypted_array(data: bytes, public_key: PaillierPublicKey) -> EncryptedArray:
    """Decode an encrypted array made under ``public_key``, checking every ciphertext.

    Raises
    ------
    PrivacyError
        The array was made under another key.
    WireError
        Malformed or corrupted bytes, a ciphertext outside ``Z_{n^2}^*``, or a
        bound outside the plaintext range.
    """
    meta, rows, shape, frac_bits = _read_array_header(data, ARRAY_KIND, _ARRAY_META, public_key)
    bound = _meta_hex(meta, "bound")
    if bound > public_key.max_int:
        raise WireError(f"{ARRAY_KIND} bound must be at most max_int = n//3 - 1, got a larger one")
    ciphertexts = _read_ciphertexts(rows, math.prod(shape), public_key, ARRAY_KIND)
    return EncryptedArray(public_key, object_array(ciphertexts, shape), frac_bits, bound)


def encode_packed_array(array: PackedEncryptedArray) -> bytes:
    """A :class:`~privet.he.packed.PackedEncryptedArray` as a ``he.paillier.packed_array``."""
    if not isinstance(array, PackedEncryptedArray):
        raise PrivacyError(f"array must be a PackedEncryptedArray, got {type(array).__name__}")
    key, layout = array.public_key, array.layout
    width = key.ciphertext_bytes
    raw = _ciphertext_rows(array.ciphertexts, width)
    meta = _array_meta(key, array.shape, array.frac_bits)
    meta.update(
        {
            "slot_bits": layout.slot_bits,
            "slots": layout.slots,
            "value_bound": format(layout.value_bound, "x"),
            "headroom_bits": layout.headroom_bits,
            "offset": format(array.offset, "x"),
            "upper": format(array.upper, "x"),
        }
    )
    meta["digest"] = _digest(meta, raw)
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(len(array.ciphertexts), width)
    return encode_message(PACKED_ARRAY_KIND, meta, {"ciphertexts": rows})


def decode_packed_array(data: bytes, public_key: PaillierPublicKey) -> PackedEncryptedArray:
    """Decode a packed array made under ``public_key``; its layout must be the key's."""
    meta, rows, shape, frac_bits = _read_array_header(
        data, PACKED_ARRAY_KIND, _PACKED_META, public_key
    )
    headroom = _meta_int(meta, "headroom_bits", 0, MAX_HEADROOM_BITS)
    value_bound = _meta_hex(meta, "value_bound")
    try:
        layout = PackingLayout.for_key(public_key.bits, value_bound, headroom)
    except PrivacyError as error:
        raise WireError(f"{PACKED_ARRAY_KIND} layout is invalid: {error}") from None
    if (meta["slot_bits"], meta["slots"]) != (layout.slot_bits, layout.slots):
        raise WireError(
            f"{PACKED_ARRAY_KIND} slot_bits and slots must be {layout.slot_bits} and "
            f"{layout.slots} for this key and bound, got {meta['slot_bits']!r} and "
            f"{meta['slots']!r}"
        )
    count = layout.ciphertexts_for(math.prod(shape))
    ciphertexts = _read_ciphertexts(rows, count, public_key, PACKED_ARRAY_KIND)
    try:
        return PackedEncryptedArray(
            public_key,
            tuple(ciphertexts),
            shape,
            frac_bits,
            layout,
            _meta_hex(meta, "offset"),
            _meta_hex(meta, "upper"),
        )
    except PrivacyError as error:
        raise WireError(f"{PACKED_ARRAY_KIND} is inconsistent: {error}") from None
