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
