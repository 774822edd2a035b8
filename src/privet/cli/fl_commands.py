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


# -- deployment across silos (gRPC) ------------------------------------------------------------

DirectoryArgument = Annotated[Path, typer.Argument(help="Where to write the credentials.")]


def _error(error: Exception) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {error}")
    return typer.Exit(code=2)


@app.command()
def credentials(
    directory: DirectoryArgument,
    config: Annotated[
        Path, typer.Option("--config", help="Issue one token per client the config declares.")
    ],
    host: Annotated[list[str], typer.Option("--host", help="Names the server answers to.")] = [  # noqa: B006
        "localhost",
        "127.0.0.1",
    ],
) -> None:
    """Create a CA, the server's certificate and key, and one token per client.

    Writes ca.pem, server.pem, server.key and tokens.json (the server's digest
    table) in DIRECTORY, and tokens/<client id>.token for each silo (all secrets
    mode 0600). Give each silo ca.pem and its own token file only.
    """
    from privet import PrivacyError
    from privet.fl.config import client_ids, load_config
    from privet.fl.deploy import create_self_signed, issue_tokens, write_private_file

    try:
        settings = load_config(config)
        ids = client_ids(settings.partition.clients)
        directory.mkdir(parents=True, exist_ok=True)
        files = create_self_signed(directory, hosts=host)
        tokens = issue_tokens(ids, directory / "tokens.json")
        (directory / "tokens").mkdir(exist_ok=True)
        for client_id, token in tokens.items():
            write_private_file(directory / "tokens" / f"{client_id}.token", token.encode() + b"\n")
    except (PrivacyError, OSError) as error:
        raise _error(error) from error
    Console().print(
        f"wrote {files.ca_certificate}, {files.server_certificate}, {files.server_key}, "
        f"{directory / 'tokens.json'} and {len(ids)} token files in {directory / 'tokens'}"
    )


@app.command()
def serve(
    config: ConfigArgument,
    credentials_dir: Annotated[
        Path, typer.Option("--credentials", help="Directory from `privet fl credentials`.")
    ],
    address: Annotated[str, typer.Option(help="host:port to listen on.")] = "127.0.0.1:8443",
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoints", help="Checkpoint each round here.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint.")] = False,
    min_clients: Annotated[int, typer.Option(help="Clients to wait for before round 1.")] = 1,
    round_timeout: Annotated[float, typer.Option(help="Seconds a round may take.")] = 600.0,
) -> None:
    """Serve the federated training CONFIG describes to silos joining over gRPC + TLS."""
    from privet import PrivacyError
    from privet.fl.config import load_config
    from privet.fl.deploy import serve as serve_training
    from privet.fl.runner import build_model, build_strategy, load_federated_data, open_ledger
    from privet.fl.torch_client import parameters_of, torch_evaluator

    console = Console()
    try:
        settings = load_config(config)
        data = load_federated_data(settings)
        ledger = open_ledger(settings)
        factory = build_model(settings, data.num_features, data.num_classes)

        def report(record: RoundRecord) -> None:
            accuracy = record.central_metrics.get("accuracy")
            spent = f" · ε {ledger.spent():.3f}" if ledger is not None else ""
            console.print(
                f"round {record.server_round}: test accuracy "
                f"{_fmt(float(accuracy) if accuracy is not None else None)}{spent}"
            )

        history = serve_training(
            address,
            strategy=build_strategy(settings, ledger),
            initial_parameters=parameters_of(factory()),
            rounds=settings.rounds,
            tokens=credentials_dir / "tokens.json",
            certificate_file=credentials_dir / "server.pem",
            key_file=credentials_dir / "server.key",
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            min_clients=min_clients,
            round_timeout=round_timeout,
            central_evaluation=torch_evaluator(factory(), data.x_test, data.y_test),
            on_round=report,
            on_start=lambda port: console.print(f"serving on {address} (port {port})"),
            secure_aggregation=settings.secure_aggregation,
        )
    except (PrivacyError, ImportError, OSError) as error:
        raise _error(error) from error
    if history.stopped:
        console.print(f"[yellow]stopped early:[/yellow] {history.stopped}")
    console.print(f"done: {len(history.rounds)} round(s)")


@app.command()
def join(
    config: ConfigArgument,
    client_id: Annotated[str, typer.Option("--client-id", help="This silo's id.")],
    token_file: Annotated[Path, typer.Option("--token-file", help="This silo's token.")],
    ca_file: Annotated[Path, typer.Option("--ca", help="CA certificate that signed the server.")],
    address: Annotated[str, typer.Option(help="The server's host:port.")] = "127.0.0.1:8443",
) -> None:
    """Join a federated training as one silo, training on this silo's share of CONFIG's data."""
    from privet import PrivacyError
    from privet.fl.config import load_config
    from privet.fl.deploy import DeployError
    from privet.fl.deploy import join as join_training
    from privet.fl.runner import client_from_config

    try:
        settings = load_config(config)
        client = client_from_config(settings, client_id)
        report = join_training(
            address, client, client_id=client_id, token_file=token_file, ca_file=ca_file
        )
    except (PrivacyError, DeployError, ImportError, OSError) as error:
        raise _error(error) from error
    Console().print(
        f"{client_id}: {report.fit_tasks} fit and {report.evaluate_tasks} evaluate task(s), "
        f"{report.failed_tasks} failed; {report.reason}"
    )
