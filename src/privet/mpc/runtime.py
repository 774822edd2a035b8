"""Who holds which shares, and how they are opened: the parties' runtime.

Every protocol in :mod:`privet.mpc` is written once over share arrays with a
leading *party axis*: the shares this process holds, one row per local
party. The in-process :class:`Simulator` holds all parties (the axis has
length ``n``, and every protocol runs vectorized across them); a real party
(a separate process, :mod:`privet.mpc.network`) holds one. Opening a value
is the only interaction: each party sends its shares to every other party
and all add (or XOR) what they received, one communication round; an output
can also be opened to one party alone (the others send it their shares and
learn nothing).

:class:`CommStats` counts what the protocols send, per party: rounds,
messages and bytes, the quantities the benchmarks report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.mpc.ring import RingArray

__all__ = ["CommStats", "Runtime", "Simulator", "check_party"]


@dataclass
class CommStats:
    """What one party sent: communication rounds, and bytes (ring and bit openings)."""

    rounds: int = 0
    bytes_sent: int = 0

    def record(self, nbytes: int, peers: int) -> None:
        self.rounds += 1
        self.bytes_sent += nbytes * peers


@runtime_checkable
class Runtime(Protocol):
    """The parties a process plays and the one interaction protocols need: opening."""

    @property
    def num_parties(self) -> int: ...

    @property
    def local_parties(self) -> tuple[int, ...]:
        """Party indices whose shares this process holds (the rows of the party axis)."""
        ...

    @property
    def stats(self) -> CommStats: ...

    def open_ring(self, shares: RingArray) -> RingArray:
        """The sum modulo ``2^64`` of every party's shares (one round)."""
        ...

    def open_bits(self, shares: RingArray) -> RingArray:
        """The XOR of every party's shares of packed bits (one round)."""
        ...

    def broadcast(self, sender: int, values: RingArray) -> RingArray:
        """``sender``'s ``values`` at every party (one round; others pass an array of the
        same shape and dtype, which is ignored)."""
        ...

    def open_ring_to(self, receiver: int, shares: RingArray) -> RingArray | None:
        """The sum modulo ``2^64`` of every party's shares at ``receiver`` only; ``None`` at
        the other parties (one round; the receiver sends nothing)."""
        ...


def check_party(value: object, num_parties: int, name: str) -> int:
    """``value`` as a party index in ``[0, num_parties)``, else a PrivacyError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise PrivacyError(f"{name} must be a party index, got {value!r:.40}")
    if not 0 <= value < num_parties:
        raise PrivacyError(f"{name} must be in [0, {num_parties - 1}], got {value}")
    return int(value)


def first_party_mask(runtime: Runtime, ndim: int) -> NDArray[np.uint64]:
    """1 on party 0's row, 0 elsewhere, shaped ``(local, 1, ..., 1)`` for broadcasting:
    a public constant is added to party 0's share only."""
    mask = np.array([1 if p == 0 else 0 for p in runtime.local_parties], dtype=np.uint64)
    return mask.reshape((len(mask),) + (1,) * ndim)


class Simulator:
    """All parties in this process: shares carry every party's row; opening is a sum.

    Parameters
    ----------
    num_parties
        ``n >= 2`` computing parties (the dealer is not one of them).
    """

    def __init__(self, num_parties: int = 2) -> None:
        if isinstance(num_parties, bool) or not isinstance(num_parties, int) or num_parties < 2:
            raise PrivacyError(f"num_parties must be an integer >= 2, got {num_parties!r}")
        self._num_parties = num_parties
        self._stats = CommStats()

    @property
    def num_parties(self) -> int:
        return self._num_parties

    @property
    def local_parties(self) -> tuple[int, ...]:
        return tuple(range(self._num_parties))

    @property
    def stats(self) -> CommStats:
        """What each party sent (all parties send the same amounts)."""
        return self._stats

    def _check(self, shares: RingArray) -> None:
        if not isinstance(shares, np.ndarray) or shares.dtype != np.uint64:
            raise PrivacyError(f"shares must be a uint64 array, got {shares!r:.80}")
        if shares.ndim == 0 or shares.shape[0] != self._num_parties:
            raise PrivacyError(
                f"shares must have a leading party axis of {self._num_parties}, "
                f"got shape {shares.shape}"
            )

    def open_ring(self, shares: RingArray) -> RingArray:
        self._check(shares)
        self._stats.record(shares[0].nbytes, self._num_parties - 1)
        opened: RingArray = np.asarray(np.add.reduce(shares, axis=0, dtype=np.uint64))
        return opened

    def broadcast(self, sender: int, values: RingArray) -> RingArray:
        check_party(sender, self._num_parties, "sender")
        self._stats.record(values.nbytes, self._num_parties - 1)
        return values

    def open_ring_to(self, receiver: int, shares: RingArray) -> RingArray:
        """The opened value (this process plays the receiver too). :attr:`stats` counts what
        a sender sends: its shares, to one peer."""
        check_party(receiver, self._num_parties, "receiver")
        self._check(shares)
        self._stats.record(shares[0].nbytes, 1)
        opened: RingArray = np.asarray(np.add.reduce(shares, axis=0, dtype=np.uint64))
        return opened

    def open_bits(self, shares: RingArray) -> RingArray:
        self._check(shares)
        self._stats.record(shares[0].nbytes, self._num_parties - 1)
        opened: RingArray = np.asarray(np.bitwise_xor.reduce(shares, axis=0))
        return opened
