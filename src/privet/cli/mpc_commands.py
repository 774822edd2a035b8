"""``privet mpc run SCRIPT``: a party script as real processes on loopback, with its costs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from privet.mpc import LaunchResult

app = typer.Typer(help="Secret-sharing MPC: run parties as processes.", no_args_is_help=True)


def results_table(result: LaunchResult) -> Table:
    """Per node: rounds and bytes as the simulator counts them, bytes on the wire, outputs."""
    dealer = result.dealer_stats
    title = (
        f"MPC run, {result.seconds:.2f} s; the dealer made {len(result.plan)} items "
        f"in {dealer.seconds:.3f} s"
    )
    table = Table(title=title, title_justify="left")
    for column in ("node", "rounds", "bytes sent", "wire bytes", "dealer items", "dealer bytes"):
        table.add_column(column, justify="right")
    table.add_column("outputs")
    for party in result.parties:
        outputs = ", ".join(party.outputs)
        table.add_row(
            f"party {party.party}",
            str(party.stats.rounds),
            str(party.stats.bytes_sent),
            str(party.wire_bytes),
            str(party.dealer_stats.items),
            str(party.dealer_stats.bytes_sent),
            outputs,
        )
    table.add_row(
        "dealer",
        "—",
        "—",
        str(result.dealer_wire_bytes),
        str(result.dealer_stats.items),
        str(result.dealer_stats.bytes_sent),
        "",
    )
    return table


@app.command()
def run(
    script: Annotated[Path, typer.Argument(help="Party script; it calls privet.mpc.connect().")],
    args: Annotated[
        list[str] | None, typer.Argument(help="Arguments for the script (after --).")
    ] = None,
    parties: Annotated[int, typer.Option("--parties", "-n", help="Computing parties.")] = 2,
    seed: Annotated[
        str | None,
        typer.Option(help="Dealer seed, 64 hex digits (reproducible runs); default: fresh."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds any single wait may last.")] = 60.0,
    show: Annotated[bool, typer.Option(help="Print every party's outputs.")] = False,
    plan: Annotated[
        Path | None,
        typer.Option(help="A saved plan: the dealer makes and sends its items ahead."),
    ] = None,
    save_plan: Annotated[
        Path | None,
        typer.Option(help="Save the items this run asked for, for a later run's --plan."),
    ] = None,
) -> None:
    """Run SCRIPT as PARTIES party processes and a dealer process on loopback."""
    from privet import PrivacyError
    from privet.mpc import decode_plan, encode_plan, launch
    from privet.wire.files import write_atomically

    try:
        seed_bytes = bytes.fromhex(seed) if seed is not None else None
    except ValueError:
        Console(stderr=True).print(f"[red]error:[/red] seed must be 64 hex digits, got {seed!r}")
        raise typer.Exit(code=2) from None
    try:
        ahead = decode_plan(plan.read_bytes(), str(plan)) if plan is not None else None
        result = launch(
            script,
            num_parties=parties,
            seed=seed_bytes,
            args=args or [],
            timeout=timeout,
            plan=ahead,
        )
        if save_plan is not None:
            write_atomically(save_plan, encode_plan(result.plan), mode=0o644)
    except (PrivacyError, OSError) as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=1) from error
    console = Console()
    console.print(results_table(result))
    if show:
        for party in result.parties:
            for name, value in party.outputs.items():
                console.print(f"party {party.party} {name} = {value.tolist()}")
