"""The messages of an MPC run across processes, as privet wire messages (never pickle).

Each kind has an encoder and a strict decoder: the kind must be the one the
protocol expects at that point, the meta keys exactly the declared ones, the
counters (round, item index) the receiver's own, and the arrays of the
expected dtype and shape. Any mismatch is a
:class:`~privet.mpc.transport.ProtocolError` naming the sender and where the
two sides disagree.

========================  ==========================  =====================================
kind                      crosses                     carries
========================  ==========================  =====================================
``mpc.open_ring``         party -> every party        round; this party's shares (sum)
``mpc.open_bits``         party -> every party        round; this party's shares (XOR)
``mpc.broadcast``         owner -> every party        round; the owner's masked input
``mpc.seed``              dealer -> party i < n - 1   its share stream's seed (once)
``mpc.request``           party n - 1 -> dealer       item index; method, shapes, params
``mpc.item``              dealer -> party n - 1       item index; its share rows (+ ``r``)
``mpc.mask``              dealer -> owner i < n - 1   item index; the input mask ``r``
``mpc.setup``             launcher -> child (stdin)   role, node, ports, key, seed, limits
``mpc.result``            child -> launcher (file)    outputs, statistics or the error
========================  ==========================  =====================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.mpc.dealer import Delivery, ItemRequest
from privet.mpc.ring import RingArray
from privet.mpc.transport import ProtocolError
from privet.wire import Message, WireError, decode_message, encode_message

__all__ = [
    "BROADCAST",
    "MAX_SETUP_BYTES",
    "OPEN_BITS",
    "OPEN_RING",
    "NodeReport",
    "Setup",
    "decode_item",
    "decode_mask",
    "decode_report",
    "decode_request",
    "decode_round",
    "decode_seed",
    "decode_setup",
    "describe_error",
    "encode_item",
    "encode_mask",
    "encode_report",
    "encode_request",
    "encode_round",
    "encode_seed",
    "encode_setup",
    "read_setup",
    "write_report",
]

OPEN_RING: Final = "mpc.open_ring"
OPEN_BITS: Final = "mpc.open_bits"
BROADCAST: Final = "mpc.broadcast"
_ROUND_KINDS: Final = (OPEN_RING, OPEN_BITS, BROADCAST)
_VALUE: Final = "value"
MAX_SETUP_BYTES: Final = 1 << 16


def _decode(payload: bytes, kind: str, sender: str, where: str) -> Message:
    try:
        return decode_message(payload, expected_kind=kind)
    except WireError as error:
        raise ProtocolError(f"{sender} sent a bad message {where}: {error}", sender) from None


def _meta(message: Message, keys: Mapping[str, type], sender: str, where: str) -> dict[str, Any]:
    meta = dict(message.meta)
    if meta.keys() != keys.keys():
        raise ProtocolError(
            f"{sender} sent {message.kind} {where} with meta keys {sorted(meta)}, "
            f"expected {sorted(keys)}",
            sender,
        )
    for key, kind in keys.items():
        value = meta[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProtocolError(
                f"{sender} sent {message.kind} {where} with {key}={value!r:.40}, "
                f"expected {kind.__name__}",
                sender,
            )
    return meta


def _counter(message: Message, name: str, expected: int, sender: str, where: str) -> None:
    value = _meta(message, {name: int}, sender, where)[name]
    if value != expected:
        raise ProtocolError(
            f"{sender} sent {message.kind} for {name} {value}, but this node is at {name} "
            f"{expected}: the two run different programs or lost step",
            sender,
        )


def _ring(array: NDArray[Any], shape: tuple[int, ...], what: str, sender: str) -> RingArray:
    if array.dtype != np.uint64 or array.shape != shape:
        raise ProtocolError(
            f"{sender} sent {what} of {array.dtype} {array.shape}, expected uint64 {shape}",
            sender,
        )
    copy: RingArray = np.array(array, dtype=np.uint64)  # writable and aligned
    return copy


def _arrays(message: Message, names: Sequence[str], sender: str, where: str) -> None:
    if list(message.arrays) != list(names):
        raise ProtocolError(
            f"{sender} sent {message.kind} {where} with arrays {list(message.arrays)}, "
            f"expected {list(names)}",
            sender,
        )


# -- online rounds -----------------------------------------------------------------------------


def encode_round(kind: str, round_index: int, values: RingArray) -> bytes:
    """One party's contribution to round ``round_index`` (an opening or a broadcast)."""
    if kind not in _ROUND_KINDS:
        raise PrivacyError(f"kind must be one of {list(_ROUND_KINDS)}, got {kind!r}")
    return encode_message(kind, {"round": round_index}, {_VALUE: values})


def decode_round(
    payload: bytes, kind: str, round_index: int, shape: tuple[int, ...], sender: str
) -> RingArray:
    """``sender``'s values for round ``round_index``; kind, round and shape must match."""
    where = f"at round {round_index}"
    try:
        message = decode_message(payload, expected_kind=_ROUND_KINDS)
    except WireError as error:
        raise ProtocolError(f"{sender} sent a bad message {where}: {error}", sender) from None
    if message.kind != kind:
        raise ProtocolError(
            f"{sender} sent {message.kind} {where}, expected {kind}: the parties are out of step",
            sender,
        )
    _counter(message, "round", round_index, sender, where)
    _arrays(message, [_VALUE], sender, where)
    return _ring(message.arrays[_VALUE], shape, f"values {where}", sender)


# -- dealer traffic ----------------------------------------------------------------------------


def encode_seed(seed: bytes) -> bytes:
    """The dealer's one message to party ``i < n - 1``: its share stream's seed."""
    return encode_message("mpc.seed", {}, {"seed": np.frombuffer(seed, dtype=np.uint8)})


def decode_seed(payload: bytes, sender: str) -> bytes:
    """The 32-byte seed :func:`encode_seed` wrote."""
    message = _decode(payload, "mpc.seed", sender, "at setup")
    _meta(message, {}, sender, "at setup")
    _arrays(message, ["seed"], sender, "at setup")
    seed = message.arrays["seed"]
    if seed.dtype != np.uint8 or seed.shape != (32,):
        raise ProtocolError(f"{sender} sent a seed of {seed.dtype} {seed.shape}, expected 32 bytes")
    return seed.tobytes()


def encode_request(index: int, request: ItemRequest) -> bytes:
    """The last party's request for item number ``index``: public values only."""
    meta = {
        "item": index,
        "method": request.method.value,
        "shapes": [list(shape) for shape in request.shapes],
        "params": list(request.params),
    }
    return encode_message("mpc.request", meta)


def decode_request(payload: bytes, index: int, sender: str) -> ItemRequest:
    """Request number ``index``: validated (shapes compatible) before the dealer draws."""
    where = f"for item {index}"
    message = _decode(payload, "mpc.request", sender, where)
    meta = _meta(
        message, {"item": int, "method": str, "shapes": list, "params": list}, sender, where
    )
    if meta["item"] != index:
        raise ProtocolError(
            f"{sender} requested item {meta['item']}, but the dealer is at item {index}", sender
        )
    _arrays(message, [], sender, where)
    try:
        shapes = tuple(tuple(shape) for shape in meta["shapes"])
        return ItemRequest(meta["method"], shapes, tuple(meta["params"]))
    except (PrivacyError, TypeError) as error:
        raise ProtocolError(f"{sender} sent a bad request {where}: {error}", sender) from None


def encode_item(index: int, rows: Sequence[RingArray], value: RingArray | None) -> bytes:
    """The dealer's answer: the last party's rows of item ``index`` (and ``r`` if it owns
    the input the item masks)."""
    arrays = {str(part): row for part, row in enumerate(rows)}
    if value is not None:
        arrays[_VALUE] = value
    return encode_message("mpc.item", {"item": index}, arrays)


def decode_item(
    payload: bytes, index: int, request: ItemRequest, owner: bool, sender: str
) -> Delivery:
    """One-row stacks of item ``index`` (of the shapes ``request`` lays out), and ``r`` if
    this party owns the input it masks."""
    where = f"for item {index}"
    message = _decode(payload, "mpc.item", sender, where)
    _counter(message, "item", index, sender, where)
    layout = request.layout()
    names = [str(part) for part in range(len(layout))] + ([_VALUE] if owner else [])
    _arrays(message, names, sender, where)
    stacks = tuple(
        _ring(message.arrays[str(part)], shape, f"part {part} {where}", sender)[None]
        for part, shape in enumerate(layout)
    )
    value = _ring(message.arrays[_VALUE], layout[0], f"mask {where}", sender) if owner else None
    return Delivery(stacks, value)


def encode_mask(index: int, value: RingArray) -> bytes:
    """The mask ``r`` of item ``index``, for its owner ``i < n - 1``."""
    return encode_message("mpc.mask", {"item": index}, {_VALUE: value})


def decode_mask(payload: bytes, index: int, shape: tuple[int, ...], sender: str) -> RingArray:
    """The mask of item ``index``, of the input's ``shape``."""
    where = f"for item {index}"
    message = _decode(payload, "mpc.mask", sender, where)
    _counter(message, "item", index, sender, where)
    _arrays(message, [_VALUE], sender, where)
    return _ring(message.arrays[_VALUE], shape, f"mask {where}", sender)


# -- launcher <-> child ------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What the launcher hands a child process over its stdin.

    Attributes
    ----------
    role
        ``"party"`` or ``"dealer"``.
    node
        Its node index (the dealer is node ``num_parties``).
    num_parties
        ``n``.
    ports
        Loopback ports the parties listen on, by party index.
    key
        The run's 32-byte key authenticating every connection.
    listen_fd
        A party's inherited listening socket (``-1`` for the dealer).
    result_path
        Where the child writes its :class:`NodeReport`.
    timeout
        Seconds any single wait may last.
    seed
        The dealer's 32-byte seed (``None``: fresh from the OS CSPRNG).
    fractional_bits
        The parties' fixed-point encoding.
    """

    role: Literal["party", "dealer"]
    node: int
    num_parties: int
    ports: tuple[int, ...]
    key: bytes
    listen_fd: int
    result_path: str
    timeout: float
    seed: bytes | None = None
    fractional_bits: int = 16


def encode_setup(setup: Setup) -> bytes:
    """What the launcher writes to a child's stdin."""
    meta = {
        "role": setup.role,
        "node": setup.node,
        "num_parties": setup.num_parties,
        "ports": list(setup.ports),
        "listen_fd": setup.listen_fd,
        "result_path": setup.result_path,
        "timeout": setup.timeout,
        "fractional_bits": setup.fractional_bits,
    }
    arrays = {"key": np.frombuffer(setup.key, dtype=np.uint8)}
    if setup.seed is not None:
        arrays["seed"] = np.frombuffer(setup.seed, dtype=np.uint8)
    return encode_message("mpc.setup", meta, arrays)


def decode_setup(payload: bytes) -> Setup:
    """A child's :class:`Setup`, every field checked."""
    sender = "the launcher"
    message = _decode(payload, "mpc.setup", sender, "at start")
    keys = {
        "role": str,
        "node": int,
        "num_parties": int,
        "ports": list,
        "listen_fd": int,
        "result_path": str,
        "timeout": float,
        "fractional_bits": int,
    }
    meta = _meta(message, keys, sender, "at start")
    if meta["role"] not in ("party", "dealer"):
        raise ProtocolError(f"setup role must be party or dealer, got {meta['role']!r:.40}")
    n = meta["num_parties"]
    ports = meta["ports"]
    if n < 2 or len(ports) != n or not all(type(p) is int and 0 < p < 65536 for p in ports):
        raise ProtocolError(f"setup must list {n} ports for {n} >= 2 parties, got {ports!r:.80}")
    if not 0 <= meta["node"] <= n or (meta["role"] == "dealer") != (meta["node"] == n):
        raise ProtocolError(f"setup node must be a party index or the dealer's {n}")
    if set(message.arrays) - {"key", "seed"} or "key" not in message.arrays:
        raise ProtocolError(f"setup must carry a key (and a seed), got {list(message.arrays)}")
    blobs = {}
    for name, array in message.arrays.items():
        if array.dtype != np.uint8 or array.shape != (32,):
            raise ProtocolError(f"setup {name} must be 32 bytes, got {array.dtype} {array.shape}")
        blobs[name] = array.tobytes()
    return Setup(
        role=meta["role"],
        node=meta["node"],
        num_parties=n,
        ports=tuple(ports),
        key=blobs["key"],
        listen_fd=meta["listen_fd"],
        result_path=meta["result_path"],
        timeout=meta["timeout"],
        seed=blobs.get("seed"),
        fractional_bits=meta["fractional_bits"],
    )


@dataclass(frozen=True)
class NodeReport:
    """What a child reports when it ends: its outputs and counts, or why it failed.

    Attributes
    ----------
    node
        The child's node index.
    rounds, bytes_sent
        Its :class:`~privet.mpc.runtime.CommStats` (parties; 0 for the dealer).
    dealer_items, dealer_bytes
        :class:`~privet.mpc.dealer.DealerStats` of its dealer (view).
    wire_bytes
        Bytes it put on the sockets (frames, MACs and message headers included).
    error
        ``None``, or the error that ended it (``"PeerLost: party 1 closed ..."``).
    outputs
        The arrays a party's program reported.
    """

    node: int
    rounds: int = 0
    bytes_sent: int = 0
    dealer_items: int = 0
    dealer_bytes: int = 0
    wire_bytes: int = 0
    error: str | None = None
    outputs: Mapping[str, NDArray[Any]] = field(default_factory=dict)


_REPORT_COUNTS: Final = (
    "node",
    "rounds",
    "bytes_sent",
    "dealer_items",
    "dealer_bytes",
    "wire_bytes",
)


def encode_report(report: NodeReport) -> bytes:
    """What a child writes to its report file when it ends."""
    meta: dict[str, Any] = {name: getattr(report, name) for name in _REPORT_COUNTS}
    meta["error"] = report.error
    return encode_message("mpc.result", meta, dict(report.outputs))


def decode_report(payload: bytes, sender: str) -> NodeReport:
    """A child's :class:`NodeReport`, every field checked."""
    message = _decode(payload, "mpc.result", sender, "at the end")
    meta = dict(message.meta)
    if meta.keys() != {*_REPORT_COUNTS, "error"}:
        raise ProtocolError(f"{sender}'s report has meta keys {sorted(meta)}", sender)
    counts = {name: meta[name] for name in _REPORT_COUNTS}
    if not all(type(value) is int for value in counts.values()):
        raise ProtocolError(f"{sender}'s report counts must be ints, got {counts}", sender)
    error = meta["error"]
    if error is not None and not isinstance(error, str):
        raise ProtocolError(f"{sender}'s report error must be a string, got {error!r:.40}")
    outputs = {name: np.array(array) for name, array in message.arrays.items()}
    return NodeReport(**counts, error=error, outputs=outputs)


def read_setup(stream: IO[bytes]) -> Setup:
    """The setup the launcher wrote to this process's ``stream`` (its stdin)."""
    data = b"" if stream.isatty() else stream.read(MAX_SETUP_BYTES + 1)
    if not data:
        raise PrivacyError(
            "privet.mpc.connect() must run in a process started by privet.mpc.launch "
            "(or `privet mpc run`): no setup arrived on stdin"
        )
    if len(data) > MAX_SETUP_BYTES:
        raise PrivacyError(f"setup must be at most {MAX_SETUP_BYTES} bytes on stdin")
    return decode_setup(data)


def write_report(path: str, report: NodeReport) -> None:
    """Atomically: the launcher never reads half a report."""
    partial = f"{path}.partial"
    with open(partial, "wb") as handle:
        handle.write(encode_report(report))
    os.replace(partial, path)


def describe_error(error: BaseException) -> str:
    """How a node reports an error to its peers and the launcher."""
    return f"{type(error).__name__}: {error}"
