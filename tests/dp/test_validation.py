"""Every public function of privet.dp rejects bad privacy parameters the same way.

One sweep (STYLE.md §12): for each entry point, epsilon <= 0, NaN and infinity,
delta outside its range and inverted bounds raise PrivacyError with a message
naming the parameter and the value. Hypothesis generates the bad values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import dp_accounting
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privet import PrivacyError
from privet.dp import (
    DiscreteLaplaceMechanism,
    ExponentialMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    Ledger,
    PermuteAndFlip,
    RandomizedResponse,
    ReportNoisyMax,
    calibrate_gaussian,
    classic_gaussian_sigma,
    delta,
    dp_count,
    dp_histogram,
    dp_mean,
    dp_quantile,
    dp_quantiles,
    dp_sum,
    dp_variance,
    dpsgd_event,
    epsilon,
    laplace_scale,
    noise_multiplier_for,
)

DATA = np.linspace(0, 1, 50)
GAUSS = dp_accounting.GaussianDpEvent(1.0)

# Each entry takes epsilon and returns nothing; it must validate epsilon first.
TAKES_EPSILON: dict[str, Callable[[Any], Any]] = {
    "LaplaceMechanism": lambda e: LaplaceMechanism(e),
    "GaussianMechanism": lambda e: GaussianMechanism(e, 1e-5),
    "DiscreteLaplaceMechanism": lambda e: DiscreteLaplaceMechanism(e),
    "RandomizedResponse": lambda e: RandomizedResponse(e),
    "ExponentialMechanism": lambda e: ExponentialMechanism(e),
    "PermuteAndFlip": lambda e: PermuteAndFlip(e),
    "ReportNoisyMax": lambda e: ReportNoisyMax(e),
    "calibrate_gaussian": lambda e: calibrate_gaussian(e, 1e-5),
    "classic_gaussian_sigma": lambda e: classic_gaussian_sigma(e, 1e-5),
    "laplace_scale": lambda e: laplace_scale(e),
    "delta": lambda e: delta(GAUSS, e),
    "noise_multiplier_for": lambda e: noise_multiplier_for(e, 1e-5, 0.01, 10),
    "Ledger": lambda e: Ledger(e, 1e-6),
    "dp_count": lambda e: dp_count(DATA, e),
    "dp_sum": lambda e: dp_sum(DATA, 0, 1, e),
    "dp_mean": lambda e: dp_mean(DATA, 0, 1, e),
    "dp_variance": lambda e: dp_variance(DATA, 0, 1, e),
    "dp_quantile": lambda e: dp_quantile(DATA, 0.5, 0, 1, e),
    "dp_quantiles": lambda e: dp_quantiles(DATA, [0.5], 0, 1, e),
    "dp_histogram": lambda e: dp_histogram(DATA, 4, 0, 1, e),
}

TAKES_DELTA: dict[str, Callable[[Any], Any]] = {
    "epsilon": lambda d: epsilon(GAUSS, d),
    "GaussianMechanism": lambda d: GaussianMechanism(1.0, d),
    "calibrate_gaussian": lambda d: calibrate_gaussian(1.0, d),
    "noise_multiplier_for": lambda d: noise_multiplier_for(1.0, d, 0.01, 10),
    "Ledger": lambda d: Ledger(1.0, d),
}

TAKES_BOUNDS: dict[str, Callable[[Any, Any], Any]] = {
    "dp_sum": lambda lo, hi: dp_sum(DATA, lo, hi, 1.0),
    "dp_mean": lambda lo, hi: dp_mean(DATA, lo, hi, 1.0),
    "dp_variance": lambda lo, hi: dp_variance(DATA, lo, hi, 1.0),
    "dp_quantile": lambda lo, hi: dp_quantile(DATA, 0.5, lo, hi, 1.0),
    "dp_quantiles": lambda lo, hi: dp_quantiles(DATA, [0.5], lo, hi, 1.0),
    "dp_histogram": lambda lo, hi: dp_histogram(DATA, 3, lo, hi, 1.0),
}

bad_epsilons = st.one_of(
    st.floats(max_value=0.0, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1]),
)
bad_deltas = st.one_of(
    st.floats(max_value=-1e-300, allow_nan=False),
    st.floats(min_value=1.0),
    st.sampled_from([math.nan, math.inf, 1, 2]),
)


@pytest.mark.parametrize("name", sorted(TAKES_EPSILON))
@settings(max_examples=25, deadline=None)
@given(value=bad_epsilons)
def test_bad_epsilon_is_refused(name: str, value: float) -> None:
    with pytest.raises(PrivacyError, match=r"epsilon must be (> 0|finite|a real number)"):
        TAKES_EPSILON[name](value)


@pytest.mark.parametrize("name", sorted(TAKES_DELTA))
@settings(max_examples=25, deadline=None)
@given(value=bad_deltas)
def test_bad_delta_is_refused(name: str, value: float) -> None:
    with pytest.raises(PrivacyError, match=r"delta must be (in \[0, 1\)|in \(0, 1\)|finite)"):
        TAKES_DELTA[name](value)


@pytest.mark.parametrize("name", sorted(TAKES_BOUNDS))
@settings(max_examples=25, deadline=None)
@given(
    lower=st.floats(-1e6, 1e6, allow_nan=False),
    gap=st.floats(0.0, 1e6, allow_nan=False),
)
def test_inverted_bounds_are_refused(name: str, lower: float, gap: float) -> None:
    with pytest.raises(PrivacyError, match="bounds must satisfy lower < upper"):
        TAKES_BOUNDS[name](lower + gap, lower)


@pytest.mark.parametrize("name", sorted(TAKES_BOUNDS))
def test_non_finite_bounds_are_refused(name: str) -> None:
    with pytest.raises(PrivacyError, match=r"(lower|upper) must be finite"):
        TAKES_BOUNDS[name](-math.inf, 1.0)
    with pytest.raises(PrivacyError, match=r"(lower|upper) must be finite"):
        TAKES_BOUNDS[name](0.0, math.nan)


def test_error_message_names_value_and_range() -> None:
    with pytest.raises(PrivacyError) as info:
        LaplaceMechanism(-1)
    assert str(info.value) == "epsilon must be > 0, got -1"
    with pytest.raises(PrivacyError) as info:
        epsilon(GAUSS, 1.5)
    assert str(info.value) == "delta must be in [0, 1), got 1.5"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0, 0.1, 10), "noise_multiplier must be > 0, got 0.0"),
        ((1.0, 0.0, 10), r"sample_rate must be in \(0, 1\], got 0.0"),
        ((1.0, 1.5, 10), r"sample_rate must be in \(0, 1\], got 1.5"),
        ((1.0, 0.1, 0), "steps must be an integer >= 1, got 0"),
        ((1.0, 0.1, 2.5), "steps must be an integer >= 1, got 2.5"),
    ],
)
def test_dpsgd_event_rejects_bad_input(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        dpsgd_event(*args)


def test_privacy_error_is_a_value_error() -> None:
    assert issubclass(PrivacyError, ValueError)
