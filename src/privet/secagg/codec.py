"""Secure-aggregation messages on the wire: the seven protocol messages as privet.wire bytes.

The protocol (Bonawitz et al., CCS 2017, Fig. 4; SecAgg+ of Bell et al., CCS
2020, on a masking graph) is in :mod:`privet.secagg.messages`; this module
gives each of its messages one wire form (:mod:`privet.wire`: JSON meta plus
raw little-endian arrays, never pickle) and decodes bytes from strangers
defensively. Ids travel as ``uint32`` arrays in increasing order, keys,
ciphertexts and shares as ``uint8`` rows of fixed width, the masked vector as
``uint64``::

    kind                    party      arrays (m, a, b: counts; L: vector_length)
    secagg.advertise_keys   sender     channel_public u8 (32,), mask_public u8 (32,)
    secagg.keys_broadcast   recipient  ids u32 (m,), channel_public u8 (m, 32),
                                       mask_public u8 (m, 32)
    secagg.share_keys       sender     recipients u32 (m,), ciphertexts u8 (m, 168)
    secagg.shares_delivery  recipient  senders u32 (m,), ciphertexts u8 (m, 168)
    secagg.masked_input     sender     masked u64 (L,)
    secagg.unmask_request   -          survivors u32 (a,), dropped u32 (b,)
    secagg.unmask_response  sender     self_mask_ids u32 (a,), self_mask_shares u8 (a, 66),
                                       key_ids u32 (b,), key_shares u8 (b, 66)

Every meta is exactly ``{"protocol": "privet-secagg/v1", "round_id": ...,
"instance": ..., <party>: ...}``: ``round_id`` is the instance's
:attr:`~privet.secagg.messages.SecAggParams.round_id` and ``instance`` a
digest of all its public parameters (graph included), so a message replayed
from another round, or from another instance that reuses the round id (the
default ``round_id`` is 0), is refused.

Decoding checks everything a message can be checked for without the
protocol's state, before any dataclass is built: the kind is one of the
direction's (client -> server or server -> client), the meta is exactly the
above for this instance and party, every array has its exact name, dtype and
shape, ids are unique, increasing and among the ids the graph allows (for a
party ``u`` the holders ``H(u)``, the neighbours and ``u`` itself; ``H(u)``
without ``u`` for the addressees or senders of sealed shares), the two id
sets of an unmask request or response are disjoint (a client never reveals
both secrets of one peer), shares decode to field elements below ``2^521 - 1``
and masked entries lie in ``[0, 2^k)``. The byte caps of
:func:`secagg_limits` follow from ``n``, the graph degree and ``L``, so an
oversized message is refused before anything is parsed. What depends on the
protocol's state (stage order, a duplicate within the round, who is in
``U1``, ``U2``, ``U3``) is the state machines' job
(:class:`~privet.secagg.server.SecAggServer`,
:class:`~privet.secagg.client.SecAggClient`).

Errors: every problem with the *bytes* raises :class:`~privet.wire.WireError`
(and nothing else, whatever the bytes); a bad *argument* (parameters that
cannot travel, a party id out of range, a message that would not decode)
raises :class:`~privet.errors.PrivacyError`. Both are ``PrivacyError``; the
state machines raise :class:`~privet.secagg.messages.ProtocolViolation`, also
a ``PrivacyError``, so a transport loop needs one ``except PrivacyError``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NoReturn, TypeAlias

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.secagg.crypto import PUBLIC_KEY_BYTES
from privet.secagg.masking import MAX_MODULUS_BITS
from privet.secagg.messages import (
    ID_BYTES,
    SEALED_SHARE_BYTES,
    AdvertiseKeys,
    KeysBroadcast,
    MaskedInput,
    SecAggParams,
    ShareKeys,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
)
from privet.secagg.shamir import SHARE_BYTES, decode_share, encode_share
from privet.wire import Limits, WireError, decode_message, encode_message

__all__ = [
    "ADVERTISE_KEYS",
    "CLIENT_KINDS",
    "KEYS_BROADCAST",
    "MASKED_INPUT",
    "PROTOCOL",
    "SERVER_KINDS",
    "SHARES_DELIVERY",
    "SHARE_KEYS",
    "UNMASK_REQUEST",
    "UNMASK_RESPONSE",
    "decode_client_message",
    "decode_server_message",
    "encode_secagg_message",
    "secagg_limits",
]

PROTOCOL: Final = "privet-secagg/v1"
ADVERTISE_KEYS: Final = "secagg.advertise_keys"
KEYS_BROADCAST: Final = "secagg.keys_broadcast"
SHARE_KEYS: Final = "secagg.share_keys"
SHARES_DELIVERY: Final = "secagg.shares_delivery"
MASKED_INPUT: Final = "secagg.masked_input"
UNMASK_REQUEST: Final = "secagg.unmask_request"
UNMASK_RESPONSE: Final = "secagg.unmask_response"
#: Kinds a server accepts (client -> server).
CLIENT_KINDS: Final = (ADVERTISE_KEYS, SHARE_KEYS, MASKED_INPUT, UNMASK_RESPONSE)
#: Kinds a client accepts (server -> client).
SERVER_KINDS: Final = (KEYS_BROADCAST, SHARES_DELIVERY, UNMASK_REQUEST)

ClientMessage: TypeAlias = AdvertiseKeys | ShareKeys | MaskedInput | UnmaskResponse
ServerMessage: TypeAlias = KeysBroadcast | SharesDelivery | UnmaskRequest
_Error: TypeAlias = type[PrivacyError]

_MAX_IDS: Final = 2**32 - 1  # ids travel as uint32
# The largest header this encoder writes is about 650 bytes (4 array entries with
# 10-digit shapes and offsets, a 19-digit round id); anything longer is not ours.
_HEADER_BYTES: Final = 1024
_PREAMBLE_BYTES: Final = 10  # privet.wire format 1: magic, version, header length


@dataclass(frozen=True)
class _Array:
    """One array of a layout; a ``str`` dimension is a count shared by the arrays naming it."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]


_LAYOUTS: Final[Mapping[str, tuple[_Array, ...]]] = MappingProxyType(
    {
        ADVERTISE_KEYS: (
            _Array("channel_public", "uint8", (PUBLIC_KEY_BYTES,)),
            _Array("mask_public", "uint8", (PUBLIC_KEY_BYTES,)),
        ),
        KEYS_BROADCAST: (
            _Array("ids", "uint32", ("m",)),
            _Array("channel_public", "uint8", ("m", PUBLIC_KEY_BYTES)),
            _Array("mask_public", "uint8", ("m", PUBLIC_KEY_BYTES)),
        ),
        SHARE_KEYS: (
            _Array("recipients", "uint32", ("m",)),
            _Array("ciphertexts", "uint8", ("m", SEALED_SHARE_BYTES)),
        ),
        SHARES_DELIVERY: (
            _Array("senders", "uint32", ("m",)),
            _Array("ciphertexts", "uint8", ("m", SEALED_SHARE_BYTES)),
        ),
        MASKED_INPUT: (_Array("masked", "uint64", ("L",)),),
        UNMASK_REQUEST: (
            _Array("survivors", "uint32", ("a",)),
            _Array("dropped", "uint32", ("b",)),
        ),
        UNMASK_RESPONSE: (
            _Array("self_mask_ids", "uint32", ("a",)),
            _Array("self_mask_shares", "uint8", ("a", SHARE_BYTES)),
            _Array("key_ids", "uint32", ("b",)),
            _Array("key_shares", "uint8", ("b", SHARE_BYTES)),
        ),
    }
)

#: The meta key naming the party the transport authenticates, by kind.
_PARTY_KEYS: Final[Mapping[str, str | None]] = MappingProxyType(
    {
        ADVERTISE_KEYS: "sender",
        KEYS_BROADCAST: "recipient",
        SHARE_KEYS: "sender",
        SHARES_DELIVERY: "recipient",
        MASKED_INPUT: "sender",
        UNMASK_REQUEST: None,
        UNMASK_RESPONSE: "sender",
    }
)


def _show(values: object, width: int = 80) -> str:
    """``repr`` cut short: errors echo untrusted values, which may be huge."""
    text = repr(values)
    return text if len(text) <= width else text[: width - 3] + "..."


def _check_params(params: object) -> SecAggParams:
    # SecAggParams itself bounds num_clients (uint32 ids) and round_id (int64 JSON).
    if not isinstance(params, SecAggParams):
        raise PrivacyError(f"params must be SecAggParams, got {type(params).__name__}")
    return params


def _check_party(name: str, party: object, params: SecAggParams) -> int:
    if isinstance(party, bool) or not isinstance(party, int) or party not in params.client_ids:
        raise PrivacyError(f"{name} must be a client id in 1..{params.num_clients}, got {party!r}")
    return party


def _instance(params: SecAggParams) -> str:
    """A digest of every public parameter, binding a message to one instance."""
    graph = params.masking_graph
    # The complete graph's seed orders nothing, so SecAgg instances differ by it in no way.
    seed = "" if graph.is_complete else graph.seed.hex()
    text = (
        f"{PROTOCOL}/instance/n={params.num_clients}/t={params.threshold}/"
        f"L={params.vector_length}/k={params.modulus_bits}/round={params.round_id}/"
        f"degree={graph.degree}/seed={seed}"
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def secagg_limits(params: SecAggParams) -> Limits:
    """Wire caps for any message of this instance (see :class:`privet.wire.Limits`).

    The byte cap is the largest valid message: a header of at most 1024 bytes
    plus the largest payload among the seven kinds, from ``n``, the number of
    holders ``h = degree + 1`` and ``L``: ``max(68 h, 172 (h - 1), 8 L, 4 n,
    70 h)`` bytes. A transport can use it to cap reads before decoding.
    """
    params = _check_params(params)
    n, length = params.num_clients, params.vector_length
    holders = params.masking_graph.degree + 1
    payload = max(
        2 * PUBLIC_KEY_BYTES,  # advertise_keys
        (ID_BYTES + 2 * PUBLIC_KEY_BYTES) * holders,  # keys_broadcast
        (ID_BYTES + SEALED_SHARE_BYTES) * (holders - 1),  # share_keys, shares_delivery
        8 * length,  # masked_input
        ID_BYTES * n,  # unmask_request: survivors and dropped are disjoint
        (ID_BYTES + SHARE_BYTES) * holders,  # unmask_response: the same
    )
    return Limits(
        max_message_bytes=_PREAMBLE_BYTES + _HEADER_BYTES + payload,
        max_header_bytes=_HEADER_BYTES,
        max_arrays=4,
        max_ndim=2,
        max_string_bytes=64,
        max_meta_entries=4,
        max_meta_depth=1,
    )


# -- checking arrays (shared by encoding and decoding) ----------------------------------------


class _Reader:
    """Checks the arrays of one message against its layout and reads typed values from them.

    ``error`` is the exception raised: :class:`WireError` when decoding bytes,
    :class:`PrivacyError` when encoding a caller's message.
    """

    def __init__(
        self,
        kind: str,
        arrays: Mapping[str, NDArray[Any]],
        params: SecAggParams,
        error: _Error,
    ) -> None:
        self.kind = kind
        self.params = params
        self.error = error
        layout = _LAYOUTS[kind]
        names = [spec.name for spec in layout]
        if list(arrays) != names:
            self.fail(f"arrays must be exactly {names} in this order, got {_show(list(arrays))}")
        dims: dict[str, int] = {"L": params.vector_length}
        for spec in layout:
            array = arrays[spec.name]
            if array.dtype.name != spec.dtype:
                self.fail(f"array {spec.name!r} dtype must be {spec.dtype}, got {array.dtype.name}")
            if array.ndim != len(spec.shape):
                self.fail(
                    f"array {spec.name!r} must have {len(spec.shape)} dimension(s) "
                    f"{self._text(spec.shape)}, got shape {array.shape}"
                )
            for dim, size in zip(spec.shape, array.shape, strict=True):
                if isinstance(dim, str) and dim not in dims:
                    if size > params.num_clients:
                        self.fail(
                            f"array {spec.name!r} must hold at most n = {params.num_clients} "
                            f"ids, got {size}"
                        )
                    dims[dim] = size
                wanted = dims[dim] if isinstance(dim, str) else dim
                if size != wanted:
                    self.fail(
                        f"array {spec.name!r} shape must be {self._text(spec.shape, dims)}, "
                        f"got {array.shape}"
                    )
        self.arrays = arrays

    @staticmethod
    def _text(shape: tuple[int | str, ...], dims: Mapping[str, int] | None = None) -> str:
        known = dims or {}
        parts = [str(known.get(d, d)) if isinstance(d, str) else str(d) for d in shape]
        return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"

    def fail(self, text: str) -> NoReturn:
        raise self.error(f"{self.kind} {text}")

    def ids(self, name: str, allowed: frozenset[int], described: str) -> list[int]:
        """Unique increasing ids in 1..n, all in ``allowed`` (described in errors)."""
        n = self.params.num_clients
        array = self.arrays[name]
        values: list[int] = array.tolist()
        bad = [v for v in values if not 1 <= v <= n]
        if bad:
            self.fail(f"{name} must be ids in 1..{n}, got {_show(bad)}")
        if len(set(values)) != len(values):
            duplicates = sorted(v for v, count in Counter(values).items() if count > 1)
            self.fail(f"{name} must be unique ids, got duplicates {_show(duplicates)}")
        if values != sorted(values):
            self.fail(f"{name} must be in increasing order, got {_show(values)}")
        outside = [v for v in values if v not in allowed]
        if outside:
            self.fail(f"{name} must be among {described}, got {_show(outside)}")
        return values

    def disjoint(self, first: str, a: list[int], second: str, b: list[int]) -> None:
        both = sorted(set(a) & set(b))
        if both:
            self.fail(f"{first} and {second} must be disjoint, got both for {_show(both)}")

    def rows(self, name: str) -> list[bytes]:
        return [row.tobytes() for row in self.arrays[name]]

    def vector_bytes(self, name: str) -> bytes:
        return self.arrays[name].tobytes()

    def shares(self, name: str, ids: list[int]) -> dict[int, int]:
        result: dict[int, int] = {}
        for v, row in zip(ids, self.arrays[name], strict=True):
            try:
                result[v] = decode_share(row.tobytes())
            except PrivacyError as error:
                self.fail(f"{name} for client {v}: {error}")
        return result

    def masked(self, name: str) -> NDArray[np.uint64]:
        array = self.arrays[name]
        k = self.params.modulus_bits
        if k < MAX_MODULUS_BITS:
            over = np.flatnonzero(array >> np.uint64(k))
            if over.size:
                i = int(over[0])
                self.fail(
                    f"{name} entries must be in [0, 2**{k}), got {int(array[i])} at index {i}"
                )
        # A native-order copy: the wire view is little-endian and keeps the whole input alive.
        vector = np.array(array, dtype=np.uint64)
        vector.flags.writeable = False
        return vector


def _holders(params: SecAggParams, u: int) -> tuple[frozenset[int], str]:
    holders = params.holders(u)
    return holders, f"the holders H({u}) = {_show(sorted(holders))}"


def _others(params: SecAggParams, u: int) -> tuple[frozenset[int], str]:
    others = params.holders(u) - {u}
    return others, f"the other holders H({u}) \\ {{{u}}} = {_show(sorted(others))}"


def _advertise(r: _Reader, u: int) -> AdvertiseKeys:
    return AdvertiseKeys(u, r.vector_bytes("channel_public"), r.vector_bytes("mask_public"))


def _keys_broadcast(r: _Reader, v: int) -> KeysBroadcast:
    ids = r.ids("ids", *_holders(r.params, v))
    pairs = zip(r.rows("channel_public"), r.rows("mask_public"), strict=True)
    return KeysBroadcast(v, dict(zip(ids, pairs, strict=True)))


def _share_keys(r: _Reader, u: int) -> ShareKeys:
    ids = r.ids("recipients", *_others(r.params, u))
    return ShareKeys(u, dict(zip(ids, r.rows("ciphertexts"), strict=True)))


def _shares_delivery(r: _Reader, v: int) -> SharesDelivery:
    ids = r.ids("senders", *_others(r.params, v))
    return SharesDelivery(v, dict(zip(ids, r.rows("ciphertexts"), strict=True)))


def _masked_input(r: _Reader, u: int) -> MaskedInput:
    return MaskedInput(u, r.masked("masked"))


def _unmask_request(r: _Reader, _: int) -> UnmaskRequest:
    everyone = r.params.client_ids
    described = f"1..{r.params.num_clients}"
    survivors = r.ids("survivors", everyone, described)
    dropped = r.ids("dropped", everyone, described)
    r.disjoint("survivors", survivors, "dropped", dropped)
    return UnmaskRequest(frozenset(survivors), frozenset(dropped))


def _unmask_response(r: _Reader, u: int) -> UnmaskResponse:
    a = r.ids("self_mask_ids", *_holders(r.params, u))
    b = r.ids("key_ids", *_holders(r.params, u))
    r.disjoint("self_mask_ids", a, "key_ids", b)
    return UnmaskResponse(u, r.shares("self_mask_shares", a), r.shares("key_shares", b))


_CLIENT_PARSERS: Final[Mapping[str, Callable[[_Reader, int], ClientMessage]]] = MappingProxyType(
    {
        ADVERTISE_KEYS: _advertise,
        SHARE_KEYS: _share_keys,
        MASKED_INPUT: _masked_input,
        UNMASK_RESPONSE: _unmask_response,
    }
)
_SERVER_PARSERS: Final[Mapping[str, Callable[[_Reader, int], ServerMessage]]] = MappingProxyType(
    {
        KEYS_BROADCAST: _keys_broadcast,
        SHARES_DELIVERY: _shares_delivery,
        UNMASK_REQUEST: _unmask_request,
    }
)


# -- encoding ---------------------------------------------------------------------------------


def _id_list(name: str, ids: object) -> list[int]:
    if not isinstance(ids, Mapping | frozenset | set):
        raise PrivacyError(f"{name} must be a mapping or set keyed by client id, got {ids!r}")
    keys = list(ids)
    for v in keys:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _MAX_IDS:
            raise PrivacyError(f"{name} must hold integer client ids, got {_show(v)}")
    return sorted(keys)


def _id_array(ids: list[int]) -> NDArray[np.uint32]:
    return np.array(ids, dtype=np.uint32).reshape(len(ids))


def _row_array(name: str, values: Sequence[object], width: int) -> NDArray[np.uint8]:
    rows: list[bytes] = []
    for value in values:
        if not isinstance(value, bytes) or len(value) != width:
            raise PrivacyError(f"{name} must be {width} bytes each, got {_show(value)}")
        rows.append(value)
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), width)


def _share_array(name: str, values: Sequence[object]) -> NDArray[np.uint8]:
    rows: list[bytes] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PrivacyError(f"{name} must be integers in [0, 2**521 - 1), got {_show(value)}")
        rows.append(encode_share(value))
    return _row_array(name, rows, SHARE_BYTES)


def _pair(value: object) -> tuple[object, object]:
    if not isinstance(value, tuple) or len(value) != 2:
        raise PrivacyError(f"public_keys values must be (channel, mask) pairs, got {_show(value)}")
    return value[0], value[1]


def _to_arrays(message: object) -> tuple[str, int | None, dict[str, NDArray[Any]]]:
    """The kind, the party and the arrays of a message (types checked, values not yet)."""
    if isinstance(message, AdvertiseKeys):
        keys = {
            "channel_public": _row_array(
                "channel_public", [message.channel_public], PUBLIC_KEY_BYTES
            )[0],
            "mask_public": _row_array("mask_public", [message.mask_public], PUBLIC_KEY_BYTES)[0],
        }
        return ADVERTISE_KEYS, message.sender, keys
    if isinstance(message, KeysBroadcast):
        ids = _id_list("public_keys", message.public_keys)
        pairs = [_pair(message.public_keys[v]) for v in ids]
        return (
            KEYS_BROADCAST,
            message.recipient,
            {
                "ids": _id_array(ids),
                "channel_public": _row_array(
                    "channel_public", [p[0] for p in pairs], PUBLIC_KEY_BYTES
                ),
                "mask_public": _row_array("mask_public", [p[1] for p in pairs], PUBLIC_KEY_BYTES),
            },
        )
    if isinstance(message, ShareKeys | SharesDelivery):
        ids = _id_list("ciphertexts", message.ciphertexts)
        texts = [message.ciphertexts[v] for v in ids]
        if isinstance(message, ShareKeys):
            kind, party, field = SHARE_KEYS, message.sender, "recipients"
        else:
            kind, party, field = SHARES_DELIVERY, message.recipient, "senders"
        return (
            kind,
            party,
            {
                field: _id_array(ids),
                "ciphertexts": _row_array("ciphertexts", texts, SEALED_SHARE_BYTES),
            },
        )
    if isinstance(message, MaskedInput):
        masked = message.masked
        if not isinstance(masked, np.ndarray) or masked.dtype != np.uint64:
            raise PrivacyError(f"masked must be a uint64 numpy array, got {_show(masked)}")
        return MASKED_INPUT, message.sender, {"masked": masked}
    if isinstance(message, UnmaskRequest):
        survivors = _id_list("survivors", message.survivors)
        dropped = _id_list("dropped", message.dropped)
        arrays = {"survivors": _id_array(survivors), "dropped": _id_array(dropped)}
        return UNMASK_REQUEST, None, arrays
    if isinstance(message, UnmaskResponse):
        a = _id_list("self_mask_shares", message.self_mask_shares)
        b = _id_list("key_shares", message.key_shares)
        return (
            UNMASK_RESPONSE,
            message.sender,
            {
                "self_mask_ids": _id_array(a),
                "self_mask_shares": _share_array(
                    "self_mask_shares", [message.self_mask_shares[v] for v in a]
                ),
                "key_ids": _id_array(b),
                "key_shares": _share_array("key_shares", [message.key_shares[v] for v in b]),
            },
        )
    raise PrivacyError(
        f"message must be one of the seven SecAgg messages, got {type(message).__name__}"
    )


def encode_secagg_message(message: ClientMessage | ServerMessage, params: SecAggParams) -> bytes:
    """Encode any of the seven protocol messages for the instance ``params``.

    Parameters
    ----------
    message
        An :class:`~privet.secagg.messages.AdvertiseKeys`,
        :class:`~privet.secagg.messages.KeysBroadcast`, ...,
        :class:`~privet.secagg.messages.UnmaskResponse`.
    params
        The instance; its ``round_id`` and parameter digest go into the meta.

    Raises
    ------
    PrivacyError
        The message would not decode under ``params``: the checks are the
        decoder's (see the module docstring), so every encoded message decodes.
    """
    params = _check_params(params)
    kind, party, arrays = _to_arrays(message)
    meta: dict[str, Any] = {"protocol": PROTOCOL, "round_id": params.round_id}
    meta["instance"] = _instance(params)
    party_key = _PARTY_KEYS[kind]
    if party_key is not None:
        meta[party_key] = _check_party(party_key, party, params)
    reader = _Reader(kind, arrays, params, PrivacyError)
    parsers: Mapping[str, Callable[[_Reader, int], object]] = (
        _CLIENT_PARSERS if kind in _CLIENT_PARSERS else _SERVER_PARSERS
    )
    parsers[kind](reader, party if party is not None else 0)
    return encode_message(kind, meta, arrays, limits=secagg_limits(params))


# -- decoding ---------------------------------------------------------------------------------


def _decode(
    data: bytes | bytearray | memoryview,
    params: SecAggParams,
    kinds: tuple[str, ...],
    party_name: str,
    party: int,
) -> tuple[str, _Reader]:
    message = decode_message(data, expected_kind=kinds, limits=secagg_limits(params))
    kind = message.kind
    meta = message.meta
    party_key = _PARTY_KEYS[kind]
    expected = sorted({"protocol", "round_id", "instance"} | ({party_key} if party_key else set()))
    if sorted(meta) != expected:
        raise WireError(f"{kind} meta keys must be exactly {expected}, got {_show(sorted(meta))}")
    if meta["protocol"] != PROTOCOL:
        raise WireError(f"{kind} protocol must be {PROTOCOL!r}, got {_show(meta['protocol'])}")
    round_id = meta["round_id"]
    if type(round_id) is not int or round_id != params.round_id:
        raise WireError(
            f"{kind} round_id must be {params.round_id} (this instance's round; a message "
            f"of another round is a replay), got {_show(round_id)}"
        )
    if meta["instance"] != _instance(params):
        raise WireError(
            f"{kind} instance must be {_instance(params)!r} (the digest of this instance's "
            f"parameters), got {_show(meta['instance'])}"
        )
    if party_key is not None:
        claimed = meta[party_key]
        if type(claimed) is not int or claimed != party:
            raise WireError(
                f"{kind} {party_key} must be {party} (the authenticated {party_name}), "
                f"got {_show(claimed)}"
            )
    return kind, _Reader(kind, message.arrays, params, WireError)


def decode_client_message(
    data: bytes | bytearray | memoryview, params: SecAggParams, *, sender: int
) -> ClientMessage:
    """Decode and fully check a client -> server message (the server's side).

    Parameters
    ----------
    data
        The bytes as received.
    params
        The instance the server runs.
    sender
        The client id the transport authenticated; a message claiming another
        sender is refused.

    Returns
    -------
    AdvertiseKeys | ShareKeys | MaskedInput | UnmaskResponse
        Ready for :meth:`~privet.secagg.server.SecAggServer.receive`, which
        checks what depends on the round's state (including duplicates).

    Raises
    ------
    WireError
        Anything wrong with the bytes (see the module docstring); nothing else
        is raised for any bytes.
    PrivacyError
        ``params`` cannot travel or ``sender`` is not a client id.
    """
    params = _check_params(params)
    sender = _check_party("sender", sender, params)
    kind, reader = _decode(data, params, CLIENT_KINDS, "sender", sender)
    return _CLIENT_PARSERS[kind](reader, sender)


def decode_server_message(
    data: bytes | bytearray | memoryview, params: SecAggParams, *, recipient: int
) -> ServerMessage:
    """Decode and fully check a server -> client message (a client's side).

    Parameters
    ----------
    data
        The bytes as received.
    params
        The instance the client takes part in.
    recipient
        This client's id: a broadcast of keys or a delivery of shares addressed
        to another client is refused. The unmask request is the same for every
        survivor and names no recipient; the client itself checks that it is
        among the survivors.

    Returns
    -------
    KeysBroadcast | SharesDelivery | UnmaskRequest
        Ready for the matching :class:`~privet.secagg.client.SecAggClient` method.

    Raises
    ------
    WireError
        Anything wrong with the bytes; nothing else is raised for any bytes.
    PrivacyError
        ``params`` cannot travel or ``recipient`` is not a client id.
    """
    params = _check_params(params)
    recipient = _check_party("recipient", recipient, params)
    kind, reader = _decode(data, params, SERVER_KINDS, "recipient", recipient)
    return _SERVER_PARSERS[kind](reader, recipient)
