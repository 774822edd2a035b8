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
        rng=np.random.default_rng(0),
    )
    history = run_federated(engine, strategy, zeros(2), 1, rng=np.random.default_rng(0))
    clipped = [[0.6, 0.8], [0.3, 0.0], [0.0, -0.2], [0.6, 0.8]]
    expected = np.sum(clipped, axis=0) / 4  # q N = 1 * 4
    np.testing.assert_allclose(history.parameters["w"], expected, atol=1e-9)
    assert history.rounds[0].fit_metrics["dp_clipped_fraction"] == 0.5


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
        rng=np.random.default_rng(7),
    )
    history = run_federated(engine, strategy, zeros(4000), 1, rng=np.random.default_rng(0))
    scale = 2.0 * 0.5 / 4
    assert stats.kstest(history.parameters["w"] / scale, "norm").pvalue > FALSE_ALARM


def test_poisson_sampling_picks_each_client_with_probability_q() -> None:
    """Binomial test on the number of participations (n = 200 clients x 30 rounds)."""
    engine = SequentialEngine({f"c{i}": FixedUpdate([0.0]) for i in range(200)})
    strategy = FixedClippingDp(
        FedAvg(),
        noise_multiplier=1.0,
        clip_norm=1.0,
        sampling_rate=0.1,
        rng=np.random.default_rng(3),
    )
    history = run_federated(engine, strategy, zeros(1), 30, rng=np.random.default_rng(0))
    participations = sum(r.clients for r in history.rounds)
    assert stats.binomtest(participations, 200 * 30, 0.1).pvalue > FALSE_ALARM


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
        ledger=ledger,
        rng=np.random.default_rng(0),
    )
    history = run_federated(engine, strategy, zeros(1), 50, rng=np.random.default_rng(0))
    assert history.stopped is not None and "budget" in history.stopped
    assert 0 < len(history.rounds) < 50
    assert ledger.spent() <= 1.0
    assert len(ledger.history()) == len(history.rounds)


class NeedsEveryUpdate:
    needs_individual_updates = True

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
        )


def test_an_inner_strategy_with_its_own_sampling_is_refused() -> None:
    with pytest.raises(PrivacyError, match="fraction_fit=1.0"):
        FixedClippingDp(
            FedAvg(ClientSampling(fraction_fit=0.5)),
            noise_multiplier=1.0,
            clip_norm=1.0,
            sampling_rate=0.5,
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
    settings = {"noise_multiplier": 1.0, "clip_norm": 1.0, "sampling_rate": 0.5} | options
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
        clipped_count_stddev=0.05,
        clip_learning_rate=0.2,
        rng=np.random.default_rng(5),
    )
    run_federated(engine, strategy, zeros(1), 150, rng=np.random.default_rng(0))
    assert 1.7 < strategy.clip_norm < 2.3


def test_adaptive_clipping_needs_enough_count_noise() -> None:
    with pytest.raises(PrivacyError, match="clipped_count_stddev must be > noise_multiplier / 2 = 0.5"):
        AdaptiveClippingDp(
            FedAvg(),
            noise_multiplier=1.0,
            initial_clip_norm=1.0,
            sampling_rate=0.5,
            clipped_count_stddev=0.4,
        )
    with pytest.raises(PrivacyError, match=r"target_quantile must be in \(0, 1\), got 1.0"):
        AdaptiveClippingDp(
            FedAvg(),
            noise_multiplier=1.0,
            initial_clip_norm=1.0,
            sampling_rate=0.5,
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
    assert result.num_examples == 1 and dict(result.metrics) == {}
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
        rng=np.random.default_rng(0),
    )
    run_federated(engine, strategy, zeros(1), 2, rng=np.random.default_rng(0))
    assert [len(r.results) for r in seen] == [1, 1]
    assert all(r.results[0][0] == "dp-aggregate" for r in seen)
