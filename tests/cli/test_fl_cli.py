"""``privet fl run CONFIG``: a run from a TOML file, its progress and its results table."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from privet.cli.main import app
from privet.dp import Ledger

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})

CONFIG = """
rounds = 3

[data]
dataset = "breast_cancer"
test_fraction = 0.25

[partition]
scheme = "dirichlet"
clients = 4
alpha = 1.0
min_examples = 20

[model]
kind = "logistic"

[training]
epochs = 1
batch_size = 16
learning_rate = 0.1

[dp]
mode = "central"
noise_multiplier = 3.0
clip_norm = 1.0
epsilon = {epsilon}
accountant = "rdp"
ledger = "run.sqlite"

[engine]
kind = "vectorized"
"""


def write(tmp_path: Path, epsilon: float) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(CONFIG.format(epsilon=epsilon))
    return path


def test_fl_run_prints_accuracy_and_epsilon_per_round(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fl", "run", str(write(tmp_path, 20.0))])
    assert result.exit_code == 0, result.output
    ledger = Ledger.open(tmp_path / "run.sqlite")
    assert len(ledger.history()) == 3
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["1", "2", "3"]
    # The last row's epsilon is what the ledger holds.
    assert rows[-1].split("│")[6].strip() == f"{ledger.spent():.3f}"
    assert f"ε = {ledger.spent():.4f} of 20" in result.output


def test_fl_run_stops_cleanly_at_the_budget(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fl", "run", str(write(tmp_path, 2.0))])
    assert result.exit_code == 0, result.output
    assert "stopped early" in result.output
    ledger = Ledger.open(tmp_path / "run.sqlite")
    assert ledger.spent() <= 2.0
    assert 0 < len(ledger.history()) < 3


def test_fl_run_with_a_bad_config_exits_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[data]\ndataset = "imagenet"\n')
    result = runner.invoke(app, ["fl", "run", str(path)])
    assert result.exit_code == 2
    assert "data.dataset must be one of" in result.output
