"""The main job as it stands: private training and private analysis under one ledger.

A file-backed ledger holds one budget. First an MLP is trained with DP-SGD on
the MNIST subset (every step charged before it happens); then five hospitals
train a model together with federated averaging under central DP (every round
charged); then statistics of scikit-learn's diabetes table (442 patients) are
released from what remains, each charged; the last request would exceed the
budget and is refused before any noise is drawn. Last, a vendor's model
diagnoses a hospital's patients under MPC (no budget: only the predictions
are opened).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from rich.console import Console
from rich.table import Table

from privet import BudgetExceeded
from privet.cli.demo_federated import federated_table, server_view_line, train_federated
from privet.cli.demo_mpc import inference_table, private_diagnosis
from privet.cli.demo_training import TrainingOutcome, train_on_mnist
from privet.data import load_diabetes
from privet.dp import Ledger, dp_count, dp_histogram, dp_mean, dp_quantile, dp_variance

BUDGET_EPSILON = 3.75
BUDGET_DELTA = 1e-5
# RDP: the distributed discrete Gaussian's guarantee is zCDP (Kairouz et al. 2021, Thm 1),
# which dp-accounting's PLD accountant cannot represent.
ACCOUNTANT: Final = "rdp"


@dataclass(frozen=True)
class Request:
    """One statistic the analyst asks for: its exact value and its private release."""

    label: str
    epsilon: float
    exact: Callable[[], Any]
    private: Callable[[Ledger], Any]


@dataclass(frozen=True)
class Outcome:
    label: str
    exact: Any
    released: Any  # None when refused
    epsilon_requested: float
    epsilon_spent: float


def _requests() -> list[Request]:
    table = load_diabetes()
    age, bmi, bp = table.column("age"), table.column("bmi"), table.column("bp")
    progression = table.target
    # Bounds come from domain knowledge (adult ages, physiological ranges), never from the data.
    return [
        Request(
            "patients",
            0.1,
            lambda: age.size,
            lambda lg: dp_count(age, 0.1, ledger=lg, label="patients"),
        ),
        Request(
            "mean age",
            0.2,
            lambda: age.mean(),
            lambda lg: dp_mean(age, 18, 90, 0.2, ledger=lg, label="mean age"),
        ),
        Request(
            "mean BMI",
            0.2,
            lambda: bmi.mean(),
            lambda lg: dp_mean(bmi, 15, 50, 0.2, ledger=lg, label="mean BMI"),
        ),
        Request(
            "median BP",
            0.2,
            lambda: float(np.median(bp)),
            lambda lg: dp_quantile(bp, 0.5, 50, 150, 0.2, ledger=lg, label="median bp"),
        ),
        Request(
            "aged 60-90",
            0.2,
            lambda: int(np.histogram(age, bins=3, range=(0, 90))[0][2]),
            lambda lg: int(
                dp_histogram(age, 3, 0, 90, 0.2, ledger=lg, label="age histogram")[0][2]
            ),
        ),
        Request(
            "var(progress.)",
            0.5,
            lambda: float(progression.var()),
            lambda lg: dp_variance(
                progression, 0, 400, 0.5, ledger=lg, label="progression variance"
            ),
        ),
    ]


def analyse(ledger: Ledger) -> list[Outcome]:
    """Release every request through ``ledger``; refused ones come back with ``released=None``."""
    outcomes = []
    for request in _requests():
        try:
            released = request.private(ledger)
        except BudgetExceeded:
            released = None
        outcomes.append(
            Outcome(request.label, request.exact(), released, request.epsilon, ledger.spent())
        )
    return outcomes


def _format(value: Any) -> str:
    if value is None:
        return "[red]refused[/red]"
    if isinstance(value, int | np.integer):
        return str(int(value))
    return f"{float(value):.2f}"


def _training_table(outcome: TrainingOutcome) -> Table:
    table = Table(title="DP-SGD on the MNIST subset (4,000 train / 1,000 test images)")
    for column in ("steps", "noise σ/C", "test accuracy", "ε of training", "ε spent (ledger)"):
        table.add_column(column, justify="right")
    table.add_row(
        str(outcome.steps),
        f"{outcome.noise_multiplier:.3f}",
        f"{outcome.accuracy:.3f}",
        f"{outcome.epsilon_training:.4f}",
        f"{outcome.epsilon_ledger:.4f}",
    )
    return table


def _statistics_table(outcomes: list[Outcome]) -> Table:
    table = Table(title="Differentially private statistics of the diabetes table, same ledger")
    for column, justify in (
        ("release", "left"),
        ("true value", "right"),
        ("DP value", "right"),
        ("ε asked", "right"),
        ("ε spent", "right"),
        ("ε remaining", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for outcome in outcomes:
        table.add_row(
            outcome.label,
            _format(outcome.exact),
            _format(outcome.released),
            f"{outcome.epsilon_requested:g}",
            f"{outcome.epsilon_spent:.4f}",
            f"{max(0.0, BUDGET_EPSILON - outcome.epsilon_spent):.4f}",
        )
    return table


def run_demo(console: Console, ledger_path: Path | None = None) -> list[Outcome]:
    """Train, then analyse, printing both tables; returns the statistics' outcomes (for tests)."""
    if ledger_path is None:
        ledger_path = Path(tempfile.mkdtemp(prefix="privet-demo-")) / "ledger.sqlite"
    ledger = Ledger(BUDGET_EPSILON, BUDGET_DELTA, ACCOUNTANT, path=ledger_path)
    console.print(
        f"[bold]privet demo[/bold] — one ledger, budget ε={BUDGET_EPSILON}, "
        f"δ={BUDGET_DELTA:g}, {ACCOUNTANT.upper()} accountant, file {ledger_path}"
    )
    training = train_on_mnist(ledger)
    console.print(_training_table(training))
    federated = train_federated(ledger)
    console.print(federated_table(federated))
    console.print(server_view_line(federated))
    outcomes = analyse(ledger)
    console.print(_statistics_table(outcomes))
    refused = [o.label for o in outcomes if o.released is None]
    if refused:
        console.print(
            f"Refused before any noise was drawn (budget would be exceeded): {', '.join(refused)}"
        )
    console.print(inference_table(private_diagnosis()))
    console.print(f"Inspect the ledger: privet ledger history {ledger_path}")
    return outcomes
