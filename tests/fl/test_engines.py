"""Engines and the round loop: the same run on every engine gives the same model.

Tolerance: float32 models; the vectorized engine computes the same SGD steps
with batched matrix products, so results differ only by float32 rounding
(atol 1e-5 after a few rounds).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from privet.fl import (
    ClientSampling,
    EvaluateInstructions,
    EvaluateResult,
    FedAvg,
    FedProx,
    FitInstructions,
    FitResult,
    Parameters,
)
from privet.fl.engine import SequentialEngine, run_federated
from privet.fl.torch_client import (
    ClientData,
    LocalTraining,
    parameters_of,
    torch_clients,
    torch_evaluator,
)
from privet.fl.vectorized import VectorizedEngine

ATOL = 1e-5


def model_factory() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def client_data(sizes: list[int], seed: int = 1) -> dict[str, ClientData]:
    generator = torch.Generator().manual_seed(seed)
    clients = {}
    for index, size in enumerate(sizes):
        x = torch.randn(size, 5, generator=generator)
        y = torch.randint(0, 3, (size,), generator=generator)
        clients[f"client-{index}"] = ClientData(x, y)
    return clients


def assert_same(first: Parameters, second: Parameters, atol: float = ATOL) -> None:
    assert first.names == second.names
    for name in first:
        np.testing.assert_allclose(first[name], second[name], atol=atol, rtol=0)


@pytest.mark.parametrize(
    "strategy_factory",
    [
        lambda: FedAvg(ClientSampling(fraction_fit=0.5, fraction_evaluate=0.5)),
        lambda: FedProx(0.3, ClientSampling(fraction_fit=0.5)),
    ],
    ids=["fedavg", "fedprox"],
)
def test_sequential_and_vectorized_engines_agree(strategy_factory: object) -> None:
    """Uneven client sizes (a client with 1 example, one with none), several epochs."""
    clients = client_data([7, 1, 12, 0, 5, 9])
    training = LocalTraining(epochs=2, batch_size=4, learning_rate=0.1)
    initial = parameters_of(model_factory())
    histories = []
    for engine in (
        SequentialEngine(torch_clients(model_factory, clients, training, seed=3)),
        VectorizedEngine(model_factory(), clients, training, seed=3),
    ):
        strategy = strategy_factory()  # type: ignore[operator]
        histories.append(run_federated(engine, strategy, initial, 3, rng=np.random.default_rng(11)))
    sequential, vectorized = histories
    assert_same(sequential.parameters, vectorized.parameters)
    assert sequential.parameters != initial  # training moved the model
    for first, second in zip(sequential.rounds, vectorized.rounds, strict=True):
        assert first.clients == second.clients
        assert first.fit_metrics["examples"] == second.fit_metrics["examples"]
        if first.evaluation is not None and second.evaluation is not None:
            assert first.evaluation.loss == pytest.approx(second.evaluation.loss, abs=1e-5)


def test_vectorized_engine_in_chunks_matches_one_chunk() -> None:
    clients = client_data([6, 3, 8, 2, 5])
    training = LocalTraining(epochs=1, batch_size=3, learning_rate=0.2)
    initial = parameters_of(model_factory())
    tasks = [(client_id, FitInstructions(1)) for client_id in clients]
    whole = VectorizedEngine(model_factory(), clients, training).fit(initial, tasks)
    chunked = VectorizedEngine(
        model_factory(), clients, training, max_stacked_elements=2 * initial.size
    ).fit(initial, tasks)
    for (id_a, a), (id_b, b) in zip(whole.results, chunked.results, strict=True):
        assert id_a == id_b
        assert_same(a.parameters, b.parameters, atol=1e-6)


def test_fedavg_with_one_client_and_one_step_is_centralized_sgd() -> None:
    data = client_data([16])
    only = data["client-0"]
    training = LocalTraining(epochs=1, batch_size=16, learning_rate=0.5)
    initial = parameters_of(model_factory())
    for engine in (
        SequentialEngine(torch_clients(model_factory, data, training)),
        VectorizedEngine(model_factory(), data, training),
    ):
        history = run_federated(engine, FedAvg(), initial, 1, rng=np.random.default_rng(0))
        model = model_factory()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        nn.functional.cross_entropy(model(only.x), only.y).backward()
        optimizer.step()
        assert_same(history.parameters, parameters_of(model), atol=1e-6)


class Flaky:
    """A client that fails on demand, else returns the global model plus one."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        if self.fail:
            raise ConnectionError("link lost")
        return FitResult(parameters.map(lambda a: a + 1.0), 10)

    def evaluate(
        self, parameters: Parameters, instructions: EvaluateInstructions
    ) -> EvaluateResult:
        return EvaluateResult(0.5, 10, {"accuracy": 1.0})


def test_a_failing_client_is_dropped_and_the_round_completes() -> None:
    engine = SequentialEngine({"a": Flaky(False), "b": Flaky(True), "c": Flaky(False)})
    start = Parameters({"w": np.zeros(3)})
    history = run_federated(engine, FedAvg(), start, 2, rng=np.random.default_rng(0))
    assert [r.failures for r in history.rounds] == [1, 1]
    assert [r.clients for r in history.rounds] == [2, 2]
    np.testing.assert_array_equal(history.parameters["w"], np.full(3, 2.0))


def test_too_few_answers_abort_the_round_and_keep_the_model() -> None:
    engine = SequentialEngine({"a": Flaky(False), "b": Flaky(True)})
    start = Parameters({"w": np.zeros(2)})
    strategy = FedAvg(ClientSampling(min_fit_clients=2))
    history = run_federated(engine, strategy, start, 2, rng=np.random.default_rng(0))
    assert all(r.aborted is not None and "needs at least 2" in r.aborted for r in history.rounds)
    assert history.parameters == start


def test_central_evaluation_and_callback_see_every_round() -> None:
    clients = client_data([10, 10])
    held_out = client_data([30], seed=9)["client-0"]
    seen: list[int] = []
    history = run_federated(
        VectorizedEngine(model_factory(), clients, LocalTraining(learning_rate=0.3)),
        FedAvg(),
        parameters_of(model_factory()),
        3,
        rng=np.random.default_rng(0),
        central_evaluation=torch_evaluator(model_factory(), held_out.x, held_out.y),
        on_round=lambda record: seen.append(record.server_round),
    )
    assert seen == [1, 2, 3]
    assert all(r.central_loss is not None for r in history.rounds)
    assert all(0.0 <= float(r.central_metrics["accuracy"]) <= 1.0 for r in history.rounds)


def test_vectorized_engine_refuses_models_with_buffers() -> None:
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match="without buffers"):
        VectorizedEngine(model, client_data([3]))


def test_unknown_client_ids_are_refused() -> None:
    engine = VectorizedEngine(model_factory(), client_data([3]))
    with pytest.raises(ValueError, match="unknown client id 'nobody'"):
        engine.fit(parameters_of(model_factory()), [("nobody", FitInstructions(1))])
    sequential = SequentialEngine({"a": Flaky(False)})
    with pytest.raises(ValueError, match="unknown client id 'nobody'"):
        sequential.fit(Parameters({"w": np.zeros(1)}), [("nobody", FitInstructions(1))])
