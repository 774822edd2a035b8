"""The strategy protocol and the client sampling most strategies share.

A strategy is a small object with one job per round half: choose clients and
their instructions (``configure_fit`` / ``configure_evaluate``), then turn
their answers into the next global model (``aggregate_fit``) or a summary
(``aggregate_evaluate``). Engines drive it (:func:`privet.fl.run_federated`);
wrappers (differential privacy, secure aggregation) wrap any strategy and
forward this same interface.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.fl.parameters import Parameters
from privet.fl.types import (
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    Metrics,
    RoundAborted,
    RoundResults,
)
from privet.secagg.distributed_dp import DistributedDiscreteGaussian

__all__ = [
    "Aggregate",
    "ClientSampling",
    "ClientUpdates",
    "EvaluationSummary",
    "SampledStrategy",
    "SecureContribution",
    "SecureSum",
    "Strategy",
    "SumStrategy",
    "sample_clients",
]


@dataclass(frozen=True)
class Aggregate:
    """The next global model and what the strategy reports about the round."""

    parameters: Parameters
    metrics: Metrics = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationSummary:
    """Example-weighted mean loss over the clients that evaluated (``None`` if none did)."""

    loss: float | None
    num_examples: int
    metrics: Metrics = field(default_factory=dict)


@runtime_checkable
class Strategy(Protocol):
    """How a federated round picks clients and combines what they send."""

    #: ``True`` if aggregation needs each client's update (medians, Krum); ``False`` if a
    #: (weighted) sum is enough, so secure aggregation can hide individual updates.
    needs_individual_updates: bool
    #: ``False`` when how many clients answered or failed must stay private (DP wrappers):
    #: the round records then leave those counts out.
    releases_counts: bool

    def configure_fit(
        self,
        server_round: int,
        parameters: Parameters,
        clients: Sequence[str],
        rng: np.random.Generator,
    ) -> list[tuple[str, FitInstructions]]: ...

    def aggregate_fit(
        self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
    ) -> Aggregate: ...

    def configure_evaluate(
        self,
        server_round: int,
        parameters: Parameters,
        clients: Sequence[str],
        rng: np.random.Generator,
    ) -> list[tuple[str, EvaluateInstructions]]: ...

    def aggregate_evaluate(
        self, server_round: int, results: RoundResults[EvaluateResult]
    ) -> EvaluationSummary: ...


@dataclass(frozen=True)
class SecureContribution:
    """What each client feeds into a secure sum; the strategy decides, the engine encodes.

    Every client adds its update ``delta = x_client - x_global``.

    Attributes
    ----------
    l2_clip
        If set, the client scales ``delta`` down to this L2 norm first (the
        clipping a DP wrapper's sensitivity rests on, done client-side
        because the server never sees ``delta``).
    weighted
        ``True``: the client adds ``w delta`` and ``w``, with ``w`` its
        example count capped by the engine (example-weighted FedAvg);
        ``False``: ``delta`` alone, and the mean divides by the survivors.
    distributed_noise
        If set, the client encodes with this mechanism, which clips, rounds
        and adds its share of discrete Gaussian noise (Kairouz et al. 2021).
    report_unclipped
        The client also adds the bit ``1[‖delta‖ <= l2_clip]`` (before
        clipping), so the sum carries the count of unclipped clients that
        adaptive clipping needs (Andrew et al. 2021); needs ``l2_clip``.
    """

    l2_clip: float | None = None
    weighted: bool = False
    distributed_noise: DistributedDiscreteGaussian | None = None
    report_unclipped: bool = False

    def __post_init__(self) -> None:
        clip = self.l2_clip
        if clip is not None and (
            isinstance(clip, bool)
            or not isinstance(clip, int | float)
            or not (math.isfinite(clip) and clip > 0)
        ):
            raise PrivacyError(f"l2_clip must be None or a finite number > 0, got {clip!r}")
        if not isinstance(self.weighted, bool):
            raise PrivacyError(f"weighted must be a bool, got {self.weighted!r}")
        noise = self.distributed_noise
        if noise is not None and not isinstance(noise, DistributedDiscreteGaussian):
            raise PrivacyError(
                f"distributed_noise must be None or a DistributedDiscreteGaussian, got {noise!r}"
            )
        if not isinstance(self.report_unclipped, bool):
            raise PrivacyError(f"report_unclipped must be a bool, got {self.report_unclipped!r}")
        if self.report_unclipped and (clip is None or noise is not None):
            raise PrivacyError(
                "report_unclipped must be False unless l2_clip is set and distributed_noise "
                f"is not, got l2_clip={clip!r} with distributed noise {noise is not None}"
            )


@dataclass(frozen=True)
class SecureSum:
    """What secure aggregation reveals: the sum over the clients that finished, nothing else.

    Attributes
    ----------
    update_sum
        ``sum_u w_u delta_u`` (``w_u = 1`` unless weighted), decoded to floats.
    weight_sum
        ``sum_u w_u``.
    clients
        ``|U3|``: how many clients' inputs are in the sum (the protocol
        reveals who finished).
    dropped
        How many of the asked clients are not in it.
    unclipped
        How many of them reported an update within the clip bound (``None``
        unless the contribution asked for ``report_unclipped``).
    """

    update_sum: NDArray[np.float64]
    weight_sum: float
    clients: int
    dropped: int
    unclipped: int | None = None


@runtime_checkable
class SumStrategy(Strategy, Protocol):
    """A strategy that can aggregate from a secure sum of updates, never seeing one."""

    def secure_contribution(self, server_round: int) -> SecureContribution:
        """What each client of this round adds to the sum (called before the round's fits)."""
        ...

    def aggregate_secure_sum(
        self, server_round: int, parameters: Parameters, secure: SecureSum
    ) -> Aggregate:
        """The next global model from the round's secure sum."""
        ...


@dataclass(frozen=True)
class ClientSampling:
    """Which clients take part: a fraction of those available, at least a minimum.

    Attributes
    ----------
    fraction_fit, fraction_evaluate
        Share of available clients asked to train / evaluate, in [0, 1];
        the count is rounded up.
    min_fit_clients, min_evaluate_clients
        Floors on those counts. A round whose answers fall below
        ``min_fit_clients`` is aborted and the model left unchanged.
    """

    fraction_fit: float = 1.0
    fraction_evaluate: float = 1.0
    min_fit_clients: int = 1
    min_evaluate_clients: int = 0

    def __post_init__(self) -> None:
        for name in ("fraction_fit", "fraction_evaluate"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise PrivacyError(f"{name} must be in [0, 1], got {value!r}")
        for name, floor in (("min_fit_clients", 1), ("min_evaluate_clients", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < floor:
                raise PrivacyError(f"{name} must be an integer >= {floor}, got {value!r}")


def sample_clients(
    clients: Sequence[str], fraction: float, minimum: int, rng: np.random.Generator
) -> list[str]:
    """``max(minimum, ceil(fraction * n))`` clients uniformly without replacement, in the
    order ``clients`` lists them (so a seed fixes the selection whatever the engine)."""
    count = max(minimum, math.ceil(fraction * len(clients)))
    if count > len(clients):
        raise RoundAborted(
            f"the round needs {count} clients, but only {len(clients)} are available"
        )
    chosen = np.sort(rng.choice(len(clients), size=count, replace=False))
    return [clients[int(i)] for i in chosen]


_MAX_EXAMPLES = 2**63 - 1  # what the wire carries; larger counts are hostile


@dataclass(frozen=True)
class ClientUpdates:
    """A round's well-formed answers as the rows of one matrix.

    An answer whose layout differs from the global parameters, or that holds
    NaN or infinity, is set aside (``rejected``) rather than aborting the
    round: one malformed client must not be able to stop training.
    """

    clients: list[str]
    matrix: NDArray[np.float64]
    num_examples: NDArray[np.float64]
    rejected: int
    failures: int

    def metrics(self) -> dict[str, bool | int | float | str]:
        return {
            "clients": len(self.clients),
            "failures": self.failures,
            "rejected": self.rejected,
            "examples": int(self.num_examples.sum()),
        }


class SampledStrategy(ABC):
    """Base for strategies that sample clients with :class:`ClientSampling`.

    Subclasses implement :meth:`aggregate_fit`; they may override
    :meth:`fit_instructions` to send more (FedProx sends ``proximal_mu``).
    """

    needs_individual_updates: bool = False
    releases_counts: bool = True

    def __init__(self, sampling: ClientSampling | None = None) -> None:
        self.sampling = sampling if sampling is not None else ClientSampling()

    def fit_instructions(self, server_round: int) -> FitInstructions:
        return FitInstructions(server_round=server_round)

    def configure_fit(
        self,
        server_round: int,
        parameters: Parameters,
        clients: Sequence[str],
        rng: np.random.Generator,
    ) -> list[tuple[str, FitInstructions]]:
        s = self.sampling
        chosen = sample_clients(clients, s.fraction_fit, s.min_fit_clients, rng)
        instructions = self.fit_instructions(server_round)
        return [(client, instructions) for client in chosen]

    def configure_evaluate(
        self,
        server_round: int,
        parameters: Parameters,
        clients: Sequence[str],
        rng: np.random.Generator,
    ) -> list[tuple[str, EvaluateInstructions]]:
        s = self.sampling
        if s.fraction_evaluate == 0.0 and s.min_evaluate_clients == 0:
            return []
        chosen = sample_clients(clients, s.fraction_evaluate, s.min_evaluate_clients, rng)
        return [(client, EvaluateInstructions(server_round)) for client in chosen]

    def check_enough(self, results: RoundResults[FitResult]) -> None:
        """Abort the round if fewer than ``min_fit_clients`` answered."""
        if len(results.results) < self.sampling.min_fit_clients:
            raise RoundAborted(
                f"{len(results.results)} client(s) answered, {len(results.failures)} failed; "
                f"the round needs at least {self.sampling.min_fit_clients}"
            )

    @staticmethod
    def screen(
        parameters: Parameters,
        results: RoundResults[FitResult],
        rejected: list[tuple[str, str]],
    ) -> Iterator[tuple[str, FitResult, NDArray[np.float64]]]:
        """Yield each well-formed answer with its flat vector; append the others (another
        layout, NaN or infinity, an impossible example count) to ``rejected``."""
        for client, result in results.results:
            if not parameters.same_layout(result.parameters):
                rejected.append((client, "layout differs from the global parameters"))
                continue
            row = result.parameters.to_vector()
            if not np.isfinite(row).all():
                rejected.append((client, "parameters hold NaN or infinity"))
                continue
            if result.num_examples > _MAX_EXAMPLES:
                rejected.append((client, f"num_examples above {_MAX_EXAMPLES}"))
                continue
            yield client, result, row

    def collect(self, parameters: Parameters, results: RoundResults[FitResult]) -> ClientUpdates:
        """The well-formed answers as a matrix; abort if fewer than ``min_fit_clients`` remain."""
        kept: list[tuple[str, FitResult]] = []
        rows: list[NDArray[np.float64]] = []
        rejected: list[tuple[str, str]] = []
        for client, result, row in self.screen(parameters, results, rejected):
            kept.append((client, result))
            rows.append(row)
        self.check_enough(RoundResults(kept, [*results.failures, *rejected]))
        return ClientUpdates(
            clients=[client for client, _ in kept],
            matrix=np.stack(rows) if rows else np.zeros((0, parameters.size)),
            num_examples=np.array([r.num_examples for _, r in kept], dtype=np.float64),
            rejected=len(rejected),
            failures=len(results.failures),
        )

    @abstractmethod
    def aggregate_fit(
        self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
    ) -> Aggregate:
        """The next global model from the clients' results."""

    def aggregate_evaluate(
        self, server_round: int, results: RoundResults[EvaluateResult]
    ) -> EvaluationSummary:
        return weighted_evaluation(results)


def weighted_evaluation(results: RoundResults[EvaluateResult]) -> EvaluationSummary:
    """Example-weighted mean loss and numeric metrics over the clients that answered."""
    answered = [result for _, result in results.results if result.num_examples > 0]
    total = sum(result.num_examples for result in answered)
    if total == 0:
        return EvaluationSummary(loss=None, num_examples=0)
    loss = sum(result.loss * result.num_examples for result in answered) / total
    keys = set.intersection(*(set(result.metrics) for result in answered))
    metrics: dict[str, float] = {}
    for key in sorted(keys):
        values = [result.metrics[key] for result in answered]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            weighted = sum(float(v) * r.num_examples for v, r in zip(values, answered, strict=True))
            metrics[key] = weighted / total
    return EvaluationSummary(loss=loss, num_examples=total, metrics=metrics)
