"""The dealer ahead of time: a plan recorded from one run makes the next run's items before
the online phase, and nothing changes but when the work is done.

Checked: the same shares, openings and statistics as making items on request (bit for
bit, same seed); the online phase makes nothing (the dealer's seconds do not grow); a
program that departs from its plan is refused at the first item that differs, by name;
plans survive the wire; a Session takes any CorrelationSource, not only a Dealer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from mpc_party_program import program

from privet.errors import PrivacyError
from privet.mpc import (
    DealerPlan,
    DealerStats,
    Session,
    Simulator,
    decode_plan,
    encode_plan,
)
from privet.mpc.dealer import CorrelationSource, Dealer, ItemRequest, Method
from privet.mpc.messages import plan_array, plan_from_array
from privet.mpc.transport import ProtocolError

SEED = bytes(range(32))


def run(dealer: Any, n: int = 2, matmul: bool = True) -> tuple[dict[str, Any], Session]:
    session = Session(Simulator(n), dealer)
    return program(session, matmul), session


def assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.mark.parametrize("n", [2, 3])
def test_preprocessed_items_give_the_same_bits_and_the_online_phase_makes_none(n: int) -> None:
    inline, recorded = run(Dealer(n, SEED), n)
    plan = recorded.dealer.plan()
    assert len(plan) > 20
    assert plan.num_parties == n

    dealer = Dealer(n, SEED)
    offline = dealer.preprocess(plan)
    assert offline > 0
    assert dealer.items_ahead == len(plan)
    made_offline = dealer.stats.seconds
    ahead, session = run(dealer, n)
    assert_same(ahead, inline)
    assert session.runtime.stats == recorded.runtime.stats
    assert dealer.stats == recorded.dealer.stats  # items and bytes; seconds are not compared
    assert dealer.items_ahead == 0
    assert dealer.stats.seconds == made_offline  # nothing was made online
    assert dealer.plan() == plan


def test_the_plan_counts_what_the_dealer_sends() -> None:
    _, session = run(Dealer(2, SEED))
    plan = session.dealer.plan()
    masks = [r for r in plan.requests if r.method is Method.INPUT_MASK]
    assert len(masks) == 3  # x, y and w of the program
    # The last party's rows of every item, and each input's mask r once more for its owner.
    owner_bytes = sum(8 * math.prod(r.shapes[0]) for r in masks)
    assert session.dealer.stats.bytes_sent == plan.nbytes() + owner_bytes
    assert plan.nbytes() == sum(r.nbytes() for r in plan.requests)


def test_a_prefix_plan_is_made_ahead_and_the_rest_on_request() -> None:
    inline, recorded = run(Dealer(2, SEED))
    dealer = Dealer(2, SEED)
    dealer.preprocess(DealerPlan(2, recorded.dealer.plan().requests[:7]))
    ahead, _ = run(dealer)
    assert_same(ahead, inline)
    assert dealer.plan() == recorded.dealer.plan()


def test_a_program_that_departs_from_its_plan_is_refused_at_the_first_difference() -> None:
    _, light = run(Dealer(2, SEED), matmul=False)
    requests = list(light.dealer.plan().requests)
    requests[4] = ItemRequest(Method.AND, ((9,),))
    dealer = Dealer(2, SEED)
    dealer.preprocess(DealerPlan(2, tuple(requests)))
    expected = requests[4].describe()
    assert expected == "and_triples((9,))"
    with pytest.raises(
        PrivacyError, match=r"item 4 must follow the plan, which has and_triples\(\(9,\)\), but"
    ):
        run(dealer, matmul=False)
    assert dealer.items_ahead == 0  # the rest of the plan is dropped, not served out of step


def test_bad_plans_are_refused() -> None:
    dealer = Dealer(2, SEED)
    three = DealerPlan(3, (ItemRequest(Method.AND, ((2,),)),))
    with pytest.raises(PrivacyError, match="plan must be for 2 parties, got one for 3"):
        dealer.preprocess(three)
    with pytest.raises(PrivacyError, match=r"plan must be a privet.mpc DealerPlan, got"):
        dealer.preprocess([ItemRequest(Method.AND, ((2,),))])  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="num_parties must be an integer >= 2, got 1"):
        DealerPlan(1, ())
    with pytest.raises(PrivacyError, match="requests must be a tuple of ItemRequest"):
        DealerPlan(2, [ItemRequest(Method.AND, ((2,),))])  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"item 0's owner must be in \[0, 1\], got 2"):
        DealerPlan(2, (ItemRequest(Method.INPUT_MASK, ((2,),), (2,)),))
    assert dealer.items_ahead == 0
    assert dealer.plan() == DealerPlan(2, ())


def test_plans_survive_the_wire_and_corrupt_ones_are_refused() -> None:
    _, session = run(Dealer(3, SEED), 3)
    plan = session.dealer.plan()
    assert decode_plan(encode_plan(plan)) == plan
    flat = plan_array(plan)
    assert flat.dtype == np.int64
    cases = [
        (flat[:-1], "cut short in item"),
        (np.concatenate([[len(Method)], flat[1:]]), "has method 7 and"),
        (np.array([list(Method).index(Method.MUL), 2, 1, 3, 1, 4, 0]), "shapes must broadcast"),
        (flat.astype(np.int32), "expected int64"),
    ]
    for bad, message in cases:
        with pytest.raises(ProtocolError, match=message):
            plan_from_array(3, np.asarray(bad), "the plan")
    with pytest.raises(ProtocolError, match="bad plan: num_parties must be an integer >= 2"):
        plan_from_array(1, flat, "the plan")
    with pytest.raises(ProtocolError, match=r"message kind must be 'mpc.plan'"):
        decode_plan(encode_plan(plan).replace(b"mpc.plan", b"mpc.nope"))
    with pytest.raises(PrivacyError, match=r"plan must be a privet.mpc DealerPlan"):
        encode_plan("plan")  # type: ignore[arg-type]


class CountingSource:
    """A correlation source that is not a Dealer: it counts the items it passes on."""

    def __init__(self, inner: Dealer) -> None:
        self.inner = inner
        self.num_parties = inner.num_parties
        self.stats = inner.stats
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any) -> Any:
            self.calls += 1
            return method(*args)

        return counted


def test_a_session_takes_any_correlation_source() -> None:
    inline, _ = run(Dealer(2, SEED), matmul=False)
    source = CountingSource(Dealer(2, SEED))
    wrapped, _ = run(source, matmul=False)
    assert_same(wrapped, inline)
    assert source.calls == len(source.inner.plan()) > 10
    with pytest.raises(PrivacyError, match=r"dealer must be a privet.mpc CorrelationSource"):
        Session(Simulator(2), object())  # type: ignore[arg-type]
    assert isinstance(Dealer(2), CorrelationSource)


def test_dealer_stats_compare_counts_not_seconds() -> None:
    assert DealerStats(3, 24, 0.5) == DealerStats(3, 24, 9.0)
    assert DealerStats(3, 24) != DealerStats(3, 32)
    dealer = Dealer(2, SEED)
    dealer.mul_triple((64,), (64,))
    assert dealer.stats.seconds > 0
    assert dealer.stats.items == 3
