"""Smoke run of the benchmark scripts (DESIGN.md: "Benchmarks are not tests").

Only that a quick run finishes and prints its rows is checked here; the
figures themselves are for people to read.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

from bench_scripts import load_bench_script

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
    return load_bench_script(monkeypatch, name)


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
