"""The fast simulator: many clients of one architecture trained as one computation.

The clients' parameters are stacked along a new leading axis and every SGD
step of every client is one ``torch.func.vmap`` over ``grad`` of a
``functional_call`` — batched matrix products instead of a Python loop over
clients. Clients hold different numbers of examples, so each step gathers a
padded ``(clients, batch)`` block with a mask; a client whose schedule has
ended takes no step. The batches are exactly those of
:func:`privet.fl.torch_client.batch_schedule`, so for one seed this engine
gives what :class:`~privet.fl.torch_client.TorchClient` under
:class:`~privet.fl.engine.SequentialEngine` gives, up to float rounding.

Limits: the model must have no buffers (BatchNorm statistics would need
per-client state) and must be deterministic (no dropout); optimizers are
plain SGD with FedProx's proximal term.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from privet.dp._validation import check_positive_int
from privet.errors import PrivacyError
from privet.fl.parameters import Parameters
from privet.fl.torch_client import (
    ClientData,
    LocalTraining,
    LossFunction,
    batch_schedule,
    cross_entropy,
    parameters_of,
)
from privet.fl.types import (
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    Metrics,
    RoundResults,
)

__all__ = ["VectorizedEngine"]

_EVALUATION_ROWS = 8192  # rows per forward pass when evaluating every client at once


class VectorizedEngine:
    """Train all sampled clients of a round together with ``torch.func``.

    Parameters
    ----------
    model
        The architecture (its current values are not used: each round
        starts from the global parameters). No buffers, no randomness.
    clients
        Client id to its data; the mapping's order fixes each client's
        index for :func:`batch_schedule`.
    training
        Local epochs, batch size and learning rate.
    loss
        Per-example loss.
    seed
        Fixes the batch order, as for :class:`TorchClient`.
    max_stacked_elements
        At most this many parameter scalars are stacked at once (clients are
        trained in chunks that fit); bounds memory for large models.
    """

    def __init__(
        self,
        model: nn.Module,
        clients: Mapping[str, ClientData],
        training: LocalTraining | None = None,
        *,
        loss: LossFunction = cross_entropy,
        seed: int = 0,
        max_stacked_elements: int = 1 << 26,
    ) -> None:
        if any(True for _ in model.buffers()):
            raise PrivacyError(
                "the vectorized engine needs a model without buffers (e.g. swap BatchNorm "
                "for GroupNorm); use SequentialEngine for this model"
            )
        if not clients:
            raise PrivacyError("clients must hold at least one client")
        self.model = model
        self.training = training if training is not None else LocalTraining()
        self.loss = loss
        self.seed = seed
        self.max_stacked_elements = check_positive_int("max_stacked_elements", max_stacked_elements)
        self._template = parameters_of(model)
        self._ids = list(clients)
        self._index = {client_id: i for i, client_id in enumerate(self._ids)}
        self._data = dict(clients)
        self._x = torch.cat([data.x for data in clients.values()])
        self._y = torch.cat([data.y for data in clients.values()])
        sizes = [data.num_examples for data in clients.values()]
        self._offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        self._grad = vmap(grad(self._client_loss, has_aux=True), in_dims=(0, 0, 0, 0, 0, None))
        # Plain FedAvg clients skip the proximal term and its backward (most of a round's
        # cost for a wide model when every mu is 0).
        self._grad_plain = vmap(grad(self._data_loss, has_aux=True), in_dims=(0, 0, 0, 0))

    @property
    def client_ids(self) -> Sequence[str]:
        return list(self._ids)

    def close(self) -> None:
        """Nothing to release."""

    # -- fit -------------------------------------------------------------------------------

    def _data_loss(
        self, params: dict[str, Tensor], x: Tensor, y: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One client's batch loss: the mean over its real rows (padding masked out)."""
        per_example = self.loss(functional_call(self.model, params, (x,)), y)
        summed = (per_example * mask).sum()
        return summed / mask.sum().clamp(min=1.0), summed.detach()

    def _client_loss(
        self,
        params: dict[str, Tensor],
        x: Tensor,
        y: Tensor,
        mask: Tensor,
        mu: Tensor,
        anchor: dict[str, Tensor],
    ) -> tuple[Tensor, Tensor]:
        """The batch loss plus FedProx's ``mu/2 ||w - w_global||^2``."""
        mean, summed = self._data_loss(params, x, y, mask)
        proximal = sum(((params[name] - anchor[name]) ** 2).sum() for name in params)
        return mean + 0.5 * mu * proximal, summed

    def _check_task(self, client_id: str) -> int:
        if client_id not in self._index:
            raise PrivacyError(f"unknown client id {client_id!r}")
        return self._index[client_id]

    def fit(
        self, parameters: Parameters, tasks: Sequence[tuple[str, FitInstructions]]
    ) -> RoundResults[FitResult]:
        self._template.check_layout(parameters, what="global parameters")
        for client_id, _ in tasks:
            self._check_task(client_id)
        per_chunk = max(1, self.max_stacked_elements // max(parameters.size, 1))
        results: list[tuple[str, FitResult]] = []
        for start in range(0, len(tasks), per_chunk):
            results.extend(self._fit_chunk(parameters, tasks[start : start + per_chunk]))
        return RoundResults(results, [])

    def _fit_chunk(
        self, parameters: Parameters, tasks: Sequence[tuple[str, FitInstructions]]
    ) -> list[tuple[str, FitResult]]:
        dtype = next(iter(self.model.parameters())).dtype
        anchor = {name: torch.from_numpy(parameters[name].copy()) for name in parameters}
        count = len(tasks)
        schedules, rates, mus = [], [], []
        batch_size = self.training.batch_size
        for client_id, instructions in tasks:
            index = self._index[client_id]
            training = self.training.for_round(instructions)
            schedules.append(
                batch_schedule(
                    self._data[client_id].num_examples,
                    batch_size,
                    training.epochs,
                    seed=self.seed,
                    server_round=instructions.server_round,
                    client=index,
                )
            )
            rates.append(training.learning_rate)
            mus.append(instructions.proximal_mu)
        steps = max((len(schedule) for schedule in schedules), default=0)
        rows = torch.zeros(steps, count, batch_size, dtype=torch.long)
        mask = torch.zeros(steps, count, batch_size, dtype=torch.bool)
        for c, ((client_id, _), schedule) in enumerate(zip(tasks, schedules, strict=True)):
            offset = self._offsets[self._index[client_id]]
            for s, batch in enumerate(schedule):
                rows[s, c, : batch.numel()] = batch + offset
                mask[s, c, : batch.numel()] = True
        stacked = {
            name: value.unsqueeze(0).repeat(count, *([1] * value.dim())).to(dtype)
            for name, value in anchor.items()
        }
        anchor = {name: value.to(dtype) for name, value in anchor.items()}
        rate = torch.tensor(rates, dtype=dtype)
        mu = torch.tensor(mus, dtype=dtype)
        loss_sums = torch.zeros(count, dtype=torch.float64)
        proximal = any(value > 0 for value in mus)
        for s in range(steps):
            # Pad this step only to its largest real batch, not to batch_size.
            width = max(1, int(mask[s].sum(dim=1).max()))
            step_rows, weights = rows[s, :, :width], mask[s, :, :width].to(dtype)
            x, y = self._x[step_rows], self._y[step_rows]
            if proximal:
                grads, summed = self._grad(stacked, x, y, weights, mu, anchor)
            else:
                grads, summed = self._grad_plain(stacked, x, y, weights)
            loss_sums += summed.double()
            # A client past the end of its schedule takes no step (not even the proximal pull).
            step = rate * mask[s].any(dim=1).to(dtype)
            for name, value in stacked.items():
                value.addcmul_(grads[name], step.reshape(-1, *([1] * (value.dim() - 1))), value=-1)
        results = []
        for c, (client_id, _) in enumerate(tasks):
            # Fresh views of this round's stacked tensors, which nothing else keeps: adopted.
            trained = Parameters.adopt(
                {
                    name: stacked[name][c].numpy().astype(parameters[name].dtype, copy=False)
                    for name in parameters
                }
            )
            seen = sum(batch.numel() for batch in schedules[c])
            metrics: Metrics = {"train_loss": float(loss_sums[c]) / seen} if seen else {}
            num_examples = self._data[client_id].num_examples
            results.append((client_id, FitResult(trained, num_examples, metrics)))
        return results

    # -- evaluate --------------------------------------------------------------------------

    def evaluate(
        self, parameters: Parameters, tasks: Sequence[tuple[str, EvaluateInstructions]]
    ) -> RoundResults[EvaluateResult]:
        self._template.check_layout(parameters, what="global parameters")
        params = {name: torch.from_numpy(parameters[name].copy()) for name in parameters}
        results: list[tuple[str, EvaluateResult]] = []
        for client_id, _ in tasks:
            self._check_task(client_id)
            x, y = self._data[client_id].evaluation_set()
            results.append((client_id, self._evaluate_one(params, x, y)))
        return RoundResults(results, [])

    def _evaluate_one(self, params: dict[str, Tensor], x: Tensor, y: Tensor) -> EvaluateResult:
        if x.shape[0] == 0:
            return EvaluateResult(math.nan, 0)
        losses, correct = [], []
        classify = False
        with torch.no_grad():
            for start in range(0, x.shape[0], _EVALUATION_ROWS):
                xb, yb = x[start : start + _EVALUATION_ROWS], y[start : start + _EVALUATION_ROWS]
                outputs = functional_call(self.model, params, (xb,))
                losses.append(self.loss(outputs, yb).double())
                classify = _is_classifier(outputs, yb)
                if classify:
                    correct.append((outputs.argmax(1) == yb).double())
        metrics: Metrics = {"accuracy": float(torch.cat(correct).mean())} if classify else {}
        return EvaluateResult(float(torch.cat(losses).mean()), int(x.shape[0]), metrics)


def _is_classifier(outputs: Tensor, targets: Tensor) -> bool:
    return outputs.dim() == 2 and outputs.shape[1] > 1 and not targets.is_floating_point()
