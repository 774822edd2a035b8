"""Private training on secret-shared data: logistic regression and a one-hidden-layer MLP.

Mini-batch gradient descent for binary classification with the logistic
loss, run entirely on shares (Mohassel & Zhang, "SecureML: A System for
Scalable Privacy-Preserving Machine Learning", IEEE S&P 2017, sections 4.1
and 4.3; here with privet's accurate sigmoid rather than SecureML's
piecewise-linear one). The features and labels are shared by their owners
(one hospital, or several: stack their shared rows or columns), the model
stays shared throughout, and only what the caller reveals is opened. The
batch schedule — which row indices form each batch — is public (it depends
only on ``n`` and the seed), as is the initialization.

Each step of logistic regression computes ``p = sigmoid(X w + b)`` and
``w <- w - (lr / B) X^T (p - y)``; the MLP backpropagates through
``sigmoid(relu(X W1 + b1) W2 + b2)`` with the exact ReLU derivative.
:func:`plaintext_logistic_regression` and :func:`plaintext_mlp` run the same
algorithms in float64 with the same initialization and schedule: the
reference the private runs are tested against (their only differences are
fixed-point rounding and the function approximations of
:mod:`privet.mpc.functions`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.mpc import functions
from privet.mpc.tensor import SharedTensor

__all__ = [
    "Mlp",
    "SgdConfig",
    "batches",
    "plaintext_logistic_regression",
    "plaintext_mlp",
    "train_logistic_regression",
    "train_mlp",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SgdConfig:
    """Mini-batch gradient descent.

    Parameters
    ----------
    epochs
        Passes over the data, >= 1.
    learning_rate
        Step size, > 0.
    batch_size
        Rows per step, >= 1 (the last batch of an epoch may be smaller).
    seed
        Fixes the public batch order and the MLP's public initialization.
    """

    epochs: int = 10
    learning_rate: float = 0.5
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PrivacyError(f"{name} must be an integer >= 1, got {value!r}")
        rate = self.learning_rate
        if not isinstance(rate, int | float) or not np.isfinite(rate) or rate <= 0:
            raise PrivacyError(f"learning_rate must be a finite number > 0, got {rate!r}")


def batches(rows: int, config: SgdConfig) -> Iterator[NDArray[np.int64]]:
    """The public batch schedule: a fresh permutation of ``range(rows)`` per epoch."""
    rng = np.random.default_rng(config.seed)
    for _ in range(config.epochs):
        order = rng.permutation(rows)
        for start in range(0, rows, config.batch_size):
            yield np.sort(order[start : start + config.batch_size])


def _check_data(features: SharedTensor, labels: SharedTensor) -> tuple[int, int]:
    if not isinstance(features, SharedTensor) or features.ndim != 2:
        raise PrivacyError(f"features must be a shared (n, d) tensor, got {features!r:.80}")
    if not isinstance(labels, SharedTensor) or labels.shape != (features.shape[0],):
        shape = labels.shape if isinstance(labels, SharedTensor) else type(labels).__name__
        raise PrivacyError(f"labels must be a shared ({features.shape[0]},) tensor, got {shape}")
    if labels.session is not features.session:
        raise PrivacyError("features and labels must belong to the same session")
    return features.shape[0], features.shape[1]


def train_logistic_regression(
    features: SharedTensor, labels: SharedTensor, config: SgdConfig | None = None
) -> tuple[SharedTensor, SharedTensor]:
    """Shared weights ``(d,)`` and bias ``()`` of logistic regression on shared 0/1 labels.

    Starts from zeros; ``config`` defaults to :class:`SgdConfig`'s defaults.
    """
    config = config if config is not None else SgdConfig()
    rows, dims = _check_data(features, labels)
    session = features.session
    weights, bias = session.public(np.zeros(dims)), session.public(0.0)
    for index in batches(rows, config):
        x, y = features[index], labels[index]
        residual = functions.sigmoid(x @ weights + bias) - y
        step = config.learning_rate / len(index)
        weights = weights - (residual @ x) * step
        bias = bias - residual.sum() * step
    return weights, bias


def plaintext_logistic_regression(
    features: FloatArray, labels: FloatArray, config: SgdConfig | None = None
) -> tuple[FloatArray, float]:
    """:func:`train_logistic_regression` in float64: the reference."""
    config = config if config is not None else SgdConfig()
    weights, bias = np.zeros(features.shape[1]), 0.0
    for index in batches(len(features), config):
        x, y = features[index], labels[index]
        residual = 1.0 / (1.0 + np.exp(-(x @ weights + bias))) - y
        step = config.learning_rate / len(index)
        weights = weights - (residual @ x) * step
        bias = bias - float(residual.sum()) * step
    return weights, bias


@dataclass(frozen=True)
class Mlp:
    """``sigmoid(relu(x W1 + b1) W2 + b2)``: shared (or plaintext) parameters."""

    w1: SharedTensor
    b1: SharedTensor
    w2: SharedTensor
    b2: SharedTensor

    def __call__(self, x: SharedTensor) -> SharedTensor:
        """Predicted probabilities of class 1, shared."""
        return functions.sigmoid(((x @ self.w1 + self.b1).relu() @ self.w2) + self.b2)


def _mlp_init(dims: int, hidden: int, seed: int) -> tuple[FloatArray, FloatArray]:
    """He-uniform hidden weights and Glorot-uniform output weights (public), zero biases."""
    rng = np.random.default_rng([seed, 1])
    w1 = rng.uniform(-1, 1, size=(dims, hidden)) * np.sqrt(6.0 / dims)
    w2 = rng.uniform(-1, 1, size=hidden) * np.sqrt(6.0 / (hidden + 1))
    return w1, w2


def _check_hidden(hidden: int) -> None:
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise PrivacyError(f"hidden must be an integer >= 1, got {hidden!r}")


def train_mlp(
    features: SharedTensor,
    labels: SharedTensor,
    hidden: int = 16,
    config: SgdConfig | None = None,
) -> Mlp:
    """A one-hidden-layer ReLU network for shared 0/1 labels, trained on shares."""
    config = config if config is not None else SgdConfig()
    _check_hidden(hidden)
    rows, dims = _check_data(features, labels)
    session = features.session
    init_w1, init_w2 = _mlp_init(dims, hidden, config.seed)
    w1, w2 = session.public(init_w1), session.public(init_w2)
    b1, b2 = session.public(np.zeros(hidden)), session.public(0.0)
    for index in batches(rows, config):
        x, y = features[index], labels[index]
        activation, step_bit = functions.relu_with_step(x @ w1 + b1)
        residual = functions.sigmoid(activation @ w2 + b2) - y  # dLoss/dlogit
        step = config.learning_rate / len(index)
        # Output layer, then the hidden one through the ReLU's derivative.
        hidden_error = (residual.reshape(-1, 1) * w2) * step_bit
        w2 = w2 - (residual @ activation) * step
        b2 = b2 - residual.sum() * step
        w1 = w1 - (x.T @ hidden_error) * step
        b1 = b1 - hidden_error.sum(axis=0) * step
    return Mlp(w1, b1, w2, b2)


def plaintext_mlp(
    features: FloatArray, labels: FloatArray, hidden: int = 16, config: SgdConfig | None = None
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """:func:`train_mlp` in float64: the reference; returns ``(w1, b1, w2, b2)``."""
    config = config if config is not None else SgdConfig()
    _check_hidden(hidden)
    w1, w2 = _mlp_init(features.shape[1], hidden, config.seed)
    b1, b2 = np.zeros(hidden), 0.0
    for index in batches(len(features), config):
        x, y = features[index], labels[index]
        pre = x @ w1 + b1
        activation = np.maximum(pre, 0.0)
        residual = 1.0 / (1.0 + np.exp(-(activation @ w2 + b2))) - y
        step = config.learning_rate / len(index)
        hidden_error = residual[:, None] * w2 * (pre >= 0)
        w2 = w2 - (residual @ activation) * step
        b2 = b2 - float(residual.sum()) * step
        w1 = w1 - (x.T @ hidden_error) * step
        b1 = b1 - hidden_error.sum(axis=0) * step
    return w1, b1, w2, b2
