"""The ``privet`` command: accounting calculators, ledger inspection and the demo.

References
----------
* The printed epsilons are compared with :func:`privet.dp.epsilon` on the same
  event (pinned against dp-accounting 0.6 in tests/dp/test_accounting.py).
* shared/PEERS.md: q=256/60000, sigma=1.1, 14062 steps, delta=1e-5 gives
  dp-accounting RDP epsilon 2.5966 and PLD epsilon 2.3817 (dp-accounting 0.6.0).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime
from pathlib import Path

import dp_accounting
import pytest
from typer.testing import CliRunner, Result

from privet.cli import demo, demo_federated, demo_training
from privet.cli.main import app
from privet.dp import (
    Ledger,
    describe_event,
    dpsgd_event,
    epsilon,
    event_from_json,
    noise_multiplier_for,
)
from privet.fl.runner import load_federated_data

# A wide terminal, so that rich neither wraps nor truncates table cells.
runner = CliRunner(env={"COLUMNS": "250", "NO_COLOR": "1"})

DPSGD_ARGS = ["--noise-multiplier", "1.1", "--sample-rate", "0.00427", "--steps", "14062"]

# The labels demo.py charges, in order; the last request (progression variance) is refused.
DEMO_LEDGER_LABELS = ["patients", "mean age", "mean BMI", "median bp", "age histogram"]


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def table_values(output: str) -> dict[str, list[str]]:
    """The cells of each table row, keyed by the first cell."""
    rows: dict[str, list[str]] = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│┃").split("│")]
        if len(cells) >= 2 and cells[0]:
            rows[cells[0]] = cells[1:]
    return rows


# -- privet epsilon ------------------------------------------------------------------------------


def test_epsilon_prints_pld_and_rdp_as_the_library_computes_them() -> None:
    result = invoke("epsilon", *DPSGD_ARGS, "--delta", "1e-5")
    assert result.exit_code == 0, result.output
    rows = table_values(result.output)
    event = dpsgd_event(1.1, 0.00427, 14062)
    assert rows["PLD"] == [f"{epsilon(event, 1e-5, 'pld'):.4f}"]
    assert rows["RDP"] == [f"{epsilon(event, 1e-5, 'rdp'):.4f}"]


def test_epsilon_reproduces_the_peer_reference() -> None:
    # shared/PEERS.md: dp-accounting RDP 2.5966, PLD 2.3817 for q=256/60000.
    result = invoke("epsilon", "-z", "1.1", "-q", repr(256 / 60000), "-n", "14062", "-d", "1e-5")
    assert result.exit_code == 0, result.output
    rows = table_values(result.output)
    assert rows["RDP"] == ["2.5966"]
    assert rows["PLD"] == ["2.3817"]


def test_epsilon_with_one_accountant_prints_only_that_one() -> None:
    result = invoke("epsilon", "-z", "1.0", "-q", "0.01", "-n", "100", "--accountant", "rdp")
    assert result.exit_code == 0, result.output
    rows = table_values(result.output)
    assert "PLD" not in rows
    assert rows["RDP"] == [f"{epsilon(dpsgd_event(1.0, 0.01, 100), 1e-5, 'rdp'):.4f}"]


# -- privet noise --------------------------------------------------------------------------------

NOISE_ARGS = [
    "noise",
    "--target-epsilon",
    "3",
    "--sample-rate",
    "0.00427",
    "--steps",
    "1000",
    "--delta",
    "1e-5",
    "--accountant",
    "rdp",
]


def test_noise_prints_the_calibrated_multiplier_and_an_achieved_epsilon_within_target() -> None:
    result = invoke(*NOISE_ARGS)
    assert result.exit_code == 0, result.output
    sigma_text, achieved_text = table_values(result.output)["RDP"]
    sigma = noise_multiplier_for(3.0, 1e-5, 0.00427, 1000, "rdp")
    # Printed to 4 decimals, rounded up; the epsilon shown is that of the printed sigma.
    assert sigma <= float(sigma_text) < sigma + 1e-4
    printed = float(sigma_text)
    assert achieved_text == f"{epsilon(dpsgd_event(printed, 0.00427, 1000), 1e-5, 'rdp'):.4f}"
    assert float(achieved_text) <= 3.0


def test_noise_printed_multiplier_meets_the_target() -> None:
    result = invoke(*NOISE_ARGS)
    assert result.exit_code == 0, result.output
    printed_sigma = float(table_values(result.output)["RDP"][0])
    assert epsilon(dpsgd_event(printed_sigma, 0.00427, 1000), 1e-5, "rdp") <= 3.0


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["epsilon", "-z", "-1", "-q", "0.01", "-n", "100"],
            "noise_multiplier must be > 0, got -1.0",
        ),
        (
            ["epsilon", *DPSGD_ARGS, "--delta", "2"],
            "delta must be in [0, 1), got 2.0",
        ),
        (
            ["epsilon", "-z", "1.1", "-q", "1.5", "-n", "100"],
            "sample_rate must be in (0, 1], got 1.5",
        ),
        (["epsilon", "-z", "1.1", "-q", "0.01", "-n", "0"], "steps must be an integer >= 1, got 0"),
        (
            ["noise", "-e", "-3", "-q", "0.01", "-n", "100", "-a", "rdp"],
            "target_epsilon must be > 0, got -3.0",
        ),
        (
            ["noise", "-e", "3", "-q", "0.01", "-n", "100", "--delta", "2", "-a", "rdp"],
            "delta must be in (0, 1), got 2.0",
        ),
    ],
    ids=["negative-noise", "delta-2", "rate-1.5", "steps-0", "negative-target", "noise-delta-2"],
)
def test_bad_input_exits_non_zero_naming_the_value(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert f"error: {message}" in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a traceback


def test_unparsable_option_is_a_usage_error() -> None:
    result = invoke("epsilon", "-z", "1.1", "-q", "0.01", "-n", "abc")
    assert result.exit_code == 2
    assert "Invalid value for '--steps'" in result.output  # typer's parser names the option


# -- privet ledger show / history ----------------------------------------------------------------


@pytest.fixture
def charged_ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(1.0, 1e-6, "pld", path=tmp_path / "ledger.sqlite")
    ledger.charge(dp_accounting.LaplaceDpEvent(10.0), label="first count")
    ledger.charge(dp_accounting.GaussianDpEvent(8.0), label="second mean")
    return ledger


def test_ledger_show_prints_budget_spent_and_last_label(charged_ledger: Ledger) -> None:
    result = invoke("ledger", "show", str(charged_ledger.path))
    assert result.exit_code == 0, result.output
    rows = table_values(result.output)
    spent = charged_ledger.spent()
    assert rows["budget ε"] == ["1"]
    assert rows["budget δ"] == ["1e-06"]
    assert rows["accountant"] == ["PLD"]
    assert rows["neighbouring relation"] == ["add_or_remove_one"]
    assert rows["charges"] == ["2"]
    assert rows["ε spent"] == [f"{spent:.6g}"]
    assert rows["ε remaining"] == [f"{1.0 - spent:.6g}"]
    assert rows["last charge"][0].startswith("second mean at ")


def test_ledger_history_prints_every_charge(charged_ledger: Ledger) -> None:
    result = invoke("ledger", "history", str(charged_ledger.path))
    assert result.exit_code == 0, result.output
    rows = table_values(result.output)
    for charge in charged_ledger.history():
        cells = rows[str(charge.index)]
        assert cells[1:] == [
            charge.label,
            describe_event(charge.event),
            f"{charge.epsilon_after:.6g}",
        ]
        assert cells[0] == f"{charge.created_at:%Y-%m-%d %H:%M:%S}"


def test_ledger_history_json_round_trips_every_charge(charged_ledger: Ledger) -> None:
    result = invoke("ledger", "history", str(charged_ledger.path), "--json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    charges = charged_ledger.history()
    assert [r["label"] for r in records] == [c.label for c in charges]
    assert [event_from_json(json.dumps(r["event"])) for r in records] == [c.event for c in charges]
    assert [r["epsilon_after"] for r in records] == [c.epsilon_after for c in charges]
    assert [datetime.fromisoformat(r["created_at"]) for r in records] == [
        c.created_at for c in charges
    ]


def test_ledger_commands_do_not_change_the_charges(charged_ledger: Ledger) -> None:
    before = charged_ledger.history()
    assert invoke("ledger", "show", str(charged_ledger.path)).exit_code == 0
    assert invoke("ledger", "history", str(charged_ledger.path)).exit_code == 0
    assert Ledger.open(charged_ledger.path).history() == before  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["show", "history"])
def test_ledger_commands_on_a_missing_file_exit_2(command: str, tmp_path: Path) -> None:
    path = tmp_path / "missing.sqlite"
    result = invoke("ledger", command, str(path))
    assert result.exit_code == 2
    assert f"error: ledger file '{path}' does not exist" in result.output
    assert not path.exists()


@pytest.mark.parametrize("command", ["show", "history"])
def test_ledger_commands_on_a_garbage_file_exit_2(command: str, tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"not a database at all\n" * 50)
    result = invoke("ledger", command, str(path))
    assert result.exit_code == 2
    assert f"cannot open ledger file '{path}'" in result.output


def _foreign_sqlite(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.commit()


def test_ledger_show_on_a_non_ledger_sqlite_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    _foreign_sqlite(path)
    result = invoke("ledger", "show", str(path))
    assert result.exit_code == 2
    assert "is not a privet ledger" in result.output


def test_ledger_show_never_writes_a_non_ledger_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    _foreign_sqlite(path)
    invoke("ledger", "show", str(path))
    with closing(sqlite3.connect(path)) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["notes"]


# -- privet demo ---------------------------------------------------------------------------------


def test_demo_runs_refuses_the_last_request_and_leaves_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    result = invoke("demo", "--ledger", str(path))
    assert result.exit_code == 0, result.output
    assert "refused" in result.output
    assert "Refused before any noise was drawn" in result.output
    refused_rows = [
        name for name, cells in table_values(result.output).items() if "refused" in cells
    ]
    assert len(refused_rows) == 1
    assert "DP-SGD on the MNIST subset" in result.output
    assert "Federated: 10 hospitals" in result.output
    assert "FedAvg over SecAgg+" in result.output
    assert "The server saw only masked updates: 10 vectors" in result.output
    for label in ("patients", "mean age", "mean BMI", "median BP", "aged 60-90"):
        assert label in result.output
    assert "MPC: a vendor's model diagnoses 285 of a hospital's patients" in result.output
    ledger = Ledger.open(path)
    assert (ledger.epsilon_budget, ledger.delta_budget) == (demo.BUDGET_EPSILON, demo.BUDGET_DELTA)
    assert ledger.spent() <= demo.BUDGET_EPSILON
    labels = [charge.label for charge in ledger.history()]
    steps = demo_training.EPOCHS * (4000 // demo_training.BATCH_SIZE)
    rounds = [f"fl round {r}: distributed DP" for r in range(1, demo_federated.ROUNDS + 1)]
    assert labels == ["dp-sgd step"] * steps + rounds + DEMO_LEDGER_LABELS


def test_demo_on_a_ledger_with_another_budget_exits_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    Ledger(2.0, 1e-6, path=path)
    result = invoke("demo", "--ledger", str(path))
    assert result.exit_code == 2
    assert "already holds a different ledger" in result.output


def test_analyse_releases_all_but_the_last_request() -> None:
    ledger = Ledger(demo.BUDGET_EPSILON, demo.BUDGET_DELTA, demo.ACCOUNTANT)
    # What the demo's training spends, charged at once instead of step by step.
    sample_rate = demo_training.BATCH_SIZE / 4000
    steps = demo_training.EPOCHS * (4000 // demo_training.BATCH_SIZE)
    sigma = noise_multiplier_for(
        demo_training.TRAINING_EPSILON,
        demo_training.TRAINING_DELTA,
        sample_rate,
        steps,
        demo.ACCOUNTANT,
    )
    ledger.charge(dpsgd_event(sigma, sample_rate, steps), label="training")
    # And what the federated step spends: the distributed discrete Gaussian's zCDP, each round.
    _, threshold = demo_federated.SECURE.graph_and_threshold(demo_federated.SILOS)
    data = load_federated_data(demo_federated.CONFIG)
    dimension = (data.num_features + 1) * data.num_classes  # logistic regression
    mechanism = demo_federated.federated_mechanism(dimension, threshold)
    federated = dp_accounting.SelfComposedDpEvent(mechanism.event, demo_federated.ROUNDS)
    ledger.charge(federated, label="federated")
    outcomes = demo.analyse(ledger)
    assert len(outcomes) == len(DEMO_LEDGER_LABELS) + 1
    *released, refused = outcomes
    assert all(outcome.released is not None for outcome in released)
    assert refused.released is None
    # A refusal spends nothing; every release spends a little more; all within budget.
    spent = [outcome.epsilon_spent for outcome in outcomes]
    assert spent == sorted(spent)
    assert refused.epsilon_spent == released[-1].epsilon_spent == ledger.spent()
    assert ledger.spent() <= demo.BUDGET_EPSILON
    labels = [charge.label for charge in ledger.history()]
    assert labels == ["training", "federated", *DEMO_LEDGER_LABELS]
