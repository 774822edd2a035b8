"""The privacy budget ledger: every release in one place, checked before it happens.

A :class:`Ledger` holds an (epsilon, delta) budget, an accountant and a
neighbouring relation. Charging it with a ``DpEvent`` composes the event with
everything charged before and refuses — raising :class:`privet.BudgetExceeded`
before any noise is drawn — if the composition would exceed the budget.

Ledgers live in memory or in an SQLite file (:mod:`privet.dp.ledger_store`);
a file-backed ledger can be charged by many processes at once and never
overspends in total.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import dp_accounting

from privet.dp._validation import check_choice, check_delta, check_epsilon
from privet.dp.accounting import (
    ACCOUNTANTS,
    AccountantName,
    NeighboringRelation,
    check_supported,
    make_accountant,
    spent_within,
)
from privet.dp.composition import GroupedComposition
from privet.dp.events import DpEvent, event_from_json, event_to_json
from privet.dp.ledger_store import (
    LedgerHeader,
    LedgerStore,
    MemoryStore,
    SqliteStore,
    StoredCharge,
    now_utc,
)
from privet.dp.mechanisms import Mechanism
from privet.dp.randomness import RngLike, resolve_rng
from privet.errors import BudgetExceeded, PrivacyError

__all__ = ["Charge", "Ledger", "compose_history"]

logger = logging.getLogger("privet.dp")


@dataclass(frozen=True)
class Charge:
    """One accepted charge of a ledger."""

    index: int
    label: str
    event: DpEvent
    epsilon_after: float
    created_at: datetime


def compose_history(event_texts: list[str]) -> DpEvent:
    """One event equal to the composition of ``event_texts`` (JSON-encoded events).

    Identical events are grouped into one ``SelfComposedDpEvent``: the same
    composition, which dp-accounting evaluates far faster (PLD self-composition
    by FFT) than the same event composed one at a time.
    """
    counts = Counter(event_texts)
    parts = []
    for text, count in counts.items():
        event = event_from_json(text)
        parts.append(event if count == 1 else dp_accounting.SelfComposedDpEvent(event, count))
    if len(parts) == 1:
        return parts[0]
    return dp_accounting.ComposedDpEvent(parts)


class Ledger:
    """An (epsilon, delta) privacy budget that every release is charged to.

    Parameters
    ----------
    epsilon
        The epsilon budget (> 0).
    delta
        The delta budget, in (0, 1). (dp-accounting's PLD keeps a sliver of
        Laplace's tail in delta, so pure-DP budgets need a tiny delta such as
        1e-9 rather than 0.)
    accountant
        ``"pld"`` (tight, default) or ``"rdp"``.
    neighboring_relation
        The relation every charged event is stated under.
    path
        An SQLite file for a durable ledger shared between processes; created
        if missing, and refused if it holds a different budget. ``None`` keeps
        the ledger in memory.

    Examples
    --------
    >>> from privet.dp import Ledger, LaplaceMechanism
    >>> ledger = Ledger(epsilon=1.0, delta=1e-6)
    >>> noisy = ledger.release(LaplaceMechanism(epsilon=0.5), 42.0, label="answer")
    >>> round(ledger.spent(), 2)
    0.5
    """

    def __init__(
        self,
        epsilon: float,
        delta: float,
        accountant: AccountantName = "pld",
        *,
        neighboring_relation: NeighboringRelation = NeighboringRelation.ADD_OR_REMOVE_ONE,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        make_accountant(accountant, neighboring_relation)  # validates both
        header = LedgerHeader(
            epsilon=check_epsilon(epsilon),
            delta=check_delta(delta, allow_zero=False),
            accountant=accountant,
            neighboring_relation=neighboring_relation.value,
        )
        store: LedgerStore = MemoryStore(header) if path is None else SqliteStore(path, header)
        self._init_from_store(store)

    def _init_from_store(self, store: LedgerStore) -> None:
        header = store.header
        # A file's header is checked as strictly as a new ledger's arguments.
        check_epsilon(header.epsilon, "ledger epsilon budget")
        check_delta(header.delta, "ledger delta budget", allow_zero=False)
        check_choice("ledger accountant", header.accountant, ACCOUNTANTS)
        relations = [relation.value for relation in NeighboringRelation]
        check_choice("ledger neighboring_relation", header.neighboring_relation, relations)
        self._store = store
        self._relation = NeighboringRelation(header.neighboring_relation)
        self._accountant: AccountantName = "rdp" if header.accountant == "rdp" else "pld"
        # Each distinct event is analysed once per ledger object (see composition.py).
        self._composition = GroupedComposition(self._accountant, self._relation)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Ledger:
        """Open an existing ledger file with the budget stored in it."""
        ledger = cls.__new__(cls)
        ledger._init_from_store(SqliteStore(path))
        return ledger

    # -- the budget --------------------------------------------------------------------------

    @property
    def epsilon_budget(self) -> float:
        return self._store.header.epsilon

    @property
    def delta_budget(self) -> float:
        return self._store.header.delta

    @property
    def accountant(self) -> AccountantName:
        return self._accountant

    @property
    def neighboring_relation(self) -> NeighboringRelation:
        return self._relation

    @property
    def path(self) -> Path | None:
        return self._store.path if isinstance(self._store, SqliteStore) else None

    def spent(self) -> float:
        """Epsilon spent so far at the budget's delta (0 for an empty ledger)."""
        return self._epsilon_of([charge.event_json for charge in self._store.charges()])

    def remaining(self) -> float:
        """Epsilon budget minus epsilon spent."""
        return max(0.0, self.epsilon_budget - self.spent())

    def history(self) -> list[Charge]:
        """Every accepted charge, oldest first."""
        return [
            Charge(
                index=stored.index,
                label=stored.label,
                event=event_from_json(stored.event_json),
                epsilon_after=stored.epsilon_after,
                created_at=datetime.fromisoformat(stored.created_at),
            )
            for stored in self._store.charges()
        ]

    def composed_event(self) -> DpEvent:
        """Everything charged so far as one event (identical charges grouped).

        Hand it to any accountant, e.g. ``privet.dp.epsilon(ledger.composed_event(), delta)``
        to see the spend at another delta.
        """
        texts = [charge.event_json for charge in self._store.charges()]
        return compose_history(texts) if texts else dp_accounting.NoOpDpEvent()

    def would_spend(self, event: DpEvent) -> float:
        """Epsilon the ledger would reach if ``event`` were charged now (nothing is recorded)."""
        text = self._encode_supported(event)
        return self._epsilon_of([charge.event_json for charge in self._store.charges()] + [text])

    # -- charging ----------------------------------------------------------------------------

    def charge(self, event: DpEvent, *, label: str) -> Charge:
        """Record ``event`` if the budget allows it, or raise :class:`privet.BudgetExceeded`.

        The event is validated (type, parameters, accountant support) before
        the ledger is locked; the budget check and the append happen in one
        atomic step, so concurrent charges cannot overspend together.
        """
        if not isinstance(label, str) or not label:
            raise PrivacyError(f"label must be a non-empty string, got {label!r}")
        text = self._encode_supported(event)

        def decide(history: list[StoredCharge]) -> StoredCharge:
            after = self._epsilon_of([charge.event_json for charge in history] + [text])
            if not spent_within(after, self.epsilon_budget):
                raise BudgetExceeded(label, after, self.epsilon_budget)
            return StoredCharge(0, label, text, after, now_utc())

        stored = self._store.append_if(decide)
        logger.info(
            "charged %r: epsilon now %.6g of %.6g", label, stored.epsilon_after, self.epsilon_budget
        )
        return Charge(
            index=stored.index,
            label=stored.label,
            event=event,
            epsilon_after=stored.epsilon_after,
            created_at=datetime.fromisoformat(stored.created_at),
        )

    def release(self, mechanism: Mechanism, value: Any, *, label: str, rng: RngLike = None) -> Any:
        """Charge ``mechanism.event``, then release ``value`` through it.

        ``value`` and ``rng`` are checked before the charge, so a release that
        would fail costs nothing; nothing is sampled if the charge is refused.
        """
        if not isinstance(mechanism, Mechanism):
            raise PrivacyError(
                f"mechanism must have .event, .validate and .release, got {mechanism!r}"
            )
        resolve_rng(rng, release=False)  # a bad rng fails here, before the charge
        mechanism.validate(value)
        self.charge(mechanism.event, label=label)
        return mechanism.release(value, rng=rng)

    # -- internals ---------------------------------------------------------------------------

    def _encode_supported(self, event: DpEvent) -> str:
        if not isinstance(event, DpEvent):
            raise PrivacyError(f"event must be a dp-accounting DpEvent, got {event!r}")
        # Raises PrivacyError naming the bad parameter, or why the accountant cannot read it.
        check_supported(event, self._accountant, self._relation)
        return event_to_json(event)

    def _epsilon_of(self, event_texts: list[str]) -> float:
        value = self._composition.epsilon(Counter(event_texts).items(), self.delta_budget)
        if math.isnan(value):
            raise PrivacyError(f"the accountant returned NaN for {len(event_texts)} charges")
        return value

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return (
            f"Ledger(epsilon={self.epsilon_budget}, delta={self.delta_budget}, "
            f"accountant={self._accountant!r}{where})"
        )
