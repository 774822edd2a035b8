"""Epsilon of a multiset of events, reusing each distinct event's analysis.

A ledger's history is mostly the same few events charged again and again (a
DP-SGD step, a nightly count). Composing it from scratch at every charge
re-derives every event's privacy curve each time; here each distinct event is
analysed once — its RDP curve, or its privacy loss distribution — and a
charge only combines the cached pieces:

* RDP: the curve of ``n`` copies is ``n`` times the curve (Mironov 2017,
  Prop. 1), summed over events, then dp-accounting's ``compute_epsilon``.
* PLD: ``n`` copies are the cached PLD self-composed by FFT, composed across
  events, then ``get_epsilon_for_delta`` (Koskela et al. 2020).

This is the same arithmetic dp-accounting's accountants perform, in the same
library calls; only the order of work differs. (For an unsampled Gaussian,
dp-accounting's accountant composes ``n`` copies as one Gaussian of noise
``sigma / sqrt(n)``; self-composing its PLD gives an upper bound within the
discretization interval of it.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from dp_accounting.rdp import rdp_privacy_accountant as rdp_lib

from privet.dp.accounting import AccountantName, NeighboringRelation, check_supported
from privet.dp.events import event_from_json

__all__ = ["GroupedComposition"]

_MAX_CACHED_EVENTS = 1024


class GroupedComposition:
    """Computes epsilon for ``[(event_json, count), ...]`` with a per-event cache.

    Parameters
    ----------
    accountant
        ``"pld"`` or ``"rdp"``.
    neighboring_relation
        The relation every event is stated under.
    """

    def __init__(
        self, accountant: AccountantName, neighboring_relation: NeighboringRelation
    ) -> None:
        self._accountant = accountant
        self._relation = neighboring_relation
        self._pieces: dict[str, Any] = {}
        # The last answer: a charge followed by spent() asks the same question twice.
        self._last: tuple[frozenset[tuple[str, int]], float, float] | None = None

    def _piece(self, key: str) -> Any:
        """The event encoded as ``key`` analysed alone: an RDP curve, or ``(pld, non_private)``."""
        piece = self._pieces.get(key)
        if piece is None:
            event = event_from_json(key)
            acct = check_supported(event, self._accountant, self._relation)
            acct.compose(event)
            if self._accountant == "rdp":
                piece = np.array(acct._rdp, dtype=np.float64)
            else:
                piece = (acct._pld, bool(acct._contains_non_dp_event))
            if len(self._pieces) >= _MAX_CACHED_EVENTS:
                self._pieces.clear()
            self._pieces[key] = piece
        return piece

    def epsilon(self, groups: Iterable[tuple[str, int]], delta: float) -> float:
        """Epsilon at ``delta`` of each event (canonical JSON, :func:`event_to_json`)
        composed ``count`` times, all composed together."""
        groups = list(groups)
        if not groups:
            return 0.0
        key = frozenset(groups)
        if self._last is not None and self._last[0] == key and self._last[1] == delta:
            return self._last[2]
        value = self._epsilon(groups, delta)
        self._last = (key, delta, value)
        return value

    def _epsilon(self, groups: list[tuple[str, int]], delta: float) -> float:
        if self._accountant == "rdp":
            total = np.zeros(len(rdp_lib.DEFAULT_RDP_ORDERS))
            for key, count in groups:
                total = total + count * self._piece(key)
            return float(rdp_lib.compute_epsilon(rdp_lib.DEFAULT_RDP_ORDERS, total, delta)[0])
        composed = None
        for key, count in groups:
            pld, non_private = self._piece(key)
            if non_private:
                return math.inf
            repeated = pld if count == 1 else pld.self_compose(count)
            composed = repeated if composed is None else composed.compose(repeated)
        return float(composed.get_epsilon_for_delta(delta))  # type: ignore[union-attr]
