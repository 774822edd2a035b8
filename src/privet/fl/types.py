"""What clients, strategies and engines exchange: typed, frozen records.

A round has two halves. *Fit*: the strategy picks clients and gives each
:class:`FitInstructions`; each client trains from the global
:class:`~privet.fl.parameters.Parameters` and returns a :class:`FitResult`.
*Evaluate*: likewise with :class:`EvaluateInstructions` and
:class:`EvaluateResult`. Engines carry these between server and clients —
in one process, vectorized, over Ray or over gRPC — and report which
clients failed (:class:`RoundResults`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, runtime_checkable

from privet.errors import PrivacyError
from privet.fl.parameters import Parameters

__all__ = [
    "Client",
    "EvaluateInstructions",
    "EvaluateResult",
    "FitInstructions",
    "FitResult",
    "Metrics",
    "RoundAborted",
    "RoundResults",
    "Scalar",
]

#: Values a config or metric may hold (what ``privet.wire`` carries as JSON).
Scalar = bool | int | float | str
Metrics = Mapping[str, Scalar]


class RoundAborted(RuntimeError):
    """A round could not complete (too few clients answered); the global model is unchanged."""


def _check_metrics(name: str, metrics: Mapping[str, Scalar]) -> None:
    for key, value in metrics.items():
        if not isinstance(key, str) or not isinstance(value, bool | int | float | str):
            raise PrivacyError(
                f"{name} must map strings to bool, int, float or str, got {key!r}: {value!r}"
            )


def _check_count(name: str, value: int, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PrivacyError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class FitInstructions:
    """What the server asks of one client for one round of training.

    Attributes
    ----------
    server_round
        Round number, from 1.
    proximal_mu
        FedProx (Li et al. 2020): the client minimises its loss plus
        ``mu/2 * ||w - w_global||^2``; 0 is plain local SGD (FedAvg).
    local_epochs, learning_rate
        Overrides of the client's own settings; ``None`` keeps them.
    extra
        Anything else a custom client understands.
    """

    server_round: int
    proximal_mu: float = 0.0
    local_epochs: int | None = None
    learning_rate: float | None = None
    extra: Metrics = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_count("server_round", self.server_round, minimum=1)
        if not math.isfinite(self.proximal_mu) or self.proximal_mu < 0:
            raise PrivacyError(f"proximal_mu must be >= 0, got {self.proximal_mu!r}")
        if self.local_epochs is not None:
            _check_count("local_epochs", self.local_epochs, minimum=1)
        if self.learning_rate is not None and not (
            math.isfinite(self.learning_rate) and self.learning_rate > 0
        ):
            raise PrivacyError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        _check_metrics("extra", self.extra)


@dataclass(frozen=True)
class EvaluateInstructions:
    """What the server asks of one client for one round of evaluation."""

    server_round: int
    extra: Metrics = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_count("server_round", self.server_round, minimum=1)
        _check_metrics("extra", self.extra)


@dataclass(frozen=True)
class FitResult:
    """A client's trained parameters and how many examples it trained on."""

    parameters: Parameters
    num_examples: int
    metrics: Metrics = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.parameters, Parameters):
            raise PrivacyError(f"parameters must be Parameters, got {type(self.parameters)}")
        _check_count("num_examples", self.num_examples, minimum=0)
        _check_metrics("metrics", self.metrics)


@dataclass(frozen=True)
class EvaluateResult:
    """A client's loss (and metrics) for the global parameters on its own data."""

    loss: float
    num_examples: int
    metrics: Metrics = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.loss, bool) or not isinstance(self.loss, int | float):
            raise PrivacyError(f"loss must be a real number, got {self.loss!r}")
        _check_count("num_examples", self.num_examples, minimum=0)
        _check_metrics("metrics", self.metrics)


@runtime_checkable
class Client(Protocol):
    """A participant: trains and evaluates on data that never leaves it."""

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        """Train from ``parameters`` on local data; return the new parameters."""
        ...

    def evaluate(
        self, parameters: Parameters, instructions: EvaluateInstructions
    ) -> EvaluateResult:
        """Evaluate ``parameters`` on local data."""
        ...


ResultT = TypeVar("ResultT", FitResult, EvaluateResult)


@dataclass(frozen=True)
class RoundResults(Generic[ResultT]):
    """What came back from the clients of one round half: answers and failures.

    ``failures`` pairs a client id with why it did not answer (disconnect,
    exception, timeout); strategies decide whether enough answers remain.
    """

    results: Sequence[tuple[str, ResultT]]
    failures: Sequence[tuple[str, str]] = ()
