"""Secure aggregation over the gRPC deployment: real client processes, TLS, tokens, SecAgg.

The clients are ``grpc_party.py`` processes (every array moves by the client's
delta: alice 1 with 1 example, bob 2 with 1, carol 4 with 2), so FedAvg's
result is known: (1 + 2 + 8) / 4 = 2.75 a round over all three, (1 + 2) / 2 =
1.5 over alice and bob (McMahan et al. 2017, the example-weighted mean). Under
secure aggregation the server learns only the sum of the quantized weighted
updates (Bonawitz et al. 2017), so the result matches the plaintext one up to
the fixed-point error of the 62-bit encoding: scale ~ 2^61 / (3 * 10), about
1e-16 per coordinate, far below the 1e-9 asserted here; a wrong sum (a mask
left in, a client counted twice) is off by far more than that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from grpc_harness import WAIT, Party, RawClient, reference, served, shifted
from grpc_party import (
    DELTAS,
    EXAMPLES,
    SECURE,
    TOKENS,
    ShiftClient,
    initial_parameters,
    make_strategy,
)

from privet.errors import PrivacyError
from privet.fl import (
    ClientSampling,
    FedAvg,
    Krum,
    Parameters,
    SecAggEngine,
    run_federated,
)
from privet.fl.deploy import (
    GrpcEngine,
    GrpcSecureTransport,
    SecureTaskRunner,
    TlsFiles,
    TokenTable,
    serve,
)
from privet.fl.deploy.protocol import Submission, TaskKind, encode_submission
from privet.wire import Limits

pytestmark = pytest.mark.slow


def assert_close(actual: Parameters, expected: Parameters, atol: float = 1e-9) -> None:
    assert actual.names == expected.names
    for name in expected:
        assert actual[name].dtype == expected[name].dtype
        np.testing.assert_allclose(actual[name], expected[name], rtol=0, atol=atol)


def test_three_client_processes_train_fedavg_through_secagg(
    tls: TlsFiles, tmp_path: Path, launch_client: Callable[..., Party]
) -> None:
    server = served(
        tls,
        tmp_path,
        strategy=make_strategy("fedavg-3"),
        rounds=2,
        min_clients=3,
        secure_aggregation=SECURE,
    )
    clients = [launch_client(server.port, name) for name in sorted(DELTAS)]
    history = server.result()

    assert_close(history.parameters, shifted(2 * 2.75))
    assert_close(history.parameters, reference("fedavg-3", list(DELTAS), rounds=2).parameters)
    assert [(r.clients, r.failures, r.aborted) for r in history.rounds] == [(3, 0, None)] * 2
    for client in clients:
        assert client.finish() == 0
        # A secure fit counts as one fit task; its three protocol steps are not tasks.
        assert client.expect("DONE") == "DONE fit=2 evaluate=2 failed=0 reason=training finished"


def test_a_client_killed_during_its_secure_fit_drops_out_and_the_round_goes_on(
    tls: TlsFiles, tmp_path: Path, launch_client: Callable[..., Party]
) -> None:
    server = served(
        tls,
        tmp_path,
        strategy=make_strategy("fedavg-2"),
        rounds=3,
        min_clients=3,
        secure_aggregation=SECURE,
    )
    parties = {
        name: launch_client(server.port, name, sleep_round=2 if name == "carol" else 0)
        for name in sorted(DELTAS)
    }
    parties["carol"].expect("FIT 2")  # carol is training inside her round-2 secure fit
    parties["carol"].kill()
    history = server.result()

    # Round 1 over all three; rounds 2 (carol dropped before advertising keys) and 3 over two.
    assert_close(history.parameters, shifted(2.75 + 1.5 + 1.5))
    assert [(r.clients, r.failures) for r in history.rounds] == [(3, 0), (2, 1), (2, 0)]
    assert history.rounds[1].seconds < WAIT / 2  # noticed when the connection closed
    for name in ("alice", "bob"):
        assert parties[name].finish() == 0


def _raw_secure_client(
    raw: RawClient, client: ShiftClient, steps_before_leaving: int, answered: list[TaskKind]
) -> None:
    """Answer the secure fit and the first ``steps_before_leaving`` steps, then disconnect."""
    stream = raw.open()
    runner = SecureTaskRunner(client, Limits())
    steps = 0
    while True:
        task = raw.next_task(stream)
        reply = runner.answer(task)
        submission = Submission(task.task_id, task.server_round, task.kind, payload=reply)
        assert raw.submit(encode_submission(submission)) == "OK"
        answered.append(task.kind)
        if task.kind is TaskKind.SECURE_STEP:
            steps += 1
            if steps == steps_before_leaving:
                stream.cancel()
                return


def test_a_client_lost_after_sharing_its_keys_is_unmasked_by_the_survivors(
    tls: TlsFiles, launch_client: Callable[..., Party]
) -> None:
    """Carol sends her sealed shares, then her connection closes: the server must remove
    her pairwise masks from alice's and bob's inputs by reconstructing her mask key from
    their shares (Bonawitz et al. 2017, round 4), and the sum is alice's and bob's."""
    engine = GrpcEngine(
        "127.0.0.1:0",
        TokenTable.from_tokens(TOKENS),
        certificate_chain=tls.server_certificate.read_bytes(),
        private_key=tls.server_key.read_bytes(),
        round_timeout=WAIT,
    )
    secure = SecAggEngine(GrpcSecureTransport(engine), engine, SECURE)
    answered: list[TaskKind] = []
    carol = threading.Thread(
        target=_raw_secure_client,
        args=(
            RawClient.of(engine.port, tls, "carol"),
            ShiftClient(DELTAS["carol"], EXAMPLES["carol"]),
            1,
            answered,
        ),
        daemon=True,
    )
    with engine:
        carol.start()
        parties = [launch_client(engine.port, name) for name in ("alice", "bob")]
        assert engine.wait_for_clients(3, WAIT)
        strategy = FedAvg(ClientSampling(min_fit_clients=2))
        with ThreadPoolExecutor(1) as pool:
            run = pool.submit(
                run_federated,
                secure,
                strategy,
                initial_parameters(),
                1,
                rng=np.random.default_rng(0),
            )
            history = run.result(WAIT * 2)
        carol.join(WAIT)
    assert answered == [TaskKind.SECURE_FIT, TaskKind.SECURE_STEP]
    assert_close(history.parameters, shifted(1.5))
    assert [(r.clients, r.failures) for r in history.rounds] == [(2, 1)]
    # The server held two masked vectors; carol's input never reached it.
    assert sorted(secure.last_masked_inputs) == [1, 2]
    for party in parties:
        assert party.finish() == 0


def test_serve_refuses_a_strategy_that_needs_individual_updates_before_listening(
    tls: TlsFiles,
) -> None:
    started: list[int] = []
    common = {
        "initial_parameters": initial_parameters(),
        "rounds": 1,
        "tokens": TokenTable.from_tokens(TOKENS),
        "certificate_file": tls.server_certificate,
        "key_file": tls.server_key,
        "on_start": started.append,
    }
    with pytest.raises(PrivacyError, match="Krum needs individual client updates"):
        serve("127.0.0.1:0", strategy=Krum(1), secure_aggregation=SECURE, **common)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="secure_aggregation must be a SecureAggregation"):
        serve("127.0.0.1:0", strategy=FedAvg(), secure_aggregation="secagg+", **common)  # type: ignore[arg-type]
    assert started == []
