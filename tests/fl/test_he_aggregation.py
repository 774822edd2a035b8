"""Federated rounds through Paillier-encrypted aggregation (privet.fl.he_aggregation).

Reference: the plain engine (SequentialEngine) running the same strategy on the same
clients with the same seeds. The encrypted sum must reproduce it within the fixed-point
error derived in :func:`fixed_point_tolerance`; the DP wrappers as in the SecAgg tests;
distributed-DP noise against its target variance (chi-square, as for SecAgg).
Keys are 1024-bit test keys (``insecure_for_tests``), made once per module.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("gmpy2")

from shift_clients import ShiftClient

from privet.errors import PrivacyError
from privet.fl import (
    AdaptiveClippingDp,
    ClientSampling,
    FedAvg,
    FitInstructions,
    FixedClippingDp,
    Krum,
    Parameters,
)
from privet.fl.distributed_dp import DistributedDp
from privet.fl.engine import SequentialEngine, run_federated
from privet.fl.he_aggregation import (
    ClientRandomness,
    HeClient,
    InMemoryHeTransport,
    InMemoryKeyHolderChannel,
    KeyHolder,
    PaillierAggregation,
    PaillierAggregationEngine,
    signed_residues,
)
from privet.fl.he_messages import (
    HE_FIT,
    HE_KEY_REQUEST,
    HE_SUM,
    HeFitTask,
    PackedEncoding,
    decode_decrypted_sum,
    decode_he_fit_task,
    encode_decrypted_sum,
    encode_he_fit_task,
    encode_key_request,
    noise_encoding,
)
from privet.fl.strategy import SecureContribution
from privet.fl.types import Client
from privet.he import (
    MIN_TEST_BITS,
    decode_packed_array,
    decode_public_key,
    encode_packed_array,
    encrypt_packed,
)
from privet.he.codec import PACKED_ARRAY_KIND, PUBLIC_KEY_KIND
from privet.secagg import DistributedDiscreteGaussian
from privet.wire import WireError, decode_message

SIZE = 300  # 290 weights and 10 biases
DELTA = 1.0  # every client update coordinate is in [-DELTA, DELTA]


@pytest.fixture(scope="module")
def holder() -> KeyHolder:
    return KeyHolder.generate(MIN_TEST_BITS, insecure_for_tests=True)


@pytest.fixture(scope="module")
def stranger() -> KeyHolder:
    """Another key pair: what a ciphertext under the wrong key is made with."""
    return KeyHolder.generate(MIN_TEST_BITS, insecure_for_tests=True)


def initial(size: int = SIZE) -> Parameters:
    return Parameters({"w": np.zeros(size - 10), "b": np.zeros(10)})


def clients(
    n: int, seed: int = 0, failing: frozenset[int] = frozenset(), size: int = SIZE
) -> dict[str, ShiftClient]:
    rng = np.random.default_rng(seed)
    return {
        f"c{i}": ShiftClient(
            rng.uniform(-DELTA, DELTA, size), int(rng.integers(1, 50)), i in failing
        )
        for i in range(n)
    }


def config(max_clients: int, **kwargs: object) -> PaillierAggregation:
    return PaillierAggregation(max_clients, insecure_for_tests=True, **kwargs)  # type: ignore[arg-type]


def plain_run(
    strategy: object, members: Mapping[str, Client], rounds: int, size: int = SIZE
) -> Parameters:
    engine = SequentialEngine(members)
    history = run_federated(engine, strategy, initial(size), rounds, rng=np.random.default_rng(5))  # type: ignore[arg-type]
    return history.parameters


def he_engine(
    members: Mapping[str, Client], holder: KeyHolder, settings: PaillierAggregation
) -> PaillierAggregationEngine:
    return PaillierAggregationEngine.in_memory(
        members, holder, settings, rng=np.random.default_rng(7)
    )


def fixed_point_tolerance(clients: int, frac_bits: int, weight_sum: float, rounds: int) -> float:
    """Per-coordinate bound on |encrypted FedAvg - plain FedAvg| after ``rounds`` rounds.

    Each encoded value is ``round(x 2^f)``: off by at most ``e = 2^-(f+1)``. The sums of
    ``m`` clients are off by ``|e_S|, |e_W| <= m e``, so the mean update
    ``(S + e_S) / (W + e_W)`` is off from ``S / W`` by at most
    ``(|e_S| + |S/W| |e_W|) / (W - |e_W|) <= m e (1 + DELTA) / (W - m e)``, since
    ``|S/W| <= DELTA``. Client deltas do not depend on the model, so rounds add their
    errors; 1e-12 covers float64 rounding of both computations.
    """
    e = clients * 2.0 ** -(frac_bits + 1)
    return rounds * e * (1 + DELTA) / (weight_sum - e) + 1e-12


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
def test_encrypted_fedavg_matches_plain_fedavg(holder: KeyHolder, weighted: bool) -> None:
    members, rounds = clients(8), 3
    settings = config(8, bound=DELTA)
    expected = plain_run(FedAvg(weighted=weighted), members, rounds)
    engine = he_engine(members, holder, settings)
    history = run_federated(
        engine, FedAvg(weighted=weighted), initial(), rounds, rng=np.random.default_rng(5)
    )
    # The frac bits the engine chose: 32, plus the bits of max_weight when weighted.
    frac_bits = 32 + (settings.max_weight.bit_length() if weighted else 0)
    examples = [member.examples for member in members.values()]
    weight_sum = sum(min(k, settings.max_weight) / settings.max_weight for k in examples)
    tolerance = fixed_point_tolerance(8, frac_bits, weight_sum if weighted else 8.0, rounds)
    got = history.parameters.to_vector()
    assert np.max(np.abs(got - expected.to_vector())) <= tolerance
    assert np.max(np.abs(expected.to_vector())) > 0.1  # the model moved: not vacuous
    assert all(record.aborted is None for record in history.rounds)
    assert engine.last_round is not None
    assert engine.last_round.finished == 8


def test_fixed_point_error_shows_at_few_fractional_bits(holder: KeyHolder) -> None:
    """With 8 fractional bits the error is visible and still within the derived bound."""
    members = clients(4, seed=3)
    expected = plain_run(FedAvg(weighted=False), members, 1)
    engine = he_engine(members, holder, config(4, bound=DELTA, frac_bits=8))
    history = run_federated(
        engine, FedAvg(weighted=False), initial(), 1, rng=np.random.default_rng(5)
    )
    error = np.max(np.abs(history.parameters.to_vector() - expected.to_vector()))
    assert 1e-5 < error <= fixed_point_tolerance(4, 8, 4.0, 1)


def test_central_dp_wrappers_over_paillier_match_the_plain_wrappers(holder: KeyHolder) -> None:
    """Same seeds: the same Poisson samples, noise and clip trajectory; only the sum's route
    differs. The sum is off by at most m 2^-33 and is divided by the expected count."""
    members, rounds = clients(12, seed=4), 3

    def fixed() -> FixedClippingDp:
        return FixedClippingDp(
            FedAvg(ClientSampling(fraction_fit=1.0, min_fit_clients=1)),
            noise_multiplier=0.7,
            clip_norm=0.4,
            sampling_rate=0.8,
            population=12,
            rng=np.random.default_rng(42),
        )

    def adaptive() -> AdaptiveClippingDp:
        return AdaptiveClippingDp(
            FedAvg(ClientSampling(fraction_fit=1.0, min_fit_clients=1)),
            noise_multiplier=0.7,
            initial_clip_norm=3.0,
            sampling_rate=0.8,
            population=12,
            clipped_count_stddev=2.0,
            rng=np.random.default_rng(43),
        )

    tolerance = rounds * 12 * 2.0**-33 / (0.8 * 12) + 1e-12
    for make in (fixed, adaptive):
        plain, encrypted = make(), make()
        expected = plain_run(plain, members, rounds)
        engine = he_engine(members, holder, config(12))
        got = run_federated(engine, encrypted, initial(), rounds, rng=np.random.default_rng(5))
        assert np.max(np.abs(got.parameters.to_vector() - expected.to_vector())) <= tolerance
    # The adaptive bound moved (from 3.0) and moved identically: the unclipped counts agree.
    assert encrypted.clip_norm != pytest.approx(3.0)
    assert encrypted.clip_norm == pytest.approx(plain.clip_norm, rel=1e-12)


def ddg(n: int, size: int, z: float = 2.0, scale: float = 2.0**12) -> DistributedDiscreteGaussian:
    return DistributedDiscreteGaussian(
        l2_clip=1.0,
        scale=scale,
        noise_multiplier=z,
        dimension=size,
        num_clients=n,
        min_honest_clients=n // 2,
        modulus_bits=40,
    )


def test_distributed_dp_noise_of_the_mean_matches_its_target(holder: KeyHolder) -> None:
    """Zero updates: the model moves by noise only. Chi-square on the variance (fixed seed,
    two-sided, false-alarm rate 1e-3). The mean of n clients' noise has variance
    noise_variance(n) / n^2 per coordinate, and rounds add up (as for SecAgg)."""
    n, rounds, size = 10, 20, 12
    mechanism = ddg(n, size)
    members = {f"z{i}": ShiftClient(np.zeros(size), 5) for i in range(n)}
    engine = he_engine(members, holder, config(n))
    strategy = DistributedDp(FedAvg(weighted=False), mechanism)
    history = run_federated(engine, strategy, initial(size), rounds, rng=np.random.default_rng(1))
    total = history.parameters.to_vector()
    variance = rounds * mechanism.noise_variance(n) / n**2
    statistic = float(np.sum(total**2) / variance)
    assert stats.chi2.ppf(5e-4, size) < statistic < stats.chi2.ppf(1 - 5e-4, size)


def test_distributed_dp_carries_the_signal_and_needs_its_honest_clients(
    holder: KeyHolder,
) -> None:
    """Tiny noise (z = 1e-4, 2^20 levels per unit): the encrypted mean is the plain mean of
    the clipped updates up to noise (std sqrt(n / h) z / n = 2.4e-5 per coordinate) and
    rounding (below 2^-20): |error| < 1e-3 is 40 standard deviations."""
    n, size = 6, 12
    members = clients(n, seed=6, size=size)
    deltas = np.stack([m.delta for m in members.values()])
    norms = np.linalg.norm(deltas, axis=1, keepdims=True)
    expected = np.mean(deltas * np.minimum(1.0, 1.0 / norms), axis=0)
    strategy = DistributedDp(FedAvg(weighted=False), ddg(n, size, z=1e-4, scale=2.0**20))
    engine = he_engine(members, holder, config(n))
    history = run_federated(engine, strategy, initial(size), 1, rng=np.random.default_rng(1))
    np.testing.assert_allclose(history.parameters.to_vector(), expected, atol=1e-3)
    # Fewer finishers than min_honest_clients = 3: aborted before anything is decrypted.
    dropping = clients(n, seed=6, size=size, failing=frozenset({0, 1, 2, 3}))
    engine = he_engine(dropping, holder, config(n))
    strategy = DistributedDp(FedAvg(weighted=False), ddg(n, size, z=1e-4, scale=2.0**20))
    history = run_federated(engine, strategy, initial(size), 1, rng=np.random.default_rng(1))
    assert history.rounds[0].aborted is not None
    assert "needs at least 3" in history.rounds[0].aborted
    assert [c.recipient for c in engine.key_holder.log] == ["key_holder", "server"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("bits", [2, 17, 40, 63, 64])
def test_noise_encodings_are_read_as_signed_integers(bits: int) -> None:
    """The client's two's-complement reading of Z_{2^k} against Python's exact one."""
    rng = np.random.default_rng(bits)
    raw = rng.integers(0, 2**64 - 1, 64, dtype=np.uint64, endpoint=True)
    if bits < 64:
        raw &= np.uint64((1 << bits) - 1)
    raw[:4] = [0, (1 << (bits - 1)) - 1, 1 << (bits - 1), (1 << bits) - 1]  # the edges
    signed = signed_residues(raw, bits)
    naive = [int(v) - (1 << bits) if int(v) >= 1 << (bits - 1) else int(v) for v in raw]
    assert signed.dtype == np.int64
    assert signed.tolist() == naive


def test_the_server_sees_only_public_keys_ciphertexts_and_the_sum(holder: KeyHolder) -> None:
    members = clients(5, seed=8)
    engine = he_engine(members, holder, config(5, bound=DELTA))
    run_federated(engine, FedAvg(), initial(), 1, rng=np.random.default_rng(5))
    transport, channel = engine.transport, engine.key_holder
    assert isinstance(transport, InMemoryHeTransport)
    assert isinstance(channel, InMemoryKeyHolderChannel)
    crossings = transport.log + channel.log
    secret = holder._secret_key  # the test looks for the secret key's bytes everywhere
    prime = secret.p.to_bytes((secret.p.bit_length() + 7) // 8, "big")
    updates = [m.delta.tobytes() for m in members.values()]
    kinds: dict[tuple[str, str], set[str]] = {(c.sender, c.recipient): set() for c in crossings}
    for crossing in crossings:
        kind = decode_message(crossing.data).kind
        kinds[(crossing.sender, crossing.recipient)].add(kind)
        assert prime not in crossing.data
        if crossing.recipient == "server":
            assert not any(update[:64] in crossing.data for update in updates)
        if kind == PACKED_ARRAY_KIND:  # every ciphertext is under the key holder's key
            decode_packed_array(crossing.data, holder.public_key)
        if kind == HE_FIT:  # every task carries the key holder's key
            task = decode_he_fit_task(crossing.data, insecure_for_tests=True)
            assert task.public_key == holder.public_key
    to_server = {k for (_, recipient), ks in kinds.items() if recipient == "server" for k in ks}
    assert to_server == {PACKED_ARRAY_KIND, PUBLIC_KEY_KIND, HE_SUM}
    assert kinds[("server", "key_holder")] == {HE_KEY_REQUEST, PACKED_ARRAY_KIND}
    assert all(kinds[("server", name)] == {HE_FIT} for name in members)
    assert all(kinds[(name, "server")] == {PACKED_ARRAY_KIND} for name in members)


class LosingTransport(InMemoryHeTransport):
    """Loses the named clients' ciphertexts on the way to the server."""

    def __init__(self, members: Mapping[str, Client], holder: KeyHolder, lost: set[str]) -> None:
        super().__init__(
            members,
            key_fingerprint=holder.public_key.fingerprint,
            rng=np.random.default_rng(3),
            insecure_for_tests=True,
        )
        self.lost = lost

    def collect(self, tasks: Mapping[str, bytes]) -> dict[str, bytes]:
        replies = super().collect(tasks)
        return {name: data for name, data in replies.items() if name not in self.lost}


def test_dropped_clients_leave_the_sum_over_those_who_finished(holder: KeyHolder) -> None:
    members = clients(8, seed=1, failing=frozenset({2, 5}))
    lost = {"c6"}
    survivors = {k: v for k, v in members.items() if k not in {"c2", "c5", "c6"}}
    expected = plain_run(FedAvg(weighted=False), survivors, 2)
    settings = config(8, bound=DELTA)
    engine = PaillierAggregationEngine(
        LosingTransport(members, holder, lost),
        InMemoryKeyHolderChannel(holder),
        SequentialEngine(members),
        settings,
    )
    history = run_federated(
        engine, FedAvg(weighted=False), initial(), 2, rng=np.random.default_rng(5)
    )
    tolerance = fixed_point_tolerance(5, 32, 5.0, 2)
    assert np.max(np.abs(history.parameters.to_vector() - expected.to_vector())) <= tolerance
    assert [r.clients for r in history.rounds] == [5, 5]
    assert [r.failures for r in history.rounds] == [3, 3]
    assert engine.last_round is not None
    assert engine.last_round.finished == 5


def test_a_round_beyond_the_packing_headroom_is_refused_before_encrypting(
    holder: KeyHolder,
) -> None:
    members = clients(5)
    engine = he_engine(members, holder, config(4, bound=DELTA))  # headroom 2 bits: 4 sums
    with pytest.raises(PrivacyError, match=r"at most 2\^2 = 4 clients .* got 5 clients"):
        run_federated(engine, FedAvg(), initial(), 1, rng=np.random.default_rng(0))
    assert engine.transport.log == []  # type: ignore[attr-defined]
    assert config(4).headroom_bits == 2
    assert config(5).headroom_bits == 3


def test_a_value_beyond_the_bound_is_refused_never_wrapped(holder: KeyHolder) -> None:
    members = clients(4, seed=2)
    members["c1"] = ShiftClient(np.full(SIZE, 0.5 * DELTA) + np.eye(SIZE)[7] * 3, 10)
    task = HeFitTask(
        holder.public_key,
        initial(),
        FitInstructions(1),
        SecureContribution(),
        PackedEncoding(DELTA, 32, 2),
        10,
    )
    client = HeClient(members["c1"], insecure_for_tests=True)
    with pytest.raises(
        PrivacyError, match=r"within the declared bound \|x\| <= 1.0, got \|x\| = 3.5"
    ):
        client.respond(encode_he_fit_task(task))
    # In a round the client drops out and the others are averaged.
    expected = plain_run(FedAvg(weighted=False), {k: members[k] for k in ("c0", "c2", "c3")}, 1)
    engine = he_engine(members, holder, config(4, bound=DELTA))
    history = run_federated(
        engine, FedAvg(weighted=False), initial(), 1, rng=np.random.default_rng(5)
    )
    tolerance = fixed_point_tolerance(3, 32, 3.0, 1)
    assert np.max(np.abs(history.parameters.to_vector() - expected.to_vector())) <= tolerance
    assert history.rounds[0].clients == 3
    # Without a clip the bound must be declared.
    engine = he_engine(members, holder, config(4))
    with pytest.raises(PrivacyError, match="bound must be set in PaillierAggregation"):
        run_federated(engine, FedAvg(), initial(), 1, rng=np.random.default_rng(5))


def test_ciphertexts_under_another_key_are_refused(holder: KeyHolder, stranger: KeyHolder) -> None:
    alien = encrypt_packed(stranger.public_key, np.zeros(SIZE + 1), bound=1.0)
    with pytest.raises(PrivacyError, match=r"wrong key"):
        decode_packed_array(encode_packed_array(alien), holder.public_key)
    # The key holder refuses a sum under another key.
    with pytest.raises(PrivacyError, match=r"wrong key"):
        holder.handle(encode_packed_array(alien + alien))
    # A client that pinned the key holder's fingerprint refuses a task under another key.
    task = HeFitTask(
        stranger.public_key,
        initial(),
        FitInstructions(1),
        SecureContribution(),
        PackedEncoding(DELTA, 32, 2),
        10,
    )
    pinned = HeClient(
        clients(1)["c0"], key_fingerprint=holder.public_key.fingerprint, insecure_for_tests=True
    )
    with pytest.raises(PrivacyError, match=r"must be the key holder's .* nothing was encrypted"):
        pinned.respond(encode_he_fit_task(task))

    # In a round, a contribution under another key drops its sender.
    class AlienTransport(LosingTransport):
        def collect(self, tasks: Mapping[str, bytes]) -> dict[str, bytes]:
            replies = super().collect(tasks)
            replies["c0"] = encode_packed_array(alien)
            return replies

    members = clients(4, seed=9)
    expected = plain_run(FedAvg(weighted=False), {k: members[k] for k in ("c1", "c2", "c3")}, 1)
    engine = PaillierAggregationEngine(
        AlienTransport(members, holder, set()),
        InMemoryKeyHolderChannel(holder),
        SequentialEngine(members),
        config(4, bound=DELTA),
    )
    history = run_federated(
        engine, FedAvg(weighted=False), initial(), 1, rng=np.random.default_rng(5)
    )
    assert history.rounds[0].clients == 3
    tolerance = fixed_point_tolerance(3, 32, 3.0, 1)
    assert np.max(np.abs(history.parameters.to_vector() - expected.to_vector())) <= tolerance


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_corrupted_bytes_are_refused(holder: KeyHolder) -> None:
    key = holder.public_key
    contribution = encode_packed_array(encrypt_packed(key, np.zeros(SIZE + 1), bound=1.0))
    with pytest.raises(WireError, match="corrupted"):
        decode_packed_array(flip(contribution, len(contribution) - 5), key)
    with pytest.raises(WireError, match="corrupted"):
        holder.handle(flip(contribution, len(contribution) - 5))
    summed = encode_decrypted_sum(np.arange(4.0), 3, key.fingerprint)
    values, count = decode_decrypted_sum(summed, length=4, fingerprint=key.fingerprint)
    assert values.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert count == 3
    with pytest.raises(WireError, match=r"digest .* corrupted"):
        decode_decrypted_sum(flip(summed, len(summed) - 3), length=4, fingerprint=key.fingerprint)
    with pytest.raises(WireError, match=r"shape \(5,\)"):
        decode_decrypted_sum(summed, length=5, fingerprint=key.fingerprint)
    with pytest.raises(WireError, match="must be decrypted with the key"):
        decode_decrypted_sum(summed, length=4, fingerprint="0" * 64)
    task = encode_he_fit_task(
        HeFitTask(
            key, initial(), FitInstructions(1), SecureContribution(), PackedEncoding(1.0, 32, 2), 10
        )
    )
    with pytest.raises(WireError):
        decode_he_fit_task(flip(task, 30), insecure_for_tests=True)

    # In a round, a corrupted contribution drops its sender.
    class CorruptingTransport(LosingTransport):
        def collect(self, tasks: Mapping[str, bytes]) -> dict[str, bytes]:
            replies = super().collect(tasks)
            replies["c3"] = flip(replies["c3"], len(replies["c3"]) - 9)
            return replies

    members = clients(4, seed=10)
    engine = PaillierAggregationEngine(
        CorruptingTransport(members, holder, set()),
        InMemoryKeyHolderChannel(holder),
        SequentialEngine(members),
        config(4, bound=DELTA),
    )
    history = run_federated(engine, FedAvg(), initial(), 1, rng=np.random.default_rng(5))
    assert history.rounds[0].clients == 3


def test_the_key_holder_decrypts_only_sums_of_enough_fresh_contributions(
    holder: KeyHolder,
) -> None:
    key = holder.public_key
    one = encrypt_packed(key, np.full(SIZE, 0.25), bound=1.0, headroom_bits=2)
    with pytest.raises(PrivacyError, match="at least 2 contributions, got 1"):
        holder.handle(encode_packed_array(one))
    with pytest.raises(PrivacyError, match="a sum of fresh contributions"):
        holder.handle(encode_packed_array(one + one + np.full(SIZE, 0.5)))
    values, count = decode_decrypted_sum(
        holder.handle(encode_packed_array(one + one + one)),
        length=SIZE,
        fingerprint=key.fingerprint,
    )
    assert count == 3
    assert np.all(values == 0.75)
    strict = KeyHolder(holder._secret_key, min_contributions=4)
    with pytest.raises(PrivacyError, match="at least 4 contributions, got 3"):
        strict.handle(encode_packed_array(one + one + one))
    # The engine turns a refusal into an aborted round: the model stays as it was.
    members = clients(3, seed=11)
    engine = PaillierAggregationEngine.in_memory(
        members, strict, config(3, bound=DELTA), rng=np.random.default_rng(1)
    )
    history = run_federated(engine, FedAvg(), initial(), 1, rng=np.random.default_rng(5))
    assert "key holder refused to decrypt" in str(history.rounds[0].aborted)
    np.testing.assert_array_equal(history.parameters.to_vector(), initial().to_vector())
    # A round where a single client finishes is aborted before anything is decrypted.
    lonely = clients(3, seed=11, failing=frozenset({0, 1}))
    engine = he_engine(lonely, holder, config(3, bound=DELTA))
    history = run_federated(engine, FedAvg(), initial(), 1, rng=np.random.default_rng(5))
    assert "1 of 3 clients sent a valid encrypted contribution" in str(history.rounds[0].aborted)


def test_tasks_round_trip_through_the_wire(holder: KeyHolder) -> None:
    key = holder.public_key
    params = Parameters({"w": np.arange(6.0).reshape(2, 3), "b": np.ones(2)})
    ins = FitInstructions(3, proximal_mu=0.1, local_epochs=2, extra={"k": "v"})
    mechanism = ddg(4, params.size)
    for contribution, encoding in (
        (SecureContribution(l2_clip=0.5, report_unclipped=True), PackedEncoding(1.0, 32, 3)),
        (SecureContribution(weighted=True), PackedEncoding(2.5, 49, 3)),
        (
            SecureContribution(l2_clip=1.0, distributed_noise=mechanism),
            noise_encoding(mechanism, 3),
        ),
    ):
        task = HeFitTask(key, params, ins, contribution, encoding, 77)
        back = decode_he_fit_task(encode_he_fit_task(task), insecure_for_tests=True)
        assert back.public_key == key
        assert (back.instructions, back.contribution, back.encoding) == (
            ins,
            contribution,
            encoding,
        )
        assert back.max_weight == 77
        assert back.vector_length == task.vector_length
        np.testing.assert_array_equal(back.parameters.to_vector(), params.to_vector())
    with pytest.raises(WireError, match="1024 with insecure_for_tests=True"):
        decode_he_fit_task(encode_he_fit_task(task))
    wrong = HeFitTask(
        key,
        params,
        ins,
        SecureContribution(l2_clip=1.0, distributed_noise=mechanism),
        PackedEncoding(1.0, 32, 3),
        77,
    )
    with pytest.raises(PrivacyError, match="distributed-noise encoding must be integers"):
        encode_he_fit_task(wrong)
    too_wide = HeFitTask(key, params, ins, SecureContribution(), PackedEncoding(1.0, 1020, 3), 7)
    with pytest.raises(PrivacyError, match="slot_bits must be at most 1023"):
        encode_he_fit_task(too_wide)
    assert decode_public_key(holder.handle(encode_key_request()), insecure_for_tests=True) == key


def test_naive_randomness_gives_the_same_model(holder: KeyHolder) -> None:
    members = clients(3, seed=12)
    settings = config(3, bound=DELTA)
    models = []
    for randomness in ClientRandomness:
        engine = PaillierAggregationEngine.in_memory(
            members, holder, settings, randomness=randomness, rng=np.random.default_rng(2)
        )
        history = run_federated(engine, FedAvg(), initial(), 1, rng=np.random.default_rng(5))
        models.append(history.parameters.to_vector())
    # Randomness changes the ciphertexts, never the decrypted sum.
    np.testing.assert_array_equal(models[0], models[1])


def test_bad_configuration(holder: KeyHolder) -> None:
    with pytest.raises(PrivacyError, match="max_clients must be an integer >= 2, got 1"):
        PaillierAggregation(1)
    with pytest.raises(PrivacyError, match=r"min_clients must be in \[2, max_clients=3\], got 4"):
        PaillierAggregation(3, min_clients=4)
    with pytest.raises(PrivacyError, match="bound must be None or a finite number > 0, got -1"):
        PaillierAggregation(3, bound=-1.0)
    with pytest.raises(PrivacyError, match=r"frac_bits must be in \[0, 1024\], got -1"):
        PaillierAggregation(3, frac_bits=-1)
    with pytest.raises(PrivacyError, match="max_weight must be an integer >= 1, got 0"):
        PaillierAggregation(3, max_weight=0)
    with pytest.raises(PrivacyError, match="min_contributions must be an integer >= 2, got 1"):
        KeyHolder(holder._secret_key, min_contributions=1)
    members = clients(3)
    with pytest.raises(PrivacyError, match="got the KeyHolder itself"):
        PaillierAggregationEngine(
            InMemoryHeTransport(members),
            holder,  # type: ignore[arg-type]
            SequentialEngine(members),
            config(3),
        )
    with pytest.raises(PrivacyError, match="transport must implement HeTransport"):
        PaillierAggregationEngine(
            object(),  # type: ignore[arg-type]
            InMemoryKeyHolderChannel(holder),
            SequentialEngine(members),
            config(3),
        )
    engine = he_engine(members, holder, config(3, bound=DELTA))
    with pytest.raises(PrivacyError, match="Krum needs individual client updates"):
        run_federated(engine, Krum(num_byzantine=1), initial(), 1, rng=np.random.default_rng(0))
    with pytest.raises(PrivacyError, match="never returns individual client results"):
        engine.fit(initial(), [("c0", FitInstructions(1))])
    assert "secret key withheld" in repr(holder)
    assert str(holder._secret_key.p) not in repr(holder)
