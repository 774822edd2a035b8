"""The deployment's pure parts: envelopes, tokens, the server state machine, checkpoints, TLS files.

No sockets here (those are in ``test_grpc.py``): the sans-I/O
:class:`~privet.fl.deploy.protocol.ServerProtocol` is driven by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from privet.errors import PrivacyError
from privet.fl import (
    ClientSampling,
    EvaluateInstructions,
    EvaluateResult,
    FedAdam,
    FedAvg,
    FitInstructions,
    FitResult,
    Parameters,
    RoundRecord,
    RoundResults,
)
from privet.fl.deploy import GrpcEngine, join, load_token_table, serve
from privet.fl.deploy.checkpoint import (
    RoundCheckpoint,
    checkpoint_path,
    latest_round,
    load_round,
    restore_rng,
    restore_strategy,
    rng_state,
    save_round,
    strategy_state,
)
from privet.fl.deploy.protocol import (
    ProtocolError,
    Rejection,
    ServerProtocol,
    Stop,
    Submission,
    Task,
    TaskKind,
    check_client_id,
    decode_instruction,
    decode_join,
    decode_submission,
    encode_join,
    encode_stop,
    encode_submission,
    encode_task,
)
from privet.fl.deploy.tls import TokenTable, create_self_signed, hash_token, issue_tokens
from privet.fl.messages import (
    decode_fit_instructions,
    encode_evaluate_result,
    encode_fit_result,
)
from privet.fl.strategy import EvaluationSummary
from privet.wire import Limits, WireError, encode_message, save_checkpoint

TOKEN = "a-token-that-is-long-enough"


def model(shift: float = 0.0) -> Parameters:
    return Parameters(
        {
            "w": np.arange(6, dtype=np.float64).reshape(2, 3) + shift,
            "b": np.array([1, 2], dtype=np.float32) + np.float32(shift),
        }
    )


# -- tokens and ids ---------------------------------------------------------------------------


def test_hash_token_is_sha256_hex() -> None:
    # FIPS 180-2, Appendix B.1: SHA-256("abc").
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_token_table_verifies_only_the_clients_own_token() -> None:
    table = TokenTable.from_tokens({"alice": TOKEN, "bob": TOKEN + "-bob"})
    assert table.verify("alice", TOKEN)
    assert not table.verify("alice", TOKEN + "-bob")
    assert not table.verify("carol", TOKEN)
    assert not table.verify("alice", None)
    assert not table.verify(None, TOKEN)
    assert table.digests["alice"] == hash_token(TOKEN)
    assert TokenTable(table.digests).verify("bob", TOKEN + "-bob")


def test_token_table_refuses_bad_entries_without_echoing_tokens() -> None:
    with pytest.raises(PrivacyError, match=r"token digest of 'a' must be 64 lower-case hex"):
        TokenTable({"a": "abc"})
    with pytest.raises(PrivacyError, match="must be a non-empty mapping"):
        TokenTable({})
    with pytest.raises(PrivacyError, match="token must be 16 to 512 printable ASCII") as error:
        TokenTable.from_tokens({"a": "short-secret"})
    assert "short-secret" not in str(error.value)
    with pytest.raises(PrivacyError, match="client_id must be 1 to 64 ASCII"):
        check_client_id("no spaces allowed")
    with pytest.raises(PrivacyError, match="client_id must be 1 to 64 ASCII"):
        check_client_id("x" * 65)


# -- envelopes --------------------------------------------------------------------------------


def test_envelopes_round_trip() -> None:
    decode_join(encode_join())
    task = Task("abc-1", 3, TaskKind.EVALUATE, b"\x00\x01payload")
    assert decode_instruction(encode_task(task)) == task
    assert decode_instruction(encode_stop("done")) == Stop("done")
    answer = Submission("abc-1", 3, TaskKind.FIT, payload=b"result")
    assert decode_submission(encode_submission(answer)) == answer
    error = Submission("abc-1", 3, TaskKind.FIT, error="x" * 5000)
    assert decode_submission(encode_submission(error)).error == "x" * 1000


@pytest.mark.parametrize(
    ("decode", "data", "match"),
    [
        (decode_join, b"junk", "message must start with"),
        (decode_join, encode_message("fl.deploy.join", {"version": 2}), "protocol version 1"),
        (decode_join, encode_message("fl.deploy.task", {}), "kind must be 'fl.deploy.join'"),
        (decode_submission, encode_message("fl.deploy.submit", {}), "submit meta must have"),
        (decode_instruction, encode_message("fl.deploy.stop", {"why": "x"}), "stop meta must"),
        (decode_instruction, encode_message("fl.deploy.ack"), "kind must be one of"),
    ],
)
def test_malformed_envelopes_are_refused(decode: Any, data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match) as error:
        decode(data)
    assert error.value.rejection is Rejection.MALFORMED


def test_submission_fields_are_checked() -> None:
    fields = {"task_id": "t-1", "server_round": 1, "task": "fit", "error": None}
    cases = {
        "task_id is malformed": {**fields, "task_id": "has space"},
        "server_round must be >= 1": {**fields, "server_round": 0},
        "task must be one of .*'secure_step'": {**fields, "task": "train"},
        "exactly one of a payload and an error": {**fields, "error": "boom", "task": "fit"},
        "has the wrong type": {**fields, "server_round": True},
    }
    payload = {"payload": np.zeros(3, dtype=np.uint8)}
    for match, meta in cases.items():
        with pytest.raises(ProtocolError, match=match):
            decode_submission(encode_message("fl.deploy.submit", meta, payload))
    with pytest.raises(ProtocolError, match="one uint8 array named 'payload'"):
        decode_submission(encode_message("fl.deploy.submit", fields, {"p": np.zeros(2)}))
    with pytest.raises(PrivacyError, match="exactly one of payload and error"):
        Submission("t-1", 1, TaskKind.FIT)


# -- the server's state machine ---------------------------------------------------------------


def fit_answer(protocol: ServerProtocol, client: str, task: Task, shift: float) -> Submission:
    data = encode_submission(
        Submission(
            task.task_id,
            task.server_round,
            task.kind,
            encode_fit_result(FitResult(model(shift), 2)),
        )
    )
    return protocol.receive(client, data)


def tasks_of(outbound: list) -> dict[str, Task]:  # type: ignore[type-arg]
    tasks = {}
    for message in outbound:
        task = decode_instruction(message.data)
        assert isinstance(task, Task)
        tasks[message.client_id] = task
    return tasks


def test_a_fit_half_collects_answers_in_task_order_and_fails_the_absent() -> None:
    protocol = ServerProtocol("srv")
    for client in ("carol", "alice", "bob"):
        protocol.connect(client)
    assert protocol.connected == ["alice", "bob", "carol"]
    instructions = FitInstructions(4, learning_rate=0.5)
    outbound = protocol.begin_fit(
        model(), [("bob", instructions), ("alice", instructions), ("dave", instructions)]
    )
    tasks = tasks_of(outbound)
    assert sorted(tasks) == ["alice", "bob"]
    parameters, sent = decode_fit_instructions(tasks["bob"].payload)
    assert parameters == model()
    assert sent == instructions
    assert sorted(protocol.pending) == ["alice", "bob"]
    fit_answer(protocol, "alice", tasks["alice"], 1.0)  # alice first, but listed after bob
    assert not protocol.complete
    fit_answer(protocol, "bob", tasks["bob"], 2.0)
    assert protocol.complete
    results = protocol.end_fit()
    assert [client for client, _ in results.results] == ["bob", "alice"]
    assert results.results[0][1].parameters == model(2.0)
    assert results.failures == [("dave", "not connected")]
    assert not protocol.open


def test_refused_submissions_change_nothing_except_a_bad_result() -> None:
    protocol = ServerProtocol("srv")
    protocol.connect("alice")
    protocol.connect("bob")
    tasks = tasks_of(
        protocol.begin_fit(model(), [("alice", FitInstructions(1)), ("bob", FitInstructions(1))])
    )
    alice = tasks["alice"]

    def refused(client: str, data: bytes) -> Rejection:
        with pytest.raises(ProtocolError) as error:
            protocol.receive(client, data)
        return error.value.rejection

    good = encode_fit_result(FitResult(model(1.0), 1))
    submit = lambda **kw: encode_submission(  # noqa: E731
        Submission(**{"task_id": alice.task_id, "server_round": 1, "kind": TaskKind.FIT, **kw})
    )
    assert refused("alice", b"junk") is Rejection.MALFORMED
    assert refused("bob", submit(payload=good)) is Rejection.NOT_OUTSTANDING
    assert refused("alice", submit(payload=good, task_id="srv-99")) is Rejection.NOT_OUTSTANDING
    assert refused("alice", submit(payload=good, server_round=2)) is Rejection.NOT_OUTSTANDING
    assert (
        refused("alice", submit(payload=good, kind=TaskKind.EVALUATE)) is Rejection.NOT_OUTSTANDING
    )
    assert sorted(protocol.pending) == ["alice", "bob"]
    other_layout = encode_fit_result(FitResult(Parameters({"w": np.zeros(2)}), 1))
    assert refused("alice", submit(payload=other_layout)) is Rejection.MALFORMED
    assert protocol.pending == ["bob"]  # a bad result fails the task at once
    assert refused("alice", submit(payload=good)) is Rejection.NOT_OUTSTANDING
    fit_answer(protocol, "bob", tasks["bob"], 0.0)
    assert (
        refused(
            "bob",
            encode_submission(
                Submission(
                    tasks["bob"].task_id, 1, TaskKind.FIT, encode_fit_result(FitResult(model(), 2))
                )
            ),
        )
        is Rejection.DUPLICATE
    )
    results = protocol.end_fit()
    assert [client for client, _ in results.results] == ["bob"]
    assert results.failures[0][0] == "alice"
    assert results.failures[0][1].startswith("malformed result: fl.fit_res parameters")


def test_sessions_disconnect_replace_and_expire() -> None:
    protocol = ServerProtocol("srv")
    first, replaced = protocol.connect("alice")
    assert replaced is None
    protocol.connect("bob")
    tasks = tasks_of(
        protocol.begin_evaluate(
            model(), [("alice", EvaluateInstructions(2)), ("bob", EvaluateInstructions(2))]
        )
    )
    second, replaced = protocol.connect("alice")
    assert replaced == first
    assert protocol.is_current("alice", second)
    assert not protocol.disconnect("alice", first, "old stream ended")  # stale: no effect
    assert protocol.pending == ["bob"]
    assert protocol.expire("too slow") == ["bob"]
    with pytest.raises(PrivacyError, match="no fit half is open"):
        protocol.end_fit()
    results = protocol.end_evaluate()
    assert results.failures == [("alice", "replaced by a newer connection"), ("bob", "too slow")]
    # An evaluate answer after the half closed is not outstanding.
    late = encode_submission(
        Submission(
            tasks["bob"].task_id,
            2,
            TaskKind.EVALUATE,
            encode_evaluate_result(EvaluateResult(0.5, 1)),
        )
    )
    with pytest.raises(ProtocolError, match="not outstanding"):
        protocol.receive("bob", late)
    assert protocol.disconnect("bob", 2, "gone")
    assert protocol.connected == ["alice"]


def test_evaluate_half_and_client_errors() -> None:
    protocol = ServerProtocol("srv")
    protocol.connect("alice")
    protocol.connect("bob")
    tasks = tasks_of(
        protocol.begin_evaluate(
            model(), [("alice", EvaluateInstructions(1)), ("bob", EvaluateInstructions(1))]
        )
    )
    result = EvaluateResult(0.25, 3, {"accuracy": 0.5})
    protocol.receive(
        "alice",
        encode_submission(
            Submission(tasks["alice"].task_id, 1, TaskKind.EVALUATE, encode_evaluate_result(result))
        ),
    )
    protocol.receive(
        "bob",
        encode_submission(Submission(tasks["bob"].task_id, 1, TaskKind.EVALUATE, error="OOM")),
    )
    assert protocol.end_evaluate() == RoundResults(
        [("alice", result)], [("bob", "client error: OOM")]
    )


def test_protocol_refuses_misuse() -> None:
    protocol = ServerProtocol("srv")
    protocol.connect("alice")
    with pytest.raises(PrivacyError, match="must carry FitInstructions"):
        protocol.begin_fit(model(), [("alice", EvaluateInstructions(1))])  # type: ignore[list-item]
    with pytest.raises(PrivacyError, match="name each client once, all in one round"):
        protocol.begin_fit(model(), [("alice", FitInstructions(1)), ("alice", FitInstructions(1))])
    protocol.begin_fit(model(), [])
    assert protocol.complete
    with pytest.raises(PrivacyError, match="a round half is already open"):
        protocol.begin_fit(model(), [])
    with pytest.raises(PrivacyError, match="instance must be a short id"):
        ServerProtocol("has space")


def test_result_size_is_capped_by_the_limits() -> None:
    protocol = ServerProtocol("srv", limits=Limits(max_message_bytes=256))
    protocol.connect("alice")
    big = Parameters({"w": np.zeros(1000)})
    [message] = protocol.begin_fit(big, [("alice", FitInstructions(1))])
    task = decode_instruction(message.data, limits=Limits(max_message_bytes=1 << 20))
    assert isinstance(task, Task)
    data = encode_submission(
        Submission(task.task_id, 1, TaskKind.FIT, encode_fit_result(FitResult(big, 1)))
    )
    with pytest.raises(ProtocolError, match="max_message_bytes") as error:
        protocol.receive("alice", data)
    assert error.value.rejection is Rejection.MALFORMED


# -- checkpoints ------------------------------------------------------------------------------


def trained_adam() -> FedAdam:
    strategy = FedAdam(ClientSampling(), eta=0.5)
    strategy.aggregate_fit(
        1, model(), RoundResults([("a", FitResult(model(1.0), 1)), ("b", FitResult(model(3.0), 3))])
    )
    return strategy


def records() -> tuple[RoundRecord, ...]:
    return (
        RoundRecord(1, 2, 0, {"clients": 2}, None, None, {}, 0.5),
        RoundRecord(
            2, 1, 1, {}, EvaluationSummary(0.25, 3, {"acc": 0.75}), 1.5, {"x": "y"}, 0.25, "too few"
        ),
    )


def test_round_checkpoint_round_trips_everything(tmp_path: Path) -> None:
    strategy = trained_adam()
    rng = np.random.default_rng(3)
    rng.random(5)
    checkpoint = RoundCheckpoint(2, model(0.5), records(), strategy_state(strategy), rng_state(rng))
    path = save_round(tmp_path, checkpoint)
    assert path == checkpoint_path(tmp_path, 2)
    loaded = load_round(path)
    assert loaded.server_round == 2
    assert loaded.rounds == records()
    assert loaded.parameters == model(0.5)
    assert list(loaded.parameters) == ["w", "b"]
    assert loaded.parameters["b"].dtype == np.float32

    fresh, fresh_rng = FedAdam(ClientSampling(), eta=0.5), np.random.default_rng(99)
    restore_strategy(fresh, loaded.strategy_state)
    assert loaded.rng_state is not None
    restore_rng(fresh_rng, loaded.rng_state)
    assert fresh_rng.random() == rng.random()
    # Same state, same next step: the oracle is the strategy that never went to disk.
    results = RoundResults([("a", FitResult(model(2.0), 1))])
    expected = strategy.aggregate_fit(2, model(0.5), results).parameters
    assert fresh.aggregate_fit(2, model(0.5), results).parameters == expected


def test_old_checkpoints_are_pruned_and_the_latest_loads(tmp_path: Path) -> None:
    assert latest_round(tmp_path / "missing") is None
    for server_round in range(1, 5):
        save_round(tmp_path, RoundCheckpoint(server_round, model(server_round)), keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "round-000003.safetensors",
        "round-000004.safetensors",
    ]
    latest = latest_round(tmp_path)
    assert latest is not None
    assert latest.server_round == 4
    assert latest.parameters == model(4)


def test_a_failed_write_leaves_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_round(tmp_path, RoundCheckpoint(1, model(1.0)))

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_round(tmp_path, RoundCheckpoint(2, model(2.0)))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["round-000001.safetensors"]
    latest = latest_round(tmp_path)
    assert latest is not None
    assert latest.parameters == model(1.0)


def test_malformed_checkpoints_are_refused(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path, 1)
    save_checkpoint(path, {"parameters/w": np.zeros(2)}, {"fl.format": "1"})
    with pytest.raises(WireError, match="must be a privet round checkpoint of format 1"):
        load_round(path)
    metadata = {
        "fl.format": "1", "fl.round": "1", "fl.history": "[{}]", "fl.strategy": "null",
        "fl.rng": "null",
    }  # fmt: skip
    save_checkpoint(path, {"parameters/w": np.zeros(2)}, metadata)
    with pytest.raises(WireError, match="checkpoint round record is malformed"):
        load_round(path)
    save_checkpoint(
        path, {"parameters/w": np.zeros(2), "other": np.zeros(1)}, {**metadata, "fl.history": "[]"}
    )
    with pytest.raises(WireError, match="checkpoint array names is malformed"):
        load_round(path)
    save_checkpoint(
        path, {"parameters/w": np.zeros(2)}, {**metadata, "fl.history": "[]", "fl.round": "2"}
    )
    with pytest.raises(WireError, match="holds round 2, not 1"):
        latest_round(tmp_path)


def test_strategy_and_rng_state_mismatches_are_refused() -> None:
    with pytest.raises(PrivacyError, match="checkpoint must hold the state of FedAdam"):
        restore_strategy(FedAdam(), None)
    with pytest.raises(PrivacyError, match="strategy must have load_state_dict"):
        restore_strategy(FedAvg(), {"steps": 1})
    restore_strategy(FedAvg(), None)
    with pytest.raises(PrivacyError, match="rng state must be of a PCG64 generator"):
        restore_rng(np.random.default_rng(), {"bit_generator": "MT19937"})
    with pytest.raises(PrivacyError, match="server_round must be an integer >= 1"):
        RoundCheckpoint(0, model())
    with pytest.raises(PrivacyError, match="keep must be an integer >= 1"):
        save_round(".", RoundCheckpoint(1, model()), keep=0)


# -- credentials files ------------------------------------------------------------------------


def test_self_signed_files(tmp_path: Path) -> None:
    from cryptography import x509

    files = create_self_signed(tmp_path / "tls")
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(files.ca_certificate.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_certificate.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    with pytest.raises(PrivacyError, match="must not exist"):
        create_self_signed(tmp_path / "tls")
    with pytest.raises(PrivacyError, match="days must be an integer >= 1"):
        create_self_signed(tmp_path / "other", days=0)
    with pytest.raises(PrivacyError, match="hosts must be a non-empty list"):
        create_self_signed(tmp_path / "other", hosts=[])


def test_issued_tokens_match_the_written_table(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    tokens = issue_tokens(["alice", "bob"], path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    table = load_token_table(path)
    assert all(table.verify(client, token) for client, token in tokens.items())
    assert (
        json.loads(path.read_text())["alice"]
        == hashlib.sha256(tokens["alice"].encode()).hexdigest()
    )
    assert tokens["alice"] != tokens["bob"]
    with pytest.raises(PrivacyError, match="client_ids must be unique"):
        issue_tokens(["a", "a"], path)
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(PrivacyError, match="token table must be a JSON object"):
        load_token_table(tmp_path / "bad.json")
    with pytest.raises(PrivacyError, match="token table must be a readable JSON file"):
        load_token_table(tmp_path / "missing.json")


# -- arguments of serve and join (checked before any socket opens) -----------------------------


def test_serve_and_join_refuse_bad_arguments(tmp_path: Path) -> None:
    table = TokenTable.from_tokens({"alice": TOKEN})
    common = {"strategy": FedAvg(), "initial_parameters": model(), "rounds": 1, "tokens": table}
    with pytest.raises(PrivacyError, match="min_clients must be <= the 1 clients"):
        serve("127.0.0.1:0", insecure=True, min_clients=2, **common)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="checkpoint_dir must be given to resume"):
        serve("127.0.0.1:0", insecure=True, resume=True, **common)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="join_timeout must be > 0 seconds"):
        serve("127.0.0.1:0", insecure=True, join_timeout=0, **common)  # type: ignore[arg-type]
    client = object()
    with pytest.raises(PrivacyError, match="exactly one of token and token_file"):
        join("127.0.0.1:1", client, client_id="alice")  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="client_id must be 1 to 64"):
        join("127.0.0.1:1", client, client_id="", token=TOKEN)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="token_file must be a readable text file"):
        join("127.0.0.1:1", client, client_id="a", token_file=tmp_path / "no")  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="client must be a Client or a factory"):
        join("127.0.0.1:1", client, client_id="a", token=TOKEN)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="max_message_bytes must be an int in"):
        join("127.0.0.1:1", client, client_id="a", token=TOKEN, max_message_bytes=0)  # type: ignore[arg-type]


def test_server_credentials_are_checked_before_listening(tmp_path: Path) -> None:
    mine, other = create_self_signed(tmp_path / "a"), create_self_signed(tmp_path / "b")
    table = TokenTable.from_tokens({"alice": TOKEN})
    chain, key = mine.server_certificate.read_bytes(), mine.server_key.read_bytes()
    cases = {
        "private_key must belong to the first certificate": (chain, other.server_key.read_bytes()),
        "certificate_chain must hold PEM certificates": (b"junk", key),
        "private_key must be an unencrypted PEM private key": (chain, b"junk"),
        "certificate_chain and private_key must be PEM bytes": (None, key),
    }
    for match, (certificate_chain, private_key) in cases.items():
        with pytest.raises(PrivacyError, match=match):
            GrpcEngine(
                "127.0.0.1:0",
                table,
                certificate_chain=certificate_chain,
                private_key=private_key,
            )
