"""Real parties: the same program in the simulator, in threads over the in-memory transport,
and as OS processes over TCP on loopback gives bit-identical shares, openings and outputs
with the same dealer seed, and the same CommStats and DealerStats; failures stop everyone
with a clear error within the timeout."""

from __future__ import annotations

import io
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mpc_party_program import program
from typer.testing import CliRunner

from privet.cli.main import app
from privet.errors import PrivacyError
from privet.mpc import (
    CommStats,
    Dealer,
    DealerStats,
    LaunchError,
    NetworkRuntime,
    Session,
    Simulator,
    connect,
    launch,
)
from privet.mpc.dealer import DealerPlan, ItemRequest, Method
from privet.mpc.dealer_service import serve
from privet.mpc.messages import (
    OPEN_BITS,
    OPEN_RING,
    NodeReport,
    Setup,
    decode_item,
    decode_plan,
    decode_report,
    decode_request,
    decode_setup,
    encode_item,
    encode_plan,
    encode_report,
    encode_request,
    encode_round,
    encode_setup,
    plan_array,
    plan_from_array,
)
from privet.mpc.network import party_dealer
from privet.mpc.transport import (
    MemoryHub,
    MpcNetworkError,
    PeerAborted,
    ProtocolError,
    node_names,
)

SEED = bytes(range(32))
SCRIPT = str(Path(__file__).with_name("mpc_party_program.py"))
processes = pytest.mark.xdist_group("mpc_processes")


def simulated(n: int, matmul: bool = True) -> tuple[dict[str, Any], Session]:
    session = Session(Simulator(n), Dealer(n, SEED))
    return program(session, matmul), session


def assert_same_as_simulator(
    outputs: dict[str, Any], party: int, reference: dict[str, Any]
) -> None:
    assert set(outputs) == set(reference)
    for name, expected in reference.items():
        got = outputs[name]
        if name.endswith(".shares"):  # this party's row of the simulator's stack
            assert got.shape == (1, *expected.shape[1:]), name
            np.testing.assert_array_equal(got[0], expected[party], err_msg=name)
        else:  # opened ring elements and revealed reals: the same everywhere
            assert got.dtype == expected.dtype, name
            np.testing.assert_array_equal(got, expected, err_msg=name)


def run_in_threads(
    n: int, timeout: float = 20.0, plan: DealerPlan | None = None, matmul: bool = True
) -> tuple[list[Any], DealerStats]:
    """Every party and the dealer as threads over one in-memory hub (the dealer streaming
    ``plan``'s items ahead, if given)."""
    hub = MemoryHub(node_names(n))
    results: list[Any] = [None] * n
    served: list[DealerStats] = []
    errors: list[BaseException] = []

    def party(index: int) -> None:
        transport = hub.endpoint(index)
        try:
            runtime = NetworkRuntime(index, n, transport, timeout)
            session = Session(runtime, party_dealer(transport, index, n, timeout))
            results[index] = (program(session, matmul), runtime.stats, session.dealer.stats)
        except BaseException as error:
            errors.append(error)
            transport.abort(repr(error))
            return
        transport.close()

    def dealer() -> None:
        transport = hub.endpoint(n)
        try:
            served.append(serve(Dealer(n, SEED), transport, plan=plan, timeout=timeout))
        except BaseException as error:
            errors.append(error)
            transport.abort(repr(error))
            return
        transport.close()

    threads = [threading.Thread(target=party, args=(i,)) for i in range(n)]
    threads.append(threading.Thread(target=dealer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results, served[0]


@pytest.mark.parametrize("n", [2, 3])
def test_threads_over_memory_match_the_simulator_bit_for_bit(n: int) -> None:
    reference, session = simulated(n)
    results, dealer_stats = run_in_threads(n)
    for party, (outputs, comm, dealer_view) in enumerate(results):
        assert_same_as_simulator(outputs, party, reference)
        assert comm == session.runtime.stats
        assert dealer_view == session.dealer.stats
    assert dealer_stats == session.dealer.stats
    assert session.runtime.stats.rounds > 40  # the program is not trivial


@pytest.mark.parametrize("n", [2, 3])
def test_a_dealer_streaming_a_plan_ahead_gives_the_same_bits(n: int) -> None:
    """The simulator's dealer records the plan; a dealer thread sends every planned item
    before it is asked for, and nothing changes: shares, openings, statistics."""
    reference, session = simulated(n)
    plan = session.dealer.plan()
    assert isinstance(session.dealer, Dealer)
    assert len(plan) > 20
    results, dealer_stats = run_in_threads(n, plan=plan)
    for party, (outputs, comm, dealer_view) in enumerate(results):
        assert_same_as_simulator(outputs, party, reference)
        assert comm == session.runtime.stats
        assert dealer_view == session.dealer.stats
    assert dealer_stats == session.dealer.stats


def test_a_plan_that_does_not_match_the_program_stops_the_run_by_name() -> None:
    """The program departs from the plan at item 5: the last party refuses the streamed item
    by name. A plan longer than the program: the dealer says the party left before taking
    it all. (A plan shorter than the program is a prefix: the rest is made on request.)"""
    _, full = simulated(2, matmul=True)
    requests = list(full.dealer.plan().requests)
    requests[5] = ItemRequest(Method.AND, ((7,),))
    # Whichever thread fails first is raised: party 1's ProtocolError, or the abort it sent
    # the others (a PeerAborted that carries the same reason).
    with pytest.raises(
        MpcNetworkError, match=r"dealer sent item 5 as and_triples\(\(7,\)\), but the program"
    ):
        run_in_threads(2, plan=DealerPlan(2, tuple(requests)))
    with pytest.raises(ProtocolError, match=r"finished before taking the .* items of the plan"):
        run_in_threads(2, plan=full.dealer.plan(), matmul=False)
    reference, light = simulated(2, matmul=False)
    prefix = DealerPlan(2, light.dealer.plan().requests[:10])
    results, _ = run_in_threads(2, plan=prefix, matmul=False)
    for party, (outputs, _, _) in enumerate(results):
        assert_same_as_simulator(outputs, party, reference)


# -- processes ---------------------------------------------------------------------------------


@processes
def test_three_processes_match_the_simulator_bit_for_bit() -> None:
    """2 parties + dealer as OS processes over TCP on loopback, same dealer seed."""
    reference, session = simulated(2)
    result = launch(SCRIPT, num_parties=2, seed=SEED, args=["full"], timeout=30)
    assert [party.party for party in result.parties] == [0, 1]
    for party in result.parties:
        assert_same_as_simulator(dict(party.outputs), party.party, reference)
        assert party.stats == session.runtime.stats
        assert party.dealer_stats == session.dealer.stats
        assert party.wire_bytes > party.stats.bytes_sent  # framing and GCM tags on top
    assert result.dealer_stats == session.dealer.stats
    # The dealer sends the last party's shares and the input masks, plus seeds and framing.
    assert result.dealer_wire_bytes > result.dealer_stats.bytes_sent
    # The dealer reports the plan; streamed ahead in a second run, it changes no bit.
    assert result.plan == session.dealer.plan()
    assert result.dealer_stats.seconds > 0
    ahead = launch(SCRIPT, num_parties=2, seed=SEED, args=["full"], timeout=30, plan=result.plan)
    for party in ahead.parties:
        assert_same_as_simulator(dict(party.outputs), party.party, reference)
        assert party.stats == session.runtime.stats
    assert ahead.dealer_stats == session.dealer.stats
    # And a different seed gives different shares, with the same revealed values.
    other = launch(SCRIPT, num_parties=2, seed=bytes(32), args=["light"], timeout=30)
    assert not np.array_equal(other.parties[0].outputs["sum.shares"], reference["sum.shares"][:1])
    np.testing.assert_array_equal(other.parties[0].outputs["sum.real"], reference["sum.real"])


@processes
def test_four_processes_match_the_simulator_bit_for_bit() -> None:
    """3 parties (each pair connected, the higher one dialling) + dealer."""
    reference, session = simulated(3, matmul=False)
    result = launch(SCRIPT, num_parties=3, seed=SEED, args=["light"], timeout=30)
    for party in result.parties:
        assert_same_as_simulator(dict(party.outputs), party.party, reference)
        assert party.stats == session.runtime.stats
    assert result.dealer_stats == session.dealer.stats


@processes
def test_a_party_killed_mid_protocol_stops_the_others_at_once() -> None:
    """The last party SIGKILLs itself after 5 products: its sockets close without a
    goodbye, and party 0 and the dealer fail on it at once, far within the timeout."""
    started = time.monotonic()
    with pytest.raises(LaunchError) as caught:
        launch(SCRIPT, num_parties=2, seed=SEED, args=["kill", "5"], timeout=30)
    elapsed = time.monotonic() - started
    failures = caught.value.failures
    assert failures["party 1"] == "killed by SIGKILL: no error message"
    # Each hears it from party 1's socket, or first from the other's abort that quotes it.
    lost = "PeerLost: party 1 closed the connection without a goodbye (killed or crashed)"
    for node in ("party 0", "dealer"):
        assert failures[node].startswith("exit status 1: Peer"), failures[node]
        assert lost in failures[node]
    assert elapsed < 15  # the 30 s timeout was not what ended them
    assert str(caught.value).startswith("MPC run failed: party 0: exit status 1: Peer")


@processes
def test_a_party_that_exits_mid_protocol_stops_the_others() -> None:
    with pytest.raises(LaunchError) as caught:
        launch(SCRIPT, num_parties=2, seed=SEED, args=["exit", "3"], timeout=30)
    failures = caught.value.failures
    assert failures["party 0"] == "exit status 3: no error message"
    assert "party 0 closed the connection without a goodbye" in failures["party 1"]
    assert "party 0 closed the connection without a goodbye" in failures["dealer"]


@processes
def test_a_silent_party_times_out_and_the_run_ends() -> None:
    """The last party stops answering (it sleeps): party 0 times out after 1 s and aborts,
    which ends the dealer; the sleeper is killed 2 s (timeout + 1) after that."""
    started = time.monotonic()
    with pytest.raises(LaunchError) as caught:
        launch(SCRIPT, num_parties=2, seed=SEED, args=["hang", "3"], timeout=1)
    elapsed = time.monotonic() - started
    failures = caught.value.failures
    assert re.match(
        r"exit status 1: PeerTimeout: no message from party 1 within 1 s", failures["party 0"]
    )
    assert re.match(
        r"exit status 1: PeerAborted: party 0 aborted the run: PeerTimeout", failures["dealer"]
    )
    assert failures["party 1"].startswith("killed by the launcher: still running 2 s after")
    assert elapsed < 20


@processes
@processes
def test_privet_mpc_run_saves_a_plan_and_streams_it_ahead(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
    saved = tmp_path / "light.plan"
    first = runner.invoke(app, ["mpc", "run", SCRIPT, "--save-plan", str(saved), "--", "light"])
    assert first.exit_code == 0, first.output
    _, session = simulated(2, matmul=False)
    assert decode_plan(saved.read_bytes()) == session.dealer.plan()
    again = ["mpc", "run", SCRIPT, "--plan", str(saved), "--seed", SEED.hex(), "--show"]
    second = runner.invoke(app, [*again, "--", "light"])
    assert second.exit_code == 0, second.output
    assert "party 1 sum.real = [[" in second.output
    requests = list(session.dealer.plan().requests)
    requests[3] = ItemRequest(Method.AND, ((5,),))
    other = tmp_path / "other.plan"
    other.write_bytes(encode_plan(DealerPlan(2, tuple(requests))))
    departs = runner.invoke(app, ["mpc", "run", SCRIPT, "--plan", str(other), "--", "light"])
    assert departs.exit_code == 1
    assert "dealer sent item 3 as and_triples((5,)), but the program asks" in departs.output
    missing = runner.invoke(app, ["mpc", "run", SCRIPT, "--plan", str(tmp_path / "no")])
    assert missing.exit_code == 1
    assert "No such file" in missing.output


def test_privet_mpc_run_prints_the_costs() -> None:
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
    result = runner.invoke(
        app, ["mpc", "run", SCRIPT, "--seed", SEED.hex(), "--show", "--", "light"]
    )
    assert result.exit_code == 0, result.output
    _, session = simulated(2, matmul=False)
    rounds, sent = session.runtime.stats.rounds, session.runtime.stats.bytes_sent
    items, dealt = session.dealer.stats.items, session.dealer.stats.bytes_sent
    assert re.search(
        rf"party 0 +│ +{rounds} +│ +{sent} +│ +\d+ +│ +{items} +│ +{dealt}", result.output
    )
    assert re.search(rf"dealer +│ +— +│ +— +│ +\d+ +│ +{items} +│ +{dealt}", result.output)
    assert "party 1 sum.real = [[" in result.output
    assert re.search(rf"the dealer made {len(session.dealer.plan())} items in", result.output)
    bad = runner.invoke(app, ["mpc", "run", SCRIPT, "--seed", "zz", "--", "light"])
    assert bad.exit_code == 2
    assert "seed must be 64 hex digits" in bad.output


# -- bad input ---------------------------------------------------------------------------------


def test_launch_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(PrivacyError, match="num_parties must be an integer >= 2, got 1"):
        launch(SCRIPT, num_parties=1)
    with pytest.raises(PrivacyError, match="seed must be 32 bytes or None"):
        launch(SCRIPT, seed=b"short")
    with pytest.raises(PrivacyError, match="timeout must be a number of seconds > 0"):
        launch(SCRIPT, timeout=0)
    with pytest.raises(PrivacyError, match="script must be an existing file"):
        launch(tmp_path / "missing.py")
    with pytest.raises(PrivacyError, match="fractional_bits must be an integer in"):
        launch(SCRIPT, fractional_bits=40)


def test_connect_outside_a_launch_says_so() -> None:
    with pytest.raises(PrivacyError, match=r"must run in a process started by privet\.mpc\.launch"):
        connect(io.BytesIO(b""))
    with pytest.raises(ProtocolError, match="the launcher sent a bad message at start"):
        connect(io.BytesIO(b"garbage"))


def memory_pair() -> tuple[NetworkRuntime, Any]:
    hub = MemoryHub(node_names(2))
    return NetworkRuntime(0, 2, hub.endpoint(0)), hub.endpoint(1)


def test_openings_out_of_step_are_refused_by_name() -> None:
    shares = np.zeros((1, 3), dtype=np.uint64)
    cases = [
        (
            encode_round(OPEN_BITS, 0, shares[0]),
            "party 1 sent mpc.open_bits at round 0, expected mpc.open_ring: the parties are out",
        ),
        (
            encode_round(OPEN_RING, 4, shares[0]),
            "party 1 sent mpc.open_ring for round 4, but this node is at round 0",
        ),
        (
            encode_round(OPEN_RING, 0, np.zeros(4, dtype=np.uint64)),
            r"party 1 sent values at round 0 of uint64 \(4,\), expected uint64 \(3,\)",
        ),
        (
            encode_round(OPEN_RING, 0, np.zeros(3, dtype=np.int64)),
            r"of int64 \(3,\), expected uint64",
        ),
        (b"garbage", "party 1 sent a bad message at round 0: message must start with"),
        (encode_request(0, ItemRequest(Method.AND, ((2,),))), "message kind must be one of"),
    ]
    for payload, message in cases:
        runtime, peer = memory_pair()
        peer.send(0, payload)
        with pytest.raises(ProtocolError, match=message) as caught:
            runtime.open_ring(shares)
        assert caught.value.peer == "party 1"


def test_network_runtime_refuses_bad_arguments() -> None:
    runtime, _ = memory_pair()
    assert runtime.local_parties == (0,)
    with pytest.raises(PrivacyError, match="leading party axis of 1, got shape"):
        runtime.open_ring(np.zeros((2, 3), dtype=np.uint64))
    with pytest.raises(PrivacyError, match="shares must be a uint64 array"):
        runtime.open_bits(np.zeros((1, 3)))
    with pytest.raises(PrivacyError, match=r"sender must be in \[0, 1\], got 2"):
        runtime.broadcast(2, np.zeros(3, dtype=np.uint64))
    hub = MemoryHub(node_names(2))
    with pytest.raises(PrivacyError, match="transport must be party 1's, got node 0's"):
        NetworkRuntime(1, 2, hub.endpoint(0))
    with pytest.raises(PrivacyError, match=r"party must be in \[0, 1\], got 3"):
        NetworkRuntime(3, 2, hub.endpoint(0))
    assert runtime.stats == CommStats()  # nothing was counted for refused calls


def test_the_dealer_refuses_requests_out_of_order_or_too_large() -> None:
    for payload, message in [
        (
            encode_request(3, ItemRequest(Method.AND, ((2,),))),
            "sent mpc.request for item 3, but this node is at item 0",
        ),
        (encode_round(OPEN_RING, 0, np.zeros(1, np.uint64)), "message kind must be 'mpc.req"),
        (encode_request(0, ItemRequest(Method.AND, ((10**6,),))), "above max_item_bytes=1000"),
        # 2^80 elements: an int64 product would wrap to 0 and pass any cap.
        (
            encode_request(0, ItemRequest(Method.AND, ((2**40, 2**40),))),
            "item 0 of 29014219670751100192948224 bytes, above",
        ),
    ]:
        hub = MemoryHub(node_names(2))
        party = hub.endpoint(1)
        party.send(2, payload)
        with pytest.raises(ProtocolError, match=message):
            serve(Dealer(2, SEED), hub.endpoint(2), max_item_bytes=1000)
    bad = encode_request(0, ItemRequest(Method.AND, ((2,),))).replace(
        b"and_triples", b"or_triples_"
    )
    with pytest.raises(
        ProtocolError, match="sent a bad item description for item 0: method must be one of"
    ):
        decode_request(bad, 0, "party 1")


def test_a_party_refuses_dealer_items_that_do_not_fit_its_request() -> None:
    request = ItemRequest(Method.AND, ((2,),))
    row = np.zeros(2, dtype=np.uint64)
    good = encode_item(5, request, [row, row, row], None)
    assert [s.shape for s in decode_item(good, 5, request, False, "dealer").stacks] == [(1, 2)] * 3
    with pytest.raises(
        ProtocolError, match=r"dealer sent mpc\.item for item 5, but this node is at"
    ):
        decode_item(good, 6, request, False, "dealer")
    with pytest.raises(ProtocolError, match=r"with arrays \['0', '1', '2'\], expected \['0', '1',"):
        decode_item(good, 5, request, True, "dealer")  # an owner's mask is missing
    short = encode_item(5, request, [row, row, np.zeros(3, np.uint64)], None)
    with pytest.raises(ProtocolError, match=r"part 2 for item 5 of uint64 \(3,\), expected"):
        decode_item(short, 5, request, False, "dealer")
    # An item made for another request (a plan that departs from the program) is named.
    other = encode_item(5, ItemRequest(Method.AND, ((3,),)), [row, row, row], None)
    with pytest.raises(
        ProtocolError, match=r"item 5 as and_triples\(\(3,\)\), but the program asks for "
    ):
        decode_item(other, 5, request, False, "dealer")


def test_an_abort_reaches_every_party_with_its_reason() -> None:
    hub = MemoryHub(node_names(2))
    dealer = hub.endpoint(2)
    dealer.abort("ProtocolError: party 1 requested item 3")
    with pytest.raises(PeerAborted, match="dealer aborted the run: ProtocolError: party 1"):
        party_dealer(hub.endpoint(0), 0, 2, 5)  # waiting for its seed


def test_setup_and_report_messages_round_trip() -> None:
    setup = Setup("party", 1, 3, (1000, 1001, 1002), SEED, 5, "/tmp/r", 2.5, None, 12)
    assert decode_setup(encode_setup(setup)) == setup
    dealer = Setup(
        "dealer", 3, 3, (1000, 1001, 1002), SEED, -1, "/tmp/r", 2.5, bytes(32), 16, "/tmp/p"
    )
    assert decode_setup(encode_setup(dealer)) == dealer
    with pytest.raises(ProtocolError, match="setup node must be a party index or the dealer"):
        decode_setup(encode_setup(Setup("dealer", 1, 3, (1, 2, 3), SEED, -1, "r", 1.0)))
    with pytest.raises(ProtocolError, match="setup must list 3 ports"):
        decode_setup(encode_setup(Setup("party", 1, 3, (1, 2), SEED, -1, "r", 1.0)))
    report = NodeReport(1, 3, 48, 7, 96, 500, None, {"y": np.arange(3.0)})
    back = decode_report(encode_report(report), "party 1")
    assert (back.node, back.rounds, back.bytes_sent, back.error) == (1, 3, 48, None)
    np.testing.assert_array_equal(back.outputs["y"], np.arange(3.0))
    assert back.plan is None
    _, session = simulated(2, matmul=False)
    plan = session.dealer.plan()
    dealer_report = NodeReport(2, dealer_seconds=0.25, plan=plan_array(plan))
    back = decode_report(encode_report(dealer_report), "dealer")
    assert back.dealer_seconds == 0.25
    assert back.outputs == {}
    assert back.plan is not None
    assert plan_from_array(2, back.plan, "dealer") == plan
    with pytest.raises(PrivacyError, match=r"a plan .the dealer's. or outputs"):
        encode_report(NodeReport(2, outputs={"y": np.zeros(1)}, plan=plan_array(plan)))
    failed = decode_report(encode_report(NodeReport(2, error="PeerLost: x")), "dealer")
    assert failed.error == "PeerLost: x"


def test_the_package_import_stays_light() -> None:
    """A party process imports privet.mpc: no torch unless the script's own work needs it."""
    import subprocess

    code = (
        "import sys, privet.mpc; print(sorted(m for m in ('torch', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_output_opened_to_one_party_reaches_it_alone() -> None:
    """reveal(to=1): party 1 gets the values, party 0 gets None; party 0 sends its shares
    once, party 1 sends nothing."""
    hub = MemoryHub(node_names(2))
    values = np.array([[1.5, -2.25], [0.0, 3.0]])
    got: dict[int, Any] = {}
    sent: dict[int, CommStats] = {}

    def party(index: int) -> None:
        transport = hub.endpoint(index)
        runtime = NetworkRuntime(index, 2, transport, 10)
        session = Session(runtime, party_dealer(transport, index, 2, 10))
        x = session.share(values if index == 0 else np.zeros_like(values), owner=0)
        before = CommStats(runtime.stats.rounds, runtime.stats.bytes_sent)
        got[index] = x.reveal(to=1)
        sent[index] = CommStats(
            runtime.stats.rounds - before.rounds, runtime.stats.bytes_sent - before.bytes_sent
        )
        transport.close()

    threads = [threading.Thread(target=party, args=(i,)) for i in range(2)]
    threads.append(threading.Thread(target=lambda: serve(Dealer(2, SEED), hub.endpoint(2))))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert got[0] is None
    np.testing.assert_array_equal(got[1], values)
    assert sent == {0: CommStats(1, values.size * 8), 1: CommStats(1, 0)}
    # The simulator plays both: the receiver's values, and a sender's count.
    simulator = Session(Simulator(2), Dealer(2, SEED))
    x = simulator.share(values, owner=0)
    rounds = simulator.runtime.stats.rounds
    np.testing.assert_array_equal(x.reveal(to=1), values)
    assert simulator.runtime.stats.rounds == rounds + 1
    with pytest.raises(PrivacyError, match=r"receiver must be in \[0, 1\], got 2"):
        x.reveal(to=2)
    with pytest.raises(PrivacyError, match="receiver must be a party index, got 'hospital'"):
        x.reveal(to="hospital")  # type: ignore[call-overload]
