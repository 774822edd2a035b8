"""Smoke run of bench/bench_he.py (DESIGN.md: "Benchmarks are not tests").

A ``--quick`` run in a subprocess (as ``make bench`` runs it) finishes, prints
every row with figures, and each ratio and total is the one its own columns
imply; the target verdict is checked on made-up figures. The CKKS half
(bench/ckks_inference.py) likewise: every row with figures, each ratio, total and
extrapolation the one its columns imply, the public context sizes, and every
agreement check within its stated bound; ``--no-ckks`` leaves it out. No timing is
asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bench_scripts import load_bench_script

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_he.py"
COLUMNS = 9
MODES = ("naive r^n", "CRT (secret key)", "DJN l=512", "DJN l=256")
CKKS_TITLE = "CKKS encrypted logistic inference"
CKKS_COLUMNS = 8
CONTEXT_COLUMNS = 6
CHECK_COLUMNS = 4
QUICK_ROWS = 200  # ckks_inference.QUICK_ROWS
QUICK_ROW_PACKED = 2  # ckks_inference.QUICK_ROW_PACKED_ROWS


def load_bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_bench_script(monkeypatch, "bench_he")


def table_rows(out: str, columns: int = COLUMNS) -> list[list[str]]:
    rows = []
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == columns and cells[0] and cells[0] not in ("operation", "check"):
            rows.append(cells)
    return rows


def paillier_part(out: str) -> str:
    return out.split(CKKS_TITLE)[0]


def ratio(text: str) -> float:
    assert text.endswith("×"), text
    return float(text.removesuffix("×"))


def bound_value(text: str) -> float:
    """A check's printed bound: "2^-12 = 2.4e-04", "sigmoid fit error 0.390 + 4e-07", "0"."""
    if "=" in text:
        return float(text.split("=")[-1])
    if "+" in text:
        before, after = text.split("+")
        return float(before.split()[-1]) + float(after)
    return float(text)


def check_ckks_section(out: str) -> None:
    """The quick CKKS tables: every row, figures consistent with one another, checks met."""
    assert out.count(CKKS_TITLE) == 1
    ckks = out.split(CKKS_TITLE)[1]
    rows = table_rows(ckks, CKKS_COLUMNS)
    steps = [
        f"encrypt {QUICK_ROWS} × 30",
        "evaluate (affine, degree-3 sigmoid)",
        f"decrypt {QUICK_ROWS} probabilities",
        "total (encrypt + evaluate + decrypt)",
    ]
    extrapolated = [f"{step}, extrapolated from {QUICK_ROW_PACKED} rows" for step in steps]
    assert [r[0] for r in rows] == steps + extrapolated
    feature, packed = rows[:4], rows[4:]
    for row in feature:
        assert row[1] == "one ciphertext per feature (30)"
        privet, tenseal = float(row[2]), float(row[3])
        assert privet > 0
        assert tenseal > 0
        # Seconds print to 3 significant digits (each off by < 0.5% of itself, so their
        # quotient by < 1.01%) and the ratio, taken on unrounded seconds, to 2 decimals.
        implied = privet / tenseal
        assert abs(ratio(row[4]) - implied) <= 0.0101 * implied + 0.005 + 1e-9
        judged = row[0].startswith(("evaluate", "total"))
        if judged and ratio(row[4]) != 1.1:
            assert row[5] == ("met" if ratio(row[4]) < 1.1 else "missed")
        assert row[5] in (("met", "missed") if judged else ("",))
        assert row[6] == "—"
    for column in (2, 3):  # the total is the sum of its steps (3 significant digits printed)
        parts = sum(float(row[column]) for row in feature[:3])
        assert float(feature[3][column]) == pytest.approx(parts, rel=0.01)
    for row, twin in zip(packed, feature, strict=True):
        assert row[1] == f"one ciphertext per row ({QUICK_ROWS}), TenSEAL only"
        assert (row[2], row[4], row[5]) == ("—", "—", "")
        per_row_ms = float(row[7].removesuffix(" ms per row"))
        assert float(row[3]) == pytest.approx(per_row_ms / 1e3 * QUICK_ROWS, rel=0.01)
        assert ratio(row[6]) == pytest.approx(float(row[3]) / float(twin[3]), rel=0.02, abs=0.6)

    contexts = table_rows(ckks, CONTEXT_COLUMNS)
    assert [r[0] for r in contexts] == ["relinearization", "relinearization + Galois"]
    relin, galois = (int(r[2].replace(",", "")) for r in contexts)
    for row, size in zip(contexts, (relin, galois), strict=True):
        assert float(row[3]) == pytest.approx(size / 1e6, rel=0.01)
        assert ratio(row[4]) == pytest.approx(size / relin, rel=0.01, abs=0.06)
        assert float(row[5]) > 0
    assert galois > relin  # Galois keys come on top of the relinearization keys

    checks = table_rows(ckks, CHECK_COLUMNS)
    assert len(checks) == 7
    for name, measured, bound, within in checks:
        # Printed with 2-3 significant digits; "within" is judged on the unrounded figures.
        assert float(measured) <= bound_value(bound) * 1.05, name
        assert within == "yes", name
    assert checks[0][2] == "2 × 2^-12 = 2.4e-04"
    assert [c[2] for c in checks[1:4]] == ["2^-12 = 2.4e-04"] * 3
    assert checks[4][2].startswith("sigmoid fit error 0.")
    assert [c[2] for c in checks[5:]] == ["0", "0"]
    assert f"Quick: {QUICK_ROWS} rows, 1 repetition(s), {QUICK_ROW_PACKED} row-packed rows" in ckks
    assert "CKKS target (privet s ≤ 1.1× raw TenSEAL s on evaluate and total)" in ckks
    assert "Checks: all within their bounds." in ckks


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
    rows = table_rows(paillier_part(out))
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
    check_ckks_section(out)


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
    assert bench.main(["--quick", "--no-phe", "--no-ckks", "--values", "5"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert rows
    assert all(r[3] == "—" for r in rows)
    assert "not measured" in out
    assert "CKKS" not in out


def test_quick_ckks_half_prints_every_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tenseal", reason="the he extra (pip install 'privet[he]')")
    pytest.importorskip("sklearn", reason="the bench extra (pip install 'privet[bench]')")
    bench = load_bench(monkeypatch)
    assert bench.main(["--quick", "--no-phe", "--values", "5"]) == 0
    check_ckks_section(capsys.readouterr().out)


def test_ckks_rows_follow_from_their_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tenseal", reason="the he extra (pip install 'privet[he]')")
    pytest.importorskip("sklearn", reason="the bench extra (pip install 'privet[bench]')")
    ckks = load_bench_script(monkeypatch, "ckks_inference")
    workload = ckks.make_workload(40)
    empty = np.empty(0)
    results = ckks.CkksResults(
        workload=workload,
        repeats=3,
        privet=ckks.Measured(ckks.Timing(1.0, 2.0, 0.5), empty),
        tenseal=ckks.Measured(ckks.Timing(1.0, 1.6, 0.5), empty),
        row_packing=ckks.RowPacking(4, ckks.Timing(0.01, 0.2, 0.001), empty),
        contexts=ckks.PublicContexts(100, 2_000, 0.1, 0.3),
        quick=False,
    )
    rows = {(row.step, row.privet is None): row for row in ckks.build_rows(results)}
    evaluate, total = rows[("evaluate", False)], rows[("total", False)]
    assert evaluate.ratio == pytest.approx(1.25)
    assert evaluate.target_met is False
    assert total.ratio == pytest.approx(3.5 / 3.1)
    assert total.target_met is False
    assert rows[("encrypt", False)].target_met is None  # not judged, ratio 1.0
    packed = rows[("evaluate", True)]
    assert packed.tenseal == pytest.approx(0.2 * 40)  # per row x rows
    assert packed.packing_ratio == pytest.approx(0.2 * 40 / 1.6)
    assert packed.ratio is None
    assert packed.target_met is None
    assert rows[("total", True)].tenseal == pytest.approx(0.211 * 40)
    met = ckks.Row("evaluate", "e", "p", privet=1.1, tenseal=1.0, judged=True)
    assert met.target_met is True
    assert ckks.Row("total", "t", "p", 1.11, 1.0, judged=True).target_met is False
    assert ckks.Check("c", 2.0, 2.0, "2").ok
    assert not ckks.Check("c", 2.0001, 2.0, "2").ok


def test_bad_arguments_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_bench(monkeypatch)
    with pytest.raises(SystemExit):
        bench.parse_args(["--values", "0"])
    assert "must be >= 1, got 0" in capsys.readouterr().err
