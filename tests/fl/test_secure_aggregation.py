"""Federated rounds through secure aggregation (SecAgg / SecAgg+) and distributed DP.

References: the plain-engine result of the same strategy on the same clients (the
secure sum must reproduce it up to quantization, atol 1e-9 with 62-bit encodings),
and dp-accounting's RdpAccountant for the distributed-DP ledger.
"""

from __future__ import annotations

import dp_accounting
import numpy as np
import pytest
from scipy import stats
from shift_clients import ShiftClient

from privet.dp import Ledger
from privet.errors import PrivacyError
from privet.fl import (
    AdaptiveClippingDp,
    ClientSampling,
    FedAdam,
    FedAvg,
    FedMedian,
    FitInstructions,
    FixedClippingDp,
    Krum,
    Parameters,
)
from privet.fl.distributed_dp import DistributedDp
from privet.fl.engine import SequentialEngine, run_federated
from privet.fl.secure_client import SecureFitTask, contribution_vector
from privet.fl.secure_engine import (
    InMemorySecureTransport,
    MaskingMode,
    SecAggEngine,
    SecureAggregation,
)
from privet.fl.strategy import SecureContribution
from privet.fl.types import Client
from privet.secagg import DistributedDiscreteGaussian

SIZE = 6


def initial() -> Parameters:
    return Parameters({"w": np.zeros(4), "b": np.zeros(2)})


def clients(n: int, seed: int = 0, failing: frozenset[int] = frozenset()) -> dict[str, Client]:
    rng = np.random.default_rng(seed)
    return {
        f"c{i}": ShiftClient(rng.normal(0, 0.5, SIZE), int(rng.integers(1, 50)), i in failing)
        for i in range(n)
    }


def plain_run(strategy: object, members: dict[str, Client], rounds: int = 2) -> Parameters:
    engine = SequentialEngine(members)
    history = run_federated(engine, strategy, initial(), rounds, rng=np.random.default_rng(5))  # type: ignore[arg-type]
    return history.parameters


def secure_run(
    strategy: object,
    members: dict[str, Client],
    config: SecureAggregation,
    rounds: int = 2,
) -> tuple[Parameters, SecAggEngine]:
    engine = SecAggEngine.in_memory(members, config, rng=np.random.default_rng(7))
    history = run_federated(engine, strategy, initial(), rounds, rng=np.random.default_rng(5))  # type: ignore[arg-type]
    return history.parameters, engine


MODES = [MaskingMode.SECAGG, MaskingMode.SECAGG_PLUS]


@pytest.mark.parametrize("mode", MODES, ids=["secagg", "secagg+"])
@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
def test_secure_fedavg_matches_plain_fedavg(mode: MaskingMode, weighted: bool) -> None:
    members = clients(30)
    expected = plain_run(FedAvg(weighted=weighted), members)
    got, engine = secure_run(FedAvg(weighted=weighted), members, SecureAggregation(mode=mode))
    np.testing.assert_allclose(got.to_vector(), expected.to_vector(), atol=1e-9)
    # The server held one masked vector per client and nothing else.
    assert len(engine.last_masked_inputs) == 30


def test_failing_clients_drop_out_and_the_rest_is_averaged() -> None:
    members = clients(12, failing=frozenset({2, 7}))
    survivors = {k: v for k, v in members.items() if k not in {"c2", "c7"}}
    expected = plain_run(FedAvg(), survivors)
    got, _ = secure_run(FedAvg(), members, SecureAggregation(dropout_fraction=0.2))
    np.testing.assert_allclose(got.to_vector(), expected.to_vector(), atol=1e-9)


class DroppingTransport(InMemorySecureTransport):
    """Loses the named clients' answers from protocol round ``at`` (1..3) on."""

    def __init__(self, members: dict[str, Client], lost: set[str], at: int) -> None:
        super().__init__(members, np.random.default_rng(3))
        self.lost, self.at, self.calls = lost, at, 0

    def start(self, tasks: dict[str, SecureFitTask]) -> dict[str, bytes]:  # type: ignore[override]
        self.calls = 0
        return super().start(tasks)

    def exchange(self, messages: dict[str, bytes]) -> dict[str, bytes]:  # type: ignore[override]
        self.calls += 1
        replies = super().exchange(messages)
        if self.calls >= self.at:
            replies = {k: v for k, v in replies.items() if k not in self.lost}
        return replies


@pytest.mark.parametrize("mode", MODES, ids=["secagg", "secagg+"])
@pytest.mark.parametrize("at", [1, 2, 3])
def test_dropouts_mid_protocol(mode: MaskingMode, at: int) -> None:
    members = clients(20, seed=1)
    lost = {"c3", "c11"}
    config = SecureAggregation(mode=mode, dropout_fraction=0.2)
    engine = SecAggEngine(
        DroppingTransport(members, lost, at),
        SequentialEngine(members),
        config,
        np.random.default_rng(2),
    )
    history = run_federated(engine, FedAvg(), initial(), 1, rng=np.random.default_rng(5))
    # Lost before their masked input (exchange 1 or 2): out of the sum. Lost at unmasking
    # (exchange 3): their masked inputs are in, and the others' shares recover their masks.
    in_sum = members if at == 3 else {k: v for k, v in members.items() if k not in lost}
    expected = plain_run(FedAvg(), in_sum, rounds=1)
    np.testing.assert_allclose(history.parameters.to_vector(), expected.to_vector(), atol=1e-9)
    assert history.rounds[0].clients == len(in_sum)


def test_too_many_dropouts_abort_the_round_and_keep_the_model() -> None:
    members = clients(6, seed=2, failing=frozenset({0, 1, 2, 3}))
    engine = SecAggEngine.in_memory(members, SecureAggregation(mode=MaskingMode.SECAGG))
    history = run_federated(engine, FedAvg(), initial(), 1, rng=np.random.default_rng(0))
    assert history.rounds[0].aborted is not None
    assert "secure aggregation aborted" in history.rounds[0].aborted
    np.testing.assert_array_equal(history.parameters.to_vector(), initial().to_vector())


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (Krum(num_byzantine=1), "Krum needs individual client updates"),
        (FedMedian(), "FedMedian needs individual client updates"),
        (FedAdam(), "FedAdam cannot aggregate a secure sum"),
    ],
    ids=["krum", "median", "fedadam"],
)
def test_strategies_that_need_individual_updates_are_refused(
    strategy: object, message: str
) -> None:
    engine = SecAggEngine.in_memory(clients(5))
    with pytest.raises(PrivacyError, match=message):
        run_federated(engine, strategy, initial(), 1, rng=np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="never returns individual client results"):
        engine.fit(initial(), [("c0", FitInstructions(1))])


def test_central_dp_over_secure_aggregation_matches_the_plain_wrapper() -> None:
    """Same seeds: the same Poisson sample and noise; only the sum's route differs."""
    members = clients(25, seed=4)

    def wrapper() -> FixedClippingDp:
        return FixedClippingDp(
            FedAvg(ClientSampling(fraction_fit=1.0, min_fit_clients=1)),
            noise_multiplier=0.7,
            clip_norm=0.4,
            sampling_rate=0.8,
            population=25,
            rng=np.random.default_rng(42),
        )

    expected = plain_run(wrapper(), members, rounds=3)
    got, _ = secure_run(wrapper(), members, SecureAggregation(), rounds=3)
    np.testing.assert_allclose(got.to_vector(), expected.to_vector(), atol=1e-9)


def test_adaptive_clipping_over_secure_aggregation_matches_the_plain_wrapper() -> None:
    """The unclipped count rides in the secure sum as one more coordinate (Andrew et al.
    2021's b_k, added before masking): same seeds give the same clip-norm trajectory and
    model as the plain wrapper, which sees every norm."""
    members = clients(25, seed=5)

    def wrapper() -> AdaptiveClippingDp:
        return AdaptiveClippingDp(
            FedAvg(ClientSampling(fraction_fit=1.0, min_fit_clients=1)),
            noise_multiplier=0.7,
            initial_clip_norm=0.3,
            sampling_rate=0.8,
            population=25,
            clipped_count_stddev=2.0,
            rng=np.random.default_rng(43),
        )

    plain, secure = wrapper(), wrapper()
    expected = plain_run(plain, members, rounds=3)
    got, _ = secure_run(secure, members, SecureAggregation(), rounds=3)
    np.testing.assert_allclose(got.to_vector(), expected.to_vector(), atol=1e-9)
    # The bound moved (the test would pass vacuously if it stayed put) and moved identically.
    assert secure.clip_norm != 0.3
    assert secure.clip_norm == pytest.approx(plain.clip_norm, rel=1e-12)


def test_the_unclipped_bit_is_the_last_coordinate_of_a_contribution() -> None:
    global_parameters = initial()
    trained = global_parameters.from_vector(global_parameters.to_vector() + 0.1)
    norm = 0.1 * np.sqrt(global_parameters.size)
    for bound, bit in ((norm * 1.01, 1.0), (norm * 0.99, 0.0)):
        contribution = SecureContribution(l2_clip=bound, report_unclipped=True)
        vector = contribution_vector(trained, global_parameters, 7, contribution, 10)
        assert vector.size == global_parameters.size + 2
        assert vector[-2:].tolist() == [1.0, bit]
        assert np.linalg.norm(vector[:-2]) <= bound * (1 + 1e-12)
    with pytest.raises(PrivacyError, match="report_unclipped must be False unless l2_clip"):
        SecureContribution(report_unclipped=True)


def mechanism(n: int, z: float = 1.0) -> DistributedDiscreteGaussian:
    return DistributedDiscreteGaussian(
        l2_clip=1.0,
        scale=2.0**12,
        noise_multiplier=z,
        dimension=SIZE,
        num_clients=n,
        min_honest_clients=n // 2,
        modulus_bits=40,
    )


def test_distributed_dp_charges_each_round_before_noise_as_dp_accounting_composes() -> None:
    n, rounds = 12, 3
    ledger = Ledger(100.0, 1e-5, accountant="rdp")
    strategy = DistributedDp(FedAvg(weighted=False), mechanism(n), ledger=ledger)
    config = SecureAggregation(mode=MaskingMode.SECAGG, dropout_fraction=0.1)
    secure_run(strategy, clients(n), config, rounds=rounds)
    assert len(ledger.history()) == rounds
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(mechanism(n).event, rounds)
    assert ledger.spent() == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-9)


def test_distributed_dp_noise_of_the_mean_matches_its_target() -> None:
    """Zero updates: the model moves by noise only. Chi-square on the variance (fixed seed,
    two-sided, false-alarm rate 1e-3). The mean of n clients' noise has variance
    noise_variance(n) / n^2 per coordinate, and rounds add up."""
    n, rounds = 10, 40
    mech = mechanism(n, z=2.0)
    members = {f"z{i}": ShiftClient(np.zeros(SIZE), 5) for i in range(n)}
    strategy = DistributedDp(FedAvg(weighted=False), mech)
    engine = SecAggEngine.in_memory(
        members, SecureAggregation(mode=MaskingMode.SECAGG), rng=np.random.default_rng(8)
    )
    history = run_federated(engine, strategy, initial(), rounds, rng=np.random.default_rng(1))
    # The model after all rounds is the sum of every round's noisy mean of zero updates.
    total = history.parameters.to_vector() - initial().to_vector()
    variance = rounds * mech.noise_variance(n) / n**2
    statistic = float(np.sum(total**2) / variance)
    df = total.size
    assert stats.chi2.ppf(5e-4, df) < statistic < stats.chi2.ppf(1 - 5e-4, df)


def test_distributed_dp_refuses_what_would_break_its_guarantee() -> None:
    with pytest.raises(PrivacyError, match="must be unweighted"):
        DistributedDp(FedAvg(), mechanism(8))
    with pytest.raises(PrivacyError, match="must aggregate a secure sum"):
        DistributedDp(Krum(num_byzantine=1), mechanism(8))  # type: ignore[arg-type]
    plain = SequentialEngine(clients(8))
    strategy = DistributedDp(FedAvg(weighted=False), mechanism(8))
    with pytest.raises(PrivacyError, match="needs a secure-aggregation engine"):
        run_federated(plain, strategy, initial(), 1, rng=np.random.default_rng(0))


def test_server_view_is_uniform_while_the_updates_are_not() -> None:
    """Chi-square of the masked vectors' low bytes against uniform (alpha 1e-3)."""
    n = 16
    members = {f"k{i}": ShiftClient(np.full(SIZE, 0.25), 10) for i in range(n)}
    _, engine = secure_run(FedAvg(), members, SecureAggregation(), rounds=1)
    low = np.concatenate([y & np.uint64(255) for y in engine.last_masked_inputs.values()])
    counts = np.bincount(low.astype(np.int64), minlength=256)
    assert len(engine.last_masked_inputs) == n
    assert stats.chisquare(counts).pvalue > 1e-3


def test_bad_configuration() -> None:
    with pytest.raises(PrivacyError, match=r"dropout_fraction must be in \[0, 0.5\), got 0.6"):
        SecureAggregation(dropout_fraction=0.6)
    with pytest.raises(PrivacyError, match=r"modulus_bits must be an integer in \[16, 64\]"):
        SecureAggregation(modulus_bits=8)
    with pytest.raises(PrivacyError, match="max_weight must be an integer >= 1"):
        SecureAggregation(max_weight=0)
    with pytest.raises(PrivacyError, match="transport must implement SecureTransport"):
        SecAggEngine(object(), SequentialEngine(clients(3)))  # type: ignore[arg-type]
