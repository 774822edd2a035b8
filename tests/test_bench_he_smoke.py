"""Smoke run of bench/bench_he.py (DESIGN.md: "Benchmarks are not tests").

A ``--quick`` run in a subprocess (as ``make bench`` runs it) finishes, prints
every row with figures, and each ratio and total is the one its own columns
imply; the target verdict is checked on made-up figures. No timing is asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bench_scripts import load_bench_script

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_he.py"
COLUMNS = 9
MODES = ("naive r^n", "CRT (secret key)", "DJN l=512", "DJN l=256")


def load_bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_bench_script(monkeypatch, "bench_he")


def table_rows(out: str) -> list[list[str]]:
    rows = []
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == COLUMNS and cells[0] and cells[0] != "operation":
            rows.append(cells)
    return rows


def test_quick_run_prints_every_row() -> None:
    pytest.importorskip("phe", reason="the bench extra (pip install 'privet[bench]')")
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCH.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    rows = table_rows(out)
    operations = [(r[0], r[1]) for r in rows]
    assert operations[:3] == [
        ("keygen 1024-bit (median)", "cryptography RSA primes"),
        ("DJN table (once per key)", "DJN l=512"),
        ("DJN table (once per key)", "DJN l=256"),
    ]
    assert [(op, mode) for op, mode in operations if op == "encrypt 20"] == [
        ("encrypt 20", mode) for mode in MODES
    ]
    assert ("decrypt 20 packed", "packed, DJN l=512") in operations
    totals = [r for r in rows if r[0].startswith("encrypt +")]
    assert len(totals) == 7
    by_key = {(r[0], r[1]): r for r in rows}
    for row in rows:
        privet, peer, ratio = row[2], row[3], row[4]
        assert float(privet) > 0
        if peer == "—":
            assert row[8] == "no such step"
            continue
        assert ratio.endswith("×")
        assert float(ratio.removesuffix("×")) == pytest.approx(
            float(peer) / float(privet), rel=0.06, abs=0.06
        )
        assert row[5] in (("met", "missed") if row[0].startswith("encrypt +") else ("",))
    # A total is the sum of the rows it names (3 significant digits printed).
    default = by_key[("encrypt + sum + decrypt sum", "DJN l=512 + table")]
    parts = (
        by_key[("DJN table (once per key)", "DJN l=512")][2],
        by_key[("encrypt 20", "DJN l=512")][2],
        by_key[("sum 20 (homomorphic)", "DJN l=512")][2],
        by_key[("decrypt the sum", "CRT")][2],
    )
    assert float(default[2]) == pytest.approx(sum(map(float, parts)), rel=0.02)
    # Every result decrypts to within the 2^-32 fixed-point step (sums: 20 steps).
    for row in rows:
        if row[6]:
            assert float(row[6]) <= 20 * 2.0**-32
    assert "Quick: insecure 1024-bit keys, the figures mean nothing." in out
    assert "target (phe s ≥ 10× privet s on encrypt + sum + decrypt sum)" in out


def test_target_is_judged_on_totals_only(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench(monkeypatch)
    fast, slow = bench.Measured(1.0), bench.Measured(10.0)
    assert bench.Row("encrypt + sum + decrypt sum", "m", fast, slow, total=True).target_met
    assert bench.Row("x", "m", fast, bench.Measured(9.99), total=True).target_met is False
    assert bench.Row("encrypt 20", "m", fast, slow).target_met is None
    assert bench.Row("x", "m", fast, "skipped (--no-phe)", total=True).ratio is None
    assert bench.Row("x", "m", None, slow).ratio is None


def test_no_phe_run_prints_privet_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_bench(monkeypatch)
    assert bench.main(["--quick", "--no-phe", "--values", "5"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert rows
    assert all(r[3] == "—" for r in rows)
    assert "not measured" in out


def test_bad_arguments_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_bench(monkeypatch)
    with pytest.raises(SystemExit):
        bench.parse_args(["--values", "0"])
    assert "must be >= 1, got 0" in capsys.readouterr().err
