"""The demo's DP-SGD step: an MLP on the MNIST subset, every step charged to the ledger."""

from __future__ import annotations

import time
from dataclasses import dataclass

from privet.dp import Ledger

#: DP-SGD's share of the demo budget, and how it trains.
TRAINING_EPSILON = 2.5
TRAINING_DELTA = 1e-5
EPOCHS = 10
BATCH_SIZE = 250
LEARNING_RATE = 0.5


@dataclass(frozen=True)
class TrainingOutcome:
    accuracy: float
    steps: int
    noise_multiplier: float
    epsilon_training: float  # the engine's own accounting of its steps
    epsilon_ledger: float  # the ledger after training (everything charged so far)
    seconds: float


def train_on_mnist(ledger: Ledger) -> TrainingOutcome:
    """Train with DP-SGD, charging each step to ``ledger`` before it happens."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from privet.data import load_mnist_subset
    from privet.train import PrivacyEngine

    data = load_mnist_subset()
    train = TensorDataset(torch.from_numpy(data.train_images), torch.from_numpy(data.train_labels))
    network = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    engine = PrivacyEngine(ledger.accountant, ledger=ledger)
    model, optimizer, loader = engine.make_private_with_epsilon(
        module=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=LEARNING_RATE, momentum=0.9),
        data_loader=DataLoader(train, batch_size=BATCH_SIZE),
        target_epsilon=TRAINING_EPSILON,
        target_delta=TRAINING_DELTA,
        epochs=EPOCHS,
        max_grad_norm=1.0,
    )
    started = time.perf_counter()
    for _ in range(EPOCHS):
        for images, labels in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(images), labels)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    seconds = time.perf_counter() - started
    with torch.no_grad():
        predictions = model(torch.from_numpy(data.test_images)).argmax(1).numpy()
    return TrainingOutcome(
        accuracy=float((predictions == data.test_labels).mean()),
        steps=engine.steps,
        noise_multiplier=optimizer.noise_multiplier,
        epsilon_training=engine.get_epsilon(TRAINING_DELTA),
        epsilon_ledger=ledger.spent(),
        seconds=seconds,
    )
