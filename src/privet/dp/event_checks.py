"""Parameter checks for every event type privet reads, walking the whole event tree.

dp-accounting's accountants check which *types* of event they support, not
their parameters: a ``SelfComposedDpEvent`` with a negative ``count`` inside a
``ComposedDpEvent`` would subtract privacy loss under RDP. Every event that
reaches an accountant through privet (``epsilon``, ``delta``, a ledger charge,
a decoded ledger row) passes :func:`check_event` first, so a bad parameter is
refused with a message naming it before anything is composed or recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dp_accounting import dp_event
from dp_accounting.dp_event import DpEvent

from privet.dp._validation import check_positive_int, check_probability
from privet.dp._validation import non_negative as _non_negative
from privet.errors import PrivacyError

__all__ = ["check_event"]

_MAX_DEPTH = 64


def _check_int_at_least(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PrivacyError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _gaussian(event: Any) -> None:
    _non_negative("GaussianDpEvent.noise_multiplier", event.noise_multiplier)


def _laplace(event: Any) -> None:
    _non_negative("LaplaceDpEvent.noise_multiplier", event.noise_multiplier)


def _discrete_laplace(event: Any) -> None:
    _non_negative("DiscreteLaplaceDpEvent.noise_parameter", event.noise_parameter)
    check_positive_int("DiscreteLaplaceDpEvent.sensitivity", event.sensitivity)


def _randomized_response(event: Any) -> None:
    check_probability("RandomizedResponseDpEvent.noise_parameter", event.noise_parameter)
    check_positive_int("RandomizedResponseDpEvent.num_buckets", event.num_buckets)


def _zcdp(event: Any) -> None:
    _non_negative("ZCDpEvent.rho", event.rho)
    _non_negative("ZCDpEvent.xi", event.xi)


def _self_composed(event: Any) -> None:
    check_positive_int("SelfComposedDpEvent.count", event.count)


def _poisson(event: Any) -> None:
    check_probability("PoissonSampledDpEvent.sampling_probability", event.sampling_probability)


def _sampled(event: Any) -> None:
    name = type(event).__name__
    size = check_positive_int(f"{name}.source_dataset_size", event.source_dataset_size)
    sample = _check_int_at_least(f"{name}.sample_size", event.sample_size, 0)
    if isinstance(event, dp_event.SampledWithoutReplacementDpEvent) and sample > size:
        raise PrivacyError(
            f"{name}.sample_size must be in [0, {size}] (the data set size), got {sample}"
        )


def _tree_aggregation(event: Any) -> None:
    _non_negative("SingleEpochTreeAggregationDpEvent.noise_multiplier", event.noise_multiplier)
    counts = event.step_counts if isinstance(event.step_counts, list) else [event.step_counts]
    for count in counts:
        check_positive_int("SingleEpochTreeAggregationDpEvent.step_counts", count)


def _mixture(event: Any) -> None:
    _non_negative("MixtureOfGaussiansDpEvent.standard_deviation", event.standard_deviation)
    if len(event.sensitivities) != len(event.sampling_probs) or not event.sampling_probs:
        raise PrivacyError(
            "MixtureOfGaussiansDpEvent needs as many sensitivities as sampling_probs (>= 1), "
            f"got {len(event.sensitivities)} and {len(event.sampling_probs)}"
        )
    for value in event.sensitivities:
        _non_negative("MixtureOfGaussiansDpEvent.sensitivities", value)
    for value in event.sampling_probs:
        check_probability("MixtureOfGaussiansDpEvent.sampling_probs", value)
    if abs(sum(event.sampling_probs) - 1.0) > 1e-9:
        raise PrivacyError(
            "MixtureOfGaussiansDpEvent.sampling_probs must sum to 1, "
            f"got {sum(event.sampling_probs)}"
        )


def _truncated(event: Any) -> None:
    name = "TruncatedSubsampledGaussianDpEvent"
    check_positive_int(f"{name}.dataset_size", event.dataset_size)
    check_probability(f"{name}.sampling_probability", event.sampling_probability)
    check_positive_int(f"{name}.truncated_batch_size", event.truncated_batch_size)
    _non_negative(f"{name}.noise_multiplier", event.noise_multiplier)


_CHECKS: dict[type[Any], Callable[[Any], None]] = {
    dp_event.GaussianDpEvent: _gaussian,
    dp_event.LaplaceDpEvent: _laplace,
    dp_event.DiscreteLaplaceDpEvent: _discrete_laplace,
    dp_event.RandomizedResponseDpEvent: _randomized_response,
    dp_event.ZCDpEvent: _zcdp,
    dp_event.SelfComposedDpEvent: _self_composed,
    dp_event.PoissonSampledDpEvent: _poisson,
    dp_event.SampledWithReplacementDpEvent: _sampled,
    dp_event.SampledWithoutReplacementDpEvent: _sampled,
    dp_event.SingleEpochTreeAggregationDpEvent: _tree_aggregation,
    dp_event.MixtureOfGaussiansDpEvent: _mixture,
    dp_event.TruncatedSubsampledGaussianDpEvent: _truncated,
}


def check_event(event: Any, *, _depth: int = 0) -> DpEvent:
    """Return ``event`` after checking every parameter of every event in its tree.

    Event types with no entry here (privet's own events validate when built;
    NoOp and NonPrivate have no parameters; others are left to the
    accountant, which refuses what it does not support) pass through.
    """
    if _depth > _MAX_DEPTH:
        raise PrivacyError(f"event nesting must be at most {_MAX_DEPTH} deep")
    if not isinstance(event, DpEvent):
        raise PrivacyError(f"event must be a dp-accounting DpEvent, got {event!r}")
    check = _CHECKS.get(type(event))
    if check is not None:
        check(event)
    if isinstance(event, dp_event.ComposedDpEvent):
        for part in event.events:
            check_event(part, _depth=_depth + 1)
    inner = getattr(event, "event", None)
    if inner is not None:
        check_event(inner, _depth=_depth + 1)
    return event
