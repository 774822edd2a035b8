"""Noise calibration against an independent root-finding of Balle & Wang's condition.

Balle & Wang, "Improving the Gaussian Mechanism for Differential Privacy:
Analytical Calibration and Optimal Denoising", ICML 2018, Theorem 8: the
Gaussian mechanism with noise sigma on a query of L2 sensitivity D is
(eps, delta)-DP iff
    Phi(D/(2 sigma) - eps sigma / D) - e^eps Phi(-D/(2 sigma) - eps sigma / D) <= delta.
"""

from __future__ import annotations

import math

import pytest
from scipy import optimize, special

from privet import PrivacyError
from privet.dp import calibrate_gaussian, classic_gaussian_sigma, laplace_scale


def balle_wang_delta(sigma: float, eps: float, sensitivity: float) -> float:
    a = sensitivity / (2 * sigma)
    b = eps * sigma / sensitivity
    # log-space for the second term: e^eps * Phi(-a - b) underflows/overflows separately.
    second = math.exp(eps + special.log_ndtr(-a - b))
    return float(special.ndtr(a - b) - second)


def independent_sigma(eps: float, delta: float, sensitivity: float) -> float:
    return float(
        optimize.brentq(
            lambda s: balle_wang_delta(s, eps, sensitivity) - delta,
            1e-3 * sensitivity,
            1e4 * sensitivity,
            xtol=1e-14,
            rtol=1e-14,
        )
    )


@pytest.mark.parametrize("eps", [0.05, 0.5, 1.0, 3.0, 10.0])
@pytest.mark.parametrize("delta", [1e-3, 1e-6, 1e-10])
@pytest.mark.parametrize("sensitivity", [1.0, 0.25, 7.0])
def test_analytic_sigma_matches_independent_root(
    eps: float, delta: float, sensitivity: float
) -> None:
    sigma = calibrate_gaussian(eps, delta, sensitivity)
    reference = independent_sigma(eps, delta, sensitivity)
    assert sigma == pytest.approx(reference, rel=1e-7)
    # Never undershoot: the returned sigma satisfies the condition.
    assert balle_wang_delta(sigma, eps, sensitivity) <= delta * (1 + 1e-9)


def test_analytic_beats_classic_where_classic_applies() -> None:
    for eps in (0.1, 0.5, 0.9):
        assert calibrate_gaussian(eps, 1e-5) < classic_gaussian_sigma(eps, 1e-5)


def test_classic_formula_and_range() -> None:
    assert classic_gaussian_sigma(0.5, 1e-5, 2.0) == pytest.approx(
        2.0 * math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    )
    with pytest.raises(PrivacyError, match="epsilon must be < 1 for the classic"):
        classic_gaussian_sigma(1.0, 1e-5)


def test_laplace_scale() -> None:
    assert laplace_scale(0.5, 3.0) == 6.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0, 1e-5), "epsilon must be > 0, got 0.0"),
        ((-1.0, 1e-5), "epsilon must be > 0, got -1.0"),
        ((float("nan"), 1e-5), "epsilon must be finite"),
        ((1.0, 0.0), r"delta must be in \(0, 1\), got 0.0"),
        ((1.0, 1.0), r"delta must be in \(0, 1\), got 1.0"),
        ((1.0, 1e-5, 0.0), "sensitivity must be > 0, got 0.0"),
    ],
)
def test_calibrate_gaussian_rejects_bad_input(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        calibrate_gaussian(*args)
