"""The gRPC server: :class:`GrpcEngine` (an :class:`~privet.fl.engine.Engine`) and :func:`serve`.

The engine is a thin, threaded shell around
:class:`~privet.fl.deploy.protocol.ServerProtocol`: gRPC handler threads
feed it joins, disconnects and submissions under one lock; ``fit`` and
``evaluate`` push task envelopes down the clients' open streams and wait on a
condition variable until every task is answered or failed, or the round
timeout passes. A client whose connection closes fails its task at once
(gRPC's termination callback), so the round does not wait for the timeout.

:func:`serve` runs a whole training with :func:`~privet.fl.engine.run_federated`
one round at a time, writes a :mod:`~privet.fl.deploy.checkpoint` after each,
and with ``resume=True`` continues from the newest one.

Security: TLS is always on unless ``insecure=True`` (loopback tests only; it
logs a warning). Every RPC must carry a client id and token that match the
server's table of SHA-256 token digests; anything else is refused with
``UNAUTHENTICATED`` before the client is registered, so it is never given a
task. A newer connection with the same client id replaces the older one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import numpy as np

from privet.dp._validation import check_positive_int
from privet.errors import PrivacyError
from privet.fl.deploy.checkpoint import (
    RoundCheckpoint,
    latest_round,
    restore_rng,
    restore_strategy,
    rng_state,
    save_round,
    strategy_state,
)
from privet.fl.deploy.protocol import (
    CLIENT_ID_KEY,
    ENVELOPE_SLACK,
    TOKEN_KEY,
    DeployError,
    Outbound,
    ProtocolError,
    Rejection,
    RelayResults,
    ServerProtocol,
    TaskKind,
    decode_join,
    encode_ack,
    encode_stop,
    envelope_limits,
)
from privet.fl.deploy.secure import GrpcSecureTransport
from privet.fl.deploy.tls import TokenTable
from privet.fl.engine import (
    CentralEvaluation,
    Engine,
    History,
    RoundRecord,
    check_sum_strategy,
    run_federated,
)
from privet.fl.parameters import Parameters
from privet.fl.secure_engine import SecAggEngine, SecureAggregation
from privet.fl.strategy import Strategy
from privet.fl.types import (
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    RoundResults,
)
from privet.wire import Limits

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "SERVICE", "GrpcEngine", "load_token_table", "serve"]

logger = logging.getLogger("privet.fl.deploy")

SERVICE: Final = "privet.fl.Deploy"
#: Largest instruction or result message (the parameters and a little JSON) by default.
DEFAULT_MAX_MESSAGE_BYTES: Final = 1 << 28
_GRPC_MAX: Final = 2**31 - 1  # gRPC takes message limits as C ints


def load_grpc() -> Any:
    try:
        import grpc
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("privet.fl.deploy needs grpcio: pip install privet[fl]") from error
    return grpc


def check_max_message_bytes(value: object) -> int:
    upper = _GRPC_MAX - ENVELOPE_SLACK
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise PrivacyError(f"max_message_bytes must be an int in [1, {upper}], got {value!r}")
    return value


def check_timeout(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise PrivacyError(f"{name} must be > 0 seconds, got {value!r}")
    if not math.isfinite(value):
        raise PrivacyError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_server_credentials(certificate_chain: object, private_key: object) -> None:
    """PEM certificates whose first (the server's own) belongs to the PEM private key.

    gRPC only says "failed to bind" about bad credentials; this says what is wrong.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not isinstance(certificate_chain, bytes) or not isinstance(private_key, bytes):
        raise PrivacyError(
            "certificate_chain and private_key must be PEM bytes (TLS is always on unless "
            f"insecure=True), got {type(certificate_chain).__name__} and "
            f"{type(private_key).__name__}"
        )
    try:
        certificate = x509.load_pem_x509_certificates(certificate_chain)[0]
    except ValueError:
        raise PrivacyError("certificate_chain must hold PEM certificates, got none") from None
    try:
        key = serialization.load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError):
        raise PrivacyError("private_key must be an unencrypted PEM private key") from None
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    mine = key.public_key().public_bytes(serialization.Encoding.DER, raw)
    if certificate.public_key().public_bytes(serialization.Encoding.DER, raw) != mine:
        raise PrivacyError("private_key must belong to the first certificate of the chain")


def load_token_table(path: str | os.PathLike[str]) -> TokenTable:
    """Read a JSON table ``{"client id": "sha256 hex digest"}`` (see :func:`issue_tokens`)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PrivacyError(
            f"token table must be a readable JSON file, got {os.fspath(path)!r}: {error}"
        ) from None
    if not isinstance(raw, dict):
        raise PrivacyError(f"token table must be a JSON object of client ids, got {type(raw)}")
    return TokenTable(raw)


class GrpcEngine:
    """Runs half-rounds on the clients connected over gRPC; listens once constructed.

    Parameters
    ----------
    address
        ``host:port`` to listen on; port 0 picks a free port (see :attr:`port`).
    tokens
        The clients allowed to join and their token digests.
    certificate_chain, private_key
        PEM bytes of the server certificate (chain) and its key.
    insecure
        Listen without TLS: for tests on loopback only (logs a warning).
    round_timeout
        Seconds a half-round waits for answers; clients still silent then fail.
    max_message_bytes
        Largest instruction or result message accepted or sent.
    """

    def __init__(
        self,
        address: str,
        tokens: TokenTable,
        *,
        certificate_chain: bytes | None = None,
        private_key: bytes | None = None,
        insecure: bool = False,
        round_timeout: float = 600.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        grpc = load_grpc()
        if not isinstance(tokens, TokenTable):
            raise PrivacyError(f"tokens must be a TokenTable, got {type(tokens).__name__}")
        if not isinstance(address, str) or not address:
            raise PrivacyError(f"address must be 'host:port', got {address!r}")
        self.round_timeout = check_timeout("round_timeout", round_timeout)
        if not insecure:
            check_server_credentials(certificate_chain, private_key)
        limits = Limits(max_message_bytes=check_max_message_bytes(max_message_bytes))
        self._tokens = tokens
        self._limits = limits
        self._protocol = ServerProtocol(secrets.token_hex(8), limits=limits)
        self._cond = threading.Condition()
        self._streams: dict[tuple[str, int], queue.SimpleQueue[bytes | None]] = {}
        self._closed = False
        wire_max = envelope_limits(limits).max_message_bytes
        options = [
            ("grpc.max_receive_message_length", wire_max),
            ("grpc.max_send_message_length", wire_max),
            # One server per port: two servers silently sharing one would split the clients.
            ("grpc.so_reuseport", 0),
            # Ping idle task streams so a silently vanished client is noticed between rounds.
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
        ]
        # Every open task stream holds a worker thread; the rest serve submissions.
        workers = len(tokens.client_ids) + 8
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="privet-grpc"),
            options=options,
        )
        handlers = {
            "Tasks": grpc.unary_stream_rpc_method_handler(self._tasks),
            "Submit": grpc.unary_unary_rpc_method_handler(self._submit),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        try:
            if insecure:
                logger.warning(
                    "serving on %s WITHOUT TLS: tokens and models cross the network in clear "
                    "(for tests on loopback only)",
                    address,
                )
                port = self._server.add_insecure_port(address)
            else:
                credentials = grpc.ssl_server_credentials([(private_key, certificate_chain)])
                port = self._server.add_secure_port(address, credentials)
        except RuntimeError as error:
            raise DeployError(f"could not listen on {address}: {error}", "UNAVAILABLE") from None
        if not port:
            raise DeployError(f"could not listen on {address}", "UNAVAILABLE")
        self.port: int = port
        self._grpc = grpc
        self._status = {
            Rejection.MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
            Rejection.NOT_OUTSTANDING: grpc.StatusCode.FAILED_PRECONDITION,
            Rejection.DUPLICATE: grpc.StatusCode.ALREADY_EXISTS,
        }
        self._server.start()
        logger.info("listening on %s (port %d)", address, port)

    # -- Engine ---------------------------------------------------------------------------------

    @property
    def client_ids(self) -> Sequence[str]:
        """Clients connected now, sorted by id."""
        with self._cond:
            return self._protocol.connected

    def wait_for_clients(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` clients are connected; ``False`` on timeout."""
        check_positive_int("count", count)
        timeout = check_timeout("timeout", timeout)
        with self._cond:
            return self._cond.wait_for(
                lambda: len(self._protocol.connected) >= count, timeout=timeout
            )

    def fit(
        self, parameters: Parameters, tasks: Sequence[tuple[str, FitInstructions]]
    ) -> RoundResults[FitResult]:
        with self._cond:
            self._send(self._protocol.begin_fit(parameters, tasks))
            self._await_answers()
            results = self._protocol.end_fit()
        self._log_failures("fit", results.failures)
        return results

    def evaluate(
        self, parameters: Parameters, tasks: Sequence[tuple[str, EvaluateInstructions]]
    ) -> RoundResults[EvaluateResult]:
        with self._cond:
            self._send(self._protocol.begin_evaluate(parameters, tasks))
            self._await_answers()
            results = self._protocol.end_evaluate()
        self._log_failures("evaluate", results.failures)
        return results

    def relay(
        self, kind: TaskKind, server_round: int, payloads: Sequence[tuple[str, bytes]]
    ) -> RelayResults:
        """Send each client its own payload as a ``kind`` task; their answers' bytes.

        One step of a secure fit (see :class:`~privet.fl.deploy.secure.GrpcSecureTransport`);
        clients that fail, disconnect or stay silent past the round timeout are failures.
        """
        with self._cond:
            self._send(self._protocol.begin_relay(kind, server_round, payloads))
            self._await_answers()
            results = self._protocol.end_relay()
        self._log_failures(kind.value, results.failures)
        return results

    def close(self, reason: str = "training finished", grace: float = 5.0) -> None:
        """Tell every connected client to stop, then stop listening (idempotent)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._protocol.expire(f"the server stopped: {reason}")
            for stream in self._streams.values():
                stream.put(encode_stop(reason))
                stream.put(None)
            self._cond.notify_all()
        # Streams end once their stop message is out; the grace only bounds a stuck peer.
        self._server.stop(grace).wait(grace + 1.0)
        logger.info("server on port %d stopped: %s", self.port, reason)

    def __enter__(self) -> GrpcEngine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Clients learn that the server failed, not why (the log says).
        self.close("training finished" if error is None else "the server failed")

    # -- inside the lock --------------------------------------------------------------------

    def _send(self, outbound: list[Outbound]) -> None:
        for message in outbound:
            # begin_* only addresses current sessions, and those have a stream (same lock).
            self._streams[(message.client_id, message.session)].put(message.data)

    def _await_answers(self) -> None:
        if not self._cond.wait_for(lambda: self._protocol.complete, timeout=self.round_timeout):
            late = self._protocol.expire(
                f"no answer within the round timeout of {self.round_timeout:g} s"
            )
            logger.warning("round timed out waiting for %s", ", ".join(map(repr, late)))

    @staticmethod
    def _log_failures(half: str, failures: Sequence[tuple[str, str]]) -> None:
        for client_id, reason in failures:
            logger.warning("client %r dropped from %s: %s", client_id, half, reason)

    # -- gRPC handlers (worker threads) -------------------------------------------------------

    def _authenticate(self, context: Any) -> str:
        values: dict[str, list[str]] = {}
        for key, value in context.invocation_metadata() or ():
            values.setdefault(key, []).append(value)
        ids, tokens = values.get(CLIENT_ID_KEY, []), values.get(TOKEN_KEY, [])
        client_id = ids[0] if len(ids) == 1 and isinstance(ids[0], str) else None
        token = tokens[0] if len(tokens) == 1 and isinstance(tokens[0], str) else None
        if client_id is None or not self._tokens.verify(client_id, token):
            logger.warning(
                "refused an unauthenticated call from %s (client id %.64r)", context.peer(), ids
            )
            context.abort(self._grpc.StatusCode.UNAUTHENTICATED, "unknown client id or wrong token")
        return str(client_id)

    def _tasks(self, request: bytes, context: Any) -> Any:
        client_id = self._authenticate(context)
        try:
            decode_join(request, limits=self._limits)
        except ProtocolError as error:
            context.abort(self._grpc.StatusCode.INVALID_ARGUMENT, str(error))
        stream: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        with self._cond:
            if self._closed:
                stream.put(encode_stop("the server has stopped"))
                stream.put(None)
                session = None
            else:
                session, replaced = self._protocol.connect(client_id)
                self._streams[(client_id, session)] = stream
                old = None if replaced is None else self._streams.pop((client_id, replaced), None)
                if old is not None:
                    old.put(encode_stop("replaced by a newer connection"))
                    old.put(None)
                self._cond.notify_all()
        if session is not None:
            logger.info("client %r joined from %s", client_id, context.peer())
            # Runs as soon as the connection is gone, even while this thread waits below.
            if not context.add_callback(lambda: self._disconnect(client_id, session)):
                self._disconnect(client_id, session)
        # Tell the client it is in (it then stops counting its connect timeout).
        context.send_initial_metadata(())
        try:
            while (item := stream.get()) is not None:
                yield item
        finally:
            if session is not None:
                self._disconnect(client_id, session)

    def _disconnect(self, client_id: str, session: int) -> None:
        with self._cond:
            stream = self._streams.pop((client_id, session), None)
            current = self._protocol.disconnect(client_id, session, "connection closed")
            self._cond.notify_all()
        if stream is not None:
            stream.put(None)
        if current:
            logger.info("client %r disconnected", client_id)

    def _submit(self, request: bytes, context: Any) -> bytes:
        client_id = self._authenticate(context)
        refused = None
        with self._cond:
            try:
                submission = self._protocol.receive(client_id, request)
            except ProtocolError as error:
                refused = error
            self._cond.notify_all()
        if refused is not None:
            logger.warning("refused a submission from %r: %s", client_id, refused)
            context.abort(self._status[refused.rejection], str(refused))
        logger.debug("client %r answered task %s", client_id, submission.task_id)
        return encode_ack()


def _read(path: str | os.PathLike[str] | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise PrivacyError(
            f"{what} must be a readable file, got {os.fspath(path)!r}: {error}"
        ) from None


def serve(
    address: str,
    *,
    strategy: Strategy,
    initial_parameters: Parameters,
    rounds: int,
    tokens: TokenTable | str | os.PathLike[str],
    certificate_file: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    min_clients: int = 1,
    join_timeout: float = 300.0,
    round_timeout: float = 600.0,
    rng: np.random.Generator | None = None,
    central_evaluation: CentralEvaluation | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    secure_aggregation: SecureAggregation | None = None,
) -> History:
    """Serve a federated training over gRPC until ``rounds`` rounds are done.

    Waits up to ``join_timeout`` for ``min_clients`` clients, then runs
    rounds ``1 .. rounds`` (or, resumed, the ones after the checkpoint) with
    :func:`~privet.fl.engine.run_federated`, checkpointing after each; clients
    that join later take part from the next round on, clients that drop are
    failures of their round. When done, every client is told to stop.

    Parameters
    ----------
    address
        ``host:port`` to listen on (port 0: any free port, reported to ``on_start``).
    strategy
        Samples, instructs and aggregates; its ``state_dict()``, if any, is checkpointed.
    initial_parameters
        The starting model (on resume, the layout the checkpoint must have).
    rounds
        Total rounds of the training, counted from 1 (not the rounds still to run).
    tokens
        A :class:`TokenTable`, or the path of its JSON file (see :func:`issue_tokens`).
    certificate_file, key_file
        PEM server certificate (chain) and private key; required unless ``insecure``.
    insecure
        No TLS, for tests on loopback only (logs a warning).
    checkpoint_dir
        Where round checkpoints go (none are written if ``None``).
    resume
        Continue from the newest checkpoint in ``checkpoint_dir`` (from scratch if none).
    min_clients
        Clients that must have joined before round 1 (or the first resumed round).
    join_timeout, round_timeout
        Seconds to wait for ``min_clients``; for a half-round's answers.
    rng
        Drives client sampling; ``None`` draws a seed from the OS. A resumed run
        restores the generator's state from the checkpoint (``rng`` is modified).
    on_round, on_start
        Called after each round's checkpoint with its record; once listening, with the port.
    max_message_bytes
        Largest instruction or result message. Under secure aggregation a masked
        update takes 8 bytes per parameter, so this must cover ``8 * size`` then.
    secure_aggregation
        If given, every fit runs through SecAgg or SecAgg+ (:class:`~privet.fl.SecAggEngine`
        over :class:`~privet.fl.deploy.secure.GrpcSecureTransport`): the server sees only
        masked updates and their sum. The strategy must aggregate a sum (FedAvg, FedProx,
        their DP wrappers, :class:`~privet.fl.DistributedDp`).

    Raises
    ------
    DeployError
        Fewer than ``min_clients`` joined in time, or the address could not be bound.
    """
    check_positive_int("rounds", rounds)
    check_positive_int("min_clients", min_clients)
    check_timeout("join_timeout", join_timeout)
    if insecure:
        logger.warning("privet serve: TLS is OFF (insecure=True); never use this across hosts")
    elif certificate_file is None or key_file is None:
        raise PrivacyError(
            "certificate_file and key_file must be given (TLS is always on), got "
            f"{certificate_file!r} and {key_file!r}"
        )
    table = tokens if isinstance(tokens, TokenTable) else load_token_table(tokens)
    if min_clients > len(table.client_ids):
        raise PrivacyError(
            f"min_clients must be <= the {len(table.client_ids)} clients in the token table, "
            f"got {min_clients}"
        )
    if resume and checkpoint_dir is None:
        raise PrivacyError("checkpoint_dir must be given to resume, got None")
    if secure_aggregation is not None:
        if not isinstance(secure_aggregation, SecureAggregation):
            raise PrivacyError(
                "secure_aggregation must be a SecureAggregation or None, "
                f"got {type(secure_aggregation).__name__}"
            )
        check_sum_strategy(strategy)  # before listening, not after the clients joined
    generator = rng if rng is not None else np.random.default_rng()
    history = History(initial_parameters)
    done = 0
    if resume and checkpoint_dir is not None:
        checkpoint = latest_round(checkpoint_dir)
        if checkpoint is None:
            logger.info("no checkpoint in %s: starting from round 1", checkpoint_dir)
        else:
            initial_parameters.check_layout(checkpoint.parameters, what="checkpointed parameters")
            restore_strategy(strategy, checkpoint.strategy_state)
            if checkpoint.rng_state is not None:
                restore_rng(generator, checkpoint.rng_state)
            history = History(checkpoint.parameters, list(checkpoint.rounds))
            done = checkpoint.server_round
            logger.info("resuming after round %d from %s", done, checkpoint_dir)
    certificate = None if insecure else _read(certificate_file, "certificate_file")
    key = None if insecure else _read(key_file, "key_file")
    with GrpcEngine(
        address,
        table,
        certificate_chain=certificate,
        private_key=key,
        insecure=insecure,
        round_timeout=round_timeout,
        max_message_bytes=max_message_bytes,
    ) as engine:
        runner: Engine = engine
        if secure_aggregation is not None:
            # Graph ring orders come from the OS CSPRNG, never from the sampling rng.
            runner = SecAggEngine(GrpcSecureTransport(engine), engine, secure_aggregation)
        if on_start is not None:
            on_start(engine.port)
        if done < rounds and not engine.wait_for_clients(min_clients, join_timeout):
            raise DeployError(
                f"only {len(engine.client_ids)} of min_clients={min_clients} clients joined "
                f"within {join_timeout:g} s",
                "DEADLINE_EXCEEDED",
            )
        for server_round in range(done + 1, rounds + 1):
            # One round per call: the checkpoint needs the parameters after each round.
            step = run_federated(
                runner,
                strategy,
                history.parameters,
                1,
                rng=generator,
                central_evaluation=central_evaluation,
                first_round=server_round,
            )
            if step.stopped is not None:
                history.stopped = step.stopped
                break
            record = step.rounds[0]
            history.rounds.append(record)
            history.parameters = step.parameters
            if checkpoint_dir is not None:
                save_round(
                    checkpoint_dir,
                    RoundCheckpoint(
                        server_round,
                        step.parameters,
                        tuple(history.rounds),
                        strategy_state(strategy),
                        rng_state(generator),
                    ),
                )
            if on_round is not None:
                on_round(record)
    return history
