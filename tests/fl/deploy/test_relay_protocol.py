"""Relayed round halves of the sans-I/O server protocol (the steps of a secure fit).

:meth:`ServerProtocol.begin_relay` sends each client its own opaque payload;
:meth:`ServerProtocol.end_relay` hands back each answer's bytes untouched and
the failures, both in task order. Driven by hand, as in ``test_protocol.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.fl import FitInstructions, FitResult, Parameters
from privet.fl.deploy.protocol import (
    RELAYED,
    Outbound,
    ProtocolError,
    Rejection,
    RelayResults,
    ServerProtocol,
    Submission,
    Task,
    TaskKind,
    decode_instruction,
    encode_submission,
)
from privet.fl.messages import decode_fit_result, encode_fit_result
from privet.wire import Limits

#: Payloads that are not wire messages, empty, or every byte value: the relay must not care.
PAYLOADS = {
    "alice": b"\x00alice's keys\xff",
    "bob": b"",
    "carol": bytes(range(256)) * 3,
}


def model() -> Parameters:
    arrays: dict[str, NDArray[Any]] = {
        "w": np.arange(6, dtype=np.float64).reshape(2, 3),
        "b": np.array([1, 2], dtype=np.float32),
    }
    return Parameters(arrays)


def connected(*clients: str) -> ServerProtocol:
    protocol = ServerProtocol("srv")
    for client in clients:
        protocol.connect(client)
    return protocol


def tasks_of(outbound: Sequence[Outbound]) -> dict[str, Task]:
    tasks = {}
    for message in outbound:
        task = decode_instruction(message.data)
        assert isinstance(task, Task)
        tasks[message.client_id] = task
    return tasks


def submit(task: Task, **fields: Any) -> bytes:
    """An answer envelope for ``task``; ``fields`` override the submission's fields."""
    values: dict[str, Any] = {
        "task_id": task.task_id,
        "server_round": task.server_round,
        "kind": task.kind,
        **fields,
    }
    if "payload" not in values and "error" not in values:
        values["payload"] = b"answer"
    return encode_submission(Submission(**values))


def refused(protocol: ServerProtocol, client: str, data: bytes) -> Rejection:
    with pytest.raises(ProtocolError) as error:
        protocol.receive(client, data)
    return error.value.rejection


# -- the relayed half -------------------------------------------------------------------------


def test_relayed_kinds() -> None:
    assert {TaskKind.SECURE_FIT, TaskKind.SECURE_STEP} == RELAYED
    assert TaskKind.SECURE_FIT.value == "secure_fit"
    assert TaskKind.SECURE_STEP.value == "secure_step"


@pytest.mark.parametrize("kind", [TaskKind.SECURE_FIT, TaskKind.SECURE_STEP])
def test_each_connected_client_gets_its_own_payload(kind: TaskKind) -> None:
    protocol = connected("carol", "alice", "bob")
    sessions = {client: protocol._sessions[client] for client in protocol.connected}
    order = ["bob", "dave", "alice", "carol"]  # dave never connected
    payloads = [(client, PAYLOADS.get(client, b"dave's")) for client in order]
    outbound = protocol.begin_relay(kind, 5, payloads)
    assert protocol.open
    assert [message.client_id for message in outbound] == ["bob", "alice", "carol"]
    for message in outbound:
        assert message.session == sessions[message.client_id]
    tasks = tasks_of(outbound)
    for client, task in tasks.items():
        assert task.kind is kind
        assert task.server_round == 5
        assert task.payload == PAYLOADS[client]
        assert type(task.payload) is bytes
    assert len({task.task_id for task in tasks.values()}) == 3
    # The absent client failed at once: nobody waits for it.
    assert sorted(protocol.pending) == ["alice", "bob", "carol"]
    results = protocol.end_relay()
    assert isinstance(results, RelayResults)
    ended = "the round ended before an answer came"
    assert dict(results.answers) == {}
    assert list(results.failures) == [
        ("bob", ended),
        ("dave", "not connected"),
        ("alice", ended),
        ("carol", ended),
    ]


def test_answers_come_back_untouched_in_task_order() -> None:
    protocol = connected("alice", "bob", "carol")
    order = ["carol", "alice", "bob"]
    tasks = tasks_of(
        protocol.begin_relay(TaskKind.SECURE_STEP, 2, [(c, PAYLOADS[c]) for c in order])
    )
    answers = {"alice": b"", "bob": bytes(range(255, -1, -1)), "carol": b"\x00" * 1000}
    for client in ("bob", "alice", "carol"):  # arrival order differs from task order
        assert not protocol.complete
        submission = protocol.receive(client, submit(tasks[client], payload=answers[client]))
        assert submission.payload == answers[client]
    assert protocol.complete
    assert protocol.pending == []
    results = protocol.end_relay()
    assert list(results.answers) == order
    for client in order:
        assert results.answers[client] == answers[client]
        assert type(results.answers[client]) is bytes
    assert list(results.failures) == []
    assert not protocol.open


def test_errors_disconnects_and_expiry_become_failures_in_task_order() -> None:
    protocol = connected("alice", "bob", "carol", "dave", "erin")
    session_of_dave = protocol._sessions["dave"]
    order = ["erin", "dave", "carol", "bob", "alice", "frank"]
    tasks = tasks_of(protocol.begin_relay(TaskKind.SECURE_FIT, 1, [(c, b"go") for c in order]))
    protocol.receive("carol", submit(tasks["carol"], error="OOM"))
    assert protocol.disconnect("dave", session_of_dave, "stream closed")
    protocol.connect("erin")  # a newer connection replaces the old one and its task
    protocol.receive("alice", submit(tasks["alice"], payload=b"fine"))
    assert protocol.pending == ["bob"]
    assert protocol.expire("too slow") == ["bob"]
    assert protocol.complete
    results = protocol.end_relay()
    assert dict(results.answers) == {"alice": b"fine"}
    assert list(results.failures) == [
        ("erin", "replaced by a newer connection"),
        ("dave", "stream closed"),
        ("carol", "client error: OOM"),
        ("bob", "too slow"),
        ("frank", "not connected"),
    ]


def test_ending_a_half_fails_what_is_still_outstanding() -> None:
    protocol = connected("alice", "bob")
    tasks = tasks_of(
        protocol.begin_relay(TaskKind.SECURE_STEP, 1, [("alice", b"a"), ("bob", b"b")])
    )
    protocol.receive("bob", submit(tasks["bob"], payload=b"B"))
    results = protocol.end_relay()
    assert dict(results.answers) == {"bob": b"B"}
    assert list(results.failures) == [("alice", "the round ended before an answer came")]
    # The late answer is for a closed half.
    assert refused(protocol, "alice", submit(tasks["alice"])) is Rejection.NOT_OUTSTANDING


def test_an_empty_relay_half_opens_and_closes() -> None:
    protocol = connected("alice")
    assert protocol.begin_relay(TaskKind.SECURE_FIT, 1, []) == []
    assert protocol.open
    assert protocol.complete
    assert protocol.end_relay() == RelayResults({}, [])


def test_the_steps_of_a_secure_fit_follow_one_another() -> None:
    """SECURE_FIT then SECURE_STEP halves: every half issues fresh task ids."""
    protocol = connected("alice", "bob")
    seen: set[str] = set()
    previous: dict[str, Task] = {}
    for step, kind in enumerate([TaskKind.SECURE_FIT] + [TaskKind.SECURE_STEP] * 3):
        tasks = tasks_of(
            protocol.begin_relay(kind, 7, [(c, f"{c}-{step}".encode()) for c in ("alice", "bob")])
        )
        assert seen.isdisjoint(task.task_id for task in tasks.values())
        seen.update(task.task_id for task in tasks.values())
        for client, old in previous.items():  # an answer to the previous step is stale
            assert refused(protocol, client, submit(old)) is Rejection.NOT_OUTSTANDING
        for client, task in tasks.items():
            assert task.payload == f"{client}-{step}".encode()
            protocol.receive(client, submit(task, payload=task.payload[::-1]))
        results = protocol.end_relay()
        assert dict(results.answers) == {c: f"{c}-{step}".encode()[::-1] for c in tasks}
        previous = tasks


# -- refused answers --------------------------------------------------------------------------


def test_refused_answers_change_nothing() -> None:
    protocol = connected("alice", "bob")
    tasks = tasks_of(
        protocol.begin_relay(TaskKind.SECURE_STEP, 3, [("alice", b"a"), ("bob", b"b")])
    )
    alice = tasks["alice"]
    assert refused(protocol, "bob", submit(alice)) is Rejection.NOT_OUTSTANDING
    assert refused(protocol, "bob", submit(alice, error="no")) is Rejection.NOT_OUTSTANDING
    assert refused(protocol, "alice", submit(alice, task_id="srv-99")) is Rejection.NOT_OUTSTANDING
    assert refused(protocol, "alice", submit(alice, server_round=2)) is Rejection.NOT_OUTSTANDING
    assert refused(protocol, "alice", submit(alice, server_round=4)) is Rejection.NOT_OUTSTANDING
    for kind in (TaskKind.FIT, TaskKind.EVALUATE, TaskKind.SECURE_FIT):
        assert refused(protocol, "alice", submit(alice, kind=kind)) is Rejection.NOT_OUTSTANDING
    with pytest.raises(ProtocolError, match="is a secure_step task of round 3, got a fit answer"):
        protocol.receive("alice", submit(alice, kind=TaskKind.FIT))
    assert refused(protocol, "alice", b"junk") is Rejection.MALFORMED
    assert sorted(protocol.pending) == ["alice", "bob"]
    protocol.receive("alice", submit(alice, payload=b"first"))
    assert refused(protocol, "alice", submit(alice, payload=b"second")) is Rejection.DUPLICATE
    assert refused(protocol, "alice", submit(alice, error="late")) is Rejection.DUPLICATE
    with pytest.raises(ProtocolError, match="was answered already"):
        protocol.receive("alice", submit(alice, payload=b"third"))
    assert protocol.pending == ["bob"]
    results = protocol.end_relay()
    assert dict(results.answers)["alice"] == b"first"


def test_a_relayed_answer_to_a_fit_half_is_not_outstanding() -> None:
    protocol = connected("alice")
    tasks = tasks_of(protocol.begin_fit(model(), [("alice", FitInstructions(1))]))
    answer = submit(tasks["alice"], kind=TaskKind.SECURE_FIT, payload=b"x")
    assert refused(protocol, "alice", answer) is Rejection.NOT_OUTSTANDING
    assert protocol.pending == ["alice"]


def test_a_relayed_payload_is_not_decoded_as_a_fit_result() -> None:
    protocol = connected("alice", "bob", "carol")
    tasks = tasks_of(
        protocol.begin_relay(
            TaskKind.SECURE_FIT, 1, [(c, b"task") for c in ("alice", "bob", "carol")]
        )
    )
    fit_result = encode_fit_result(FitResult(Parameters({"other": np.zeros(1)}), 3))
    # What a fit half would refuse as malformed passes through a relayed half as bytes.
    protocol.receive("alice", submit(tasks["alice"], payload=b"PRVW not a message"))
    protocol.receive("bob", submit(tasks["bob"], payload=fit_result))
    protocol.receive("carol", submit(tasks["carol"], payload=b""))
    results = protocol.end_relay()
    assert list(results.failures) == []
    assert results.answers == {"alice": b"PRVW not a message", "bob": fit_result, "carol": b""}
    assert decode_fit_result(results.answers["bob"]).num_examples == 3  # still the same bytes


def test_an_answer_above_the_limits_is_refused() -> None:
    protocol = ServerProtocol("srv", limits=Limits(max_message_bytes=1000))
    protocol.connect("alice")
    tasks = tasks_of(protocol.begin_relay(TaskKind.SECURE_STEP, 1, [("alice", b"a")]))
    huge = submit(tasks["alice"], payload=bytes(1 << 17))  # above 1000 + the 64 KiB slack
    with pytest.raises(ProtocolError, match="above max_message_bytes") as error:
        protocol.receive("alice", huge)
    assert error.value.rejection is Rejection.MALFORMED
    assert protocol.pending == ["alice"]  # a refused envelope changes nothing


# -- misuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            (TaskKind.FIT, 1, [("alice", b"x")]),
            r"kind must be one of \['secure_fit', 'secure_step'\], got <TaskKind\.FIT: 'fit'>",
        ),
        ((TaskKind.EVALUATE, 1, [("alice", b"x")]), r"kind must be one of .*EVALUATE"),
        (("secure_fit", 1, [("alice", b"x")]), r"kind must be one of .*got 'secure_fit'"),
        (
            (TaskKind.SECURE_FIT, 0, [("alice", b"x")]),
            r"server_round must be an integer >= 1, got 0",
        ),
        ((TaskKind.SECURE_FIT, -3, []), r"server_round must be an integer >= 1, got -3"),
        ((TaskKind.SECURE_FIT, True, []), r"server_round must be an integer >= 1, got True"),
        ((TaskKind.SECURE_FIT, 1.0, []), r"server_round must be an integer >= 1, got 1\.0"),
        ((TaskKind.SECURE_FIT, "1", []), r"server_round must be an integer >= 1, got '1'"),
        (
            (TaskKind.SECURE_STEP, 1, [("alice", b"x"), ("alice", b"y")]),
            r"tasks must name each client once, all in one round, got \['alice', 'alice'\]",
        ),
        (
            (TaskKind.SECURE_STEP, 1, [("alice", bytearray(b"x"))]),
            "payload must be bytes, got bytearray",
        ),
        (
            (TaskKind.SECURE_STEP, 1, [("alice", memoryview(b"x"))]),
            "payload must be bytes, got memoryview",
        ),
        ((TaskKind.SECURE_STEP, 1, [("alice", "x")]), "payload must be bytes, got str"),
        ((TaskKind.SECURE_STEP, 1, [("alice", None)]), "payload must be bytes, got NoneType"),
        ((TaskKind.SECURE_STEP, 1, [("no spaces", b"x")]), "client_id must be 1 to 64 ASCII"),
    ],
)
def test_begin_relay_refuses_bad_arguments(args: tuple[Any, ...], match: str) -> None:
    protocol = connected("alice")
    with pytest.raises(PrivacyError, match=match):
        protocol.begin_relay(*args)
    assert not protocol.open  # nothing was opened: a good call works next
    assert len(protocol.begin_relay(TaskKind.SECURE_FIT, 1, [("alice", b"x")])) == 1


def test_halves_do_not_overlap_and_end_only_as_their_kind() -> None:
    protocol = connected("alice")
    with pytest.raises(PrivacyError, match="no relayed half is open"):
        protocol.end_relay()
    protocol.begin_fit(model(), [("alice", FitInstructions(1))])
    with pytest.raises(PrivacyError, match="a round half is already open"):
        protocol.begin_relay(TaskKind.SECURE_FIT, 1, [("alice", b"x")])
    with pytest.raises(PrivacyError, match="no relayed half is open"):
        protocol.end_relay()
    assert protocol.pending == ["alice"]  # the refusals left the fit half alone
    protocol.end_fit()

    tasks = tasks_of(protocol.begin_relay(TaskKind.SECURE_FIT, 1, [("alice", b"x")]))
    with pytest.raises(PrivacyError, match="a round half is already open"):
        protocol.begin_relay(TaskKind.SECURE_STEP, 1, [("alice", b"y")])
    with pytest.raises(PrivacyError, match="a round half is already open"):
        protocol.begin_fit(model(), [("alice", FitInstructions(1))])
    with pytest.raises(PrivacyError, match="no fit half is open"):
        protocol.end_fit()
    with pytest.raises(PrivacyError, match="no evaluate half is open"):
        protocol.end_evaluate()
    # The relayed half is still open and takes its answer.
    assert protocol.pending == ["alice"]
    protocol.receive("alice", submit(tasks["alice"], payload=b"keys"))
    assert protocol.end_relay() == RelayResults({"alice": b"keys"}, [])
