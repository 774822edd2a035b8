"""The four-round SecAgg protocol (Bonawitz et al., CCS 2017, Fig. 4) driven in memory.

The expected sums are plaintext sums modulo ``2^k`` of the inputs of the clients in
``U3`` (those whose masked input reached the server), computed directly with numpy.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from privet.errors import PrivacyError
from privet.secagg import (
    AbortedRound,
    AdvertiseKeys,
    KeysBroadcast,
    MaskedInput,
    ProtocolViolation,
    SecAggClient,
    SecAggParams,
    SecAggServer,
    ShareKeys,
    SharesDelivery,
    UnmaskRequest,
    remove_masks,
    run_protocol,
    simulate,
)
from privet.secagg.crypto import KeyPair, KeyPurpose, agree, agreement_info
from privet.secagg.masking import expand_mask

K = 32
L = 10


def _inputs(n: int, seed: int, length: int = L) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 2**K, size=length, dtype=np.uint64) for _ in range(n)]


def _expected(inputs: list[np.ndarray], ids: set[int]) -> np.ndarray:
    total = np.zeros(inputs[0].size, dtype=np.uint64)
    for i in sorted(ids):
        total += inputs[i - 1]
    return total & np.uint64(2**K - 1)


def _threshold(n: int) -> int:
    return n // 2 + 1


CASES = [(n, 0.0, 1) for n in (3, 10, 50)] + [
    (n, fraction, round_) for n in (3, 10, 50) for fraction in (0.1, 0.3) for round_ in (1, 2, 3)
]


@pytest.mark.parametrize(("n", "fraction", "round_"), CASES)
def test_sum_is_exact_with_dropouts(n: int, fraction: float, round_: int) -> None:
    inputs = _inputs(n, seed=n)
    count = math.ceil(fraction * n)
    dropped = set(range(n - count + 1, n + 1))
    result = simulate(inputs, _threshold(n), K, {round_: dropped}, np.random.default_rng(1))
    # Dropping in round 3 is after the masked input: those inputs still count.
    survivors = set(range(1, n + 1)) - (dropped if round_ < 3 else set())
    np.testing.assert_array_equal(result, _expected(inputs, survivors))


def test_sum_is_exact_for_100_clients() -> None:
    n = 100
    inputs = _inputs(n, seed=7)
    dropped = set(range(1, 11))
    result = simulate(inputs, _threshold(n), K, {2: dropped}, np.random.default_rng(2))
    np.testing.assert_array_equal(result, _expected(inputs, set(range(11, n + 1))))


@pytest.mark.parametrize("round_", [0, 1, 2, 3])
def test_too_few_survivors_abort_without_reconstruction(round_: int) -> None:
    n = 5
    params = SecAggParams(n, 3, L, K)
    server = SecAggServer(params)
    clients = [
        SecAggClient(params, i, x, np.random.default_rng(i))
        for i, x in enumerate(_inputs(n, 3), start=1)
    ]
    with pytest.raises(AbortedRound, match="must hold at least t = 3"):
        run_protocol(server, clients, {round_: {1, 2, 3}})
    assert server.aborted
    assert server.result is None
    assert server.recovered_self_seeds == {}
    assert server.recovered_mask_keys == {}


def _setup(n: int = 4, t: int = 3) -> tuple[SecAggServer, list[SecAggClient], list[np.ndarray]]:
    params = SecAggParams(n, t, L, K)
    inputs = _inputs(n, 11)
    clients = [
        SecAggClient(params, i, x, np.random.default_rng(100 + i))
        for i, x in enumerate(inputs, start=1)
    ]
    return SecAggServer(params), clients, inputs


def _to_round3(server: SecAggServer, clients: list[SecAggClient], drop2: set[int]) -> UnmaskRequest:
    for c in clients:
        server.receive(c.advertise())
    broadcasts = server.broadcast_keys()
    for c in clients:
        server.receive(c.share_keys(broadcasts[c.client_id]))
    deliveries = server.deliver_shares()
    for c in clients:
        if c.client_id not in drop2:
            server.receive(c.masked_input(deliveries[c.client_id]))
    request = server.request_unmask()
    return request


def test_client_refuses_to_reveal_both_shares_of_one_peer() -> None:
    server, clients, _ = _setup()
    request = _to_round3(server, clients, drop2={4})
    evil = UnmaskRequest(frozenset({1, 2, 3, 4}), frozenset({4}))
    with pytest.raises(ProtocolViolation, match=r"must not ask for both .* got both for \[4\]"):
        clients[0].unmask(evil)
    # Refusal changed nothing: the honest request is still answered.
    response = clients[0].unmask(request)
    assert set(response.self_mask_shares) == {1, 2, 3}
    assert set(response.key_shares) == {4}
    with pytest.raises(ProtocolViolation, match="must arrive in stage UNMASK"):
        clients[0].unmask(request)


def test_client_refuses_too_small_or_wrong_u3() -> None:
    server, clients, _ = _setup()
    _to_round3(server, clients, drop2=set())
    with pytest.raises(AbortedRound, match="holders in U3 must number at least t = 3, got 2"):
        clients[0].unmask(UnmaskRequest(frozenset({1, 2}), frozenset({3, 4})))
    with pytest.raises(ProtocolViolation, match="must partition this client's holders in U2"):
        clients[0].unmask(UnmaskRequest(frozenset({1, 2, 3}), frozenset()))


def test_masked_inputs_look_uniform_while_inputs_do_not() -> None:
    """Chi-square on the low byte, 256 bins; seeds 5 and 6; alpha = 1e-3 (false alarm 0.1%)."""
    n, length = 10, 512
    params = SecAggParams(n, 6, length, K)
    constant = [np.full(length, 12345, dtype=np.uint64) for _ in range(n)]
    clients = [
        SecAggClient(params, i, x, np.random.default_rng(5 + i))
        for i, x in enumerate(constant, start=1)
    ]
    server = SecAggServer(params)
    run_protocol(server, clients, {2: {10}})
    low = np.concatenate([y & np.uint64(255) for y in server.masked_inputs.values()])
    counts = np.bincount(low.astype(np.int64), minlength=256)
    assert stats.chisquare(counts).pvalue > 1e-3
    raw = np.concatenate(constant) & np.uint64(255)
    raw_counts = np.bincount(raw.astype(np.int64), minlength=256)
    assert stats.chisquare(raw_counts).pvalue < 1e-3


def test_bad_messages_are_rejected_and_protocol_completes() -> None:
    server, clients, inputs = _setup()
    first = clients[0].advertise()
    server.receive(first)
    with pytest.raises(ProtocolViolation, match="duplicate from 1"):
        server.receive(first)
    with pytest.raises(ProtocolViolation, match=r"sender must be in .*got 9"):
        server.receive(AdvertiseKeys(9, bytes(32), bytes(range(32))))
    with pytest.raises(ProtocolViolation, match="must be 32 bytes each"):
        server.receive(AdvertiseKeys(2, bytes(3), bytes(32)))
    with pytest.raises(ProtocolViolation, match="must arrive in stage SHARE"):
        server.receive(ShareKeys(1, {}))
    for c in clients[1:]:
        server.receive(c.advertise())
    broadcasts = server.broadcast_keys()
    assert all(isinstance(b, KeysBroadcast) for b in broadcasts.values())
    with pytest.raises(ProtocolViolation, match="must arrive in stage ADVERTISE"):
        server.receive(first)
    with pytest.raises(ProtocolViolation, match="this client's KeysBroadcast"):
        clients[0].share_keys(broadcasts[2])
    share_messages = [c.share_keys(broadcasts[c.client_id]) for c in clients]
    with pytest.raises(ProtocolViolation, match="must be addressed to"):
        server.receive(ShareKeys(1, {2: b"x"}))
    for m in share_messages:
        server.receive(m)
    with pytest.raises(ProtocolViolation, match="duplicate from 2"):
        server.receive(share_messages[1])
    deliveries = server.deliver_shares()
    # A ciphertext with one flipped byte, or one from 2 presented as from 3, fails to open.
    honest = deliveries[1]
    blob = bytearray(honest.ciphertexts[2])
    blob[20] ^= 1
    tampered = SharesDelivery(1, {**honest.ciphertexts, 2: bytes(blob)})
    with pytest.raises(ProtocolViolation, match="shares from client 2 must decrypt"):
        clients[0].masked_input(tampered)
    swapped = SharesDelivery(1, {**honest.ciphertexts, 2: honest.ciphertexts[3]})
    with pytest.raises(ProtocolViolation, match="must decrypt"):
        clients[0].masked_input(swapped)
    with pytest.raises(ProtocolViolation, match="this client's SharesDelivery"):
        clients[0].masked_input(deliveries[2])
    with pytest.raises(ProtocolViolation, match="uint64 vector of length 10"):
        server.receive(MaskedInput(1, np.zeros(3, dtype=np.uint64)))
    for c in clients:
        server.receive(c.masked_input(deliveries[c.client_id]))
    request = server.request_unmask()
    responses = [c.unmask(request) for c in clients]
    bad = dataclasses.replace(responses[0], key_shares={2: 1})
    with pytest.raises(ProtocolViolation, match="must hold self-mask shares"):
        server.receive(bad)
    for r in responses:
        server.receive(r)
    with pytest.raises(ProtocolViolation, match="duplicate from 1"):
        server.receive(responses[0])
    result = server.finish()
    np.testing.assert_array_equal(result, _expected(inputs, {1, 2, 3, 4}))


def _replayed_secrets(seed: int) -> tuple[KeyPair, bytes]:
    """A seeded client's mask key pair and self-mask seed, replayed from its documented draws."""
    rng = np.random.default_rng(seed)
    rng.bytes(32)  # the channel key
    return KeyPair.from_private_bytes(rng.bytes(32)), rng.bytes(32)


def test_mask_removal_matches_naive_per_pair_recomputation() -> None:
    server, clients, inputs = _setup(n=6, t=4)
    request = _to_round3(server, clients, drop2={2, 5})
    for c in clients:
        if c.client_id in request.survivors:
            server.receive(c.unmask(request))
    result = server.finish()
    survivors, dropped = sorted(request.survivors), sorted(request.dropped)
    secrets = {u: _replayed_secrets(100 + u) for u in range(1, 7)}
    # Naive: each surviving pair's masks cancel; re-derive from the clients' own secrets.
    naive = np.zeros(L, dtype=np.uint64)
    for u in survivors:
        naive += expand_mask(secrets[u][1], L, K)
        for v in dropped:
            seed = agree(
                secrets[u][0],
                secrets[v][0].public_bytes,
                info=agreement_info(KeyPurpose.MASK, 0, u, v),
            )
            mask = expand_mask(seed, L, K)
            naive = naive + mask if u < v else naive - mask
    naive &= np.uint64(2**K - 1)
    masked_sum = np.zeros(L, dtype=np.uint64)
    for y in server.masked_inputs.values():
        masked_sum += y
    masked_sum &= np.uint64(2**K - 1)
    removal = (masked_sum - result) & np.uint64(2**K - 1)
    np.testing.assert_array_equal(removal, naive)
    np.testing.assert_array_equal(result, _expected(inputs, set(survivors)))
    assert set(server.recovered_mask_keys) == set(dropped)
    for v in dropped:
        assert server.recovered_mask_keys[v] == secrets[v][0].private_bytes()
    pair = {v: {u: bytes(32)} for v in [3] for u in [1]}
    zero = remove_masks(expand_mask(bytes(32), L, K), {}, pair, K)
    np.testing.assert_array_equal(zero, np.zeros(L, dtype=np.uint64))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_clients": 1, "threshold": 1}, r"num_clients must be in \[2, 4294967295\], got 1"),
        ({"num_clients": 4, "threshold": 2}, r"threshold must be in \(2.0, 4\] and >= 2 for 4"),
        ({"num_clients": 4, "threshold": 5}, "threshold must be in"),
        ({"vector_length": 0}, "vector_length must be >= 1, got 0"),
        ({"modulus_bits": 65}, r"modulus_bits must be in \[1, 64\], got 65"),
        ({"round_id": -1}, r"round_id must be in \[0, 9223372036854775807\], got -1"),
        ({"round_id": 2**63}, "round_id must be in"),
        ({"threshold": True}, "threshold must be an integer, got True"),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "num_clients": 4,
        "threshold": 3,
        "vector_length": L,
        "modulus_bits": K,
    }
    with pytest.raises(PrivacyError, match=message):
        SecAggParams(**{**base, **kwargs})  # type: ignore[arg-type]


def test_bad_client_inputs() -> None:
    params = SecAggParams(4, 3, L, 8)
    with pytest.raises(PrivacyError, match=r"client_id must be in 1\.\.4, got 5"):
        SecAggClient(params, 5, np.zeros(L, dtype=np.uint64))
    with pytest.raises(PrivacyError, match=r"values must have shape \(10,\), got \(3,\)"):
        SecAggClient(params, 1, np.zeros(3, dtype=np.uint64))
    with pytest.raises(PrivacyError, match=r"values must be in \[0, 2\*\*8\), got maximum 256"):
        SecAggClient(params, 1, np.full(L, 256, dtype=np.uint64))
    with pytest.raises(PrivacyError, match="inputs must hold at least 2 vectors, got 1"):
        simulate([np.zeros(L, dtype=np.uint64)], 2, K)


def test_server_rounds_end_in_order_only() -> None:
    server, clients, _ = _setup()
    for call in (server.deliver_shares, server.request_unmask, server.finish):
        with pytest.raises(
            ProtocolViolation, match=r"must arrive in stage .* got it in stage ADVERTISE"
        ):
            call()
    for c in clients:
        server.receive(c.advertise())
    server.broadcast_keys()
    with pytest.raises(ProtocolViolation, match="broadcast_keys must arrive in stage ADVERTISE"):
        server.broadcast_keys()
