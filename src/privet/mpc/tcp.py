"""MPC nodes over TCP: encrypted, numbered frames, one non-blocking loop, deadlines.

Connections are opened and authenticated by :mod:`privet.mpc.handshake`
(:func:`connect_mesh` builds a node's set). Frames, after a 4-byte
big-endian length::

    type (1 byte: data, goodbye, abort) | sequence (8 bytes, big-endian) | ciphertext | tag (16)

Every frame, data, goodbye and abort alike, is sealed with AES-256-GCM
(NIST SP 800-38D) under the frame key of its connection and direction, which
the handshake derives from the run key and both sides' fresh nonces. The
9-byte header is the associated data: type and sequence travel in the clear
but are authenticated; the payload is encrypted.

The 96-bit nonce is 4 zero bytes, then the 8-byte big-endian sequence: the
deterministic construction of SP 800-38D §8.2.1, with a 32-bit fixed field
and a 64-bit invocation field. It never repeats under a key because each key
seals one direction of one connection only (so one "device" per key, and the
fixed field can be constant) and the sequence starts at 0 and strictly
increases. That allows 2^64 frames per key: a sender refuses frame 2^64
with an error rather than wrap (a repeated nonce would leak the XOR of two
plaintexts and, by Joux's "forbidden attack", the authentication key). A
frame's ciphertext is below 2^32 bytes, far under GCM's per-message limit
of about 2^36 bytes.

The receiver checks the length against its limit before allocating, then
the tag, and only then that the clear sequence is exactly the next one: a
forged or altered frame, one under another key (another connection or run,
or the other direction), a replay and a reordering are all refused with a
:class:`~privet.mpc.transport.FrameError` naming the peer and the sequence.
A goodbye frame ends a connection cleanly; an abort frame carries the
reason a peer failed; a connection that ends without either was lost.

Payloads are copied as little as the ``cryptography`` API allows: a frame is
sealed straight into its send buffer, length and header included
(``AESGCM.encrypt_into``), and opened straight from the receive buffer
(``AESGCM.decrypt`` reads a memoryview of it); the plaintext it returns is
the delivered payload.

All sockets are non-blocking and served by one :mod:`selectors` loop that
reads every connection while it waits for one, or while it writes: two
nodes sending each other large messages cannot deadlock on full buffers,
and a lost or aborting peer is noticed by any wait. Every wait has a
deadline.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privet.errors import PrivacyError
from privet.mpc.handshake import KEY_BYTES, Link, accept, dial
from privet.mpc.transport import (
    FrameError,
    MpcNetworkError,
    PeerAborted,
    PeerFinished,
    PeerLost,
    PeerTimeout,
    check_payload,
    check_peer,
    check_timeout,
)
from privet.wire import DEFAULT_LIMITS

__all__ = [
    "KEY_BYTES",
    "LOOPBACK",
    "MAX_FRAMES",
    "MAX_FRAME_BYTES",
    "TcpTransport",
    "connect_mesh",
    "encode_frame",
]

#: Where every node listens: real parties on one machine.
LOOPBACK: Final = "127.0.0.1"
_LENGTH: Final = struct.Struct(">I")
_HEAD: Final = struct.Struct(">BQ")  # type, sequence: the associated data
_NONCE: Final = struct.Struct(">4xQ")  # zero fixed field, sequence as the invocation field
_TAG_BYTES: Final = 16
_OVERHEAD: Final = _HEAD.size + _TAG_BYTES
DATA, GOODBYE, ABORT = 0, 1, 2
#: Frames one key may seal: every 64-bit sequence once.
MAX_FRAMES: Final = 1 << 64
_CHUNK: Final = 1 << 20
_CLOSING_SECONDS: Final = 10.0
#: Frames above this are refused before anything is allocated (a wire message's own cap).
MAX_FRAME_BYTES: Final = DEFAULT_LIMITS.max_message_bytes + _OVERHEAD


def _cipher(key: bytes, name: str) -> AESGCM:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise PrivacyError(f"{name} must be {KEY_BYTES} bytes, got {key!r:.20}")
    return AESGCM(key)


def _seal(cipher: AESGCM, kind: int, sequence: int, payload: bytes) -> bytearray:
    """One frame, length prefix included, with ``payload`` encrypted straight into it."""
    frame = bytearray(_LENGTH.size + _OVERHEAD + len(payload))
    _LENGTH.pack_into(frame, 0, len(frame) - _LENGTH.size)
    _HEAD.pack_into(frame, _LENGTH.size, kind, sequence)
    with memoryview(frame) as view:
        cipher.encrypt_into(
            _NONCE.pack(sequence),
            payload,
            view[_LENGTH.size : _LENGTH.size + _HEAD.size],
            view[_LENGTH.size + _HEAD.size :],
        )
    return frame


def _open(cipher: AESGCM, sequence: int, body: bytearray) -> bytes:
    """The payload of a received frame body (header onwards) whose header says ``sequence``.

    Raises :class:`~cryptography.exceptions.InvalidTag` if the frame was not sealed under
    this key with this header.
    """
    with memoryview(body) as view:
        return cipher.decrypt(_NONCE.pack(sequence), view[_HEAD.size :], view[: _HEAD.size])


def encode_frame(key: bytes, kind: int, sequence: int, payload: bytes) -> bytes:
    """One frame sealed under ``key``, length prefix included (tests forge frames with it)."""
    return bytes(_seal(_cipher(key, "key"), kind, sequence, payload))


@dataclass
class _Link:
    """One authenticated connection and its framing state."""

    sock: socket.socket
    sealer: AESGCM  # under the send key, built once per link
    opener: AESGCM  # under the receive key
    send_sequence: int = 0
    recv_sequence: int = 0
    outgoing: deque[memoryview] = field(default_factory=deque)
    header: bytearray = field(default_factory=lambda: bytearray(_LENGTH.size))
    body: bytearray | None = None
    filled: int = 0
    inbox: deque[bytes] = field(default_factory=deque)
    finished: bool = False  # goodbye received
    ended: bool = False  # end of stream seen, or reading stopped by an error
    error: MpcNetworkError | None = None  # raised at every later use of the link


# -- the transport -----------------------------------------------------------------------------


class TcpTransport:
    """Frames over authenticated TCP connections, one per peer (see the module docstring).

    Parameters
    ----------
    node
        This node's index.
    names
        Every node's name (:func:`~privet.mpc.transport.node_names`).
    links
        Per peer: a connected socket and its frame keys ``(send, receive)``, as
        :func:`~privet.mpc.handshake.dial` and :func:`~privet.mpc.handshake.accept` return
        them.
    timeout
        Seconds a send may wait for a peer to take its data.
    max_frame_bytes
        Larger incoming frames are refused before anything is allocated.
    """

    def __init__(
        self,
        node: int,
        names: Sequence[str],
        links: Mapping[int, Link],
        *,
        timeout: float = 60.0,
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        self._node = node
        self._names = tuple(names)
        self._timeout = check_timeout(timeout)
        self._max_frame = max_frame_bytes
        self._links = {
            check_peer(peer, node, self._names): _Link(
                sock, _cipher(send_key, "send key"), _cipher(recv_key, "receive key")
            )
            for peer, (sock, send_key, recv_key) in links.items()
        }
        self._selector = selectors.DefaultSelector()
        for peer, link in self._links.items():
            link.sock.setblocking(False)
            # Each round is one small frame per peer, answered at once: Nagle's algorithm
            # would hold it back for the peer's delayed ACK (tens of ms per round).
            link.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._selector.register(link.sock, selectors.EVENT_READ, peer)
        self._sent = 0
        self._closed = False

    @property
    def node(self) -> int:
        return self._node

    @property
    def bytes_sent(self) -> int:
        return self._sent

    def name(self, node: int) -> str:
        return self._names[node]

    def _link(self, peer: int) -> _Link:
        peer = check_peer(peer, self._node, self._names)
        link = self._links.get(peer)
        if link is None:
            raise PrivacyError(f"peer must be connected to {self.name(self._node)}, got {peer}")
        if self._closed:
            raise PrivacyError("transport is closed")
        return link

    # -- public --------------------------------------------------------------------------------

    def send(self, peer: int, payload: bytes) -> None:
        link = self._link(peer)
        payload = check_payload(payload)
        if link.error is not None:
            raise link.error
        if link.finished:
            raise PeerFinished(f"{self.name(peer)} has finished; it takes no more messages")
        self._queue(link, DATA, payload)
        self._pump(
            lambda: not link.outgoing or link.error is not None,
            self._timeout,
            lambda: f"{self.name(peer)} took no data within {self._timeout:g} s",
            peer,
        )
        if link.error is not None:
            raise link.error

    def recv(self, peer: int, timeout: float | None) -> bytes:
        link = self._link(peer)
        timeout = check_timeout(timeout)
        name = self.name(peer)
        self._pump(
            lambda: bool(link.inbox) or link.finished or link.error is not None,
            timeout,
            lambda: (
                f"no message from {name} within {timeout:g} s "
                f"(waiting for frame {link.recv_sequence})"
            ),
            peer,
        )
        if link.inbox:
            return link.inbox.popleft()
        if link.error is not None:
            raise link.error
        raise PeerFinished(
            f"{name} has finished and closed the connection; frame {link.recv_sequence} "
            "will not come",
            name,
        )

    def close(self) -> None:
        """Goodbye to every peer, then wait (bounded) for their ends: closing a socket with
        unread data resets it, which could destroy what a peer has not read yet."""
        self._end(GOODBYE, b"", linger=True)

    def abort(self, reason: str) -> None:
        """Tell every peer why this node failed, and leave without waiting for them."""
        self._end(ABORT, reason.encode("utf-8", "replace")[:4096], linger=False)

    # -- internals -----------------------------------------------------------------------------

    def _end(self, kind: int, payload: bytes, *, linger: bool) -> None:
        if self._closed:
            return
        links = self._links.values()
        try:
            for link in links:
                # A link out of sequence numbers cannot say goodbye: its peer sees it lost.
                if link.error is None and link.send_sequence < MAX_FRAMES:
                    self._queue(link, kind, payload)
            with contextlib.suppress(MpcNetworkError, OSError):
                self._pump(
                    lambda: all(not link.outgoing or link.error for link in links),
                    self._closing_timeout,
                    lambda: "peers took no goodbye",
                    None,
                    strict=False,
                )
            for link in links:
                with contextlib.suppress(OSError):
                    link.sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(MpcNetworkError, OSError):
                self._pump(
                    lambda: not linger or all(link.ended for link in links),
                    self._closing_timeout,
                    lambda: "peers did not close",
                    None,
                    strict=False,
                )
        finally:
            self._closed = True
            self._selector.close()
            for link in links:
                link.sock.close()

    @property
    def _closing_timeout(self) -> float:
        return (
            min(self._timeout, _CLOSING_SECONDS) if self._timeout is not None else _CLOSING_SECONDS
        )

    def _queue(self, link: _Link, kind: int, payload: bytes) -> None:
        if link.send_sequence >= MAX_FRAMES:
            raise MpcNetworkError(
                f"frame sequence must be below 2**64 per key (an AES-GCM nonce would repeat), "
                f"got {link.send_sequence}"
            )
        frame = _seal(link.sealer, kind, link.send_sequence, payload)
        link.send_sequence += 1
        link.outgoing.append(memoryview(frame))
        self._sent += len(frame)

    def _pump(
        self,
        done: Callable[[], bool],
        timeout: float | None,
        describe: Callable[[], str],
        peer: int | None,
        *,
        strict: bool = True,
    ) -> None:
        """Serve every connection until ``done()``.

        ``strict``: unless ``done()`` already holds, a failed link raises at once, whoever
        the wait is for (payloads ``peer`` sent before its own failure are delivered first).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for other, link in self._links.items():
                if link.outgoing and link.error is None:
                    self._write(other, link)
            if done():
                return
            if strict:
                for other, link in self._links.items():
                    if link.error is not None and (other != peer or not link.inbox):
                        raise link.error
            if not any([self._watch(other, link) for other, link in self._links.items()]):
                name = self.name(peer) if peer is not None else "every peer"
                raise PeerFinished(f"{name} has closed; nothing more can arrive", name)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise PeerTimeout(describe(), self.name(peer) if peer is not None else "")
            for key, events in self._selector.select(remaining):
                if events & selectors.EVENT_READ:
                    self._read(key.data, self._links[key.data])

    def _watch(self, peer: int, link: _Link) -> bool:
        """Select on what ``link`` can still do (read until its end, write what is queued);
        False when nothing."""
        writing = link.outgoing and link.error is None
        events = (0 if link.ended else selectors.EVENT_READ) | (
            selectors.EVENT_WRITE if writing else 0
        )
        try:
            registered = self._selector.get_key(link.sock).events
        except KeyError:
            registered = 0
        if events != registered:
            if not registered:
                self._selector.register(link.sock, events, peer)
            elif events:
                self._selector.modify(link.sock, events, peer)
            else:
                self._selector.unregister(link.sock)
        return events != 0

    def _fail(self, link: _Link, error: MpcNetworkError) -> None:
        """The link is broken for good: stop reading it; every later use raises ``error``."""
        link.ended = True
        if link.error is None:
            link.error = error

    def _write(self, peer: int, link: _Link) -> None:
        while link.outgoing:
            try:
                sent = link.sock.send(link.outgoing[0])
            except BlockingIOError:
                return
            except OSError as error:
                name = self.name(peer)
                self._fail(
                    link, PeerLost(f"connection to {name} broke while sending: {error}", name)
                )
                return
            head = link.outgoing[0]
            if sent < len(head):
                link.outgoing[0] = head[sent:]
                return
            link.outgoing.popleft()

    def _read(self, peer: int, link: _Link) -> None:
        try:
            self._read_frames(peer, link)
        except MpcNetworkError as error:
            self._fail(link, error)

    def _read_frames(self, peer: int, link: _Link) -> None:
        name = self.name(peer)
        while not link.ended:
            target = link.header if link.body is None else link.body
            try:
                got = link.sock.recv_into(memoryview(target)[link.filled : link.filled + _CHUNK])
            except BlockingIOError:
                return
            except OSError:
                got = 0  # a reset is an end of stream
            if got == 0:
                link.ended = True
                if not link.finished:
                    raise PeerLost(
                        f"{name} closed the connection without a goodbye (killed or crashed) "
                        f"before frame {link.recv_sequence}",
                        name,
                    )
                return
            link.filled += got
            if link.body is None and link.filled == _LENGTH.size:
                (length,) = _LENGTH.unpack(link.header)
                if not _OVERHEAD <= length <= self._max_frame:
                    raise FrameError(
                        f"frame {link.recv_sequence} from {name} must be {_OVERHEAD} to "
                        f"{self._max_frame} bytes, got {length}",
                        name,
                        link.recv_sequence,
                    )
                link.body, link.filled = bytearray(length), 0
            elif link.body is not None and link.filled == len(link.body):
                body, link.body, link.filled = link.body, None, 0
                self._frame(name, link, body)

    def _frame(self, name: str, link: _Link, body: bytearray) -> None:
        kind, sequence = _HEAD.unpack_from(body)  # trusted only once the tag is checked
        try:
            payload = _open(link.opener, sequence, body)
        except InvalidTag:
            raise FrameError(
                f"frame from {name} failed authentication (bad AES-GCM tag) at sequence "
                f"{sequence}; expected sequence {link.recv_sequence}",
                name,
                sequence,
            ) from None
        if sequence != link.recv_sequence:
            raise FrameError(
                f"frame from {name} is out of order or replayed: sequence {sequence}, "
                f"expected {link.recv_sequence}",
                name,
                sequence,
            )
        link.recv_sequence += 1
        if link.finished:
            raise FrameError(
                f"frame from {name} after its goodbye (sequence {sequence})", name, sequence
            )
        if kind == DATA and payload:
            link.inbox.append(payload)
        elif kind == GOODBYE and not payload:
            link.finished = True
        elif kind == ABORT:
            raise PeerAborted(f"{name} aborted the run: {payload.decode('utf-8', 'replace')}", name)
        else:
            raise FrameError(
                f"frame from {name} has an unknown type {kind} (sequence {sequence})",
                name,
                sequence,
            )


def connect_mesh(
    node: int,
    names: Sequence[str],
    key: bytes,
    *,
    dial_to: Mapping[int, tuple[str, int]],
    listener: socket.socket | None,
    accept_from: Collection[int],
    timeout: float,
) -> TcpTransport:
    """This node's connections: it dials ``dial_to`` (lower-numbered nodes, in order), then
    accepts ``accept_from`` on ``listener``; every wait within ``timeout``.

    Dialling in increasing order and only downwards cannot deadlock: node 0 only
    accepts, and each node reaches its accepting phase once the nodes below do.
    """
    links: dict[int, Link] = {}
    try:
        for peer in sorted(dial_to):
            links[peer] = dial(node, peer, dial_to[peer], key, names, timeout)
        if accept_from:
            if listener is None:
                raise PrivacyError(
                    f"listener must be a socket when accepting {sorted(accept_from)}"
                )
            links.update(accept(listener, node, accept_from, key, names, timeout))
    except BaseException:
        for sock, _, _ in links.values():
            sock.close()
        raise
    return TcpTransport(node, names, links, timeout=timeout)
