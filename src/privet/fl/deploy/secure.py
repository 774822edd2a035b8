"""Secure aggregation over the gRPC deployment: both ends of a relayed secure fit.

The secure-aggregation protocol (:mod:`privet.secagg`, driven by
:class:`~privet.fl.SecAggEngine`) needs four round trips per federated round.
Here each round trip is one relayed half of the deployment protocol
(:meth:`~privet.fl.deploy.GrpcEngine.relay`), so it inherits its TLS, its
per-call token check, its task ids (a submission for another task, round or
client is refused) and its failure handling (a client whose connection closes
fails its step at once and counts as a dropout, which the protocol recovers
from as long as ``t`` clients remain):

``SECURE_FIT``
    payload: the client's :class:`~privet.fl.secure_client.SecureFitTask` as
    an ``fl.secure_fit`` message (:mod:`privet.fl.secure_messages`); the
    client trains, encodes its contribution and answers with its public keys.
``SECURE_STEP`` (three times)
    payload: the server's protocol message for that client (keys broadcast,
    sealed shares, unmask request); the answer is the client's next message.

Server: :class:`GrpcSecureTransport`, a :class:`~privet.fl.SecureTransport`.
Client: :class:`SecureTaskRunner`, used by :func:`~privet.fl.deploy.join`,
holds the one open :class:`~privet.fl.secure_client.SecureClientSession`;
its keys, masks and encoded update never leave the silo except masked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from privet.errors import PrivacyError
from privet.fl.deploy.protocol import RelayResults, Task, TaskKind
from privet.fl.secure_client import SecureClientSession, SecureFitTask
from privet.fl.secure_messages import decode_secure_fit_task, encode_secure_fit_task
from privet.fl.types import Client
from privet.secagg.messages import ProtocolViolation
from privet.wire import Limits, WireError

__all__ = ["GrpcSecureTransport", "Relay", "SecureTaskRunner"]


@runtime_checkable
class Relay(Protocol):
    """Sends each client its own payload as one task and collects the answers' bytes
    (:meth:`~privet.fl.deploy.GrpcEngine.relay`)."""

    def relay(
        self, kind: TaskKind, server_round: int, payloads: Sequence[tuple[str, bytes]]
    ) -> RelayResults: ...


class GrpcSecureTransport:
    """The server's :class:`~privet.fl.SecureTransport` over a gRPC engine's task streams.

    Use it as ``SecAggEngine(GrpcSecureTransport(engine), engine, config)``
    with a :class:`~privet.fl.deploy.GrpcEngine`; :func:`~privet.fl.deploy.serve`
    does so when given ``secure_aggregation``.
    """

    def __init__(self, engine: Relay) -> None:
        if not isinstance(engine, Relay):
            raise PrivacyError(f"engine must have a relay method, got {type(engine).__name__}")
        self._engine = engine
        self._round: int | None = None

    def start(self, tasks: Mapping[str, SecureFitTask]) -> dict[str, bytes]:
        rounds = {task.params.round_id for task in tasks.values()}
        if len(rounds) != 1:
            raise PrivacyError(f"tasks must share one round, got rounds {sorted(rounds)}")
        self._round = rounds.pop()
        payloads = [(name, encode_secure_fit_task(task)) for name, task in tasks.items()]
        return dict(self._engine.relay(TaskKind.SECURE_FIT, self._round, payloads).answers)

    def exchange(self, messages: Mapping[str, bytes]) -> dict[str, bytes]:
        if self._round is None:
            raise PrivacyError("start a secure round before exchanging its messages")
        steps = self._engine.relay(TaskKind.SECURE_STEP, self._round, list(messages.items()))
        return dict(steps.answers)


class SecureTaskRunner:
    """A silo's side of relayed secure fits: one protocol session at a time.

    Parameters
    ----------
    client
        The silo's federated client; it trains when a ``SECURE_FIT`` task comes.
    limits
        Caps on the decoded ``fl.secure_fit`` message.
    rng
        ``None`` (real use): keys, masks, rounding and noise from the OS
        CSPRNG. A seeded generator is for simulation only.
    """

    def __init__(
        self, client: Client, limits: Limits, rng: np.random.Generator | None = None
    ) -> None:
        self._client = client
        self._limits = limits
        self._rng = rng
        self._session: SecureClientSession | None = None
        self._round: int | None = None

    def answer(self, task: Task) -> bytes:
        """The answer to one relayed task; raises if it cannot be answered (reported upstream)."""
        if task.kind is TaskKind.SECURE_FIT:
            # A new secure fit ends whatever was open: the server gave up on that round.
            self._session = self._round = None
            secure_task = decode_secure_fit_task(task.payload, limits=self._limits)
            if secure_task.params.round_id != task.server_round:
                raise WireError(
                    f"secure fit of round {secure_task.params.round_id} sent as a task of "
                    f"round {task.server_round}"
                )
            session = SecureClientSession(self._client, secure_task, self._rng)
            reply = session.advertise()
            self._session, self._round = session, task.server_round
            return reply
        if task.kind is not TaskKind.SECURE_STEP:
            raise PrivacyError(f"task must be a secure fit or step, got {task.kind.value}")
        open_session = self._session
        if open_session is None or self._round != task.server_round:
            raise ProtocolViolation(f"no secure fit is open for round {task.server_round}")
        try:
            reply = open_session.respond(task.payload)
        except Exception:
            self._session = self._round = None  # a failed step ends this client's round
            raise
        if open_session.finished:
            self._session = self._round = None
        return reply
