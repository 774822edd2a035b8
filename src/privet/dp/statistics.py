"""Differentially private statistics of a numeric column, with explicit bounds.

Contribution bounding
---------------------
Each function assumes **one row per individual** and the add-or-remove-one
neighbouring relation. Values are clipped to the caller's ``[lower, upper]``
before anything is computed, which is what bounds one individual's influence
(the sensitivity). The bounds must come from domain knowledge, never from the
data: bounds computed from the data leak it, so there is no default. Clipping
biases results when real values fall outside the bounds; choose them wide
enough to hold the data and no wider than needed, since noise grows with them.

Each function takes ``ledger`` (charged once, with the composition of every
mechanism it uses, *before* any noise is drawn — a refusal releases nothing)
and ``rng`` (``None``: the OS CSPRNG). **Without a ledger nothing accounts for
the release**: the caller must then compose the cost themselves.

Counts and histograms use the exact discrete Laplace sampler; sums, means and
variances use floating-point Laplace noise; quantiles use the exponential
mechanism over the gaps between sorted values (Smith 2011).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dp_accounting
import numpy as np

from privet.dp._validation import (
    check_bounds,
    check_epsilon,
    check_finite_array,
    check_positive_int,
    check_probability,
)
from privet.dp.accounting import NeighboringRelation
from privet.dp.events import DpEvent, PureDpEvent
from privet.dp.ledger import Ledger
from privet.dp.mechanisms import DiscreteLaplaceMechanism, LaplaceMechanism
from privet.dp.randomness import RandomSource, RngLike, resolve_rng
from privet.errors import PrivacyError

__all__ = [
    "dp_count",
    "dp_histogram",
    "dp_mean",
    "dp_quantile",
    "dp_quantiles",
    "dp_sum",
    "dp_variance",
]


def _charge(ledger: Ledger | None, events: Sequence[DpEvent], label: str, rng: RngLike) -> None:
    """Charge ``events`` as one composed event; a bad ``rng`` fails before the charge."""
    resolve_rng(rng, release=False)
    if ledger is None:
        return
    if not isinstance(ledger, Ledger):
        raise PrivacyError(f"ledger must be a privet.dp.Ledger or None, got {ledger!r}")
    # The sensitivities below hold for adding or removing a row; replacing one
    # can move a sum or a histogram twice as far, so other relations are refused.
    if ledger.neighboring_relation is not NeighboringRelation.ADD_OR_REMOVE_ONE:
        raise PrivacyError(
            "DP statistics are calibrated for ADD_OR_REMOVE_ONE neighbours, "
            f"got a ledger under {ledger.neighboring_relation.name}"
        )
    event = events[0] if len(events) == 1 else dp_accounting.ComposedDpEvent(list(events))
    ledger.charge(event, label=label)


def _column(values: Any) -> np.ndarray:
    array = check_finite_array("values", values)
    if array.ndim != 1:
        raise PrivacyError(f"values must be a 1-D array, got shape {array.shape}")
    return array


def dp_count(
    values: Any,
    epsilon: float,
    *,
    ledger: Ledger | None = None,
    rng: RngLike = None,
    label: str = "count",
) -> int:
    """Number of rows plus exact discrete Laplace noise of scale 1/epsilon (epsilon-DP)."""
    rows = _column(values)
    mechanism = DiscreteLaplaceMechanism(epsilon)
    _charge(ledger, [mechanism.event], label, rng)
    return int(mechanism.release(rows.size, rng=rng))


def dp_sum(
    values: Any,
    lower: float,
    upper: float,
    epsilon: float,
    *,
    ledger: Ledger | None = None,
    rng: RngLike = None,
    label: str = "sum",
) -> float:
    """Sum of values clipped to [lower, upper]; Laplace noise, sensitivity max(|lower|, |upper|)."""
    low, high = check_bounds(lower, upper)
    clipped = np.clip(_column(values), low, high)
    mechanism = LaplaceMechanism(epsilon, sensitivity=max(abs(low), abs(high)))
    _charge(ledger, [mechanism.event], label, rng)
    return float(mechanism.release(float(clipped.sum()), rng=rng))


def _noisy_moments(
    values: Any,
    lower: float,
    upper: float,
    epsilon: float,
    n_moments: int,
    ledger: Ledger | None,
    rng: RngLike,
    label: str,
) -> tuple[float, list[float], float, float]:
    """Noisy count and noisy sums of centred powers 1..n_moments, epsilon split evenly.

    Centring on the midpoint halves the sensitivity of the first moment.
    """
    low, high = check_bounds(lower, upper)
    eps = check_epsilon(epsilon)
    rows = _column(values)
    mid, half = (low + high) / 2.0, (high - low) / 2.0
    centred = np.clip(rows, low, high) - mid
    share = eps / (n_moments + 1)
    count_mechanism = DiscreteLaplaceMechanism(share)
    moment_mechanisms = [
        LaplaceMechanism(share, sensitivity=half**power) for power in range(1, n_moments + 1)
    ]
    _charge(ledger, [count_mechanism.event] + [m.event for m in moment_mechanisms], label, rng)
    source = resolve_rng(rng, release=True)
    count = float(count_mechanism.release(rows.size, rng=source))
    sums = [
        float(mechanism.release(float(np.sum(centred**power)), rng=source))
        for power, mechanism in enumerate(moment_mechanisms, start=1)
    ]
    return max(count, 1.0), sums, mid, half


def dp_mean(
    values: Any,
    lower: float,
    upper: float,
    epsilon: float,
    *,
    ledger: Ledger | None = None,
    rng: RngLike = None,
    label: str = "mean",
) -> float:
    """Mean of values clipped to [lower, upper]: noisy centred sum over noisy count.

    Half of epsilon goes to the count, half to the sum; the result is clipped
    to the bounds (post-processing).
    """
    count, (centred_sum,), mid, _ = _noisy_moments(
        values, lower, upper, epsilon, 1, ledger, rng, label
    )
    return float(np.clip(mid + centred_sum / count, lower, upper))


def dp_variance(
    values: Any,
    lower: float,
    upper: float,
    epsilon: float,
    *,
    ledger: Ledger | None = None,
    rng: RngLike = None,
    label: str = "variance",
) -> float:
    """Population variance of values clipped to [lower, upper].

    Epsilon is split in three: count, centred sum and centred sum of squares.
    The result is clipped to [0, (upper - lower)^2 / 4], the largest variance
    a bounded variable can have.
    """
    count, (sum1, sum2), _, half = _noisy_moments(
        values, lower, upper, epsilon, 2, ledger, rng, label
    )
    variance = sum2 / count - (sum1 / count) ** 2
    return float(np.clip(variance, 0.0, half**2))


def _quantile_once(
    sorted_values: np.ndarray,
    q: float,
    low: float,
    high: float,
    epsilon: float,
    source: RandomSource,
) -> float:
    # Smith 2011: intervals between consecutive clipped values, interval i holds
    # rank i; utility -|i - q n| has sensitivity 1. Sample interval i with
    # probability proportional to width_i * exp(epsilon * utility_i / 2).
    edges = np.concatenate([[low], sorted_values, [high]])
    widths = np.diff(edges)
    ranks = np.arange(widths.size)
    utility = -np.abs(ranks - q * sorted_values.size)
    with np.errstate(divide="ignore"):
        log_weights = np.log(widths) + (epsilon / 2.0) * utility
    chosen = int(np.argmax(log_weights + source.standard_gumbel(widths.size)))
    return float(edges[chosen] + widths[chosen] * source.uniform(1)[0])


def dp_quantile(
    values: Any,
    q: float,
    lower: float,
    upper: float,
    epsilon: float,
    *,
    ledger: Ledger | None = None,
    rng: RngLike = None,
    label: str = "quantile",
) -> float:
    """The q-quantile of values clipped to [lower, upper], by the exponential mechanism.

    Smith, "Privacy-preserving statistical estimation with optimal convergence
    rates", STOC 2011: a point is drawn from [lower, upper] with density
    proportional to exp(epsilon * u(x) / 2), u(x) = -|#{values < x} - q n|,
    whose sensitivity is 1. Epsilon-DP.
    """
    (answer,) = dp_quantiles(
        values, [q], lower, upper, epsilon, ledger=ledger, rng=rng, label=label
    )
    return answer


def dp_quantiles(
    values: Any,
    qs: Sequence[float],
    lower: float,
    upper: float,
    epsilon: float,
    *,
    ledger: Ledger | None = None,
    rng: RngLike = None,
    label: str = "quantiles",
) -> list[float]:
    """Several quantiles (see :func:`dp_quantile`), splitting epsilon evenly among them.

    Each is an independent ``epsilon / len(qs)``-DP selection; the ledger is
    charged once with their composition.
    """
    low, high = check_bounds(lower, upper)
    eps = check_epsilon(epsilon)
    if isinstance(qs, str) or np.ndim(qs) != 1 or len(qs) == 0:
        raise PrivacyError(f"qs must be a non-empty sequence of quantile levels, got {qs!r}")
    levels = [check_probability("q", level) for level in qs]
    sorted_values = np.sort(np.clip(_column(values), low, high))
    share = eps / len(levels)
    _charge(ledger, [PureDpEvent(share)] * len(levels), label, rng)
    source = resolve_rng(rng, release=True)
    return [_quantile_once(sorted_values, level, low, high, share, source) for level in levels]


def dp_histogram(
    values: Any,
    bins: int,
    lower: float,
    upper: float,
    epsilon: float,
    *,
    ledger: Ledger | None = None,
    rng: RngLike = None,
    label: str = "histogram",
) -> tuple[np.ndarray, np.ndarray]:
    """Counts over ``bins`` equal-width bins of [lower, upper], with exact discrete Laplace noise.

    Adding or removing one row changes one count by one, so the L1
    sensitivity is 1 and the whole histogram is epsilon-DP. Values outside
    the range are clipped into the edge bins. Returns ``(noisy_counts, edges)``.
    """
    low, high = check_bounds(lower, upper)
    n_bins = check_positive_int("bins", bins)
    clipped = np.clip(_column(values), low, high)
    counts, edges = np.histogram(clipped, bins=n_bins, range=(low, high))
    mechanism = DiscreteLaplaceMechanism(epsilon)
    _charge(ledger, [mechanism.event], label, rng)
    return np.asarray(mechanism.release(counts, rng=rng)), edges
