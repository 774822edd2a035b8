"""Tests for the exact discrete Laplace / discrete Gaussian samplers (privet.dp.exact).

Statistical tests use a fixed-seed ``GeneratorRandom(np.random.default_rng(SEED + offset))``
and a false-alarm rate of ``ALPHA = 1e-3`` per test, unless stated otherwise: with the
seeds fixed each test is deterministic, and a correct sampler would fail a given seed
with probability 1e-3. The one test against ``OsRandom()`` cannot be seeded; it uses
``ALPHA_OS = 1e-4`` so that it fails spuriously about once in 10,000 runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from scipy import stats

from privet.dp import exact
from privet.dp.exact import (
    bernoulli_exp,
    discrete_gaussian,
    discrete_gaussian_pmf,
    discrete_laplace,
    discrete_laplace_pmf,
)
from privet.dp.randomness import GeneratorRandom, OsRandom, RandomSource
from privet.errors import PrivacyError

SEED = 20_201_006
ALPHA = 1e-3
ALPHA_OS = 1e-4

Pmf = Callable[[np.ndarray], np.ndarray]


def _source(offset: int) -> GeneratorRandom:
    return GeneratorRandom(np.random.default_rng(SEED + offset))


def _laplace_pmf(scale: Any) -> Pmf:
    return lambda k: discrete_laplace_pmf(k, scale)


def _gaussian_pmf(sigma: Any) -> Pmf:
    return lambda k: discrete_gaussian_pmf(k, sigma)


def _bins(pmf: Pmf, n: int) -> tuple[int, np.ndarray]:
    """Centre ``[-h, h]`` with every cell expecting >= 5 of ``n``, and the probabilities.

    The returned probabilities are those of each k in ``[-h, h]`` followed by the pooled
    two-sided tail ``|k| > h``, which also expects >= 5.
    """
    support = np.arange(0, 100_000)
    h = int(np.flatnonzero(n * pmf(support) >= 5)[-1])
    while True:
        centre = pmf(np.arange(-h, h + 1))
        tail = 1.0 - centre.sum()
        if n * tail >= 5 or h == 0:
            return h, np.append(centre, max(tail, 0.0))
        h -= 1


def _binned_counts(samples: np.ndarray, h: int) -> np.ndarray:
    inside = np.bincount(samples[np.abs(samples) <= h] + h, minlength=2 * h + 1)
    return np.append(inside, np.count_nonzero(np.abs(samples) > h))


def _gof_pvalue(samples: np.ndarray, pmf: Pmf) -> float:
    """Chi-square goodness of fit of integer ``samples`` to ``pmf``, tails pooled."""
    n = samples.size
    h, probs = _bins(pmf, n)
    observed = _binned_counts(samples, h)
    if probs[-1] == 0.0:
        # A tail too thin to expect 5 counts must then hold none at all.
        assert observed[-1] == 0
        observed, probs = observed[:-1], probs[:-1]
    expected = n * probs / probs.sum()
    return float(stats.chisquare(observed, expected).pvalue)


def _two_sample_pvalue(a: np.ndarray, b: np.ndarray, pmf: Pmf) -> float:
    """Chi-square test that ``a`` and ``b`` share a distribution (cells from ``pmf``)."""
    h, _ = _bins(pmf, min(a.size, b.size))
    table = np.vstack([_binned_counts(a, h), _binned_counts(b, h)])
    table = table[:, table.sum(axis=0) > 0]
    return float(stats.chi2_contingency(table).pvalue)


def _tail_probability(pmf: Pmf, k: int, width: int) -> float:
    """P(|X| >= k), summed over ``k <= |x| < width``."""
    return 2.0 * float(pmf(np.arange(k, width)).sum())


def _pmf_moments(pmf: Pmf, width: int) -> tuple[float, float]:
    """Variance and fourth moment of a symmetric pmf on ``[-width, width]``."""
    k = np.arange(-width, width + 1)
    p = pmf(k)
    return float((p * k**2).sum()), float((p * k**4).sum())


def _assert_mean_variance(samples: np.ndarray, pmf: Pmf, width: int) -> None:
    """Mean and variance within 5 standard errors of the pmf's (false alarm < 1e-5)."""
    n = samples.size
    var, fourth = _pmf_moments(pmf, width)
    assert abs(samples.mean()) <= 5 * math.sqrt(var / n)
    assert abs(samples.var() - var) <= 5 * math.sqrt((fourth - var**2) / n)


LAPLACE_SCALES = [0.5, 1, 3.7]
GAUSSIAN_SIGMAS = [Fraction(3, 5), 1, 2.5, 10]


# ----------------------------------------------------------------------------
# Goodness of fit: vectorized path, scalar path, OS randomness
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", LAPLACE_SCALES)
def test_laplace_fast_path_fits_pmf(scale: Any) -> None:
    """200k fast-path draws; chi-square vs the closed-form pmf, alpha = 1e-3, seed SEED + 1."""
    assert exact._laplace_fits_int64(Fraction(scale))
    samples = discrete_laplace(scale, 200_000, _source(1))
    assert samples.dtype == np.int64
    assert _gof_pvalue(samples, _laplace_pmf(scale)) > ALPHA


@pytest.mark.parametrize("sigma", GAUSSIAN_SIGMAS)
def test_gaussian_fast_path_fits_pmf(sigma: Any) -> None:
    """200k fast-path draws; chi-square vs the summed pmf, alpha = 1e-3, seed SEED + 2."""
    assert exact._gaussian_fits_int64(Fraction(sigma) ** 2)
    samples = discrete_gaussian(sigma, 200_000, _source(2))
    assert samples.dtype == np.int64
    assert _gof_pvalue(samples, _gaussian_pmf(sigma)) > ALPHA


@pytest.mark.parametrize("sigma", [0.6, 1 / 0.3])
def test_gaussian_python_int_acceptance_fits_pmf(sigma: float) -> None:
    """Float sigmas too wide for int64: 50k draws, chi-square, alpha = 1e-3, seed SEED + 3."""
    assert not exact._gaussian_fits_int64(Fraction(sigma) ** 2)
    samples = discrete_gaussian(sigma, 50_000, _source(3))
    assert _gof_pvalue(samples, _gaussian_pmf(sigma)) > ALPHA


@pytest.mark.parametrize("scale", [0.5, 3.7])
def test_laplace_scalar_path_fits_pmf(scale: float) -> None:
    """20k scalar-path draws; chi-square, alpha = 1e-3, seed SEED + 4."""
    source = _source(4)
    samples = np.array(
        [exact._discrete_laplace_scalar(Fraction(scale), source) for _ in range(20_000)]
    )
    assert _gof_pvalue(samples, _laplace_pmf(scale)) > ALPHA


@pytest.mark.parametrize("sigma", [0.6, 2.5])
def test_gaussian_scalar_path_fits_pmf(sigma: float) -> None:
    """20k scalar-path draws; chi-square, alpha = 1e-3, seed SEED + 5."""
    source = _source(5)
    sigma_squared = Fraction(sigma) ** 2
    samples = np.array(
        [exact._discrete_gaussian_scalar(sigma_squared, source) for _ in range(20_000)]
    )
    assert _gof_pvalue(samples, _gaussian_pmf(sigma)) > ALPHA


def test_os_random_fits_pmf() -> None:
    """OsRandom is unseeded: 200k draws of each sampler, chi-square at alpha = 1e-4 each."""
    source = OsRandom()
    laplace = discrete_laplace(2.5, 200_000, source)
    assert _gof_pvalue(laplace, _laplace_pmf(2.5)) > ALPHA_OS
    gaussian = discrete_gaussian(Fraction(10, 3), 200_000, source)
    assert _gof_pvalue(gaussian, _gaussian_pmf(Fraction(10, 3))) > ALPHA_OS


# ----------------------------------------------------------------------------
# Tails
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "multiple"), [(2, 5), (2, 8), (Fraction(7, 3), 6)])
def test_laplace_tail_probability(scale: Any, multiple: int) -> None:
    """P(|X| >= multiple * scale) from 10**6 draws; binomial test, alpha = 1e-3, seed SEED + 6."""
    k = math.ceil(multiple * scale)
    samples = discrete_laplace(scale, 1_000_000, _source(6))
    p = _tail_probability(_laplace_pmf(scale), k, 100 * k)
    hits = int(np.count_nonzero(np.abs(samples) >= k))
    assert stats.binomtest(hits, samples.size, p).pvalue > ALPHA


@pytest.mark.parametrize(("sigma", "multiple"), [(Fraction(5, 2), 3), (Fraction(5, 2), 4), (10, 4)])
def test_gaussian_tail_probability(sigma: Any, multiple: int) -> None:
    """P(|X| >= multiple * sigma) from 10**6 draws; binomial test, alpha = 1e-3, seed SEED + 7."""
    k = math.ceil(multiple * sigma)
    samples = discrete_gaussian(sigma, 1_000_000, _source(7))
    p = _tail_probability(_gaussian_pmf(sigma), k, 100 * k)
    hits = int(np.count_nonzero(np.abs(samples) >= k))
    assert stats.binomtest(hits, samples.size, p).pvalue > ALPHA


# ----------------------------------------------------------------------------
# Fast path against the scalar reference; Bernoulli(exp(-gamma))
# ----------------------------------------------------------------------------


def test_laplace_fast_matches_scalar() -> None:
    """100k fast vs 20k scalar draws at scale 7/3; two-sample chi-square, alpha = 1e-3."""
    scale = Fraction(7, 3)
    fast = discrete_laplace(scale, 100_000, _source(8))
    source = _source(9)
    slow = np.array([exact._discrete_laplace_scalar(scale, source) for _ in range(20_000)])
    assert _two_sample_pvalue(fast, slow, _laplace_pmf(scale)) > ALPHA


def test_gaussian_fast_matches_scalar() -> None:
    """100k fast vs 20k scalar draws at sigma 7/3; two-sample chi-square, alpha = 1e-3."""
    sigma = Fraction(7, 3)
    fast = discrete_gaussian(sigma, 100_000, _source(10))
    source = _source(11)
    slow = np.array([exact._discrete_gaussian_scalar(sigma**2, source) for _ in range(20_000)])
    assert _two_sample_pvalue(fast, slow, _gaussian_pmf(sigma)) > ALPHA


@pytest.mark.parametrize("gamma", [0, 0.3, 1, 2.5, Fraction(7, 2)])
def test_bernoulli_exp_frequency(gamma: Any) -> None:
    """20k draws of bernoulli_exp(gamma); binomial test vs exp(-gamma), alpha = 1e-3."""
    source = _source(12)
    hits = sum(bernoulli_exp(gamma, source) for _ in range(20_000))
    p = math.exp(-float(gamma))
    if gamma == 0:
        assert hits == 20_000
    else:
        assert stats.binomtest(hits, 20_000, p).pvalue > ALPHA


@pytest.mark.parametrize(("num", "den"), [(0, 7), (3, 10), (1, 1), (5, 2), (37, 4), (2**61, 2**61)])
def test_bernoulli_exp_vectorized_frequency(num: int, den: int) -> None:
    """200k vectorized Bernoulli(exp(-num/den)); binomial test, alpha = 1e-3.

    den = 2**61 exercises the split draw Bernoulli(num/den) * Bernoulli(1/K) that keeps
    Algorithm 1 inside int64 once den * K > 2**62.
    """
    n = 200_000
    draws = exact._bernoulli_exp_vec(np.full(n, num, dtype=np.int64), den, _source(13))
    hits = int(draws.sum())
    if num == 0:
        assert hits == n
    else:
        assert stats.binomtest(hits, n, math.exp(-num / den)).pvalue > ALPHA


def test_laplace_vec_huge_numerator_branches() -> None:
    """The int64 path with t = 2**61 + 1, s = 2**60 (scale ~ 2): 50k draws, chi-square.

    Here t * V overflows for every V >= 1 and Algorithm 1 needs the split draw from
    K = 2 on, so the exact Python-int and split branches run on a large share of the
    draws. The scale differs from 2 by 2**-60, far below what 50k draws can see.
    """
    samples = exact._discrete_laplace_vec(2**61 + 1, 2**60, 50_000, _source(14))
    assert _gof_pvalue(samples, _laplace_pmf(2)) > ALPHA


def test_gaussian_vec_big_magnitude_branch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrinking the int64 square bound sends |Y| > 5 to the Python-int acceptance test.

    sigma = 5/2: p = 25, q = 4, t = 3, so a bound of 64 keeps |Y| <= 5 in int64.
    100k draws, chi-square, alpha = 1e-3, seed SEED + 15.
    """
    monkeypatch.setattr(exact, "_INT64_SQRT_BOUND", 64)
    samples = discrete_gaussian(Fraction(5, 2), 100_000, _source(15))
    assert np.count_nonzero(np.abs(samples) > 5) > 0
    assert _gof_pvalue(samples, _gaussian_pmf(2.5)) > ALPHA


# ----------------------------------------------------------------------------
# Exactness: float and Fraction inputs, path selection, big-number fallback
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampler", "as_float", "as_exact"),
    [
        (discrete_laplace, 2.5, Fraction(5, 2)),
        (discrete_laplace, 1 / 0.3, Fraction(1 / 0.3)),
        (discrete_laplace, np.float64(0.75), Fraction(3, 4)),
        (discrete_laplace, np.int64(3), 3),
        (discrete_gaussian, 2.5, Fraction(5, 2)),
        (discrete_gaussian, 0.6, Fraction(0.6)),
    ],
)
def test_float_and_equal_fraction_give_identical_draws(
    sampler: Callable[[Any, int, RandomSource], np.ndarray], as_float: Any, as_exact: Any
) -> None:
    """A float is taken at its exact value, so equal Fractions reproduce it draw for draw."""
    from_float = sampler(as_float, 5_000, _source(16))
    from_exact = sampler(as_exact, 5_000, _source(16))
    np.testing.assert_array_equal(from_float, from_exact)


def test_numpy_floats_are_converted_exactly() -> None:
    """np.longdouble is not rounded through float64 on the way to a Fraction."""
    third = np.longdouble(1) / np.longdouble(3)
    assert exact._exact_real("scale", third) == Fraction(*third.as_integer_ratio())
    assert exact._exact_real("scale", np.float32(0.1)) == Fraction(float(np.float32(0.1)))
    if np.finfo(np.longdouble).nmant > 52:
        assert exact._exact_real("scale", third) != Fraction(float(third))


def test_path_selection_helpers() -> None:
    assert exact._laplace_fits_int64(Fraction(5, 2))
    assert exact._laplace_fits_int64(Fraction(1 / 0.3))  # numerator < 2**53
    assert exact._laplace_fits_int64(Fraction(2**56, 3))
    assert not exact._laplace_fits_int64(Fraction(2**56 + 1, 3))
    assert not exact._laplace_fits_int64(Fraction(1, 2**62 + 1))
    assert not exact._laplace_fits_int64(Fraction(10**30 + 1, 10**30))
    assert exact._gaussian_fits_int64(Fraction(3, 5) ** 2)
    assert exact._gaussian_fits_int64(Fraction(10, 3) ** 2)
    assert exact._gaussian_fits_int64(Fraction(10_000) ** 2)
    assert not exact._gaussian_fits_int64(Fraction(20_000) ** 2)
    assert not exact._gaussian_fits_int64(Fraction(0.6) ** 2)


def _forbid(name: str) -> Callable[..., Any]:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{name} should not run on this path")

    return forbidden


def test_small_fractions_take_the_int64_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exact, "_discrete_laplace_scalar", _forbid("_discrete_laplace_scalar"))
    monkeypatch.setattr(exact, "_bernoulli_exp_int", _forbid("_bernoulli_exp_int"))
    assert discrete_laplace(Fraction(10, 3), 1_000, _source(17)).shape == (1_000,)
    assert discrete_gaussian(Fraction(10, 3), 1_000, _source(17)).shape == (1_000,)


def test_huge_laplace_fraction_uses_scalar_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """scale = 1 + 10**-30 cannot be int64: 20k scalar draws, mean and variance vs scale 1."""
    monkeypatch.setattr(exact, "_discrete_laplace_vec", _forbid("_discrete_laplace_vec"))
    samples = discrete_laplace(Fraction(10**30 + 1, 10**30), 20_000, _source(18))
    _assert_mean_variance(samples, _laplace_pmf(1), 200)


def test_huge_gaussian_fraction_uses_python_int_acceptance() -> None:
    """sigma = 1 + 10**-30: 20k draws, mean and variance vs sigma 1."""
    sigma = Fraction(10**30 + 1, 10**30)
    assert not exact._gaussian_fits_int64(sigma**2)
    samples = discrete_gaussian(sigma, 20_000, _source(19))
    _assert_mean_variance(samples, _gaussian_pmf(1), 200)


def test_extreme_but_valid_parameters() -> None:
    source = _source(20)
    # Tiny parameters: all the mass is at 0.
    assert np.all(discrete_laplace(1e-12, 100, source) == 0)
    assert np.all(discrete_gaussian(1e-12, 100, source) == 0)
    assert np.all(discrete_laplace(Fraction(1, 10**40), 100, source) == 0)
    # The largest allowed parameters still fit int64.
    assert discrete_laplace(2**50, 100, source).dtype == np.int64
    assert discrete_gaussian(2**50, 100, source).dtype == np.int64


def test_size_zero_and_integer_size_types() -> None:
    assert discrete_laplace(1, 0, _source(21)).shape == (0,)
    assert discrete_gaussian(1, 0, _source(21)).dtype == np.int64
    # Annotated int, but numpy integers are accepted at run time too.
    assert discrete_laplace(1, np.int64(3), _source(21)).shape == (3,)  # type: ignore[arg-type]


def test_out_of_range_sample_is_an_error_not_a_wrap() -> None:
    with pytest.raises(OverflowError, match="int64"):
        exact._to_int64([2**63])


# ----------------------------------------------------------------------------
# Reference pmfs
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.01, 0.5, 3.7, 100])
def test_laplace_pmf_sums_to_one(scale: float) -> None:
    k = np.arange(-200 * math.ceil(scale) - 100, 200 * math.ceil(scale) + 101)
    assert discrete_laplace_pmf(k, scale).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("sigma", [0.01, 0.6, 2.5, 100])
def test_gaussian_pmf_sums_to_one(sigma: float) -> None:
    k = np.arange(-50 * math.ceil(sigma) - 50, 50 * math.ceil(sigma) + 51)
    assert discrete_gaussian_pmf(k, sigma).sum() == pytest.approx(1.0, abs=1e-12)


def test_gaussian_pmf_normalizers_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Poisson-summation normalizer (used above sigma 25000) equals the direct sum."""
    direct = discrete_gaussian_pmf(np.arange(5), 3.0)
    monkeypatch.setattr(exact, "_DIRECT_SUM_MAX_SIGMA", 0.0)
    np.testing.assert_allclose(discrete_gaussian_pmf(np.arange(5), 3.0), direct, rtol=1e-13)
    assert discrete_gaussian_pmf(0, 1e6) == pytest.approx(1 / (1e6 * math.sqrt(2 * math.pi)))


# ----------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------

BAD_PARAMETERS = [
    (0, "must be > 0, got 0"),
    (-1, "must be > 0, got -1"),
    (-0.5, "must be > 0, got -0.5"),
    (Fraction(-1, 2), "must be > 0, got Fraction(-1, 2)"),
    (math.nan, "must be finite, got nan"),
    (math.inf, "must be finite, got inf"),
    (-math.inf, "must be finite, got -inf"),
    (2**51, "must be <= 2**50, got 2251799813685248"),
    ("1", "must be a real number, got '1'"),
    (None, "must be a real number, got None"),
    (True, "must be a real number, got True"),
]


@pytest.mark.parametrize(("value", "message"), BAD_PARAMETERS)
def test_bad_scale(value: Any, message: str) -> None:
    with pytest.raises(PrivacyError, match=f"^scale {re.escape(message)}$"):
        discrete_laplace(value, 10, _source(22))
    with pytest.raises(PrivacyError, match=f"^scale {re.escape(message)}$"):
        discrete_laplace_pmf(np.arange(3), value)


@pytest.mark.parametrize(("value", "message"), BAD_PARAMETERS)
def test_bad_sigma(value: Any, message: str) -> None:
    with pytest.raises(PrivacyError, match=f"^sigma {re.escape(message)}$"):
        discrete_gaussian(value, 10, _source(22))
    with pytest.raises(PrivacyError, match=f"^sigma {re.escape(message)}$"):
        discrete_gaussian_pmf(np.arange(3), value)


@pytest.mark.parametrize("size", [-1, 2.5, True, "3", None])
def test_bad_size(size: Any) -> None:
    message = f"^{re.escape(f'size must be an integer >= 0, got {size!r}')}$"
    with pytest.raises(PrivacyError, match=message):
        discrete_laplace(1.0, size, _source(23))
    with pytest.raises(PrivacyError, match=message):
        discrete_gaussian(1.0, size, _source(23))


@pytest.mark.parametrize(
    ("gamma", "message"), [(-1, "must be >= 0, got -1"), (math.nan, "must be finite, got nan")]
)
def test_bad_gamma(gamma: Any, message: str) -> None:
    with pytest.raises(PrivacyError, match=f"^gamma {re.escape(message)}$"):
        bernoulli_exp(gamma, _source(24))


def test_privacy_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="scale"):
        discrete_laplace(-1, 1, _source(25))
