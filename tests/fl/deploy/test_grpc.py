"""gRPC deployment on loopback: a real server, real client processes, TLS and tokens.

Clients are ``grpc_party.py`` processes with deterministic numpy clients
(every array moves by the client's delta), so the global model after each
round is known exactly: FedAvg over alice (delta 1, 1 example), bob (2, 1)
and carol (4, 2) moves it by (1 + 2 + 8) / 4 = 2.75 a round, over alice and
bob alone by 1.5 (McMahan et al. 2017, the weighted mean); dyadic values, so
float arithmetic is exact. Each deployment result is also compared with the
same clients run in-process by :class:`~privet.fl.SequentialEngine`, the
reference engine, which must give identical parameters.

Protocol violations (malformed, misaddressed, replayed submissions; silent
clients) are sent from the test process itself with raw gRPC calls: a
well-behaved privet client never sends them.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_party import (
    DELTAS,
    EXAMPLES,
    TOKENS,
    ShiftClient,
    initial_parameters,
    make_strategy,
)

from privet.errors import PrivacyError
from privet.fl import (
    Engine,
    FitInstructions,
    FitResult,
    History,
    Parameters,
    SequentialEngine,
    run_federated,
)
from privet.fl.deploy import (
    GrpcEngine,
    TlsFiles,
    TokenTable,
    create_self_signed,
    latest_round,
    serve,
)
from privet.fl.deploy.protocol import (
    CLIENT_ID_KEY,
    TOKEN_KEY,
    Submission,
    Task,
    TaskKind,
    decode_instruction,
    encode_join,
    encode_submission,
)
from privet.fl.messages import encode_fit_result

pytestmark = pytest.mark.slow

PARTY = Path(__file__).with_name("grpc_party.py")
WAIT = 60.0  # generous bound on any single wait: 2 loaded cores start Python slowly


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return create_self_signed(tmp_path_factory.mktemp("tls"))


class Party:
    """A child process whose stdout lines arrive on a queue (a reader thread), so waiting for
    a line has a timeout and never blocks the test forever."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(PARTY), *args],
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )
        self.lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.seen: list[str] = []
        self._unread: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _next(self, timeout: float) -> str | None:
        if self._unread:
            return self._unread.pop(0)
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line within {timeout} s; log:\n{self.log.read_text()}")
        if line is None:
            self.lines.put(None)  # the end stays the end for later reads
        else:
            self.seen.append(line)
        return line

    def expect(self, prefix: str, timeout: float = WAIT) -> str:
        """The next line starting with ``prefix`` (earlier ones are skipped)."""
        while (line := self._next(timeout)) is not None:
            if line.startswith(prefix):
                return line
        pytest.fail(f"no {prefix!r} line before the end; log:\n{self.log.read_text()}")

    def finish(self, timeout: float = WAIT) -> int:
        """Wait for the exit; its remaining lines stay readable by :meth:`expect`."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.process.args} did not exit; log:\n{self.log.read_text()}")
        while (line := self.lines.get(timeout=WAIT)) is not None:
            self.seen.append(line)
            self._unread.append(line)
        self.lines.put(None)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._log_file.close()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Party]]:
    parties: list[Party] = []

    def start(*args: str) -> Party:
        party = Party(list(args), tmp_path / f"party-{len(parties)}.log")
        parties.append(party)
        return party

    yield start
    for party in parties:
        party.kill()


@pytest.fixture
def launch_client(launch: Callable[..., Party], tls: TlsFiles) -> Callable[..., Party]:
    def start(
        port: int,
        client_id: str,
        *,
        token: str | None = None,
        ca: Path | None = None,
        sleep_round: int = 0,
        connect_timeout: float = 20.0,
    ) -> Party:
        return launch(
            "client",
            f"--address=127.0.0.1:{port}",
            f"--client-id={client_id}",
            f"--token={token if token is not None else TOKENS[client_id]}",
            f"--ca={ca if ca is not None else tls.ca_certificate}",
            f"--sleep-round={sleep_round}",
            f"--connect-timeout={connect_timeout}",
        )

    return start


@pytest.fixture
def make_engine(tls: TlsFiles) -> Iterator[Callable[..., GrpcEngine]]:
    engines: list[GrpcEngine] = []

    def make(round_timeout: float = WAIT) -> GrpcEngine:
        engine = GrpcEngine(
            "127.0.0.1:0",
            TokenTable.from_tokens(TOKENS),
            certificate_chain=tls.server_certificate.read_bytes(),
            private_key=tls.server_key.read_bytes(),
            round_timeout=round_timeout,
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


class ServerThread:
    """:func:`serve` on a thread of the test process (clients are still real processes)."""

    def __init__(self, **kwargs: Any) -> None:
        self._ports: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self.history: History | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, kwargs=kwargs, daemon=True)
        self._thread.start()
        port = self._ports.get(timeout=WAIT)
        if port is None:
            raise AssertionError(f"server failed to start: {self.error!r}")
        self.port = port

    def _run(self, **kwargs: Any) -> None:
        try:
            self.history = serve("127.0.0.1:0", on_start=self._ports.put, **kwargs)
        except BaseException as error:
            self.error = error
        finally:
            self._ports.put(None)

    def result(self) -> History:
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the server did not finish"
        if self.error is not None:
            raise self.error
        assert self.history is not None
        return self.history


def served(tls: TlsFiles, tmp_path: Path, **kwargs: Any) -> ServerThread:
    options: dict[str, Any] = {
        "initial_parameters": initial_parameters(),
        "tokens": TokenTable.from_tokens(TOKENS),
        "certificate_file": tls.server_certificate,
        "key_file": tls.server_key,
        "checkpoint_dir": tmp_path / "checkpoints",
        "join_timeout": WAIT,
        "round_timeout": WAIT,
        "rng": np.random.default_rng(0),
    }
    options.update(kwargs)
    return ServerThread(**options)


def reference(strategy: str, clients: list[str], rounds: int, seed: int = 0) -> History:
    """The same training in this process on the reference engine."""
    engine = SequentialEngine(
        {name: ShiftClient(DELTAS[name], EXAMPLES[name]) for name in sorted(clients)}
    )
    return run_federated(
        engine,
        make_strategy(strategy),
        initial_parameters(),
        rounds,
        rng=np.random.default_rng(seed),
    )


def shifted(by: float) -> Parameters:
    start = initial_parameters()
    return Parameters({name: array + array.dtype.type(by) for name, array in start.items()})


def assert_same(actual: Parameters, expected: Parameters) -> None:
    assert actual.names == expected.names
    for name in expected:
        assert actual[name].dtype == expected[name].dtype
        np.testing.assert_array_equal(actual[name], expected[name])


class RawClient:
    """Raw gRPC calls with a client's credentials: what a buggy or hostile client could send."""

    def __init__(self, port: int, tls: TlsFiles, metadata: tuple[tuple[str, str], ...]) -> None:
        credentials = grpc.ssl_channel_credentials(tls.ca_certificate.read_bytes())
        self.channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials)
        self.metadata = metadata
        self._tasks = self.channel.unary_stream("/privet.fl.Deploy/Tasks")
        self._submit = self.channel.unary_unary("/privet.fl.Deploy/Submit")

    @classmethod
    def of(cls, port: int, tls: TlsFiles, client_id: str) -> RawClient:
        return cls(port, tls, ((CLIENT_ID_KEY, client_id), (TOKEN_KEY, TOKENS[client_id])))

    def open(self) -> Any:
        stream = self._tasks(encode_join(), metadata=self.metadata)
        stream.initial_metadata()
        return stream

    def submit(self, data: bytes) -> str:
        try:
            self._submit(data, metadata=self.metadata, timeout=WAIT)
        except grpc.RpcError as error:
            return str(error.code().name)
        return "OK"

    def next_task(self, stream: Any) -> Task:
        message = decode_instruction(next(stream))
        assert isinstance(message, Task)
        return message


# -- training across processes -----------------------------------------------------------------


def test_three_client_processes_train_fedavg_exactly(
    tls: TlsFiles, tmp_path: Path, launch_client: Callable[..., Party]
) -> None:
    server = served(tls, tmp_path, strategy=make_strategy("fedavg-3"), rounds=3, min_clients=3)
    clients = [launch_client(server.port, name) for name in sorted(DELTAS)]
    history = server.result()

    assert_same(history.parameters, shifted(3 * 2.75))
    expected = reference("fedavg-3", list(DELTAS), rounds=3)
    assert_same(history.parameters, expected.parameters)
    assert [r.server_round for r in history.rounds] == [1, 2, 3]
    assert [(r.clients, r.failures, r.aborted) for r in history.rounds] == [(3, 0, None)] * 3
    # Evaluation after each round: loss is the parameter sum, example-weighted (all equal).
    assert [r.evaluation.loss for r in history.rounds if r.evaluation] == [
        r.evaluation.loss for r in expected.rounds if r.evaluation
    ]
    for client in clients:
        assert client.finish() == 0
        assert client.expect("DONE") == "DONE fit=3 evaluate=3 failed=0 reason=training finished"
    checkpoint = latest_round(tmp_path / "checkpoints")
    assert checkpoint is not None
    assert checkpoint.server_round == 3
    assert_same(checkpoint.parameters, history.parameters)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "round-000002.safetensors",
        "round-000003.safetensors",
    ]


@pytest.mark.parametrize(
    ("strategy", "clients", "expected_shift", "aborted"),
    [
        # min 2 fit clients: round 2 and 3 go on with alice and bob (1.5 each).
        ("fedavg-2", ["alice", "bob", "carol"], 2.75 + 1.5 + 1.5, [False, False, False]),
        # min 2 of 2: without bob, rounds 2 and 3 abort and the model stays after round 1.
        ("fedavg-2", ["alice", "bob"], 1.5, [False, True, True]),
    ],
)
def test_client_killed_mid_round_is_dropped(
    tls: TlsFiles,
    tmp_path: Path,
    launch_client: Callable[..., Party],
    strategy: str,
    clients: list[str],
    expected_shift: float,
    aborted: list[bool],
) -> None:
    victim = clients[-1]
    server = served(
        tls, tmp_path, strategy=make_strategy(strategy), rounds=3, min_clients=len(clients)
    )
    parties = {
        name: launch_client(server.port, name, sleep_round=2 if name == victim else 0)
        for name in clients
    }
    parties[victim].expect("FIT 2")  # the victim is inside its round-2 fit
    parties[victim].kill()
    history = server.result()

    assert_same(history.parameters, shifted(expected_shift))
    assert [r.aborted is not None for r in history.rounds] == aborted
    round_2 = history.rounds[1]
    assert (round_2.clients, round_2.failures) == (len(clients) - 1, 1)
    # Dropped when the connection closed, not after the round timeout (WAIT = 60 s).
    assert round_2.seconds < WAIT / 2
    for name in clients[:-1]:
        assert parties[name].finish() == 0


def test_server_killed_after_round_2_resumes_at_round_3(
    tls: TlsFiles,
    tmp_path: Path,
    launch: Callable[..., Party],
    launch_client: Callable[..., Party],
) -> None:
    checkpoints = tmp_path / "checkpoints"

    def server(port: int, *extra: str) -> Party:
        return launch(
            "server",
            f"--address=127.0.0.1:{port}",
            f"--cert={tls.server_certificate}",
            f"--key={tls.server_key}",
            f"--checkpoint-dir={checkpoints}",
            "--rounds=3",
            "--strategy=fedadam",
            "--seed=7",
            *extra,
        )

    first = server(0, "--hang-after=2")
    port = int(first.expect("PORT").split()[1])
    clients = [launch_client(port, name, connect_timeout=WAIT) for name in sorted(DELTAS)]
    first.expect("ROUND 2")
    first.kill()  # after the round-2 checkpoint, before round 3
    checkpoint = latest_round(checkpoints)
    assert checkpoint is not None
    assert checkpoint.server_round == 2

    second = server(port, "--resume")
    assert second.expect("ROUND") == "ROUND 3"  # not round 1: it resumed
    second.expect("FINISHED")
    assert second.finish() == 0
    for client in clients:
        assert client.finish() == 0  # they reconnected by themselves

    final = latest_round(checkpoints)
    assert final is not None
    assert final.server_round == 3
    # FedAdam's moments and the sampling generator came back too: the run is the
    # uninterrupted one, bit for bit.
    expected = reference("fedadam", list(DELTAS), rounds=3, seed=7)
    assert_same(final.parameters, expected.parameters)
    assert [r.server_round for r in final.rounds] == [1, 2, 3]
    assert [r.clients for r in final.rounds] == [r.clients for r in expected.rounds] == [2, 2, 2]


# -- authentication and TLS --------------------------------------------------------------------


def test_clients_without_the_right_token_are_refused_and_never_get_a_task(
    tls: TlsFiles,
    make_engine: Callable[..., GrpcEngine],
    launch_client: Callable[..., Party],
) -> None:
    engine = make_engine()
    assert isinstance(engine, Engine)
    wrong = launch_client(engine.port, "bob", token="not-the-token-of-bob-0000")
    assert wrong.expect("REFUSED").startswith("REFUSED UNAUTHENTICATED")
    assert wrong.finish() == 3
    assert not [line for line in wrong.seen if line.startswith("FIT")]

    attempts = {
        "no metadata": (),
        "no token": ((CLIENT_ID_KEY, "alice"),),
        "another client's token": ((CLIENT_ID_KEY, "alice"), (TOKEN_KEY, TOKENS["bob"])),
        "unknown client": ((CLIENT_ID_KEY, "mallory"), (TOKEN_KEY, TOKENS["bob"])),
        "two ids": (
            (CLIENT_ID_KEY, "alice"),
            (CLIENT_ID_KEY, "alice"),
            (TOKEN_KEY, TOKENS["alice"]),
        ),
    }
    for what, metadata in attempts.items():
        raw = RawClient(engine.port, tls, metadata)
        with pytest.raises(grpc.RpcError) as refused:
            next(raw.open())
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED, what
        assert raw.submit(b"anything") == "UNAUTHENTICATED", what
    assert engine.client_ids == []
    results = engine.fit(initial_parameters(), [("bob", FitInstructions(1))])
    assert results.results == []
    assert results.failures == [("bob", "not connected")]

    # The positive control: the right token gets in.
    stream = RawClient.of(engine.port, tls, "alice").open()
    assert engine.wait_for_clients(1, WAIT)
    assert engine.client_ids == ["alice"]
    stream.cancel()


def test_a_client_that_does_not_trust_the_server_ca_cannot_connect(
    tmp_path: Path,
    make_engine: Callable[..., GrpcEngine],
    launch_client: Callable[..., Party],
) -> None:
    stranger = create_self_signed(tmp_path / "other-ca")
    engine = make_engine()
    client = launch_client(engine.port, "alice", ca=stranger.ca_certificate, connect_timeout=2.0)
    refused = client.expect("REFUSED")
    assert refused.startswith("REFUSED UNAVAILABLE")
    assert "handshake" in refused.lower()  # refused by TLS, not for want of a server
    assert client.finish() == 3
    assert engine.client_ids == []


def test_serve_refuses_to_start_without_tls(tls: TlsFiles) -> None:
    with pytest.raises(PrivacyError, match="certificate_file and key_file must be given"):
        serve(
            "127.0.0.1:0",
            strategy=make_strategy("fedavg-2"),
            initial_parameters=initial_parameters(),
            rounds=1,
            tokens=TokenTable.from_tokens(TOKENS),
            certificate_file=tls.server_certificate,
        )


# -- protocol violations and hung clients --------------------------------------------------------


def test_malformed_misaddressed_and_replayed_submissions_are_rejected(
    tls: TlsFiles, make_engine: Callable[..., GrpcEngine]
) -> None:
    engine = make_engine()
    alice, bob = RawClient.of(engine.port, tls, "alice"), RawClient.of(engine.port, tls, "bob")
    alice_stream, bob_stream = alice.open(), bob.open()
    assert engine.wait_for_clients(2, WAIT)
    parameters = initial_parameters()
    good = encode_fit_result(FitResult(shifted(1.0), 3))

    def answer(task: Task, payload: bytes = good, **changes: Any) -> bytes:
        fields = {"task_id": task.task_id, "server_round": task.server_round, "kind": task.kind}
        return encode_submission(Submission(**{**fields, **changes}, payload=payload))

    with ThreadPoolExecutor(1) as pool:
        # Round 1: nothing below may settle alice's task but the malformed result at the end.
        future = pool.submit(engine.fit, parameters, [("alice", FitInstructions(1))])
        task = alice.next_task(alice_stream)
        assert (task.server_round, task.kind) == (1, TaskKind.FIT)
        assert alice.submit(b"not a privet message") == "INVALID_ARGUMENT"
        assert alice.submit(answer(task)[:-5]) == "INVALID_ARGUMENT"  # truncated
        assert alice.submit(answer(task, task_id="x-1")) == "FAILED_PRECONDITION"
        assert alice.submit(answer(task, server_round=2)) == "FAILED_PRECONDITION"
        assert alice.submit(answer(task, kind=TaskKind.EVALUATE)) == "FAILED_PRECONDITION"
        assert bob.submit(answer(task)) == "FAILED_PRECONDITION"  # not bob's task
        wrong_layout = encode_fit_result(FitResult(Parameters({"w": np.zeros(3)}), 3))
        assert alice.submit(answer(task, payload=wrong_layout)) == "INVALID_ARGUMENT"
        first = future.result(WAIT)
        assert first.results == []
        [(client, reason)] = first.failures
        assert client == "alice"
        assert reason.startswith("malformed result")

        # Round 2: an answer counts once; replays are refused during and after the round.
        tasks = [("alice", FitInstructions(2)), ("bob", FitInstructions(2))]
        future = pool.submit(engine.fit, parameters, tasks)
        alice_task, bob_task = alice.next_task(alice_stream), bob.next_task(bob_stream)
        assert alice.submit(answer(alice_task)) == "OK"
        assert alice.submit(answer(alice_task)) == "ALREADY_EXISTS"
        assert alice.submit(answer(task)) == "FAILED_PRECONDITION"  # round 1's task
        assert bob.submit(answer(bob_task)) == "OK"
        second = future.result(WAIT)
        assert [client for client, _ in second.results] == ["alice", "bob"]
        assert second.failures == []
        assert_same(second.results[0][1].parameters, shifted(1.0))
        assert alice.submit(answer(alice_task)) == "FAILED_PRECONDITION"

        # The server still works: a third round completes normally.
        future = pool.submit(engine.fit, parameters, [("bob", FitInstructions(3))])
        assert bob.submit(answer(bob.next_task(bob_stream))) == "OK"
        assert [client for client, _ in future.result(WAIT).results] == ["bob"]
    alice_stream.cancel()
    bob_stream.cancel()


def test_silent_client_fails_at_the_round_timeout_and_a_closed_one_at_once(
    tls: TlsFiles, make_engine: Callable[..., GrpcEngine]
) -> None:
    engine = make_engine(round_timeout=1.0)
    alice, bob = RawClient.of(engine.port, tls, "alice"), RawClient.of(engine.port, tls, "bob")
    alice_stream, bob_stream = alice.open(), bob.open()
    assert engine.wait_for_clients(2, WAIT)
    tasks = [("alice", FitInstructions(1)), ("bob", FitInstructions(1))]
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(engine.fit, initial_parameters(), tasks)
        alice.next_task(alice_stream)  # received, never answered
        bob.next_task(bob_stream)
        bob_stream.cancel()  # bob's connection closes mid-round
        results = future.result(WAIT)
    assert results.results == []
    reasons = dict(results.failures)
    assert reasons["bob"] == "connection closed"
    assert reasons["alice"].startswith("no answer within the round timeout of 1 s")
    assert engine.client_ids == ["alice"]
    alice_stream.cancel()


def test_a_newer_connection_replaces_the_older_one(
    tls: TlsFiles, make_engine: Callable[..., GrpcEngine]
) -> None:
    engine = make_engine()
    old = RawClient.of(engine.port, tls, "alice").open()
    assert engine.wait_for_clients(1, WAIT)
    new = RawClient.of(engine.port, tls, "alice").open()
    stop = decode_instruction(next(old))
    assert stop == type(stop)("replaced by a newer connection")
    with pytest.raises(StopIteration):
        next(old)
    assert engine.client_ids == ["alice"]
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(engine.fit, initial_parameters(), [("alice", FitInstructions(1))])
        task = decode_instruction(next(new))
        assert isinstance(task, Task)
        new.cancel()
        results = future.result(WAIT)
    assert results.failures == [("alice", "connection closed")]
