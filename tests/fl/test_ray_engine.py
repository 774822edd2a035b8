"""The Ray engine against the in-process reference engine, and its failure handling.

Reference: :class:`privet.fl.engine.SequentialEngine` running the same
``TorchClient`` objects (built by the same ``torch_clients`` call). Each client
runs the same code on the same batches in either engine; only the process
differs, so the global models agree to float32 rounding at most (atol 1e-6;
in practice they are bit-identical).

Ray starts once for the module (a few seconds); engines created later in the
module reuse it and must leave it running when closed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from privet.errors import PrivacyError  # noqa: E402
from privet.fl import (  # noqa: E402
    Client,
    ClientSampling,
    EvaluateInstructions,
    EvaluateResult,
    FedAvg,
    FedProx,
    FitInstructions,
    FitResult,
    Parameters,
)
from privet.fl.engine import SequentialEngine, run_federated  # noqa: E402
from privet.fl.ray_engine import RayEngine  # noqa: E402
from privet.fl.torch_client import (  # noqa: E402
    ClientData,
    LocalTraining,
    parameters_of,
    torch_clients,
)

# One xdist worker runs every Ray test: two Ray clusters starting at once on 2 cores time out.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

# Ray's workers cannot import this module (pytest put its folder on sys.path in this
# process only), so the factory and the test clients travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

ATOL = 1e-6
SIZES = [7, 1, 12, 0, 5, 9]  # uneven, with a one-example and an empty client
TRAINING = LocalTraining(epochs=2, batch_size=4, learning_rate=0.1)


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


class Broken:
    """Fails every fit, evaluates fine."""

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        raise ConnectionError("link lost")

    def evaluate(
        self, parameters: Parameters, instructions: EvaluateInstructions
    ) -> EvaluateResult:
        return EvaluateResult(0.5, 10, {"accuracy": 1.0})


class Mislaid(Broken):
    """Answers with parameters of another shape: the server's layout check must catch it."""

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        return FitResult(parameters.map(lambda array: np.zeros((2, *array.shape))), 4)


class Sleepy(Broken):
    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        time.sleep(30)
        return FitResult(parameters, 1)


class Dying(Broken):
    """Takes its worker process down with it."""

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        os._exit(3)


class PlusOne(Broken):
    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        return FitResult(parameters.map(lambda array: array + 1.0), 10)


def make_clients() -> dict[str, Client]:
    """The clients both engines run; ``broken`` is sampled like any other."""
    clients: dict[str, Client] = dict(
        torch_clients(model_factory, client_data(SIZES), TRAINING, seed=3)
    )
    clients["broken"] = Broken()
    return clients


def client_factory(client_id: str) -> Client:
    special: dict[str, Callable[[], object]] = {
        "mislaid": Mislaid,
        "not-a-client": object,
        "sleepy": Sleepy,
        "dying": Dying,
        "plus-one": PlusOne,
    }
    if client_id in special:
        return special[client_id]()  # type: ignore[return-value]
    return make_clients()[client_id]


CLIENT_IDS = [*make_clients(), "mislaid", "not-a-client"]


@pytest.fixture(scope="module")
def engine() -> Iterator[RayEngine]:
    was_running = ray.is_initialized()
    ray_engine = RayEngine(client_factory, CLIENT_IDS, num_workers=2)
    yield ray_engine
    ray_engine.close()
    # The engine shuts down the Ray it started, and only that one.
    assert ray.is_initialized() == was_running


def assert_same(first: Parameters, second: Parameters, atol: float = ATOL) -> None:
    assert first.names == second.names
    for name in first:
        assert first[name].dtype == second[name].dtype
        np.testing.assert_allclose(first[name], second[name], atol=atol, rtol=0)


@pytest.mark.parametrize(
    "strategy_factory",
    [
        lambda: FedAvg(ClientSampling(fraction_fit=0.5, fraction_evaluate=0.5)),
        lambda: FedProx(0.3, ClientSampling(fraction_fit=0.5, fraction_evaluate=0.5)),
    ],
    ids=["fedavg", "fedprox"],
)
def test_ray_and_sequential_engines_give_the_same_model(
    engine: RayEngine, strategy_factory: Callable[[], FedAvg]
) -> None:
    initial = parameters_of(model_factory())
    sequential = SequentialEngine(make_clients())
    ids = list(make_clients())
    histories = []
    for run_on in (sequential, engine):
        # The module engine also hosts two faulty clients; sample from the same ids.
        restricted = _Restricted(run_on, ids)
        histories.append(
            run_federated(restricted, strategy_factory(), initial, 3, rng=np.random.default_rng(11))
        )
    reference, over_ray = histories
    assert_same(reference.parameters, over_ray.parameters)
    assert over_ray.parameters != initial  # training moved the model
    sampled_broken = 0
    for first, second in zip(reference.rounds, over_ray.rounds, strict=True):
        assert (first.clients, first.failures) == (second.clients, second.failures)
        assert first.fit_metrics == second.fit_metrics
        assert first.evaluation is not None
        assert second.evaluation is not None
        assert first.evaluation.loss == pytest.approx(second.evaluation.loss, abs=ATOL)
        sampled_broken += second.failures
    assert sampled_broken > 0  # the failing client was sampled: both engines dropped it


class _Restricted:
    """An engine seen through a subset of its client ids."""

    def __init__(self, inner: SequentialEngine | RayEngine, ids: list[str]) -> None:
        self.inner = inner
        self.client_ids = ids

    def fit(self, parameters, tasks):  # type: ignore[no-untyped-def]
        return self.inner.fit(parameters, tasks)

    def evaluate(self, parameters, tasks):  # type: ignore[no-untyped-def]
        return self.inner.evaluate(parameters, tasks)

    def close(self) -> None:
        """The inner engine is the fixture's to close."""


def test_failing_clients_are_reported_and_the_round_completes(engine: RayEngine) -> None:
    initial = parameters_of(model_factory())
    tasks = [
        (client_id, FitInstructions(1))
        for client_id in ["client-0", "broken", "mislaid", "not-a-client", "client-2"]
    ]
    answers = engine.fit(initial, tasks)
    reference = SequentialEngine(make_clients()).fit(
        initial, [(client_id, FitInstructions(1)) for client_id in ["client-0", "client-2"]]
    )
    assert [client_id for client_id, _ in answers.results] == ["client-0", "client-2"]
    for (_, got), (_, expected) in zip(answers.results, reference.results, strict=True):
        assert_same(got.parameters, expected.parameters)
        assert got.num_examples == expected.num_examples
        assert got.metrics == expected.metrics
    reasons = dict(answers.failures)
    assert list(reasons) == ["broken", "mislaid", "not-a-client"]
    assert reasons["broken"] == "ConnectionError: link lost"  # as SequentialEngine words it
    # The server decodes with the global layout: the wrong shape is named, not reshaped.
    assert reasons["mislaid"].startswith("WireError: ")
    assert "'0.weight' must be float32[8, 5], got float64[2, 8, 5]" in reasons["mislaid"]
    assert "client_factory('not-a-client') must return a client" in reasons["not-a-client"]


def test_evaluate_matches_the_sequential_engine(engine: RayEngine) -> None:
    parameters = parameters_of(model_factory())
    ids = list(make_clients())
    tasks = [(client_id, EvaluateInstructions(2)) for client_id in ids]
    over_ray = engine.evaluate(parameters, tasks)
    reference = SequentialEngine(make_clients()).evaluate(parameters, tasks)
    assert over_ray.failures == reference.failures == []
    assert [c for c, _ in over_ray.results] == [c for c, _ in reference.results] == ids
    for (_, got), (_, expected) in zip(over_ray.results, reference.results, strict=True):
        assert got.num_examples == expected.num_examples
        assert got.metrics == pytest.approx(expected.metrics, abs=ATOL)
        if np.isnan(expected.loss):  # client-3 has no data: NaN travels as null and back
            assert np.isnan(got.loss)
        else:
            assert got.loss == pytest.approx(expected.loss, abs=ATOL)
    assert sum(np.isnan(result.loss) for _, result in over_ray.results) == 1


def test_unknown_client_ids_are_refused_before_anything_runs(engine: RayEngine) -> None:
    parameters = Parameters({"w": np.zeros(1)})
    with pytest.raises(PrivacyError, match="unknown client id 'nobody'"):
        engine.fit(parameters, [("client-0", FitInstructions(1)), ("nobody", FitInstructions(1))])
    with pytest.raises(PrivacyError, match="unknown client id 'nobody'"):
        engine.evaluate(parameters, [("nobody", EvaluateInstructions(1))])
    assert engine.fit(parameters, []).results == []


def test_a_lost_worker_fails_its_clients_and_is_replaced(engine: RayEngine) -> None:
    """One worker hosts both clients; ``dying`` kills it mid-round."""
    with RayEngine(client_factory, ["dying", "plus-one"], num_workers=1) as fragile:
        start = Parameters({"w": np.zeros(2)})
        answers = fragile.fit(start, [("dying", FitInstructions(1))])
        assert answers.results == []
        [(client_id, reason)] = answers.failures
        assert client_id == "dying"
        assert reason.startswith("worker lost: ")
        # The next half-round runs on a fresh worker.
        answers = fragile.fit(start, [("plus-one", FitInstructions(2))])
        assert answers.failures == []
        np.testing.assert_array_equal(answers.results[0][1].parameters["w"], np.ones(2))
    assert ray.is_initialized()  # it did not start Ray, so it left it running


def test_a_client_past_the_timeout_is_a_failure(engine: RayEngine) -> None:
    with RayEngine(client_factory, ["sleepy", "plus-one"], num_workers=2, timeout=1.0) as slow:
        started = time.perf_counter()
        answers = slow.fit(
            Parameters({"w": np.zeros(2)}),
            [("sleepy", FitInstructions(1)), ("plus-one", FitInstructions(1))],
        )
        assert time.perf_counter() - started < 10  # did not wait for the 30 s sleep
        assert [client_id for client_id, _ in answers.results] == ["plus-one"]
        assert answers.failures == [("sleepy", "timed out after 1 s")]


def test_close_is_idempotent_and_a_closed_engine_refuses_work(engine: RayEngine) -> None:
    other = RayEngine(client_factory, ["plus-one"])
    assert other.num_workers == 1  # never more workers than clients
    other.close()
    other.close()
    assert other.num_workers == 0
    with pytest.raises(PrivacyError, match="engine must be open"):
        other.fit(Parameters({"w": np.zeros(1)}), [("plus-one", FitInstructions(1))])
    assert ray.is_initialized()


def _refuse_to_unpickle() -> None:
    raise ImportError("no module named 'elsewhere' on this worker")


class Unshippable:
    """A factory that pickles here but cannot be rebuilt in a worker."""

    def __call__(self, client_id: str) -> Client:
        return PlusOne()

    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return _refuse_to_unpickle, ()


def test_a_factory_the_workers_cannot_load_fails_at_construction(engine: RayEngine) -> None:
    with pytest.raises(RuntimeError, match=r"Ray workers failed to start: .*elsewhere"):
        RayEngine(Unshippable(), ["plus-one"])
    assert ray.is_initialized()  # the failed engine did not start Ray, so left it running


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"client_ids": []}, "client_ids must be a non-empty sequence of strings, got \\[\\]"),
        ({"client_ids": "abc"}, "client_ids must be a non-empty sequence of strings"),
        ({"client_ids": ["a", ""]}, "client ids must be non-empty strings, got ''"),
        ({"client_ids": ["a", 3]}, "client ids must be non-empty strings, got 3"),
        ({"client_ids": ["a", "a"]}, "client ids must be unique, got 'a' twice"),
        ({"client_factory": 3}, "client_factory must be callable, got 3"),
        ({"num_workers": 0}, "num_workers must be"),
        ({"timeout": -1.0}, "timeout must be > 0, got -1.0"),
        ({"ray_init_options": {"address": "auto"}}, "ray_init_options must not hold 'address'"),
    ],
)
def test_bad_arguments_are_refused_before_ray_is_touched(
    arguments: dict[str, object], message: str
) -> None:
    """No engine fixture: these must fail without Ray (nothing is started or leaked)."""
    call: dict[str, object] = {"client_factory": client_factory, "client_ids": ["a"]}
    call.update(arguments)
    with pytest.raises(PrivacyError, match=message):
        RayEngine(**call)  # type: ignore[arg-type]
