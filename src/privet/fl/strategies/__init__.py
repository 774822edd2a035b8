"""Federated aggregation strategies, one small class each."""

from __future__ import annotations

from privet.fl.strategies.fedavg import FedAvg, FedProx
from privet.fl.strategies.fedopt import FedAdagrad, FedAdam, FedOpt, FedYogi
from privet.fl.strategies.robust import FedMedian, FedTrimmedAvg, Krum, MultiKrum

__all__ = [
    "FedAdagrad",
    "FedAdam",
    "FedAvg",
    "FedMedian",
    "FedOpt",
    "FedProx",
    "FedTrimmedAvg",
    "FedYogi",
    "Krum",
    "MultiKrum",
]
