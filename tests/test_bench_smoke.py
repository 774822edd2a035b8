"""Smoke run of the benchmark scripts (DESIGN.md: "Benchmarks are not tests").

Only that a quick run finishes and prints its rows is checked here; the
figures themselves are for people to read.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"

MECHANISM_ROWS = (
    "Laplace",
    "Gaussian (analytic)",
    "discrete Laplace",
    "discrete Gaussian σ=4",
    "randomized response k=2",
    "randomized response k=10",
    "exponential mechanism",
    "permute-and-flip",
    "report-noisy-max",
)
# accountant │ store │ events │ ... │ equal
LEDGER_ROW = re.compile(r"│ (rdp|pld) +│ (memory|sqlite) +│ (same|distinct) +│.*│ (yes|no) \(Δ=")
TABLE_TITLES = (
    "Mechanism throughput",
    "Private selection over 1000 candidates",
    "Ledger charges/s",
)


def load_script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import ``bench/<name>.py`` (bench/ is not a package)."""
    # Scripts import bench/cli_helpers.py by name, as when run from the shell.
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve a class's module through sys.modules.
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bench_mechanisms_quick(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("diffprivlib", reason="the bench extra (pip install privet[bench])")
    bench = load_script("bench_mechanisms", monkeypatch)

    assert bench.main(["--quick"]) == 0

    out = capsys.readouterr().out
    for title in TABLE_TITLES:
        assert title in out
    for name in MECHANISM_ROWS:
        assert f"│ {name} " in out, name
    ledger_rows = LEDGER_ROW.findall(out)
    assert len({row[:3] for row in ledger_rows}) == len(ledger_rows) == 8
    # Every ledger reached the epsilon a bare dp-accounting computation gives, to PLD's grid.
    assert all(row[3] == "yes" for row in ledger_rows), ledger_rows
