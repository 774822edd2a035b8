"""Federated learning: parameters, clients, strategies, partitioners and engines.

Imports ``dp`` and ``wire``. Modules with heavy dependencies are imported by name:
:mod:`privet.fl.torch_client`, :mod:`privet.fl.vectorized` and :mod:`privet.fl.runner`
(torch), :mod:`privet.fl.ray_engine` (ray) and :mod:`privet.fl.deploy` (grpc) — see DESIGN.md.
"""

from __future__ import annotations

from privet.fl.central_dp import AdaptiveClippingDp, FixedClippingDp
from privet.fl.engine import (
    CentralEvaluation,
    Engine,
    History,
    RoundRecord,
    SequentialEngine,
    run_federated,
)
from privet.fl.local_dp import LocalDpClient
from privet.fl.parameters import Parameters
from privet.fl.partition import (
    Partition,
    dirichlet_partition,
    iid_partition,
    quantity_skew_partition,
    shard_partition,
    split_arrays,
)
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
from privet.fl.strategy import (
    Aggregate,
    ClientSampling,
    ClientUpdates,
    EvaluationSummary,
    SampledStrategy,
    Strategy,
    sample_clients,
)
from privet.fl.types import (
    Client,
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    Metrics,
    RoundAborted,
    RoundResults,
    Scalar,
)

__all__ = [
    "AdaptiveClippingDp",
    "Aggregate",
    "CentralEvaluation",
    "Client",
    "ClientSampling",
    "ClientUpdates",
    "Engine",
    "EvaluateInstructions",
    "EvaluateResult",
    "EvaluationSummary",
    "FedAdagrad",
    "FedAdam",
    "FedAvg",
    "FedMedian",
    "FedOpt",
    "FedProx",
    "FedTrimmedAvg",
    "FedYogi",
    "FitInstructions",
    "FitResult",
    "FixedClippingDp",
    "History",
    "Krum",
    "LocalDpClient",
    "Metrics",
    "MultiKrum",
    "Parameters",
    "Partition",
    "RoundAborted",
    "RoundRecord",
    "RoundResults",
    "SampledStrategy",
    "Scalar",
    "SequentialEngine",
    "Strategy",
    "dirichlet_partition",
    "iid_partition",
    "quantity_skew_partition",
    "run_federated",
    "sample_clients",
    "shard_partition",
    "split_arrays",
]
