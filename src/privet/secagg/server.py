"""The server's side of secure aggregation as a sans-I/O state machine.

Bonawitz et al. 2017, Fig. 4 (server side), on a masking graph (SecAgg or
SecAgg+, Bell et al. 2020); see :mod:`privet.secagg.messages` for the rounds.
Every inbound message is checked against the current stage, the expected
senders and recipients, and the sizes the parameters imply; a bad one raises
:class:`~privet.secagg.messages.ProtocolViolation` and changes nothing. When
too few clients remain the round aborts before anything is reconstructed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from privet.secagg.crypto import PUBLIC_KEY_BYTES, KeyPair, KeyPurpose, agree, agreement_info
from privet.secagg.masking import MAX_MODULUS_BITS, SEED_BYTES, expand_mask, pairwise_masks
from privet.secagg.messages import (
    SEALED_SHARE_BYTES,
    AbortedRound,
    AdvertiseKeys,
    KeysBroadcast,
    MaskedInput,
    ProtocolViolation,
    SecAggParams,
    ShareKeys,
    SharesDelivery,
    Stage,
    UnmaskRequest,
    UnmaskResponse,
    expect_stage,
)
from privet.secagg.shamir import PRIME, recover_secret

__all__ = ["SecAggServer", "remove_masks"]


def remove_masks(
    masked_sum: np.ndarray,
    self_mask_seeds: Mapping[int, bytes],
    dropped_pair_seeds: Mapping[int, Mapping[int, bytes]],
    modulus_bits: int,
) -> np.ndarray:
    """Remove the self masks and the uncancelled pairwise masks from ``sum_{U3} y_u``.

    Parameters
    ----------
    masked_sum
        ``sum_{u in U3} y_u mod 2^k``.
    self_mask_seeds
        ``u -> b_u`` for every ``u`` in ``U3``.
    dropped_pair_seeds
        ``v -> {u -> s_uv}`` for every dropout ``v`` in ``U2 \\ U3`` and each
        survivor ``u`` that masked with it.
    modulus_bits
        ``k``.

    Returns
    -------
    numpy.ndarray
        ``sum_{u in U3} x_u mod 2^k``. Survivor ``u`` added ``+PRG(s_uv)`` if
        ``u < v`` else ``-PRG(s_uv)`` (Bonawitz et al. 2017, §4); that is
        ``-pairwise_masks(v, ...)`` seen from ``v``, so adding
        ``pairwise_masks(v, ...)`` cancels it.
    """
    length = masked_sum.size
    total = masked_sum.astype(np.uint64, copy=True)
    for seed in self_mask_seeds.values():
        total -= expand_mask(seed, length, modulus_bits)
    for v, seeds in dropped_pair_seeds.items():
        total += pairwise_masks(v, seeds, length, modulus_bits)
    if modulus_bits < MAX_MODULUS_BITS:
        total &= np.uint64((1 << modulus_bits) - 1)
    return total


class SecAggServer:
    """The server's state machine.

    Feed each round's client messages to :meth:`receive`, then end the round
    with :meth:`broadcast_keys`, :meth:`deliver_shares`, :meth:`request_unmask`
    and, after round 3, :meth:`finish`, which returns the sum. A message that fails a check
    raises :class:`ProtocolViolation` and changes nothing.
    """

    def __init__(self, params: SecAggParams) -> None:
        self.params = params
        self._stage = Stage.ADVERTISE
        self._keys: dict[int, tuple[bytes, bytes]] = {}
        self._shares: dict[int, Mapping[int, bytes]] = {}
        self._masked: dict[int, np.ndarray] = {}
        self._responses: dict[int, UnmaskResponse] = {}
        self.result: np.ndarray | None = None
        self.recovered_self_seeds: dict[int, bytes] = {}
        self.recovered_mask_keys: dict[int, bytes] = {}

    @property
    def stage(self) -> Stage:
        """The stage whose client messages :meth:`receive` accepts now."""
        return self._stage

    @property
    def masked_inputs(self) -> Mapping[int, np.ndarray]:
        """The ``y_u`` received so far, by sender (copies)."""
        return {u: y.copy() for u, y in self._masked.items()}

    @property
    def public_keys(self) -> Mapping[int, tuple[bytes, bytes]]:
        """The (channel, mask) public keys received in round 0, by sender."""
        return dict(self._keys)

    @property
    def aborted(self) -> bool:
        """Whether a round fell below the threshold."""
        return self._stage is Stage.ABORTED

    def _check_sender(
        self, sender: object, expected: frozenset[int], seen: Mapping[int, object]
    ) -> int:
        if isinstance(sender, bool) or not isinstance(sender, int) or sender not in expected:
            raise ProtocolViolation(f"sender must be in {sorted(expected)}, got {sender!r}")
        if sender in seen:
            raise ProtocolViolation(
                f"sender must send once per round, got a duplicate from {sender}"
            )
        return sender

    def receive(self, message: object) -> None:
        """Check and record one client message of the current round."""
        if isinstance(message, AdvertiseKeys):
            self._receive_keys(message)
        elif isinstance(message, ShareKeys):
            self._receive_shares(message)
        elif isinstance(message, MaskedInput):
            self._receive_masked(message)
        elif isinstance(message, UnmaskResponse):
            self._receive_unmask(message)
        else:
            raise ProtocolViolation(
                f"message must be a client message, got {type(message).__name__}"
            )

    def _receive_keys(self, message: AdvertiseKeys) -> None:
        expect_stage(self._stage, Stage.ADVERTISE, "AdvertiseKeys")
        u = self._check_sender(message.sender, self.params.client_ids, self._keys)
        pair = (message.channel_public, message.mask_public)
        if any(not isinstance(k, bytes) or len(k) != PUBLIC_KEY_BYTES for k in pair):
            raise ProtocolViolation(f"public keys must be {PUBLIC_KEY_BYTES} bytes each")
        seen = {key for keys in self._keys.values() for key in keys}
        if pair[0] == pair[1] or seen & set(pair):
            raise ProtocolViolation(f"public keys of client {u} must be fresh, got a repeat")
        self._keys[u] = pair

    def _receive_shares(self, message: ShareKeys) -> None:
        expect_stage(self._stage, Stage.SHARE, "ShareKeys")
        u = self._check_sender(message.sender, frozenset(self._keys), self._shares)
        wanted = (self.params.holders(u) & frozenset(self._keys)) - {u}
        if frozenset(message.ciphertexts) != wanted:
            raise ProtocolViolation(
                f"ciphertexts of client {u} must be addressed to {sorted(wanted)}, "
                f"got {sorted(message.ciphertexts)}"
            )
        bad = [
            v
            for v, c in message.ciphertexts.items()
            if not isinstance(c, bytes) or len(c) != SEALED_SHARE_BYTES
        ]
        if bad:
            raise ProtocolViolation(
                f"ciphertexts must be {SEALED_SHARE_BYTES} bytes, got bad ones for {bad}"
            )
        self._shares[u] = dict(message.ciphertexts)

    def _receive_masked(self, message: MaskedInput) -> None:
        expect_stage(self._stage, Stage.MASK, "MaskedInput")
        u = self._check_sender(message.sender, frozenset(self._shares), self._masked)
        y = message.masked
        length, k = self.params.vector_length, self.params.modulus_bits
        if not isinstance(y, np.ndarray) or y.dtype != np.uint64 or y.shape != (length,):
            raise ProtocolViolation(f"masked input must be a uint64 vector of length {length}")
        if k < MAX_MODULUS_BITS and int(y.max()) >> k:
            raise ProtocolViolation(f"masked input must be in [0, 2**{k})")
        self._masked[u] = y.copy()

    def _receive_unmask(self, message: UnmaskResponse) -> None:
        expect_stage(self._stage, Stage.UNMASK, "UnmaskResponse")
        survivors = frozenset(self._masked)
        u = self._check_sender(message.sender, survivors, self._responses)
        holders = self.params.holders(u)
        local_survivors = survivors & holders
        local_dropped = (frozenset(self._shares) - survivors) & holders
        if (
            frozenset(message.self_mask_shares) != local_survivors
            or frozenset(message.key_shares) != local_dropped
        ):
            raise ProtocolViolation(
                f"unmask response of client {u} must hold self-mask shares for "
                f"{sorted(local_survivors)} and key shares for {sorted(local_dropped)}"
            )
        values = [*message.self_mask_shares.values(), *message.key_shares.values()]
        if any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < PRIME for s in values):
            raise ProtocolViolation("shares must be integers in [0, 2**521 - 1)")
        self._responses[u] = message

    def _abort(self, message: str) -> AbortedRound:
        self._stage = Stage.ABORTED
        return AbortedRound(f"{message}; the round is aborted and nothing is reconstructed")

    def _require(self, count: int, name: str) -> None:
        if count < self.params.threshold:
            raise self._abort(
                f"{name} must hold at least t = {self.params.threshold} clients, got {count}"
            )

    def broadcast_keys(self) -> dict[int, KeysBroadcast]:
        """End round 0: each member of ``U1`` gets the keys of its holders in ``U1``."""
        expect_stage(self._stage, Stage.ADVERTISE, "broadcast_keys")
        self._require(len(self._keys), "U1")
        self._stage = Stage.SHARE
        u1 = frozenset(self._keys)
        return {
            v: KeysBroadcast(v, {u: self._keys[u] for u in sorted(self.params.holders(v) & u1)})
            for v in sorted(u1)
        }

    def deliver_shares(self) -> dict[int, SharesDelivery]:
        """End round 1: each member of ``U2`` gets the sealed shares addressed to it."""
        expect_stage(self._stage, Stage.SHARE, "deliver_shares")
        self._require(len(self._shares), "U2")
        self._stage = Stage.MASK
        return {
            v: SharesDelivery(v, {u: c[v] for u, c in sorted(self._shares.items()) if v in c})
            for v in sorted(self._shares)
        }

    def request_unmask(self) -> UnmaskRequest:
        """End round 2: name the survivors ``U3`` and the dropouts ``U2 \\ U3``."""
        expect_stage(self._stage, Stage.MASK, "request_unmask")
        self._require(len(self._masked), "U3")
        self._stage = Stage.UNMASK
        survivors = frozenset(self._masked)
        return UnmaskRequest(survivors, frozenset(self._shares) - survivors)

    def finish(self) -> np.ndarray:
        """End round 3: reconstruct the secrets, remove the masks, return ``sum_{U3} x_u``."""
        expect_stage(self._stage, Stage.UNMASK, "finish")
        self._require(len(self._responses), "the unmask responses")
        # Check every client's secret before reconstructing any, so an abort reveals nothing.
        for v in sorted(self._shares):
            count = sum(1 for r in self._responses if v in self.params.holders(r))
            if count < self.params.threshold:
                raise self._abort(
                    f"shares of client {v} must come from at least t = "
                    f"{self.params.threshold} holders, got {count}"
                )
        return self._reconstruct()

    def _reconstruct(self) -> np.ndarray:
        t, k = self.params.threshold, self.params.modulus_bits
        survivors = sorted(self._masked)
        dropped = sorted(frozenset(self._shares) - frozenset(survivors))
        responses = list(self._responses.values())
        self_seeds = {
            v: recover_secret(
                {r.sender: r.self_mask_shares[v] for r in responses if v in r.self_mask_shares},
                t,
                SEED_BYTES,
            )
            for v in survivors
        }
        pair_seeds: dict[int, dict[int, bytes]] = {}
        mask_keys: dict[int, bytes] = {}
        for v in dropped:
            private = recover_secret(
                {r.sender: r.key_shares[v] for r in responses if v in r.key_shares},
                t,
                PUBLIC_KEY_BYTES,
            )
            pair = KeyPair.from_private_bytes(private)
            if pair.public_bytes != self._keys[v][1]:
                raise ProtocolViolation(
                    f"recovered mask key of client {v} must match its public key"
                )
            mask_keys[v] = private
            neighbours = self.params.masking_graph.neighbours(v)
            pair_seeds[v] = {
                u: agree(
                    pair,
                    self._keys[u][1],
                    info=agreement_info(KeyPurpose.MASK, self.params.round_id, u, v),
                )
                for u in survivors
                if u in neighbours
            }
        total = np.zeros(self.params.vector_length, dtype=np.uint64)
        for u in survivors:
            total += self._masked[u]
        result = remove_masks(total, self_seeds, pair_seeds, k)
        self.recovered_self_seeds = self_seeds
        self.recovered_mask_keys = mask_keys
        self.result = result
        self._stage = Stage.DONE
        return result.copy()
