"""The privacy budget ledger: check, then act; accounting; validation; persistence.

References
----------
* The ledger's epsilon is pinned against :func:`privet.dp.epsilon`, which is
  itself pinned against dp-accounting 0.6 run directly (tests/dp/test_accounting.py).
* PLD grouping tolerance: the ledger composes its history by grouping
  identical events (each analysed once, then self-composed), which under PLD
  is a different sequence of discretized convolutions than composing the
  events one by one with dp-accounting; the two agree only up to
  discretization. We allow an absolute 1e-4, dp-accounting's (and privet's)
  PLD value-discretization interval; measured differences on these events are
  below 1e-6. Under RDP composition is addition of Rényi curves, so the two
  agree to rounding (relative 1e-12).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dp_accounting
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privet import BudgetExceeded, PrivacyError
from privet.dp import (
    Charge,
    DiscreteGaussianDpEvent,
    DpEvent,
    GeneratorRandom,
    LaplaceMechanism,
    Ledger,
    NeighboringRelation,
    PureDpEvent,
    RandomizedResponse,
    RandomSource,
    dp_count,
    dp_histogram,
    dp_mean,
    dp_quantile,
    dp_quantiles,
    dp_sum,
    dp_variance,
    epsilon,
    event_from_json,
    event_to_json,
)
from privet.dp.ledger import compose_history

DELTA = 1e-6
PLD_GROUPING_TOL = 1e-4  # dp-accounting's PLD value-discretization interval (see module notes)

LAPLACE_01 = dp_accounting.LaplaceDpEvent(10.0)  # epsilon 0.1 on a sensitivity-1 query
GAUSSIAN_5 = dp_accounting.GaussianDpEvent(5.0)
PURE_005 = PureDpEvent(0.05)
DISCRETE_GAUSSIAN_6 = DiscreteGaussianDpEvent(6.0, 1)

# Repeated events interleaved with others: the ledger groups the repeats.
MIXED_EVENTS: list[DpEvent] = [
    LAPLACE_01,
    GAUSSIAN_5,
    LAPLACE_01,
    PURE_005,
    GAUSSIAN_5,
    LAPLACE_01,
    DISCRETE_GAUSSIAN_6,
    PURE_005,
]


def approx_for(accountant: str, value: float) -> Any:
    if accountant == "pld":
        return pytest.approx(value, abs=PLD_GROUPING_TOL)
    return pytest.approx(value, rel=1e-12)


def raw_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


# -- test doubles --------------------------------------------------------------------------------


@dataclass
class RecordingMechanism:
    """A mechanism double: a fixed event, and a release that records that it was called."""

    event: DpEvent
    ledger: Ledger | None = None
    calls: list[tuple[Any, Any]] = field(default_factory=list)
    history_at_release: list[int] = field(default_factory=list)

    def validate(self, value: Any) -> np.ndarray:
        return np.asarray(value, dtype=np.float64)

    def release(self, value: Any, *, rng: Any = None) -> Any:
        self.calls.append((value, rng))
        if self.ledger is not None:
            self.history_at_release.append(len(self.ledger.history()))
        return value + 1.0


class GuardedSource(RandomSource):
    """A seeded RandomSource that counts draws and fails the test on any draw once forbidden."""

    def __init__(self, seed: int, *, forbid: bool) -> None:
        self._inner = GeneratorRandom(np.random.default_rng(seed))
        self.forbid = forbid
        self.draws = 0

    def _draw(self, what: str) -> None:
        self.draws += 1
        if self.forbid:
            pytest.fail(f"{what} was drawn after the ledger refused the release")

    def uniform(self, size: int) -> np.ndarray:
        self._draw("uniform")
        return self._inner.uniform(size)

    def standard_normal(self, size: int) -> np.ndarray:
        self._draw("standard_normal")
        return self._inner.standard_normal(size)

    def standard_exponential(self, size: int) -> np.ndarray:
        self._draw("standard_exponential")
        return self._inner.standard_exponential(size)

    def integers(self, high: int, size: int) -> np.ndarray:
        self._draw("integers")
        return self._inner.integers(high, size)

    def randbelow(self, high: int) -> int:
        self._draw("randbelow")
        return self._inner.randbelow(high)


# -- the budget ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, -math.inf])
def test_bad_epsilon_budget_is_refused_naming_the_value(bad: float) -> None:
    with pytest.raises(PrivacyError, match=rf"epsilon must be .*, got {bad!r}"):
        Ledger(bad, DELTA)


@pytest.mark.parametrize("bad", [0.0, 1.0, -1e-6, 1.5, math.nan, math.inf])
def test_bad_delta_budget_is_refused_naming_the_value(bad: float) -> None:
    with pytest.raises(PrivacyError, match=rf"delta must be .*, got {bad!r}"):
        Ledger(1.0, bad)


def test_bad_accountant_and_relation_are_refused_naming_the_value() -> None:
    with pytest.raises(PrivacyError, match="accountant must be one of 'pld', 'rdp', got 'prv'"):
        Ledger(1.0, DELTA, "prv")  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"neighboring_relation .* got 'replace_one'"):
        Ledger(1.0, DELTA, neighboring_relation="replace_one")  # type: ignore[arg-type]


def test_bad_budget_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with pytest.raises(PrivacyError, match="epsilon must be > 0, got -2"):
        Ledger(-2, DELTA, path=path)
    assert not path.exists()


def test_new_ledger_is_empty() -> None:
    ledger = Ledger(2.0, 1e-7, "rdp", neighboring_relation=NeighboringRelation.REPLACE_ONE)
    assert (ledger.epsilon_budget, ledger.delta_budget) == (2.0, 1e-7)
    assert ledger.accountant == "rdp"
    assert ledger.neighboring_relation is NeighboringRelation.REPLACE_ONE
    assert ledger.path is None
    assert ledger.spent() == 0.0
    assert ledger.remaining() == 2.0
    assert ledger.history() == []


# -- accounting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_spent_is_the_composition_of_every_charged_event(accountant: str) -> None:
    ledger = Ledger(10.0, DELTA, accountant)  # type: ignore[arg-type]
    for i, event in enumerate(MIXED_EVENTS):
        charge = ledger.charge(event, label=f"release {i}")
        assert ledger.spent() == charge.epsilon_after
        assert ledger.remaining() == pytest.approx(10.0 - ledger.spent(), rel=1e-12)
        if i in (0, 3, len(MIXED_EVENTS) - 1):  # the plain composition is costly: spot checks
            charged = dp_accounting.ComposedDpEvent(MIXED_EVENTS[: i + 1])
            plain = epsilon(charged, DELTA, accountant)  # type: ignore[arg-type]
            assert ledger.spent() == approx_for(accountant, plain)


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_grouped_history_equals_plain_composition(accountant: str) -> None:
    texts = [event_to_json(event) for event in MIXED_EVENTS]
    grouped = compose_history(texts)
    # Identical events became one SelfComposedDpEvent each: 4 distinct events here.
    assert isinstance(grouped, dp_accounting.ComposedDpEvent)
    assert len(grouped.events) == 4
    counts = {
        repr(part.event if isinstance(part, dp_accounting.SelfComposedDpEvent) else part): (
            part.count if isinstance(part, dp_accounting.SelfComposedDpEvent) else 1
        )
        for part in grouped.events
    }
    assert counts == {
        repr(LAPLACE_01): 3,
        repr(GAUSSIAN_5): 2,
        repr(PURE_005): 2,
        repr(DISCRETE_GAUSSIAN_6): 1,
    }
    plain = epsilon(MIXED_EVENTS, DELTA, accountant)  # type: ignore[arg-type]
    assert epsilon(grouped, DELTA, accountant) == approx_for(accountant, plain)  # type: ignore[arg-type]


def test_history_records_label_event_epsilon_after_and_utc_time() -> None:
    ledger = Ledger(10.0, DELTA, "pld")
    before = datetime.now(UTC)
    returned = [ledger.charge(event, label=f"q{i}") for i, event in enumerate(MIXED_EVENTS[:5])]
    after = datetime.now(UTC)
    history = ledger.history()
    assert [c.index for c in history] == [1, 2, 3, 4, 5]
    assert [c.label for c in history] == ["q0", "q1", "q2", "q3", "q4"]
    assert [c.event for c in history] == MIXED_EVENTS[:5]
    assert history == returned
    assert all(isinstance(c, Charge) for c in history)
    for i, charge in enumerate(history):
        assert charge.epsilon_after == pytest.approx(
            epsilon(MIXED_EVENTS[: i + 1], DELTA, "pld"), abs=PLD_GROUPING_TOL
        )
        assert charge.created_at.utcoffset() == timedelta(0)
        assert before <= charge.created_at <= after
    times = [c.created_at for c in history]
    assert times == sorted(times)
    assert len(set(times)) == len(times), "created_at must increase from charge to charge"
    spent = [c.epsilon_after for c in history]
    assert spent == sorted(spent)


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_would_spend_records_nothing(accountant: str) -> None:
    ledger = Ledger(1.0, DELTA, accountant)  # type: ignore[arg-type]
    ledger.charge(LAPLACE_01, label="first")
    history, spent = ledger.history(), ledger.spent()
    predicted = ledger.would_spend(GAUSSIAN_5)
    # Over budget: would_spend only reports, it does not raise or record.
    assert ledger.would_spend(dp_accounting.LaplaceDpEvent(0.5)) > ledger.epsilon_budget
    assert ledger.history() == history
    assert ledger.spent() == spent
    assert ledger.charge(GAUSSIAN_5, label="second").epsilon_after == predicted


def test_budget_exceeded_is_raised_and_nothing_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(1.0, DELTA, "pld", path=path)
    ledger.charge(dp_accounting.LaplaceDpEvent(1 / 0.6), label="big")
    history, spent = ledger.history(), ledger.spent()
    with pytest.raises(BudgetExceeded, match="'too much' refused") as info:
        ledger.charge(dp_accounting.LaplaceDpEvent(1 / 0.5), label="too much")
    assert isinstance(info.value, PrivacyError)
    assert info.value.label == "too much"
    assert info.value.epsilon_budget == 1.0
    assert info.value.epsilon_after == pytest.approx(1.1, abs=PLD_GROUPING_TOL)
    assert ledger.history() == history
    assert ledger.spent() == spent
    assert raw_rows(path, "SELECT count(*) FROM charges") == [(1,)]
    # The ledger stays usable: a charge that fits is still accepted.
    ledger.charge(dp_accounting.LaplaceDpEvent(1 / 0.3), label="fits")
    assert [c.label for c in ledger.history()] == ["big", "fits"]
    assert ledger.spent() <= 1.0


def test_non_private_event_never_fits() -> None:
    ledger = Ledger(1e6, DELTA, "rdp")
    with pytest.raises(BudgetExceeded) as info:
        ledger.charge(dp_accounting.NonPrivateDpEvent(), label="raw data")
    assert info.value.epsilon_after == math.inf
    assert ledger.history() == []


# -- check, then act -----------------------------------------------------------------------------


def test_release_charges_before_it_releases() -> None:
    ledger = Ledger(1.0, DELTA)
    mechanism = RecordingMechanism(LAPLACE_01, ledger=ledger)
    rng = np.random.default_rng(7)
    assert ledger.release(mechanism, 41.0, label="answer", rng=rng) == 42.0
    assert mechanism.calls == [(41.0, rng)]
    assert mechanism.history_at_release == [1]  # the charge was recorded first
    assert [(c.label, c.event) for c in ledger.history()] == [("answer", LAPLACE_01)]


def test_refused_release_never_calls_the_mechanism() -> None:
    ledger = Ledger(1.0, DELTA)
    ledger.charge(dp_accounting.LaplaceDpEvent(1 / 0.9), label="most of it")
    mechanism = RecordingMechanism(dp_accounting.LaplaceDpEvent(1 / 0.2))
    with pytest.raises(BudgetExceeded):
        ledger.release(mechanism, 1.0, label="over", rng=np.random.default_rng(0))
    assert mechanism.calls == []
    assert [c.label for c in ledger.history()] == ["most of it"]


@pytest.mark.parametrize(
    "event",
    [
        dp_accounting.RandomizedResponseDpEvent(0.5, 2),
        dp_accounting.UnsupportedDpEvent(),
        dp_accounting.ComposedDpEvent([LAPLACE_01, dp_accounting.UnsupportedDpEvent()]),
        dp_accounting.SelfComposedDpEvent(dp_accounting.RandomizedResponseDpEvent(0.5, 2), 3),
    ],
    ids=["rr-add-remove", "unsupported", "nested-unsupported", "nested-rr"],
)
@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_unsupported_events_are_refused_before_anything_is_recorded(
    event: DpEvent, accountant: str, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(10.0, DELTA, accountant, path=path)  # type: ignore[arg-type]
    mechanism = RecordingMechanism(event)
    with pytest.raises(PrivacyError, match=r"RandomizedResponseDpEvent|UnsupportedDpEvent") as info:
        ledger.release(mechanism, 0.0, label="unsupported")
    assert not isinstance(info.value, BudgetExceeded)  # refused as unsupported, not as too costly
    with pytest.raises(PrivacyError):
        ledger.would_spend(event)
    assert mechanism.calls == []
    assert ledger.history() == []
    assert raw_rows(path, "SELECT count(*) FROM charges") == [(0,)]


@pytest.mark.parametrize("not_an_event", [0.5, {"type": "LaplaceDpEvent"}, None])
def test_non_events_are_refused_naming_the_value(not_an_event: Any) -> None:
    ledger = Ledger(1.0, DELTA)
    with pytest.raises(PrivacyError, match="event must be a dp-accounting DpEvent, got "):
        ledger.charge(not_an_event, label="x")
    with pytest.raises(
        PrivacyError, match=re.escape("mechanism must have .event, .validate and .release, got 3")
    ):
        ledger.release(3, 1.0, label="x")  # type: ignore[arg-type]
    assert ledger.history() == []


def test_randomized_response_is_accepted_on_a_replace_one_ledger() -> None:
    ledger = Ledger(2.0, DELTA, neighboring_relation=NeighboringRelation.REPLACE_ONE)
    mechanism = RandomizedResponse(epsilon=1.0, num_categories=3)
    reports = ledger.release(
        mechanism, np.array([0, 1, 2, 2]), label="survey", rng=np.random.default_rng(3)
    )
    assert reports.shape == (4,)
    assert ledger.history()[0].event == mechanism.event
    assert ledger.spent() == pytest.approx(1.0, abs=PLD_GROUPING_TOL)


@pytest.mark.parametrize("bad", ["", None, 3, b"label"])
def test_bad_labels_are_refused_naming_the_value(bad: Any) -> None:
    ledger = Ledger(1.0, DELTA)
    mechanism = RecordingMechanism(LAPLACE_01)
    with pytest.raises(PrivacyError, match=rf"label must be a non-empty string, got {bad!r}"):
        ledger.release(mechanism, 1.0, label=bad)
    assert mechanism.calls == []
    assert ledger.history() == []


def test_release_refused_for_a_bad_value_records_nothing() -> None:
    ledger = Ledger(1.0, DELTA)
    with pytest.raises(PrivacyError, match="value must contain only finite values, got nan"):
        ledger.release(LaplaceMechanism(0.5), math.nan, label="nan", rng=np.random.default_rng(0))
    assert ledger.history() == []


VALUES = np.array([1.0, 2.5, 3.0, 7.5, 9.0, 4.0, 6.0, 2.0])

STATISTICS = {
    "dp_count": lambda lg, rng: dp_count(VALUES, 0.5, ledger=lg, rng=rng),
    "dp_sum": lambda lg, rng: dp_sum(VALUES, 0, 10, 0.5, ledger=lg, rng=rng),
    "dp_mean": lambda lg, rng: dp_mean(VALUES, 0, 10, 0.5, ledger=lg, rng=rng),
    "dp_variance": lambda lg, rng: dp_variance(VALUES, 0, 10, 0.5, ledger=lg, rng=rng),
    "dp_quantile": lambda lg, rng: dp_quantile(VALUES, 0.25, 0, 10, 0.5, ledger=lg, rng=rng),
    "dp_quantiles": lambda lg, rng: dp_quantiles(
        VALUES, [0.25, 0.5], 0, 10, 0.5, ledger=lg, rng=rng
    ),
    "dp_histogram": lambda lg, rng: dp_histogram(VALUES, 4, 0, 10, 0.5, ledger=lg, rng=rng),
}


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_refused_statistic_draws_no_noise(name: str) -> None:
    ledger = Ledger(1.0, DELTA)
    ledger.charge(dp_accounting.LaplaceDpEvent(1 / 0.8), label="earlier")
    source = GuardedSource(seed=11, forbid=True)
    with pytest.raises(BudgetExceeded):
        STATISTICS[name](ledger, source)
    assert source.draws == 0
    assert [c.label for c in ledger.history()] == ["earlier"]


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_accepted_statistic_charges_once_then_draws(name: str) -> None:
    # The positive control of the test above: the same double does see draws when allowed.
    ledger = Ledger(1.0, DELTA)
    source = GuardedSource(seed=11, forbid=False)
    STATISTICS[name](ledger, source)
    assert source.draws > 0
    assert len(ledger.history()) == 1
    assert ledger.spent() == pytest.approx(0.5, abs=1e-3)  # each statistic is 0.5-DP in total


# -- concurrency within one process --------------------------------------------------------------


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "sqlite"])
def test_threads_charging_at_once_never_overspend(on_disk: bool, tmp_path: Path) -> None:
    ledger = Ledger(1.0, DELTA, "rdp", path=tmp_path / "l.sqlite" if on_disk else None)
    accepted = [0] * 4
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(15):
                try:
                    ledger.charge(dp_accounting.GaussianDpEvent(20.0), label=f"t{worker}-{i}")
                except BudgetExceeded:
                    return
                accepted[worker] += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    history = ledger.history()
    assert len(history) == sum(accepted)
    assert 0 < ledger.spent() <= 1.0
    assert ledger.spent() == history[-1].epsilon_after
    assert ledger.would_spend(dp_accounting.GaussianDpEvent(20.0)) > 1.0  # budget is used up


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    epsilons=st.lists(st.sampled_from([0.05, 0.1, 0.3, 0.7]), min_size=1, max_size=10),
)
def test_invariant_accepted_charges_stay_within_budget(epsilons: list[float]) -> None:
    ledger = Ledger(1.0, DELTA, "rdp")
    for i, eps in enumerate(epsilons):
        event = dp_accounting.LaplaceDpEvent(1 / eps)
        before = ledger.history()
        predicted = ledger.would_spend(event)
        if predicted <= 1.0:
            charge = ledger.charge(event, label=f"c{i}")
            assert charge.epsilon_after == predicted
            assert ledger.history() == [*before, charge]
        else:
            with pytest.raises(BudgetExceeded) as info:
                ledger.charge(event, label=f"c{i}")
            assert info.value.epsilon_after == predicted
            assert ledger.history() == before
    assert ledger.spent() <= 1.0
    assert ledger.spent() == (ledger.history()[-1].epsilon_after if ledger.history() else 0.0)


# -- persistence ---------------------------------------------------------------------------------


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_reopened_file_has_the_same_history_and_spent(accountant: str, tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(5.0, 1e-7, accountant, path=path)  # type: ignore[arg-type]
    for i, event in enumerate(MIXED_EVENTS[:4]):
        ledger.charge(event, label=f"r{i}")
    assert ledger.path == path

    reopened = Ledger.open(path)
    assert reopened.history() == ledger.history()
    assert reopened.spent() == ledger.spent()
    assert (reopened.epsilon_budget, reopened.delta_budget) == (5.0, 1e-7)
    assert reopened.accountant == accountant

    same = Ledger(5.0, 1e-7, accountant, path=str(path))  # same budget: reopens
    same.charge(LAPLACE_01, label="later")
    # Every handle reads the one file: the first sees the later charge too.
    assert [c.label for c in ledger.history()] == ["r0", "r1", "r2", "r3", "later"]
    assert ledger.spent() == same.spent() == reopened.spent()


def test_open_reads_the_budget_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(2.5, 3e-8, "rdp", neighboring_relation=NeighboringRelation.REPLACE_ONE, path=path)
    ledger = Ledger.open(path)
    assert ledger.epsilon_budget == 2.5
    assert ledger.delta_budget == 3e-8
    assert ledger.accountant == "rdp"
    assert ledger.neighboring_relation is NeighboringRelation.REPLACE_ONE
    assert "epsilon=2.5" in repr(ledger)
    assert str(path) in repr(ledger)


@pytest.mark.parametrize(
    "other",
    [
        {"epsilon": 2.0},
        {"delta": 1e-5},
        {"accountant": "rdp"},
        {"neighboring_relation": NeighboringRelation.REPLACE_ONE},
    ],
    ids=["epsilon", "delta", "accountant", "relation"],
)
def test_recreating_with_a_different_budget_is_refused(
    other: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "ledger.sqlite"
    original = Ledger(1.0, DELTA, "pld", path=path)
    original.charge(LAPLACE_01, label="kept")
    kwargs: dict[str, Any] = {"epsilon": 1.0, "delta": DELTA, "accountant": "pld", **other}
    with pytest.raises(PrivacyError, match="already holds a different ledger"):
        Ledger(path=path, **kwargs)
    assert Ledger.open(path).epsilon_budget == 1.0
    assert [c.label for c in Ledger.open(path).history()] == ["kept"]


def test_opening_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.sqlite"
    with pytest.raises(PrivacyError, match=re.escape(f"ledger file '{path}' does not exist")):
        Ledger.open(path)
    assert not path.exists()


@pytest.mark.parametrize(
    "content",
    [np.random.default_rng(5).bytes(4096), b"hello, I am not a database\n"],
    ids=["random-bytes", "text"],
)
@pytest.mark.parametrize("how", ["open", "create"])
def test_garbage_file_is_refused(content: bytes, how: str, tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(content)
    with pytest.raises(PrivacyError, match=re.escape(f"cannot open ledger file '{path}'")):
        Ledger.open(path) if how == "open" else Ledger(1.0, DELTA, path=path)
    assert path.read_bytes() == content


def _make_foreign_sqlite(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE patients (name TEXT, age INTEGER)")
        conn.execute("INSERT INTO patients VALUES ('ada', 36)")
        conn.commit()


def _tables(path: Path) -> list[str]:
    return [row[0] for row in raw_rows(path, "SELECT name FROM sqlite_master ORDER BY name")]


def test_open_refuses_a_non_ledger_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    _make_foreign_sqlite(path)
    with pytest.raises(PrivacyError, match=re.escape(f"'{path}' is not a privet ledger")):
        Ledger.open(path)
    assert raw_rows(path, "SELECT * FROM patients") == [("ada", 36)]


def test_open_leaves_a_refused_non_ledger_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    _make_foreign_sqlite(path)
    with pytest.raises(PrivacyError):
        Ledger.open(path)
    assert _tables(path) == ["patients"]


def test_creating_a_ledger_over_a_non_ledger_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    _make_foreign_sqlite(path)
    with pytest.raises(PrivacyError, match="not a privet ledger"):
        Ledger(1.0, DELTA, path=path)


@pytest.mark.parametrize("how", ["open", "create"])
def test_sqlite_file_with_a_foreign_meta_table_is_refused(how: str, tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE meta (id INTEGER, note TEXT)")
        conn.commit()
    with pytest.raises(PrivacyError):
        Ledger.open(path) if how == "open" else Ledger(1.0, DELTA, path=path)


def test_other_schema_version_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(1.0, DELTA, path=path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
        conn.commit()
    with pytest.raises(PrivacyError, match="ledger schema must be 1, got '99'"):
        Ledger.open(path)


def test_events_are_stored_as_json_text_never_pickle(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(10.0, DELTA, "pld", path=path)
    events: list[DpEvent] = [
        LAPLACE_01,
        DISCRETE_GAUSSIAN_6,
        dp_accounting.ComposedDpEvent([PURE_005, dp_accounting.SelfComposedDpEvent(GAUSSIAN_5, 3)]),
    ]
    for i, event in enumerate(events):
        ledger.charge(event, label=f"j{i}")

    rows = raw_rows(
        path,
        "SELECT label, typeof(event), event, epsilon_after, created_at FROM charges ORDER BY id",
    )
    assert [row[0] for row in rows] == ["j0", "j1", "j2"]
    assert {row[1] for row in rows} == {"text"}
    decoded = [json.loads(row[2]) for row in rows]
    assert decoded[0] == {"type": "LaplaceDpEvent", "noise_multiplier": 10.0}
    assert decoded[1] == {"type": "DiscreteGaussianDpEvent", "sigma": 6.0, "sensitivity": 1}
    assert decoded[2]["type"] == "ComposedDpEvent"
    assert decoded[2]["events"][1]["type"] == "SelfComposedDpEvent"
    assert [event_from_json(row[2]) for row in rows] == events
    for row in rows:
        assert datetime.fromisoformat(row[4]).utcoffset() == timedelta(0)

    header = dict(raw_rows(path, "SELECT key, value FROM meta"))
    assert json.loads(header["header"]) == {
        "epsilon": 10.0,
        "delta": DELTA,
        "accountant": "pld",
        "neighboring_relation": "add_or_remove_one",
    }
    # No column of any table holds a blob (pickle would be one).
    for (table,) in raw_rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in raw_rows(path, f"SELECT * FROM {table}"):
            assert not any(isinstance(value, bytes) for value in row), (table, row)


def test_a_stored_event_of_unknown_type_is_refused_not_imported(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(1.0, DELTA, path=path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "INSERT INTO charges (label, event, epsilon_after, created_at) VALUES (?, ?, ?, ?)",
            (
                "planted",
                '{"type": "os.system", "command": "true"}',
                0.1,
                datetime.now(UTC).isoformat(),
            ),
        )
        conn.commit()
    with pytest.raises(PrivacyError, match=r"event type must be one of .* got 'os\.system'"):
        ledger.history()
    with pytest.raises(PrivacyError, match=re.escape("got 'os.system'")):
        Ledger.open(path).spent()


def test_composed_event_accounts_like_the_ledger() -> None:
    ledger = Ledger(5.0, DELTA, "rdp")
    assert ledger.composed_event() == dp_accounting.NoOpDpEvent()
    for _ in range(3):
        ledger.charge(dp_accounting.GaussianDpEvent(4.0), label="g")
    ledger.charge(dp_accounting.LaplaceDpEvent(10.0), label="l")
    assert epsilon(ledger.composed_event(), DELTA, "rdp") == pytest.approx(
        ledger.spent(), rel=1e-12
    )
