"""The examples run and keep their promises."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cohort_summary_spends_until_refused(tmp_path: Path) -> None:
    example = load("private_cohort_summary")
    path = tmp_path / "ledger.sqlite"
    assert example.main([str(path)]) == 0  # 1.0 spent of 2.0
    assert example.main([str(path)]) == 0  # the same budget continues: 2.0 reached
    from privet.dp import Ledger

    third = example.summarize(Ledger.open(path))
    assert all("refused" in line for line in third[:2])
    assert Ledger.open(path).spent() <= 2.0


def test_dp_sgd_example_trains_checkpoints_and_resumes(tmp_path: Path) -> None:
    example = load("dp_sgd_mnist")
    assert example.main([str(tmp_path), "--epochs", "2", "--epsilon", "2.0"]) == 0
    from privet.dp import Ledger

    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    steps = len(ledger.history())
    assert steps == 2 * 16  # every step charged: 2 epochs of 4,000 / 250
    assert ledger.spent() <= 2.0
    # Running again resumes after the last epoch: nothing more to train, nothing more spent.
    assert example.main([str(tmp_path), "--epochs", "2", "--epsilon", "2.0"]) == 0
    assert len(Ledger.open(tmp_path / "ledger.sqlite").history()) == steps


def test_dp_sgd_example_stops_cleanly_when_the_budget_runs_out(tmp_path: Path) -> None:
    example = load("dp_sgd_mnist")
    assert example.main([str(tmp_path), "--epochs", "1", "--epsilon", "1.0"]) == 0
    # Asking for many more epochs on the same ledger (budget 1.2) ends in a refusal, not a crash.
    assert example.main([str(tmp_path), "--epochs", "8", "--epsilon", "1.0"]) == 0
    from privet.dp import Ledger

    assert Ledger.open(tmp_path / "ledger.sqlite").spent() <= 1.2


def test_numpy_clients_federate_without_torch() -> None:
    """Six IID hospitals, FedAvg of numpy logistic regressions: 0.98 accuracy after 5 rounds
    (measured); the test allows 0.95 so a rounding change in the data does not break it."""
    example = load("fl_numpy_clients")
    assert example.main(["--rounds", "5"]) >= 0.95
