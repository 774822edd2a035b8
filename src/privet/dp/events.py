"""Privacy events: what a release spent, described, never interpreted here.

Mechanisms describe their cost as dp-accounting ``DpEvent`` records; only the
accountants of :mod:`privet.dp.accounting` (and the ledger that uses them) turn
events into epsilon. Two events are added for mechanisms dp-accounting has no
record for:

* :class:`PureDpEvent` — any mechanism proved epsilon-DP (exponential
  mechanism, report-noisy-max, permute-and-flip).
* :class:`DiscreteGaussianDpEvent` — the discrete Gaussian of Canonne, Kamath
  & Steinke (2020).

Events cross process and disk boundaries as JSON (:func:`event_to_json`,
:func:`event_from_json`): a closed list of event types and their declared
fields, never pickle and never a class named by the data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import attr
import dp_accounting
from dp_accounting import dp_event
from dp_accounting.dp_event import DpEvent

from privet.dp._validation import (
    check_epsilon,
    check_positive,
    check_positive_int,
    check_probability,
)
from privet.dp.event_checks import check_event
from privet.errors import PrivacyError

__all__ = [
    "DiscreteGaussianDpEvent",
    "DpEvent",
    "PureDpEvent",
    "describe_event",
    "dpsgd_event",
    "event_from_dict",
    "event_from_json",
    "event_to_dict",
    "event_to_json",
]


@attr.s(frozen=True, slots=True, auto_attribs=True)
class PureDpEvent(DpEvent):  # type: ignore[misc]
    """A mechanism that satisfies pure ``epsilon``-differential privacy.

    Accounted under PLD by the tight privacy-loss distribution of an
    epsilon-DP mechanism (dp-accounting ``from_privacy_parameters``; every
    epsilon-DP mechanism is dominated by randomized response, Kairouz, Oh &
    Viswanath 2015), and under RDP by the exact Rényi curve of binary randomized response
    with the same epsilon, which dominates it.
    """

    epsilon: float

    def __attrs_post_init__(self) -> None:
        check_epsilon(self.epsilon)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class DiscreteGaussianDpEvent(DpEvent):  # type: ignore[misc]
    """The discrete Gaussian mechanism with parameter ``sigma`` on integer data.

    ``sensitivity`` is the integer L2 sensitivity of the query. Accounted under
    PLD by dp-accounting's ``from_discrete_gaussian_mechanism`` and under RDP
    through ``sensitivity**2 / (2 sigma**2)``-zCDP (Canonne, Kamath & Steinke
    2020, Theorem 14).
    """

    sigma: float
    sensitivity: int = 1

    def __attrs_post_init__(self) -> None:
        check_positive("sigma", self.sigma)
        check_positive_int("sensitivity", self.sensitivity)


def dpsgd_event(noise_multiplier: float, sample_rate: float, steps: int) -> DpEvent:
    """The event of DP-SGD: a Poisson-subsampled Gaussian, composed ``steps`` times.

    Each step samples every example independently with probability
    ``sample_rate`` and adds Gaussian noise of standard deviation
    ``noise_multiplier`` times the clipping norm (Abadi et al. 2016).

    Parameters
    ----------
    noise_multiplier
        Noise standard deviation over the L2 sensitivity (> 0).
    sample_rate
        Poisson sampling probability of each example, in (0, 1].
    steps
        Number of noisy steps (>= 1).
    """
    sigma = check_positive("noise_multiplier", noise_multiplier)
    q = check_probability("sample_rate", sample_rate, open_low=True)
    count = check_positive_int("steps", steps)
    step = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
    return dp_accounting.SelfComposedDpEvent(step, count)


# The closed list of event types that may be decoded. Names are the wire format:
# renaming a class here breaks ledgers on disk.
_EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        dp_event.NoOpDpEvent,
        dp_event.NonPrivateDpEvent,
        dp_event.GaussianDpEvent,
        dp_event.LaplaceDpEvent,
        dp_event.DiscreteLaplaceDpEvent,
        dp_event.RandomizedResponseDpEvent,
        dp_event.ZCDpEvent,
        dp_event.SelfComposedDpEvent,
        dp_event.ComposedDpEvent,
        dp_event.PoissonSampledDpEvent,
        dp_event.SampledWithReplacementDpEvent,
        dp_event.SampledWithoutReplacementDpEvent,
        dp_event.SingleEpochTreeAggregationDpEvent,
        dp_event.MixtureOfGaussiansDpEvent,
        dp_event.TruncatedSubsampledGaussianDpEvent,
        PureDpEvent,
        DiscreteGaussianDpEvent,
    )
}

_MAX_DEPTH = 64


def event_to_dict(event: DpEvent) -> dict[str, Any]:
    """Encode an event as plain JSON-ready data: ``{"type": name, field: value, ...}``."""
    name = type(event).__name__
    if _EVENT_TYPES.get(name) is not type(event):
        raise PrivacyError(
            f"event type must be one of {sorted(_EVENT_TYPES)}, got {type(event).__name__}"
        )
    encoded: dict[str, Any] = {"type": name}
    for field in attr.fields(type(event)):
        encoded[field.name] = _encode_value(getattr(event, field.name))
    return encoded


def _encode_value(value: Any) -> Any:
    if isinstance(value, DpEvent):
        return event_to_dict(value)
    if isinstance(value, list | tuple):
        return [_encode_value(item) for item in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PrivacyError(f"event fields must be finite, got {value!r}")
        return float(value)
    # numpy scalars and the like
    if hasattr(value, "item"):
        return _encode_value(value.item())
    raise PrivacyError(f"event fields must be numbers, events or lists, got {value!r}")


def event_from_dict(data: Mapping[str, Any], *, _depth: int = 0) -> DpEvent:
    """Decode :func:`event_to_dict`'s output; unknown types or fields are refused."""
    if _depth > _MAX_DEPTH:
        raise PrivacyError(f"event nesting must be at most {_MAX_DEPTH} deep")
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        raise PrivacyError(f"an encoded event must be an object with a 'type', got {data!r}")
    cls = _EVENT_TYPES.get(data["type"])
    if cls is None:
        raise PrivacyError(
            f"event type must be one of {sorted(_EVENT_TYPES)}, got {data['type']!r}"
        )
    fields = {field.name for field in attr.fields(cls)}
    given = set(data) - {"type"}
    if not given <= fields:
        raise PrivacyError(f"{data['type']} has no fields {sorted(given - fields)}")
    kwargs = {key: _decode_value(data[key], _depth + 1) for key in given}
    try:
        event = cls(**kwargs)
    except PrivacyError:
        raise
    except (TypeError, ValueError) as exc:
        raise PrivacyError(f"cannot build {data['type']} from {dict(data)!r}: {exc}") from exc
    # Nested events are checked by the outermost call, which walks the whole tree.
    return check_event(event) if _depth == 0 else event


def _decode_value(value: Any, depth: int) -> Any:
    if isinstance(value, Mapping):
        return event_from_dict(value, _depth=depth)
    if isinstance(value, list):
        return [_decode_value(item, depth) for item in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PrivacyError(f"event fields must be numbers, events or lists, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise PrivacyError(f"event fields must be finite, got {value!r}")
    return value


def describe_event(event: DpEvent) -> str:
    """A short human-readable form, e.g. ``14062 × PoissonSampled(q=0.004, Gaussian(σ=1.1))``."""
    if isinstance(event, dp_event.SelfComposedDpEvent):
        return f"{event.count} × {describe_event(event.event)}"
    if isinstance(event, dp_event.ComposedDpEvent):
        return " + ".join(describe_event(part) for part in event.events) or "nothing"
    name = type(event).__name__.removesuffix("DpEvent")
    parts = []
    for field in attr.fields(type(event)):
        value = getattr(event, field.name)
        short = _SHORT_FIELD_NAMES.get(field.name, field.name)
        if isinstance(value, DpEvent):
            parts.append(describe_event(value))
        elif isinstance(value, float):
            parts.append(f"{short}={value:.4g}")
        else:
            parts.append(f"{short}={value}")
    return f"{name}({', '.join(parts)})"


_SHORT_FIELD_NAMES = {
    "sampling_probability": "q",
    "sensitivity": "Δ",
    "epsilon": "ε",
    "sigma": "σ",
}


def event_to_json(event: DpEvent) -> str:
    """Encode an event as canonical JSON text (sorted keys, no whitespace)."""
    return json.dumps(event_to_dict(event), sort_keys=True, separators=(",", ":"), allow_nan=False)


def event_from_json(text: str) -> DpEvent:
    """Decode :func:`event_to_json`'s output."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError, RecursionError) as exc:
        raise PrivacyError(f"an encoded event must be JSON text, got {text!r:.200}") from exc
    return event_from_dict(data)
