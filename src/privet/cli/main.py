"""``privet``: accounting calculators, ledger inspection and the demo."""

from __future__ import annotations

import logging
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from privet.cli import fl_commands, ledger_commands, mpc_commands

app = typer.Typer(
    name="privet",
    help="Privacy-preserving machine learning: accounting, ledgers and private analysis.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(ledger_commands.app, name="ledger")
app.add_typer(fl_commands.app, name="fl")
app.add_typer(mpc_commands.app, name="mpc")


@app.callback()
def _configure() -> None:
    """Privacy-preserving machine learning: accounting, ledgers and private analysis."""
    # dp-accounting warns (through absl) whenever an RDP order fails to converge and is
    # dropped — a conservative, expected event during noise searches. The command line
    # shows errors only; library users keep their own logging configuration.
    logging.getLogger("absl").setLevel(logging.ERROR)


class AccountantChoice(StrEnum):
    pld = "pld"
    rdp = "rdp"
    both = "both"

    def names(self) -> list[str]:
        return ["pld", "rdp"] if self is AccountantChoice.both else [self.value]


_NOISE_DIGITS = 4


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


NoiseOption = Annotated[
    float, typer.Option("--noise-multiplier", "-z", help="Noise std over the clipping norm.")
]
RateOption = Annotated[
    float, typer.Option("--sample-rate", "-q", help="Poisson sampling probability per step.")
]
StepsOption = Annotated[int, typer.Option("--steps", "-n", help="Number of DP-SGD steps.")]
DeltaOption = Annotated[float, typer.Option("--delta", "-d", help="Target delta.")]
AccountantOption = Annotated[
    AccountantChoice, typer.Option("--accountant", "-a", help="Accountant(s) to report.")
]


@app.command()
def epsilon(
    noise_multiplier: NoiseOption,
    sample_rate: RateOption,
    steps: StepsOption,
    delta: DeltaOption = 1e-5,
    accountant: AccountantOption = AccountantChoice.both,
) -> None:
    """Epsilon of a DP-SGD run (Poisson-subsampled Gaussian, composed STEPS times)."""
    from privet import PrivacyError
    from privet.dp import dpsgd_event
    from privet.dp import epsilon as epsilon_of

    try:
        event = dpsgd_event(noise_multiplier, sample_rate, steps)
        rows = [(name, epsilon_of(event, delta, name)) for name in accountant.names()]  # type: ignore[arg-type]
    except PrivacyError as exc:
        raise _fail(str(exc)) from exc
    table = Table(title=f"DP-SGD: σ={noise_multiplier}, q={sample_rate}, {steps} steps, δ={delta}")
    table.add_column("accountant")
    table.add_column("ε", justify="right")
    for name, value in rows:
        table.add_row(name.upper(), f"{value:.4f}")
    Console().print(table)


@app.command()
def noise(
    target_epsilon: Annotated[
        float, typer.Option("--target-epsilon", "-e", help="Epsilon to stay within.")
    ],
    sample_rate: RateOption,
    steps: StepsOption,
    delta: DeltaOption = 1e-5,
    accountant: AccountantOption = AccountantChoice.both,
) -> None:
    """The smallest noise multiplier that keeps a DP-SGD run within TARGET_EPSILON."""
    from privet import PrivacyError
    from privet.dp import dpsgd_event, noise_multiplier_for
    from privet.dp import epsilon as epsilon_of

    table = Table(
        title=f"DP-SGD noise for ε≤{target_epsilon}: q={sample_rate}, {steps} steps, δ={delta}"
    )
    table.add_column("accountant")
    table.add_column("noise multiplier", justify="right")
    table.add_column("ε achieved", justify="right")
    try:
        for name in accountant.names():
            sigma = noise_multiplier_for(target_epsilon, delta, sample_rate, steps, name)  # type: ignore[arg-type]
            # Round *up* what is printed, and report the epsilon of the printed value,
            # so that copying the number into a training script stays within the target.
            shown = math.ceil(sigma * 10**_NOISE_DIGITS) / 10**_NOISE_DIGITS
            achieved = epsilon_of(dpsgd_event(shown, sample_rate, steps), delta, name)  # type: ignore[arg-type]
            table.add_row(name.upper(), f"{shown:.{_NOISE_DIGITS}f}", f"{achieved:.4f}")
    except PrivacyError as exc:
        raise _fail(str(exc)) from exc
    Console().print(table)


@app.command()
def demo(
    ledger_path: Annotated[
        Path | None,
        typer.Option("--ledger", help="Ledger file to use (default: a new temporary file)."),
    ] = None,
) -> None:
    """A differentially private analysis of a real medical table, charged to one ledger."""
    from privet import PrivacyError
    from privet.cli.demo import run_demo

    try:
        run_demo(Console(), ledger_path)
    except PrivacyError as exc:
        raise _fail(str(exc)) from exc


if __name__ == "__main__":  # pragma: no cover
    app()
