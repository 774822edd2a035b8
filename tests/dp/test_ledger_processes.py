"""A ledger file shared by many processes: no overspending together, no damage from SIGKILL.

Children are started with the 'spawn' context and run the module-level
functions below. Kill moments are drawn from a seeded Generator; the
assertions hold wherever the kill lands, so timing jitter between runs
cannot make the test flaky.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sqlite3
import time
import traceback
from contextlib import closing
from pathlib import Path
from typing import Any

import dp_accounting
import numpy as np
import pytest

from privet import BudgetExceeded
from privet.dp import Ledger, epsilon, event_from_json

pytestmark = pytest.mark.slow

BUDGET = 0.5
DELTA = 1e-6
PLD_GROUPING_TOL = 1e-4  # PLD value-discretization interval; see tests/dp/test_ledger.py
WORKERS = 6
ATTEMPTS = 40
KILL_ROUNDS = 4
KILL_SEED = 20_240_611
TIMEOUT_S = 60.0

# Small events, so that the budget runs out after a few dozen charges in total.
# Even workers charge Laplace (epsilon 0.05), odd ones a Gaussian of sigma 12.
WORKER_EVENTS = (dp_accounting.LaplaceDpEvent(100.0), dp_accounting.GaussianDpEvent(60.0))


def charge_until_refused(path: str, worker: int, barrier: Any, results: Any) -> None:
    """Child: open the shared ledger, wait for the others, charge until refused."""
    try:
        ledger = Ledger(BUDGET, DELTA, "pld", path=path)  # the same budget reopens the file
        event = WORKER_EVENTS[worker % 2]
        pauses = np.random.default_rng(worker).uniform(0.0, 0.005, ATTEMPTS)
        barrier.wait(TIMEOUT_S)
        accepted, refused = 0, False
        for attempt in range(ATTEMPTS):
            # A short pause between releases (outside the lock), as real callers have; it
            # also lets the other processes, backing off in SQLite's busy handler, get in.
            time.sleep(pauses[attempt])
            try:
                ledger.charge(event, label=f"w{worker}-{attempt}")
            except BudgetExceeded:
                refused = True
                break
            accepted += 1
        results.put(("ok", worker, accepted, refused))
    except BaseException:
        results.put(("error", worker, traceback.format_exc(), None))


def charge_forever(path: str, conn: Any) -> None:
    """Child: charge without end, sending the count of committed charges after each commit."""
    ledger = Ledger.open(path)
    event = dp_accounting.GaussianDpEvent(50.0)
    committed = 0
    while True:
        ledger.charge(event, label=f"k{committed}")
        committed += 1
        conn.send(committed)


def _collect(results: Any, procs: list[Any]) -> list[tuple[Any, ...]]:
    """One report per child; stops early (and fails) if the children die without reporting."""
    reports: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(reports) < len(procs) and time.monotonic() < deadline:
        try:
            reports.append(results.get(timeout=0.5))
        except queue.Empty:
            if not any(proc.is_alive() for proc in procs) and results.empty():
                break
    assert len(reports) == len(procs), f"only {len(reports)} of {len(procs)} children reported"
    return reports


def _rows(path: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            "SELECT id, label, event, epsilon_after, created_at FROM charges ORDER BY id"
        ).fetchall()


def _integrity(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_processes_charging_one_file_never_overspend(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    Ledger(BUDGET, DELTA, "pld", path=path)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=charge_until_refused, args=(str(path), w, barrier, results))
        for w in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    try:
        reports = _collect(results, procs)
    finally:
        for proc in procs:
            proc.join(timeout=TIMEOUT_S)
            if proc.is_alive():  # pragma: no cover - only on a hang
                proc.kill()
    errors = [report[2] for report in reports if report[0] == "error"]
    assert errors == []
    assert all(proc.exitcode == 0 for proc in procs)

    accepted = sum(report[2] for report in reports)
    assert any(report[3] for report in reports), "the budget should have run out"
    rows = _rows(path)
    assert len(rows) == accepted > 0
    assert {row[1].split("-")[0] for row in rows} <= {f"w{w}" for w in range(WORKERS)}

    # Serialization: every row's epsilon_after is the composition of exactly the rows
    # before it and itself. Replaying the rows, in order, into a fresh in-memory ledger
    # (the same arithmetic) must reproduce each one. Two processes deciding on the same
    # history would break this: a missed row moves epsilon by > 1e-3 here.
    replay = Ledger(BUDGET, DELTA, "pld")
    for row in rows:
        assert row[3] <= BUDGET
        again = replay.charge(event_from_json(row[2]), label=row[1])
        assert row[3] == pytest.approx(again.epsilon_after, rel=1e-9), row
    created = [row[4] for row in rows]
    assert created == sorted(created)

    ledger = Ledger.open(path)
    history = ledger.history()
    assert ledger.spent() == pytest.approx(history[-1].epsilon_after, rel=1e-9)
    assert ledger.spent() <= BUDGET
    plain = epsilon([charge.event for charge in history], DELTA, "pld")
    assert ledger.spent() == pytest.approx(plain, abs=PLD_GROUPING_TOL)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_mid_charge_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    Ledger(1e6, DELTA, "rdp", path=path)  # a budget the children cannot exhaust
    ctx = mp.get_context("spawn")
    rng = np.random.default_rng(KILL_SEED)
    for _ in range(KILL_ROUNDS):
        before = len(_rows(path))
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=charge_forever, args=(str(path), sender))
        proc.start()
        sender.close()
        kill_after = int(rng.integers(2, 25))  # confirmed charges before the kill
        extra_wait = float(rng.uniform(0.0, 0.01))  # then a little more, to land mid-charge
        confirmed = 0
        try:
            while confirmed < kill_after:
                assert receiver.poll(TIMEOUT_S), "the child stopped confirming charges"
                confirmed = receiver.recv()
            time.sleep(extra_wait)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(timeout=TIMEOUT_S)
        assert proc.exitcode == -signal.SIGKILL
        while receiver.poll(0):  # confirmations sent before the kill
            try:
                confirmed = receiver.recv()
            except EOFError:
                break
        receiver.close()

        assert _integrity(path) == "ok"
        rows = _rows(path)
        assert before + confirmed <= len(rows) <= before + confirmed + 1
        for row in rows:
            assert event_from_json(row[2]) == dp_accounting.GaussianDpEvent(50.0)
        ledger = Ledger.open(path)
        assert len(ledger.history()) == len(rows)
        assert ledger.spent() == pytest.approx(ledger.history()[-1].epsilon_after, rel=1e-9)

    # Still chargeable afterwards, and the file stays sound.
    ledger = Ledger.open(path)
    count = len(ledger.history())
    ledger.charge(dp_accounting.GaussianDpEvent(50.0), label="after the kills")
    assert len(Ledger.open(path).history()) == count + 1
    assert _integrity(path) == "ok"
