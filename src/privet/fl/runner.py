"""Build and run a federated simulation from a :class:`~privet.fl.config.RunConfig`.

Data, partition, model, clients, engine, strategy, DP wrapper and ledger
are assembled here from the typed configuration (torch is needed: the
models are PyTorch). ``privet fl run CONFIG`` and the demo call
:func:`run_config`; library users may call each builder on its own.

Preprocessing note: MNIST pixels are scaled by 255 (no statistics of the
data); the breast-cancer features are standardized with the pooled training
split's mean and deviation, a simulation convenience outside any DP
guarantee (a deployment would use public or separately privatized scales).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from privet.dp import DpEvent, Ledger
from privet.errors import PrivacyError
from privet.fl.central_dp import AdaptiveClippingDp, FixedClippingDp
from privet.fl.config import (
    Dataset,
    DpMode,
    EngineKind,
    ModelKind,
    PartitionScheme,
    RunConfig,
    StrategyName,
    client_ids,
)
from privet.fl.engine import Engine, History, RoundRecord, SequentialEngine, run_federated
from privet.fl.local_dp import LocalDpClient, local_dp_event
from privet.fl.parameters import Parameters
from privet.fl.partition import (
    Partition,
    dirichlet_partition,
    iid_partition,
    quantity_skew_partition,
    shard_partition,
)
from privet.fl.secure_engine import SecAggEngine
from privet.fl.strategies import (
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    FedYogi,
    Krum,
    MultiKrum,
)
from privet.fl.strategy import ClientSampling, Strategy
from privet.fl.torch_client import (
    ClientData,
    LocalTraining,
    TorchClient,
    parameters_of,
    torch_evaluator,
)
from privet.fl.types import (
    Client,
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    RoundResults,
)
from privet.fl.vectorized import VectorizedEngine

__all__ = [
    "FederatedData",
    "RunOutcome",
    "build_engine",
    "build_model",
    "build_strategy",
    "load_federated_data",
    "run_config",
    "train_centralized",
]


@dataclass(frozen=True)
class FederatedData:
    """Clients' training tensors and the server's held-out test set."""

    clients: dict[str, ClientData]
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_features: int
    num_classes: int
    partition: Partition


def _split(
    features: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = round(test_fraction * len(labels))
    test, train = order[:cut], order[cut:]
    return features[train], labels[train], features[test], labels[test]


def load_federated_data(config: RunConfig) -> FederatedData:
    """Load the bundled data set, hold out a test split, partition the rest over clients."""
    seed = config.engine.seed
    if config.data.dataset is Dataset.MNIST:
        from privet.data import load_mnist_subset

        images = load_mnist_subset(test_size=max(1, round(5000 * config.data.test_fraction)))
        x_train, y_train = images.train_images, images.train_labels
        x_test, y_test = images.test_images, images.test_labels
    else:
        from privet.data import load_breast_cancer

        table = load_breast_cancer()
        x_train, y_train, x_test, y_test = _split(
            table.features, table.target.astype(np.int64), config.data.test_fraction, seed
        )
        mean, scale = x_train.mean(axis=0), x_train.std(axis=0) + 1e-12
        x_train, x_test = (x_train - mean) / scale, (x_test - mean) / scale
    rng = np.random.default_rng(seed)
    p = config.partition
    clients = p.clients
    if p.scheme is PartitionScheme.IID:
        partition = iid_partition(len(y_train), clients, rng)
    elif p.scheme is PartitionScheme.DIRICHLET:
        partition = dirichlet_partition(y_train, clients, p.alpha, rng, min_examples=p.min_examples)
    elif p.scheme is PartitionScheme.SHARDS:
        partition = shard_partition(y_train, clients, p.shards_per_client, rng)
    else:
        partition = quantity_skew_partition(
            len(y_train), clients, p.alpha, rng, min_examples=p.min_examples
        )
    x_all = torch.as_tensor(np.asarray(x_train, dtype=np.float32))
    y_all = torch.as_tensor(np.asarray(y_train, dtype=np.int64))
    client_data = {
        client_id: ClientData(x_all[rows_of], y_all[rows_of])
        for client_id, rows_of in zip(
            client_ids(clients),
            (torch.tensor(rows, dtype=torch.long) for rows in partition.client_indices),
            strict=True,
        )
    }
    return FederatedData(
        clients=client_data,
        x_test=torch.as_tensor(np.asarray(x_test, dtype=np.float32)),
        y_test=torch.as_tensor(np.asarray(y_test, dtype=np.int64)),
        num_features=int(x_all.shape[1]),
        num_classes=int(max(y_all.max(), torch.as_tensor(y_test).max())) + 1,
        partition=partition,
    )


def build_model(config: RunConfig, num_features: int, num_classes: int) -> Callable[[], nn.Module]:
    """A factory of identically initialised models (seeded by the engine seed)."""
    kind, hidden, seed = config.model.kind, config.model.hidden, config.engine.seed

    def factory() -> nn.Module:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            if kind is ModelKind.LOGISTIC:
                return nn.Linear(num_features, num_classes)
            layers: list[nn.Module] = []
            width = num_features
            for size in hidden:
                layers += [nn.Linear(width, size), nn.ReLU()]
                width = size
            return nn.Sequential(*layers, nn.Linear(width, num_classes))
        finally:
            # Building a model must not disturb the caller's global torch RNG.
            torch.random.set_rng_state(generator_state)

    return factory


def build_strategy(config: RunConfig, ledger: Ledger | None) -> Strategy:
    """The configured strategy, wrapped in central DP when asked."""
    s, dp = config.strategy, config.dp
    central = dp is not None and dp.mode is not DpMode.LOCAL
    # Central DP samples clients itself (Poisson); the wrapped strategy must ask them all.
    sampling = (
        ClientSampling()
        if central
        else ClientSampling(fraction_fit=s.fraction_fit, min_fit_clients=s.min_fit_clients)
    )
    builders: dict[StrategyName, Callable[[], Strategy]] = {
        StrategyName.FEDAVG: lambda: FedAvg(sampling),
        StrategyName.FEDPROX: lambda: FedProx(s.proximal_mu, sampling),
        StrategyName.FEDADAGRAD: lambda: FedAdagrad(sampling, eta=s.eta),
        StrategyName.FEDADAM: lambda: FedAdam(sampling, eta=s.eta),
        StrategyName.FEDYOGI: lambda: FedYogi(sampling, eta=s.eta),
        StrategyName.FEDMEDIAN: lambda: FedMedian(sampling),
        StrategyName.TRIMMED_MEAN: lambda: FedTrimmedAvg(s.beta, sampling),
        StrategyName.KRUM: lambda: Krum(s.num_byzantine, sampling),
        StrategyName.MULTIKRUM: lambda: MultiKrum(s.num_byzantine, s.num_selected, sampling),
    }
    strategy = builders[s.name]()
    if dp is None or dp.mode is DpMode.LOCAL:
        return strategy
    if dp.mode is DpMode.CENTRAL:
        return FixedClippingDp(
            strategy,
            noise_multiplier=dp.noise_multiplier,
            clip_norm=dp.clip_norm,
            sampling_rate=dp.sampling_rate,
            population=config.partition.clients,
            ledger=ledger,
        )
    return AdaptiveClippingDp(
        strategy,
        noise_multiplier=dp.noise_multiplier,
        initial_clip_norm=dp.clip_norm,
        sampling_rate=dp.sampling_rate,
        population=config.partition.clients,
        clipped_count_stddev=dp.clipped_count_stddev,
        ledger=ledger,
    )


def local_training(config: RunConfig, *, epochs: int | None = None) -> LocalTraining:
    """The configured local SGD (``epochs`` overrides the configured count)."""
    return LocalTraining(
        epochs=epochs if epochs is not None else config.training.epochs,
        batch_size=config.training.batch_size,
        learning_rate=config.training.learning_rate,
    )


class _LocalDpRound:
    """Charges a shared ledger once per round for locally private clients.

    Each client's guarantee composes over the rounds it takes part in; the
    worst-case client takes part in every round, so one per-client event per
    round is what the run spends for any client.
    """

    def __init__(self, engine: Engine, event: DpEvent, ledger: Ledger | None) -> None:
        self.engine, self.event, self.ledger = engine, event, ledger

    @property
    def client_ids(self) -> Sequence[str]:
        return self.engine.client_ids

    def fit(
        self, parameters: Parameters, tasks: Sequence[tuple[str, FitInstructions]]
    ) -> RoundResults[FitResult]:
        if tasks and self.ledger is not None:
            self.ledger.charge(
                self.event,
                label=f"fl round {tasks[0][1].server_round}: local DP (per client)",
            )
        return self.engine.fit(parameters, tasks)

    def evaluate(
        self, parameters: Parameters, tasks: Sequence[tuple[str, EvaluateInstructions]]
    ) -> RoundResults[EvaluateResult]:
        return self.engine.evaluate(parameters, tasks)

    def close(self) -> None:
        self.engine.close()


def _secure_engine(config: RunConfig, data: FederatedData, local: bool) -> Engine:
    """Every client in this process behind SecAgg/SecAgg+ (each a session of its own)."""
    if config.engine.kind is not EngineKind.SEQUENTIAL or local:
        raise PrivacyError(
            "secure aggregation in a local run needs engine.kind 'sequential' (each client "
            "runs its own protocol session) and no local DP, got engine.kind "
            f"{config.engine.kind.value!r}" + (" with local DP" if local else "")
        )
    clients = {client_id: client_from_data(config, data, client_id) for client_id in data.clients}
    # Keys, masks and ring orders from the OS CSPRNG: the seed drives training only.
    return SecAggEngine.in_memory(clients, config.secure_aggregation)


def build_engine(
    config: RunConfig,
    data: FederatedData,
    model_factory: Callable[[], nn.Module],
    ledger: Ledger | None,
) -> Engine:
    """The configured engine over the clients (locally private clients if asked)."""
    training = local_training(config)
    seed, kind, dp = config.engine.seed, config.engine.kind, config.dp
    local = dp is not None and dp.mode is DpMode.LOCAL
    if config.secure_aggregation is not None:
        return _secure_engine(config, data, local)
    if kind is EngineKind.VECTORIZED:
        if local:
            raise PrivacyError(
                "local DP needs engine.kind 'sequential' or 'ray' (each client noises its own "
                "update); the vectorized engine trains clients as one computation"
            )
        return VectorizedEngine(model_factory(), data.clients, training, seed=seed)
    if kind is EngineKind.RAY:
        from privet.fl.ray_engine import RayEngine

        # Workers rebuild their clients from the configuration (bundled data, seeded
        # partition): no client data travels through Ray's pickling.
        factory = functools.partial(client_from_config, config)
        engine: Engine = RayEngine(factory, list(data.clients))
    else:
        engine = SequentialEngine(
            {client_id: client_from_data(config, data, client_id) for client_id in data.clients}
        )
    if local and dp is not None:
        return _LocalDpRound(engine, local_dp_event(dp.noise_multiplier), ledger)
    return engine


@functools.lru_cache(maxsize=4)
def _cached_data(config: RunConfig) -> FederatedData:
    return load_federated_data(config)


def client_from_config(config: RunConfig, client_id: str) -> Client:
    """One client of the configured run, built in the calling process (for Ray workers).

    The data come from the bundled data set and the seeded partition, so every
    process builds the same clients.
    """
    return client_from_data(config, _cached_data(config), client_id)


def client_from_data(config: RunConfig, data: FederatedData, client_id: str) -> Client:
    """The configured client ``client_id`` over ``data`` (locally private if asked)."""
    if client_id not in data.clients:
        raise PrivacyError(f"unknown client id {client_id!r}")
    training = local_training(config)
    index = list(data.clients).index(client_id)
    model_factory = build_model(config, data.num_features, data.num_classes)
    client: Client = TorchClient(
        model_factory(),
        data.clients[client_id],
        training,
        seed=config.engine.seed,
        client_index=index,
    )
    dp = config.dp
    if dp is not None and dp.mode is DpMode.LOCAL:
        client = LocalDpClient(client, clip_norm=dp.clip_norm, noise_multiplier=dp.noise_multiplier)
    return client


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its history, the ledger it charged, the data it used."""

    history: History
    ledger: Ledger | None
    data: FederatedData


def open_ledger(config: RunConfig) -> Ledger | None:
    dp = config.dp
    if dp is None:
        return None
    return Ledger(
        dp.epsilon,
        dp.delta,
        accountant=dp.accountant,  # type: ignore[arg-type]
        path=dp.ledger,
    )


def run_config(
    config: RunConfig,
    *,
    ledger: Ledger | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    data: FederatedData | None = None,
) -> RunOutcome:
    """Run the configured federation; ``ledger`` overrides the one ``[dp]`` describes."""
    data = data if data is not None else load_federated_data(config)
    model_factory = build_model(config, data.num_features, data.num_classes)
    if ledger is None:
        ledger = open_ledger(config)
    engine = build_engine(config, data, model_factory, ledger)
    try:
        history = run_federated(
            engine,
            build_strategy(config, ledger),
            parameters_of(model_factory()),
            config.rounds,
            rng=np.random.default_rng(config.engine.seed),
            central_evaluation=torch_evaluator(model_factory(), data.x_test, data.y_test),
            on_round=on_round,
        )
    finally:
        engine.close()
    return RunOutcome(history, ledger, data)


def train_centralized(config: RunConfig, data: FederatedData) -> tuple[float, float]:
    """The non-federated, non-private baseline: the same model trained on the pooled
    clients' data for ``rounds * epochs`` epochs; returns (test loss, test accuracy)."""
    factory = build_model(config, data.num_features, data.num_classes)
    pooled = ClientData(
        torch.cat([c.x for c in data.clients.values()]),
        torch.cat([c.y for c in data.clients.values()]),
        data.x_test,
        data.y_test,
    )
    training = local_training(config, epochs=config.rounds * config.training.epochs)
    client = TorchClient(factory(), pooled, training, seed=config.engine.seed)
    trained = client.fit(parameters_of(factory()), FitInstructions(1)).parameters
    result = client.evaluate(trained, EvaluateInstructions(1))
    return result.loss, float(result.metrics.get("accuracy", float("nan")))
