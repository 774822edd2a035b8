"""Noise calibration: from an (epsilon, delta) target to a noise scale."""

from __future__ import annotations

import math

import dp_accounting

from privet.dp._validation import check_delta, check_epsilon, check_positive
from privet.errors import PrivacyError

__all__ = ["calibrate_gaussian", "classic_gaussian_sigma", "laplace_scale"]

# Brent's root is within this of the analytic sigma; it is then nudged upwards.
_ROOT_TOLERANCE = 1e-12


def calibrate_gaussian(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """The analytic Gaussian mechanism's noise standard deviation.

    The smallest ``sigma`` such that adding N(0, sigma^2) to a query of L2
    sensitivity ``sensitivity`` is (epsilon, delta)-DP, from the exact
    condition of Balle & Wang, "Improving the Gaussian Mechanism for
    Differential Privacy", ICML 2018 (Theorem 8), solved by dp-accounting's
    ``get_sigma_gaussian``. Unlike the classic calibration it holds for any
    epsilon > 0.

    Parameters
    ----------
    epsilon
        Target epsilon (> 0).
    delta
        Target delta in (0, 1).
    sensitivity
        L2 sensitivity of the query (> 0).

    Returns
    -------
    float
        The noise standard deviation, rounded up by at most one part in 10^9.
    """
    eps = check_epsilon(epsilon)
    dlt = check_delta(delta, allow_zero=False)
    l2 = check_positive("sensitivity", sensitivity)
    unit_sigma = dp_accounting.get_sigma_gaussian(eps, dlt, tol=_ROOT_TOLERANCE)
    # Round up so the returned sigma never undershoots the exact root.
    return float((unit_sigma + _ROOT_TOLERANCE) * (1.0 + 1e-9) * l2)


def classic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """The classic Gaussian calibration ``sensitivity * sqrt(2 ln(1.25 / delta)) / epsilon``.

    Dwork & Roth, "The Algorithmic Foundations of Differential Privacy" (2014),
    Theorem A.1, which only holds for epsilon < 1; larger epsilon is refused.
    """
    eps = check_epsilon(epsilon)
    if eps >= 1:
        raise PrivacyError(
            f"epsilon must be < 1 for the classic Gaussian calibration, got {epsilon!r}; "
            "use calibrate_gaussian (analytic) instead"
        )
    dlt = check_delta(delta, allow_zero=False)
    l2 = check_positive("sensitivity", sensitivity)
    return l2 * math.sqrt(2.0 * math.log(1.25 / dlt)) / eps


def laplace_scale(epsilon: float, sensitivity: float = 1.0) -> float:
    """The Laplace mechanism's scale ``sensitivity / epsilon`` (Dwork et al. 2006)."""
    return check_positive("sensitivity", sensitivity) / check_epsilon(epsilon)
