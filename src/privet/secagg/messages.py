"""Public parameters, messages and errors of the secure-aggregation protocol.

The protocol is Bonawitz et al., "Practical Secure Aggregation for
Privacy-Preserving Machine Learning" (CCS 2017), Fig. 4, in its
honest-but-curious variant (no signatures, no consistency-check round), run on
a masking graph (:mod:`privet.secagg.graph`): the complete graph gives SecAgg,
a sparse random ``k``-regular graph gives SecAgg+ (Bell et al., CCS 2020).
Write ``N(u)`` for ``u``'s neighbours and ``H(u) = N(u) ∪ {u}`` for the holders
of ``u``'s shares.

0. *AdvertiseKeys*: client ``u`` sends a channel public key ``c_u`` and a
   mask-agreement public key ``s_u``; the server forwards to each ``u`` the
   keys of ``H(u) ∩ U1``.
1. *ShareKeys*: ``u`` draws a self-mask seed ``b_u`` and Shamir-shares ``b_u``
   and its mask private key ``t``-of-``|H(u) ∩ U1|``; the shares for ``v``
   travel sealed under ``agree(c_u, c_v)`` with ``(round, u, v)`` as
   associated data.
2. *MaskedInputCollection*: ``u`` sends
   ``y_u = x_u + PRG(b_u) + sum_{v in N(u) ∩ U2} ±PRG(s_uv) mod 2^k``.
3. *Unmasking*: for ``v`` in ``H(u) ∩ U2`` each survivor returns its share of
   ``b_v`` if ``v`` sent ``y_v`` (``v`` in ``U3``), else its share of ``v``'s
   mask key — never both for one ``v``. The server recovers the secrets and
   removes the masks: the result is ``sum_{u in U3} x_u mod 2^k``.

Client ids are the Shamir x-coordinates ``1..n``. The threshold must satisfy
``(k + 1)/2 < t <= k + 1`` (and ``t >= 2``) for degree ``k``; with the
complete graph that is ``n/2 < t <= n``. The honest-but-curious guarantee
(Bonawitz et al. §6.1; Bell et al. §4) holds against the server colluding with
fewer than ``t`` of any client's holders, and a majority threshold keeps two
disjoint groups of holders from both reaching it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

import numpy as np

from privet.errors import PrivacyError
from privet.secagg.graph import MaskingGraph
from privet.secagg.masking import MAX_MODULUS_BITS
from privet.secagg.shamir import SHARE_BYTES

__all__ = [
    "AbortedRound",
    "AdvertiseKeys",
    "KeysBroadcast",
    "MaskedInput",
    "ProtocolViolation",
    "SecAggParams",
    "ShareKeys",
    "SharesDelivery",
    "UnmaskRequest",
    "UnmaskResponse",
]

ID_BYTES = 4
# Ids travel as uint32 and round ids as JSON integers (privet.wire caps them at int64).
_MAX_CLIENTS = 2**32 - 1
_MAX_ROUND_ID = 2**63 - 1
#: Plaintext of one sealed share pair: sender id, recipient id, share of b_u, share of the key.
SHARE_PLAINTEXT_BYTES = 2 * ID_BYTES + 2 * SHARE_BYTES
#: AES-GCM adds a 12-byte nonce and a 16-byte tag.
SEALED_SHARE_BYTES = 12 + SHARE_PLAINTEXT_BYTES + 16


class ProtocolViolation(PrivacyError):
    """An inbound message is out of order, from an unexpected party, malformed or replayed."""


class AbortedRound(PrivacyError):
    """Too few clients survived a round; nothing was reconstructed."""


@dataclass(frozen=True)
class SecAggParams:
    """Public parameters of one secure-aggregation instance.

    Attributes
    ----------
    num_clients
        ``n >= 2``; client ids are ``1..n``.
    threshold
        ``t`` with ``(k + 1)/2 < t <= k + 1`` and ``t >= 2``, ``k`` the graph's degree.
    vector_length
        ``L >= 1``, the length of every input.
    modulus_bits
        ``k`` in ``1..64``: inputs and sums live in ``Z_{2^k}``.
    round_id
        Binds every derived key and ciphertext to this instance (e.g. the FL round).
    graph
        The masking graph; ``None`` means the complete graph (SecAgg).
    """

    num_clients: int
    threshold: int
    vector_length: int
    modulus_bits: int
    round_id: int = 0
    graph: MaskingGraph | None = None

    def __post_init__(self) -> None:
        for name in ("num_clients", "threshold", "vector_length", "modulus_bits", "round_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise PrivacyError(f"{name} must be an integer, got {value!r}")
        n, t = self.num_clients, self.threshold
        if not 2 <= n <= _MAX_CLIENTS:
            raise PrivacyError(f"num_clients must be in [2, {_MAX_CLIENTS}], got {n}")
        if self.graph is not None and (
            not isinstance(self.graph, MaskingGraph) or self.graph.num_clients != n
        ):
            raise PrivacyError(f"graph must be a MaskingGraph over {n} clients, got {self.graph!r}")
        holders = self.masking_graph.degree + 1
        if not (2 * t > holders and 2 <= t <= holders):
            raise PrivacyError(
                f"threshold must be in ({holders / 2}, {holders}] and >= 2 for "
                f"{holders} share holders per client, got {t}"
            )
        if self.vector_length < 1:
            raise PrivacyError(f"vector_length must be >= 1, got {self.vector_length}")
        if not 1 <= self.modulus_bits <= MAX_MODULUS_BITS:
            raise PrivacyError(f"modulus_bits must be in [1, 64], got {self.modulus_bits}")
        if not 0 <= self.round_id <= _MAX_ROUND_ID:
            raise PrivacyError(f"round_id must be in [0, {_MAX_ROUND_ID}], got {self.round_id}")

    @cached_property
    def client_ids(self) -> frozenset[int]:
        """The ids ``1..n``."""
        return frozenset(range(1, self.num_clients + 1))

    @cached_property
    def masking_graph(self) -> MaskingGraph:
        """The graph in use (the complete graph when ``graph`` is ``None``)."""
        return self.graph if self.graph is not None else MaskingGraph.complete(self.num_clients)

    def holders(self, client: int) -> frozenset[int]:
        """``H(u)``: the neighbours of ``client`` and the client itself."""
        if isinstance(client, bool) or client not in self.client_ids:
            raise PrivacyError(f"client must be in 1..{self.num_clients}, got {client!r}")
        return self._holder_sets[client - 1]

    @cached_property
    def _holder_sets(self) -> tuple[frozenset[int], ...]:
        graph = self.masking_graph
        return tuple(graph.neighbours(u) | {u} for u in range(1, self.num_clients + 1))


@dataclass(frozen=True)
class AdvertiseKeys:
    """Round 0, client -> server: the two public keys of ``sender``."""

    sender: int
    channel_public: bytes
    mask_public: bytes


@dataclass(frozen=True)
class KeysBroadcast:
    """Round 0, server -> ``recipient``: ``H(recipient) ∩ U1`` with their (channel, mask) keys."""

    recipient: int
    public_keys: Mapping[int, tuple[bytes, bytes]]


@dataclass(frozen=True)
class ShareKeys:
    """Round 1, client -> server: sealed shares of ``sender``'s secrets, by recipient."""

    sender: int
    ciphertexts: Mapping[int, bytes]


@dataclass(frozen=True)
class SharesDelivery:
    """Round 1, server -> ``recipient``: the sealed shares addressed to it, by sender."""

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


ClientMessage = AdvertiseKeys | ShareKeys | MaskedInput | UnmaskResponse
ServerMessage = KeysBroadcast | SharesDelivery | UnmaskRequest


class Stage(Enum):
    """Where a party's state machine stands."""

    ADVERTISE = 0
    SHARE = 1
    MASK = 2
    UNMASK = 3
    DONE = 4
    ABORTED = 5


def expect_stage(stage: Stage, wanted: Stage, what: str) -> None:
    """Refuse a message that arrives in the wrong stage."""
    if stage is not wanted:
        raise ProtocolViolation(
            f"{what} must arrive in stage {wanted.name}, got it in stage {stage.name}"
        )


def share_aad(params: SecAggParams, sender: int, recipient: int) -> bytes:
    """Associated data binding a sealed share to its round, sender and recipient."""
    text = f"privet-secagg/v1/shares/round={params.round_id}/from={sender}/to={recipient}"
    return text.encode("ascii")
