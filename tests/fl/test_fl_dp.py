"""Differential privacy for federated learning: central (fixed and adaptive clipping), local.

References: the accounting is checked against dp-accounting's own
accountants composing the same events (RDP exactly, PLD to its
discretization); the clipping, noise scale and clip-norm update against the
formulas of McMahan et al. 2018 and Andrew et al. 2021 computed in the test.
Statistical tests use fixed seeds; their false-alarm rate is 1e-3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import dp_accounting
import numpy as np
import pytest
from scipy import stats

from privet import PrivacyError
from privet.dp import Ledger
from privet.fl import (
    Aggregate,
    ClientSampling,
    EvaluateInstructions,
    EvaluateResult,
    FedAvg,
    FitInstructions,
    FitResult,
    Parameters,
    RoundResults,
)
from privet.fl.central_dp import AdaptiveClippingDp, FixedClippingDp, clip_rows
from privet.fl.engine import SequentialEngine, run_federated
from privet.fl.local_dp import LocalDpClient

FALSE_ALARM = 1e-3
TINY_NOISE = 1e-12  # noise multipliers must be > 0; this one leaves the arithmetic visible


class FixedUpdate:
    """A client whose update (new parameters minus global) is a fixed vector."""

    def __init__(self, update: Sequence[float], examples: int = 10) -> None:
        self.update = np.asarray(update, dtype=np.float64)
        self.examples = examples

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        return FitResult(
            parameters.from_vector(parameters.to_vector() + self.update), self.examples
        )

    def evaluate(
        self, parameters: Parameters, instructions: EvaluateInstructions
    ) -> EvaluateResult:
        return EvaluateResult(0.0, self.examples)


def zeros(size: int) -> Parameters:
    return Parameters({"w": np.zeros(size)})


def test_clip_rows_bounds_every_row_and_keeps_short_ones() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(20, 7)) * rng.uniform(0.01, 5.0, size=(20, 1))
    clipped, norms = clip_rows(rows, 1.5)
    for row, out, norm in zip(rows, clipped, norms, strict=True):
        assert norm == pytest.approx(np.linalg.norm(row))
        if norm <= 1.5:
            np.testing.assert_array_equal(out, row)
        else:
            np.testing.assert_allclose(out, row * 1.5 / norm)
            assert np.linalg.norm(out) == pytest.approx(1.5)


def test_the_mean_update_is_the_clipped_sum_over_the_expected_count() -> None:
    """McMahan et al. 2018: fixed denominator q N, each update clipped to C first."""
    updates = [[3.0, 4.0], [0.3, 0.0], [0.0, -0.2], [6.0, 8.0]]
    engine = SequentialEngine({f"c{i}": FixedUpdate(u) for i, u in enumerate(updates)})
    strategy = FixedClippingDp(
        FedAvg(),
        noise_multiplier=TINY_NOISE,
        clip_norm=1.0,
        sampling_rate=1.0,
        population=4,
        rng=np.random.default_rng(0),
    )
    history = run_federated(engine, strategy, zeros(2), 1, rng=np.random.default_rng(0))
    clipped = [[0.6, 0.8], [0.3, 0.0], [0.0, -0.2], [0.6, 0.8]]
    expected = np.sum(clipped, axis=0) / 4  # q N = 1 * 4
    np.testing.assert_allclose(history.parameters["w"], expected, atol=1e-9)
    # Nothing exact about the round leaves the wrapper: no counts, no clipped share.
    assert set(history.rounds[0].fit_metrics) == {"dp_clip_norm"}
    assert history.rounds[0].clients is None
    assert history.rounds[0].failures is None


def test_one_client_moves_the_model_by_at_most_c_over_qn() -> None:
    """The clipping bound holds: a client's update, however large, counts for at most C."""
    engine = SequentialEngine(
        {"huge": FixedUpdate([1e6, -1e6, 1e6])}
        | {f"idle{i}": FixedUpdate([0.0, 0.0, 0.0]) for i in range(9)}
    )
    strategy = FixedClippingDp(
        FedAvg(),
        noise_multiplier=TINY_NOISE,
        clip_norm=0.5,
        sampling_rate=1.0,
        population=10,
        rng=np.random.default_rng(0),
    )
    history = run_federated(engine, strategy, zeros(3), 1, rng=np.random.default_rng(0))
    assert np.linalg.norm(history.parameters["w"]) == pytest.approx(0.5 / 10, rel=1e-9)


def test_noise_has_standard_deviation_sigma_c_over_qn() -> None:
    """KS test of the aggregated noise (all updates zero) against N(0, (σ C / q N)^2)."""
    engine = SequentialEngine({f"c{i}": FixedUpdate(np.zeros(4000)) for i in range(4)})
    strategy = FixedClippingDp(
        FedAvg(),
        noise_multiplier=2.0,
        clip_norm=0.5,
        sampling_rate=1.0,
        population=4,
        rng=np.random.default_rng(7),
    )
    history = run_federated(engine, strategy, zeros(4000), 1, rng=np.random.default_rng(0))
    scale = 2.0 * 0.5 / 4
    assert stats.kstest(history.parameters["w"] / scale, "norm").pvalue > FALSE_ALARM


class MeanSpy(FedAvg):
    """Records the noisy mean update the DP wrapper hands to the strategy."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[np.ndarray] = []

    def aggregate_fit(
        self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
    ) -> Aggregate:
        ((_, pseudo),) = results.results
        self.updates.append(pseudo.parameters.to_vector() - parameters.to_vector())
        return super().aggregate_fit(server_round, parameters, results)


def indicator_clients(n: int) -> SequentialEngine:
    """Client i's update is the unit vector e_i: the mean update shows who was sampled."""
    return SequentialEngine({f"c{i}": FixedUpdate(np.eye(n)[i]) for i in range(n)})


def test_poisson_sampling_and_the_fixed_denominator() -> None:
    """q < 1: every coordinate of the mean update is 0 (not sampled) or 1/(qN) (sampled), the
    denominator being the declared q N, not the live count; per-round sample sizes follow
    Binomial(N, q) (chi-square, false-alarm rate 1e-3) and each client takes part at rate q."""
    n, q, rounds = 40, 0.25, 150
    spy = MeanSpy()
    strategy = FixedClippingDp(
        spy,
        noise_multiplier=TINY_NOISE,
        clip_norm=1.0,
        sampling_rate=q,
        population=n,
        rng=np.random.default_rng(3),
    )
    run_federated(indicator_clients(n), strategy, zeros(n), rounds, rng=np.random.default_rng(0))
    sampled = np.array([update * (q * n) for update in spy.updates])
    np.testing.assert_allclose(sampled, np.round(sampled), atol=1e-6)
    assert set(np.unique(np.round(sampled))) <= {0.0, 1.0}
    sizes = np.round(sampled).sum(axis=1).astype(int)
    # Chi-square goodness of fit of the sizes against Binomial(40, 0.25), tails pooled.
    edges = [0, 7, 9, 11, 13, 15, n + 1]
    observed = np.histogram(sizes, bins=edges)[0]
    cdf = stats.binom.cdf(np.array(edges) - 1, n, q)
    expected = np.diff(cdf) * rounds
    expected[-1] += rounds - expected.sum()
    assert stats.chisquare(observed, expected).pvalue > FALSE_ALARM
    per_client = np.round(sampled).sum(axis=0)
    assert stats.binomtest(int(per_client.sum()), n * rounds, q).pvalue > FALSE_ALARM


def test_malformed_client_updates_count_as_zero_and_do_not_abort() -> None:
    """A NaN, infinite or reshaped update cannot poison the sum or make the round's fate
    depend on the data: it is replaced by a zero update (inside the clipping ball)."""

    class Hostile:
        def __init__(self, kind: str) -> None:
            self.kind = kind

        def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
            if self.kind == "layout":
                return FitResult(Parameters({"w": np.zeros(5)}), 1)
            return FitResult(parameters.map(lambda a: a + float(self.kind)), 1)

        def evaluate(self, *args: object) -> EvaluateResult:
            return EvaluateResult(0.0, 1)

    clients = {f"ok{i}": FixedUpdate([0.5, 0.0]) for i in range(3)}
    clients |= {"nan": Hostile("nan"), "inf": Hostile("inf"), "shape": Hostile("layout")}
    strategy = FixedClippingDp(
        FedAvg(),
        noise_multiplier=TINY_NOISE,
        clip_norm=1.0,
        sampling_rate=1.0,
        population=6,
        rng=np.random.default_rng(0),
    )
    history = run_federated(
        SequentialEngine(clients), strategy, zeros(2), 2, rng=np.random.default_rng(0)
    )
    assert all(record.aborted is None for record in history.rounds)
    np.testing.assert_allclose(history.parameters["w"], [2 * 1.5 / 6, 0.0], atol=1e-9)


def test_no_client_evaluates_under_central_dp() -> None:
    """Client losses on private data are not noised, so the wrapper asks nobody to evaluate."""
    strategy = FixedClippingDp(
        FedAvg(), noise_multiplier=1.0, clip_norm=1.0, sampling_rate=1.0, population=3
    )
    engine = SequentialEngine({f"c{i}": FixedUpdate([0.0]) for i in range(3)})
    history = run_federated(engine, strategy, zeros(1), 2, rng=np.random.default_rng(0))
    assert all(record.evaluation is None for record in history.rounds)
    assert strategy.configure_evaluate(1, zeros(1), ["c0"], np.random.default_rng(0)) == []


def test_more_clients_than_the_declared_population_are_refused() -> None:
    strategy = FixedClippingDp(
        FedAvg(), noise_multiplier=1.0, clip_norm=1.0, sampling_rate=0.5, population=2
    )
    with pytest.raises(PrivacyError, match="more than the declared population of 2"):
        strategy.configure_fit(1, zeros(1), ["a", "b", "c"], np.random.default_rng(0))


@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_epsilon_charged_equals_dp_accounting(accountant: str) -> None:
    """Ledger after 6 rounds vs dp-accounting composing PoissonSampled(q, Gaussian(σ)) 6 times."""
    ledger = Ledger(50.0, 1e-5, accountant=accountant)  # type: ignore[arg-type]
    engine = SequentialEngine({f"c{i}": FixedUpdate([1.0, 1.0]) for i in range(20)})
    strategy = FixedClippingDp(
        FedAvg(),
        noise_multiplier=0.9,
        clip_norm=1.0,
        sampling_rate=0.25,
        population=20,
        ledger=ledger,
        rng=np.random.default_rng(1),
    )
    run_federated(engine, strategy, zeros(2), 6, rng=np.random.default_rng(0))
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.25, dp_accounting.GaussianDpEvent(0.9)), 6
    )
    if accountant == "rdp":
        reference = dp_accounting.rdp.RdpAccountant().compose(event).get_epsilon(1e-5)
        assert ledger.spent() == pytest.approx(reference, rel=1e-9)
    else:
        reference = (
            dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4)
            .compose(event)
            .get_epsilon(1e-5)
        )
        assert ledger.spent() == pytest.approx(reference, rel=1e-3)
    assert len(ledger.history()) == 6


def test_a_refused_round_stops_the_run_with_the_last_accepted_model() -> None:
    ledger = Ledger(1.0, 1e-5, accountant="rdp")
    engine = SequentialEngine({f"c{i}": FixedUpdate([0.1]) for i in range(5)})
    strategy = FixedClippingDp(
        FedAvg(),
        noise_multiplier=6.0,
        clip_norm=1.0,
        sampling_rate=1.0,
        population=5,
        ledger=ledger,
        rng=np.random.default_rng(0),
    )
    history = run_federated(engine, strategy, zeros(1), 50, rng=np.random.default_rng(0))
    assert history.stopped is not None
    assert "budget" in history.stopped
    assert 0 < len(history.rounds) < 50
    assert ledger.spent() <= 1.0
    assert len(ledger.history()) == len(history.rounds)


class NeedsEveryUpdate:
    needs_individual_updates = True
    releases_counts = True

    def configure_fit(self, *args: object) -> list[tuple[str, FitInstructions]]:
        return []

    def aggregate_fit(self, *args: object) -> Aggregate:
        raise NotImplementedError

    def configure_evaluate(self, *args: object) -> list[tuple[str, EvaluateInstructions]]:
        return []

    def aggregate_evaluate(self, *args: object) -> object:
        raise NotImplementedError


def test_strategies_that_need_individual_updates_are_refused() -> None:
    with pytest.raises(PrivacyError, match="needs individual client updates"):
        FixedClippingDp(
            NeedsEveryUpdate(),  # type: ignore[arg-type]
            noise_multiplier=1.0,
            clip_norm=1.0,
            sampling_rate=0.5,
            population=10,
        )


def test_an_inner_strategy_with_its_own_sampling_is_refused() -> None:
    with pytest.raises(PrivacyError, match=r"fraction_fit=1\.0"):
        FixedClippingDp(
            FedAvg(ClientSampling(fraction_fit=0.5)),
            noise_multiplier=1.0,
            clip_norm=1.0,
            sampling_rate=0.5,
            population=10,
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"noise_multiplier": 0.0}, "noise_multiplier must be > 0, got 0.0"),
        ({"clip_norm": -1.0}, "clip_norm must be > 0, got -1.0"),
        ({"sampling_rate": 0.0}, r"sampling_rate must be in \(0, 1\], got 0.0"),
        ({"sampling_rate": 1.5}, r"sampling_rate must be in \(0, 1\], got 1.5"),
    ],
)
def test_bad_central_dp_settings_are_refused(options: dict[str, float], message: str) -> None:
    settings = {"noise_multiplier": 1.0, "clip_norm": 1.0, "sampling_rate": 0.5, "population": 4}
    settings |= options
    with pytest.raises(PrivacyError, match=message):
        FixedClippingDp(FedAvg(), **settings)


# -- adaptive clipping ---------------------------------------------------------------------------


def test_adaptive_split_of_the_noise_budget() -> None:
    """Andrew et al. 2021, Thm 1: σ_Δ^-2 + (2 σ_b)^-2 = σ^-2."""
    strategy = AdaptiveClippingDp(
        FedAvg(),
        noise_multiplier=1.1,
        initial_clip_norm=1.0,
        sampling_rate=0.5,
        population=10,
        clipped_count_stddev=2.0,
    )
    sigma_delta = strategy.update_noise_multiplier()
    assert sigma_delta**-2 + (2 * 2.0) ** -2 == pytest.approx(1.1**-2)
    assert sigma_delta > 1.1


def test_adaptive_clip_norm_follows_the_geometric_update() -> None:
    """One round by hand: C' = C exp(-η (b̃ - γ)), b̃ the (almost noiseless) unclipped share."""
    norms = [0.5, 0.8, 2.0, 3.0, 4.0]  # 2 of 5 under C = 1
    engine = SequentialEngine({f"c{i}": FixedUpdate([n]) for i, n in enumerate(norms)})
    strategy = AdaptiveClippingDp(
        FedAvg(),
        noise_multiplier=1e-6,
        initial_clip_norm=1.0,
        sampling_rate=1.0,
        population=5,
        clipped_count_stddev=1e-5,
        target_quantile=0.5,
        clip_learning_rate=0.2,
        rng=np.random.default_rng(0),
    )
    run_federated(engine, strategy, zeros(1), 1, rng=np.random.default_rng(0))
    assert strategy.clip_norm == pytest.approx(math.exp(-0.2 * (2 / 5 - 0.5)), rel=1e-5)


def test_adaptive_clip_norm_converges_to_the_target_quantile() -> None:
    """Update norms spread on [1, 3]; with γ = 0.5 the bound settles near their median 2."""
    norms = np.linspace(1.0, 3.0, 21)
    engine = SequentialEngine({f"c{i}": FixedUpdate([n]) for i, n in enumerate(norms)})
    strategy = AdaptiveClippingDp(
        FedAvg(),
        noise_multiplier=0.02,
        initial_clip_norm=0.1,
        sampling_rate=1.0,
        population=21,
        clipped_count_stddev=0.05,
        clip_learning_rate=0.2,
        rng=np.random.default_rng(5),
    )
    run_federated(engine, strategy, zeros(1), 150, rng=np.random.default_rng(0))
    assert 1.7 < strategy.clip_norm < 2.3


def test_adaptive_clipping_needs_enough_count_noise() -> None:
    with pytest.raises(
        PrivacyError, match=r"clipped_count_stddev must be > noise_multiplier / 2 = 0\.5"
    ):
        AdaptiveClippingDp(
            FedAvg(),
            noise_multiplier=1.0,
            initial_clip_norm=1.0,
            sampling_rate=0.5,
            population=10,
            clipped_count_stddev=0.4,
        )
    with pytest.raises(PrivacyError, match=r"target_quantile must be in \(0, 1\), got 1.0"):
        AdaptiveClippingDp(
            FedAvg(),
            noise_multiplier=1.0,
            initial_clip_norm=1.0,
            sampling_rate=0.5,
            population=10,
            clipped_count_stddev=1.0,
            target_quantile=1.0,
        )


# -- local DP ------------------------------------------------------------------------------------


def test_local_dp_clips_and_noises_the_update() -> None:
    client = LocalDpClient(
        FixedUpdate([30.0, 40.0], examples=77),
        clip_norm=2.0,
        noise_multiplier=TINY_NOISE,
        rng=np.random.default_rng(0),
    )
    result = client.fit(zeros(2), FitInstructions(1))
    np.testing.assert_allclose(result.parameters["w"], [1.2, 1.6], atol=1e-9)
    # The count and the metrics describe the private data: neither leaves the client.
    assert result.num_examples == 1
    assert dict(result.metrics) == {}
    # Replace-one neighbours: sensitivity 2C, so the event is Gaussian(σ / 2).
    assert client.events == [dp_accounting.GaussianDpEvent(TINY_NOISE / 2)]


def test_local_dp_epsilon_over_rounds_equals_dp_accounting() -> None:
    ledger = Ledger(100.0, 1e-5, accountant="rdp")
    client = LocalDpClient(
        FixedUpdate([0.5]),
        clip_norm=1.0,
        noise_multiplier=4.0,
        ledger=ledger,
        rng=np.random.default_rng(0),
    )
    for server_round in range(1, 6):
        client.fit(zeros(1), FitInstructions(server_round))
    event = dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(2.0), 5)
    reference = dp_accounting.rdp.RdpAccountant().compose(event).get_epsilon(1e-5)
    assert ledger.spent() == pytest.approx(reference, rel=1e-9)


def test_local_dp_noise_has_standard_deviation_sigma_c() -> None:
    client = LocalDpClient(
        FixedUpdate(np.zeros(5000)),
        clip_norm=0.3,
        noise_multiplier=1.5,
        rng=np.random.default_rng(2),
    )
    noisy = client.fit(zeros(5000), FitInstructions(1)).parameters["w"]
    assert stats.kstest(noisy / (1.5 * 0.3), "norm").pvalue > FALSE_ALARM


def test_local_dp_clients_do_not_evaluate() -> None:
    client = LocalDpClient(FixedUpdate([0.0]), clip_norm=1.0, noise_multiplier=1.0)
    with pytest.raises(PrivacyError, match="does not evaluate"):
        client.evaluate(zeros(1), EvaluateInstructions(1))


def test_round_results_reach_the_inner_strategy_as_one_noisy_mean() -> None:
    """The wrapped strategy sees one pseudo-client, never an individual update."""
    seen: list[RoundResults[FitResult]] = []

    class Spy(FedAvg):
        def aggregate_fit(
            self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
        ) -> Aggregate:
            seen.append(results)
            return super().aggregate_fit(server_round, parameters, results)

    engine = SequentialEngine({f"c{i}": FixedUpdate([float(i)]) for i in range(6)})
    strategy = FixedClippingDp(
        Spy(),
        noise_multiplier=1.0,
        clip_norm=1.0,
        sampling_rate=1.0,
        population=6,
        rng=np.random.default_rng(0),
    )
    run_federated(engine, strategy, zeros(1), 2, rng=np.random.default_rng(0))
    assert [len(r.results) for r in seen] == [1, 1]
    assert all(r.results[0][0] == "dp-aggregate" for r in seen)


def test_wrapper_state_round_trips_with_the_inner_strategy() -> None:
    """Resumed runs (gRPC checkpoints) keep the adaptive bound and FedAdam's moments."""
    from privet.fl import FedAdam

    def wrapper() -> AdaptiveClippingDp:
        return AdaptiveClippingDp(
            FedAdam(),
            noise_multiplier=1.0,
            initial_clip_norm=1.0,
            sampling_rate=1.0,
            population=4,
            clipped_count_stddev=1.0,
            rng=np.random.default_rng(0),
        )

    engine = SequentialEngine({f"c{i}": FixedUpdate([float(i), 1.0]) for i in range(4)})
    first = wrapper()
    run_federated(engine, first, zeros(2), 3, rng=np.random.default_rng(0))
    state = first.state_dict()
    assert set(state) == {
        "clip_norm",
        "inner.kind",
        "inner.steps",
        "inner.layout",
        "inner.m",
        "inner.v",
    }
    restored = wrapper()
    restored.load_state_dict(state)
    assert restored.clip_norm == first.clip_norm != 1.0
    np.testing.assert_array_equal(restored.strategy.state_dict()["m"], state["inner.m"])


def test_a_fixed_bound_cannot_change_on_resume() -> None:
    strategy = FixedClippingDp(
        FedAvg(), noise_multiplier=1.0, clip_norm=1.0, sampling_rate=1.0, population=3
    )
    with pytest.raises(PrivacyError, match=r"written with clip_norm 2\.0"):
        strategy.load_state_dict({"clip_norm": 2.0})
    with pytest.raises(PrivacyError, match="cannot load"):
        strategy.load_state_dict({"clip_norm": 1.0, "inner.m": np.zeros(2)})
    with pytest.raises(PrivacyError, match="unknown keys"):
        strategy.load_state_dict({"clip_norm": 1.0, "noise": 3})


def test_adaptive_noise_uses_the_split_multipliers() -> None:
    """KS tests: update noise ~ N(0, (σ_Δ C / qN)^2) and, all updates being zero (so all
    unclipped), the released unclipped share ~ 1 + N(0, (σ_b / qN)^2); false-alarm rate 1e-3.
    With σ = 1 and σ_b = 1, σ_Δ = 2/√3: using σ instead would fail the first test."""
    spy = MeanSpy()
    strategy = AdaptiveClippingDp(
        spy,
        noise_multiplier=1.0,
        initial_clip_norm=1.0,
        sampling_rate=1.0,
        population=4,
        clipped_count_stddev=1.0,
        rng=np.random.default_rng(11),
    )
    engine = SequentialEngine({f"c{i}": FixedUpdate(np.zeros(3000)) for i in range(4)})
    history = run_federated(engine, strategy, zeros(3000), 60, rng=np.random.default_rng(0))
    sigma_delta = 2 / math.sqrt(3)
    bounds = [float(r.fit_metrics["dp_clip_norm"]) for r in history.rounds]
    noise = np.concatenate(
        [u / (sigma_delta * c / 4) for u, c in zip(spy.updates, bounds, strict=True)]
    )
    assert stats.kstest(noise, "norm").pvalue > FALSE_ALARM
    assert stats.kstest(noise * sigma_delta, "norm").pvalue < FALSE_ALARM  # σ alone: caught
    shares = np.array([float(r.fit_metrics["dp_noisy_unclipped_fraction"]) for r in history.rounds])
    assert stats.kstest((shares - 1.0) * 4 / 1.0, "norm").pvalue > FALSE_ALARM


@pytest.mark.parametrize("failure", ["raise", "nan", "layout"])
def test_local_dp_failures_are_indistinguishable_from_noise(failure: str) -> None:
    """Whatever goes wrong locally, the server gets a charged, clipped, noised update."""

    class Broken:
        def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
            if failure == "raise":
                raise ValueError("label 7 at row 12 has loss 1e308")
            if failure == "nan":
                return FitResult(parameters.map(lambda a: a * np.nan), 5)
            return FitResult(Parameters({"other": np.zeros(2)}), 5)

        def evaluate(self, *args: object) -> EvaluateResult:
            return EvaluateResult(0.0, 1)

    client = LocalDpClient(
        Broken(), clip_norm=1.0, noise_multiplier=2.0, rng=np.random.default_rng(4)
    )
    result = client.fit(zeros(4000), FitInstructions(1))
    assert len(client.events) == 1
    assert result.num_examples == 1
    assert stats.kstest(result.parameters["w"] / 2.0, "norm").pvalue > FALSE_ALARM
