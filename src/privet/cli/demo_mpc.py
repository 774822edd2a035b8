"""The demo's MPC step: a vendor's model diagnoses a hospital's patients, neither sees the other's.

A diagnostics vendor trains a small network on its own cases (the first
half of scikit-learn's breast cancer table); its input normalization rides
in the model as a BatchNorm layer. The hospital holds the other half. The
vendor secret-shares its weights, the hospital its records, and the two
run the network on shares with a dealer supplying correlated randomness;
only the predictions are opened, and to the hospital alone: the vendor
learns no diagnosis. Spends no privacy budget: MPC reveals the output and
nothing else (the output itself is what the hospital asked for).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from rich.table import Table

if TYPE_CHECKING:
    from torch import nn

#: Vendor = party 0, hospital = party 1.
VENDOR, HOSPITAL = 0, 1
HIDDEN = 16
EPOCHS = 200
SEED = 0


@dataclass(frozen=True)
class InferenceOutcome:
    patients: int
    agreement: float  # private predictions equal to the plaintext model's
    accuracy: float  # private predictions against the diagnoses
    max_error: float  # largest |private - plaintext| probability
    seconds: float
    rounds: int
    megabytes_per_party: float
    dealer_megabytes: float


def _vendor_model(features: np.ndarray, labels: np.ndarray) -> nn.Sequential:
    """The vendor's network, trained in plaintext on its own cases (full batch, Adam)."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        norm = nn.BatchNorm1d(features.shape[1])
        model = nn.Sequential(
            norm, nn.Linear(features.shape[1], HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1)
        )
    # The normalization is the vendor's, from its own data.
    norm.running_mean = torch.from_numpy(features.mean(axis=0)).float()
    norm.running_var = torch.from_numpy(features.var(axis=0)).float()
    model.double()
    model.eval()  # BatchNorm uses the running statistics throughout
    inputs, targets = torch.from_numpy(features), torch.from_numpy(labels).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(EPOCHS):
        optimizer.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(inputs)[:, 0], targets)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return model


def private_diagnosis() -> InferenceOutcome:
    """Train the vendor's model, then run it on the hospital's records on shares."""
    import torch

    from privet.data import load_breast_cancer
    from privet.mpc import Dealer, Session, Simulator, sigmoid
    from privet.mpc.torch_models import private_model

    table = load_breast_cancer()
    order = np.random.default_rng(SEED).permutation(len(table.target))
    features, labels = table.features[order], table.target[order]
    half = len(labels) // 2
    model = _vendor_model(features[:half], labels[:half])
    records, diagnoses = features[half:], labels[half:]

    session = Session(Simulator(2), Dealer(2, seed=None))
    started = time.perf_counter()
    private = private_model(model, session, owner=VENDOR)
    logits = private(session.share(records, owner=HOSPITAL))[:, 0]
    probabilities = sigmoid(logits).reveal(to=HOSPITAL)
    seconds = time.perf_counter() - started
    if probabilities is None:  # pragma: no cover - the simulator plays the hospital too
        raise RuntimeError("the simulator must return the hospital's output")
    with torch.no_grad():
        plain = torch.sigmoid(model(torch.from_numpy(records))[:, 0]).numpy()
    predicted = probabilities > 0.5
    return InferenceOutcome(
        patients=len(records),
        agreement=float(np.mean(predicted == (plain > 0.5))),
        accuracy=float(np.mean(predicted == diagnoses)),
        max_error=float(np.max(np.abs(probabilities - plain))),
        seconds=seconds,
        rounds=session.runtime.stats.rounds,
        megabytes_per_party=session.runtime.stats.bytes_sent / 1e6,
        dealer_megabytes=session.dealer.stats.bytes_sent / 1e6,
    )


def inference_table(outcome: InferenceOutcome) -> Table:
    table = Table(
        title=(
            f"MPC: a vendor's model diagnoses {outcome.patients} of a hospital's patients "
            "(weights and records secret-shared; in-process simulator)"
        )
    )
    for column in (
        "agree with plaintext",
        "accuracy",
        "max |Δp|",
        "seconds",
        "rounds",
        "MB sent / party",
        "dealer MB",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        f"{outcome.agreement:.3f}",
        f"{outcome.accuracy:.3f}",
        f"{outcome.max_error:.1e}",
        f"{outcome.seconds:.2f}",
        str(outcome.rounds),
        f"{outcome.megabytes_per_party:.2f}",
        f"{outcome.dealer_megabytes:.2f}",
    )
    return table
