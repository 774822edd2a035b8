"""Private selection: exact probabilities, fast path against the slow oracle.

Seeded chi-square tests, each with false-alarm rate 1e-3.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from privet import PrivacyError
from privet.dp import ExponentialMechanism, PermuteAndFlip, PureDpEvent, ReportNoisyMax

UTILITIES = np.array([0.0, 1.0, 2.0, 4.0, 4.0, 1.5])
DRAWS = 20_000


def frequencies(select, draws: int, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    generator = np.random.default_rng(seed)
    picks = [select(UTILITIES, generator) for _ in range(draws)]
    return np.bincount(picks, minlength=UTILITIES.size)


@pytest.mark.parametrize("monotonic", [False, True])
def test_exponential_mechanism_matches_its_probabilities(monotonic: bool) -> None:
    mechanism = ExponentialMechanism(epsilon=1.0, sensitivity=1.0, monotonic=monotonic)
    expected = np.exp(UTILITIES * (1.0 if monotonic else 0.5))
    expected /= expected.sum()
    assert mechanism.probabilities(UTILITIES) == pytest.approx(expected)
    observed = frequencies(lambda u, g: mechanism.release(u, rng=g), DRAWS, seed=21)
    assert stats.chisquare(observed, expected * DRAWS).pvalue > 1e-3


def permute_and_flip_probabilities(utilities: np.ndarray, scale: float) -> np.ndarray:
    """Exact selection probabilities of permute-and-flip by enumerating orders (small n)."""
    from itertools import permutations

    accept = np.exp(scale * (utilities - utilities.max()))
    probabilities = np.zeros(utilities.size)
    orders = list(permutations(range(utilities.size)))
    for order in orders:
        reach = 1.0
        for candidate in order:
            probabilities[candidate] += reach * accept[candidate]
            reach *= 1 - accept[candidate]
    return probabilities / len(orders)


def test_permute_and_flip_fast_path_matches_enumeration_and_oracle() -> None:
    mechanism = PermuteAndFlip(epsilon=1.0)
    exact = permute_and_flip_probabilities(UTILITIES, scale=0.5)
    fast = frequencies(lambda u, g: mechanism.release(u, rng=g), DRAWS, seed=22)
    slow = frequencies(lambda u, g: mechanism.release_by_flipping(u, rng=g), DRAWS, seed=23)
    assert stats.chisquare(fast, exact * DRAWS).pvalue > 1e-3
    assert stats.chisquare(slow, exact * DRAWS).pvalue > 1e-3


def test_permute_and_flip_is_never_worse_than_exponential() -> None:
    # McKenna & Sheldon 2020, Thm 2: expected utility of PF >= that of EM.
    em = ExponentialMechanism(1.0).probabilities(UTILITIES) @ UTILITIES
    pf = permute_and_flip_probabilities(UTILITIES, scale=0.5) @ UTILITIES
    assert pf >= em


def test_report_noisy_max_prefers_the_best() -> None:
    """At epsilon=20 the two best candidates (4.0) win nearly always; seed 24."""
    mechanism = ReportNoisyMax(epsilon=20.0)
    observed = frequencies(lambda u, g: mechanism.release(u, rng=g), 2000, seed=24)
    assert observed[3] + observed[4] >= 1990
    # Symmetric between tied candidates: binomial test, false-alarm rate 1e-3.
    assert stats.binomtest(int(observed[3]), int(observed[3] + observed[4])).pvalue > 1e-3


@pytest.mark.parametrize("cls", [ExponentialMechanism, PermuteAndFlip, ReportNoisyMax])
def test_selection_event_and_validation(cls: type) -> None:
    mechanism = cls(epsilon=0.3, sensitivity=2.0)
    assert mechanism.event == PureDpEvent(0.3)
    with pytest.raises(PrivacyError, match="utilities must be a non-empty 1-D array"):
        mechanism.release(np.array([]))
    with pytest.raises(PrivacyError, match="utilities must contain only finite values"):
        mechanism.release(np.array([1.0, np.inf]))
    with pytest.raises(PrivacyError, match="epsilon must be > 0, got -1"):
        cls(epsilon=-1)
