"""Mechanisms: their events, and their samplers against the exact distributions.

Statistical tests use fixed seeds; each states its false-alarm rate (the chance
it fails for a correct sampler). Tests on the OS CSPRNG cannot be seeded, so
they use a false-alarm rate of 1e-6.
"""

from __future__ import annotations

import math
import warnings

import dp_accounting
import numpy as np
import pytest
from dp_accounting import dp_event
from scipy import stats

from privet import PrivacyError
from privet.dp import (
    DiscreteGaussianDpEvent,
    DiscreteGaussianMechanism,
    DiscreteLaplaceMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    Mechanism,
    OsRandom,
    RandomizedResponse,
    SeededRandomnessWarning,
    calibrate_gaussian,
    epsilon,
)
from privet.dp.exact import discrete_gaussian_pmf, discrete_laplace_pmf

N = 100_000


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_laplace_event_and_scale() -> None:
    mechanism = LaplaceMechanism(epsilon=0.5, sensitivity=3.0)
    assert mechanism.scale == 6.0
    assert mechanism.event == dp_accounting.LaplaceDpEvent(2.0)
    # The Laplace mechanism is 0.5-DP: PLD at a tiny delta says so.
    assert epsilon(mechanism.event, 1e-9) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("seed", [11, 12])
def test_laplace_noise_distribution(seed: int) -> None:
    """KS test against Laplace(0, b); seeded, false-alarm rate 1e-3 per seed."""
    mechanism = LaplaceMechanism(epsilon=0.7, sensitivity=2.0)
    noise = mechanism.release(np.zeros(N), rng=rng(seed))
    assert stats.kstest(noise, stats.laplace(scale=mechanism.scale).cdf).pvalue > 1e-3


def test_laplace_on_os_csprng() -> None:
    """KS test on the OS CSPRNG (unseeded): false-alarm rate 1e-6."""
    noise = LaplaceMechanism(epsilon=1.0).release(np.zeros(N))
    assert stats.kstest(noise, stats.laplace(scale=1.0).cdf).pvalue > 1e-6


def test_gaussian_uses_analytic_sigma_and_its_event() -> None:
    mechanism = GaussianMechanism(epsilon=1.0, delta=1e-5, sensitivity=2.0)
    assert mechanism.sigma == pytest.approx(calibrate_gaussian(1.0, 1e-5, 2.0))
    assert mechanism.event == dp_accounting.GaussianDpEvent(mechanism.sigma / 2.0)
    # The accountant agrees the analytic calibration spends (1, 1e-5), up to PLD's grid.
    assert epsilon(mechanism.event, 1e-5) == pytest.approx(1.0, abs=2e-3)


def test_gaussian_classic_calibration() -> None:
    classic = GaussianMechanism(epsilon=0.5, delta=1e-5, calibration="classic")
    analytic = GaussianMechanism(epsilon=0.5, delta=1e-5)
    assert classic.sigma > analytic.sigma
    with pytest.raises(PrivacyError, match="calibration must be one of"):
        GaussianMechanism(epsilon=0.5, delta=1e-5, calibration="optimal")  # type: ignore[arg-type]


@pytest.mark.parametrize("source", ["seeded", "os"])
def test_gaussian_noise_distribution(source: str) -> None:
    """KS test against N(0, sigma^2): seeded (rate 1e-3) and OS CSPRNG (rate 1e-6)."""
    mechanism = GaussianMechanism(epsilon=1.0, delta=1e-6)
    generator = rng(5) if source == "seeded" else None
    noise = mechanism.release(np.zeros(N), rng=generator)
    threshold = 1e-3 if source == "seeded" else 1e-6
    assert stats.kstest(noise, stats.norm(scale=mechanism.sigma).cdf).pvalue > threshold


def _chi_square_against_pmf(samples: np.ndarray, pmf: np.ndarray, support: np.ndarray) -> float:
    """p-value of a chi-square test, tails pooled into the edge cells."""
    clipped = np.clip(samples, support[0], support[-1])
    observed = np.array([(clipped == k).sum() for k in support])
    expected = pmf * samples.size
    expected[0] += samples.size * (1 - pmf.sum()) / 2
    expected[-1] += samples.size * (1 - pmf.sum()) / 2
    return float(stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue)


def test_discrete_laplace_mechanism_distribution_and_event() -> None:
    """Chi-square of the noise against the exact pmf; seed 3, false-alarm rate 1e-3."""
    mechanism = DiscreteLaplaceMechanism(epsilon=0.5, sensitivity=2)
    assert mechanism.event == dp_event.DiscreteLaplaceDpEvent(0.25, 2)
    noise = mechanism.release(np.zeros(N, dtype=np.int64), rng=rng(3))
    assert noise.dtype.kind == "i"
    support = np.arange(-20, 21)
    pmf = discrete_laplace_pmf(support, mechanism.scale)
    assert _chi_square_against_pmf(noise, pmf, support) > 1e-3


def test_discrete_gaussian_mechanism_distribution_and_event() -> None:
    """Chi-square of the noise against the exact pmf; seed 4, false-alarm rate 1e-3."""
    mechanism = DiscreteGaussianMechanism(sigma=2.5)
    assert mechanism.event == DiscreteGaussianDpEvent(2.5, 1)
    noise = mechanism.release(np.zeros(N, dtype=np.int64), rng=rng(4))
    support = np.arange(-10, 11)
    assert _chi_square_against_pmf(noise, discrete_gaussian_pmf(support, 2.5), support) > 1e-3


def test_integer_mechanisms_refuse_fractional_values() -> None:
    with pytest.raises(PrivacyError, match="must contain only integers"):
        DiscreteLaplaceMechanism(1.0).release(np.array([1.5]))
    with pytest.raises(PrivacyError, match="sensitivity must be an integer >= 1"):
        DiscreteLaplaceMechanism(1.0, sensitivity=1.5)  # type: ignore[arg-type]


def test_scalar_in_scalar_out_and_shape_preserved() -> None:
    generator = rng(0)
    assert isinstance(LaplaceMechanism(1.0).release(3.0, rng=generator), float)
    assert isinstance(DiscreteLaplaceMechanism(1.0).release(3, rng=generator), int)
    assert LaplaceMechanism(1.0).release(np.zeros((3, 4)), rng=generator).shape == (3, 4)


@pytest.mark.parametrize(("eps", "k"), [(0.5, 2), (1.0, 2), (2.0, 5), (0.3, 10)])
def test_randomized_response_keep_rate(eps: float, k: int) -> None:
    """Binomial test of the keep rate e^eps/(e^eps+k-1); seed 7, false-alarm rate 1e-3.

    Also checks the event is dp-accounting's: flipping with probability p to a
    uniform category keeps the truth with probability 1 - p + p/k.
    """
    mechanism = RandomizedResponse(eps, k)
    truth = rng(1).integers(0, k, N)
    reports = mechanism.release(truth, rng=rng(7))
    kept = int((reports == truth).sum())
    p_keep = math.exp(eps) / (math.exp(eps) + k - 1)
    assert stats.binomtest(kept, N, p_keep).pvalue > 1e-3
    p = mechanism.flip_probability
    assert 1 - p + p / k == pytest.approx(p_keep, rel=1e-8)
    # Other categories are equally likely.
    wrong = (reports[reports != truth] - truth[reports != truth]) % k
    if k > 2:
        counts = np.bincount(wrong, minlength=k)[1:]
        assert stats.chisquare(counts).pvalue > 1e-3


def test_randomized_response_event_is_epsilon_dp_under_replace_one() -> None:
    from privet.dp import NeighboringRelation

    mechanism = RandomizedResponse(1.0, 4)
    spent = epsilon(mechanism.event, 1e-12, neighboring_relation=NeighboringRelation.REPLACE_ONE)
    assert spent == pytest.approx(1.0, abs=1e-3)
    assert spent <= 1.0 + 1e-4  # the rounding of e^eps goes the safe way


def test_randomized_response_frequency_estimates_are_unbiased() -> None:
    """Estimates within 5 standard errors of the truth (false-alarm rate < 1e-6); seed 9."""
    mechanism = RandomizedResponse(1.0, 3)
    truth = np.repeat([0, 1, 2], [50_000, 30_000, 20_000])
    estimate = mechanism.estimate_frequencies(mechanism.release(truth, rng=rng(9)))
    assert estimate == pytest.approx([0.5, 0.3, 0.2], abs=5 * 0.006)


def test_randomized_response_validates_categories() -> None:
    with pytest.raises(PrivacyError, match=r"categories in \[0, 2\], got 3"):
        RandomizedResponse(1.0, 3).release(np.array([0, 3]))
    with pytest.raises(PrivacyError, match=r"num_categories must be in \[2, 2\*\*31\], got 1"):
        RandomizedResponse(1.0, 1)
    with pytest.raises(PrivacyError, match="epsilon must be <= 20"):
        RandomizedResponse(25.0)


def test_mechanisms_satisfy_the_protocol() -> None:
    for mechanism in (
        LaplaceMechanism(1.0),
        GaussianMechanism(1.0, 1e-5),
        DiscreteLaplaceMechanism(1.0),
        DiscreteGaussianMechanism(1.0),
        RandomizedResponse(1.0),
    ):
        assert isinstance(mechanism, Mechanism)


def test_seeded_generator_warns_for_a_release() -> None:
    with pytest.warns(SeededRandomnessWarning, match="rng=None"):
        LaplaceMechanism(1.0).release(0.0, rng=rng(0))


def test_default_and_explicit_csprng_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LaplaceMechanism(1.0).release(0.0)
        LaplaceMechanism(1.0).release(0.0, rng=OsRandom())


def test_release_refuses_non_finite_values() -> None:
    with pytest.raises(PrivacyError, match="value must contain only finite values, got nan"):
        LaplaceMechanism(1.0).release(np.array([1.0, np.nan]))


@pytest.mark.parametrize("sigma", [0.6, 1 / 0.3, 3.7306316385475693, 100.123, 4999.9])
def test_discrete_gaussian_rounds_sigma_up_slightly_onto_the_int64_path(sigma: float) -> None:
    from fractions import Fraction

    from privet.dp.exact import _gaussian_fits_int64, round_sigma_up

    mechanism = DiscreteGaussianMechanism(sigma)
    rounded = round_sigma_up(sigma)
    assert Fraction(sigma) <= rounded
    assert float(rounded) / sigma - 1 <= 5e-4
    assert _gaussian_fits_int64(rounded * rounded)
    # The event states the noise actually drawn, never more.
    assert Fraction(mechanism.effective_sigma) <= rounded
    assert mechanism.event == DiscreteGaussianDpEvent(mechanism.effective_sigma, 1)


def test_discrete_gaussian_with_a_float_sigma_samples_its_rounded_law() -> None:
    """Chi-square against the pmf of the effective sigma; seed 8, false-alarm rate 1e-3."""
    mechanism = DiscreteGaussianMechanism(sigma=0.6)
    noise = mechanism.release(np.zeros(N, dtype=np.int64), rng=rng(8))
    support = np.arange(-4, 5)
    pmf = discrete_gaussian_pmf(support, mechanism.effective_sigma)
    assert _chi_square_against_pmf(noise, pmf, support) > 1e-3
