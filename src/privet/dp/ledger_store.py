"""Where a ledger keeps its charges: in memory, or in an SQLite file.

A store does one thing atomically: under an exclusive lock it reads every
charge so far, asks a decision function whether the next one fits, and appends
it or not. For SQLite that is one ``BEGIN IMMEDIATE`` transaction in WAL mode
with ``synchronous=FULL``: concurrent processes are serialized by SQLite's
write lock, so they can never overspend together, and a process killed at any
point leaves either the whole charge or none of it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from privet.errors import PrivacyError

__all__ = ["LedgerHeader", "LedgerStore", "MemoryStore", "SqliteStore", "StoredCharge"]

SCHEMA_VERSION = 1
# How long a charge waits for another process's transaction before giving up.
BUSY_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class LedgerHeader:
    """What a ledger is: its budget, accountant and neighbouring relation."""

    epsilon: float
    delta: float
    accountant: str
    neighboring_relation: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "epsilon": self.epsilon,
                "delta": self.delta,
                "accountant": self.accountant,
                "neighboring_relation": self.neighboring_relation,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> LedgerHeader:
        try:
            data = json.loads(text)
            return cls(
                epsilon=float(data["epsilon"]),
                delta=float(data["delta"]),
                accountant=str(data["accountant"]),
                neighboring_relation=str(data["neighboring_relation"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PrivacyError(f"ledger header is malformed: {text!r:.200}") from exc


@dataclass(frozen=True)
class StoredCharge:
    """One accepted charge as stored: the event as JSON text (privet.dp.events codec)."""

    index: int
    label: str
    event_json: str
    epsilon_after: float
    created_at: str


Decision = Callable[[list[StoredCharge]], StoredCharge]
"""Given the history, return the charge to append (its index is ignored) or raise."""


class LedgerStore(Protocol):
    """Persistence for a :class:`privet.dp.Ledger`."""

    @property
    def header(self) -> LedgerHeader: ...

    def charges(self) -> list[StoredCharge]: ...

    def append_if(self, decide: Decision) -> StoredCharge: ...


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class MemoryStore:
    """Charges in a list, guarded by a lock (threads of one process)."""

    def __init__(self, header: LedgerHeader) -> None:
        self._header = header
        self._charges: list[StoredCharge] = []
        self._lock = threading.Lock()

    @property
    def header(self) -> LedgerHeader:
        return self._header

    def charges(self) -> list[StoredCharge]:
        with self._lock:
            return list(self._charges)

    def append_if(self, decide: Decision) -> StoredCharge:
        with self._lock:
            proposed = decide(list(self._charges))
            stored = _with_index(proposed, len(self._charges) + 1)
            self._charges.append(stored)
            return stored


def _with_index(charge: StoredCharge, index: int) -> StoredCharge:
    return StoredCharge(
        index, charge.label, charge.event_json, charge.epsilon_after, charge.created_at
    )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS charges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT NOT NULL,
    event TEXT NOT NULL,
    epsilon_after REAL NOT NULL,
    created_at TEXT NOT NULL
);
"""


_LEDGER_TABLES = frozenset({"meta", "charges"})


class SqliteStore:
    """A ledger file: SQLite in WAL mode, one transaction per charge.

    Safe for many processes on one machine (each opens its own store). The
    file is created with its header on first use; opening it again with a
    different header is refused, so two programs cannot disagree about a
    budget.
    """

    def __init__(self, path: str | os.PathLike[str], header: LedgerHeader | None = None) -> None:
        self.path = Path(path)
        if header is None and not self.path.exists():
            raise PrivacyError(f"ledger file {str(self.path)!r} does not exist")
        self._local = threading.local()
        where = repr(str(self.path))
        try:
            # Nothing is written to a file until it is known to be empty or a ledger.
            tables = self._tables()
            if not tables and header is not None:
                self._create(header)
            elif not tables >= _LEDGER_TABLES:
                found = ", ".join(sorted(tables)) or "no tables"
                raise PrivacyError(f"{where} is not a privet ledger (it holds {found})")
            rows = dict(self._connection().execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            self.close()
            raise PrivacyError(f"{where} is not a privet ledger: {exc}") from exc
        except PrivacyError:
            self.close()
            raise
        if "header" not in rows:
            raise PrivacyError(f"{where} is not a privet ledger (no header)")
        if rows.get("schema") != str(SCHEMA_VERSION):
            raise PrivacyError(
                f"ledger schema must be {SCHEMA_VERSION}, got {rows.get('schema')!r} in {where}"
            )
        stored = LedgerHeader.from_json(rows["header"])
        if header is not None and stored != header:
            raise PrivacyError(
                f"ledger file {where} already holds a different ledger: {stored}; "
                f"asked for {header}"
            )
        self._header = stored

    def _tables(self) -> set[str]:
        rows = self._connection().execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return {str(name) for (name,) in rows.fetchall()}

    def _create(self, header: LedgerHeader) -> None:
        conn = self._connection()
        # WAL is a property of the file, set once when the ledger is created.
        conn.execute("PRAGMA journal_mode = WAL")
        with self._transaction() as conn:
            # IF NOT EXISTS / OR IGNORE: another process may be creating the same ledger.
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('header', ?), ('schema', ?)",
                (header.to_json(), str(SCHEMA_VERSION)),
            )

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
                )
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # FULL: a committed charge survives a crash of the machine, not just the process.
                conn.execute("PRAGMA synchronous = FULL")
            except sqlite3.DatabaseError as exc:
                raise PrivacyError(f"cannot open ledger file {str(self.path)!r}: {exc}") from exc
            self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise PrivacyError(f"cannot lock ledger file {str(self.path)!r}: {exc}") from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @property
    def header(self) -> LedgerHeader:
        return self._header

    def charges(self) -> list[StoredCharge]:
        conn = self._connection()
        rows = conn.execute(
            "SELECT id, label, event, epsilon_after, created_at FROM charges ORDER BY id"
        ).fetchall()
        return [StoredCharge(*row) for row in rows]

    def append_if(self, decide: Decision) -> StoredCharge:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id, label, event, epsilon_after, created_at FROM charges ORDER BY id"
            ).fetchall()
            proposed = decide([StoredCharge(*row) for row in rows])
            cursor = conn.execute(
                "INSERT INTO charges (label, event, epsilon_after, created_at) VALUES (?, ?, ?, ?)",
                (proposed.label, proposed.event_json, proposed.epsilon_after, proposed.created_at),
            )
            index = cursor.lastrowid
        return _with_index(proposed, int(index or 0))

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
