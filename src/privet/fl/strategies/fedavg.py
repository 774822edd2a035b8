"""FedAvg and FedProx.

McMahan et al., "Communication-Efficient Learning of Deep Networks from
Decentralized Data", AISTATS 2017; Li et al., "Federated Optimization in
Heterogeneous Networks", MLSys 2020.
"""

from __future__ import annotations

import math

import numpy as np

from privet.errors import PrivacyError
from privet.fl.parameters import Parameters
from privet.fl.strategy import (
    Aggregate,
    ClientSampling,
    SampledStrategy,
    SecureContribution,
    SecureSum,
)
from privet.fl.types import FitInstructions, FitResult, RoundAborted, RoundResults

__all__ = ["FedAvg", "FedProx"]


class FedAvg(SampledStrategy):
    """Average the clients' parameters, weighted by their example counts.

    Parameters
    ----------
    sampling
        Which clients take part each round (default: all of them).
    weighted
        ``True`` (McMahan et al.) weights client ``k`` by ``n_k``; ``False``
        takes the plain mean, for when example counts are private or untrusted.
    """

    def __init__(self, sampling: ClientSampling | None = None, *, weighted: bool = True) -> None:
        super().__init__(sampling)
        self.weighted = weighted

    def aggregate_fit(
        self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
    ) -> Aggregate:
        # Streamed: a running weighted sum, never a (clients, parameters) matrix, so a
        # thousand-client round of a wide model costs one vector of memory, not thousands.
        rejected: list[tuple[str, str]] = []
        kept: list[tuple[str, FitResult]] = []
        total = np.zeros(parameters.size)
        weight_sum = 0.0
        for client, result, row in self.screen(parameters, results, rejected):
            weight = float(result.num_examples) if self.weighted else 1.0
            if weight:
                total += weight * row
            weight_sum += weight
            kept.append((client, result))
        self.check_enough(RoundResults(kept, [*results.failures, *rejected]))
        if weight_sum == 0:
            raise RoundAborted("every client reported num_examples = 0; nothing to average")
        metrics = {
            "clients": len(kept),
            "failures": len(results.failures),
            "rejected": len(rejected),
            "examples": sum(result.num_examples for _, result in kept),
        }
        return Aggregate(parameters.from_vector(total / weight_sum), metrics)

    def secure_contribution(self, server_round: int) -> SecureContribution:
        """Each client adds its update, weighted by its (capped) example count if weighted."""
        return SecureContribution(weighted=self.weighted)

    def aggregate_secure_sum(
        self, server_round: int, parameters: Parameters, secure: SecureSum
    ) -> Aggregate:
        """The (weighted) mean update from a secure sum, added to the global model."""
        if secure.clients < self.sampling.min_fit_clients:
            raise RoundAborted(
                f"{secure.clients} client(s) finished secure aggregation; the round needs at "
                f"least {self.sampling.min_fit_clients}"
            )
        if secure.weight_sum <= 0:
            raise RoundAborted("the secure sum's weights add up to 0; nothing to average")
        mean_update = secure.update_sum / secure.weight_sum
        metrics = {"clients": secure.clients, "failures": secure.dropped}
        return Aggregate(parameters.from_vector(parameters.to_vector() + mean_update), metrics)


class FedProx(FedAvg):
    """FedAvg whose clients minimise ``loss + mu/2 ||w - w_global||^2`` (Li et al. 2020).

    The proximal term is applied on the client side: the strategy sends
    ``proximal_mu`` in every :class:`FitInstructions`, and privet's clients
    (:class:`privet.fl.torch.TorchClient`, the vectorized engine) add it to
    their local objective.
    """

    def __init__(
        self,
        proximal_mu: float,
        sampling: ClientSampling | None = None,
        *,
        weighted: bool = True,
    ) -> None:
        super().__init__(sampling, weighted=weighted)
        if isinstance(proximal_mu, bool) or not (
            isinstance(proximal_mu, int | float) and math.isfinite(proximal_mu) and proximal_mu > 0
        ):
            raise PrivacyError(f"proximal_mu must be > 0, got {proximal_mu!r}")
        self.proximal_mu = float(proximal_mu)

    def fit_instructions(self, server_round: int) -> FitInstructions:
        return FitInstructions(server_round=server_round, proximal_mu=self.proximal_mu)
