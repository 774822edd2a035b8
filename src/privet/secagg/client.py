"""The client's side of secure aggregation as a sans-I/O state machine.

Bonawitz et al. 2017, Fig. 4 (client side), on a masking graph so that the same
code runs SecAgg (complete graph) and SecAgg+ (Bell et al. 2020); see
:mod:`privet.secagg.messages` for the rounds and notation. The client never
reveals both secrets of one peer, and refuses (``ProtocolViolation``) any
message that names parties outside its neighbourhood, repeats a stage, or does
not decrypt.
"""

from __future__ import annotations

import secrets

import numpy as np

from privet.errors import PrivacyError
from privet.secagg.crypto import (
    PUBLIC_KEY_BYTES,
    DecryptionError,
    KeyPair,
    KeyPurpose,
    agree,
    agreement_info,
    open_sealed,
    seal,
)
from privet.secagg.masking import MAX_MODULUS_BITS, SEED_BYTES, apply_masks
from privet.secagg.messages import (
    ID_BYTES,
    SHARE_PLAINTEXT_BYTES,
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
    share_aad,
)
from privet.secagg.shamir import SHARE_BYTES, decode_share, encode_share, split_secret

__all__ = ["SecAggClient"]


def _keypair(rng: np.random.Generator | None) -> KeyPair:
    if rng is None:
        return KeyPair.generate()
    return KeyPair.from_private_bytes(rng.bytes(PUBLIC_KEY_BYTES))


class SecAggClient:
    """One client's state machine.

    Parameters
    ----------
    params
        The instance's public parameters (graph included).
    client_id
        This client's id in ``1..n``.
    values
        Its input: a uint64 vector of length ``L`` with entries in ``[0, 2^k)``.
    rng
        ``None`` (real use) draws keys, the self-mask seed and the Shamir
        polynomials from the OS CSPRNG; a seeded generator is for simulation
        only. Its first three 32-byte draws are, in order, the channel private
        key, the mask private key and the self-mask seed, so a simulation can
        replay a client's secrets to audit the server.
    """

    def __init__(
        self,
        params: SecAggParams,
        client_id: int,
        values: np.ndarray,
        rng: np.random.Generator | None = None,
    ) -> None:
        if isinstance(client_id, bool) or client_id not in params.client_ids:
            raise PrivacyError(f"client_id must be in 1..{params.num_clients}, got {client_id!r}")
        if not isinstance(values, np.ndarray) or values.dtype != np.uint64:
            raise PrivacyError(f"values must be a uint64 numpy array, got {values!r}")
        if values.shape != (params.vector_length,):
            raise PrivacyError(
                f"values must have shape ({params.vector_length},), got {values.shape}"
            )
        k = params.modulus_bits
        if k < MAX_MODULUS_BITS and int(values.max()) >> k:
            raise PrivacyError(f"values must be in [0, 2**{k}), got maximum {int(values.max())}")
        self.params = params
        self.client_id = client_id
        self._holders = params.holders(client_id)
        self._values = values.copy()
        self._rng = rng
        self._channel = _keypair(rng)
        self._mask = _keypair(rng)
        self._self_seed = rng.bytes(SEED_BYTES) if rng is not None else secrets.token_bytes(32)
        self._stage = Stage.ADVERTISE
        self._public_keys: dict[int, tuple[bytes, bytes]] = {}
        # Holder v -> (this client's share of b_v, its share of v's mask private key).
        self._held: dict[int, tuple[int, int]] = {}
        self._u2: frozenset[int] = frozenset()

    @property
    def stage(self) -> Stage:
        """The protocol round this client expects next (``Stage.DONE`` once it unmasked)."""
        return self._stage

    def _channel_key(self, peer: int) -> bytes:
        info = agreement_info(KeyPurpose.CHANNEL, self.params.round_id, self.client_id, peer)
        return agree(self._channel, self._public_keys[peer][0], info=info)

    def advertise(self) -> AdvertiseKeys:
        """Round 0: this client's public keys."""
        expect_stage(self._stage, Stage.ADVERTISE, "advertise")
        self._stage = Stage.SHARE
        return AdvertiseKeys(self.client_id, self._channel.public_bytes, self._mask.public_bytes)

    def share_keys(self, message: KeysBroadcast) -> ShareKeys:
        """Round 1: check the holders' keys, share ``b_u`` and the mask key, seal the shares."""
        expect_stage(self._stage, Stage.SHARE, "KeysBroadcast")
        if not isinstance(message, KeysBroadcast) or message.recipient != self.client_id:
            raise ProtocolViolation(f"message must be this client's KeysBroadcast, got {message!r}")
        keys = dict(message.public_keys)
        u1 = frozenset(keys)
        if not u1 <= self._holders:
            raise ProtocolViolation(
                f"keys must come from this client's holders {sorted(self._holders)}, "
                f"got {sorted(u1)}"
            )
        t = self.params.threshold
        if len(u1) < t:
            raise AbortedRound(f"holders in U1 must number at least t = {t}, got {len(u1)}")
        own = (self._channel.public_bytes, self._mask.public_bytes)
        if keys.get(self.client_id) != own:
            raise ProtocolViolation("U1 must contain this client with its own public keys")
        flat = [key for pair in keys.values() for key in pair]
        if any(not isinstance(k, bytes) or len(k) != PUBLIC_KEY_BYTES for k in flat):
            raise ProtocolViolation(f"public keys must be {PUBLIC_KEY_BYTES} bytes each")
        if len(set(flat)) != len(flat):
            raise ProtocolViolation("public keys must be distinct, got a repeated key")
        self._public_keys = keys
        holders = sorted(u1)
        b_shares = split_secret(self._self_seed, t, holders, self._rng)
        s_shares = split_secret(self._mask.private_bytes(), t, holders, self._rng)
        ciphertexts: dict[int, bytes] = {}
        for v in holders:
            if v == self.client_id:
                continue
            plaintext = (
                self.client_id.to_bytes(ID_BYTES, "big")
                + v.to_bytes(ID_BYTES, "big")
                + encode_share(b_shares[v])
                + encode_share(s_shares[v])
            )
            aad = share_aad(self.params, self.client_id, v)
            ciphertexts[v] = seal(self._channel_key(v), plaintext, aad)
        self._held = {self.client_id: (b_shares[self.client_id], s_shares[self.client_id])}
        self._stage = Stage.MASK
        return ShareKeys(self.client_id, ciphertexts)

    def masked_input(self, message: SharesDelivery) -> MaskedInput:
        """Round 2: open the shares addressed to this client, mask with ``N(u) ∩ U2``."""
        expect_stage(self._stage, Stage.MASK, "SharesDelivery")
        if not isinstance(message, SharesDelivery) or message.recipient != self.client_id:
            raise ProtocolViolation(
                f"message must be this client's SharesDelivery, got {message!r}"
            )
        senders = frozenset(message.ciphertexts)
        u2 = senders | {self.client_id}
        if self.client_id in senders or not u2 <= frozenset(self._public_keys):
            raise ProtocolViolation(
                f"U2 must be a subset of this client's holders in U1, got {sorted(senders)}"
            )
        t = self.params.threshold
        if len(u2) < t:
            raise AbortedRound(f"holders in U2 must number at least t = {t}, got {len(u2)}")
        held = dict(self._held)
        for v in sorted(senders):
            aad = share_aad(self.params, v, self.client_id)
            try:
                plain = open_sealed(self._channel_key(v), message.ciphertexts[v], aad)
            except (DecryptionError, PrivacyError) as error:
                raise ProtocolViolation(f"shares from client {v} must decrypt: {error}") from None
            header = v.to_bytes(ID_BYTES, "big") + self.client_id.to_bytes(ID_BYTES, "big")
            if len(plain) != SHARE_PLAINTEXT_BYTES or plain[: 2 * ID_BYTES] != header:
                raise ProtocolViolation(f"shares from client {v} must name ({v}, {self.client_id})")
            body = plain[2 * ID_BYTES :]
            try:
                held[v] = (decode_share(body[:SHARE_BYTES]), decode_share(body[SHARE_BYTES:]))
            except PrivacyError as error:
                raise ProtocolViolation(f"shares from client {v} must decode: {error}") from None
        seeds = {
            v: agree(
                self._mask,
                self._public_keys[v][1],
                info=agreement_info(KeyPurpose.MASK, self.params.round_id, self.client_id, v),
            )
            for v in senders
        }
        masked = apply_masks(
            self._values, self.client_id, self._self_seed, seeds, self.params.modulus_bits
        )
        self._held = held
        self._u2 = u2
        self._stage = Stage.UNMASK
        return MaskedInput(self.client_id, masked)

    def unmask(self, message: UnmaskRequest) -> UnmaskResponse:
        """Round 3: reveal ``b_v`` shares for ``v`` in ``U3``, key shares for ``v`` dropped.

        Refuses (``ProtocolViolation``) a request that names a client as both
        survivor and dropout, does not partition this client's holders in
        ``U2``, or omits this client, and (``AbortedRound``) one that leaves
        fewer than ``t`` of them surviving; answers at most once.
        """
        expect_stage(self._stage, Stage.UNMASK, "UnmaskRequest")
        if not isinstance(message, UnmaskRequest):
            raise ProtocolViolation(f"message must be an UnmaskRequest, got {message!r}")
        survivors, dropped = frozenset(message.survivors), frozenset(message.dropped)
        both = survivors & dropped
        if both:
            raise ProtocolViolation(
                f"unmask request must not ask for both the self-mask and the key share of one "
                f"client, got both for {sorted(both)}"
            )
        local_survivors = survivors & self._holders
        local_dropped = dropped & self._holders
        if local_survivors | local_dropped != self._u2:
            raise ProtocolViolation(
                f"unmask request must partition this client's holders in U2 = "
                f"{sorted(self._u2)}, got {sorted(local_survivors)} | {sorted(local_dropped)}"
            )
        if self.client_id not in survivors:
            raise ProtocolViolation(f"U3 must contain this client {self.client_id}")
        t = self.params.threshold
        if len(local_survivors) < t:
            raise AbortedRound(
                f"holders in U3 must number at least t = {t}, got {len(local_survivors)}"
            )
        self._stage = Stage.DONE
        return UnmaskResponse(
            self.client_id,
            {v: self._held[v][0] for v in sorted(local_survivors)},
            {v: self._held[v][1] for v in sorted(local_dropped)},
        )
