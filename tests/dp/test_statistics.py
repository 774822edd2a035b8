"""DP statistics: correct on average, charged as the right events, clipped as documented.

Seeded statistical checks; tolerances are several standard errors of the noise
(false-alarm rate below 1e-4 each unless stated).
"""

from __future__ import annotations

import dp_accounting
import numpy as np
import pytest

from privet import PrivacyError
from privet.dp import (
    Ledger,
    PureDpEvent,
    dp_count,
    dp_histogram,
    dp_mean,
    dp_quantile,
    dp_quantiles,
    dp_sum,
    dp_variance,
    epsilon,
)

DATA = np.random.default_rng(100).normal(50.0, 10.0, 5_000)


def generator(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_count_is_unbiased_and_integer() -> None:
    """Mean of 2000 noisy counts (noise sd sqrt(2)/eps) within 6 standard errors; seed 1."""
    g = generator(1)
    counts = np.array([dp_count(DATA, 0.5, rng=g) for _ in range(2000)])
    assert counts.dtype.kind == "i"
    standard_error = np.sqrt(2) / 0.5 / np.sqrt(2000)
    assert abs(counts.mean() - DATA.size) < 6 * standard_error


def test_sum_clips_and_adds_laplace_noise() -> None:
    g = generator(2)
    values = np.array([-5.0, 1.0, 2.0, 50.0])
    sums = np.array([dp_sum(values, 0.0, 10.0, 1.0, rng=g) for _ in range(4000)])
    # Clipped sum is 0 + 1 + 2 + 10 = 13; noise Laplace(10): sd 10 sqrt 2.
    assert abs(sums.mean() - 13.0) < 6 * 10 * np.sqrt(2) / np.sqrt(4000)
    assert sums.std() == pytest.approx(10 * np.sqrt(2), rel=0.1)


def test_mean_and_variance_are_accurate_on_large_data() -> None:
    g = generator(3)
    big = generator(4).uniform(0, 100, 200_000)
    assert dp_mean(big, 0, 100, 1.0, rng=g) == pytest.approx(big.mean(), abs=0.5)
    assert dp_variance(big, 0, 100, 1.0, rng=g) == pytest.approx(big.var(), rel=0.05)


def test_mean_and_variance_stay_in_their_ranges() -> None:
    g = generator(5)
    tiny = np.array([1.0, 2.0])
    for _ in range(200):
        assert 0.0 <= dp_mean(tiny, 0, 10, 0.01, rng=g) <= 10.0
        assert 0.0 <= dp_variance(tiny, 0, 10, 0.01, rng=g) <= 25.0


def test_quantile_close_to_truth_and_within_bounds() -> None:
    g = generator(6)
    median = dp_quantile(DATA, 0.5, 0, 100, 1.0, rng=g)
    assert isinstance(median, float)
    assert median == pytest.approx(np.median(DATA), abs=1.0)
    quartiles = dp_quantiles(DATA, [0.25, 0.75], 0, 100, 2.0, rng=g)
    assert quartiles == pytest.approx(np.quantile(DATA, [0.25, 0.75]), abs=1.5)
    for _ in range(100):
        assert 10 <= dp_quantile(DATA, 0.9, 10, 20, 0.1, rng=g) <= 20


def test_histogram_counts_and_edges() -> None:
    g = generator(7)
    counts, edges = dp_histogram(DATA, 10, 0, 100, 5.0, rng=g)
    true_counts, true_edges = np.histogram(np.clip(DATA, 0, 100), bins=10, range=(0, 100))
    assert np.array_equal(edges, true_edges)
    assert counts.dtype.kind == "i"
    assert np.abs(counts - true_counts).max() < 10  # Laplace(0.2) noise: P(|z| >= 10) ~ 1e-21


@pytest.mark.parametrize(
    ("release", "expected_events"),
    [
        (
            lambda lg: dp_count(DATA, 0.3, ledger=lg),
            [dp_accounting.dp_event.DiscreteLaplaceDpEvent(0.3, 1)],
        ),
        (lambda lg: dp_sum(DATA, 0, 100, 0.3, ledger=lg), [dp_accounting.LaplaceDpEvent(1 / 0.3)]),
        (lambda lg: dp_quantiles(DATA, [0.1, 0.9], 0, 100, 0.4, ledger=lg), [PureDpEvent(0.2)] * 2),
    ],
)
def test_statistics_charge_their_events(release, expected_events) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(10.0, 1e-6)
    release(ledger)
    (charge,) = ledger.history()
    assert ledger.spent() == pytest.approx(epsilon(expected_events, 1e-6), rel=1e-9)
    assert charge.epsilon_after == pytest.approx(ledger.spent())


@pytest.mark.parametrize("eps", [0.3, 0.9])
def test_mean_and_variance_spend_their_epsilon(eps: float) -> None:
    for release in (dp_mean, dp_variance):
        ledger = Ledger(10.0, 1e-9)
        release(DATA, 0, 100, eps, ledger=ledger)
        # Pure-DP pieces summing to eps; PLD at delta=1e-9 is within its grid of eps.
        assert ledger.spent() == pytest.approx(eps, abs=5e-3)
        assert ledger.spent() <= eps + 5e-3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dp_mean(DATA, 10, 0, 1.0), "bounds must satisfy lower < upper"),
        (lambda: dp_sum(DATA, 0, float("inf"), 1.0), "upper must be finite"),
        (lambda: dp_count(DATA, 0.0), "epsilon must be > 0, got 0.0"),
        (lambda: dp_quantile(DATA, 1.5, 0, 1, 1.0), r"q must be in \[0, 1\], got 1.5"),
        (lambda: dp_quantiles(DATA, [], 0, 1, 1.0), "non-empty sequence of quantile levels"),
        (lambda: dp_histogram(DATA, 0, 0, 1, 1.0), "bins must be an integer >= 1, got 0"),
        (lambda: dp_mean(np.ones((2, 2)), 0, 1, 1.0), "1-D array"),
        (lambda: dp_mean([1.0, np.nan], 0, 1, 1.0), "finite"),
        (lambda: dp_mean(DATA, 0, 1, 1.0, ledger="ledger"), "ledger must be a privet.dp.Ledger"),  # type: ignore[arg-type]
    ],
)
def test_statistics_reject_bad_input(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PrivacyError, match=message):
        call()
