"""Regression tests for defects an independent review found (each once let privacy leak).

1. Event parameters were unchecked: a negative count inside a composed event
   *lowered* the epsilon under RDP, so a ledger could overspend.
2. Statistics, calibrated for add-or-remove neighbours, were accepted by a
   replace-one ledger, where their sensitivity doubles.
3. Some mechanisms could fail after their charge was recorded.
4. Huge integers wrapped to INT64_MIN.
5. A uniform draw could round to exactly 1.0 (infinite Laplace noise).
6. The exact discrete Laplace drew with a float scale that could be one ulp
   below sensitivity/epsilon while its event stated epsilon exactly.
7. A ledger file's header was not checked on open.
"""

from __future__ import annotations

import json
import math
import sqlite3
from contextlib import closing
from fractions import Fraction
from pathlib import Path

import dp_accounting
import numpy as np
import pytest

from privet import PrivacyError
from privet.dp import (
    DiscreteLaplaceMechanism,
    GaussianMechanism,
    Ledger,
    NeighboringRelation,
    RandomizedResponse,
    dp_count,
    dp_histogram,
    dp_mean,
    dp_sum,
    epsilon,
    event_from_json,
    noise_multiplier_for,
)
from privet.dp.randomness import _cell_midpoints

GAUSS = dp_accounting.GaussianDpEvent(1.0)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            dp_accounting.ComposedDpEvent([dp_accounting.SelfComposedDpEvent(GAUSS, -2)]),
            "SelfComposedDpEvent.count must be an integer >= 1, got -2",
        ),
        (dp_accounting.GaussianDpEvent(-1.0), "noise_multiplier must be >= 0, got -1.0"),
        (dp_accounting.LaplaceDpEvent(math.nan), "noise_multiplier must be finite"),
        (
            dp_accounting.PoissonSampledDpEvent(1.5, GAUSS),
            r"sampling_probability must be in \[0, 1\], got 1.5",
        ),
        (
            dp_accounting.dp_event.DiscreteLaplaceDpEvent(0.5, 0),
            "DiscreteLaplaceDpEvent.sensitivity must be an integer >= 1, got 0",
        ),
        (
            dp_accounting.SampledWithoutReplacementDpEvent(10, 20, GAUSS),
            r"sample_size must be in \[0, 10\]",
        ),
    ],
)
@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_bad_event_parameters_are_refused_everywhere(
    event: dp_accounting.DpEvent, message: str, accountant: str
) -> None:
    with pytest.raises(PrivacyError, match=message):
        epsilon(event, 1e-6, accountant)  # type: ignore[arg-type]
    ledger = Ledger(10.0, 1e-6, accountant)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=message):
        ledger.charge(event, label="bad")
    assert ledger.history() == []


def test_negative_count_cannot_offset_a_real_charge() -> None:
    ledger = Ledger(10.0, 1e-6, "rdp")
    offset = dp_accounting.ComposedDpEvent([dp_accounting.SelfComposedDpEvent(GAUSS, -2)])
    with pytest.raises(PrivacyError):
        ledger.charge(offset, label="offset")
    for _ in range(3):
        try:
            ledger.charge(dp_accounting.GaussianDpEvent(0.5), label="real")
        except PrivacyError:
            break
    assert ledger.spent() <= 10.0


def test_decoded_events_are_checked() -> None:
    text = '{"type":"SelfComposedDpEvent","count":-3,"event":{"type":"NoOpDpEvent"}}'
    with pytest.raises(PrivacyError, match="count must be an integer >= 1, got -3"):
        event_from_json(text)


@pytest.mark.parametrize(
    "release",
    [
        lambda lg: dp_sum([1.0, 2.0], -10, 10, 1.0, ledger=lg),
        lambda lg: dp_mean([1.0, 2.0], -10, 10, 1.0, ledger=lg),
        lambda lg: dp_count([1.0, 2.0], 1.0, ledger=lg),
        lambda lg: dp_histogram([1.0, 2.0], 2, 0, 4, 1.0, ledger=lg),
    ],
)
def test_statistics_refuse_a_replace_one_ledger(release) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(5.0, 1e-6, "rdp", neighboring_relation=NeighboringRelation.REPLACE_ONE)
    with pytest.raises(PrivacyError, match="ADD_OR_REMOVE_ONE"):
        release(ledger)
    assert ledger.history() == []


def test_mechanisms_that_cannot_sample_are_refused_when_built() -> None:
    with pytest.raises(PrivacyError, match=r"num_categories must be in \[2, 2\*\*31\]"):
        RandomizedResponse(1.0, num_categories=2**33)
    with pytest.raises(PrivacyError, match="sensitivity must be <= 2\\*\\*20"):
        DiscreteLaplaceMechanism(1.0, sensitivity=2**21)
    with pytest.raises(PrivacyError, match="sensitivity / epsilon must be <= 2\\*\\*50"):
        DiscreteLaplaceMechanism(1e-12, sensitivity=2**20)


@pytest.mark.parametrize("value", [2**70, 1e19, -1e19, np.uint64(2**63 + 5)])
def test_huge_integers_are_refused_not_wrapped(value: object) -> None:
    with pytest.raises(PrivacyError, match="integers in \\[-2\\*\\*62, 2\\*\\*62\\]"):
        DiscreteLaplaceMechanism(1.0).release(value)


def test_uniform_cells_never_reach_zero_or_one() -> None:
    extremes = _cell_midpoints(np.array([0, 2**52 - 1], dtype=np.uint64))
    assert extremes[0] > 0.0
    assert extremes[1] < 1.0
    assert np.all(np.isfinite(np.log(extremes)))
    assert np.all(np.isfinite(np.log1p(-extremes)))


@pytest.mark.parametrize("eps", [0.7, 3.0, 1 / 3, 0.1, 2.2])
@pytest.mark.parametrize("sensitivity", [1, 3, 7])
def test_discrete_laplace_never_states_less_than_it_spends(eps: float, sensitivity: int) -> None:
    mechanism = DiscreteLaplaceMechanism(eps, sensitivity)
    assert Fraction(mechanism.scale) >= Fraction(sensitivity) / Fraction(eps)
    stated = Fraction(mechanism.event.noise_parameter)
    assert stated >= 1 / Fraction(mechanism.scale)  # the drawn noise's true parameter
    assert float(stated) * sensitivity == pytest.approx(eps, rel=1e-15)


def _rewrite_header(path: Path, **changes: object) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        (text,) = conn.execute("SELECT value FROM meta WHERE key = 'header'").fetchone()
        header = json.loads(text) | changes
        conn.execute("UPDATE meta SET value = ? WHERE key = 'header'", (json.dumps(header),))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"accountant": "RDP"}, "ledger accountant must be one of"),
        ({"epsilon": 1e400}, "ledger epsilon budget must be finite"),
        ({"delta": 0.0}, r"ledger delta budget must be in \(0, 1\)"),
        ({"neighboring_relation": "swap"}, "ledger neighboring_relation must be one of"),
    ],
)
def test_a_tampered_header_is_refused_on_open(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(1.0, 1e-6, path=path).charge(GaussianMechanism(0.5, 1e-6).event, label="x")
    _rewrite_header(path, **changes)
    with pytest.raises(PrivacyError, match=message):
        Ledger.open(path)


def test_noise_search_tolerance_is_checked() -> None:
    with pytest.raises(PrivacyError, match="tolerance must be > 0, got 0"):
        noise_multiplier_for(1.0, 1e-5, 0.01, 10, tolerance=0)
