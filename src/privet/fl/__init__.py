"""Federated learning: parameters, clients, strategies, partitioners and engines.

Imports ``dp``, ``secagg`` and ``wire``. Secure aggregation runs as an engine
(:class:`SecAggEngine`) with sum-only strategies; distributed DP (:class:`DistributedDp`)
on top of it. Modules with heavy dependencies are imported by name:
:mod:`privet.fl.torch_client`, :mod:`privet.fl.vectorized` and :mod:`privet.fl.runner`
(torch), :mod:`privet.fl.ray_engine` (ray) and :mod:`privet.fl.deploy` (grpc) — see DESIGN.md.
"""

from __future__ import annotations

from privet.fl.central_dp import AdaptiveClippingDp, FixedClippingDp
from privet.fl.distributed_dp import DistributedDp
from privet.fl.engine import (
    CentralEvaluation,
    Engine,
    History,
    RoundRecord,
    SecureEngine,
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
from privet.fl.secure_client import SecureClientSession, SecureFitTask
from privet.fl.secure_engine import (
    InMemorySecureTransport,
    MaskingMode,
    SecAggEngine,
    SecureAggregation,
    SecureTransport,
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
    SecureContribution,
    SecureSum,
    Strategy,
    SumStrategy,
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
    "DistributedDp",
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
    "InMemorySecureTransport",
    "Krum",
    "LocalDpClient",
    "MaskingMode",
    "Metrics",
    "MultiKrum",
    "Parameters",
    "Partition",
    "RoundAborted",
    "RoundRecord",
    "RoundResults",
    "SampledStrategy",
    "Scalar",
    "SecAggEngine",
    "SecureAggregation",
    "SecureClientSession",
    "SecureContribution",
    "SecureEngine",
    "SecureFitTask",
    "SecureSum",
    "SecureTransport",
    "SequentialEngine",
    "Strategy",
    "SumStrategy",
    "dirichlet_partition",
    "iid_partition",
    "quantity_skew_partition",
    "run_federated",
    "sample_clients",
    "shard_partition",
    "split_arrays",
]
