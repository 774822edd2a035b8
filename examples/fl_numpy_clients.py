"""Federated logistic regression with plain numpy clients — no PyTorch anywhere.

A client is anything with ``fit`` and ``evaluate``: here, a few lines of
numpy gradient descent on one hospital's share of scikit-learn's
breast-cancer table. FedAvg combines them; FedMedian would resist a
poisoned hospital. Run: ``python examples/fl_numpy_clients.py``.
"""

from __future__ import annotations

import argparse

import numpy as np

from privet.data import load_breast_cancer
from privet.fl import (
    EvaluateInstructions,
    EvaluateResult,
    FedAvg,
    FitInstructions,
    FitResult,
    Parameters,
    SequentialEngine,
    iid_partition,
    run_federated,
    split_arrays,
)


class NumpyLogisticClient:
    """Logistic regression by full-batch gradient descent on local rows."""

    def __init__(self, x: np.ndarray, y: np.ndarray, learning_rate: float = 0.5) -> None:
        self.x, self.y, self.learning_rate = x, y, learning_rate

    def _loss_and_gradient(self, w: np.ndarray, b: float) -> tuple[float, np.ndarray, float]:
        p = 1.0 / (1.0 + np.exp(-(self.x @ w + b)))
        eps = 1e-12
        loss = -np.mean(self.y * np.log(p + eps) + (1 - self.y) * np.log(1 - p + eps))
        error = (p - self.y) / len(self.y)
        return float(loss), self.x.T @ error, float(error.sum())

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        w, b = parameters["w"].copy(), float(parameters["b"][0])
        for _ in range(instructions.local_epochs or 5):
            _, grad_w, grad_b = self._loss_and_gradient(w, b)
            w -= self.learning_rate * grad_w
            b -= self.learning_rate * grad_b
        return FitResult(Parameters({"w": w, "b": np.array([b])}), len(self.y))

    def evaluate(
        self, parameters: Parameters, instructions: EvaluateInstructions
    ) -> EvaluateResult:
        w, b = parameters["w"], float(parameters["b"][0])
        loss, _, _ = self._loss_and_gradient(w, b)
        accuracy = float(np.mean(((self.x @ w + b) > 0) == (self.y == 1)))
        return EvaluateResult(loss, len(self.y), {"accuracy": accuracy})


def main(argv: list[str] | None = None) -> float:
    """Train; return the example-weighted accuracy of the last round's evaluation."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hospitals", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)

    table = load_breast_cancer()
    # Standardized with the pooled table's statistics: a simulation shortcut, not private.
    x = (table.features - table.features.mean(0)) / table.features.std(0)
    y = table.target.astype(np.float64)
    partition = iid_partition(len(y), args.hospitals, np.random.default_rng(0))
    clients = {
        f"hospital-{i}": NumpyLogisticClient(xs, ys)
        for i, (xs, ys) in enumerate(split_arrays(partition, x, y))
    }
    start = Parameters({"w": np.zeros(x.shape[1]), "b": np.zeros(1)})
    history = run_federated(
        SequentialEngine(clients), FedAvg(), start, args.rounds, rng=np.random.default_rng(0)
    )
    for record in history.rounds:
        assert record.evaluation is not None
        accuracy = record.evaluation.metrics["accuracy"]
        print(
            f"round {record.server_round}: loss {record.evaluation.loss:.4f}, "
            f"accuracy {accuracy:.3f}"
        )
    final = history.rounds[-1].evaluation
    return float(final.metrics["accuracy"]) if final is not None else float("nan")


if __name__ == "__main__":
    main()
