"""Server strategies against slow references written out here, coordinate by coordinate.

References: FedAvg (McMahan et al., AISTATS 2017) as a hand-weighted average;
coordinate-wise median and trimmed mean (Yin et al., ICML 2018) with
``statistics.median`` and sorted lists, the trimmed mean also against
``scipy.stats.trim_mean``; Krum / Multi-Krum scores (Blanchard et al., NeurIPS
2017) with a double loop over clients; FedAdagrad / FedAdam / FedYogi moments
over three rounds from Algorithm 2 of Reddi et al., ICLR 2021.
Everything is deterministic (fixed seeds), so no test has a false-alarm rate.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import scipy.stats
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from privet.errors import PrivacyError
from privet.fl.aggregate import (
    FedOptKind,
    ServerOptimizer,
    coordinate_median,
    fedopt_step,
    krum_scores,
    multi_krum_select,
    pairwise_squared_distances,
    trimmed_mean,
)
from privet.fl.parameters import Parameters
from privet.fl.strategies import (
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedMedian,
    FedOpt,
    FedProx,
    FedTrimmedAvg,
    FedYogi,
    Krum,
    MultiKrum,
)
from privet.fl.strategy import ClientSampling, SampledStrategy, Strategy
from privet.fl.types import FitResult, RoundAborted, RoundResults

# Several arrays of different shapes and both float widths, so that flattening order,
# reshaping and the cast back to each dtype are all exercised.
LAYOUT: dict[str, tuple[tuple[int, ...], type[np.floating[Any]]]] = {
    "conv.weight": ((2, 1, 3), np.float32),
    "dense.weight": ((3, 2), np.float64),
    "dense.bias": ((2,), np.float32),
    "scale": ((), np.float64),
}


def random_parameters(rng: np.random.Generator, centre: Parameters | None = None, spread=1.0):
    arrays = {}
    for name, (shape, dtype) in LAYOUT.items():
        base = 0.0 if centre is None else centre[name].astype(np.float64)
        arrays[name] = (base + spread * rng.normal(size=shape)).astype(dtype)
    return Parameters(arrays)


def client_round(
    rng: np.random.Generator, centre: Parameters, n: int, spread: float = 1.0
) -> RoundResults[FitResult]:
    return RoundResults(
        [
            (f"c{k}", FitResult(random_parameters(rng, centre, spread), int(rng.integers(1, 50))))
            for k in range(n)
        ]
    )


def flat(parameters: Parameters) -> list[float]:
    """Every scalar as a Python float, array by array in order, each in C order."""
    return [float(value) for name in parameters for value in parameters[name].ravel()]


def unflat(values: Sequence[float], like: Parameters) -> dict[str, np.ndarray]:
    out, offset = {}, 0
    for name in like:
        size = like[name].size
        out[name] = np.array(values[offset : offset + size]).reshape(like[name].shape)
        offset += size
    return out


def per_coordinate(
    clients: Sequence[Parameters], statistic: Callable[[list[float]], float], like: Parameters
) -> dict[str, np.ndarray]:
    vectors = [flat(p) for p in clients]
    return unflat([statistic([v[j] for v in vectors]) for j in range(len(vectors[0]))], like)


def assert_matches(result: Parameters, expected: dict[str, np.ndarray], like: Parameters) -> None:
    """Same layout as ``like``; values equal to the float64 reference cast to each dtype."""
    like.check_layout(result, what="aggregate")
    for name in like:
        dtype = like[name].dtype
        tolerance = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(
            result[name], expected[name].astype(dtype), rtol=tolerance, atol=tolerance, err_msg=name
        )


def fits_of(results: RoundResults[FitResult]) -> list[FitResult]:
    return [result for _, result in results.results]


ALL_STRATEGIES: dict[str, Callable[[ClientSampling | None], SampledStrategy]] = {
    "FedAvg": lambda s: FedAvg(s),
    "FedProx": lambda s: FedProx(0.1, s),
    "FedAdagrad": lambda s: FedAdagrad(s),
    "FedAdam": lambda s: FedAdam(s),
    "FedYogi": lambda s: FedYogi(s),
    "FedMedian": lambda s: FedMedian(s),
    "FedTrimmedAvg": lambda s: FedTrimmedAvg(0.2, s),
    "Krum": lambda s: Krum(1, s),
    "MultiKrum": lambda s: MultiKrum(1, 2, s),
}
ROBUST = {"FedMedian", "FedTrimmedAvg", "Krum", "MultiKrum"}


# -- FedAvg and FedProx -------------------------------------------------------------------------


def test_fedavg_weights_by_example_counts() -> None:
    rng = np.random.default_rng(1)
    start = random_parameters(rng)
    results = client_round(rng, start, 5)
    fits = fits_of(results)

    def hand_average(values: list[float]) -> float:
        total = sum(f.num_examples for f in fits)
        return sum(v * f.num_examples for v, f in zip(values, fits, strict=True)) / total

    aggregate = FedAvg().aggregate_fit(1, start, results)
    expected = per_coordinate([f.parameters for f in fits], hand_average, start)
    assert_matches(aggregate.parameters, expected, start)
    assert aggregate.metrics["examples"] == sum(f.num_examples for f in fits)
    assert aggregate.metrics["clients"] == 5


def test_fedavg_unweighted_is_the_plain_mean() -> None:
    rng = np.random.default_rng(2)
    start = random_parameters(rng)
    results = client_round(rng, start, 4)
    aggregate = FedAvg(weighted=False).aggregate_fit(1, start, results)
    expected = per_coordinate(
        [f.parameters for f in fits_of(results)], lambda v: math.fsum(v) / len(v), start
    )
    assert_matches(aggregate.parameters, expected, start)
    weighted = FedAvg().aggregate_fit(1, start, results).parameters
    assert weighted != aggregate.parameters  # the counts differ, so weighting must matter


def test_fedprox_sends_proximal_mu_and_fedavg_does_not() -> None:
    rng = np.random.default_rng(3)
    start = random_parameters(rng)
    clients = [f"c{k}" for k in range(4)]
    prox = FedProx(0.25).configure_fit(2, start, clients, rng)
    assert [c for c, _ in prox] == clients
    assert all(i.proximal_mu == 0.25 and i.server_round == 2 for _, i in prox)
    assert all(i.proximal_mu == 0.0 for _, i in FedAvg().configure_fit(2, start, clients, rng))


# -- sampling and aborted rounds, for every strategy --------------------------------------------


@pytest.mark.parametrize("make", ALL_STRATEGIES.values(), ids=ALL_STRATEGIES.keys())
def test_sampling_counts_and_reproducibility(make) -> None:
    clients = [f"c{k:02d}" for k in range(10)]
    start = random_parameters(np.random.default_rng(0))

    def chosen(sampling: ClientSampling, seed: int) -> list[str]:
        strategy = make(sampling)
        pairs = strategy.configure_fit(1, start, clients, np.random.default_rng(seed))
        return [client for client, _ in pairs]

    # max(min_fit_clients, ceil(fraction_fit * 10))
    assert len(chosen(ClientSampling(fraction_fit=0.25), 0)) == 3
    assert len(chosen(ClientSampling(fraction_fit=0.25, min_fit_clients=5), 0)) == 5
    assert chosen(ClientSampling(), 0) == clients
    sampling = ClientSampling(fraction_fit=0.3)
    first = chosen(sampling, 7)
    assert first == chosen(sampling, 7)  # same seed, same clients
    assert first == sorted(first)
    assert set(first) <= set(clients)
    # C(10, 3) = 120 possible draws: ten seeds giving one draw would mean the seed is ignored.
    assert len({tuple(chosen(sampling, seed)) for seed in range(10)}) > 1
    with pytest.raises(RoundAborted, match="needs 11 clients, but only 10 are available"):
        chosen(ClientSampling(min_fit_clients=11), 0)
    evaluate = make(ClientSampling(fraction_evaluate=0.5)).configure_evaluate(
        1, start, clients, np.random.default_rng(0)
    )
    assert len(evaluate) == 5


@pytest.mark.parametrize("name", ALL_STRATEGIES.keys())
def test_too_few_answers_abort_the_round(name: str) -> None:
    rng = np.random.default_rng(4)
    start = random_parameters(rng)
    strategy = ALL_STRATEGIES[name](ClientSampling(min_fit_clients=3))
    answered = client_round(rng, start, 2)
    results = RoundResults(answered.results, failures=[("c9", "timeout")])
    with pytest.raises(RoundAborted, match=r"2 client\(s\) answered, 1 failed.* at least 3"):
        strategy.aggregate_fit(1, start, results)
    assert isinstance(strategy, Strategy)
    assert strategy.needs_individual_updates is (name in ROBUST)


# -- FedMedian ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 4, 5])  # one client, an even and an odd count
def test_median_matches_statistics_median(n: int) -> None:
    rng = np.random.default_rng(10 + n)
    start = random_parameters(rng)
    results = client_round(rng, start, n)
    aggregate = FedMedian().aggregate_fit(1, start, results)
    expected = per_coordinate([f.parameters for f in fits_of(results)], statistics.median, start)
    assert_matches(aggregate.parameters, expected, start)
    assert aggregate.metrics == {
        "clients": n,
        "failures": 0,
        "rejected": 0,
        "examples": sum(f.num_examples for f in fits_of(results)),
    }


def test_median_of_an_even_count_averages_the_two_middle_values() -> None:
    updates = np.array([[1.0, -4.0], [10.0, 0.0], [3.0, 2.0], [4.0, 100.0]])
    np.testing.assert_array_equal(coordinate_median(updates), [3.5, 1.0])


@pytest.mark.parametrize("strategy", [FedMedian, FedAvg], ids=["median", "fedavg"])
def test_malformed_updates_are_set_aside(strategy: Callable[..., SampledStrategy]) -> None:
    """Robust strategies and FedAvg alike: a NaN or reshaped update never reaches the model."""
    rng = np.random.default_rng(5)
    start = random_parameters(rng)
    good = client_round(rng, start, 5)
    poisoned = dict(good.results[0][1].parameters)
    poisoned["dense.weight"] = np.full((3, 2), np.nan)
    reshaped = dict(good.results[1][1].parameters)
    reshaped["dense.bias"] = np.zeros(3, dtype=np.float32)
    results = RoundResults(
        [
            *good.results,
            ("nan", FitResult(Parameters(poisoned), 10)),
            ("shape", FitResult(Parameters(reshaped), 10)),
        ]
    )
    aggregate = strategy().aggregate_fit(1, start, results)
    reference = strategy().aggregate_fit(1, start, good)
    assert_matches(aggregate.parameters, dict(reference.parameters), start)
    assert aggregate.metrics["rejected"] == 2
    assert aggregate.metrics["clients"] == 5
    # Rejections count towards min_fit_clients like failures.
    with pytest.raises(RoundAborted, match=r"5 client\(s\) answered, 2 failed"):
        strategy(ClientSampling(min_fit_clients=6)).aggregate_fit(1, start, results)


# -- FedTrimmedAvg ------------------------------------------------------------------------------


def slow_trimmed_mean(values: list[float], beta: float) -> float:
    cut = int(beta * len(values))  # floor, as scipy.stats.trim_mean and Flower
    kept = sorted(values)[cut : len(values) - cut]
    return math.fsum(kept) / len(kept)


@pytest.mark.parametrize(
    ("n", "beta", "cut"), [(7, 0.2, 1), (7, 0.3, 2), (7, 0.45, 3), (10, 0.1, 1), (4, 0.2, 0)]
)
def test_trimmed_mean_matches_slow_reference(n: int, beta: float, cut: int) -> None:
    rng = np.random.default_rng(20 + n)
    start = random_parameters(rng)
    results = client_round(rng, start, n)
    clients = [f.parameters for f in fits_of(results)]
    aggregate = FedTrimmedAvg(beta).aggregate_fit(1, start, results)
    expected = per_coordinate(clients, lambda v: slow_trimmed_mean(v, beta), start)
    assert_matches(aggregate.parameters, expected, start)
    assert aggregate.metrics["trimmed_per_end"] == cut
    # The same cut as scipy (a peer implementation).
    matrix = np.array([flat(p) for p in clients])
    np.testing.assert_allclose(
        trimmed_mean(matrix, beta), scipy.stats.trim_mean(matrix, beta, axis=0), rtol=1e-12
    )


def test_trimmed_mean_with_beta_zero_is_the_plain_mean() -> None:
    rng = np.random.default_rng(6)
    start = random_parameters(rng)
    results = client_round(rng, start, 6)
    trimmed = FedTrimmedAvg(0.0).aggregate_fit(1, start, results)
    expected = per_coordinate(
        [f.parameters for f in fits_of(results)], lambda v: math.fsum(v) / len(v), start
    )
    assert_matches(trimmed.parameters, expected, start)
    assert trimmed.metrics["trimmed_per_end"] == 0


def test_trimmed_mean_ignores_extreme_values() -> None:
    updates = np.array([[1.0], [2.0], [3.0], [1e9], [-1e9]])
    np.testing.assert_array_equal(trimmed_mean(updates, 0.2), [2.0])


# -- Krum and Multi-Krum ------------------------------------------------------------------------


def slow_krum_scores(vectors: list[list[float]], f: int) -> list[float]:
    n = len(vectors)
    scores = []
    for i in range(n):
        distances = sorted(
            math.fsum((a - b) ** 2 for a, b in zip(vectors[i], vectors[j], strict=True))
            for j in range(n)
            if j != i
        )
        scores.append(math.fsum(distances[: n - f - 2]))
    return scores


def test_pairwise_distances_match_a_double_loop() -> None:
    rng = np.random.default_rng(7)
    # A large common offset, and one far-away row: the Gram identity must not lose the
    # small distances to cancellation (without centring, or centred at the mean, which the
    # far row drags 1.7e5 away, rtol 1e-9 fails).
    matrix = 1e5 + rng.normal(size=(6, 9))
    matrix[5] += 1e6
    slow = [
        [math.fsum((a - b) ** 2 for a, b in zip(x, y, strict=True)) for y in matrix] for x in matrix
    ]
    np.testing.assert_allclose(pairwise_squared_distances(matrix), slow, rtol=1e-9, atol=0)


@pytest.mark.parametrize(("n", "f", "m"), [(5, 1, 1), (7, 2, 1), (7, 2, 3), (9, 2, 7), (8, 0, 4)])
def test_multi_krum_matches_slow_scores(n: int, f: int, m: int) -> None:
    rng = np.random.default_rng(30 + 10 * n + f + m)
    start = random_parameters(rng)
    results = client_round(rng, start, n)
    clients = [f.parameters for f in fits_of(results)]
    vectors = [flat(p) for p in clients]
    scores = slow_krum_scores(vectors, f)
    np.testing.assert_allclose(krum_scores(np.array(vectors), f), scores, rtol=1e-9)
    best = sorted(range(n), key=lambda i: (scores[i], i))[:m]

    strategy = Krum(f) if m == 1 else MultiKrum(f, m)
    aggregate = strategy.aggregate_fit(1, start, results)
    expected = unflat(
        [math.fsum(vectors[i][j] for i in best) / m for j in range(len(vectors[0]))], start
    )
    assert_matches(aggregate.parameters, expected, start)
    assert aggregate.metrics["selected"] == ",".join(f"c{i}" for i in best)
    assert aggregate.metrics["selected_count"] == m
    if m == 1:  # Krum returns the chosen update itself
        assert aggregate.parameters == clients[best[0]]


@pytest.mark.parametrize("seed", range(10))
def test_krum_never_selects_planted_byzantine_updates(seed: int) -> None:
    rng = np.random.default_rng(seed)
    start = random_parameters(rng)
    honest = client_round(rng, start, 5, spread=0.1)
    # Two colluding Byzantine clients send the same far-away update, so each has one
    # neighbour at distance 0: the case Krum's n - f - 2 neighbours are chosen for.
    attack = FitResult(random_parameters(rng, start, spread=0.1).map(lambda a: a + 50), 1000)
    results = RoundResults([("evil0", attack), *honest.results, ("evil1", attack)])
    for strategy in (Krum(2), MultiKrum(2, 5)):
        aggregate = strategy.aggregate_fit(1, start, results)
        selected = str(aggregate.metrics["selected"]).split(",")
        assert "evil0" not in selected
        assert "evil1" not in selected
        # Whatever it averaged, the result stays in the honest cluster, not 50 away.
        distance = np.abs(np.array(flat(aggregate.parameters)) - flat(start)).max()
        assert distance < 1


def test_krum_aborts_when_answers_are_too_few_for_f() -> None:
    rng = np.random.default_rng(8)
    start = random_parameters(rng)
    six = client_round(rng, start, 6)
    with pytest.raises(RoundAborted, match=r"n > 2f \+ 2.*got n=6 .*f=2, m=1"):
        Krum(2).aggregate_fit(1, start, six)
    seven = client_round(rng, start, 7)
    Krum(2).aggregate_fit(1, start, seven)  # n = 7 > 2f + 2 = 6 is enough
    with pytest.raises(RoundAborted, match=r"n >= m \+ f.*got n=7 .*f=2, m=6"):
        MultiKrum(2, 6).aggregate_fit(1, start, seven)


# -- FedAdagrad, FedAdam, FedYogi ---------------------------------------------------------------


def sign(value: float) -> int:
    return (value > 0) - (value < 0)


HYPER = {"eta": 0.3, "beta_1": 0.8, "tau": 1e-2}
KINDS: dict[str, tuple[Callable[..., FedOpt], dict[str, float]]] = {
    "adagrad": (FedAdagrad, HYPER),
    "adam": (FedAdam, {**HYPER, "beta_2": 0.95}),
    "yogi": (FedYogi, {**HYPER, "beta_2": 0.95}),
}


@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("kind", KINDS.keys())
def test_fedopt_matches_reddi_algorithm_2_over_three_rounds(kind: str, weighted: bool) -> None:
    cls, hyper = KINDS[kind]
    strategy = cls(weighted=weighted, **hyper)
    eta, beta_1, tau = hyper["eta"], hyper["beta_1"], hyper["tau"]
    beta_2 = hyper.get("beta_2", 0.0)
    rng = np.random.default_rng(40)
    x_params = random_parameters(rng)
    size = len(flat(x_params))
    m, v = [0.0] * size, [tau**2] * size  # m_{-1} = 0, v_{-1} = tau^2
    yogi_signs: set[int] = set()
    # Different spreads per round, so that Yogi's v both grows and shrinks.
    for server_round, spread in enumerate([0.1, 0.01, 0.3], start=1):
        results = client_round(rng, x_params, 4, spread)
        fits = fits_of(results)
        weights = [float(f.num_examples) if weighted else 1.0 for f in fits]
        x = flat(x_params)
        vectors = [flat(f.parameters) for f in fits]
        x_new = []
        for j in range(size):
            delta = math.fsum(w * (c[j] - x[j]) for w, c in zip(weights, vectors, strict=True))
            delta /= math.fsum(weights)
            m[j] = beta_1 * m[j] + (1 - beta_1) * delta
            if kind == "adagrad":
                v[j] = v[j] + delta**2
            elif kind == "adam":
                v[j] = beta_2 * v[j] + (1 - beta_2) * delta**2
            else:
                yogi_signs.add(sign(v[j] - delta**2))
                v[j] = v[j] - (1 - beta_2) * delta**2 * sign(v[j] - delta**2)
            x_new.append(x[j] + eta * m[j] / (math.sqrt(v[j]) + tau))

        aggregate = strategy.aggregate_fit(server_round, x_params, results)
        assert_matches(aggregate.parameters, unflat(x_new, x_params), x_params)
        state = strategy.state_dict()
        np.testing.assert_allclose(state["m"], m, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(state["v"], v, rtol=1e-9, atol=1e-15)
        assert state["steps"] == aggregate.metrics["server_steps"] == server_round
        x_params = aggregate.parameters
    if kind == "yogi":
        assert {-1, 1} <= yogi_signs


def test_fedadagrad_first_step_by_hand() -> None:
    # One coordinate, Δ = 1 from x = 0: m = (1 - 0.9) = 0.1, v = τ² + 1, so the step is
    # η · 0.1 / (sqrt(1 + τ²) + τ); Adam-style bias correction would give η · 1 / (1 + τ).
    optimizer = ServerOptimizer(FedOptKind.ADAGRAD, eta=0.5, beta_1=0.9, tau=0.25)
    x, m, v = fedopt_step(optimizer, np.zeros(1), np.ones(1), np.zeros(1), np.full(1, 0.0625))
    assert m[0] == pytest.approx(0.1)
    assert v[0] == pytest.approx(1.0625)
    assert x[0] == pytest.approx(0.5 * 0.1 / (math.sqrt(1.0625) + 0.25))


def test_fedopt_sends_the_client_learning_rate() -> None:
    start = random_parameters(np.random.default_rng(0))
    pairs = FedAdam(eta_l=0.05).configure_fit(3, start, ["a", "b"], np.random.default_rng(0))
    assert all(i.learning_rate == 0.05 and i.server_round == 3 for _, i in pairs)
    pairs = FedAdam().configure_fit(3, start, ["a"], np.random.default_rng(0))
    assert pairs[0][1].learning_rate is None


def test_fedopt_state_survives_a_safetensors_round_trip() -> None:
    rng = np.random.default_rng(50)
    start = random_parameters(rng)
    rounds = [client_round(rng, start, 3, spread) for spread in (0.2, 0.1, 0.05)]
    original = FedYogi()
    x = start
    for server_round, results in enumerate(rounds[:2], start=1):
        x = original.aggregate_fit(server_round, x, results).parameters
    state = original.state_dict()
    assert set(state) == {"kind", "steps", "layout", "m", "v"}
    tensors = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    metadata = {k: json.dumps(v) for k, v in state.items() if not isinstance(v, np.ndarray)}
    restored_state = {
        **load_safetensors(save_safetensors(tensors)),
        **{k: json.loads(v) for k, v in metadata.items()},
    }
    restored = FedYogi()
    restored.load_state_dict(restored_state)
    assert restored.steps == 2
    a = original.aggregate_fit(3, x, rounds[2]).parameters
    b = restored.aggregate_fit(3, x, rounds[2]).parameters
    assert a == b
    # A fresh strategy's state loads too, and means "no step yet".
    fresh = FedYogi()
    restored.load_state_dict(fresh.state_dict())
    assert restored.steps == 0


def test_fedopt_refuses_bad_state_and_keeps_its_own() -> None:
    rng = np.random.default_rng(51)
    start = random_parameters(rng)
    strategy = FedAdam()
    strategy.aggregate_fit(1, start, client_round(rng, start, 3))
    good = strategy.state_dict()
    cases = [
        ({**good, "kind": "yogi"}, "state kind must be 'adam', got 'yogi'"),
        (
            {**good, "m": good["m"][:-1]},
            r"state m must be a float vector of length 15, got float64\[14",
        ),
        ({**good, "v": -good["v"]}, "state v must be >= 0"),
        ({**good, "v": good["v"] * np.nan}, "state v must be finite"),
        ({**good, "steps": -1}, "state steps must be an integer >= 0, got -1"),
        ({**good, "steps": 0}, "layout must be null exactly when steps = 0"),
        ({**good, "layout": "[[1, 2]]"}, "state layout must be JSON null or a list"),
        ({k: v for k, v in good.items() if k != "m"}, "state must have the keys"),
    ]
    for bad, message in cases:
        with pytest.raises(PrivacyError, match=message):
            strategy.load_state_dict(bad)
    after = strategy.state_dict()
    assert after["steps"] == 1
    np.testing.assert_array_equal(after["m"], good["m"])


def test_fedopt_requires_the_same_layout_every_round() -> None:
    rng = np.random.default_rng(52)
    start = random_parameters(rng)
    strategy = FedAdam()
    strategy.aggregate_fit(1, start, client_round(rng, start, 2))
    wider = Parameters({**start, "scale": np.zeros(2)})
    with pytest.raises(PrivacyError, match="global parameters must keep the layout"):
        strategy.aggregate_fit(2, wider, client_round(rng, wider, 2))
    recast = Parameters({**start, "dense.bias": start["dense.bias"].astype(np.float64)})
    with pytest.raises(PrivacyError, match="global parameters must keep the layout"):
        strategy.aggregate_fit(2, recast, client_round(rng, recast, 2))
    assert strategy.steps == 1


def test_fedopt_refuses_a_non_finite_update_before_changing_state() -> None:
    rng = np.random.default_rng(53)
    start = random_parameters(rng)
    strategy = FedAdam()
    strategy.aggregate_fit(1, start, client_round(rng, start, 2))
    before = strategy.state_dict()
    bad = RoundResults([("c0", FitResult(start.map(lambda a: a * np.inf), 1))])
    with pytest.raises(PrivacyError, match="delta must be finite"):
        strategy.aggregate_fit(2, start, bad)
    after = strategy.state_dict()
    assert after["steps"] == 1
    np.testing.assert_array_equal(after["v"], before["v"])


# -- bad arguments ------------------------------------------------------------------------------

BAD_ARGUMENTS: list[tuple[Callable[[], object], str]] = [
    (lambda: FedTrimmedAvg(0.5), r"beta must be in \[0, 0.5\), got 0.5"),
    (lambda: FedTrimmedAvg(-0.1), r"beta must be in \[0, 0.5\), got -0.1"),
    (lambda: FedTrimmedAvg(math.nan), "beta must be finite, got nan"),
    (lambda: MultiKrum(-1, 1), "num_byzantine must be an integer >= 0, got -1"),
    (lambda: Krum(True), "num_byzantine must be an integer >= 0, got True"),
    (lambda: MultiKrum(1, 0), "num_selected must be an integer >= 1, got 0"),
    (
        lambda: multi_krum_select(np.zeros((7, 3)), 2, 6),
        r"num_selected must be <= n - f = 5 \(n=7, f=2\), got 6",
    ),
    (lambda: krum_scores(np.zeros((4, 3)), 1), r"must number n > 2f \+ 2 = 4 .* got n=4"),
    (lambda: FedAdam(eta=0), "eta must be > 0, got 0"),
    (lambda: FedYogi(eta=-1.0), "eta must be > 0, got -1.0"),
    (lambda: FedAdagrad(eta=math.inf), "eta must be finite, got inf"),
    (lambda: FedAdam(beta_1=1.0), r"beta_1 must be in \[0, 1\), got 1.0"),
    (lambda: FedAdagrad(beta_1=-0.1), r"beta_1 must be in \[0, 1\), got -0.1"),
    (lambda: FedYogi(beta_2=1.0), r"beta_2 must be in \[0, 1\), got 1.0"),
    (lambda: FedAdam(tau=0), "tau must be > 0, got 0"),
    (lambda: FedYogi(tau=-1e-3), "tau must be > 0, got -0.001"),
    (lambda: FedAdam(eta_l=0.0), "eta_l must be > 0 or None, got 0.0"),
    (lambda: FedOpt("adam"), "optimizer must be a ServerOptimizer, got 'adam'"),  # type: ignore[arg-type]
    (lambda: ServerOptimizer("adam", eta=0.1), "kind must be a FedOptKind, got 'adam'"),  # type: ignore[arg-type]
    (lambda: coordinate_median(np.zeros((0, 3))), "updates must be a .* at least one row"),
    (lambda: coordinate_median(np.array([[1.0], [np.nan]])), r"NaN or infinity in rows \[1\]"),
    (
        lambda: fedopt_step(
            ServerOptimizer(FedOptKind.ADAM, eta=0.1),
            np.zeros(2),
            np.zeros(3),
            np.zeros(2),
            np.zeros(2),
        ),
        "delta must be a vector of the same length as x",
    ),
]


@pytest.mark.parametrize(("call", "message"), BAD_ARGUMENTS)
def test_bad_arguments_raise_privacy_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        call()
