"""How MPC processes exchange bytes: the transport interface, its errors, an in-memory one.

Nodes are numbered: the computing parties ``0 .. n - 1`` and the dealer ``n``
(:func:`node_names`). A :class:`Transport` moves opaque payloads (privet wire
messages, encoded and checked by the layer above) between this node and one
peer, in order; it never reorders, drops or duplicates them, and it turns
every failure into one :class:`MpcNetworkError` subclass naming the peer:

* :class:`PeerTimeout`: nothing arrived within the timeout (a silent peer);
* :class:`PeerLost`: the connection ended without a goodbye (killed, crashed);
* :class:`PeerAborted`: the peer failed and said why before leaving;
* :class:`PeerFinished`: the peer closed cleanly, yet a message was expected;
* :class:`FrameError`: a frame failed authentication, or came out of order,
  replayed, or oversized (:mod:`privet.mpc.tcp`);
* :class:`AuthenticationError`: a connecting peer is unknown or lacks the run key;
* :class:`ProtocolError`: a well-formed message of the wrong kind, round or shape.

A peer that is lost or aborts is reported by whichever wait notices it first,
whoever that wait is for: one failure ends the run at every node.

:class:`MemoryHub` connects nodes that are threads of one process (tests);
:class:`~privet.mpc.tcp.TcpTransport` connects processes over loopback, every
frame encrypted and authenticated (AES-256-GCM).
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from privet.errors import PrivacyError

__all__ = [
    "AuthenticationError",
    "FrameError",
    "MemoryHub",
    "MemoryTransport",
    "MpcNetworkError",
    "PeerAborted",
    "PeerFinished",
    "PeerLost",
    "PeerTimeout",
    "ProtocolError",
    "Transport",
    "node_names",
]


class MpcNetworkError(PrivacyError):
    """An MPC run across processes failed: a peer, a frame or a message was bad or missing.

    Attributes
    ----------
    peer
        The peer concerned, as :func:`node_names` writes it (``"party 1"``, ``"dealer"``).
    """

    def __init__(self, message: str, peer: str = "") -> None:
        super().__init__(message)
        self.peer = peer


class PeerTimeout(MpcNetworkError):
    """Nothing arrived from a peer (or it took nothing) within the timeout."""


class PeerLost(MpcNetworkError):
    """A peer's connection ended without a goodbye: it was killed or crashed."""


class PeerAborted(MpcNetworkError):
    """A peer failed and told the others why before leaving."""


class PeerFinished(MpcNetworkError):
    """A peer closed cleanly while this node still expected a message from it."""


class FrameError(MpcNetworkError):
    """A frame failed authentication, was out of order, replayed or oversized.

    Attributes
    ----------
    sequence
        The sequence number the frame carried (``-1`` if it was not read).
    """

    def __init__(self, message: str, peer: str = "", sequence: int = -1) -> None:
        super().__init__(message, peer)
        self.sequence = sequence


class AuthenticationError(MpcNetworkError):
    """A connection's peer is not one this node expects, or does not hold the run key."""


class ProtocolError(MpcNetworkError):
    """A well-formed message that is not the one the protocol expects at this point."""


def node_names(num_parties: int) -> tuple[str, ...]:
    """Names of nodes ``0 .. n``: the parties, then the dealer (node ``n``)."""
    return (*(f"party {i}" for i in range(num_parties)), "dealer")


@runtime_checkable
class Transport(Protocol):
    """Ordered, authenticated payloads between this node and each peer."""

    @property
    def node(self) -> int:
        """This node's index."""
        ...

    @property
    def bytes_sent(self) -> int:
        """Bytes this node has put on the wire (framing included where there is any)."""
        ...

    def name(self, node: int) -> str:
        """A node's name for messages (``"party 1"``, ``"dealer"``)."""
        ...

    def send(self, peer: int, payload: bytes) -> None:
        """Queue ``payload`` (non-empty) for ``peer``; returns once it is handed over."""
        ...

    def recv(self, peer: int, timeout: float | None) -> bytes:
        """The next payload from ``peer``, waiting at most ``timeout`` seconds (``None``:
        as long as every connection stays up)."""
        ...

    def close(self) -> None:
        """Say goodbye to every peer and release the connections."""
        ...

    def abort(self, reason: str) -> None:
        """Tell every peer this node failed (``reason``), and release the connections."""
        ...


def check_peer(peer: object, node: int, names: Sequence[str]) -> int:
    """``peer`` as a node index other than ``node``."""
    if (
        isinstance(peer, bool)
        or not isinstance(peer, int)
        or not 0 <= peer < len(names)
        or peer == node
    ):
        others = [i for i in range(len(names)) if i != node]
        raise PrivacyError(f"peer must be one of the nodes {others}, got {peer!r:.40}")
    return peer


def check_payload(payload: object) -> bytes:
    """``payload`` as non-empty bytes (an empty one would read as a goodbye)."""
    if not isinstance(payload, bytes) or not payload:
        raise PrivacyError(f"payload must be non-empty bytes, got {payload!r:.40}")
    return payload


def check_timeout(timeout: object, name: str = "timeout") -> float | None:
    """``timeout`` as seconds > 0, or ``None`` (wait while the connections last)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise PrivacyError(f"{name} must be a number of seconds > 0 or None, got {timeout!r}")
    return float(timeout)


# -- in memory ---------------------------------------------------------------------------------

_Event = tuple[int, Literal["data", "bye", "abort", "lost"], bytes]


class MemoryHub:
    """Connects ``len(names)`` nodes living in threads of one process (tests, simulations).

    Parameters
    ----------
    names
        One name per node (:func:`node_names`).
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._inboxes: list[queue.SimpleQueue[_Event]] = [queue.SimpleQueue() for _ in names]

    def endpoint(self, node: int) -> MemoryTransport:
        """Node ``node``'s transport."""
        if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node < len(self.names):
            raise PrivacyError(f"node must be in [0, {len(self.names) - 1}], got {node!r}")
        return MemoryTransport(self, node)

    def post(self, sender: int, receiver: int, kind: str, payload: bytes = b"") -> None:
        """Deliver an event to ``receiver`` (fault injection: ``"lost"`` plays a crash)."""
        if kind not in ("data", "bye", "abort", "lost"):
            raise PrivacyError(f"kind must be data, bye, abort or lost, got {kind!r}")
        self._inboxes[receiver].put((sender, kind, payload))  # type: ignore[arg-type]

    def inbox(self, node: int) -> queue.SimpleQueue[_Event]:
        return self._inboxes[node]


class MemoryTransport:
    """One node's end of a :class:`MemoryHub`: the semantics of the TCP transport, no sockets."""

    def __init__(self, hub: MemoryHub, node: int) -> None:
        self._hub = hub
        self._node = node
        self._pending: dict[int, deque[bytes]] = {i: deque() for i in range(len(hub.names))}
        self._finished: set[int] = set()
        self._closed = False
        self._sent = 0

    @property
    def node(self) -> int:
        return self._node

    @property
    def bytes_sent(self) -> int:
        return self._sent

    def name(self, node: int) -> str:
        return self._hub.names[node]

    def send(self, peer: int, payload: bytes) -> None:
        peer = check_peer(peer, self._node, self._hub.names)
        payload = check_payload(payload)
        if self._closed:
            raise PrivacyError("transport is closed")
        if peer in self._finished:
            raise PeerFinished(f"{self.name(peer)} has finished; it takes no more messages")
        self._sent += len(payload)
        self._hub.post(self._node, peer, "data", payload)

    def recv(self, peer: int, timeout: float | None) -> bytes:
        peer = check_peer(peer, self._node, self._hub.names)
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        name = self.name(peer)
        while not self._pending[peer]:
            if peer in self._finished:
                raise PeerFinished(
                    f"{name} has finished and closed the connection; no message will come",
                    name,
                )
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                sender, kind, payload = self._hub.inbox(self._node).get(timeout=remaining)
            except queue.Empty:
                raise PeerTimeout(f"no message from {name} within {timeout:g} s", name) from None
            self._event(sender, kind, payload)
        return self._pending[peer].popleft()

    def _event(self, sender: int, kind: str, payload: bytes) -> None:
        name = self.name(sender)
        if kind == "data":
            self._pending[sender].append(payload)
        elif kind == "bye":
            self._finished.add(sender)
        elif kind == "abort":
            reason = payload.decode("utf-8", "replace")
            raise PeerAborted(f"{name} aborted the run: {reason}", name)
        else:
            raise PeerLost(f"{name} closed the connection without a goodbye (killed?)", name)

    def _broadcast(self, kind: str, payload: bytes = b"") -> None:
        if self._closed:
            return
        self._closed = True
        for peer in range(len(self._hub.names)):
            if peer != self._node:
                self._hub.post(self._node, peer, kind, payload)

    def close(self) -> None:
        self._broadcast("bye")

    def abort(self, reason: str) -> None:
        self._broadcast("abort", reason.encode("utf-8", "replace"))
