"""Key agreement and authenticated encryption for secure aggregation.

Thin typed wrappers over the ``cryptography`` package for the two primitives
of Bonawitz et al. 2017 ("Practical Secure Aggregation for Privacy-Preserving
Machine Learning", CCS, section 3): a key agreement — here X25519 (RFC 7748)
followed by HKDF-SHA256 (RFC 5869) — and an authenticated encryption scheme —
here AES-256-GCM (NIST SP 800-38D) with a random 96-bit nonce.

Each client holds two key pairs per round: a *channel* pair, whose agreed keys
encrypt the Shamir shares it sends to other clients through the server, and a
*mask* pair, whose agreed keys seed the pairwise masks. Every derived key is
bound by HKDF's ``info`` to its purpose, round and pair of clients
(:func:`agreement_info`), so a key is never reused across purposes or rounds.

Every failure — a malformed or low-order public key, a wrong key, a tampered
ciphertext, wrong associated data — raises a :class:`~privet.errors.PrivacyError`
(:class:`DecryptionError` for decryption), never ``cryptography``'s own types.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privet.errors import PrivacyError

__all__ = [
    "INFO_PREFIX",
    "KEY_BYTES",
    "NONCE_BYTES",
    "PUBLIC_KEY_BYTES",
    "TAG_BYTES",
    "DecryptionError",
    "KeyPair",
    "KeyPurpose",
    "agree",
    "agreement_info",
    "exchange",
    "hkdf_sha256",
    "open_sealed",
    "seal",
]

KEY_BYTES = 32
"""Bytes of an agreed key and of an AES-256-GCM key."""

PUBLIC_KEY_BYTES = 32
"""Bytes of a raw X25519 public (and private) key (RFC 7748)."""

NONCE_BYTES = 12
"""Bytes of the random GCM nonce prepended to each ciphertext."""

TAG_BYTES = 16
"""Bytes of the GCM authentication tag appended to each ciphertext."""

INFO_PREFIX = b"privet-secagg/v1/"
"""Prefix of every HKDF ``info`` the protocol derives keys with."""


class DecryptionError(PrivacyError):
    """A ciphertext failed authentication: wrong key, tampered bytes or wrong associated data."""


class KeyPurpose(Enum):
    """What an agreed key is for; part of the HKDF ``info`` so the two never coincide."""

    CHANNEL = "channel"
    """Encrypts the shares one client sends another through the server."""
    MASK = "mask"
    """Seeds the pairwise mask between two clients."""


@dataclass(frozen=True, repr=False)
class KeyPair:
    """An X25519 key pair (RFC 7748).

    Attributes
    ----------
    private_key
        The private key; ``public_bytes`` is derived from it.
    """

    private_key: X25519PrivateKey

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh key pair from the OS CSPRNG."""
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, data: bytes) -> KeyPair:
        """The key pair of a raw 32-byte private key (e.g. one recovered from Shamir shares)."""
        if not isinstance(data, bytes) or len(data) != PUBLIC_KEY_BYTES:
            raise PrivacyError(
                f"private key must be {PUBLIC_KEY_BYTES} bytes, got {_describe_bytes(data)}"
            )
        return cls(X25519PrivateKey.from_private_bytes(data))

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte public key, what a client advertises."""
        return self.private_key.public_key().public_bytes_raw()

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key, for Shamir sharing the mask key (Bonawitz et al. 2017)."""
        return self.private_key.private_bytes_raw()

    def __repr__(self) -> str:
        # Never print the private key, e.g. in a traceback or log line.
        return f"KeyPair(public={self.public_bytes.hex()})"


def _describe_bytes(data: object) -> str:
    if isinstance(data, bytes):
        return f"{len(data)} bytes"
    return type(data).__name__


def _check_bytes(name: str, data: object) -> bytes:
    if not isinstance(data, bytes):
        raise PrivacyError(f"{name} must be bytes, got {type(data).__name__}")
    return data


def exchange(own: KeyPair, peer_public: bytes) -> bytes:
    """The raw X25519 shared secret of ``own`` and a peer's public key (RFC 7748, section 5).

    Use :func:`agree` for a key; the raw secret is not uniformly distributed.

    Raises
    ------
    PrivacyError
        ``peer_public`` is not 32 bytes, or is a low-order point whose shared
        secret is all zeros (RFC 7748, section 6.1: such a peer could force a
        known key).
    """
    if not isinstance(own, KeyPair):
        raise PrivacyError(f"own must be a KeyPair, got {type(own).__name__}")
    if not isinstance(peer_public, bytes) or len(peer_public) != PUBLIC_KEY_BYTES:
        raise PrivacyError(
            f"peer public key must be {PUBLIC_KEY_BYTES} bytes, got {_describe_bytes(peer_public)}"
        )
    try:
        return own.private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as error:
        raise PrivacyError(
            f"peer public key must not be a low-order point, got {peer_public.hex()} ({error})"
        ) from None


def hkdf_sha256(
    ikm: bytes, *, info: bytes, length: int = KEY_BYTES, salt: bytes | None = None
) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with ``salt``, expand to ``length`` bytes under ``info``.

    ``salt=None`` means a string of 32 zero bytes (RFC 5869, section 2.2).
    """
    ikm = _check_bytes("ikm", ikm)
    info = _check_bytes("info", info)
    if salt is not None:
        salt = _check_bytes("salt", salt)
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 255 * 32:
        raise PrivacyError(f"length must be an integer in [1, 8160], got {length!r}")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def agreement_info(purpose: KeyPurpose, round_id: int, u: int, v: int) -> bytes:
    """The HKDF ``info`` binding a pairwise key to its purpose, round and pair of clients.

    The format is ``b"privet-secagg/v1/<purpose>/round=<round_id>/pair=<a>,<b>"``
    with ``a < b`` the two clients' indices in increasing order, so both ends
    of a pair derive the same ``info``; for example
    ``b"privet-secagg/v1/mask/round=3/pair=2,7"``.
    """
    if not isinstance(purpose, KeyPurpose):
        raise PrivacyError(f"purpose must be a KeyPurpose, got {purpose!r}")
    for name, value in (("round_id", round_id), ("u", u), ("v", v)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PrivacyError(f"{name} must be an integer >= 0, got {value!r}")
    if u == v:
        raise PrivacyError(f"v must differ from u (a pair of two clients), got u = v = {u}")
    low, high = sorted((u, v))
    return INFO_PREFIX + f"{purpose.value}/round={round_id}/pair={low},{high}".encode("ascii")


def agree(own: KeyPair, peer_public: bytes, *, info: bytes) -> bytes:
    """A 32-byte key shared with the holder of ``peer_public``: HKDF-SHA256 of the X25519 secret.

    Both ends compute the same key from their own private key and the other's
    public key. ``info`` binds the key to its use; the protocol passes
    :func:`agreement_info`. The salt is ``None``: the X25519 output is already
    secret, and RFC 5869 (section 3.1) allows extraction without a salt.
    """
    info = _check_bytes("info", info)
    return hkdf_sha256(exchange(own, peer_public), info=info)


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise PrivacyError(f"key must be {KEY_BYTES} bytes, got {_describe_bytes(key)}")
    return key


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` with AES-256-GCM under ``key``.

    Returns ``nonce || ciphertext || tag`` with a fresh random 12-byte nonce
    from the OS CSPRNG. ``associated_data`` is authenticated but not encrypted
    nor included: the receiver must supply the same bytes (in secure
    aggregation, the round and the sender's and recipient's indices).
    Random 96-bit nonces are safe for up to 2**32 messages per key (NIST SP
    800-38D, section 8.3); a secure-aggregation key seals one.
    """
    key = _check_key(key)
    plaintext = _check_bytes("plaintext", plaintext)
    associated_data = _check_bytes("associated_data", associated_data)
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    """Decrypt :func:`seal`'s output, checking its authenticity.

    Raises
    ------
    DecryptionError
        The key or associated data is wrong, or any byte of ``ciphertext`` was
        changed, cut or added.
    PrivacyError
        ``key`` is not 32 bytes or ``ciphertext`` is shorter than a nonce and a tag.
    """
    key = _check_key(key)
    ciphertext = _check_bytes("ciphertext", ciphertext)
    associated_data = _check_bytes("associated_data", associated_data)
    if len(ciphertext) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError(
            f"ciphertext must be at least {NONCE_BYTES + TAG_BYTES} bytes (nonce and tag), "
            f"got {len(ciphertext)}"
        )
    nonce, body = ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:]
    try:
        return AESGCM(key).decrypt(nonce, body, associated_data)
    except InvalidTag:
        raise DecryptionError(
            "ciphertext must authenticate under the key and associated data, got a failed "
            "tag check: wrong key, wrong associated data or tampered bytes"
        ) from None
