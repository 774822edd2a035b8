"""The event JSON codec: symmetric, closed, and refusing anything it did not write."""

from __future__ import annotations

import contextlib
import json

import dp_accounting
import pytest
from dp_accounting import dp_event
from hypothesis import given
from hypothesis import strategies as st

from privet import PrivacyError
from privet.dp import (
    DiscreteGaussianDpEvent,
    PureDpEvent,
    dpsgd_event,
    event_from_json,
    event_to_json,
)

EVENTS = [
    dp_accounting.NoOpDpEvent(),
    dp_accounting.NonPrivateDpEvent(),
    dp_accounting.GaussianDpEvent(1.5),
    dp_accounting.LaplaceDpEvent(0.25),
    dp_event.DiscreteLaplaceDpEvent(0.5, 3),
    dp_accounting.RandomizedResponseDpEvent(0.3, 4),
    dp_accounting.ZCDpEvent(0.1, 0.01),
    dpsgd_event(1.1, 0.01, 100),
    dp_accounting.SampledWithoutReplacementDpEvent(1000, 10, dp_accounting.GaussianDpEvent(2.0)),
    dp_accounting.ComposedDpEvent(
        [PureDpEvent(0.5), DiscreteGaussianDpEvent(2.0, 2), dp_accounting.LaplaceDpEvent(1.0)]
    ),
    dp_event.MixtureOfGaussiansDpEvent(1.0, [0.0, 1.0], [0.5, 0.5]),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_round_trip(event: dp_accounting.DpEvent) -> None:
    text = event_to_json(event)
    assert event_from_json(text) == event
    assert event_to_json(event_from_json(text)) == text  # canonical


positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)


@given(sigma=positive, q=st.floats(min_value=1e-6, max_value=1.0), steps=st.integers(1, 10**6))
def test_round_trip_dpsgd_property(sigma: float, q: float, steps: int) -> None:
    event = dpsgd_event(sigma, q, steps)
    assert event_from_json(event_to_json(event)) == event


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"type": "os.system", "command": "rm"}', "event type must be one of"),
        ('{"type": "GaussianDpEvent", "noise_multiplier": 1, "extra": 2}', "has no fields"),
        ('{"type": "GaussianDpEvent", "noise_multiplier": "1"}', "must be numbers"),
        ('{"type": "GaussianDpEvent", "noise_multiplier": NaN}', "must be finite"),
        ('{"noise_multiplier": 1}', "with a 'type'"),
        ("[1, 2]", "with a 'type'"),
        ("not json", "must be JSON"),
        ('{"type": "SelfComposedDpEvent", "event": {"type": "Nope"}, "count": 2}', "Nope"),
    ],
)
def test_malformed_input_is_refused(text: str, message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        event_from_json(text)


def test_deep_nesting_is_refused_not_crashing() -> None:
    text = '{"type": "SelfComposedDpEvent", "count": 1, "event": ' * 200
    text += '{"type": "NoOpDpEvent"}' + "}" * 200
    with pytest.raises(PrivacyError, match="nesting"):
        event_from_json(text)


@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_privacy_error(text: str) -> None:
    with contextlib.suppress(PrivacyError):
        event_from_json(text)


def test_unknown_event_class_cannot_be_encoded() -> None:
    with pytest.raises(PrivacyError, match="event type must be one of"):
        event_to_json(dp_accounting.UnsupportedDpEvent())


def test_wire_form_is_plain_json() -> None:
    data = json.loads(event_to_json(dpsgd_event(1.0, 0.5, 3)))
    assert data == {
        "type": "SelfComposedDpEvent",
        "count": 3,
        "event": {
            "type": "PoissonSampledDpEvent",
            "sampling_probability": 0.5,
            "event": {"type": "GaussianDpEvent", "noise_multiplier": 1.0},
        },
    }


def test_describe_event_is_short_and_readable() -> None:
    from privet.dp import describe_event

    assert (
        describe_event(dpsgd_event(1.1, 0.004, 14062))
        == "14062 × PoissonSampled(q=0.004, Gaussian(noise_multiplier=1.1))"
    )
    composed = dp_accounting.ComposedDpEvent(
        [dp_event.DiscreteLaplaceDpEvent(0.1, 1), PureDpEvent(0.2)]
    )
    assert describe_event(composed) == "DiscreteLaplace(noise_parameter=0.1, Δ=1) + Pure(ε=0.2)"
