"""Distributed DP for federated learning: clients add the noise, secure aggregation hides it.

Kairouz, Liu & Steinke, "The Distributed Discrete Gaussian Mechanism for
Federated Learning with Secure Aggregation" (ICML 2021): each client clips its
update, rounds it onto an integer grid and adds a discrete Gaussian share of
the noise (:class:`privet.secagg.DistributedDiscreteGaussian`); secure
aggregation (:class:`privet.fl.secure_engine.SecAggEngine`) reveals only the
noisy sum. Neither the server nor any client sees an un-noised update or sum,
so the guarantee does not trust the server.

Accounting: every round is charged, before any client draws noise, as the
mechanism's zCDP event (add/remove one client). It rests on the mechanism's
stated assumption that the noise of at least ``min_honest_clients`` clients
that follow the protocol is in every released sum; the engine refuses a
threshold below that, so a finished round always sums that many clients. No
amplification by client sampling is claimed.
"""

from __future__ import annotations

from collections.abc import Sequence

import dp_accounting
import numpy as np

from privet.dp.ledger import Ledger
from privet.errors import PrivacyError
from privet.fl.parameters import Parameters
from privet.fl.strategy import (
    Aggregate,
    EvaluationSummary,
    SecureContribution,
    SecureSum,
    SumStrategy,
)
from privet.fl.types import (
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    RoundResults,
)
from privet.secagg.distributed_dp import DistributedDiscreteGaussian

__all__ = ["DistributedDp"]


class DistributedDp:
    """Wrap an unweighted sum strategy so that clients add distributed discrete Gaussian noise.

    Parameters
    ----------
    strategy
        A strategy that aggregates a secure sum unweighted (``FedAvg(weighted=False)``):
        example weights would change the sensitivity the noise is calibrated to.
    mechanism
        The per-client encoding and noise (its ``dimension`` is the model size,
        its ``num_clients`` at least the round's cohort).
    ledger
        Charged each round before the clients add noise; a refused charge
        raises :class:`privet.BudgetExceeded` and the round does not start.
        ``None`` only records the events (``events``).
    """

    needs_individual_updates = False
    releases_counts = True  # the protocol reveals who finished; the DP is on the values

    def __init__(
        self,
        strategy: SumStrategy,
        mechanism: DistributedDiscreteGaussian,
        *,
        ledger: Ledger | None = None,
    ) -> None:
        if not isinstance(strategy, SumStrategy) or strategy.needs_individual_updates:
            raise PrivacyError(
                f"strategy must aggregate a secure sum (FedAvg(weighted=False)), got {strategy!r}"
            )
        if strategy.secure_contribution(0).weighted:
            raise PrivacyError(
                "strategy must be unweighted (FedAvg(weighted=False)): example weights would "
                "scale an update past the sensitivity the noise is calibrated to"
            )
        if not isinstance(mechanism, DistributedDiscreteGaussian):
            raise PrivacyError(
                f"mechanism must be a DistributedDiscreteGaussian, got {mechanism!r}"
            )
        self.strategy = strategy
        self.mechanism = mechanism
        self.ledger = ledger
        self.events: list[dp_accounting.DpEvent] = []

    def configure_fit(
        self,
        server_round: int,
        parameters: Parameters,
        clients: Sequence[str],
        rng: np.random.Generator,
    ) -> list[tuple[str, FitInstructions]]:
        return self.strategy.configure_fit(server_round, parameters, clients, rng)

    def secure_contribution(self, server_round: int) -> SecureContribution:
        """Charge the round (before any noise is drawn), then ask for noised encodings."""
        event = self.mechanism.event
        if self.ledger is not None:
            self.ledger.charge(event, label=f"fl round {server_round}: distributed DP")
        self.events.append(event)
        return SecureContribution(l2_clip=self.mechanism.l2_clip, distributed_noise=self.mechanism)

    def aggregate_secure_sum(
        self, server_round: int, parameters: Parameters, secure: SecureSum
    ) -> Aggregate:
        inner = self.strategy.aggregate_secure_sum(server_round, parameters, secure)
        return Aggregate(inner.parameters, {"clients": secure.clients})

    def aggregate_fit(
        self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
    ) -> Aggregate:
        raise PrivacyError(
            "DistributedDp needs a secure-aggregation engine (SecAggEngine): the clients' "
            "noise protects only their sum, never an update the server sees on its own"
        )

    def configure_evaluate(
        self,
        server_round: int,
        parameters: Parameters,
        clients: Sequence[str],
        rng: np.random.Generator,
    ) -> list[tuple[str, EvaluateInstructions]]:
        # Client-side evaluation releases un-noised losses: not part of the DP guarantee.
        return []

    def aggregate_evaluate(
        self, server_round: int, results: RoundResults[EvaluateResult]
    ) -> EvaluationSummary:
        return EvaluationSummary(loss=None, num_examples=0)
