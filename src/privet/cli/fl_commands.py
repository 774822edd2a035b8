"""``privet fl run CONFIG``: a federated simulation from a TOML file, with progress and results."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from privet.fl.engine import RoundRecord
    from privet.fl.runner import RunOutcome

app = typer.Typer(help="Federated learning: simulate from a config file.", no_args_is_help=True)

ConfigArgument = Annotated[Path, typer.Argument(help="TOML description of the run.")]


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def results_table(outcome: RunOutcome, epsilons: list[float | None]) -> Table:
    """Accuracy, loss and epsilon spent after each round."""
    table = Table(title="federated run", title_justify="left")
    for column in ("round", "clients", "failed", "test loss", "test accuracy", "ε spent"):
        table.add_column(column, justify="right")
    table.add_column("note")
    for record, spent in zip(outcome.history.rounds, epsilons, strict=True):
        accuracy = record.central_metrics.get("accuracy")
        table.add_row(
            str(record.server_round),
            "—" if record.clients is None else str(record.clients),
            "—" if record.failures is None else str(record.failures),
            _fmt(record.central_loss),
            _fmt(float(accuracy) if accuracy is not None else None),
            _fmt(spent, 3),
            record.aborted or "",
        )
    return table


@app.command()
def run(config: ConfigArgument) -> None:
    """Run the federation CONFIG describes; print accuracy and epsilon per round."""
    from privet import PrivacyError
    from privet.fl.config import load_config
    from privet.fl.runner import load_federated_data, open_ledger, run_config

    console = Console()
    try:
        settings = load_config(config)
        data = load_federated_data(settings)
        ledger = open_ledger(settings)
    except (PrivacyError, ImportError) as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=2) from error
    epsilons: list[float | None] = []
    progress = Progress(
        TextColumn("[bold]round {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )

    def on_round(record: RoundRecord) -> None:
        spent = ledger.spent() if ledger is not None else None
        epsilons.append(spent)
        accuracy = record.central_metrics.get("accuracy")
        status = f"accuracy {_fmt(float(accuracy) if accuracy is not None else None)}"
        if spent is not None:
            status += f" · ε {spent:.3f}"
        progress.update(task, advance=1, status=status)

    with progress:
        task = progress.add_task("rounds", total=settings.rounds, status="")
        try:
            outcome = run_config(settings, ledger=ledger, on_round=on_round, data=data)
        except (PrivacyError, ImportError) as error:
            Console(stderr=True).print(f"[red]error:[/red] {error}")
            raise typer.Exit(code=2) from error
    console.print(results_table(outcome, epsilons))
    if outcome.history.stopped:
        console.print(f"[yellow]stopped early:[/yellow] {outcome.history.stopped}")
    if ledger is not None:
        console.print(
            f"privacy: ε = {ledger.spent():.4f} of {ledger.epsilon_budget:g} "
            f"at δ = {ledger.delta_budget:g} ({len(ledger.history())} charges)"
        )
