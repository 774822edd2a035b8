"""The four-round secure aggregation protocol as sans-I/O state machines.

Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving Machine
Learning" (CCS 2017), Fig. 4, in its honest-but-curious variant (no
signatures, no consistency-check round):

0. *AdvertiseKeys*: client ``u`` sends a channel public key ``c_u`` and a
   mask-agreement public key ``s_u``; the server broadcasts them to ``U1``.
1. *ShareKeys*: ``u`` draws a self-mask seed ``b_u`` and Shamir-shares ``b_u``
   and its mask private key ``t``-of-``|U1|``; the shares for ``v`` travel
   sealed under ``agree(c_u, c_v)`` with ``(round, u, v)`` as associated data.
2. *MaskedInputCollection*: ``u`` sends
   ``y_u = x_u + PRG(b_u) + sum_{v in U2} ±PRG(s_uv) mod 2^k``.
3. *Unmasking*: for ``v`` in ``U2`` each survivor returns its share of ``b_v``
   if ``v`` sent ``y_v`` (``v`` in ``U3``), else its share of ``v``'s mask
   key — never both for one ``v``. The server recovers the secrets and removes
   the masks: the result is ``sum_{u in U3} x_u mod 2^k``.

Client ids are the Shamir x-coordinates ``1..n``. The threshold must satisfy
``n/2 < t <= n`` (and ``t >= 2``): the honest-but-curious guarantee of
Bonawitz et al. (§6.1) holds against the server colluding with fewer than
``t`` clients, and ``t > n/2`` keeps two disjoint groups of clients from both
reaching the threshold. Every inbound message is checked; a bad one raises
:class:`ProtocolViolation` and leaves the state unchanged. Fewer than ``t``
survivors at any round raises :class:`AbortedRound` and the server never
reconstructs anything.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

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
from privet.secagg.masking import (
    MAX_MODULUS_BITS,
    SEED_BYTES,
    apply_masks,
    expand_mask,
    pairwise_masks,
)
from privet.secagg.shamir import (
    PRIME,
    SHARE_BYTES,
    decode_share,
    encode_share,
    recover_secret,
    split_secret,
)

__all__ = [
    "AbortedRound",
    "AdvertiseKeys",
    "KeysBroadcast",
    "MaskedInput",
    "ProtocolViolation",
    "SecAggClient",
    "SecAggParams",
    "SecAggServer",
    "ShareKeys",
    "SharesDelivery",
    "UnmaskRequest",
    "UnmaskResponse",
    "remove_masks",
    "run_protocol",
    "simulate",
]

_ID_BYTES = 4
_PLAINTEXT_BYTES = 2 * _ID_BYTES + 2 * SHARE_BYTES


class ProtocolViolation(PrivacyError):
    """An inbound message is out of order, from an unexpected party, malformed or replayed."""


class AbortedRound(PrivacyError):
    """Fewer than ``t`` clients survived a round; nothing was reconstructed."""


@dataclass(frozen=True)
class SecAggParams:
    """Public parameters of one secure-aggregation instance.

    Attributes
    ----------
    num_clients
        ``n >= 2``; client ids are ``1..n``.
    threshold
        ``t`` with ``n/2 < t <= n`` and ``t >= 2`` (see the module docstring).
    vector_length
        ``L >= 1``, the length of every input.
    modulus_bits
        ``k`` in ``1..64``: inputs and sums live in ``Z_{2^k}``.
    round_id
        Binds every derived key and ciphertext to this instance (e.g. the FL round).
    """

    num_clients: int
    threshold: int
    vector_length: int
    modulus_bits: int
    round_id: int = 0

    def __post_init__(self) -> None:
        for name in ("num_clients", "threshold", "vector_length", "modulus_bits", "round_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise PrivacyError(f"{name} must be an integer, got {value!r}")
        n, t = self.num_clients, self.threshold
        if n < 2:
            raise PrivacyError(f"num_clients must be >= 2, got {n}")
        if not (2 * t > n and 2 <= t <= n):
            raise PrivacyError(f"threshold must be in (n/2, n] = ({n / 2}, {n}] and >= 2, got {t}")
        if self.vector_length < 1:
            raise PrivacyError(f"vector_length must be >= 1, got {self.vector_length}")
        if not 1 <= self.modulus_bits <= MAX_MODULUS_BITS:
            raise PrivacyError(f"modulus_bits must be in [1, 64], got {self.modulus_bits}")
        if self.round_id < 0:
            raise PrivacyError(f"round_id must be >= 0, got {self.round_id}")

    @property
    def client_ids(self) -> frozenset[int]:
        """The ids ``1..n``."""
        return frozenset(range(1, self.num_clients + 1))


@dataclass(frozen=True)
class AdvertiseKeys:
    """Round 0, client -> server: the two public keys of ``sender``."""

    sender: int
    channel_public: bytes
    mask_public: bytes


@dataclass(frozen=True)
class KeysBroadcast:
    """Round 0, server -> clients: ``U1`` and each member's (channel, mask) public keys."""

    public_keys: Mapping[int, tuple[bytes, bytes]]


@dataclass(frozen=True)
class ShareKeys:
    """Round 1, client -> server: sealed shares of ``sender``'s secrets, by recipient."""

    sender: int
    ciphertexts: Mapping[int, bytes]


@dataclass(frozen=True)
class SharesDelivery:
    """Round 1, server -> ``recipient``: the sealed shares addressed to it, by sender (``U2``)."""

    recipient: int
    ciphertexts: Mapping[int, bytes]


@dataclass(frozen=True)
class MaskedInput:
    """Round 2, client -> server: the masked vector ``y_u``."""

    sender: int
    masked: np.ndarray


@dataclass(frozen=True)
class UnmaskRequest:
    """Round 3, server -> clients: ``U3`` (``survivors``) and ``U2 \\ U3`` (``dropped``)."""

    survivors: frozenset[int]
    dropped: frozenset[int]


@dataclass(frozen=True)
class UnmaskResponse:
    """Round 3, client -> server: shares of ``b_v`` (v in U3) and of mask keys (v dropped)."""

    sender: int
    self_mask_shares: Mapping[int, int]
    key_shares: Mapping[int, int]


class _Stage(Enum):
    ADVERTISE = 0
    SHARE = 1
    MASK = 2
    UNMASK = 3
    DONE = 4
    ABORTED = 5


def _share_aad(params: SecAggParams, sender: int, recipient: int) -> bytes:
    text = f"privet-secagg/v1/shares/round={params.round_id}/from={sender}/to={recipient}"
    return text.encode("ascii")


def _keypair(rng: np.random.Generator | None) -> KeyPair:
    if rng is None:
        return KeyPair.generate()
    return KeyPair.from_private_bytes(rng.bytes(PUBLIC_KEY_BYTES))


def _expect(stage: _Stage, wanted: _Stage, what: str) -> None:
    if stage is not wanted:
        raise ProtocolViolation(
            f"{what} must arrive in stage {wanted.name}, got it in stage {stage.name}"
        )


class SecAggClient:
    """One client's state machine (Bonawitz et al. 2017, Fig. 4, client side).

    Parameters
    ----------
    params
        The instance's public parameters.
    client_id
        This client's id in ``1..n``.
    values
        Its input: a uint64 vector of length ``L`` with entries in ``[0, 2^k)``.
    rng
        ``None`` (real use) draws keys, the self-mask seed and the Shamir
        polynomials from the OS CSPRNG; a seeded generator is for simulation only.
    """

    def __init__(
        self,
        params: SecAggParams,
        client_id: int,
        values: np.ndarray,
        rng: np.random.Generator | None = None,
    ) -> None:
        if client_id not in params.client_ids or isinstance(client_id, bool):
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
        self._values = values.copy()
        self._rng = rng
        self._channel = _keypair(rng)
        self._mask = _keypair(rng)
        self._self_seed = rng.bytes(SEED_BYTES) if rng is not None else secrets.token_bytes(32)
        self._stage = _Stage.ADVERTISE
        self._public_keys: dict[int, tuple[bytes, bytes]] = {}
        # Peer v -> (this client's share of b_v, its share of v's mask private key).
        self._held: dict[int, tuple[int, int]] = {}
        self._u2: frozenset[int] = frozenset()

    def advertise(self) -> AdvertiseKeys:
        """Round 0: this client's public keys."""
        _expect(self._stage, _Stage.ADVERTISE, "advertise")
        self._stage = _Stage.SHARE
        return AdvertiseKeys(self.client_id, self._channel.public_bytes, self._mask.public_bytes)

    def share_keys(self, message: KeysBroadcast) -> ShareKeys:
        """Round 1: check ``U1``'s keys, share ``b_u`` and the mask key, seal the shares."""
        _expect(self._stage, _Stage.SHARE, "KeysBroadcast")
        if not isinstance(message, KeysBroadcast):
            raise ProtocolViolation(f"message must be a KeysBroadcast, got {message!r}")
        keys = dict(message.public_keys)
        u1 = frozenset(keys)
        if not u1 <= self.params.client_ids:
            raise ProtocolViolation(f"U1 must be a subset of 1..n, got {sorted(u1)}")
        if len(u1) < self.params.threshold:
            raise AbortedRound(f"U1 must hold at least t = {self.params.threshold}, got {len(u1)}")
        own = (self._channel.public_bytes, self._mask.public_bytes)
        if keys.get(self.client_id) != own:
            raise ProtocolViolation("U1 must contain this client with its own public keys")
        flat = [key for pair in keys.values() for key in pair]
        if any(not isinstance(k, bytes) or len(k) != PUBLIC_KEY_BYTES for k in flat):
            raise ProtocolViolation(f"public keys must be {PUBLIC_KEY_BYTES} bytes each")
        if len(set(flat)) != len(flat):
            raise ProtocolViolation("public keys must be distinct, got a repeated key")
        holders = sorted(u1)
        t = self.params.threshold
        b_shares = split_secret(self._self_seed, t, holders, self._rng)
        s_shares = split_secret(self._mask.private_bytes(), t, holders, self._rng)
        ciphertexts: dict[int, bytes] = {}
        for v in holders:
            if v == self.client_id:
                continue
            key = agree(
                self._channel,
                keys[v][0],
                info=agreement_info(KeyPurpose.CHANNEL, self.params.round_id, self.client_id, v),
            )
            plaintext = (
                self.client_id.to_bytes(_ID_BYTES, "big")
                + v.to_bytes(_ID_BYTES, "big")
                + encode_share(b_shares[v])
                + encode_share(s_shares[v])
            )
            ciphertexts[v] = seal(key, plaintext, _share_aad(self.params, self.client_id, v))
        self._public_keys = keys
        self._held = {self.client_id: (b_shares[self.client_id], s_shares[self.client_id])}
        self._stage = _Stage.MASK
        return ShareKeys(self.client_id, ciphertexts)

    def masked_input(self, message: SharesDelivery) -> MaskedInput:
        """Round 2: open the shares addressed to this client, send ``y_u`` over ``U2``."""
        _expect(self._stage, _Stage.MASK, "SharesDelivery")
        if not isinstance(message, SharesDelivery) or message.recipient != self.client_id:
            raise ProtocolViolation(
                f"message must be this client's SharesDelivery, got {message!r}"
            )
        senders = frozenset(message.ciphertexts)
        u2 = senders | {self.client_id}
        if self.client_id in senders or not u2 <= frozenset(self._public_keys):
            raise ProtocolViolation(
                f"U2 must be a subset of U1 without this client, got {sorted(senders)}"
            )
        if len(u2) < self.params.threshold:
            raise AbortedRound(f"U2 must hold at least t = {self.params.threshold}, got {len(u2)}")
        held = dict(self._held)
        for v in sorted(senders):
            key = agree(
                self._channel,
                self._public_keys[v][0],
                info=agreement_info(KeyPurpose.CHANNEL, self.params.round_id, self.client_id, v),
            )
            try:
                plain = open_sealed(
                    key, message.ciphertexts[v], _share_aad(self.params, v, self.client_id)
                )
            except (DecryptionError, PrivacyError) as error:
                raise ProtocolViolation(f"shares from client {v} must decrypt: {error}") from None
            header = v.to_bytes(_ID_BYTES, "big") + self.client_id.to_bytes(_ID_BYTES, "big")
            if len(plain) != _PLAINTEXT_BYTES or plain[: 2 * _ID_BYTES] != header:
                raise ProtocolViolation(f"shares from client {v} must name ({v}, {self.client_id})")
            body = plain[2 * _ID_BYTES :]
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
            for v in u2
            if v != self.client_id
        }
        masked = apply_masks(
            self._values, self.client_id, self._self_seed, seeds, self.params.modulus_bits
        )
        self._held = held
        self._u2 = u2
        self._stage = _Stage.UNMASK
        return MaskedInput(self.client_id, masked)

    def unmask(self, message: UnmaskRequest) -> UnmaskResponse:
        """Round 3: reveal ``b_v`` shares for ``v`` in ``U3``, key shares for ``v`` dropped.

        Refuses (``ProtocolViolation``) a request that names a client as both
        survivor and dropout, does not partition ``U2``, or omits this client,
        and (``AbortedRound``) one with ``|U3| < t``; answers at most once.
        """
        _expect(self._stage, _Stage.UNMASK, "UnmaskRequest")
        if not isinstance(message, UnmaskRequest):
            raise ProtocolViolation(f"message must be an UnmaskRequest, got {message!r}")
        survivors, dropped = frozenset(message.survivors), frozenset(message.dropped)
        both = survivors & dropped
        if both:
            raise ProtocolViolation(
                f"unmask request must not ask for both the self-mask and the key share of one "
                f"client, got both for {sorted(both)}"
            )
        if survivors | dropped != self._u2:
            raise ProtocolViolation(
                f"unmask request must partition U2 = {sorted(self._u2)}, got "
                f"{sorted(survivors)} | {sorted(dropped)}"
            )
        if self.client_id not in survivors:
            raise ProtocolViolation(f"U3 must contain this client {self.client_id}")
        if len(survivors) < self.params.threshold:
            raise AbortedRound(
                f"U3 must hold at least t = {self.params.threshold}, got {len(survivors)}"
            )
        self._stage = _Stage.DONE
        return UnmaskResponse(
            self.client_id,
            {v: self._held[v][0] for v in sorted(survivors)},
            {v: self._held[v][1] for v in sorted(dropped)},
        )


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
        ``v -> {u -> s_uv}`` for every dropout ``v`` in ``U2 \\ U3`` and ``u`` in ``U3``.
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
    """The server's state machine (Bonawitz et al. 2017, Fig. 4, server side).

    Feed each round's client messages to :meth:`receive`, then call
    :meth:`close_round` to get the next round's outbound messages; after
    round 3 :meth:`close_round` returns the sum. A message that fails a check
    raises :class:`ProtocolViolation` and changes nothing.
    """

    def __init__(self, params: SecAggParams) -> None:
        self.params = params
        self._stage = _Stage.ADVERTISE
        self._keys: dict[int, tuple[bytes, bytes]] = {}
        self._shares: dict[int, Mapping[int, bytes]] = {}
        self._masked: dict[int, np.ndarray] = {}
        self._responses: dict[int, UnmaskResponse] = {}
        self.result: np.ndarray | None = None
        self.recovered_self_seeds: dict[int, bytes] = {}
        self.recovered_mask_keys: dict[int, bytes] = {}

    @property
    def masked_inputs(self) -> Mapping[int, np.ndarray]:
        """The ``y_u`` received so far, by sender (copies)."""
        return {u: y.copy() for u, y in self._masked.items()}

    @property
    def aborted(self) -> bool:
        """Whether a round fell below the threshold."""
        return self._stage is _Stage.ABORTED

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
        stage = self._stage
        if isinstance(message, AdvertiseKeys):
            _expect(stage, _Stage.ADVERTISE, "AdvertiseKeys")
            u = self._check_sender(message.sender, self.params.client_ids, self._keys)
            pair = (message.channel_public, message.mask_public)
            if any(not isinstance(k, bytes) or len(k) != PUBLIC_KEY_BYTES for k in pair):
                raise ProtocolViolation(f"public keys must be {PUBLIC_KEY_BYTES} bytes each")
            seen = {key for keys in self._keys.values() for key in keys}
            if pair[0] == pair[1] or seen & set(pair):
                raise ProtocolViolation(f"public keys of client {u} must be fresh, got a repeat")
            self._keys[u] = pair
        elif isinstance(message, ShareKeys):
            _expect(stage, _Stage.SHARE, "ShareKeys")
            u = self._check_sender(message.sender, frozenset(self._keys), self._shares)
            wanted = frozenset(self._keys) - {u}
            if frozenset(message.ciphertexts) != wanted:
                raise ProtocolViolation(
                    f"ciphertexts of client {u} must be addressed to {sorted(wanted)}, "
                    f"got {sorted(message.ciphertexts)}"
                )
            size = 12 + _PLAINTEXT_BYTES + 16
            bad = [
                v
                for v, c in message.ciphertexts.items()
                if not isinstance(c, bytes) or len(c) != size
            ]
            if bad:
                raise ProtocolViolation(f"ciphertexts must be {size} bytes, got bad ones for {bad}")
            self._shares[u] = dict(message.ciphertexts)
        elif isinstance(message, MaskedInput):
            _expect(stage, _Stage.MASK, "MaskedInput")
            u = self._check_sender(message.sender, frozenset(self._shares), self._masked)
            y = message.masked
            L, k = self.params.vector_length, self.params.modulus_bits
            if not isinstance(y, np.ndarray) or y.dtype != np.uint64 or y.shape != (L,):
                raise ProtocolViolation(f"masked input must be a uint64 vector of length {L}")
            if k < MAX_MODULUS_BITS and int(y.max()) >> k:
                raise ProtocolViolation(f"masked input must be in [0, 2**{k})")
            self._masked[u] = y.copy()
        elif isinstance(message, UnmaskResponse):
            _expect(stage, _Stage.UNMASK, "UnmaskResponse")
            survivors = frozenset(self._masked)
            u = self._check_sender(message.sender, survivors, self._responses)
            dropped = frozenset(self._shares) - survivors
            if (
                frozenset(message.self_mask_shares) != survivors
                or frozenset(message.key_shares) != dropped
            ):
                raise ProtocolViolation(
                    f"unmask response of client {u} must hold self-mask shares for "
                    f"{sorted(survivors)} and key shares for {sorted(dropped)}"
                )
            values = [*message.self_mask_shares.values(), *message.key_shares.values()]
            if any(
                isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < PRIME for s in values
            ):
                raise ProtocolViolation("shares must be integers in [0, 2**521 - 1)")
            self._responses[u] = message
        else:
            raise ProtocolViolation(
                f"message must be a client message, got {type(message).__name__}"
            )

    def _require(self, count: int, name: str) -> None:
        if count < self.params.threshold:
            self._stage = _Stage.ABORTED
            raise AbortedRound(
                f"{name} must hold at least t = {self.params.threshold} clients, got {count}; "
                "the round is aborted and nothing is reconstructed"
            )

    def close_round(
        self,
    ) -> KeysBroadcast | dict[int, SharesDelivery] | UnmaskRequest | np.ndarray:
        """End the current round: the next round's messages, or the sum after round 3."""
        stage = self._stage
        if stage is _Stage.ADVERTISE:
            self._require(len(self._keys), "U1")
            self._stage = _Stage.SHARE
            return KeysBroadcast(dict(self._keys))
        if stage is _Stage.SHARE:
            self._require(len(self._shares), "U2")
            self._stage = _Stage.MASK
            return {
                v: SharesDelivery(v, {u: c[v] for u, c in sorted(self._shares.items()) if u != v})
                for v in sorted(self._shares)
            }
        if stage is _Stage.MASK:
            self._require(len(self._masked), "U3")
            self._stage = _Stage.UNMASK
            survivors = frozenset(self._masked)
            return UnmaskRequest(survivors, frozenset(self._shares) - survivors)
        if stage is _Stage.UNMASK:
            self._require(len(self._responses), "the unmask responses")
            return self._reconstruct()
        raise ProtocolViolation(
            f"close_round must be called before the end, got stage {stage.name}"
        )

    def _reconstruct(self) -> np.ndarray:
        t, k = self.params.threshold, self.params.modulus_bits
        survivors = sorted(self._masked)
        dropped = sorted(frozenset(self._shares) - frozenset(survivors))
        responses = self._responses.values()
        self_seeds = {
            v: recover_secret({r.sender: r.self_mask_shares[v] for r in responses}, t, SEED_BYTES)
            for v in survivors
        }
        pair_seeds: dict[int, dict[int, bytes]] = {}
        mask_keys: dict[int, bytes] = {}
        for v in dropped:
            private = recover_secret(
                {r.sender: r.key_shares[v] for r in responses}, t, PUBLIC_KEY_BYTES
            )
            pair = KeyPair.from_private_bytes(private)
            if pair.public_bytes != self._keys[v][1]:
                raise ProtocolViolation(
                    f"recovered mask key of client {v} must match its public key"
                )
            mask_keys[v] = private
            pair_seeds[v] = {
                u: agree(
                    pair,
                    self._keys[u][1],
                    info=agreement_info(KeyPurpose.MASK, self.params.round_id, u, v),
                )
                for u in survivors
            }
        total = np.zeros(self.params.vector_length, dtype=np.uint64)
        for u in survivors:
            total += self._masked[u]
        result = remove_masks(total, self_seeds, pair_seeds, k)
        self.recovered_self_seeds = self_seeds
        self.recovered_mask_keys = mask_keys
        self.result = result
        self._stage = _Stage.DONE
        return result.copy()


def run_protocol(
    server: SecAggServer,
    clients: Sequence[SecAggClient],
    drop: Mapping[int, set[int]] | None = None,
) -> np.ndarray:
    """Drive a server and its clients through the four rounds synchronously, in memory.

    ``drop[r]`` holds the ids that drop out before sending their round-``r``
    message (``r`` in 0..3); a dropout stays out. Raises :class:`AbortedRound`
    when fewer than ``t`` clients remain at some round.
    """
    drop = drop or {}
    gone: set[int] = set()

    def alive(r: int) -> list[SecAggClient]:
        gone.update(drop.get(r, set()))
        return [c for c in clients if c.client_id not in gone]

    for client in alive(0):
        server.receive(client.advertise())
    broadcast = server.close_round()
    if not isinstance(broadcast, KeysBroadcast):
        raise ProtocolViolation("round 0 must end with a KeysBroadcast")
    for client in alive(1):
        server.receive(client.share_keys(broadcast))
    deliveries = server.close_round()
    if not isinstance(deliveries, dict):
        raise ProtocolViolation("round 1 must end with share deliveries")
    for client in alive(2):
        server.receive(client.masked_input(deliveries[client.client_id]))
    request = server.close_round()
    if not isinstance(request, UnmaskRequest):
        raise ProtocolViolation("round 2 must end with an UnmaskRequest")
    for client in alive(3):
        if client.client_id in request.survivors:
            server.receive(client.unmask(request))
    result = server.close_round()
    if not isinstance(result, np.ndarray):
        raise ProtocolViolation("round 3 must end with the sum")
    return result


def simulate(
    inputs: Sequence[np.ndarray],
    threshold: int,
    modulus_bits: int,
    drop: Mapping[int, set[int]] | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Run the protocol in memory for clients ``1..n`` holding ``inputs`` (already in ``Z_2^k``).

    Returns ``sum_{u in U3} x_u mod 2^k``; raises :class:`AbortedRound` below
    the threshold. A seeded ``rng`` makes every secret reproducible: simulation only.
    """
    if len(inputs) < 2:
        raise PrivacyError(f"inputs must hold at least 2 vectors, got {len(inputs)}")
    params = SecAggParams(len(inputs), threshold, int(np.shape(inputs[0])[0]), modulus_bits)
    clients = [SecAggClient(params, i + 1, x, rng) for i, x in enumerate(inputs)]
    return run_protocol(SecAggServer(params), clients, drop)
