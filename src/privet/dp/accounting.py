"""Turning privacy events into epsilon, through dp-accounting.

Two accountants, named by a ``Literal``: ``"pld"`` (privacy loss distributions,
Koskela et al. 2020; Doroshenko et al. 2022 — tight, the default) and ``"rdp"``
(Rényi DP, Mironov 2017 — fast, looser). Both are dp-accounting's own,
extended only to read the two events privet adds (:mod:`privet.dp.events`),
and each says when it does not support an event rather than guessing.

The neighbouring relation is a typed assumption: ``ADD_OR_REMOVE_ONE`` (the
default, the relation DP-SGD and central statistics are analysed under) or
``REPLACE_ONE`` (randomized response). Combinations the analysis does not
cover are refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum
from typing import Any, Literal, get_args

import dp_accounting
from dp_accounting import dp_event
from dp_accounting.pld import common as pld_common
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from dp_accounting.pld.pld_privacy_accountant import PLDAccountant
from dp_accounting.rdp import rdp_privacy_accountant as rdp_lib
from dp_accounting.rdp.rdp_privacy_accountant import RdpAccountant

from privet.dp._validation import (
    check_choice,
    check_delta,
    check_epsilon,
    check_positive,
    check_positive_int,
    check_probability,
)
from privet.dp.event_checks import check_event
from privet.dp.events import DiscreteGaussianDpEvent, DpEvent, PureDpEvent, dpsgd_event
from privet.errors import PrivacyError

__all__ = [
    "AccountantName",
    "NeighboringRelation",
    "delta",
    "epsilon",
    "make_accountant",
    "noise_multiplier_for",
]

AccountantName = Literal["pld", "rdp"]
ACCOUNTANTS: tuple[str, ...] = get_args(AccountantName)


class NeighboringRelation(Enum):
    """Which pairs of data sets differential privacy protects against telling apart."""

    ADD_OR_REMOVE_ONE = "add_or_remove_one"
    REPLACE_ONE = "replace_one"

    def to_dp_accounting(self) -> Any:
        return dp_accounting.NeighboringRelation[self.name]


# dp-accounting's accountants are extended through their `_maybe_compose` hook
# (the method every PrivacyAccountant implements); the `_pld`/`_rdp` state they
# touch is why pyproject caps dp-accounting below the next minor release.


class _PrivetPldAccountant(PLDAccountant):  # type: ignore[misc]
    def _maybe_compose(self, event: DpEvent, count: int, do_compose: bool) -> Any:
        if isinstance(event, PureDpEvent):
            if do_compose:
                pure = pld_lib.from_privacy_parameters(
                    pld_common.DifferentialPrivacyParameters(event.epsilon, 0.0),
                    value_discretization_interval=self._value_discretization_interval,
                )
                self._pld = self._pld.compose(pure.self_compose(count))  # type: ignore[has-type]
            return None
        if isinstance(event, DiscreteGaussianDpEvent):
            if self.neighboring_relation != dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE:
                return self.CompositionErrorDetails(
                    invalid_event=event,
                    error_message="DiscreteGaussianDpEvent is analysed under ADD_OR_REMOVE_ONE",
                )
            if do_compose:
                discrete = pld_lib.from_discrete_gaussian_mechanism(
                    event.sigma,
                    sensitivity=event.sensitivity,
                    value_discretization_interval=self._value_discretization_interval,
                )
                self._pld = self._pld.compose(discrete.self_compose(count))
            return None
        return super()._maybe_compose(event, count, do_compose)


class _PrivetRdpAccountant(RdpAccountant):  # type: ignore[misc]
    def _maybe_compose(self, event: DpEvent, count: int, do_compose: bool) -> Any:
        if isinstance(event, PureDpEvent):
            # Every epsilon-DP mechanism is a post-processing of binary randomized
            # response with the same epsilon (Kairouz, Oh & Viswanath 2015), and Rényi
            # divergence cannot grow under post-processing (Mironov 2017): so RR's exact
            # RDP curve bounds the mechanism's.
            if do_compose:
                flip = 2.0 / (1.0 + math.exp(event.epsilon))
                self._rdp += count * rdp_lib._compute_randomized_response_rdp(
                    flip, 2, self._orders, dp_accounting.NeighboringRelation.REPLACE_ONE
                )
            return None
        if isinstance(event, DiscreteGaussianDpEvent):
            # Canonne, Kamath & Steinke 2020, Thm 14: Delta^2 / (2 sigma^2)-zCDP.
            rho = event.sensitivity**2 / (2.0 * event.sigma**2)
            return super()._maybe_compose(dp_accounting.ZCDpEvent(rho), count, do_compose)
        if isinstance(event, dp_event.DiscreteLaplaceDpEvent):
            # Discrete Laplace with parameter a and sensitivity s is (a s)-DP.
            pure = PureDpEvent(event.noise_parameter * event.sensitivity)
            return self._maybe_compose(pure, count, do_compose)
        return super()._maybe_compose(event, count, do_compose)


def make_accountant(
    accountant: AccountantName = "pld",
    neighboring_relation: NeighboringRelation = NeighboringRelation.ADD_OR_REMOVE_ONE,
    *,
    value_discretization_interval: float = 1e-4,
) -> Any:
    """A fresh dp-accounting ``PrivacyAccountant`` that also reads privet's events.

    Parameters
    ----------
    accountant
        ``"pld"`` (tight; dp-accounting's PLD with value discretization 1e-4)
        or ``"rdp"`` (Rényi DP over dp-accounting's default orders).
    neighboring_relation
        The neighbouring relation the events' parameters refer to.
    value_discretization_interval
        PLD only: the grid of privacy-loss values. Coarser is faster and
        still pessimistic (an upper bound on epsilon).
    """
    check_choice("accountant", accountant, ACCOUNTANTS)
    if not isinstance(neighboring_relation, NeighboringRelation):
        raise PrivacyError(
            "neighboring_relation must be a privet.dp.NeighboringRelation, "
            f"got {neighboring_relation!r}"
        )
    relation = neighboring_relation.to_dp_accounting()
    if accountant == "pld":
        return _PrivetPldAccountant(
            neighboring_relation=relation,
            value_discretization_interval=check_positive(
                "value_discretization_interval", value_discretization_interval
            ),
        )
    return _PrivetRdpAccountant(neighboring_relation=relation)


def _as_event(events: DpEvent | Sequence[DpEvent]) -> DpEvent:
    if isinstance(events, DpEvent):
        return events
    items = list(events)
    if not all(isinstance(item, DpEvent) for item in items):
        raise PrivacyError(f"events must be DpEvent records, got {events!r}")
    return dp_accounting.ComposedDpEvent(items)


_SEARCH_DISCRETIZATION = 1e-3


def check_supported(
    event: DpEvent,
    accountant: AccountantName = "pld",
    neighboring_relation: NeighboringRelation = NeighboringRelation.ADD_OR_REMOVE_ONE,
) -> Any:
    """Return a fresh accountant after checking it can account for ``event``; compose nothing.

    Every parameter in the event tree is checked first (:func:`check_event`).
    """
    check_event(event)
    acct = make_accountant(accountant, neighboring_relation)
    # supports() walks the whole tree before anything composes (validate, then commit).
    if not acct.supports(event):
        details = acct._maybe_compose(event, 1, False)
        reason = getattr(details, "error_message", "unsupported event")
        raise PrivacyError(
            f"the {accountant!r} accountant under {neighboring_relation.name} cannot account "
            f"for {event!r}: {reason}"
        )
    return acct


def composed_accountant(
    events: DpEvent | Sequence[DpEvent],
    accountant: AccountantName = "pld",
    neighboring_relation: NeighboringRelation = NeighboringRelation.ADD_OR_REMOVE_ONE,
) -> Any:
    """An accountant with ``events`` composed, after checking it supports all of them."""
    event = _as_event(events)
    acct = check_supported(event, accountant, neighboring_relation)
    acct.compose(event)
    return acct


def epsilon(
    events: DpEvent | Sequence[DpEvent],
    delta: float,
    accountant: AccountantName = "pld",
    *,
    neighboring_relation: NeighboringRelation = NeighboringRelation.ADD_OR_REMOVE_ONE,
) -> float:
    """The epsilon spent by ``events`` (composed) at ``delta``.

    Parameters
    ----------
    events
        One ``DpEvent``, or a sequence of them that is composed.
    delta
        Target delta in [0, 1).
    accountant
        ``"pld"`` or ``"rdp"`` (see :func:`make_accountant`).
    neighboring_relation
        The relation the events are stated under.

    Returns
    -------
    float
        The smallest epsilon the accountant can certify; ``inf`` if a
        non-private event was composed.
    """
    target = check_delta(delta)
    acct = composed_accountant(events, accountant, neighboring_relation)
    return float(acct.get_epsilon(target))


def delta(
    events: DpEvent | Sequence[DpEvent],
    epsilon: float,
    accountant: AccountantName = "pld",
    *,
    neighboring_relation: NeighboringRelation = NeighboringRelation.ADD_OR_REMOVE_ONE,
) -> float:
    """The delta spent by ``events`` (composed) at ``epsilon``: :func:`epsilon` inverted."""
    target = check_epsilon(epsilon)
    acct = composed_accountant(events, accountant, neighboring_relation)
    return float(acct.get_delta(target))


def noise_multiplier_for(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: AccountantName = "pld",
    *,
    tolerance: float = 1e-4,
) -> float:
    """The smallest DP-SGD noise multiplier whose run stays within ``target_epsilon``.

    Searches with dp-accounting's ``calibrate_dp_mechanism`` (Brent's method)
    over :func:`privet.dp.dpsgd_event`, then rounds up so the returned value
    always meets the target under the same accountant.

    Parameters
    ----------
    target_epsilon
        The epsilon to stay within (> 0).
    delta
        Target delta in (0, 1).
    sample_rate
        Poisson sampling probability in (0, 1].
    steps
        Number of steps (>= 1).
    accountant
        ``"pld"`` or ``"rdp"``.
    tolerance
        Precision of the search on the noise multiplier.
    """
    eps = check_epsilon(target_epsilon, "target_epsilon")
    dlt = check_delta(delta, allow_zero=False)
    q = check_probability("sample_rate", sample_rate, open_low=True)
    count = check_positive_int("steps", steps)
    check_choice("accountant", accountant, ACCOUNTANTS)
    check_positive("tolerance", tolerance)

    def event_for(sigma: float) -> DpEvent:
        return dpsgd_event(max(sigma, 1e-6), q, count)

    def search(name: AccountantName, interval: Any) -> float:
        return float(
            dp_accounting.calibrate_dp_mechanism(
                lambda: make_accountant(name, value_discretization_interval=_SEARCH_DISCRETIZATION),
                event_for,
                eps,
                dlt,
                bracket_interval=interval,
                tol=tolerance,
            )
        )

    # RDP is cheap at any sigma; PLD is tighter (needs no more noise) but costly
    # at tiny sigma, so RDP's answer brackets the PLD search from above. The PLD
    # search runs on a 10x coarser (still pessimistic) grid; the result is then
    # verified on the default grid.
    sigma = search("rdp", dp_accounting.LowerEndpointAndGuess(1e-3, 1.0))
    if accountant == "pld":
        lower = max(0.5 * sigma, 0.05)
        coarse = make_accountant("pld", value_discretization_interval=_SEARCH_DISCRETIZATION)
        if coarse.compose(event_for(lower)).get_epsilon(dlt) <= eps:
            sigma = lower
        else:
            sigma = search("pld", dp_accounting.ExplicitBracketInterval(lower, sigma + tolerance))
    # Brent's answer is within `tolerance`; step up until the target provably holds.
    for _ in range(64):
        if epsilon(event_for(sigma), dlt, accountant) <= eps:
            return sigma
        sigma += tolerance
    raise PrivacyError(  # pragma: no cover - calibration guarantees convergence
        f"could not find a noise multiplier for target_epsilon={target_epsilon}"
    )


def spent_within(spent: float, budget: float) -> bool:
    """True when ``spent`` does not exceed ``budget`` (``inf`` never fits)."""
    return math.isfinite(spent) and spent <= budget
