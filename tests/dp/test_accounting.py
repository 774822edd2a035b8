"""Accounting against references: dp-accounting run side by side, closed forms, PEERS.md.

References
----------
* dp-accounting 0.6 (Google), ``RdpAccountant`` and ``PLDAccountant`` used
  directly, without privet, on the same events.
* shared/PEERS.md: q=256/60000, sigma=1.1, 14062 steps, delta=1e-5 gives RDP
  epsilon 2.5966 and PLD epsilon 2.3817 (dp-accounting 0.6.0).
* Laplace privacy profile: for Laplace noise of scale b on a sensitivity-1
  query, delta(eps) = 1 - exp((eps - 1/b) / 2) for eps < 1/b (Balle et al.,
  "Privacy amplification by subsampling", NeurIPS 2018, §3 / Koskela et al. 2021).
* Gaussian privacy profile (Balle & Wang 2018, Thm 8):
  delta(eps) = Phi(1/(2s) - eps*s) - e^eps * Phi(-1/(2s) - eps*s).
"""

from __future__ import annotations

import math

import dp_accounting
import pytest
from dp_accounting import dp_event
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant
from scipy import stats

from privet import PrivacyError
from privet.dp import (
    DiscreteGaussianDpEvent,
    NeighboringRelation,
    PureDpEvent,
    delta,
    dpsgd_event,
    epsilon,
    noise_multiplier_for,
)

REFERENCE_EVENTS = {
    "laplace x5": dp_accounting.SelfComposedDpEvent(dp_accounting.LaplaceDpEvent(2.0), 5),
    "gaussian x10": dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(3.0), 10),
    "laplace+gaussian": dp_accounting.ComposedDpEvent(
        [dp_accounting.LaplaceDpEvent(1.5), dp_accounting.GaussianDpEvent(2.0)]
    ),
    "poisson gaussian x1000": dpsgd_event(1.1, 0.01, 1000),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_EVENTS))
@pytest.mark.parametrize("target_delta", [1e-5, 1e-7])
def test_rdp_matches_dp_accounting(name: str, target_delta: float) -> None:
    event = REFERENCE_EVENTS[name]
    reference = RdpAccountant().compose(event).get_epsilon(target_delta)
    assert epsilon(event, target_delta, "rdp") == pytest.approx(reference, rel=1e-12)


@pytest.mark.parametrize("name", sorted(REFERENCE_EVENTS))
def test_pld_matches_dp_accounting(name: str) -> None:
    event = REFERENCE_EVENTS[name]
    reference = PLDAccountant().compose(event).get_epsilon(1e-6)
    assert epsilon(event, 1e-6, "pld") == pytest.approx(reference, rel=1e-12)
    reference_delta = PLDAccountant().compose(event).get_delta(1.0)
    assert delta(event, 1.0, "pld") == pytest.approx(reference_delta, rel=1e-12)


def test_sequence_of_events_is_composed() -> None:
    events = [dp_accounting.GaussianDpEvent(2.0), dp_accounting.LaplaceDpEvent(1.0)]
    composed = dp_accounting.ComposedDpEvent(events)
    assert epsilon(events, 1e-5) == epsilon(composed, 1e-5)


@pytest.mark.parametrize(("accountant", "expected"), [("rdp", 2.5966), ("pld", 2.3817)])
def test_dpsgd_reference_from_peers(accountant: str, expected: float) -> None:
    event = dpsgd_event(1.1, 256 / 60000, 14062)
    assert epsilon(event, 1e-5, accountant) == pytest.approx(expected, abs=6e-5)  # type: ignore[arg-type]


@pytest.mark.parametrize("scale", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("eps", [0.05, 0.1, 0.2])
def test_pld_laplace_delta_matches_closed_form(scale: float, eps: float) -> None:
    event = dp_accounting.LaplaceDpEvent(scale)
    expected = max(0.0, 1.0 - math.exp((eps - 1.0 / scale) / 2.0))
    # PLD is pessimistic by at most its discretization (1e-4 in privacy loss).
    assert delta(event, eps, "pld") == pytest.approx(expected, abs=2e-4)
    assert delta(event, eps, "pld") >= expected - 1e-12


@pytest.mark.parametrize("sigma", [0.8, 2.0, 5.0])
@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0])
def test_pld_gaussian_delta_matches_balle_wang(sigma: float, eps: float) -> None:
    expected = stats.norm.cdf(1 / (2 * sigma) - eps * sigma) - math.exp(eps) * stats.norm.cdf(
        -1 / (2 * sigma) - eps * sigma
    )
    got = delta(dp_accounting.GaussianDpEvent(sigma), eps, "pld")
    assert got >= expected - 1e-12  # pessimistic
    assert got == pytest.approx(expected, rel=2e-3, abs=1e-9)


def test_pure_dp_event_composes_additively_under_pld_at_delta_zero() -> None:
    # k epsilon-DP mechanisms are (k epsilon, 0)-DP, tight (Kairouz et al. 2015).
    assert epsilon([PureDpEvent(0.3)] * 4, 0.0, "pld") == pytest.approx(1.2, abs=1e-3)


def test_pure_dp_event_under_rdp_is_close_to_tight() -> None:
    # RDP loses a little converting to (eps, delta); it must never beat the exact value.
    got = epsilon([PureDpEvent(0.5)] * 3, 1e-6, "rdp")
    assert 1.5 - 1e-6 <= got <= 1.6


def test_pure_dp_event_is_dominated_by_pld_of_randomized_response() -> None:
    # Under REPLACE_ONE, dp-accounting's binary RR with the same epsilon is the
    # dominating mechanism: both views must agree.
    eps0 = 0.7
    rr = dp_accounting.RandomizedResponseDpEvent(2 / (1 + math.exp(eps0)), 2)
    relation = NeighboringRelation.REPLACE_ONE
    for target in (1e-3, 1e-6):
        assert epsilon(PureDpEvent(eps0), target, neighboring_relation=relation) == pytest.approx(
            epsilon(rr, target, neighboring_relation=relation), abs=2e-4
        )


def test_discrete_gaussian_close_to_continuous_gaussian() -> None:
    # Canonne, Kamath & Steinke 2020 (Fig. 1): for sigma >= 1 the discrete Gaussian's
    # privacy profile is within a hair of the continuous one.
    for sigma in (1.0, 3.0):
        discrete = epsilon(DiscreteGaussianDpEvent(sigma), 1e-5, "pld")
        continuous = epsilon(dp_accounting.GaussianDpEvent(sigma), 1e-5, "pld")
        assert discrete == pytest.approx(continuous, rel=0.02)
    # Under RDP both are rho = 1/(2 sigma^2) zCDP: identical.
    assert epsilon(DiscreteGaussianDpEvent(2.0), 1e-5, "rdp") == pytest.approx(
        epsilon(dp_accounting.GaussianDpEvent(2.0), 1e-5, "rdp"), rel=1e-9
    )


def test_discrete_laplace_under_rdp_uses_its_pure_dp_bound() -> None:
    event = dp_event.DiscreteLaplaceDpEvent(0.5, 2)  # (0.5 * 2)-DP
    assert epsilon(event, 1e-6, "rdp") == pytest.approx(epsilon(PureDpEvent(1.0), 1e-6, "rdp"))
    assert epsilon(event, 1e-9, "pld") == pytest.approx(1.0, abs=2e-3)


def test_unsupported_events_are_refused_with_reason() -> None:
    with pytest.raises(PrivacyError, match="REPLACE_ONE"):
        epsilon(dp_accounting.RandomizedResponseDpEvent(0.5, 2), 1e-5)
    with pytest.raises(PrivacyError, match="cannot account"):
        epsilon(dp_accounting.UnsupportedDpEvent(), 1e-5)
    with pytest.raises(PrivacyError, match="ADD_OR_REMOVE_ONE"):
        epsilon(
            DiscreteGaussianDpEvent(1.0),
            1e-5,
            neighboring_relation=NeighboringRelation.REPLACE_ONE,
        )


def test_non_private_event_gives_infinite_epsilon() -> None:
    assert math.isinf(epsilon(dp_accounting.NonPrivateDpEvent(), 1e-5))


@pytest.mark.parametrize("accountant", ["rdp", "pld"])
@pytest.mark.parametrize(("target", "rate", "steps"), [(1.0, 0.01, 500), (8.0, 256 / 60000, 2000)])
def test_noise_multiplier_round_trips_through_epsilon(
    accountant: str, target: float, rate: float, steps: int
) -> None:
    sigma = noise_multiplier_for(target, 1e-5, rate, steps, accountant)  # type: ignore[arg-type]
    achieved = epsilon(dpsgd_event(sigma, rate, steps), 1e-5, accountant)  # type: ignore[arg-type]
    assert achieved <= target
    # ... and it is the smallest such sigma, to the search's tolerance.
    looser = epsilon(dpsgd_event(sigma * 0.995, rate, steps), 1e-5, accountant)  # type: ignore[arg-type]
    assert looser > target


def test_pld_needs_less_noise_than_rdp() -> None:
    args = (2.0, 1e-5, 0.01, 1000)
    assert noise_multiplier_for(*args, "pld") < noise_multiplier_for(*args, "rdp")


def test_accountant_name_and_relation_are_checked() -> None:
    with pytest.raises(PrivacyError, match="accountant must be one of 'pld', 'rdp', got 'prv'"):
        epsilon(dp_accounting.GaussianDpEvent(1.0), 1e-5, "prv")  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="neighboring_relation"):
        epsilon(
            dp_accounting.GaussianDpEvent(1.0),
            1e-5,
            neighboring_relation="replace",  # type: ignore[arg-type]
        )
