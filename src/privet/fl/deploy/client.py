"""The client side of a deployment: :func:`join` a server and answer its tasks.

A silo runs ``join(address, client, client_id=..., token=..., ca_file=...)``:
it opens the server's task stream over TLS, and for each task decodes the
instructions, runs its own :class:`~privet.fl.types.Client` (data never
leaves the silo, only the parameters it returns), and submits the result.
A client that raises reports the error instead of going silent, so the
server need not wait for its round timeout.

Reconnecting is kept simple: if the connection drops (server restart,
network), ``join`` waits up to ``connect_timeout`` for the server to be
reachable again — gRPC's own reconnection, observed through
``channel_ready_future``, not a polling loop — and rejoins. A refusal
(``UNAUTHENTICATED``, a protocol error) is final and raises
:class:`~privet.fl.deploy.protocol.DeployError`. ``join`` returns when the
server says training is over (or that a newer connection replaced this one).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privet.errors import PrivacyError
from privet.fl.deploy.protocol import (
    CLIENT_ID_KEY,
    RELAYED,
    TOKEN_KEY,
    DeployError,
    Stop,
    Submission,
    Task,
    TaskKind,
    check_client_id,
    decode_instruction,
    encode_join,
    encode_submission,
    envelope_limits,
)
from privet.fl.deploy.secure import SecureTaskRunner
from privet.fl.deploy.server import (
    DEFAULT_MAX_MESSAGE_BYTES,
    SERVICE,
    check_max_message_bytes,
    check_timeout,
)
from privet.fl.deploy.tls import check_token
from privet.fl.messages import (
    decode_evaluate_instructions,
    decode_fit_instructions,
    encode_evaluate_result,
    encode_fit_result,
)
from privet.fl.types import Client
from privet.wire import Limits, WireError

__all__ = ["JoinReport", "join", "read_token"]

logger = logging.getLogger("privet.fl.deploy")


@dataclass(frozen=True)
class JoinReport:
    """What a client did in a training: tasks answered (a secure fit counts once, its
    protocol steps not), tasks it could not answer, and why the server sent it away."""

    fit_tasks: int
    evaluate_tasks: int
    failed_tasks: int
    reason: str


def read_token(path: str | os.PathLike[str]) -> str:
    """A token from a file (surrounding whitespace removed)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise PrivacyError(
            f"token_file must be a readable text file, got {os.fspath(path)!r}: {error}"
        ) from None
    return check_token(text)


def _instance(client: Client | Callable[[], Client]) -> Client:
    # A class has fit/evaluate attributes too: only an instance counts as a client.
    if isinstance(client, Client) and not isinstance(client, type):
        return client
    if callable(client):
        made = client()
        if isinstance(made, Client):
            return made
        raise PrivacyError(f"client factory must return a Client, got {type(made).__name__}")
    raise PrivacyError(f"client must be a Client or a factory of one, got {type(client).__name__}")


def _answer(client: Client, secure: SecureTaskRunner, task: Task, limits: Limits) -> Submission:
    """Run one task; any failure becomes an error submission rather than silence."""
    try:
        if task.kind in RELAYED:
            payload = secure.answer(task)
            server_round = task.server_round
        elif task.kind is TaskKind.FIT:
            parameters, fit_ins = decode_fit_instructions(task.payload, limits=limits)
            server_round = fit_ins.server_round
            payload = encode_fit_result(client.fit(parameters, fit_ins))
        else:
            parameters, eval_ins = decode_evaluate_instructions(task.payload, limits=limits)
            server_round = eval_ins.server_round
            payload = encode_evaluate_result(client.evaluate(parameters, eval_ins))
        if server_round != task.server_round:
            raise WireError(f"task of round {task.server_round} carries round {server_round}")
    except Exception as error:  # the client's own code may raise anything
        logger.warning("task %s (%s) failed: %s", task.task_id, task.kind.value, error)
        text = f"{type(error).__name__}: {error}"
        return Submission(task.task_id, task.server_round, task.kind, error=text)
    return Submission(task.task_id, task.server_round, task.kind, payload=payload)


def _channel(
    grpc: Any, address: str, ca_file: str | os.PathLike[str] | None, insecure: bool, wire_max: int
) -> Any:
    options = [
        ("grpc.max_receive_message_length", wire_max),
        ("grpc.max_send_message_length", wire_max),
        # Come back within about a second of a restarted server (gRPC's default waits longer).
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1000),
        # Notice a server that vanished without closing the connection.
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
    ]
    if insecure:
        logger.warning("joining %s WITHOUT TLS (for tests on loopback only)", address)
        return grpc.insecure_channel(address, options=options)
    try:
        # None: the system's trusted roots (a server with a public certificate).
        roots = None if ca_file is None else Path(ca_file).read_bytes()
    except OSError as error:
        raise PrivacyError(
            f"ca_file must be a readable PEM file, got {ca_file!r}: {error}"
        ) from None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.secure_channel(address, credentials, options=options)


def join(
    address: str,
    client: Client | Callable[[], Client],
    *,
    client_id: str,
    token: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    connect_timeout: float = 60.0,
    submit_timeout: float = 600.0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> JoinReport:
    """Take part in a federated training served at ``address`` until the server stops it.

    Parameters
    ----------
    address
        The server's ``host:port``; its certificate must name ``host``.
    client
        The local participant, or a factory called once to make it.
    client_id, token, token_file
        This silo's identity: its id in the server's token table and its token,
        given as a string or as a file holding it (exactly one of the two).
    ca_file
        PEM certificates trusted to sign the server's (``None``: the system's roots).
    insecure
        No TLS, for tests on loopback only (logs a warning).
    connect_timeout
        Seconds to keep trying to reach the server, at first and after each disconnection.
    submit_timeout
        Seconds one submission may take.
    max_message_bytes
        Largest instruction or result message (as the server's).

    Raises
    ------
    DeployError
        The server refused this client (``status`` ``"UNAUTHENTICATED"``...) or stayed
        unreachable for ``connect_timeout`` (``"UNAVAILABLE"``).
    PrivacyError
        A bad argument.
    """
    from privet.fl.deploy.server import load_grpc

    grpc = load_grpc()
    check_client_id(client_id)
    if token is not None and token_file is None:
        secret = check_token(token)
    elif token_file is not None and token is None:
        secret = read_token(token_file)
    else:
        raise PrivacyError("exactly one of token and token_file must be given, got both or none")
    connect_timeout = check_timeout("connect_timeout", connect_timeout)
    submit_timeout = check_timeout("submit_timeout", submit_timeout)
    limits = Limits(max_message_bytes=check_max_message_bytes(max_message_bytes))
    participant = _instance(client)
    metadata = ((CLIENT_ID_KEY, client_id), (TOKEN_KEY, secret))
    tally = _Tally()
    channel = _channel(grpc, address, ca_file, insecure, envelope_limits(limits).max_message_bytes)
    calls = _Calls(
        grpc,
        channel.unary_stream(f"/{SERVICE}/Tasks"),
        channel.unary_unary(f"/{SERVICE}/Submit"),
        metadata,
        submit_timeout,
        # Refusals another attempt cannot fix are final; these two are the connection's.
        frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}),
    )
    deadline = time.monotonic() + connect_timeout
    try:
        while True:
            outcome = _session(calls, participant, limits, tally)
            if isinstance(outcome, Stop):
                return JoinReport(tally.fit, tally.evaluate, tally.failed, outcome.reason)
            joined, reason = outcome
            if joined:  # the reconnect window starts at the disconnection
                deadline = time.monotonic() + connect_timeout
            remaining = deadline - time.monotonic()
            logger.info("lost the server (%s); retrying for up to %.1f s", reason, remaining)
            try:
                if remaining <= 0:
                    raise grpc.FutureTimeoutError()
                # Wakes as soon as gRPC's own reconnection succeeds.
                grpc.channel_ready_future(channel).result(timeout=remaining)
            except grpc.FutureTimeoutError:
                raise DeployError(
                    f"could not reach {address} within {connect_timeout:g} s: {reason}",
                    "UNAVAILABLE",
                ) from None
    finally:
        channel.close()


@dataclass
class _Tally:
    fit: int = 0
    evaluate: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Calls:
    grpc: Any
    tasks: Any
    submit: Any
    metadata: Any
    submit_timeout: float
    retryable: frozenset[Any]


def _session(
    calls: _Calls, participant: Client, limits: Limits, tally: _Tally
) -> Stop | tuple[bool, str]:
    # A secure fit does not survive a reconnection: the server counts this client as dropped.
    secure = SecureTaskRunner(participant, limits)
    """One task stream: the server's stop, or (whether it was joined, why it ended)."""
    grpc = calls.grpc
    stream = calls.tasks(encode_join(), metadata=calls.metadata)
    joined = False
    try:
        stream.initial_metadata()  # returns once the server has let this client in, or failed
        joined = not stream.done()
        if joined:
            logger.info("joined the server")
        for data in stream:
            message = decode_instruction(data, limits=limits)
            if isinstance(message, Stop):
                stream.cancel()
                logger.info("the server stopped this client: %s", message.reason)
                return message
            submission = _answer(participant, secure, message, limits)
            if _submit(calls, submission) and submission.error is None:
                if message.kind in (TaskKind.FIT, TaskKind.SECURE_FIT):
                    tally.fit += 1
                elif message.kind is TaskKind.EVALUATE:
                    tally.evaluate += 1
            else:
                tally.failed += 1
        return joined, "the server ended the task stream"
    except grpc.RpcError as error:
        code = error.code()
        if code not in calls.retryable:
            raise DeployError(
                f"the server refused this client: {code.name}: {error.details()}", code.name
            ) from None
        return joined, f"{code.name}: {error.details()}"
    except WireError as error:
        stream.cancel()
        raise DeployError(f"the server sent a malformed message: {error}") from None


def _submit(calls: _Calls, submission: Submission) -> bool:
    """Send one answer; ``False`` if the server refused it (logged), raise if refusal is final."""
    try:
        calls.submit(
            encode_submission(submission), metadata=calls.metadata, timeout=calls.submit_timeout
        )
    except calls.grpc.RpcError as error:
        code = error.code()
        if code is calls.grpc.StatusCode.UNAUTHENTICATED:
            raise
        logger.warning(
            "submission of task %s refused: %s: %s", submission.task_id, code.name, error.details()
        )
        return False
    return True
