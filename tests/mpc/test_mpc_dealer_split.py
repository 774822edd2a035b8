"""The dealer split across processes: each party's view gives exactly its row of the full dealer.

The oracle is the full ``Dealer(n, seed)`` (the simulator's): for the same calls in the
same order, party i's ``PartyDealer`` must return row i of every stack, bit for bit,
the owner must get ``r``, and ``DealerStats`` must agree. Parties i < n - 1 must not
receive anything but the masks of their own inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from privet.errors import PrivacyError
from privet.mpc.dealer import (
    CorrelationSource,
    Dealer,
    Delivery,
    ItemRequest,
    Method,
    PartyDealer,
)
from privet.mpc.ring import ConvGeometry

SEED = bytes(range(32))

Call = Callable[[Dealer], Any]


def calls(n: int) -> list[Call]:
    """One of every correlation, broadcasting, 1-d matmul operands and strided convolution
    included; the masks of inputs of the first and the last party."""
    return [
        lambda d: d.input_mask((3, 4), 0),
        lambda d: d.input_mask((2,), n - 1),
        lambda d: d.mul_triple((2, 1, 3), (4, 3)),
        lambda d: d.matmul_triple((2, 3, 5), (5, 4)),
        lambda d: d.matmul_triple((5,), (5, 4)),
        lambda d: d.conv_triple((2, 3, 6, 6), (4, 3, 3, 3), ConvGeometry((2, 1), (1, 0))),
        lambda d: d.and_triples((7, 3)),
        lambda d: d.truncation_pair((5,), 16),
        lambda d: d.comparison_mask(130),
        lambda d: d.comparison_mask(0),
    ]


class Views:
    """Every party's view of one dealer "process" (a full Dealer), fed in-process."""

    def __init__(self, n: int) -> None:
        self.server = Dealer(n, SEED)
        self.produced: list[Delivery] = []
        self.fetched: list[tuple[int, int, str]] = []
        last = n - 1

        def fetch_last(index: int, request: ItemRequest) -> Delivery:
            self.fetched.append((last, index, request.method.value))
            delivery = self.server.produce(request)
            self.produced.append(delivery)
            owner = request.method is Method.INPUT_MASK and request.params[0] == last
            rows = tuple(stack[last:] for stack in delivery.stacks)
            return Delivery(rows, delivery.value if owner else None)

        def fetch_other(party: int) -> Callable[[int, ItemRequest], Delivery]:
            def fetch(index: int, request: ItemRequest) -> Delivery:
                self.fetched.append((party, index, request.method.value))
                return Delivery((), self.produced[index].value)  # the dealer's mask message

            return fetch

        self.views = [
            PartyDealer(n, p, self.server.stream_seed(p), fetch_other(p)) for p in range(last)
        ] + [PartyDealer(n, last, None, fetch_last)]


@pytest.mark.parametrize("n", [2, 3])
def test_every_party_view_returns_its_row_of_the_full_dealer(n: int) -> None:
    full, views = Dealer(n, SEED), Views(n)
    for call in calls(n):
        expected = call(full)
        # The last party asks first (it is the one that talks to the dealer process).
        got = {n - 1: call(views.views[n - 1])}
        got.update({p: call(views.views[p]) for p in range(n - 1)})
        for party, item in got.items():
            assert type(item) is type(expected)
            for name, want, have in zip(expected._fields, expected, item, strict=True):
                if name == "value":  # an input mask's r, at its owner (checked below)
                    if have is not None:
                        np.testing.assert_array_equal(have, want)
                    continue
                assert have.shape == (1, *want.shape[1:]), name
                np.testing.assert_array_equal(have[0], want[party])
    assert all(view.stats == full.stats for view in views.views)
    assert all(isinstance(d, CorrelationSource) for d in (full, *views.views))
    assert views.server.stats == full.stats
    # Parties other than the last received only the masks of the inputs they own.
    assert [f for f in views.fetched if f[0] != n - 1] == [(0, 0, "input_mask")]
    assert len([f for f in views.fetched if f[0] == n - 1]) == len(calls(n))


@pytest.mark.parametrize("n", [2, 3])
def test_input_mask_value_reaches_the_owner_only(n: int) -> None:
    views = Views(n)
    for owner in (0, n - 1):
        masks = [views.views[n - 1].input_mask((2, 2), owner)] + [
            view.input_mask((2, 2), owner) for view in views.views[:-1]
        ]
        parties = [n - 1, *range(n - 1)]
        for party, mask in zip(parties, masks, strict=True):
            assert (mask.value is not None) == (party == owner)


def test_seeded_views_compute_no_products(monkeypatch: pytest.MonkeyPatch) -> None:
    """A party i < n - 1 draws its rows from its stream: no ring product (the dealer's
    ``c = a @ b``) is computed there, and nothing is fetched."""
    expected = Dealer(2, SEED).matmul_triple((64, 64), (64, 64))

    def refuse(*args: object) -> None:
        raise AssertionError("party 0 must not compute or fetch a triple")

    monkeypatch.setattr("privet.mpc.dealer.ring_matmul", refuse)
    view = PartyDealer(2, 0, Dealer(2, SEED).stream_seed(0), refuse)
    triple = view.matmul_triple((64, 64), (64, 64))
    for have, want in zip(triple, expected, strict=True):
        np.testing.assert_array_equal(have[0], want[0])
    with pytest.raises(AssertionError, match="must not compute"):
        Dealer(2, SEED).matmul_triple((64, 64), (64, 64))  # the patch is live


@pytest.mark.parametrize("n", [2, 3])
def test_layout_matches_what_the_full_dealer_returns(n: int) -> None:
    dealer = Dealer(n, SEED)
    requests = [
        ItemRequest(Method.INPUT_MASK, ((3, 4),), (0,)),
        ItemRequest(Method.MUL, ((2, 1, 3), (4, 3))),
        ItemRequest(Method.MUL, ((), (4,))),
        ItemRequest(Method.MATMUL, ((2, 3, 5), (5, 4))),
        ItemRequest(Method.MATMUL, ((5,), (5, 4))),
        ItemRequest(Method.MATMUL, ((3, 5), (5,))),
        ItemRequest(Method.CONV, ((2, 3, 6, 6), (4, 3, 3, 3)), (2, 1, 1, 0)),
        ItemRequest(Method.CONV, ((5, 2, 3, 4, 4), (2, 3, 2, 2)), (1, 1, 0, 0)),
        ItemRequest(Method.AND, ((7, 3),)),
        ItemRequest(Method.TRUNCATION, ((5,),), (16,)),
        ItemRequest(Method.COMPARISON, (), (130,)),
    ]
    for request in requests:
        delivery = dealer.produce(request)
        assert [stack.shape[1:] for stack in delivery.stacks] == list(request.layout())
        assert request.nbytes() == sum(stack[0].nbytes for stack in delivery.stacks)


def test_stream_seeds_are_the_full_dealers_only() -> None:
    dealer = Dealer(3, SEED)
    assert len({dealer.stream_seed(0), dealer.stream_seed(1)}) == 2
    with pytest.raises(PrivacyError, match=r"party must be in \[0, 1\] \(the last party's"):
        dealer.stream_seed(2)
    view = PartyDealer(3, 0, dealer.stream_seed(0), lambda i, r: Delivery((), None))
    # A view is a correlation source, not a dealer: it holds no seed but its own stream's.
    assert isinstance(view, CorrelationSource)
    assert not isinstance(view, Dealer)
    assert not hasattr(view, "stream_seed")


def test_bad_requests_are_refused_before_anything_is_drawn() -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: ItemRequest("cube", ((2,),)), "method must be one of input_mask"),  # type: ignore[arg-type]
        (lambda: ItemRequest(Method.MUL, ((2,),)), "mul_triple takes 2 shapes"),
        (lambda: ItemRequest(Method.AND, ((2,),), (1,)), "and_triples takes 0 integer"),
        (lambda: ItemRequest(Method.AND, ((-1,),)), r"must hold ints in \[0, 2\*\*62\)"),
        (lambda: ItemRequest(Method.MUL, ((2**70,), (1,))), r"ints in \[0, 2\*\*62\), got"),
        (lambda: ItemRequest(Method.AND, ((1,) * 33,)), "at most 32 ints"),
        (lambda: ItemRequest(Method.MUL, ((2,), (3,))), r"shapes must broadcast, got \(2,\)"),
        (lambda: ItemRequest(Method.MATMUL, ((2, 3), (4, 2))), "matmul shapes must align"),
        (lambda: ItemRequest(Method.MATMUL, ((), (4, 2))), "matmul operands must have >= 1"),
        (lambda: ItemRequest(Method.CONV, ((2, 3, 4), (1, 3, 2, 2)), (1, 1, 0, 0)), "images"),
        (lambda: ItemRequest(Method.CONV, ((1, 2, 4, 4), (1, 3, 2, 2)), (1, 1, 0, 0)), "channels"),
        (lambda: ItemRequest(Method.CONV, ((1, 3, 4, 4), (1, 3, 2, 2)), (0, 1, 0, 0)), "stride"),
        (lambda: ItemRequest(Method.TRUNCATION, ((2,),), (64,)), r"fractional_bits must be in"),
        (lambda: ItemRequest(Method.COMPARISON, (), (-1,)), "count must be >= 0"),
        (lambda: ItemRequest(Method.COMPARISON, (), (True,)), "parameters must be ints"),
    ]
    for build, message in cases:
        with pytest.raises(PrivacyError, match=message):
            build()


def test_party_dealer_refuses_bad_setups_and_bad_deliveries() -> None:
    seed = Dealer(2, SEED).stream_seed(0)
    with pytest.raises(PrivacyError, match="num_parties must be an integer >= 2"):
        PartyDealer(1, 0, seed, lambda i, r: Delivery((), None))
    with pytest.raises(PrivacyError, match=r"party must be in \[0, 1\], got 2"):
        PartyDealer(2, 2, None, lambda i, r: Delivery((), None))
    with pytest.raises(PrivacyError, match="stream_seed of party 1 must be None"):
        PartyDealer(2, 1, seed, lambda i, r: Delivery((), None))
    with pytest.raises(PrivacyError, match="stream_seed of party 0 must be 32 bytes"):
        PartyDealer(2, 0, None, lambda i, r: Delivery((), None))
    wrong = PartyDealer(2, 1, None, lambda i, r: Delivery((np.zeros((1, 3), np.uint64),), None))
    with pytest.raises(PrivacyError, match=r"must be uint64 of shapes \[\(1, 2\), \(1, 2\)"):
        wrong.and_triples((2,))
    with pytest.raises(PrivacyError, match=r"owner must be in \[0, 1\], got 5"):
        wrong.input_mask((2,), 5)
    unowned = PartyDealer(2, 1, None, lambda i, r: Delivery((np.zeros((1, 2), np.uint64),), None))
    with pytest.raises(PrivacyError, match="value must reach its owner only, got none at party 1"):
        unowned.input_mask((2,), 1)
