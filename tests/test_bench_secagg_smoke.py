"""Smoke run of bench/bench_secagg.py (DESIGN.md: "Benchmarks are not tests").

That a quick run finishes without Flower and prints one row per protocol and
client count with its figures and ratio, that the ratio is the one its own
columns imply, and that the pieces the full run leans on (mask counts, the
target verdict, the Flower mods) do what the table says. No timing is asserted.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

from bench_scripts import load_bench_script
from privet.secagg import MaskingGraph

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_secagg.py"
COLUMNS = 17


def load_bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_bench_script(monkeypatch, "bench_secagg")


def table_rows(out: str) -> list[list[str]]:
    """The body rows of the rich table whose first cell names a protocol."""
    rows = []
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == COLUMNS and cells[0] in ("SecAgg", "SecAgg+", "Flower SecAgg+"):
            rows.append(cells)
    return rows


def test_quick_run_prints_a_row_per_protocol_without_flower(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_bench(monkeypatch)
    # The quick run must not need Flower (it is in the bench extra only).
    monkeypatch.setitem(sys.modules, "flwr", None)

    assert bench.main(["--quick"]) == 0

    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [(r[0], r[1]) for r in rows] == [
        (protocol, n) for n in ("5", "10") for protocol in ("SecAgg", "SecAgg+", "Flower SecAgg+")
    ], out
    for row in rows:
        protocol, n, k, t, dropped = row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4])
        assert dropped == math.ceil(0.1 * n)
        if protocol == "SecAgg":
            assert (k, t) == (n - 1, n // 2 + 1)
        if protocol == "Flower SecAgg+":
            assert row[6:9] == ["—", "—", "—"]
            assert row[-1] == "skipped (--quick)"
            continue
        client, server, total, floor = (float(row[i]) for i in (6, 7, 8, 11))
        assert min(client, server, float(row[9]), floor, float(row[12])) > 0
        # The total and the ratio are the ones the row's own columns imply, to the 3
        # significant digits printed.
        assert total == pytest.approx(client + server, rel=0.02)
        assert row[13].endswith("×")
        assert float(row[13].removesuffix("×")) == pytest.approx(total / floor, rel=0.03)
        assert row[14] == "—"  # judged at n = 100 only
        assert row[15] == "yes"  # the unmasked sum equals the survivors' plaintext sum
    # SecAgg+ runs on a sparse graph at n = 10 (k = 6 for 10% dropouts and corruption).
    plus_10 = rows[4]
    assert int(plus_10[2]) < 9
    assert "target (SecAgg+ ≤ 3× PRG floor at n = 100): not measured" in out


@pytest.mark.parametrize(("n", "dropped"), [(5, {2}), (10, {1, 7}), (12, {3, 4, 5})])
def test_mask_counts_on_the_complete_graph(
    monkeypatch: pytest.MonkeyPatch, n: int, dropped: set[int]
) -> None:
    """Bonawitz et al. 2017, §4: a survivor expands its self mask and one pairwise mask per
    other client in U2 (everyone: the dropouts left after sharing keys); the server expands
    each survivor's self mask and, for each dropout, the masks it shared with survivors."""
    bench = load_bench(monkeypatch)
    d = len(dropped)
    counts = bench.mask_counts(MaskingGraph.complete(n), frozenset(dropped))
    assert counts.per_client == n
    assert counts.server == (n - d) + d * (n - d)
    assert counts.survivors == n - d


def test_mask_counts_on_a_sparse_graph_match_a_naive_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = load_bench(monkeypatch)
    graph = MaskingGraph.random(20, 6, np.random.default_rng(3))
    dropped = frozenset({2, 9, 14})
    survivors = [u for u in range(1, 21) if u not in dropped]
    pairs = [(u, v) for u in range(1, 21) for v in range(1, 21) if v in graph.neighbours(u)]
    counts = bench.mask_counts(graph, dropped)
    client_total = sum(1 + sum(1 for a, _ in pairs if a == u) for u in survivors)
    assert counts.per_client == pytest.approx(client_total / len(survivors))
    # Pairs (dropout, survivor): the masks the survivors added that nobody cancels.
    uncancelled = sum(1 for a, b in pairs if a in dropped and b not in dropped)
    assert counts.server == len(survivors) + uncancelled


def test_target_is_judged_on_secagg_plus_at_100_clients_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = load_bench(monkeypatch)
    floors = bench.Floors(plaintext_s=0.001, prg_client_s=0.25, prg_server_s=0.75, one_mask_s=0.1)

    def row(protocol: Any, n: int, client: float, server: float) -> Any:
        config = bench.Config(protocol, n, 1000, 32, 17, 10)
        return bench.Row(config, client, server, 1, True, floors=floors)

    plus = bench.Protocol.SECAGG_PLUS
    assert row(plus, 100, 1.0, 2.0).ratio == 3.0
    assert row(plus, 100, 1.0, 2.0).target_met is True  # exactly 3x the floor
    assert row(plus, 100, 1.0, 2.01).target_met is False
    assert row(plus, 500, 0.1, 0.1).target_met is None
    assert row(bench.Protocol.SECAGG, 100, 0.1, 0.1).target_met is None
    assert row(bench.Protocol.FLOWER, 100, 0.1, 0.1).target_met is None
    skipped = bench.Row(bench.Config(plus, 100, 1000, 32, 17, 10), note="skipped (x)")
    assert (skipped.total_s, skipped.ratio, skipped.target_met) == (None, None, None)


def test_flower_skips_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench(monkeypatch)
    assert bench.flower_skipped(True, True, 10, 500) == "skipped (--quick)"
    assert bench.flower_skipped(False, False, 10, 500) == "skipped (run with --flower)"
    assert bench.flower_skipped(False, True, 600, 500) == "skipped (n > --max-flower-n 500)"
    monkeypatch.setitem(sys.modules, "flwr.simulation", None)
    reason = bench.flower_skipped(False, True, 10, 500)
    assert reason.startswith("skipped (Flower does not import")


def test_flower_mods_time_the_client_and_drop_the_chosen_partitions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("flwr", reason="the bench extra (pip install privet[bench])")
    from flwr.common.secure_aggregation.secaggplus_constants import (
        RECORD_KEY_CONFIGS,
        Key,
        Stage,
    )

    bench = load_bench(monkeypatch)

    def message(stage: str) -> Any:
        return SimpleNamespace(
            content=SimpleNamespace(config_records={RECORD_KEY_CONFIGS: {Key.STAGE: stage}})
        )

    def context(partition: int) -> Any:
        return SimpleNamespace(node_id=100 + partition, node_config={"partition-id": partition})

    def reply(msg: Any, ctx: Any) -> str:
        return "reply"

    drop = bench.FlowerDropout(frozenset({3}))
    assert drop(message(Stage.COLLECT_MASKED_VECTORS), context(2), reply) == "reply"
    assert drop(message(Stage.SHARE_KEYS), context(3), reply) == "reply"
    with pytest.raises(RuntimeError, match="partition 3 drops out"):
        drop(message(Stage.COLLECT_MASKED_VECTORS), context(3), reply)

    path = tmp_path / "times.jsonl"
    timing = bench.FlowerClientTiming(str(path))
    assert timing(message(Stage.SETUP), context(1), reply) == "reply"
    assert timing(message(Stage.UNMASK), context(2), reply) == "reply"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["stage"], e["node"]) for e in lines] == [("setup", 101), ("unmask", 102)]
    assert all(e["seconds"] >= 0 for e in lines)


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--clients", "2"], "must be >= 3, got 2"),
        (["--corruption", "0.5"], r"must be in \[0, 0.5\), got 0.5"),
        (["--rounds", "0"], "must be >= 1, got 0"),
        (["--repeat-budget", "0"], "must be > 0, got 0.0"),
    ],
)
def test_bad_arguments_are_refused(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    error: str,
) -> None:
    bench = load_bench(monkeypatch)
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert re.search(error, capsys.readouterr().err)
