"""Smoke run of bench/bench_dpsgd.py (DESIGN.md: "Benchmarks are not tests").

Only that a quick run finishes and prints its rows is checked here, and that
the subprocess worker answers in the JSON the full run parses; the figures
themselves are for people to read.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from bench_scripts import load_bench_script

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_dpsgd.py"

FRAMEWORK_ROWS = (
    "plain PyTorch",
    "Opacus hooks",
    "Opacus functorch",
    "Opacus ew",
    "Opacus ghost",
    "privet (crypto noise)",
    "privet (seeded noise)",
)
TABLE_TITLES = (
    "MLP 784-256-10, batch",
    "CNN conv 16/32 on 28×28",
    "Transformer encoder block",
    "Noise for one step alone",
)


def load_bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_bench_script(monkeypatch, "bench_dpsgd")


@pytest.mark.slow
def test_bench_dpsgd_quick(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("opacus", reason="the bench extra (pip install privet[bench])")
    bench = load_bench(monkeypatch)

    assert bench.main(["--quick"]) == 0

    out = capsys.readouterr().out
    for title in TABLE_TITLES:
        assert title in out, title
    for name in FRAMEWORK_ROWS:
        # One row per workload, each with a time (no mode failed on these models).
        rows = [line for line in out.splitlines() if line.startswith(f"│ {name} ")]
        assert len(rows) == 3, (name, rows)
        assert all("Error" not in row and "timed out" not in row for row in rows), rows
    assert out.count("fastest Opacus mode here: Opacus ") == 3
    assert "Targets (issue): privet ≤ 1.5× plain PyTorch" in out
    assert "\nmet: " in out
    assert "\nmissed: " in out


@pytest.mark.slow
def test_bench_dpsgd_worker_reports_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The per-configuration worker (what each subprocess of a full run executes)."""
    pytest.importorskip("opacus", reason="the bench extra (pip install privet[bench])")
    bench = load_bench(monkeypatch)

    assert bench.main(["--worker", "privet", "mlp", "--quick"]) == 0

    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(bench.RESULT_PREFIX)
    result = json.loads(line.removeprefix(bench.RESULT_PREFIX))
    assert set(result) == {"times", "before_mb", "peak_mb"}
    assert len(result["times"]) == 1
    assert result["times"][0] > 0
    assert result["peak_mb"] >= result["before_mb"] > 0
