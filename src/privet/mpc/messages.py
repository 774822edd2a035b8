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
``mpc.open_to``           party -> one receiver       round; this party's shares (sum)
``mpc.seed``              dealer -> party i < n - 1   its share stream's seed (once)
``mpc.request``           party n - 1 -> dealer       item index; method, shapes, params
``mpc.item``              dealer -> party n - 1       the request answered; its rows (+ ``r``)
``mpc.mask``              dealer -> owner i < n - 1   item index; the input mask ``r``
``mpc.plan``              launcher -> dealer (file)   the items to make ahead, in order
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
from privet.mpc.dealer import DealerPlan, Delivery, ItemRequest, Method
from privet.mpc.ring import RingArray
from privet.mpc.transport import ProtocolError
from privet.wire import Message, WireError, decode_message, encode_message

__all__ = [
    "BROADCAST",
    "MAX_SETUP_BYTES",
    "OPEN_BITS",
    "OPEN_RING",
    "OPEN_TO",
    "NodeReport",
    "Setup",
    "decode_item",
    "decode_mask",
    "decode_plan",
    "decode_report",
    "decode_request",
    "decode_round",
    "decode_seed",
    "decode_setup",
    "describe_error",
    "encode_item",
    "encode_mask",
    "encode_plan",
    "encode_report",
    "encode_request",
    "encode_round",
    "encode_seed",
    "encode_setup",
    "plan_array",
    "plan_from_array",
    "read_setup",
    "write_report",
]

OPEN_RING: Final = "mpc.open_ring"
OPEN_BITS: Final = "mpc.open_bits"
BROADCAST: Final = "mpc.broadcast"
OPEN_TO: Final = "mpc.open_to"
_ROUND_KINDS: Final = (OPEN_RING, OPEN_BITS, BROADCAST, OPEN_TO)
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


def _request_meta(index: int, request: ItemRequest) -> dict[str, Any]:
    return {
        "item": index,
        "method": request.method.value,
        "shapes": [list(shape) for shape in request.shapes],
        "params": list(request.params),
    }


_REQUEST_KEYS: Final = {"item": int, "method": str, "shapes": list, "params": list}


def _request(message: Message, index: int, sender: str, where: str) -> ItemRequest:
    """The request a message's meta describes, checked (shapes compatible) before use."""
    meta = _meta(message, _REQUEST_KEYS, sender, where)
    if meta["item"] != index:
        raise ProtocolError(
            f"{sender} sent {message.kind} for item {meta['item']}, but this node is at item "
            f"{index}",
            sender,
        )
    try:
        shapes = tuple(tuple(shape) for shape in meta["shapes"])
        return ItemRequest(meta["method"], shapes, tuple(meta["params"]))
    except (PrivacyError, TypeError) as error:
        raise ProtocolError(
            f"{sender} sent a bad item description {where}: {error}", sender
        ) from None


def encode_request(index: int, request: ItemRequest) -> bytes:
    """The last party's request for item number ``index``: public values only."""
    return encode_message("mpc.request", _request_meta(index, request))


def decode_request(payload: bytes, index: int, sender: str) -> ItemRequest:
    """Request number ``index``: validated (shapes compatible) before the dealer draws."""
    where = f"for item {index}"
    message = _decode(payload, "mpc.request", sender, where)
    request = _request(message, index, sender, where)
    _arrays(message, [], sender, where)
    return request


def encode_item(
    index: int, request: ItemRequest, rows: Sequence[RingArray], value: RingArray | None
) -> bytes:
    """The dealer's item ``index``: what it is (so that an item streamed from a plan is
    checked against what the program asks for), the last party's rows of it, and ``r`` if
    that party owns the input the item masks."""
    arrays = {str(part): row for part, row in enumerate(rows)}
    if value is not None:
        arrays[_VALUE] = value
    return encode_message("mpc.item", _request_meta(index, request), arrays)


def decode_item(
    payload: bytes, index: int, request: ItemRequest, owner: bool, sender: str
) -> Delivery:
    """One-row stacks of item ``index``, which must be the item ``request`` describes, and
    ``r`` if this party owns the input it masks."""
    where = f"for item {index}"
    message = _decode(payload, "mpc.item", sender, where)
    made = _request(message, index, sender, where)
    if made != request:
        raise ProtocolError(
            f"{sender} sent item {index} as {made.describe()}, but the program asks for "
            f"{request.describe()}: the dealer's plan does not match this program (record it "
            "from the same program on inputs of the same shapes)",
            sender,
        )
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


# -- plans -------------------------------------------------------------------------------------

_METHODS: Final = tuple(Method)


def plan_array(plan: DealerPlan) -> NDArray[np.int64]:
    """A plan as one flat ``int64`` array: per item, the method's index, the number of
    shapes, each shape as its length and dimensions, the number of parameters and them."""
    flat: list[int] = []
    for request in plan.requests:
        flat += [_METHODS.index(request.method), len(request.shapes)]
        for shape in request.shapes:
            flat += [len(shape), *shape]
        flat += [len(request.params), *request.params]
    return np.array(flat, dtype=np.int64)


def plan_from_array(num_parties: int, flat: NDArray[Any], sender: str) -> DealerPlan:
    """The plan :func:`plan_array` wrote, every count and item checked."""
    if flat.dtype != np.int64 or flat.ndim != 1:
        raise ProtocolError(f"{sender} sent a plan of {flat.dtype} {flat.shape}, expected int64")
    values: list[int] = flat.tolist()
    position = 0

    def take(count: int, what: str) -> list[int]:
        nonlocal position
        if count < 0 or position + count > len(values):
            raise ProtocolError(
                f"{sender} sent a plan cut short in item {len(requests)} ({what})", sender
            )
        taken = values[position : position + count]
        position += count
        return taken

    requests: list[ItemRequest] = []
    while position < len(values):
        method, shape_count = take(2, "method")
        if not 0 <= method < len(_METHODS) or not 0 <= shape_count <= 2:
            raise ProtocolError(
                f"{sender} sent a plan whose item {len(requests)} has method {method} and "
                f"{shape_count} shapes",
                sender,
            )
        shapes = [tuple(take(take(1, "shape")[0], "shape")) for _ in range(shape_count)]
        params = take(take(1, "parameters")[0], "parameters")
        try:
            requests.append(ItemRequest(_METHODS[method], tuple(shapes), tuple(params)))
        except PrivacyError as error:
            raise ProtocolError(
                f"{sender} sent a plan with a bad item {len(requests)}: {error}", sender
            ) from None
    try:
        return DealerPlan(num_parties, tuple(requests))
    except PrivacyError as error:
        raise ProtocolError(f"{sender} sent a bad plan: {error}", sender) from None


def encode_plan(plan: DealerPlan) -> bytes:
    """A :class:`~privet.mpc.dealer.DealerPlan` as a privet wire message (to keep in a
    file, or hand to :func:`~privet.mpc.launcher.launch`)."""
    if not isinstance(plan, DealerPlan):
        raise PrivacyError(f"plan must be a privet.mpc DealerPlan, got {plan!r:.80}")
    return encode_message(
        "mpc.plan", {"num_parties": plan.num_parties}, {"items": plan_array(plan)}
    )


def decode_plan(payload: bytes, sender: str = "the plan") -> DealerPlan:
    """The plan :func:`encode_plan` wrote, every item checked."""
    message = _decode(payload, "mpc.plan", sender, "in the plan")
    num_parties = _meta(message, {"num_parties": int}, sender, "in the plan")["num_parties"]
    _arrays(message, ["items"], sender, "in the plan")
    return plan_from_array(num_parties, message.arrays["items"], sender)


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
    plan_path
        The dealer's: a file holding the :class:`~privet.mpc.dealer.DealerPlan` whose
        items it streams ahead (``mpc.plan``); ``""``: it makes items on request.
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
    plan_path: str = ""


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
        "plan_path": setup.plan_path,
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
        "plan_path": str,
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
        plan_path=meta["plan_path"],
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
    dealer_items, dealer_bytes, dealer_seconds
        :class:`~privet.mpc.dealer.DealerStats` of its dealer (view).
    wire_bytes
        Bytes it put on the sockets (frames, GCM tags and message headers included).
    error
        ``None``, or the error that ended it (``"PeerLost: party 1 closed ..."``).
    outputs
        The arrays a party's program reported.
    plan
        The dealer's: every item it made, in order (:func:`plan_array`).
    """

    node: int
    rounds: int = 0
    bytes_sent: int = 0
    dealer_items: int = 0
    dealer_bytes: int = 0
    wire_bytes: int = 0
    error: str | None = None
    outputs: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    dealer_seconds: float = 0.0
    plan: NDArray[np.int64] | None = None


_REPORT_COUNTS: Final = (
    "node",
    "rounds",
    "bytes_sent",
    "dealer_items",
    "dealer_bytes",
    "wire_bytes",
)


_PLAN: Final = "plan"


def encode_report(report: NodeReport) -> bytes:
    """What a child writes to its report file when it ends."""
    meta: dict[str, Any] = {name: getattr(report, name) for name in _REPORT_COUNTS}
    meta["error"] = report.error
    meta["dealer_seconds"] = float(report.dealer_seconds)
    meta["has_plan"] = report.plan is not None
    if report.plan is not None and report.outputs:
        raise PrivacyError("a report carries a plan (the dealer's) or outputs (a party's)")
    arrays = {_PLAN: report.plan} if report.plan is not None else dict(report.outputs)
    return encode_message("mpc.result", meta, arrays)


def decode_report(payload: bytes, sender: str) -> NodeReport:
    """A child's :class:`NodeReport`, every field checked."""
    message = _decode(payload, "mpc.result", sender, "at the end")
    meta = dict(message.meta)
    if meta.keys() != {*_REPORT_COUNTS, "error", "dealer_seconds", "has_plan"}:
        raise ProtocolError(f"{sender}'s report has meta keys {sorted(meta)}", sender)
    counts = {name: meta[name] for name in _REPORT_COUNTS}
    if not all(type(value) is int for value in counts.values()):
        raise ProtocolError(f"{sender}'s report counts must be ints, got {counts}", sender)
    error = meta["error"]
    if error is not None and not isinstance(error, str):
        raise ProtocolError(f"{sender}'s report error must be a string, got {error!r:.40}")
    seconds, has_plan = meta["dealer_seconds"], meta["has_plan"]
    if type(seconds) is not float or type(has_plan) is not bool:
        raise ProtocolError(
            f"{sender}'s report has dealer_seconds={seconds!r:.20}, has_plan={has_plan!r:.20}",
            sender,
        )
    arrays = {name: np.array(array) for name, array in message.arrays.items()}
    plan = None
    if has_plan:
        _arrays(message, [_PLAN], sender, "at the end")
        plan = arrays.pop(_PLAN).astype(np.int64, copy=False)
    return NodeReport(**counts, error=error, outputs=arrays, dealer_seconds=seconds, plan=plan)


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
