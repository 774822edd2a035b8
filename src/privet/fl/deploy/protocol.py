"""The deployment protocol, sans I/O: envelopes on the wire and the server's round state.

Two RPCs carry everything (service ``privet.fl.Deploy``):

``Tasks`` (server streaming)
    The client opens it with a :data:`JOIN` message and keeps it open; the
    server pushes :data:`TASK` envelopes (a task id, the round, fit or
    evaluate, and one of the four :mod:`privet.fl.messages` instruction
    messages as payload) and, when training ends, one :data:`STOP`.
``Submit`` (unary)
    The client answers one task: a :data:`SUBMIT` envelope with the task id,
    the round, and either the result message (fit or evaluate) or an error
    text; the server answers :data:`ACK` or a gRPC error.

Every envelope is a :mod:`privet.wire` message whose meta fields are checked
exactly (no unknown keys, declared types) and whose one array, ``payload``,
is the inner message's bytes as ``uint8``; nothing is ever unpickled.

Each RPC carries the client's id and token in its metadata
(:data:`CLIENT_ID_KEY`, :data:`TOKEN_KEY`); the server checks them against
:class:`~privet.fl.deploy.tls.TokenTable`, its table of token digests.

:class:`ServerProtocol` is the server's state machine with no threads and no
sockets: which clients are connected (one session per client id — a newer
connection *replaces* an older one, whose outstanding task then fails), which
task went to whom in the open round half, which came back, which failed. The
gRPC shell (:mod:`privet.fl.deploy.server`) feeds it events and sends what
it returns. A submission is accepted only for a task that is outstanding for
the submitting client, with the task's round and kind, once; fit results are
decoded against the layout of the parameters that were sent. A *relayed* half
(:meth:`ServerProtocol.begin_relay`, the steps of a secure fit) sends each
client its own payload and hands the answers back as bytes for the caller's
codec, with the same task bookkeeping.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from privet.errors import PrivacyError
from privet.fl.messages import (
    decode_evaluate_result,
    decode_fit_result,
    encode_evaluate_instructions,
    encode_fit_instructions,
)
from privet.fl.parameters import Parameters
from privet.fl.types import (
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    RoundResults,
)
from privet.wire import Limits, Message, WireError, decode_message, encode_message
from privet.wire.codec import DEFAULT_LIMITS

__all__ = [
    "ACK",
    "CLIENT_ID_KEY",
    "ENVELOPE_SLACK",
    "JOIN",
    "PROTOCOL_VERSION",
    "RELAYED",
    "STOP",
    "SUBMIT",
    "TASK",
    "TOKEN_KEY",
    "DeployError",
    "Outbound",
    "ProtocolError",
    "Rejection",
    "RelayResults",
    "ServerProtocol",
    "Stop",
    "Submission",
    "Task",
    "TaskKind",
    "check_client_id",
    "decode_instruction",
    "decode_join",
    "decode_submission",
    "encode_ack",
    "encode_join",
    "encode_stop",
    "encode_submission",
    "encode_task",
    "envelope_limits",
]

PROTOCOL_VERSION: Final = 1
JOIN: Final = "fl.deploy.join"
TASK: Final = "fl.deploy.task"
STOP: Final = "fl.deploy.stop"
SUBMIT: Final = "fl.deploy.submit"
ACK: Final = "fl.deploy.ack"

#: gRPC metadata keys (lower case, as HTTP/2 requires).
CLIENT_ID_KEY: Final = "privet-client-id"
TOKEN_KEY: Final = "privet-token"

_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", re.ASCII)
_TASK_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}", re.ASCII)
#: Longest error text a client may report (longer texts are cut when encoding).
MAX_ERROR_CHARS: Final = 1000
#: Bytes an envelope may add around its payload.
ENVELOPE_SLACK: Final = 1 << 16


class TaskKind(enum.Enum):
    """What a task asks: a plain fit or evaluate, or one step of a secure fit.

    A secure fit (:mod:`privet.fl.deploy.secure`) is relayed: the server
    sends a ``SECURE_FIT`` task (payload: an ``fl.secure_fit`` message) and
    then three ``SECURE_STEP`` tasks (payload: a :mod:`privet.secagg.codec`
    server message); the answers are opaque bytes here, checked by the
    secure-aggregation codec.
    """

    FIT = "fit"
    EVALUATE = "evaluate"
    SECURE_FIT = "secure_fit"
    SECURE_STEP = "secure_step"


#: Task kinds whose answers the protocol passes on as bytes.
RELAYED: Final = frozenset({TaskKind.SECURE_FIT, TaskKind.SECURE_STEP})


class Rejection(enum.Enum):
    """Why a message was refused; the gRPC shell maps each to one status code."""

    MALFORMED = "malformed"  # not the declared bytes, fields or result layout
    NOT_OUTSTANDING = "not outstanding"  # unknown, another client's, past, or already given up
    DUPLICATE = "duplicate"  # this task was answered already


class DeployError(RuntimeError):
    """A deployment cannot go on: the server is unreachable, refused the client, or too few
    clients joined. ``status`` is the gRPC status name behind it (``"UNAUTHENTICATED"``,
    ``"UNAVAILABLE"``, ...), if any."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProtocolError(WireError):
    """An inbound message was refused; :attr:`rejection` says why, by type."""

    def __init__(self, rejection: Rejection, message: str) -> None:
        super().__init__(message)
        self.rejection = rejection


def check_client_id(client_id: object) -> str:
    """Client ids are 1 to 64 ASCII letters, digits or ``_.-``, starting with a letter or digit."""
    if not isinstance(client_id, str) or _CLIENT_ID.fullmatch(client_id) is None:
        shown = repr(client_id)[:80]
        raise PrivacyError(f"client_id must be 1 to 64 ASCII letters, digits or '_.-', got {shown}")
    return client_id


# -- envelopes --------------------------------------------------------------------------------


def envelope_limits(limits: Limits) -> Limits:
    """Limits for an envelope whose payload obeys ``limits``: one byte array, a small header."""
    return Limits(
        max_message_bytes=limits.max_message_bytes + ENVELOPE_SLACK,
        max_header_bytes=ENVELOPE_SLACK // 2,
        max_arrays=1,
        max_ndim=1,
        max_string_bytes=4 * MAX_ERROR_CHARS,
        max_meta_entries=16,
        max_meta_depth=2,
    )


@dataclass(frozen=True)
class Task:
    """One instruction for one client: ``payload`` is a fit or evaluate instructions message."""

    task_id: str
    server_round: int
    kind: TaskKind
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class Stop:
    """The server is done with this client (training finished, or a newer connection won)."""

    reason: str


@dataclass(frozen=True)
class Submission:
    """A client's answer to a task: the result message, or why there is none."""

    task_id: str
    server_round: int
    kind: TaskKind
    payload: bytes | None = field(default=None, repr=False)
    error: str | None = None

    def __post_init__(self) -> None:
        if (self.payload is None) == (self.error is None):
            raise PrivacyError("a submission must carry exactly one of payload and error")


def _payload_array(payload: bytes) -> dict[str, np.ndarray[Any, Any]]:
    return {"payload": np.frombuffer(payload, dtype=np.uint8)}


def _meta(message: Message, fields: Mapping[str, tuple[type, ...]]) -> dict[str, Any]:
    """The message's meta, checked to have exactly ``fields`` with those types (no bools)."""
    if set(message.meta) != set(fields):
        raise ProtocolError(
            Rejection.MALFORMED,
            f"{message.kind} meta must have the fields {sorted(fields)}, "
            f"got {sorted(message.meta)}",
        )
    for name, kinds in fields.items():
        value = message.meta[name]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise ProtocolError(
                Rejection.MALFORMED, f"{message.kind} field {name!r} has the wrong type: {value!r}"
            )
    return dict(message.meta)


def _decode(data: bytes, kinds: str | tuple[str, ...], limits: Limits) -> Message:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError(
            Rejection.MALFORMED, f"message must be bytes, got {type(data).__name__}"
        )
    try:
        return decode_message(data, expected_kind=kinds, limits=envelope_limits(limits))
    except WireError as error:
        raise ProtocolError(Rejection.MALFORMED, str(error)) from None


def _payload(message: Message, required: bool) -> bytes | None:
    arrays = message.arrays
    if not arrays and not required:
        return None
    if list(arrays) != ["payload"] or arrays["payload"].dtype != np.uint8:
        raise ProtocolError(
            Rejection.MALFORMED, f"{message.kind} must carry one uint8 array named 'payload'"
        )
    return arrays["payload"].tobytes()


def _task_fields(meta: Mapping[str, Any], kind: str) -> tuple[str, int, TaskKind]:
    task_id, server_round, task = meta["task_id"], meta["server_round"], meta["task"]
    if _TASK_ID.fullmatch(task_id) is None:
        raise ProtocolError(Rejection.MALFORMED, f"{kind} task_id is malformed: {task_id[:80]!r}")
    if server_round < 1:
        raise ProtocolError(
            Rejection.MALFORMED, f"{kind} server_round must be >= 1, got {server_round}"
        )
    try:
        return task_id, server_round, TaskKind(task)
    except ValueError:
        raise ProtocolError(
            Rejection.MALFORMED,
            f"{kind} task must be one of {[k.value for k in TaskKind]}, got {task[:80]!r}",
        ) from None


_TASK_FIELDS: Final = {"task_id": (str,), "server_round": (int,), "task": (str,)}


def encode_join() -> bytes:
    """What a client sends to open its task stream."""
    return encode_message(JOIN, {"version": PROTOCOL_VERSION})


def decode_join(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> None:
    """Check a join message; a client speaking another protocol version is refused."""
    message = _decode(data, JOIN, limits)
    version = _meta(message, {"version": (int,)})["version"]
    if message.arrays or version != PROTOCOL_VERSION:
        raise ProtocolError(
            Rejection.MALFORMED,
            f"join must be protocol version {PROTOCOL_VERSION} without arrays, got {version}",
        )


def encode_task(task: Task) -> bytes:
    meta = {"task_id": task.task_id, "server_round": task.server_round, "task": task.kind.value}
    return encode_message(TASK, meta, _payload_array(task.payload))


def encode_stop(reason: str) -> bytes:
    return encode_message(STOP, {"reason": reason[:MAX_ERROR_CHARS]})


def decode_instruction(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Task | Stop:
    """A message from the server's task stream (client side)."""
    message = _decode(data, (TASK, STOP), limits)
    if message.kind == STOP:
        if message.arrays:
            raise ProtocolError(Rejection.MALFORMED, f"{STOP} must carry no arrays")
        return Stop(_meta(message, {"reason": (str,)})["reason"])
    task_id, server_round, kind = _task_fields(_meta(message, _TASK_FIELDS), TASK)
    payload = _payload(message, required=True)
    return Task(task_id, server_round, kind, payload if payload is not None else b"")


def encode_submission(submission: Submission) -> bytes:
    meta = {
        "task_id": submission.task_id,
        "server_round": submission.server_round,
        "task": submission.kind.value,
        "error": None if submission.error is None else submission.error[:MAX_ERROR_CHARS],
    }
    arrays = None if submission.payload is None else _payload_array(submission.payload)
    return encode_message(SUBMIT, meta, arrays)


def decode_submission(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Submission:
    message = _decode(data, SUBMIT, limits)
    meta = _meta(message, {**_TASK_FIELDS, "error": (str, type(None))})
    task_id, server_round, kind = _task_fields(meta, SUBMIT)
    payload = _payload(message, required=meta["error"] is None)
    if (payload is None) == (meta["error"] is None):
        raise ProtocolError(
            Rejection.MALFORMED, f"{SUBMIT} must carry exactly one of a payload and an error"
        )
    return Submission(task_id, server_round, kind, payload, meta["error"])


def encode_ack() -> bytes:
    return encode_message(ACK)


# -- the server's state -----------------------------------------------------------------------


def _constant(payload: bytes) -> Callable[[], bytes]:
    return lambda: payload


@dataclass(frozen=True)
class RelayResults:
    """What came back from a relayed half: each answering client's bytes, and the failures."""

    answers: Mapping[str, bytes]
    failures: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class Outbound:
    """A task envelope to push down one client's stream (its session at the time of sending)."""

    client_id: str
    session: int
    data: bytes = field(repr=False)


@dataclass
class _Sent:
    client_id: str
    session: int
    index: int


_Answer = FitResult | EvaluateResult | bytes


@dataclass
class _Half:
    kind: TaskKind
    server_round: int
    like: Parameters | None
    outstanding: dict[str, _Sent] = field(default_factory=dict)
    answered: dict[str, tuple[int, str, _Answer]] = field(default_factory=dict)
    failed: dict[str, tuple[int, str, str]] = field(default_factory=dict)


class ServerProtocol:
    """The server side of a deployment: sessions and the open round half, no I/O.

    Not thread-safe: the caller serialises calls (the gRPC shell holds one lock).

    Parameters
    ----------
    instance
        Prefix of every task id this object issues; a fresh random value per
        server process keeps a task id from an earlier (crashed) server from
        matching one of this server's.
    limits
        Caps on inbound result messages (envelopes get a little more).
    """

    def __init__(self, instance: str, *, limits: Limits = DEFAULT_LIMITS) -> None:
        if not isinstance(instance, str) or _TASK_ID.fullmatch(instance + "-0") is None:
            raise PrivacyError(
                f"instance must be a short id of letters and digits, got {instance!r}"
            )
        self._instance = instance
        self.limits = limits
        self._sessions: dict[str, int] = {}
        self._next_session = 0
        self._next_task = 0
        self._half: _Half | None = None

    # -- sessions --

    @property
    def connected(self) -> list[str]:
        """Connected client ids, sorted (a seeded sampler then picks the same clients)."""
        return sorted(self._sessions)

    def is_current(self, client_id: str, session: int) -> bool:
        return self._sessions.get(client_id) == session

    def connect(self, client_id: str) -> tuple[int, int | None]:
        """A new session for ``client_id``: ``(session, replaced session or None)``.

        A newer connection replaces the older one (a client that lost its
        connection can come back before the server notices); whatever was
        outstanding on the old session fails.
        """
        check_client_id(client_id)
        replaced = self._sessions.get(client_id)
        if replaced is not None:
            self._fail_session(client_id, replaced, "replaced by a newer connection")
        self._next_session += 1
        self._sessions[client_id] = self._next_session
        return self._next_session, replaced

    def disconnect(self, client_id: str, session: int, reason: str) -> bool:
        """The session's stream ended; ``False`` if it was no longer the client's current one."""
        if not self.is_current(client_id, session):
            return False
        del self._sessions[client_id]
        self._fail_session(client_id, session, reason)
        return True

    def _fail_session(self, client_id: str, session: int, reason: str) -> None:
        if self._half is None:
            return
        for task_id, sent in list(self._half.outstanding.items()):
            if sent.client_id == client_id and sent.session == session:
                self._fail(task_id, reason)

    # -- round halves --

    @property
    def open(self) -> bool:
        return self._half is not None

    @property
    def complete(self) -> bool:
        """Every task of the open half answered or failed (trivially true with none open)."""
        return self._half is None or not self._half.outstanding

    @property
    def pending(self) -> list[str]:
        """Clients whose task in the open half is still outstanding."""
        return [] if self._half is None else [s.client_id for s in self._half.outstanding.values()]

    def begin_fit(
        self, parameters: Parameters, tasks: Sequence[tuple[str, FitInstructions]]
    ) -> list[Outbound]:
        """Open a fit half; the envelopes to send, one per connected client asked."""
        return self._begin(TaskKind.FIT, parameters, tasks)

    def begin_evaluate(
        self, parameters: Parameters, tasks: Sequence[tuple[str, EvaluateInstructions]]
    ) -> list[Outbound]:
        return self._begin(TaskKind.EVALUATE, parameters, tasks)

    def begin_relay(
        self, kind: TaskKind, server_round: int, payloads: Sequence[tuple[str, bytes]]
    ) -> list[Outbound]:
        """Open a relayed half (one step of a secure fit): each client gets its own payload.

        The answers come back from :meth:`end_relay` as bytes, unchecked
        beyond the envelope: the caller's codec decodes them.
        """
        if kind not in RELAYED:
            kinds = sorted(k.value for k in RELAYED)
            raise PrivacyError(f"kind must be one of {kinds}, got {kind!r}")
        if isinstance(server_round, bool) or not isinstance(server_round, int) or server_round < 1:
            raise PrivacyError(f"server_round must be an integer >= 1, got {server_round!r}")
        for client_id, payload in payloads:
            check_client_id(client_id)
            if not isinstance(payload, bytes):
                raise PrivacyError(f"payload must be bytes, got {type(payload).__name__}")
        self._check_unique([client_id for client_id, _ in payloads], {server_round})
        return self._dispatch(
            _Half(kind, server_round, None),
            [(client_id, _constant(payload)) for client_id, payload in payloads],
        )

    @staticmethod
    def _check_unique(ids: list[str], rounds: set[int]) -> None:
        if len(set(ids)) != len(ids) or len(rounds) > 1:
            raise PrivacyError(
                f"tasks must name each client once, all in one round, got {ids} in rounds "
                f"{sorted(rounds)}"
            )

    def _begin(
        self,
        kind: TaskKind,
        parameters: Parameters,
        tasks: Sequence[tuple[str, FitInstructions | EvaluateInstructions]],
    ) -> list[Outbound]:
        expected = FitInstructions if kind is TaskKind.FIT else EvaluateInstructions
        rounds = set()
        for client_id, instructions in tasks:
            check_client_id(client_id)
            if not isinstance(instructions, expected):
                raise PrivacyError(
                    f"{kind.value} tasks must carry {expected.__name__}, "
                    f"got {type(instructions).__name__}"
                )
            rounds.add(instructions.server_round)
        self._check_unique([client_id for client_id, _ in tasks], rounds)
        encoded: dict[int, bytes] = {}

        def payload(instructions: FitInstructions | EvaluateInstructions) -> bytes:
            # Strategies usually hand every client the same instructions object: encode once.
            key = id(instructions)
            if key not in encoded:
                encoded[key] = (
                    encode_fit_instructions(parameters, instructions)
                    if isinstance(instructions, FitInstructions)
                    else encode_evaluate_instructions(parameters, instructions)
                )
            return encoded[key]

        half = _Half(kind, rounds.pop() if rounds else 1, parameters)
        return self._dispatch(
            half,
            [(client_id, functools.partial(payload, ins)) for client_id, ins in tasks],
        )

    def _dispatch(
        self, half: _Half, payloads: Sequence[tuple[str, Callable[[], bytes]]]
    ) -> list[Outbound]:
        """Open ``half``: a task per client; the envelopes for the connected ones."""
        if self._half is not None:
            raise PrivacyError("a round half is already open; end it before beginning another")
        self._half = half
        outbound = []
        for index, (client_id, payload) in enumerate(payloads):
            self._next_task += 1
            task_id = f"{self._instance}-{self._next_task}"
            session = self._sessions.get(client_id)
            half.outstanding[task_id] = _Sent(client_id, -1 if session is None else session, index)
            if session is None:
                self._fail(task_id, "not connected")
                continue
            task = Task(task_id, half.server_round, half.kind, payload())
            outbound.append(Outbound(client_id, session, encode_task(task)))
        return outbound

    def _fail(self, task_id: str, reason: str) -> None:
        if self._half is None:
            return
        sent = self._half.outstanding.pop(task_id)
        self._half.failed[task_id] = (sent.index, sent.client_id, reason)

    def receive(self, client_id: str, data: bytes) -> Submission:
        """Take a client's submission; raise :class:`ProtocolError` if it is refused.

        A refused envelope changes nothing, except a well-addressed answer
        whose result does not decode (wrong layout, malformed): that task
        fails at once, so the round need not wait for its timeout.
        """
        submission = decode_submission(data, limits=self.limits)
        half = self._half
        task_id = submission.task_id
        if half is not None and task_id in half.answered and half.answered[task_id][1] == client_id:
            raise ProtocolError(Rejection.DUPLICATE, f"task {task_id} was answered already")
        sent = None if half is None else half.outstanding.get(task_id)
        if half is None or sent is None or sent.client_id != client_id:
            raise ProtocolError(
                Rejection.NOT_OUTSTANDING, f"task {task_id} is not outstanding for {client_id!r}"
            )
        if submission.server_round != half.server_round or submission.kind is not half.kind:
            raise ProtocolError(
                Rejection.NOT_OUTSTANDING,
                f"task {task_id} is a {half.kind.value} task of round {half.server_round}, got "
                f"a {submission.kind.value} answer for round {submission.server_round}",
            )
        if submission.error is not None:
            self._fail(task_id, f"client error: {submission.error}")
            return submission
        payload = submission.payload if submission.payload is not None else b""
        result: _Answer
        try:
            if half.kind in RELAYED:
                result = payload
            elif half.kind is TaskKind.FIT:
                result = decode_fit_result(payload, like=half.like, limits=self.limits)
            else:
                result = decode_evaluate_result(payload, limits=self.limits)
        except WireError as error:
            self._fail(task_id, f"malformed result: {error}")
            raise ProtocolError(Rejection.MALFORMED, f"task {task_id}: {error}") from None
        del half.outstanding[task_id]
        half.answered[task_id] = (sent.index, client_id, result)
        return submission

    def expire(self, reason: str) -> list[str]:
        """Fail every outstanding task (the round timed out); the clients that failed."""
        if self._half is None:
            return []
        clients = self.pending
        for task_id in list(self._half.outstanding):
            self._fail(task_id, reason)
        return clients

    def end_fit(self) -> RoundResults[FitResult]:
        """Close the fit half: answers and failures in the order the tasks were given."""
        results, failures = self._end(TaskKind.FIT)
        return RoundResults([(cid, r) for cid, r in results if isinstance(r, FitResult)], failures)

    def end_evaluate(self) -> RoundResults[EvaluateResult]:
        results, failures = self._end(TaskKind.EVALUATE)
        return RoundResults(
            [(cid, r) for cid, r in results if isinstance(r, EvaluateResult)], failures
        )

    def end_relay(self) -> RelayResults:
        """Close a relayed half: the answers' payloads and the failures, in task order."""
        if self._half is None or self._half.kind not in RELAYED:
            raise PrivacyError("no relayed half is open")
        results, failures = self._end(self._half.kind)
        return RelayResults({cid: r for cid, r in results if isinstance(r, bytes)}, failures)

    def _end(self, kind: TaskKind) -> tuple[list[tuple[str, _Answer]], list[tuple[str, str]]]:
        half = self._half
        if half is None or half.kind is not kind:
            raise PrivacyError(f"no {kind.value} half is open")
        self.expire("the round ended before an answer came")
        self._half = None
        answered = sorted(half.answered.values(), key=lambda item: item[0])
        failed = sorted(half.failed.values(), key=lambda item: item[0])
        return (
            [(client_id, result) for _, client_id, result in answered],
            [(client_id, reason) for _, client_id, reason in failed],
        )
