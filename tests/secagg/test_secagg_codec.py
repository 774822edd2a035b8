"""The wire form of the SecAgg messages (privet.secagg.codec).

Round trips come from real in-memory protocol runs (Bonawitz et al., CCS 2017,
Fig. 4; SecAgg+ of Bell et al., CCS 2020) in which every message crosses the
codec; the expected sums are plaintext sums mod ``2^k`` of the inputs of the
clients in ``U3``, computed directly with numpy. Rejection tests spoil one
thing in a valid message (re-encoded with the raw :mod:`privet.wire` codec so
that only that thing is wrong) and check the error names it. The fuzz tests
(hypothesis, ``derandomize=True`` as in tests/wire/) check that hostile bytes
make the codec and the state machines raise ``PrivacyError`` only, and that a
rejected message leaves the server able to finish the round with the right sum.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import struct
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from privet.errors import PrivacyError
from privet.secagg import (
    AdvertiseKeys,
    KeysBroadcast,
    MaskedInput,
    MaskingGraph,
    ProtocolViolation,
    SecAggClient,
    SecAggParams,
    SecAggServer,
    ShareKeys,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
)
from privet.secagg.codec import (
    ADVERTISE_KEYS,
    CLIENT_KINDS,
    KEYS_BROADCAST,
    MASKED_INPUT,
    PROTOCOL,
    SERVER_KINDS,
    SHARE_KEYS,
    SHARES_DELIVERY,
    UNMASK_REQUEST,
    UNMASK_RESPONSE,
    decode_client_message,
    decode_server_message,
    encode_secagg_message,
    secagg_limits,
)
from privet.secagg.messages import SEALED_SHARE_BYTES, ClientMessage, ServerMessage
from privet.secagg.shamir import PRIME, SHARE_BYTES, encode_share
from privet.wire import Limits, WireError, decode_message, encode_message
from privet.wire.codec import DTYPES

K = 32
L = 7


def _inputs(n: int, seed: int, bits: int = K, length: int = L) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 2**bits, size=length, dtype=np.uint64) for _ in range(n)]


def _expected(inputs: list[np.ndarray], ids: set[int], bits: int = K) -> np.ndarray:
    total = np.zeros(inputs[0].size, dtype=np.uint64)
    for i in sorted(ids):
        total += inputs[i - 1]
    return total & np.uint64(2**bits - 1) if bits < 64 else total


def _same(a: object, b: object) -> bool:
    """Field-wise equality (a MaskedInput holds an array, which has no single truth value)."""
    if isinstance(a, MaskedInput) and isinstance(b, MaskedInput):
        return a.sender == b.sender and np.array_equal(a.masked, b.masked)
    return type(a) is type(b) and a == b


# -- a protocol run with every message through the codec ---------------------------------------


@dataclasses.dataclass
class Transcript:
    """The encoded messages of one run: ``client[r][u]`` and ``server[r][v]`` (r = 0..3)."""

    client: list[dict[int, bytes]]
    server: list[dict[int, bytes]]
    result: np.ndarray
    survivors: frozenset[int]


def _run_over_wire(
    params: SecAggParams,
    inputs: list[np.ndarray],
    drop: Mapping[int, set[int]],
    seed: int,
) -> Transcript:
    """``simulation.run_protocol``, but every message is encoded, decoded and compared.

    Client ``u`` draws from its own generator seeded ``seed + u``, so a test can
    rebuild a client in the same state.
    """
    clients = [
        SecAggClient(params, u, x, np.random.default_rng(seed + u))
        for u, x in enumerate(inputs, start=1)
    ]
    server = SecAggServer(params)
    sent: list[dict[int, bytes]] = [{} for _ in range(4)]
    delivered: list[dict[int, bytes]] = [{} for _ in range(4)]
    gone: set[int] = set()

    def up(r: int, message: ClientMessage) -> None:
        data = encode_secagg_message(message, params)
        decoded = decode_client_message(data, params, sender=message.sender)
        assert _same(decoded, message)
        sent[r][decoded.sender] = data
        server.receive(decoded)

    def down(r: int, message: ServerMessage, v: int) -> Any:
        data = encode_secagg_message(message, params)
        decoded = decode_server_message(data, params, recipient=v)
        assert _same(decoded, message)
        delivered[r][v] = data
        return decoded

    def alive(r: int) -> list[SecAggClient]:
        gone.update(drop.get(r, set()))
        return [c for c in clients if c.client_id not in gone]

    for c in alive(0):
        up(0, c.advertise())
    broadcasts = server.broadcast_keys()
    for c in alive(1):
        up(1, c.share_keys(down(1, broadcasts[c.client_id], c.client_id)))
    shares = server.deliver_shares()
    for c in alive(2):
        up(2, c.masked_input(down(2, shares[c.client_id], c.client_id)))
    request = server.request_unmask()
    for c in alive(3):
        if c.client_id in request.survivors:
            up(3, c.unmask(down(3, request, c.client_id)))
    return Transcript(sent, delivered, server.finish(), request.survivors)


def test_complete_graph_round_trip_with_dropouts() -> None:
    """SecAgg, n = 9, t = 5: one client drops before each round (9, 8, 7, 6)."""
    params = SecAggParams(9, 5, L, K, round_id=11)
    inputs = _inputs(9, seed=1)
    drop = {0: {9}, 1: {8}, 2: {7}, 3: {6}}
    run = _run_over_wire(params, inputs, drop, seed=100)
    assert run.survivors == frozenset(range(1, 7))
    assert np.array_equal(run.result, _expected(inputs, set(range(1, 7))))
    # Every kind crossed the wire, the key shares of dropout 7 included.
    kinds = {decode_message(d).kind for rnd in run.client + run.server for d in rnd.values()}
    assert kinds == set(CLIENT_KINDS) | set(SERVER_KINDS)
    response = decode_client_message(run.client[3][1], params, sender=1)
    assert isinstance(response, UnmaskResponse)
    assert set(response.key_shares) == {7}
    assert set(response.self_mask_shares) == set(range(1, 7))


def test_sparse_graph_round_trip_with_dropouts() -> None:
    """SecAgg+, n = 12 on a random 4-regular graph, t = 3 of 5 holders."""
    graph = MaskingGraph.random(12, 4, np.random.default_rng(5))
    params = SecAggParams(12, 3, L, K, round_id=2, graph=graph)
    inputs = _inputs(12, seed=2)
    # Drop clients far apart on the ring so every holder set keeps t members.
    u = 1
    far = next(v for v in range(2, 13) if v not in params.holders(u))
    drop = {1: {u}, 2: {far}}
    run = _run_over_wire(params, inputs, drop, seed=200)
    survivors = set(range(1, 13)) - {u, far}
    assert run.survivors == frozenset(survivors)
    assert np.array_equal(run.result, _expected(inputs, survivors))
    # A sealed-share message carries only the sender's neighbours (k = 4), not all n - 1.
    shares = decode_client_message(run.client[1][2], params, sender=2)
    assert isinstance(shares, ShareKeys)
    assert set(shares.ciphertexts) == params.holders(2) - {2}
    assert len(shares.ciphertexts) == 4


def test_full_width_modulus_round_trip() -> None:
    """k = 64: every uint64 is a valid masked entry, 2^64 - 1 included."""
    params = SecAggParams(3, 2, 3, 64)
    top = np.array([0, 2**63, 2**64 - 1], dtype=np.uint64)
    data = encode_secagg_message(MaskedInput(2, top), params)
    decoded = decode_client_message(data, params, sender=2)
    assert isinstance(decoded, MaskedInput)
    assert np.array_equal(decoded.masked, top)
    assert decoded.masked.dtype == np.uint64
    assert not decoded.masked.flags.writeable


def test_decoding_accepts_any_buffer() -> None:
    params = SecAggParams(3, 2, 2, 8)
    message = MaskedInput(1, np.array([1, 255], dtype=np.uint64))
    data = encode_secagg_message(message, params)
    for buffer in (bytearray(data), memoryview(data)):
        assert _same(decode_client_message(buffer, params, sender=1), message)


# -- a fixed run to spoil ----------------------------------------------------------------------

P = SecAggParams(6, 4, L, K, round_id=7)
INPUTS = _inputs(6, seed=3)
DROP = {2: {6}}  # 6 shares its secrets, then drops: its mask key gets recovered
U3 = set(range(1, 6))


@functools.cache
def _transcript() -> Transcript:
    return _run_over_wire(P, INPUTS, DROP, seed=300)


def _honest_round(
    transcript: Transcript, server: SecAggServer, r: int, skip: frozenset[int] = frozenset()
) -> None:
    for u, data in transcript.client[r].items():
        if u not in skip:
            server.receive(decode_client_message(data, P, sender=u))


def _close(server: SecAggServer, r: int) -> Any:
    closers: list[Callable[[], Any]] = [
        server.broadcast_keys,
        server.deliver_shares,
        server.request_unmask,
        server.finish,
    ]
    return closers[r]()


def _server_at(r: int) -> SecAggServer:
    """A fresh server fed the honest transcript up to the start of round ``r``."""
    server = SecAggServer(P)
    for q in range(r):
        _honest_round(_transcript(), server, q)
        _close(server, q)
    return server


def _finish_from(server: SecAggServer, r: int) -> np.ndarray:
    """Feed the honest rest of the run from round ``r`` on and return the sum."""
    for q in range(r, 4):
        _honest_round(_transcript(), server, q)
        result = _close(server, q)
    return np.asarray(result)


def test_transcript_sum() -> None:
    assert np.array_equal(_transcript().result, _expected(INPUTS, U3))
    assert np.array_equal(_finish_from(_server_at(0), 0), _expected(INPUTS, U3))


@pytest.mark.parametrize("r", range(4))
def test_duplicate_within_a_round_is_refused_by_the_server(r: int) -> None:
    """The codec cannot know the round's state; SecAggServer.receive rejects the replay."""
    server = _server_at(r)
    data = _transcript().client[r][1]
    server.receive(decode_client_message(data, P, sender=1))
    again = decode_client_message(data, P, sender=1)
    with pytest.raises(ProtocolViolation, match="duplicate from 1"):
        server.receive(again)
    _honest_round(_transcript(), server, r, skip=frozenset({1}))
    result = _close(server, r)
    if r < 3:
        result = _finish_from(server, r + 1)
    assert np.array_equal(result, _expected(INPUTS, U3))


# -- rejections --------------------------------------------------------------------------------

_DELETE = object()


def _tamper(
    data: bytes,
    *,
    kind: str | None = None,
    meta: Mapping[str, Any] | None = None,
    arrays: Mapping[str, Any] | None = None,
) -> bytes:
    """Re-encode a valid message with the raw wire codec, changing only what is named.

    ``meta`` and ``arrays`` update the message's (``_DELETE`` removes a key); the
    default wire limits are used so the spoiled message is still well-formed wire.
    """
    message = decode_message(data)
    new_meta = dict(message.meta)
    new_arrays = dict(message.arrays)
    for target, changes in ((new_meta, meta), (new_arrays, arrays)):
        for key, value in (changes or {}).items():
            if value is _DELETE:
                del target[key]
            else:
                target[key] = value
    return encode_message(kind or message.kind, new_meta, new_arrays)


def _client(r: int, u: int = 1) -> bytes:
    return _transcript().client[r][u]


def _server(r: int, v: int = 1) -> bytes:
    return _transcript().server[r][v]


def _ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint32)


def _rows(count: int, width: int, fill: int = 1) -> np.ndarray:
    return np.full((count, width), fill, dtype=np.uint8)


def _shares(*values: int) -> np.ndarray:
    return np.frombuffer(b"".join(encode_share(v) for v in values), dtype=np.uint8).reshape(
        len(values), SHARE_BYTES
    )


def _decode_any(data: bytes, party: int = 1) -> object:
    kind = decode_message(data).kind
    if kind in SERVER_KINDS:
        return decode_server_message(data, P, recipient=party)
    return decode_client_message(data, P, sender=party)


def test_message_of_another_round_is_a_replay() -> None:
    """The same bytes, but produced by the same instance for round 6."""
    other = dataclasses.replace(P, round_id=6)
    for r in range(4):
        honest = decode_client_message(_client(r), P, sender=1)
        replayed = encode_secagg_message(honest, other)
        with pytest.raises(WireError, match=r"round_id must be 7 .* got 6"):
            decode_client_message(replayed, P, sender=1)
    request = decode_server_message(_server(3), P, recipient=1)
    with pytest.raises(WireError, match=r"secagg.unmask_request round_id must be 7"):
        decode_server_message(encode_secagg_message(request, other), P, recipient=1)


def test_message_of_another_instance_with_the_same_round_is_refused() -> None:
    """round_id 7 for both, but another threshold (or graph): the instance digest differs."""
    honest = decode_client_message(_client(2), P, sender=1)
    for other in (
        dataclasses.replace(P, threshold=5),
        dataclasses.replace(P, graph=MaskingGraph.random(6, 4, np.random.default_rng(0))),
    ):
        with pytest.raises(WireError, match=r"instance must be .* digest of this instance"):
            decode_client_message(encode_secagg_message(honest, other), P, sender=1)
    # graph=None and the explicit complete graph are one and the same instance.
    same = dataclasses.replace(P, graph=MaskingGraph.complete(6))
    assert _same(decode_client_message(encode_secagg_message(honest, same), P, sender=1), honest)


def test_wrong_direction_or_kind() -> None:
    for r in range(1, 4):
        with pytest.raises(WireError, match=r"message kind must be one of .*secagg.advertise_keys"):
            decode_client_message(_server(r), P, sender=1)
    for r in range(4):
        with pytest.raises(WireError, match=r"message kind must be one of .*secagg.keys_broadcast"):
            decode_server_message(_client(r), P, recipient=1)
    with pytest.raises(WireError, match="message kind must be one of"):
        decode_client_message(encode_message("fl.fit_res", {}), P, sender=1)
    # A client message relabelled as another client kind fails that kind's layout.
    relabelled = _tamper(_client(0), kind=MASKED_INPUT)
    with pytest.raises(WireError, match=r"secagg.masked_input arrays must be exactly \['masked'\]"):
        decode_client_message(relabelled, P, sender=1)


def test_sender_and_recipient_must_match_the_transport() -> None:
    for r in range(4):
        with pytest.raises(WireError, match=r"sender must be 2 .*authenticated sender.*got 1"):
            decode_client_message(_client(r, 1), P, sender=2)
    for r in (1, 2):
        with pytest.raises(WireError, match=r"recipient must be 3 .*authenticated recipient"):
            decode_server_message(_server(r, 1), P, recipient=3)
    with pytest.raises(WireError, match="sender must be 1"):
        decode_client_message(_tamper(_client(2), meta={"sender": True}), P, sender=1)


@pytest.mark.parametrize("bad", [0, 7, -1, True, 1.0, None])
def test_party_arguments_are_checked(bad: Any) -> None:
    with pytest.raises(PrivacyError, match=r"sender must be a client id in 1..6"):
        decode_client_message(_client(0), P, sender=bad)
    with pytest.raises(PrivacyError, match=r"recipient must be a client id in 1..6"):
        decode_server_message(_server(1), P, recipient=bad)


META_CASES = [
    (
        {"protocol": "privet-secagg/v0"},
        "protocol must be 'privet-secagg/v1', got 'privet-secagg/v0'",
    ),
    ({"round_id": 7.0}, "round_id must be 7 .* got 7.0"),
    ({"round_id": "7"}, "round_id must be 7 .* got '7'"),
    ({"instance": "0" * 32}, "instance must be"),
    ({"extra": 1}, "meta must hold at most max_meta_entries=4 values"),
    ({"sender": _DELETE, "from": 1}, r"exactly \['instance', 'protocol', 'round_id', 'sender'\]"),
    ({"round_id": _DELETE}, "meta keys must be exactly"),
]


@pytest.mark.parametrize(("meta", "match"), META_CASES)
def test_meta_is_exact(meta: dict[str, Any], match: str) -> None:
    with pytest.raises(WireError, match=match):
        decode_client_message(_tamper(_client(1), meta=meta), P, sender=1)


# (round, client or server message, spoiled arrays, expected error)
ARRAY_CASES: list[tuple[int, str, dict[str, Any], str]] = [
    # ids out of range, repeated, unordered, not a holder
    (1, "c", {"recipients": _ids(0, 3, 4, 5, 6)}, r"recipients must be ids in 1..6, got \[0\]"),
    (1, "c", {"recipients": _ids(2, 3, 4, 5, 9)}, r"recipients must be ids in 1..6, got \[9\]"),
    (1, "c", {"recipients": _ids(2, 3, 3, 5, 6)}, r"must be unique ids, got duplicates \[3\]"),
    (1, "c", {"recipients": _ids(3, 2, 4, 5, 6)}, "recipients must be in increasing order"),
    (1, "c", {"recipients": _ids(1, 3, 4, 5, 6)}, r"must be among the other holders H\(1\)"),
    (2, "s", {"senders": _ids(1, 2, 3, 4, 5)}, r"senders must be among the other holders H\(1\)"),
    (3, "s", {"survivors": _ids(1, 2, 2, 4, 5)}, r"survivors must be unique ids"),
    (3, "s", {"dropped": _ids(5)}, r"survivors and dropped must be disjoint, got both for \[5\]"),
    (
        3,
        "c",
        {"key_ids": _ids(5), "key_shares": _shares(1)},
        r"self_mask_ids and key_ids must be disjoint, got both for \[5\]",
    ),
    # counts above n
    (
        3,
        "s",
        {"dropped": _ids(*range(1, 8))},
        r"array 'dropped' must hold at most n = 6 ids, got 7",
    ),
    # dtypes
    (1, "c", {"recipients": np.arange(2, 7, dtype=np.int64)}, "'recipients' dtype must be uint32"),
    (1, "s", {"channel_public": _rows(6, 32).astype(np.int8)}, "'channel_public' dtype must be"),
    (2, "c", {"masked": np.zeros(L, dtype=np.int64)}, "'masked' dtype must be uint64, got int64"),
    (2, "c", {"masked": np.zeros(L, dtype=np.float64)}, "'masked' dtype must be uint64"),
    # shapes and row widths
    (0, "c", {"mask_public": np.zeros(31, dtype=np.uint8)}, r"'mask_public' shape must be \(32,\)"),
    (
        1,
        "s",
        {"mask_public": _rows(6, 33)},
        r"'mask_public' shape must be \(6, 32\), got \(6, 33\)",
    ),
    (
        1,
        "s",
        {"mask_public": _rows(5, 32)},
        r"'mask_public' shape must be \(6, 32\), got \(5, 32\)",
    ),
    (
        1,
        "c",
        {"ciphertexts": _rows(5, SEALED_SHARE_BYTES - 1)},
        rf"'ciphertexts' shape must be \(5, {SEALED_SHARE_BYTES}\)",
    ),
    (1, "c", {"recipients": _ids(2, 3, 4, 5, 6).reshape(5, 1)}, r"must have 1 dimension\(s\)"),
    (3, "c", {"key_shares": _rows(1, SHARE_BYTES - 1)}, rf"shape must be \(1, {SHARE_BYTES}\)"),
    (2, "c", {"masked": np.zeros(L + 1, dtype=np.uint64)}, rf"'masked' shape must be \({L},\)"),
    (2, "c", {"masked": np.zeros((1, L), dtype=np.uint64)}, r"'masked' must have 1 dimension"),
    # names
    (2, "c", {"masked": _DELETE}, r"arrays must be exactly \['masked'\] in this order, got \[\]"),
    (2, "c", {"extra": _ids(1)}, r"arrays must be exactly \['masked'\] in this order"),
    # values
    (
        3,
        "c",
        {"key_shares": np.full((1, SHARE_BYTES), 255, dtype=np.uint8)},
        r"key_shares for client 6: share must be in \[0, 2\*\*521 - 1\)",
    ),
    (
        3,
        "c",
        {"key_shares": np.frombuffer(PRIME.to_bytes(SHARE_BYTES, "big"), np.uint8).reshape(1, -1)},
        r"key_shares for client 6: share must be in \[0, 2\*\*521 - 1\)",
    ),
    (
        2,
        "c",
        {"masked": np.array([0, 1, 2**K, 3, 4, 5, 2**K + 1], dtype=np.uint64)},
        rf"masked entries must be in \[0, 2\*\*{K}\), got {2**K} at index 2",
    ),
]


@pytest.mark.parametrize(("r", "side", "arrays", "match"), ARRAY_CASES)
def test_arrays_are_exact(r: int, side: str, arrays: dict[str, Any], match: str) -> None:
    data = _client(r) if side == "c" else _server(r)
    with pytest.raises(WireError, match=match):
        _decode_any(_tamper(data, arrays=arrays))


def test_boundary_values_are_accepted() -> None:
    """The largest share (p - 1) and masked entry (2^k - 1) pass; p and 2^k fail above."""
    top_share = _tamper(_client(3), arrays={"key_shares": _shares(PRIME - 1)})
    response = decode_client_message(top_share, P, sender=1)
    assert isinstance(response, UnmaskResponse)
    assert response.key_shares == {6: PRIME - 1}
    top_mask = np.full(L, 2**K - 1, dtype=np.uint64)
    masked = decode_client_message(_tamper(_client(2), arrays={"masked": top_mask}), P, sender=1)
    assert isinstance(masked, MaskedInput)
    assert np.array_equal(masked.masked, top_mask)


def test_sparse_graph_refuses_non_neighbours() -> None:
    graph = MaskingGraph.random(10, 4, np.random.default_rng(9))
    params = SecAggParams(10, 3, 2, K, round_id=1, graph=graph)
    holders = params.holders(1)
    stranger = min(set(range(2, 11)) - holders)
    ciphertexts = {v: bytes(SEALED_SHARE_BYTES) for v in [*sorted(holders - {1}), stranger]}
    message = ShareKeys(1, dict(sorted(ciphertexts.items())))
    with pytest.raises(PrivacyError, match=rf"must be among the other holders H\(1\).*{stranger}"):
        encode_secagg_message(message, params)
    honest = encode_secagg_message(
        ShareKeys(1, {v: bytes(SEALED_SHARE_BYTES) for v in holders - {1}}), params
    )
    forged = _tamper(
        honest,
        arrays={
            "recipients": _ids(*sorted(ciphertexts)),
            "ciphertexts": _rows(len(ciphertexts), SEALED_SHARE_BYTES),
        },
    )
    with pytest.raises(WireError, match=rf"recipients must be among .*got \[{stranger}\]"):
        decode_client_message(forged, params, sender=1)
    outsider = min(set(range(1, 11)) - params.holders(2))
    broadcast = KeysBroadcast(2, {outsider: (bytes(32), bytes(32))})
    with pytest.raises(PrivacyError, match=rf"ids must be among the holders H\(2\).*{outsider}"):
        encode_secagg_message(broadcast, params)


def test_truncated_and_padded_bytes() -> None:
    data = _client(2)
    for cut in (0, 3, 9, 40, len(data) - 1):
        with pytest.raises(WireError, match=r"truncated|must start with"):
            decode_client_message(data[:cut], P, sender=1)
    with pytest.raises(WireError, match="1 trailing bytes"):
        decode_client_message(data + b"\x00", P, sender=1)


def test_limits_follow_from_the_parameters() -> None:
    """Largest payload: max(68 h, 172 (h - 1), 8 L, 4 n, 70 h) for h = degree + 1 holders.

    68 = 4-byte id + two 32-byte keys; 172 = 4-byte id + 168-byte sealed share pair
    (12-byte nonce, 8 bytes of ids, two 66-byte shares, 16-byte tag); 70 = 4 + 66.
    """
    assert SEALED_SHARE_BYTES == 12 + 8 + 2 * 66 + 16
    # n = 6 complete (h = 6), L = 7: sealed shares dominate, 172 * 5 = 860.
    assert secagg_limits(P).max_message_bytes == 10 + 1024 + 860
    # A long vector dominates: 8 * 5000.
    assert secagg_limits(SecAggParams(3, 2, 5000, K)).max_message_bytes == 10 + 1024 + 40_000
    # SecAgg+ bounds by the degree, not n: n = 1000, k = 8 (h = 9), so 172 * 8 = 1376 < 4 n.
    sparse = SecAggParams(
        1000, 5, 1, K, graph=MaskingGraph.random(1000, 8, np.random.default_rng(0))
    )
    assert secagg_limits(sparse).max_message_bytes == 10 + 1024 + 4000
    limits = secagg_limits(P)
    assert (limits.max_arrays, limits.max_ndim, limits.max_meta_depth) == (4, 2, 1)
    # Every message of a run fits, with the header well under its cap.
    run = _transcript()
    for data in [d for rnd in run.client + run.server for d in rnd.values()]:
        assert len(data) <= limits.max_message_bytes
        assert struct.unpack_from("<I", data, 6)[0] <= 700


def test_oversized_messages_are_refused_before_allocation() -> None:
    limit = secagg_limits(P).max_message_bytes
    big = _tamper(_client(2), arrays={"masked": np.zeros(limit // 8, dtype=np.uint64)})
    with pytest.raises(WireError, match=f"above max_message_bytes={limit}"):
        decode_client_message(big, P, sender=1)
    # A header declaring 2^40 entries over a tiny payload is refused from the header alone.
    header = (
        b'{"kind":"secagg.masked_input","meta":{},"arrays":[{"name":"masked","dtype":"uint64",'
        b'"shape":[1099511627776],"offset":0,"nbytes":8796093022208}]}'
    )
    forged = b"PRVW\x01\x00" + struct.pack("<I", len(header)) + header + bytes(8)
    with pytest.raises(WireError, match="needs more than max_message_bytes"):
        decode_client_message(forged, P, sender=1)
    # A header above 1024 bytes (ours stay under 700) in a message under the byte cap.
    padded = _tamper(_client(2), meta={"protocol": PROTOCOL + " " * 1024})
    assert len(padded) < secagg_limits(P).max_message_bytes
    with pytest.raises(WireError, match="above max_header_bytes=1024"):
        decode_client_message(padded, P, sender=1)


# -- encoding refuses what would not decode ----------------------------------------------------

ENCODE_CASES: list[tuple[object, str]] = [
    (AdvertiseKeys(1, bytes(31), bytes(32)), "channel_public must be 32 bytes each"),
    (AdvertiseKeys(1, "k" * 32, bytes(32)), "channel_public must be 32 bytes each"),  # type: ignore[arg-type]
    (AdvertiseKeys(0, bytes(32), bytes(32)), r"sender must be a client id in 1..6, got 0"),
    (KeysBroadcast(7, {1: (bytes(32), bytes(32))}), r"recipient must be a client id in 1..6"),
    (KeysBroadcast(1, {1: bytes(64)}), r"public_keys values must be \(channel, mask\) pairs"),  # type: ignore[dict-item]
    (KeysBroadcast(1, {"1": (bytes(32), bytes(32))}), "public_keys must hold integer client ids"),  # type: ignore[dict-item]
    (ShareKeys(1, {2: bytes(10)}), f"ciphertexts must be {SEALED_SHARE_BYTES} bytes each"),
    (ShareKeys(1, {1: bytes(SEALED_SHARE_BYTES)}), r"must be among the other holders H\(1\)"),
    (SharesDelivery(2, {9: bytes(SEALED_SHARE_BYTES)}), r"senders must be ids in 1..6, got \[9\]"),
    (MaskedInput(1, np.zeros(L, dtype=np.int64)), "masked must be a uint64 numpy array"),
    (MaskedInput(1, np.zeros(L + 1, dtype=np.uint64)), rf"shape must be \({L},\)"),
    (MaskedInput(1, np.full(L, 2**K, dtype=np.uint64)), rf"entries must be in \[0, 2\*\*{K}\)"),
    (UnmaskRequest(frozenset({1, 2}), frozenset({2})), "survivors and dropped must be disjoint"),
    (UnmaskRequest(frozenset({0}), frozenset()), r"survivors must be ids in 1..6"),
    (UnmaskResponse(1, {1: PRIME}, {}), r"share must be in \[0, 2\*\*521 - 1\)"),
    (UnmaskResponse(1, {1: True}, {}), "self_mask_shares must be integers"),
    (UnmaskResponse(1, {2: 5}, {2: 6}), "self_mask_ids and key_ids must be disjoint"),
    ("AdvertiseKeys", "message must be one of the seven SecAgg messages, got str"),
]


@pytest.mark.parametrize(("message", "match"), ENCODE_CASES)
def test_encoding_refuses_what_would_not_decode(message: object, match: str) -> None:
    with pytest.raises(PrivacyError, match=match):
        encode_secagg_message(message, P)  # type: ignore[arg-type]


def test_parameters_that_cannot_travel() -> None:
    message = MaskedInput(1, np.zeros(1, dtype=np.uint64))
    with pytest.raises(PrivacyError, match="params must be SecAggParams, got dict"):
        encode_secagg_message(message, {})  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="params must be SecAggParams"):
        decode_client_message(_client(0), None, sender=1)  # type: ignore[arg-type]


# -- fuzzing: hostile bytes never crash a party -----------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, derandomize=True)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 10)
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from([PROTOCOL, "sender", "recipient"])
)
small_arrays = st.sampled_from(list(DTYPES)).flatmap(
    lambda name: hnp.arrays(
        np.dtype(name), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8)
    )
)


def _same_shape(array: np.ndarray) -> st.SearchStrategy[np.ndarray]:
    """Arrays that keep the layout (dtype and shape) but not the values."""
    if array.dtype == np.uint32:
        elements: st.SearchStrategy[int] = st.integers(0, 8) | st.integers(0, 2**32 - 1)
    elif array.dtype == np.uint64:
        elements = st.integers(0, 2**K + 2) | st.integers(0, 2**64 - 1)
    else:
        elements = st.integers(0, 255)
    return hnp.arrays(array.dtype, array.shape, elements=elements)


@st.composite
def structural(draw: st.DrawFn, valid: bytes) -> bytes:
    """A valid message with its kind, a meta field or an array replaced (still valid wire)."""
    message = decode_message(valid)
    kind = message.kind
    meta = dict(message.meta)
    arrays = dict(message.arrays)
    for _ in range(draw(st.integers(1, 2))):
        edit = draw(st.sampled_from(["kind", "meta", "array", "values", "values", "drop"]))
        if edit == "kind":
            kind = draw(st.sampled_from([*CLIENT_KINDS, *SERVER_KINDS, "secagg.other"]))
        elif edit == "meta":
            meta[draw(st.sampled_from([*sorted(meta), "extra"]))] = draw(json_scalars)
        elif edit == "array" and arrays:
            arrays[draw(st.sampled_from(sorted(arrays)))] = draw(small_arrays)
        elif edit == "values" and arrays:
            name = draw(st.sampled_from(sorted(arrays)))
            arrays[name] = draw(_same_shape(arrays[name]))
        elif edit == "drop" and arrays:
            del arrays[draw(st.sampled_from(sorted(arrays)))]
    return encode_message(kind, meta, arrays)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """Byte edits, aimed mostly at the header, where a flip reaches the codec's checks."""
    data = bytearray(valid)
    structure = 10 + struct.unpack_from("<I", data, 6)[0]
    regions = [(10, structure)] * 3 + [(structure, len(data))] * 2 + [(0, 10)]
    uniform = draw(st.randoms(use_true_random=False))
    for _ in range(draw(st.integers(1, 3))):
        low, high = draw(st.sampled_from(regions))
        high = min(high, len(data))
        if low >= high:
            continue
        at = uniform.randrange(low, high)
        edit = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        if edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


def hostile(valid: bytes) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, or ``valid`` as is, byte-mutated or structurally changed."""
    return st.binary(max_size=128) | st.just(valid) | mutated(valid) | structural(valid)


def _why(error: PrivacyError) -> str:
    """A short label of a refusal for hypothesis' statistics (the kind prefix dropped)."""
    words = str(error).split()
    return " ".join(words[1:4] if words[0].startswith("secagg.") else words[:3])


@st.composite
def server_attacks(draw: st.DrawFn) -> tuple[int, int, bytes]:
    """A round, a transport identity and bytes: mostly a spoiled message of that round
    claiming that identity, sometimes a message of another round or direction."""
    r = draw(st.integers(0, 3))
    run = _transcript()
    everything = [(u, data) for rnd in run.client + run.server for u, data in sorted(rnd.items())]
    this_round = sorted(run.client[r].items())
    origin, valid = draw(st.sampled_from(this_round) | st.sampled_from(everything))
    sender = draw(st.just(origin) | st.integers(1, 6))
    return r, sender, draw(hostile(valid))


@FUZZ
@given(server_attacks())
def test_fuzz_hostile_bytes_never_crash_the_server(attack: tuple[int, int, bytes]) -> None:
    """Decode + SecAggServer.receive raise PrivacyError only, whatever the bytes.

    The hostile bytes arrive from transport identity ``sender`` before the honest
    messages of round ``r``. If they are refused, the server's state is untouched
    and the honest run must finish with the plaintext sum; so must it if they
    decode to the sender's honest message (the honest copy is then the refused
    duplicate). If they are accepted as other data (e.g. a flipped ciphertext
    bit or masked value), the sender really sent other data and no sum can be
    promised: every later step must then succeed or raise PrivacyError.
    """
    r, sender, data = attack
    server = _server_at(r)
    try:
        message = decode_client_message(data, P, sender=sender)
        server.receive(message)
    except PrivacyError as error:
        event(f"refused by {type(error).__name__}: {_why(error)}")
        assert np.array_equal(_finish_from(server, r), _expected(INPUTS, U3))
        return
    honest = _transcript().client[r].get(sender)
    if honest is not None and _same(message, decode_client_message(honest, P, sender=sender)):
        event("accepted: the honest message")
        assert np.array_equal(_finish_from_tolerant(server, r), _expected(INPUTS, U3))
        return
    event(f"accepted: other data in {type(message).__name__}")
    try:
        result = _finish_from_tolerant(server, r)
    except PrivacyError as error:
        event(f"then refused by {type(error).__name__}: {_why(error)}")
        return
    assert result.dtype == np.uint64
    assert result.shape == (L,)


def _finish_from_tolerant(server: SecAggServer, r: int) -> np.ndarray:
    """The honest rest of the run, skipping client messages the server refuses."""
    for q in range(r, 4):
        for u, data in _transcript().client[q].items():
            with contextlib.suppress(PrivacyError):
                server.receive(decode_client_message(data, P, sender=u))
        result = _close(server, q)
    return np.asarray(result)


@st.composite
def client_attacks(draw: st.DrawFn) -> tuple[int, bytes]:
    """A round (1..3) and bytes: mostly a spoiled server message of that round for client 1."""
    r = draw(st.integers(1, 3))
    run = _transcript()
    everything = [data for rnd in run.client + run.server for data in rnd.values()]
    valid = draw(st.just(run.server[r][1]) | st.sampled_from(everything))
    return r, draw(hostile(valid))


def _client_at(r: int) -> SecAggClient:
    """Client 1 rebuilt from its seed and fed the honest server messages before round ``r``."""
    client = SecAggClient(P, 1, INPUTS[0], np.random.default_rng(301))
    client.advertise()
    steps: list[Callable[[Any], Any]] = [client.share_keys, client.masked_input, client.unmask]
    for q in range(1, r):
        steps[q - 1](decode_server_message(_server(q), P, recipient=1))
    return client


@FUZZ
@given(client_attacks())
def test_fuzz_hostile_bytes_never_crash_a_client(attack: tuple[int, bytes]) -> None:
    """decode_server_message + the client's step raise PrivacyError only.

    After a refusal the client's state is untouched: the honest message of the
    same round is then accepted.
    """
    r, data = attack
    client = _client_at(r)
    steps: list[Callable[[Any], Any]] = [client.share_keys, client.masked_input, client.unmask]
    try:
        steps[r - 1](decode_server_message(data, P, recipient=1))
        event("accepted")
    except PrivacyError as error:
        event(f"refused by {type(error).__name__}: {_why(error)}")
        reply = steps[r - 1](decode_server_message(_server(r), P, recipient=1))
        honest = decode_client_message(_client(r), P, sender=1)
        # The sealed shares carry fresh nonces; everything else is deterministic.
        if not isinstance(reply, ShareKeys):
            assert _same(reply, honest)
        else:
            assert set(reply.ciphertexts) == set(honest.ciphertexts)  # type: ignore[union-attr]


def test_a_flipped_ciphertext_bit_passes_the_codec() -> None:
    """The fuzz's accepted branch is reachable: the server cannot open sealed shares, so a
    flipped bit in one passes (the recipient's AES-GCM tag check refuses it later)."""
    data = bytearray(_client(1))
    data[-1] ^= 1  # the last byte of the last sealed share: still a valid ShareKeys
    server = _server_at(1)
    server.receive(decode_client_message(bytes(data), P, sender=1))
    refused = _tamper(_client(1), meta={"round_id": 8})
    with pytest.raises(WireError):
        decode_client_message(refused, P, sender=1)


def test_limits_object_is_a_wire_limits() -> None:
    assert isinstance(secagg_limits(P), Limits)
    assert {ADVERTISE_KEYS, SHARE_KEYS, MASKED_INPUT, UNMASK_RESPONSE} == set(CLIENT_KINDS)
    assert {KEYS_BROADCAST, SHARES_DELIVERY, UNMASK_REQUEST} == set(SERVER_KINDS)
