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

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_harness import (
    WAIT,
    Party,
    RawClient,
    assert_same,
    reference,
    served,
    shifted,
)
from grpc_party import (
    DELTAS,
    TOKENS,
    initial_parameters,
    make_strategy,
)

from privet.errors import PrivacyError
from privet.fl import (
    Engine,
    FitInstructions,
    FitResult,
    Parameters,
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
    encode_submission,
)
from privet.fl.messages import encode_fit_result

pytestmark = pytest.mark.slow

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
