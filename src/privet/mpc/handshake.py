r"""Who is on the other end: the authenticated handshake of every MPC connection.

Every pair of nodes shares one TCP connection, opened by the higher-numbered
node (:func:`dial`; the other :func:`accept`\ s). Both prove they hold the
run's 32-byte key by an HMAC-SHA256 challenge-response over fresh nonces
(each side's proof is labelled with its role, so one cannot be reflected as
the other); the listener refuses a node it does not expect, and either side
names what failed (:class:`~privet.mpc.transport.AuthenticationError`). Each
direction then gets its own 32-byte frame key, ``HMAC(key, "frames" | sender |
receiver | nonces)``, fresh per connection: the AES-256-GCM key that encrypts
and authenticates that direction's frames (:mod:`privet.mpc.tcp`), so a frame
recorded on another connection, in another run or in the other direction
fails authentication, and no key ever seals two directions (the frames'
counter nonces rely on it). Handshake messages are small privet wire
messages behind a 4-byte length, in the clear: they carry only node
numbers, nonces, proofs and refusal reasons.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import socket
import struct
import time
from collections.abc import Collection, Sequence
from typing import Final

import numpy as np

from privet.errors import PrivacyError
from privet.mpc.transport import AuthenticationError, MpcNetworkError, PeerLost, PeerTimeout
from privet.wire import Message, WireError, decode_message, encode_message

__all__ = ["KEY_BYTES", "Link", "accept", "dial", "frame_keys", "mac"]

logger = logging.getLogger("privet.mpc")

KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 32
_TAG_BYTES: Final = 32
_LENGTH: Final = struct.Struct(">I")
_HANDSHAKE_BYTES: Final = 4096
#: A connected, authenticated socket and its frame keys ``(send, receive)``.
Link = tuple[socket.socket, bytes, bytes]


def mac(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 of the concatenated ``parts`` under ``key``."""
    digest = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        digest.update(part)
    return digest.digest()


def _ids(*nodes: int) -> bytes:
    return b"".join(struct.pack(">I", node) for node in nodes)


def frame_keys(
    key: bytes, dialer: int, listener: int, dialer_nonce: bytes, listener_nonce: bytes
) -> tuple[bytes, bytes]:
    """The frame keys ``(dialer -> listener, listener -> dialer)`` of one connection."""
    nonces = dialer_nonce + listener_nonce
    return (
        mac(key, b"privet-mpc frames", _ids(dialer, listener), nonces),
        mac(key, b"privet-mpc frames", _ids(listener, dialer), nonces),
    )


def _send_plain(
    sock: socket.socket, kind: str, meta: dict[str, object], arrays: dict[str, bytes]
) -> None:
    message = encode_message(
        kind, meta, {name: np.frombuffer(data, dtype=np.uint8) for name, data in arrays.items()}
    )
    sock.sendall(_LENGTH.pack(len(message)) + message)


def _recv_exactly(sock: socket.socket, count: int, peer: str) -> bytes:
    data = bytearray()
    while len(data) < count:
        try:
            chunk = sock.recv(count - len(data))
        except TimeoutError:
            raise PeerTimeout(f"{peer} did not complete the handshake in time", peer) from None
        except OSError as error:
            raise PeerLost(
                f"{peer} broke the connection during the handshake: {error}", peer
            ) from None
        if not chunk:
            raise PeerLost(f"{peer} closed the connection during the handshake", peer)
        data += chunk
    return bytes(data)


def _recv_plain(sock: socket.socket, expected: Collection[str], peer: str) -> Message:
    (length,) = _LENGTH.unpack(_recv_exactly(sock, _LENGTH.size, peer))
    if length > _HANDSHAKE_BYTES:
        raise AuthenticationError(
            f"handshake message from {peer} must be at most {_HANDSHAKE_BYTES} bytes, got {length}",
            peer,
        )
    try:
        return decode_message(_recv_exactly(sock, length, peer), expected_kind=expected)
    except WireError as error:
        raise AuthenticationError(f"bad handshake message from {peer}: {error}", peer) from None


def _field(message: Message, name: str, size: int, peer: str) -> bytes:
    array = message.arrays.get(name)
    if array is None or array.dtype != np.uint8 or array.shape != (size,):
        raise AuthenticationError(f"handshake from {peer} must carry {size} bytes {name!r}", peer)
    return array.tobytes()


def _int(message: Message, name: str, peer: str) -> int:
    value = message.meta.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise AuthenticationError(f"handshake from {peer} must carry an integer {name!r}", peer)
    return value


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise PrivacyError(f"key must be {KEY_BYTES} bytes, got {key!r:.20}")
    return key


def dial(
    node: int,
    peer: int,
    address: tuple[str, int],
    key: bytes,
    names: Sequence[str],
    timeout: float,
) -> Link:
    """Connect to ``peer`` (a lower-numbered node) and authenticate both ways.

    Returns the socket and the frame keys ``(send, receive)``.
    """
    key, name = _check_key(key), names[peer]
    try:
        sock = socket.create_connection(address, timeout=timeout)
    except OSError as error:
        raise PeerLost(
            f"cannot connect to {name} at {address[0]}:{address[1]}: {error}", name
        ) from None
    try:
        sock.settimeout(timeout)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        _send_plain(sock, "mpc.hello", {"node": node, "to": peer}, {"nonce": nonce})
        reply = _recv_plain(sock, ("mpc.challenge", "mpc.refused"), name)
        if reply.kind == "mpc.refused":
            reason = reply.meta.get("reason")
            raise AuthenticationError(f"{name} refused the connection: {reason}", name)
        if _int(reply, "node", name) != peer:
            raise AuthenticationError(f"the node at {name}'s address is not {name}", name)
        their_nonce = _field(reply, "nonce", _NONCE_BYTES, name)
        expected = mac(key, b"privet-mpc listener", _ids(node, peer), nonce, their_nonce)
        if not hmac.compare_digest(_field(reply, "proof", _TAG_BYTES, name), expected):
            raise AuthenticationError(
                f"{name} failed authentication: it does not hold this run's key "
                "(or this node's key is wrong)",
                name,
            )
        proof = mac(key, b"privet-mpc dialer", _ids(node, peer), nonce, their_nonce)
        _send_plain(sock, "mpc.proof", {}, {"proof": proof})
    except BaseException:
        sock.close()
        raise
    send_key, recv_key = frame_keys(key, node, peer, nonce, their_nonce)
    return sock, send_key, recv_key


def _answer(
    sock: socket.socket, node: int, key: bytes, expected: Collection[int], names: Sequence[str]
) -> tuple[int, bytes, bytes]:
    """The listener's side of one handshake: the peer and the frame keys ``(send, receive)``."""
    hello = _recv_plain(sock, ("mpc.hello",), "a connecting node")
    peer, target = _int(hello, "node", "a connecting node"), _int(hello, "to", "a connecting node")
    label = names[peer] if 0 <= peer < len(names) else f"node {peer}"
    if peer not in expected or target != node:
        reason = (
            f"{label} is not a peer {names[node]} expects (expected nodes {sorted(expected)})"
            if target == node
            else f"this is {names[node]}, not node {target}"
        )
        with contextlib.suppress(OSError):
            _send_plain(sock, "mpc.refused", {"reason": reason}, {})
        raise AuthenticationError(f"refused a connection: {reason}", label)
    their_nonce = _field(hello, "nonce", _NONCE_BYTES, label)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    proof = mac(key, b"privet-mpc listener", _ids(peer, node), their_nonce, nonce)
    _send_plain(sock, "mpc.challenge", {"node": node}, {"nonce": nonce, "proof": proof})
    answer = _recv_plain(sock, ("mpc.proof",), label)
    expected_proof = mac(key, b"privet-mpc dialer", _ids(peer, node), their_nonce, nonce)
    if not hmac.compare_digest(_field(answer, "proof", _TAG_BYTES, label), expected_proof):
        reason = f"{label} failed authentication: it does not hold this run's key"
        with contextlib.suppress(OSError):
            _send_plain(sock, "mpc.refused", {"reason": reason}, {})
        raise AuthenticationError(reason, label)
    recv_key, send_key = frame_keys(key, peer, node, their_nonce, nonce)
    return peer, send_key, recv_key


def accept(
    listener: socket.socket,
    node: int,
    expected: Collection[int],
    key: bytes,
    names: Sequence[str],
    timeout: float,
) -> dict[int, Link]:
    """Accept and authenticate one connection from each of ``expected`` within ``timeout``.

    A connection that fails the handshake (unknown node, wrong key, garbage, silence)
    is refused and logged, and waiting goes on; if some expected node has not connected
    by the deadline, :class:`PeerTimeout` names it and every refusal.
    """
    key = _check_key(key)
    deadline = time.monotonic() + timeout
    waiting, refusals = set(expected), list[str]()
    connected: dict[int, Link] = {}
    try:
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = ", ".join(names[i] for i in sorted(waiting))
                detail = f"; refused: {'; '.join(refusals)}" if refusals else ""
                raise PeerTimeout(
                    f"{missing} did not connect within {timeout:g} s{detail}", missing
                )
            listener.settimeout(remaining)
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(max(min(remaining, timeout), 0.001))
            try:
                peer, send_key, recv_key = _answer(sock, node, key, waiting, names)
            except MpcNetworkError as error:
                sock.close()
                logger.warning("%s: %s", names[node], error)
                refusals.append(str(error))
                continue
            waiting.discard(peer)
            connected[peer] = (sock, send_key, recv_key)
    except BaseException:
        for sock, _, _ in connected.values():
            sock.close()
        raise
    return connected
