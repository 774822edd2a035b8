"""One party of an MPC run over a transport: its runtime and its view of the dealer.

:class:`NetworkRuntime` is the :class:`~privet.mpc.runtime.Runtime` of a
real party: it holds one row (its own shares) and opens values by sending
that row to every other party and combining what they send (one round),
exactly the sum or XOR the :class:`~privet.mpc.runtime.Simulator` computes
over all rows. It counts :class:`~privet.mpc.runtime.CommStats` as the
simulator does, so benchmarks agree; every message is checked for its kind,
round and shape (:mod:`privet.mpc.messages`).

:func:`party_dealer` builds the party's :class:`~privet.mpc.dealer.PartyDealer`:
party ``i < n - 1`` receives its stream seed from the dealer process once
and afterwards only the masks of inputs it owns; the last party asks the
dealer for each item (method and public shapes) and receives its rows.
"""

from __future__ import annotations

import numpy as np

from privet.errors import PrivacyError
from privet.mpc.dealer import Delivery, ItemRequest, Method, PartyDealer
from privet.mpc.messages import (
    BROADCAST,
    OPEN_BITS,
    OPEN_RING,
    OPEN_TO,
    decode_item,
    decode_mask,
    decode_round,
    decode_seed,
    encode_request,
    encode_round,
)
from privet.mpc.ring import RingArray
from privet.mpc.runtime import CommStats, check_party
from privet.mpc.transport import Transport, check_timeout

__all__ = ["NetworkRuntime", "party_dealer"]


class NetworkRuntime:
    """The runtime of party ``party``: one local row, openings over ``transport``.

    Parameters
    ----------
    party
        This party's index (its node in the transport).
    num_parties
        ``n >= 2``.
    transport
        Connected to every other party.
    timeout
        Seconds to wait for any one peer's message (``None``: while connections last).
    """

    def __init__(
        self, party: int, num_parties: int, transport: Transport, timeout: float | None = 60.0
    ) -> None:
        if isinstance(num_parties, bool) or not isinstance(num_parties, int) or num_parties < 2:
            raise PrivacyError(f"num_parties must be an integer >= 2, got {num_parties!r}")
        if isinstance(party, bool) or not isinstance(party, int) or not 0 <= party < num_parties:
            raise PrivacyError(f"party must be in [0, {num_parties - 1}], got {party!r}")
        if transport.node != party:
            raise PrivacyError(f"transport must be party {party}'s, got node {transport.node}'s")
        self._party = party
        self._num_parties = num_parties
        self._transport = transport
        self._timeout = check_timeout(timeout)
        self._stats = CommStats()

    @property
    def num_parties(self) -> int:
        return self._num_parties

    @property
    def local_parties(self) -> tuple[int, ...]:
        return (self._party,)

    @property
    def stats(self) -> CommStats:
        """What this party sent, counted as the simulator counts (rounds, bytes per party)."""
        return self._stats

    @property
    def transport(self) -> Transport:
        return self._transport

    def _row(self, shares: RingArray) -> RingArray:
        if not isinstance(shares, np.ndarray) or shares.dtype != np.uint64:
            raise PrivacyError(f"shares must be a uint64 array, got {shares!r:.80}")
        if shares.ndim == 0 or shares.shape[0] != 1:
            raise PrivacyError(
                f"shares must have a leading party axis of 1, got shape {shares.shape}"
            )
        row: RingArray = shares[0]
        return row

    def _peers(self) -> list[int]:
        return [p for p in range(self._num_parties) if p != self._party]

    def _exchange(self, kind: str, row: RingArray) -> list[RingArray]:
        """Send ``row`` to every other party, then receive theirs (one round)."""
        round_index = self._stats.rounds
        self._stats.record(row.nbytes, self._num_parties - 1)
        payload = encode_round(kind, round_index, row)
        for peer in self._peers():
            self._transport.send(peer, payload)
        return [
            decode_round(
                self._transport.recv(peer, self._timeout),
                kind,
                round_index,
                row.shape,
                self._transport.name(peer),
            )
            for peer in self._peers()
        ]

    def open_ring(self, shares: RingArray) -> RingArray:
        row = self._row(shares)
        total = np.array(row, dtype=np.uint64)
        for received in self._exchange(OPEN_RING, row):
            total += received  # uint64 wraps modulo 2^64: the order of terms does not matter
        return total

    def open_bits(self, shares: RingArray) -> RingArray:
        row = self._row(shares)
        total = np.array(row, dtype=np.uint64)
        for received in self._exchange(OPEN_BITS, row):
            total ^= received
        return total

    def open_ring_to(self, receiver: int, shares: RingArray) -> RingArray | None:
        check_party(receiver, self._num_parties, "receiver")
        row = self._row(shares)
        round_index = self._stats.rounds
        if receiver != self._party:
            self._stats.record(row.nbytes, 1)
            self._transport.send(receiver, encode_round(OPEN_TO, round_index, row))
            return None
        self._stats.record(0, 0)  # the round, in which the receiver sends nothing
        total = np.array(row, dtype=np.uint64)
        for peer in self._peers():
            payload = self._transport.recv(peer, self._timeout)
            name = self._transport.name(peer)
            total += decode_round(payload, OPEN_TO, round_index, row.shape, name)
        return total

    def broadcast(self, sender: int, values: RingArray) -> RingArray:
        check_party(sender, self._num_parties, "sender")
        if not isinstance(values, np.ndarray) or values.dtype != np.uint64:
            raise PrivacyError(f"values must be a uint64 array, got {values!r:.80}")
        round_index = self._stats.rounds
        # Counted like the simulator: the round, and what the sender sends each other party.
        self._stats.record(values.nbytes, self._num_parties - 1)
        if sender == self._party:
            payload = encode_round(BROADCAST, round_index, values)
            for peer in self._peers():
                self._transport.send(peer, payload)
            return values
        received = self._transport.recv(sender, self._timeout)
        name = self._transport.name(sender)
        return decode_round(received, BROADCAST, round_index, values.shape, name)


def party_dealer(
    transport: Transport, party: int, num_parties: int, timeout: float | None = 60.0
) -> PartyDealer:
    """Party ``party``'s view of the dealer process (node ``num_parties`` of ``transport``).

    Party ``i < n - 1`` first receives its stream seed (this call waits for it).
    """
    dealer = num_parties
    name = transport.name(dealer)
    timeout = check_timeout(timeout)
    last = num_parties - 1

    def fetch(index: int, request: ItemRequest) -> Delivery:
        owned = request.method is Method.INPUT_MASK and request.params[0] == party
        if party != last:  # only the masks of its own inputs come to this party
            shape = request.layout()[0]
            return Delivery((), decode_mask(transport.recv(dealer, timeout), index, shape, name))
        transport.send(dealer, encode_request(index, request))
        return decode_item(transport.recv(dealer, timeout), index, request, owned, name)

    seed = None if party == last else decode_seed(transport.recv(dealer, timeout), name)
    return PartyDealer(num_parties, party, seed, fetch)
