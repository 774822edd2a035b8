"""PyTorch adapters: parameters from and into an ``nn.Module``, and a ready client.

:class:`TorchClient` trains a model with plain SGD on local tensors — the
client the in-process and Ray engines run, and the per-client reference the
vectorized engine (:mod:`privet.fl.vectorized`) reproduces: both draw their
mini-batches from :func:`batch_schedule`, so for one seed they train on the
same batches in the same order.

A custom client needs only ``fit`` and ``evaluate`` (see
:class:`privet.fl.Client`); :func:`parameters_of` and :func:`load_parameters`
do the conversions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from privet.dp._validation import check_positive, check_positive_int
from privet.errors import PrivacyError
from privet.fl.parameters import Parameters
from privet.fl.types import (
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    Metrics,
)

__all__ = [
    "ClientData",
    "LocalTraining",
    "LossFunction",
    "TorchClient",
    "batch_schedule",
    "cross_entropy",
    "load_parameters",
    "parameters_of",
    "torch_clients",
    "torch_evaluator",
]

#: Per-example losses: ``(outputs, targets) -> (batch,)``.
LossFunction = Callable[[Tensor, Tensor], Tensor]


def cross_entropy(outputs: Tensor, targets: Tensor) -> Tensor:
    """Per-example cross-entropy of logits (the default loss)."""
    return functional.cross_entropy(outputs, targets, reduction="none")


@dataclass(frozen=True)
class LocalTraining:
    """How a client trains each round: ``epochs`` passes of mini-batch SGD.

    ``FitInstructions.local_epochs`` / ``learning_rate`` override these per round.
    """

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 0.05

    def __post_init__(self) -> None:
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive("learning_rate", self.learning_rate)

    def for_round(self, instructions: FitInstructions) -> LocalTraining:
        return LocalTraining(
            epochs=instructions.local_epochs or self.epochs,
            batch_size=self.batch_size,
            learning_rate=instructions.learning_rate or self.learning_rate,
        )


@dataclass(frozen=True)
class ClientData:
    """One client's training tensors, and optionally held-out ones for evaluation."""

    x: Tensor
    y: Tensor
    x_test: Tensor | None = None
    y_test: Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise PrivacyError(
                f"x and y must have the same number of rows, got {self.x.shape[0]} and "
                f"{self.y.shape[0]}"
            )
        if (self.x_test is None) != (self.y_test is None):
            raise PrivacyError("x_test and y_test must be given together")
        if (
            self.x_test is not None
            and self.y_test is not None
            and self.x_test.shape[0] != self.y_test.shape[0]
        ):
            raise PrivacyError("x_test and y_test must have the same number of rows")

    @property
    def num_examples(self) -> int:
        return int(self.x.shape[0])

    def evaluation_set(self) -> tuple[Tensor, Tensor]:
        """Held-out tensors if given, else the training tensors."""
        if self.x_test is not None and self.y_test is not None:
            return self.x_test, self.y_test
        return self.x, self.y


def parameters_of(module: nn.Module) -> Parameters:
    """The module's parameters and buffers (its ``state_dict``) as :class:`Parameters`."""
    return Parameters(
        (name, tensor.detach().cpu().numpy()) for name, tensor in module.state_dict().items()
    )


def load_parameters(module: nn.Module, parameters: Parameters) -> None:
    """Copy ``parameters`` into ``module`` (names, shapes and dtypes must match)."""
    state = module.state_dict()
    parameters_of(module).check_layout(parameters, what="parameters for this model")
    with torch.no_grad():
        for name, tensor in state.items():
            tensor.copy_(torch.from_numpy(np.array(parameters[name])))


def batch_schedule(
    num_examples: int, batch_size: int, epochs: int, *, seed: int, server_round: int, client: int
) -> list[Tensor]:
    """The index batches one client trains on in one round.

    Each epoch is a fresh permutation from a generator seeded by
    ``(seed, server_round, client)``, cut into batches of ``batch_size``
    (the last may be smaller). Engines share this, so they agree.
    """
    if num_examples == 0:
        return []
    state = np.random.SeedSequence([seed, server_round, client]).generate_state(2)
    generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    batches: list[Tensor] = []
    for _ in range(epochs):
        order = torch.randperm(num_examples, generator=generator)
        batches.extend(torch.split(order, batch_size))
    return batches


class TorchClient:
    """A client that trains an ``nn.Module`` with mini-batch SGD on local tensors.

    Parameters
    ----------
    model
        The client's copy of the model (it is overwritten each round).
    data
        The client's tensors.
    training
        Epochs, batch size and learning rate.
    loss
        Per-example loss; the batch loss is its mean.
    seed, client_index
        Fix the batch order (:func:`batch_schedule`).
    """

    def __init__(
        self,
        model: nn.Module,
        data: ClientData,
        training: LocalTraining | None = None,
        *,
        loss: LossFunction = cross_entropy,
        seed: int = 0,
        client_index: int = 0,
    ) -> None:
        self.model = model
        self.data = data
        self.training = training if training is not None else LocalTraining()
        self.loss = loss
        self.seed = seed
        self.client_index = client_index

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        load_parameters(self.model, parameters)
        training = self.training.for_round(instructions)
        mu = instructions.proximal_mu
        anchors = [p.detach().clone() for p in self.model.parameters()] if mu > 0 else []
        optimizer = torch.optim.SGD(self.model.parameters(), lr=training.learning_rate)
        batches = batch_schedule(
            self.data.num_examples,
            training.batch_size,
            training.epochs,
            seed=self.seed,
            server_round=instructions.server_round,
            client=self.client_index,
        )
        self.model.train()
        total_loss = 0.0
        for batch in batches:
            optimizer.zero_grad()
            loss = self.loss(self.model(self.data.x[batch]), self.data.y[batch]).mean()
            total_loss += float(loss.detach()) * batch.numel()
            if mu > 0:
                # FedProx (Li et al. 2020): pull toward the round's global model.
                proximal = sum(
                    ((p - a) ** 2).sum()
                    for p, a in zip(self.model.parameters(), anchors, strict=True)
                )
                loss = loss + 0.5 * mu * proximal
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        seen = sum(batch.numel() for batch in batches)
        metrics: Metrics = {"train_loss": total_loss / seen} if seen else {}
        return FitResult(parameters_of(self.model), self.data.num_examples, metrics)

    def evaluate(
        self, parameters: Parameters, instructions: EvaluateInstructions
    ) -> EvaluateResult:
        load_parameters(self.model, parameters)
        x, y = self.data.evaluation_set()
        loss, metrics = _evaluate_module(self.model, x, y, self.loss)
        return EvaluateResult(loss, int(x.shape[0]), metrics)


def _evaluate_module(
    model: nn.Module, x: Tensor, y: Tensor, loss: LossFunction
) -> tuple[float, Metrics]:
    if x.shape[0] == 0:
        return math.nan, {}
    model.eval()
    with torch.no_grad():
        outputs = model(x)
        mean_loss = float(loss(outputs, y).mean())
    metrics: Metrics = {}
    if outputs.dim() == 2 and outputs.shape[1] > 1 and not y.is_floating_point():
        metrics = {"accuracy": float((outputs.argmax(1) == y).double().mean())}
    return mean_loss, metrics


def torch_evaluator(
    model: nn.Module, x: Tensor, y: Tensor, *, loss: LossFunction = cross_entropy
) -> Callable[[Parameters], tuple[float, Metrics]]:
    """A central evaluation for :func:`privet.fl.run_federated`: loss (and accuracy for
    classifiers) of the global parameters on ``(x, y)``, data the server may see."""

    def evaluate(parameters: Parameters) -> tuple[float, Metrics]:
        load_parameters(model, parameters)
        return _evaluate_module(model, x, y, loss)

    return evaluate


def torch_clients(
    model_factory: Callable[[], nn.Module],
    clients: Mapping[str, ClientData],
    training: LocalTraining | None = None,
    *,
    loss: LossFunction = cross_entropy,
    seed: int = 0,
) -> dict[str, TorchClient]:
    """One :class:`TorchClient` per entry of ``clients``, indexed in the mapping's order
    (the order :class:`~privet.fl.vectorized.VectorizedEngine` uses, so the two agree)."""
    return {
        client_id: TorchClient(
            model_factory(), data, training, loss=loss, seed=seed, client_index=index
        )
        for index, (client_id, data) in enumerate(clients.items())
    }
