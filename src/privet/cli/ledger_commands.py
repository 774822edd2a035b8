"""``privet ledger show|history PATH``: read a ledger file (never writes it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Inspect a privacy budget ledger file.", no_args_is_help=True)

PathArgument = Annotated[Path, typer.Argument(help="The ledger's SQLite file.")]


def _open(path: Path):  # type: ignore[no-untyped-def]
    from privet import PrivacyError
    from privet.dp import Ledger

    if not path.is_file():
        Console(stderr=True).print(f"[red]error:[/red] ledger file {str(path)!r} does not exist")
        raise typer.Exit(code=2)
    try:
        return Ledger.open(path)
    except PrivacyError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc


@app.command()
def show(path: PathArgument) -> None:
    """The budget, what is spent and what remains."""
    ledger = _open(path)
    history = ledger.history()
    spent = ledger.spent()
    table = Table(title=f"ledger {path}", show_header=False)
    table.add_column("field")
    table.add_column("value", justify="right")
    table.add_row("budget ε", f"{ledger.epsilon_budget:.6g}")
    table.add_row("budget δ", f"{ledger.delta_budget:.3g}")
    table.add_row("accountant", ledger.accountant.upper())
    table.add_row("neighbouring relation", ledger.neighboring_relation.value)
    table.add_row("charges", str(len(history)))
    table.add_row("ε spent", f"{spent:.6g}")
    table.add_row("ε remaining", f"{max(0.0, ledger.epsilon_budget - spent):.6g}")
    if history:
        table.add_row(
            "last charge", f"{history[-1].label} at {history[-1].created_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    Console().print(table)


@app.command()
def history(
    path: PathArgument,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per charge, for other programs.")
    ] = False,
) -> None:
    """Every charge: when, by which label, what event, and epsilon after it."""
    from privet.dp import describe_event, event_to_json

    ledger = _open(path)
    charges = ledger.history()
    if as_json:
        for charge in charges:
            record = {
                "index": charge.index,
                "created_at": charge.created_at.isoformat(),
                "label": charge.label,
                "event": json.loads(event_to_json(charge.event)),
                "epsilon_after": charge.epsilon_after,
            }
            typer.echo(json.dumps(record, ensure_ascii=False))
        return
    table = Table(title=f"charges of {path}")
    columns = (("#", "right"), ("when (UTC)", "left"), ("label", "left"), ("event", "left"))
    for name, justify in (*columns, ("ε after", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for charge in charges:
        table.add_row(
            str(charge.index),
            f"{charge.created_at:%Y-%m-%d %H:%M:%S}",
            charge.label,
            describe_event(charge.event),
            f"{charge.epsilon_after:.6g}",
        )
    Console().print(table)
