"""The main job as it stands: a DP analysis of a real medical table through one ledger.

Several statistics of scikit-learn's diabetes table (442 patients) are
released, each charged to a file-backed ledger with a fixed budget; the last
request would exceed the budget and is refused before any noise is drawn.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from privet import BudgetExceeded
from privet.data import load_diabetes
from privet.dp import Ledger, dp_count, dp_histogram, dp_mean, dp_quantile, dp_variance

BUDGET_EPSILON = 1.0
BUDGET_DELTA = 1e-6


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


def run_demo(console: Console, ledger_path: Path | None = None) -> list[Outcome]:
    """Run the analysis and print its table; returns the outcomes (for tests)."""
    if ledger_path is None:
        ledger_path = Path(tempfile.mkdtemp(prefix="privet-demo-")) / "ledger.sqlite"
    ledger = Ledger(BUDGET_EPSILON, BUDGET_DELTA, "pld", path=ledger_path)
    console.print(
        f"[bold]privet demo[/bold] — diabetes table (442 patients, bundled with scikit-learn); "
        f"budget ε={BUDGET_EPSILON}, δ={BUDGET_DELTA:g}, PLD accountant"
    )
    outcomes = analyse(ledger)
    table = Table(title="Differentially private statistics, one ledger (PLD accountant)")
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
    console.print(table)
    refused = [o.label for o in outcomes if o.released is None]
    if refused:
        console.print(
            f"Refused before any noise was drawn (budget would be exceeded): {', '.join(refused)}"
        )
    console.print(
        f"Ledger file: {ledger_path}  —  inspect with `privet ledger history {ledger_path}`"
    )
    return outcomes
