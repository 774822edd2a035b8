"""Credentials: client tokens and their digest table; a self-signed CA and server certificate.

:func:`create_self_signed` makes a one-off certificate authority, signs one
server certificate with it and *discards the CA key*: nothing else can ever be
signed by that CA, so the directory it writes cannot mint certificates if
stolen. Clients trust ``ca.pem``; the server presents ``server.pem`` with
``server.key``. A real deployment would rather use its own PKI; these files
are for a first run, a lab, or loopback tests.

:func:`issue_tokens` draws one random token per client (from the OS CSPRNG)
and writes the server's table of their SHA-256 digests; the plaintext tokens
are returned once, to be handed to the silos, and never stored by the server.
Private keys and token files are written with mode 0600, atomically (a
temporary file renamed into place).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from privet.errors import PrivacyError
from privet.fl.deploy.protocol import check_client_id
from privet.wire.files import write_atomically

__all__ = [
    "TlsFiles",
    "TokenTable",
    "check_token",
    "create_self_signed",
    "hash_token",
    "issue_tokens",
    "write_private_file",
]

#: Where the server certificate is valid by default: loopback by name and by address.
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


_DIGEST = re.compile(r"[0-9a-f]{64}", re.ASCII)
_TOKEN = re.compile(r"[\x21-\x7e]{16,512}", re.ASCII)  # printable ASCII: gRPC metadata
# A digest no token hashes to in practice: unknown ids are compared against it so that
# refusing an unknown id takes as long as refusing a wrong token.
_NO_DIGEST: Final = bytes(32)


def hash_token(token: str) -> str:
    """SHA-256 of the token's UTF-8 bytes, as 64 lower-case hex digits."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token(token: object) -> str:
    """Tokens are 16 to 512 printable ASCII characters (they travel as gRPC metadata)."""
    if not isinstance(token, str) or _TOKEN.fullmatch(token) is None:
        # Never echo a token, even a malformed one: say only what kind of value it was.
        shown = f"{len(token)} characters" if isinstance(token, str) else type(token).__name__
        raise PrivacyError(
            f"token must be 16 to 512 printable ASCII characters without spaces, got {shown}"
        )
    return token


class TokenTable:
    """Client ids and the SHA-256 digests of their tokens: what the server stores.

    A digest table, not the tokens: a leaked table does not let anyone join.
    Tokens are drawn with 256 bits of entropy (:func:`issue_tokens`), so an
    unsalted fast hash is enough; passwords would need a slow one.

    Parameters
    ----------
    digests
        ``{client id: 64 lower-case hex digits}`` (see :func:`hash_token`).
    """

    def __init__(self, digests: Mapping[str, str]) -> None:
        if not isinstance(digests, Mapping) or not digests:
            raise PrivacyError(
                f"digests must be a non-empty mapping of client ids, got {digests!r}"
            )
        table: dict[str, bytes] = {}
        for client_id, digest in digests.items():
            check_client_id(client_id)
            if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
                raise PrivacyError(
                    f"token digest of {client_id!r} must be 64 lower-case hex digits, "
                    f"got {str(digest)[:80]!r}"
                )
            table[client_id] = bytes.fromhex(digest)
        self._table = table

    @classmethod
    def from_tokens(cls, tokens: Mapping[str, str]) -> TokenTable:
        """The table for plaintext tokens ``{client id: token}`` (hashed here, not kept)."""
        if not isinstance(tokens, Mapping):
            raise PrivacyError(f"tokens must be a mapping of client ids to tokens, got {tokens!r}")
        return cls({cid: hash_token(check_token(token)) for cid, token in tokens.items()})

    @property
    def client_ids(self) -> list[str]:
        return list(self._table)

    @property
    def digests(self) -> dict[str, str]:
        return {client_id: digest.hex() for client_id, digest in self._table.items()}

    def verify(self, client_id: str | None, token: str | None) -> bool:
        """Whether ``token`` is this client's; constant time in the token and the id's existence."""
        stored = self._table.get(client_id) if isinstance(client_id, str) else None
        presented = hashlib.sha256(
            token.encode("utf-8") if isinstance(token, str) else b""
        ).digest()
        same = hmac.compare_digest(presented, _NO_DIGEST if stored is None else stored)
        return same and stored is not None and isinstance(token, str)


@dataclass(frozen=True)
class TlsFiles:
    """Paths written by :func:`create_self_signed` (PEM files)."""

    ca_certificate: Path
    server_certificate: Path
    server_key: Path


def write_private_file(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically, readable only by its owner (mode 0600):
    :func:`privet.wire.files.write_atomically`, which sets the mode before writing."""
    write_atomically(path, data, mode=mode)


def _san(host: str) -> object:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def create_self_signed(
    directory: str | os.PathLike[str],
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    days: int = 30,
    overwrite: bool = False,
) -> TlsFiles:
    """Create ``ca.pem``, ``server.pem`` and ``server.key`` (0600) in ``directory``.

    Keys are ECDSA P-256; certificates are X.509 v3 signed with SHA-256. The
    server certificate names every entry of ``hosts`` as a subject alternative
    name (IP addresses as such, anything else as a DNS name) and is valid for
    server authentication only.

    Parameters
    ----------
    directory
        Created if missing.
    hosts
        Names and addresses clients will dial.
    days
        Validity of both certificates, from one hour ago (clock skew).
    overwrite
        Replace existing files; by default existing credentials are never clobbered.

    Raises
    ------
    PrivacyError
        ``hosts`` is empty, ``days`` is not a positive integer, or a file exists.
    ImportError
        ``cryptography`` is not installed (``pip install privet[fl]``).
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "create_self_signed needs cryptography: pip install privet[fl]"
        ) from error

    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise PrivacyError(f"days must be an integer >= 1, got {days!r}")
    if isinstance(hosts, str) or not hosts or not all(isinstance(h, str) and h for h in hosts):
        raise PrivacyError(f"hosts must be a non-empty list of host names, got {hosts!r}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    if not overwrite:
        for path in (files.ca_certificate, files.server_certificate, files.server_key):
            if path.exists():
                raise PrivacyError(f"{path} must not exist (pass overwrite=True), got a file")

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "privet self-signed CA")])
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([_san(host) for host in hosts]),  # type: ignore[misc]
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(files.server_key, key_pem)
    write_private_file(
        files.server_certificate,
        server_certificate.public_bytes(serialization.Encoding.PEM),
        mode=0o644,
    )
    write_private_file(
        files.ca_certificate, ca_certificate.public_bytes(serialization.Encoding.PEM), mode=0o644
    )
    return files


def issue_tokens(client_ids: Sequence[str], table_path: str | os.PathLike[str]) -> dict[str, str]:
    """Draw a 256-bit token per client; write the server's digest table; return the tokens.

    The table (JSON ``{"client id": "sha256 hex digest"}``, mode 0600) is what
    :func:`privet.fl.deploy.serve` reads; the returned ``{client id: token}``
    is shown once and distributed to the silos (each keeps its own token,
    e.g. in a 0600 file written with :func:`write_private_file`).
    """
    if isinstance(client_ids, str) or not client_ids:
        raise PrivacyError(f"client_ids must be a non-empty list of ids, got {client_ids!r}")
    for client_id in client_ids:
        check_client_id(client_id)
    if len(set(client_ids)) != len(client_ids):
        raise PrivacyError(f"client_ids must be unique, got {list(client_ids)!r}")
    tokens = {client_id: secrets.token_urlsafe(32) for client_id in client_ids}
    table = TokenTable.from_tokens(tokens)
    write_private_file(table_path, json.dumps(table.digests, indent=2).encode() + b"\n")
    return tokens
