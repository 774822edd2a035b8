"""Differential privacy: mechanisms, exact samplers, accounting, the budget ledger, statistics.

numpy, scipy and dp-accounting only — never torch (see DESIGN.md).
"""

from __future__ import annotations

from privet.dp.accounting import (
    AccountantName,
    NeighboringRelation,
    delta,
    epsilon,
    make_accountant,
    noise_multiplier_for,
)
from privet.dp.calibration import calibrate_gaussian, classic_gaussian_sigma, laplace_scale
from privet.dp.events import (
    DiscreteGaussianDpEvent,
    DpEvent,
    PureDpEvent,
    describe_event,
    dpsgd_event,
    event_from_json,
    event_to_json,
)
from privet.dp.ledger import Charge, Ledger
from privet.dp.mechanisms import (
    DiscreteGaussianMechanism,
    DiscreteLaplaceMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    Mechanism,
    RandomizedResponse,
)
from privet.dp.randomness import (
    GeneratorRandom,
    OsRandom,
    RandomSource,
    RngLike,
    SeededRandomnessWarning,
)
from privet.dp.selection import ExponentialMechanism, PermuteAndFlip, ReportNoisyMax
from privet.dp.statistics import (
    dp_count,
    dp_histogram,
    dp_mean,
    dp_quantile,
    dp_quantiles,
    dp_sum,
    dp_variance,
)

__all__ = [
    "AccountantName",
    "Charge",
    "DiscreteGaussianDpEvent",
    "DiscreteGaussianMechanism",
    "DiscreteLaplaceMechanism",
    "DpEvent",
    "ExponentialMechanism",
    "GaussianMechanism",
    "GeneratorRandom",
    "LaplaceMechanism",
    "Ledger",
    "Mechanism",
    "NeighboringRelation",
    "OsRandom",
    "PermuteAndFlip",
    "PureDpEvent",
    "RandomSource",
    "RandomizedResponse",
    "ReportNoisyMax",
    "RngLike",
    "SeededRandomnessWarning",
    "calibrate_gaussian",
    "classic_gaussian_sigma",
    "delta",
    "describe_event",
    "dp_count",
    "dp_histogram",
    "dp_mean",
    "dp_quantile",
    "dp_quantiles",
    "dp_sum",
    "dp_variance",
    "dpsgd_event",
    "epsilon",
    "event_from_json",
    "event_to_json",
    "laplace_scale",
    "make_accountant",
    "noise_multiplier_for",
]
