"""Central (server-side) differential privacy for federated learning, as strategy wrappers.

User-level DP-FedAvg (McMahan et al., "Learning Differentially Private
Recurrent Language Models", ICLR 2018): each round the server samples every
client independently with probability ``q`` (Poisson sampling, so the
accounting matches the sampling actually done), clips each client's update
``Δ_k = w_k − w`` to L2 norm ``C``, adds ``N(0, σ² C² I)`` to their sum and
divides by the *expected* number of participants ``q N`` (the fixed-denominator
estimator: the real count is not released). Adding or removing one client
changes the sum by at most ``C``, so each round is a Poisson-subsampled
Gaussian with noise multiplier ``σ`` over clients, charged to a
:class:`privet.dp.Ledger` before any noise is drawn.

The wrapped strategy receives the noisy mean update as one pseudo-client
result, so it may be FedAvg, FedProx or a server optimizer (FedAdam ...),
which all consume an average; strategies that need individual updates
(median, Krum) are refused: the server must not see them through DP.

:class:`AdaptiveClippingDp` adapts ``C`` toward a quantile of the update
norms (Andrew et al., "Differentially Private Learning with Adaptive
Clipping", NeurIPS 2021), spending part of the same noise budget on the
count of unclipped clients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dp_accounting
import numpy as np
from numpy.typing import NDArray

from privet.dp._validation import check_positive, check_positive_int, check_probability
from privet.dp.ledger import Ledger
from privet.dp.randomness import RandomSource, RngLike, resolve_rng
from privet.errors import PrivacyError
from privet.fl.parameters import Parameters
from privet.fl.strategy import (
    Aggregate,
    EvaluationSummary,
    SampledStrategy,
    SecureContribution,
    SecureSum,
    Strategy,
)
from privet.fl.types import (
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    RoundResults,
)

__all__ = ["AdaptiveClippingDp", "FixedClippingDp", "client_updates", "clip_rows"]

DP_AGGREGATE_ID = "dp-aggregate"


def clip_rows(
    updates: NDArray[np.float64], bound: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Scale each row to L2 norm at most ``bound``; return the clipped rows and the norms."""
    norms = np.linalg.norm(updates, axis=1) if updates.size else np.zeros(updates.shape[0])
    factors = np.minimum(1.0, bound / np.maximum(norms, np.finfo(np.float64).tiny))
    return updates * factors[:, None], norms


def client_updates(parameters: Parameters, results: RoundResults[FitResult]) -> NDArray[np.float64]:
    """``(clients, size)`` matrix of updates ``w_k − w``; a malformed answer (another layout,
    NaN or infinity) counts as a zero update, which is within the clipping ball, so a
    hostile client can neither poison the sum nor make the round's fate data-dependent."""
    global_vector = parameters.to_vector()
    rows = np.zeros((len(results.results), global_vector.size))
    for row, (_, result) in zip(rows, results.results, strict=True):
        if parameters.same_layout(result.parameters):
            update = result.parameters.to_vector() - global_vector
            if np.isfinite(update).all():
                row[:] = update
    return rows


class FixedClippingDp:
    """Central DP with a fixed clipping bound around any averaging strategy.

    Parameters
    ----------
    strategy
        The strategy to wrap. It must consume an average (its
        ``needs_individual_updates`` is False) and, if it samples clients
        itself, ask all of them (``fraction_fit=1.0``, ``min_fit_clients=1``):
        the wrapper does the Poisson sampling its accounting assumes.
    noise_multiplier
        ``σ``: noise standard deviation over the clipping bound (> 0).
    clip_norm
        ``C``: the L2 bound on each client's update (> 0).
    sampling_rate
        ``q``: each available client takes part in a round with this
        probability, in (0, 1].
    population
        ``N``: the number of clients in the federation, a public constant.
        The noisy sum is divided by ``q N`` whatever the live count is: a
        denominator read from the data would release it (the noise scale
        would reveal how many clients exist).
    ledger
        Every round is charged here before noise is drawn; a refused charge
        raises :class:`privet.BudgetExceeded` and the model is unchanged.
        ``None`` only records the events (``events``) — for analysis.
    rng
        ``None`` (the OS CSPRNG) for real runs; a seeded
        ``numpy.random.Generator`` for simulation (warns). Drives both the
        client sampling and the noise.
    """

    needs_individual_updates = False
    #: How many clients answered or failed is a function of the data: not released.
    releases_counts = False

    def __init__(
        self,
        strategy: Strategy,
        *,
        noise_multiplier: float,
        clip_norm: float,
        sampling_rate: float,
        population: int,
        ledger: Ledger | None = None,
        rng: RngLike = None,
    ) -> None:
        if not isinstance(strategy, Strategy):
            raise PrivacyError(f"strategy must implement the Strategy protocol, got {strategy!r}")
        if strategy.needs_individual_updates:
            raise PrivacyError(
                f"{type(strategy).__name__} needs individual client updates; central DP only "
                "releases their noisy sum (wrap FedAvg, FedProx or a FedOpt strategy)"
            )
        if isinstance(strategy, SampledStrategy) and (
            strategy.sampling.fraction_fit != 1.0 or strategy.sampling.min_fit_clients != 1
        ):
            raise PrivacyError(
                "the wrapped strategy must ask every client the DP wrapper samples: build it "
                f"with ClientSampling(fraction_fit=1.0, min_fit_clients=1), got {strategy.sampling}"
            )
        self.strategy = strategy
        self.noise_multiplier = check_positive("noise_multiplier", noise_multiplier)
        self.clip_norm = check_positive("clip_norm", clip_norm)
        self.sampling_rate = check_probability("sampling_rate", sampling_rate, open_low=True)
        self.ledger = ledger
        self._source: RandomSource = resolve_rng(rng, release=True)
        self.population = check_positive_int("population", population)
        self.events: list[dp_accounting.DpEvent] = []

    # -- the round's privacy event -------------------------------------------------------------

    def round_event(self) -> dp_accounting.DpEvent:
        """What one round spends: a Poisson-subsampled Gaussian over clients."""
        gaussian = dp_accounting.GaussianDpEvent(self.noise_multiplier)
        return dp_accounting.PoissonSampledDpEvent(self.sampling_rate, gaussian)

    def _charge(self, server_round: int) -> None:
        event = self.round_event()
        if self.ledger is not None:
            self.ledger.charge(event, label=f"fl round {server_round}: central DP")
        self.events.append(event)

    # -- fit -----------------------------------------------------------------------------------

    def configure_fit(
        self,
        server_round: int,
        parameters: Parameters,
        clients: Sequence[str],
        rng: np.random.Generator,
    ) -> list[tuple[str, FitInstructions]]:
        """Poisson-sample the clients (own randomness), then let the strategy instruct them."""
        if len(clients) > self.population:
            raise PrivacyError(
                f"{len(clients)} clients are available, more than the declared population of "
                f"{self.population}; declare the federation's size when building the wrapper"
            )
        if not clients:
            return []
        chosen_mask = self._source.uniform(len(clients)) < self.sampling_rate
        chosen = [client for client, keep in zip(clients, chosen_mask, strict=True) if keep]
        if not chosen:
            return []
        tasks = self.strategy.configure_fit(server_round, parameters, chosen, rng)
        if sorted(client for client, _ in tasks) != sorted(chosen):
            raise PrivacyError(
                "the wrapped strategy must ask exactly the clients the DP wrapper sampled "
                "(its own client sampling would break the accounting)"
            )
        return tasks

    def update_noise_multiplier(self) -> float:
        """Noise multiplier of the update sum (all of ``σ`` here)."""
        return self.noise_multiplier

    def _adapt(
        self, unclipped: int, clients: int, bound: float, expected_clients: float
    ) -> dict[str, float | int]:
        """After the round's noise: adjust state (the adaptive subclass moves ``C``) from how
        many of the round's ``clients`` had an update norm within ``bound``."""
        return {}

    def _noisy_mean_update(
        self, parameters: Parameters, results: RoundResults[FitResult]
    ) -> tuple[NDArray[np.float64], dict[str, float | int]]:
        bound = self.clip_norm
        clipped, norms = clip_rows(client_updates(parameters, results), bound)
        noise = self._source.standard_normal(parameters.size)
        noisy_sum = clipped.sum(axis=0) + (self.update_noise_multiplier() * bound) * noise
        expected_clients = self.sampling_rate * self.population
        # Only what the accounted mechanism released: counts and clipped shares are exact
        # functions of the data and stay inside.
        stats: dict[str, float | int] = {"dp_clip_norm": bound}
        unclipped = int(np.count_nonzero(norms <= bound))
        stats.update(self._adapt(unclipped, norms.size, bound, expected_clients))
        return noisy_sum / expected_clients, stats

    def aggregate_fit(
        self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
    ) -> Aggregate:
        """Charge the round, then hand the noisy mean update to the wrapped strategy."""
        self._charge(server_round)  # before any noise: a refusal changes nothing
        mean_update, stats = self._noisy_mean_update(parameters, results)
        return self._step(server_round, parameters, mean_update, stats)

    def secure_contribution(self, server_round: int) -> SecureContribution:
        """Under secure aggregation each client clips its own update to ``C``."""
        return SecureContribution(l2_clip=self.clip_norm)

    def aggregate_secure_sum(
        self, server_round: int, parameters: Parameters, secure: SecureSum
    ) -> Aggregate:
        """Charge, add the central noise to the securely summed clipped updates, step.

        The server sees only the sum (Bonawitz et al. 2017), so it learns no
        single update even before its noise; the DP guarantee is the same as
        :meth:`aggregate_fit`'s because the sum of clipped updates is the same.
        """
        self._charge(server_round)
        bound = self.clip_norm
        noise = self._source.standard_normal(parameters.size)
        noisy_sum = secure.update_sum + (self.update_noise_multiplier() * bound) * noise
        expected_clients = self.sampling_rate * self.population
        stats: dict[str, float | int] = {"dp_clip_norm": bound}
        if secure.unclipped is not None:
            stats.update(self._adapt(secure.unclipped, secure.clients, bound, expected_clients))
        return self._step(server_round, parameters, noisy_sum / expected_clients, stats)

    def _step(
        self,
        server_round: int,
        parameters: Parameters,
        mean_update: NDArray[np.float64],
        stats: dict[str, float | int],
    ) -> Aggregate:
        pseudo = FitResult(parameters.from_vector(parameters.to_vector() + mean_update), 1)
        inner = self.strategy.aggregate_fit(
            server_round,
            parameters,
            # Which clients failed is not released either: the inner strategy sees one result.
            RoundResults(results=[(DP_AGGREGATE_ID, pseudo)], failures=()),
        )
        # The inner strategy's metrics describe the single pseudo-client: not reported.
        return Aggregate(inner.parameters, stats)

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The clipping bound and the wrapped strategy's state (keys ``inner.*``), for round
        checkpoints (:mod:`privet.fl.deploy.checkpoint`); plain values, no pickle."""
        state: dict[str, Any] = {"clip_norm": self.clip_norm}
        inner = getattr(self.strategy, "state_dict", None)
        if callable(inner):
            state.update({f"inner.{key}": value for key, value in inner().items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; everything is checked before anything changes."""
        if not isinstance(state, Mapping) or "clip_norm" not in state:
            raise PrivacyError(f"state must hold 'clip_norm', got {state!r}")
        clip_norm = check_positive("clip_norm", state["clip_norm"])
        unknown = [key for key in state if key != "clip_norm" and not key.startswith("inner.")]
        if unknown:
            raise PrivacyError(f"state has unknown keys {sorted(unknown)}")
        self._check_restored_clip(clip_norm)
        inner_state = {key[6:]: value for key, value in state.items() if key.startswith("inner.")}
        load = getattr(self.strategy, "load_state_dict", None)
        if inner_state and not callable(load):
            raise PrivacyError(
                "the checkpoint holds strategy state the wrapped strategy cannot load"
            )
        if inner_state and callable(load):
            load(inner_state)
        self.clip_norm = clip_norm

    def _check_restored_clip(self, clip_norm: float) -> None:
        if clip_norm != self.clip_norm:
            raise PrivacyError(
                f"the checkpoint was written with clip_norm {clip_norm!r}, this run uses "
                f"{self.clip_norm!r}; a fixed bound cannot change mid-run"
            )

    # -- evaluate: centrally only -------------------------------------------------------------

    def configure_evaluate(
        self,
        server_round: int,
        parameters: Parameters,
        clients: Sequence[str],
        rng: np.random.Generator,
    ) -> list[tuple[str, EvaluateInstructions]]:
        """No client evaluates: their losses on private data would be released without
        noise. Evaluate centrally (``run_federated(central_evaluation=...)``) instead."""
        return []

    def aggregate_evaluate(
        self, server_round: int, results: RoundResults[EvaluateResult]
    ) -> EvaluationSummary:
        return self.strategy.aggregate_evaluate(server_round, results)


class AdaptiveClippingDp(FixedClippingDp):
    """Central DP whose clipping bound tracks a quantile of the update norms.

    Andrew et al. 2021, Algorithm 1 with geometric updates: each round the
    server also releases the noisy fraction of clients whose update norm was
    at most ``C``, ``b̃ = (Σ_k 1[‖Δ_k‖ ≤ C] + N(0, σ_b²)) / (q N)``, and sets
    ``C ← C · exp(−η (b̃ − γ))``. Both releases together are one Gaussian
    mechanism with noise multiplier ``noise_multiplier`` (their Theorem 1):
    the updates get ``σ_Δ = (σ^−2 − (2 σ_b)^−2)^−1/2``, so the round's event
    is the same as :class:`FixedClippingDp`'s.

    Parameters
    ----------
    initial_clip_norm
        Starting ``C`` (> 0).
    target_quantile
        ``γ`` in (0, 1): the share of updates meant to fall under ``C``.
    clip_learning_rate
        ``η`` (> 0); 0.2 in the paper.
    clipped_count_stddev
        ``σ_b`` (> 0); the paper suggests the expected number of clients
        per round over 20. Must exceed ``σ / 2`` so that ``σ_Δ`` exists.
    (the rest as :class:`FixedClippingDp`)
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        noise_multiplier: float,
        initial_clip_norm: float,
        sampling_rate: float,
        population: int,
        clipped_count_stddev: float,
        target_quantile: float = 0.5,
        clip_learning_rate: float = 0.2,
        ledger: Ledger | None = None,
        rng: RngLike = None,
    ) -> None:
        super().__init__(
            strategy,
            noise_multiplier=noise_multiplier,
            clip_norm=initial_clip_norm,
            sampling_rate=sampling_rate,
            population=population,
            ledger=ledger,
            rng=rng,
        )
        self.clipped_count_stddev = check_positive("clipped_count_stddev", clipped_count_stddev)
        floor = self.noise_multiplier / 2.0
        if self.clipped_count_stddev <= floor:
            raise PrivacyError(
                f"clipped_count_stddev must be > noise_multiplier / 2 = {floor:.6g} (else the "
                f"updates get no share of the noise budget), got {clipped_count_stddev!r}"
            )
        quantile = check_probability("target_quantile", target_quantile, open_low=True)
        if quantile >= 1.0:
            raise PrivacyError(f"target_quantile must be in (0, 1), got {target_quantile!r}")
        self.target_quantile = quantile
        self.clip_learning_rate = check_positive("clip_learning_rate", clip_learning_rate)

    def _check_restored_clip(self, clip_norm: float) -> None:
        """The adaptive bound moves every round: any positive value may be restored."""

    def secure_contribution(self, server_round: int) -> SecureContribution:
        """Each client clips to ``C`` and adds its bit ``1[‖Δ‖ <= C]`` to the secure sum."""
        return SecureContribution(l2_clip=self.clip_norm, report_unclipped=True)

    def update_noise_multiplier(self) -> float:
        """``σ_Δ = (σ^−2 − (2 σ_b)^−2)^−1/2``: the updates' share of the noise budget."""
        inverse_sq = self.noise_multiplier**-2 - (2.0 * self.clipped_count_stddev) ** -2
        return 1.0 / math.sqrt(inverse_sq)

    def _adapt(
        self, unclipped: int, clients: int, bound: float, expected_clients: float
    ) -> dict[str, float | int]:
        # Centred bits b - 1/2 have sensitivity 1/2 under adding or removing a client.
        centred = unclipped - 0.5 * clients
        noise = self.clipped_count_stddev * float(self._source.standard_normal(1)[0])
        unclipped_fraction = (centred + noise) / expected_clients + 0.5
        self.clip_norm = bound * math.exp(
            -self.clip_learning_rate * (unclipped_fraction - self.target_quantile)
        )
        return {
            "dp_next_clip_norm": self.clip_norm,
            "dp_noisy_unclipped_fraction": unclipped_fraction,
        }
