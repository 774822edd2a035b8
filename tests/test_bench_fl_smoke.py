"""Smoke run of bench/bench_fl.py (DESIGN.md: "Benchmarks are not tests").

That a quick run finishes without Flower or Ray and prints its tables, that
the subprocess worker answers in the JSON the full run parses, and that a
worker stopped at ``--max-seconds`` still yields what it had finished. The
figures themselves are for people to read.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bench_scripts import load_bench_script

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_fl.py"

TITLES = (
    "Logistic regression (30 → 2) on breast cancer (455 training rows, 114 test)",
    "MLP 784-256-10 on the MNIST subset (4,000 training images, 1,000 test)",
)
# Make `import flwr` / `import ray` fail, then run the script as __main__: the quick run
# must not need either (they are in the bench extra only).
WITHOUT_PEERS = (
    "import runpy, sys\n"
    "sys.modules['flwr'] = None\n"
    "sys.modules['ray'] = None\n"
    # One torch thread: on a shared 2-core machine two threads spin against other work.
    "sys.argv = [sys.argv[1], '--quick', '--threads', '1']\n"
    # As `python bench/bench_fl.py` would: the script's folder first on the path.
    "import os; sys.path.insert(0, os.path.dirname(sys.argv[0]))\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)
NUMBER = r"\d[\d.e+-]*"
# clients │ Flower s/round │ rounds/s │ vectorized s/round │ rounds/s │ in-process ... │ Ray ...
QUICK_ROW = re.compile(
    rf"│ +10 │ +— │ +— │ +({NUMBER}) │ +({NUMBER}) │ +({NUMBER}) │ +({NUMBER}) │ +— │ +— │"
)


def load_bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_bench_script(monkeypatch, "bench_fl")


@pytest.mark.slow
def test_bench_fl_quick_runs_without_flower_or_ray() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PEERS, str(BENCH)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for title in TITLES:
        assert f"{title}: seconds per round (median) and rounds/s" in out, title
        assert f"{title}: final test accuracy (equal work) and set-up seconds" in out, title
    rows = QUICK_ROW.findall(out)
    assert len(rows) == 2, out  # one timed row per model, privet's two engines measured
    for seconds_v, rate_v, seconds_s, rate_s in rows:
        # rounds/s is the reciprocal of s/round, to the 3 significant digits printed.
        assert float(rate_v) == pytest.approx(1 / float(seconds_v), rel=0.01)
        assert float(rate_s) == pytest.approx(1 / float(seconds_s), rel=0.01)
    assert out.count("Flower simulation (10 clients): skipped (--quick)") == 2
    assert out.count("privet Ray (10 clients): skipped (--quick)") == 2
    assert "target (vectorized ≥ 10× Flower at 100 and 1000 clients): none" in out
    # The vectorized engine and the in-process clients train on the same batches, so the
    # final models score alike (a mismatch prints OUTSIDE).
    assert re.search(r"equal work: .* at most 0\.00\d\d .*\(within 0\.02\)", out), out
    assert "Error" not in out


@pytest.mark.slow
def test_bench_fl_worker_reports_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The per-configuration worker (what each subprocess of a full run executes)."""
    bench = load_bench(monkeypatch)

    argv = ["--worker", "vectorized", "logreg", "10", "--warmup", "1", "--rounds", "2"]
    assert bench.main(argv) == 0

    lines = capsys.readouterr().out.strip().splitlines()
    events = [json.loads(x.removeprefix(bench.EVENT_PREFIX)) for x in lines[:-1]]
    assert [e["round"] for e in events] == [1, 2, 3]  # warm-up, then the timed rounds
    assert lines[-1].startswith(bench.RESULT_PREFIX)
    result = json.loads(lines[-1].removeprefix(bench.RESULT_PREFIX))
    assert set(result) == {"setup_s", "rounds", "accuracy"}
    assert result["rounds"] == [e["seconds"] for e in events[1:]]
    assert result["setup_s"] >= events[0]["seconds"] > 0
    assert 0.5 < result["accuracy"] <= 1.0  # 114 held-out rows, better than a coin


def test_timed_out_keeps_finished_rounds_or_bounds_the_round_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = load_bench(monkeypatch)
    plan = bench.Plan("logreg", 1000, warmup=1, rounds=3, emit_events=True)

    def events(*rounds: tuple[int, float, float]) -> str:
        lines = ["Flower log line", "(ClientAppActor pid=1) noise"]
        for number, seconds, at in rounds:
            setup = at - 10 if number == plan.warmup else None
            event = {"round": number, "seconds": seconds, "at": at, "setup_s": setup}
            lines.append(bench.EVENT_PREFIX + json.dumps(event))
        return "\n".join(lines)

    partial = bench.timed_out(plan, events((1, 30.0, 100.0), (2, 20.0, 120.0)), 200.0, 300)
    assert partial["rounds"] == [20.0]
    assert partial["setup_s"] == 90.0  # noted at the end of the warm-up round
    assert partial["note"] == "timed out at 300 s after 1 of 3 timed rounds"
    assert bench.to_cell(partial).seconds == 20.0

    # Killed in the first timed round: it had run 200 - 100 = 80 s at least.
    floor = bench.timed_out(plan, events((1, 30.0, 100.0)), 180.0, 300)
    assert floor == {"error": "timed out at 300 s", "round_floor_s": 80.0}
    cell = bench.to_cell(floor)
    assert bench.fmt_seconds(cell) == "> 80"
    fast = bench.Cell(seconds=2.0, floor_s=None, setup_s=None, accuracy=None)
    assert bench.speedup(fast, cell) == (40.0, True)
    assert bench.fmt_speedup({"vectorized": fast, "flower": cell}) == "≥ 40×"

    early = bench.timed_out(plan, events(), 180.0, 300)
    assert early == {"error": "timed out at 300 s before the warm-up ended"}
    assert bench.speedup(fast, bench.to_cell(early)) == (None, False)


def test_target_is_judged_at_100_and_1000_clients_only(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench(monkeypatch)

    def row(vectorized: float, flower: float) -> dict[str, object]:
        return {
            "vectorized": bench.Cell(vectorized, None, None, None),
            "flower": bench.Cell(flower, None, None, None),
        }

    assert bench.target_met(100, row(0.1, 1.0)) is True  # exactly 10x
    assert bench.target_met(1000, row(0.11, 1.0)) is False
    assert bench.target_met(10, row(0.01, 1.0)) is None
    missing = {"vectorized": bench.Cell(0.1, None, None, None), "flower": bench.Cell(*[None] * 4)}
    assert bench.target_met(100, missing) is None
