"""Secret-sharing MPC over ``Z_{2^64}`` with a dealer: fixed point, Beaver products,
exact truncation carries and exact comparisons.

What exists so far (issue 7 is landing in steps): the ring and fixed-point
encoding (:mod:`~privet.mpc.ring`), a seeded dealer with seed-compressed
shares (:mod:`~privet.mpc.dealer`), the in-process simulator
(:mod:`~privet.mpc.runtime`), the online protocols
(:mod:`~privet.mpc.protocols`) and shared tensors
(:mod:`~privet.mpc.tensor`). Security model: semi-honest parties, an honest
dealer that never sees inputs; each party sees only uniformly masked opened
values.
"""

from __future__ import annotations

from privet.mpc.dealer import Dealer, DealerStats
from privet.mpc.ring import RING_BITS, FixedPoint, ring_matmul
from privet.mpc.runtime import CommStats, Runtime, Simulator
from privet.mpc.tensor import Session, SharedTensor

__all__ = [
    "RING_BITS",
    "CommStats",
    "Dealer",
    "DealerStats",
    "FixedPoint",
    "Runtime",
    "Session",
    "SharedTensor",
    "Simulator",
    "ring_matmul",
]
