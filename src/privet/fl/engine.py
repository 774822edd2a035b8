"""Engines carry a round to the clients; :func:`run_federated` drives the rounds.

An engine knows its clients and runs one half-round for them: ``fit`` or
``evaluate`` with the global parameters and each client's instructions,
returning the answers and the failures (:class:`~privet.fl.types.RoundResults`).
How it reaches the clients is its own business — a loop in this process
(:class:`SequentialEngine`), one vectorized computation
(:class:`privet.fl.vectorized.VectorizedEngine`), Ray tasks or gRPC. The
round logic (sample, fit, aggregate, evaluate, account) is written once, in
:func:`run_federated`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from privet.dp._validation import check_positive_int
from privet.errors import BudgetExceeded, PrivacyError
from privet.fl.parameters import Parameters
from privet.fl.strategy import (
    Aggregate,
    EvaluationSummary,
    SecureContribution,
    SecureSum,
    Strategy,
    SumStrategy,
)
from privet.fl.types import (
    Client,
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    Metrics,
    ResultT,
    RoundAborted,
    RoundResults,
)

__all__ = [
    "CentralEvaluation",
    "Engine",
    "History",
    "RoundRecord",
    "SecureEngine",
    "SequentialEngine",
    "SumOnlyEngine",
    "check_sum_strategy",
    "run_federated",
]

logger = logging.getLogger("privet.fl")

InstructionT = TypeVar("InstructionT", FitInstructions, EvaluateInstructions)

#: Server-side evaluation of the global parameters: ``parameters -> (loss, metrics)``.
CentralEvaluation = Callable[[Parameters], tuple[float, Metrics]]


@runtime_checkable
class Engine(Protocol):
    """Runs half-rounds on a fixed set of clients."""

    @property
    def client_ids(self) -> Sequence[str]: ...

    def fit(
        self, parameters: Parameters, tasks: Sequence[tuple[str, FitInstructions]]
    ) -> RoundResults[FitResult]: ...

    def evaluate(
        self, parameters: Parameters, tasks: Sequence[tuple[str, EvaluateInstructions]]
    ) -> RoundResults[EvaluateResult]: ...

    def close(self) -> None: ...


@runtime_checkable
class SecureEngine(Engine, Protocol):
    """An engine whose fits end in a secure sum instead of individual results
    (:class:`privet.fl.secure_engine.SecAggEngine`)."""

    def fit_secure(
        self,
        parameters: Parameters,
        tasks: Sequence[tuple[str, FitInstructions]],
        contribution: SecureContribution,
        server_round: int,
    ) -> SecureSum: ...


class SumOnlyEngine:
    """What engines whose fits end in a secure sum share: evaluation runs in the clear
    through an ordinary engine (:attr:`evaluation`), and :meth:`fit` is refused, since no
    individual result ever exists (SecAgg, encrypted aggregation)."""

    evaluation: Engine

    @property
    def client_ids(self) -> Sequence[str]:
        return self.evaluation.client_ids

    def fit(
        self, parameters: Parameters, tasks: Sequence[tuple[str, FitInstructions]]
    ) -> RoundResults[FitResult]:
        raise PrivacyError(
            f"{type(self).__name__} never returns individual client results; run it with "
            "run_federated and a strategy that aggregates a sum (FedAvg or its DP wrappers)"
        )

    def evaluate(
        self, parameters: Parameters, tasks: Sequence[tuple[str, EvaluateInstructions]]
    ) -> RoundResults[EvaluateResult]:
        return self.evaluation.evaluate(parameters, tasks)

    def close(self) -> None:
        self.evaluation.close()


class SequentialEngine:
    """Every client in this process, one after another: the reference engine.

    A client that raises is reported as a failure of that round (its
    exception text as the reason), as a dropped client would be.
    """

    def __init__(self, clients: Mapping[str, Client]) -> None:
        for client_id, client in clients.items():
            if not isinstance(client_id, str) or not client_id:
                raise PrivacyError(f"client ids must be non-empty strings, got {client_id!r}")
            if not isinstance(client, Client):
                raise PrivacyError(f"client {client_id!r} must have fit and evaluate")
        self._clients = dict(clients)

    @property
    def client_ids(self) -> Sequence[str]:
        return list(self._clients)

    def _client(self, client_id: str) -> Client:
        if client_id not in self._clients:
            raise PrivacyError(f"unknown client id {client_id!r}")
        return self._clients[client_id]

    def fit(
        self, parameters: Parameters, tasks: Sequence[tuple[str, FitInstructions]]
    ) -> RoundResults[FitResult]:
        return self._ask("fit", tasks, lambda client, ins: client.fit(parameters, ins))

    def evaluate(
        self, parameters: Parameters, tasks: Sequence[tuple[str, EvaluateInstructions]]
    ) -> RoundResults[EvaluateResult]:
        return self._ask("evaluate", tasks, lambda client, ins: client.evaluate(parameters, ins))

    def _ask(
        self,
        what: str,
        tasks: Sequence[tuple[str, InstructionT]],
        call: Callable[[Client, InstructionT], ResultT],
    ) -> RoundResults[ResultT]:
        """Run ``call`` for each task's client; a client that raises becomes a failure."""
        results: list[tuple[str, ResultT]] = []
        failures: list[tuple[str, str]] = []
        for client_id, instructions in tasks:
            client = self._client(client_id)
            try:
                results.append((client_id, call(client, instructions)))
            except Exception as error:  # a failing client drops out of the round
                logger.warning("client %r failed to %s: %s", client_id, what, error)
                failures.append((client_id, f"{type(error).__name__}: {error}"))
        return RoundResults(results, failures)

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class RoundRecord:
    """What happened in one round."""

    server_round: int
    clients: int | None  # None when the strategy keeps counts private (DP)
    failures: int | None
    fit_metrics: Metrics
    evaluation: EvaluationSummary | None
    central_loss: float | None
    central_metrics: Metrics
    seconds: float
    aborted: str | None = None


@dataclass
class History:
    """The rounds of a run and its final global parameters."""

    parameters: Parameters
    rounds: list[RoundRecord] = field(default_factory=list)
    stopped: str | None = None  # why the run ended early (e.g. the privacy budget)


def run_federated(
    engine: Engine,
    strategy: Strategy,
    initial_parameters: Parameters,
    rounds: int,
    *,
    rng: np.random.Generator,
    central_evaluation: CentralEvaluation | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    first_round: int = 1,
) -> History:
    """Run ``rounds`` federated rounds and return the history.

    Each round: the strategy samples clients and instructs them, the engine
    runs their fits, the strategy aggregates (an aborted round leaves the
    model unchanged and the run goes on), then optional client-side and
    central evaluation. A refused privacy charge (:class:`privet.BudgetExceeded`)
    ends the run cleanly with the last accepted model; ``History.stopped``
    says why.

    Parameters
    ----------
    rng
        Drives client sampling (a seeded generator makes runs reproducible;
        DP wrappers use their own randomness for what protects privacy).
    first_round
        Number of the first round (a resumed run continues the count).
    """
    check_positive_int("rounds", rounds)
    check_positive_int("first_round", first_round)
    secure = isinstance(engine, SecureEngine)
    if secure:
        check_sum_strategy(strategy)
    parameters = initial_parameters
    history = History(parameters)
    for server_round in range(first_round, first_round + rounds):
        started = time.perf_counter()
        aborted = None
        fit_metrics: Metrics = {}
        tasks: Sequence[tuple[str, FitInstructions]] = []
        answered, failed = 0, 0
        try:
            tasks = strategy.configure_fit(server_round, parameters, engine.client_ids, rng)
            if secure:
                aggregate, answered, failed = _secure_round(
                    engine, strategy, parameters, tasks, server_round
                )
            else:
                results = engine.fit(parameters, tasks)
                answered, failed = len(results.results), len(results.failures)
                aggregate = strategy.aggregate_fit(server_round, parameters, results)
            parameters.check_layout(aggregate.parameters, what="aggregated parameters")
            parameters, fit_metrics = aggregate.parameters, aggregate.metrics
        except RoundAborted as error:
            aborted = str(error)
            logger.warning("round %d aborted: %s", server_round, error)
        except BudgetExceeded as error:
            history.stopped = str(error)
            logger.info("run stopped before round %d: %s", server_round, error)
            break
        evaluation = None
        eval_tasks = strategy.configure_evaluate(server_round, parameters, engine.client_ids, rng)
        if eval_tasks:
            evaluation = strategy.aggregate_evaluate(
                server_round, engine.evaluate(parameters, eval_tasks)
            )
        central_loss: float | None = None
        central_metrics: Metrics = {}
        if central_evaluation is not None:
            central_loss, central_metrics = central_evaluation(parameters)
        public = strategy.releases_counts
        record = RoundRecord(
            server_round=server_round,
            clients=answered if public else None,
            failures=failed if public else None,
            fit_metrics=fit_metrics,
            evaluation=evaluation,
            central_loss=central_loss,
            central_metrics=central_metrics,
            seconds=time.perf_counter() - started,
            aborted=aborted,
        )
        history.rounds.append(record)
        history.parameters = parameters
        if on_round is not None:
            on_round(record)
    return history


def check_sum_strategy(strategy: Strategy) -> None:
    """Refuse, before any round, a strategy that secure aggregation cannot serve."""
    name = type(strategy).__name__
    if strategy.needs_individual_updates:
        raise PrivacyError(
            f"{name} needs individual client updates, which secure aggregation hides; "
            "use a strategy that aggregates a sum (FedAvg, FedProx, their DP wrappers)"
        )
    if not isinstance(strategy, SumStrategy):
        raise PrivacyError(
            f"{name} cannot aggregate a secure sum (it has no aggregate_secure_sum); "
            "use FedAvg, FedProx or their DP wrappers"
        )


def _secure_round(
    engine: Engine,
    strategy: Strategy,
    parameters: Parameters,
    tasks: Sequence[tuple[str, FitInstructions]],
    server_round: int,
) -> tuple[Aggregate, int, int]:
    if not isinstance(engine, SecureEngine) or not isinstance(strategy, SumStrategy):
        raise PrivacyError("a secure round needs a SecureEngine and a SumStrategy")
    if not tasks:
        raise RoundAborted("no client was asked to fit this round")
    contribution = strategy.secure_contribution(server_round)
    secure_sum = engine.fit_secure(parameters, tasks, contribution, server_round)
    aggregate = strategy.aggregate_secure_sum(server_round, parameters, secure_sum)
    return aggregate, secure_sum.clients, secure_sum.dropped
