"""privet's side of bench/bench_mpc.py: the workloads as privet programs, and the simulator.

:func:`privet_operation` builds every workload the same way wherever it runs: in
:class:`~privet.mpc.Simulator` here (:func:`measure_privet`), and in each party
process of a launched run (``bench/mpc_bench_party.py``), so that every run asks
its dealer for the same items in the same order, and the same dealer seed gives
the same output, bit for bit (:func:`check_identical`).

:func:`measure_privet` times each workload twice per repeat, with the dealer
called inline and with the dealer ahead (the items of a recorded
:class:`~privet.mpc.DealerPlan` made by :meth:`~privet.mpc.Dealer.preprocess`
before the clock starts); bench_mpc.py's docstring says what each figure covers.

The file is not named ``bench_*`` because ``make bench`` runs every ``bench/bench_*.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from torch import nn

from privet.mpc import Dealer, DealerPlan, Session, SharedTensor, Simulator

SEED = 0
DEALER_SEED = SEED.to_bytes(32, "big")
TORCH_MODELS_MISSING = "not available: privet.mpc.torch_models missing"


# -- workloads and figures --------------------------------------------------------------------


class Kind(Enum):
    MATMUL = "matmul"
    RELU = "relu"
    MLP = "mlp"
    CNN = "cnn"

    @property
    def is_model(self) -> bool:
        return self in (Kind.MLP, Kind.CNN)


#: Each workload's input files (stems) and the party that owns each; a model's weights
#: belong to MODEL_OWNER.
INPUT_OWNERS: dict[Kind, dict[str, int]] = {
    Kind.MATMUL: {"matmul_x": 0, "matmul_y": 1},
    Kind.RELU: {"relu_z": 0},
    Kind.MLP: {"mlp_images": 1},
    Kind.CNN: {"cnn_images": 1},
}
MODEL_OWNER = 0


@dataclass(frozen=True)
class Workload:
    kind: Kind
    size: int  # matrix side, element count or images

    @property
    def title(self) -> str:
        n = self.size
        return {
            Kind.MATMUL: f"matmul {n}×{n} @ {n}×{n}",
            Kind.RELU: f"ReLU on {n:,} elements",
            Kind.MLP: f"MLP 784-128-128-10, {n} images",
            Kind.CNN: f"CNN conv16-conv16-100-10, {n} images",
        }[self.kind]


@dataclass(frozen=True)
class Measured:
    """One system's figures on one workload."""

    seconds: float  # median over the repeats (privet: the online phase, dealer ahead)
    rounds: int
    bytes_sent: int  # per party
    output: NDArray[np.float64]  # opened after the clock


@dataclass(frozen=True, kw_only=True)
class PrivetMeasured(Measured):
    """privet in the simulator: ``seconds`` with the dealer ahead, and the other two modes."""

    dealer_seconds: float  # median of Dealer.preprocess(plan), the offline phase
    inline_seconds: float  # median with the dealer called inline


Outcome = Measured | str  # a string says why there is no measurement


class MismatchError(RuntimeError):
    """Two runs with the same dealer seed disagree: the bench's figures cannot be trusted."""


# -- the privet program, and its runs in the simulator ----------------------------------------


def privet_operation(
    w: Workload,
    session: Session,
    inputs: dict[str, NDArray[np.float64]],
    models: dict[Kind, nn.Sequential],
) -> Callable[[], SharedTensor] | str:
    """Share the inputs, and return the operation to time on them; or why it is not available.

    The simulator and the party processes (``bench/mpc_bench_party.py``) both build their
    runs here, so that they ask the dealer for the same items in the same order.
    """
    owners = INPUT_OWNERS[w.kind]
    if w.kind is Kind.MATMUL:
        x = session.share(inputs["matmul_x"], owner=owners["matmul_x"])
        y = session.share(inputs["matmul_y"], owner=owners["matmul_y"])
        return lambda: x @ y
    if w.kind is Kind.RELU:
        z = session.share(inputs["relu_z"], owner=owners["relu_z"])
        return z.relu
    try:
        from privet.mpc.torch_models import private_model
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "privet.mpc.torch_models":
            return TORCH_MODELS_MISSING
        return f"not available: privet.mpc.torch_models does not import ({exc})"
    model = private_model(models[w.kind], session, owner=MODEL_OWNER)
    stem = f"{w.kind.value}_images"
    images = session.share(inputs[stem], owner=owners[stem])
    return lambda: model(images)


@dataclass(frozen=True)
class SimulatedRun:
    """One run in the simulator with a fresh dealer: share, then the timed operation."""

    seconds: float
    dealer_seconds: float  # preprocess(plan); 0 when the dealer is called inline
    rounds: int
    bytes_sent: int
    shares: NDArray[np.uint64]  # the output's shares, both parties' rows
    output: NDArray[np.float64]  # opened after the clock
    plan: DealerPlan  # every item the dealer made in this run


def simulate(
    w: Workload,
    inputs: dict[str, NDArray[np.float64]],
    models: dict[Kind, nn.Sequential],
    plan: DealerPlan | None,
) -> SimulatedRun | str:
    """One run with ``Dealer(2, DEALER_SEED)``: inline (``plan`` None), or ahead, every
    item of ``plan`` made before the inputs are shared and the clock starts."""
    dealer = Dealer(2, seed=DEALER_SEED)
    dealer_seconds = 0.0 if plan is None else dealer.preprocess(plan)
    runtime = Simulator(2)
    operation = privet_operation(w, Session(runtime, dealer), inputs, models)
    if isinstance(operation, str):
        return operation
    made = dealer.stats.seconds
    before = (runtime.stats.rounds, runtime.stats.bytes_sent)
    started = time.perf_counter()
    result = operation()
    seconds = time.perf_counter() - started
    rounds = runtime.stats.rounds - before[0]
    sent = runtime.stats.bytes_sent - before[1]
    if plan is not None and (dealer.items_ahead or dealer.stats.seconds != made):
        raise MismatchError(
            f"{w.kind.value}: the dealer made items during the online phase "
            f"({dealer.items_ahead} planned items left, {dealer.stats.seconds - made:.3g} s "
            "spent): the plan does not cover the run"
        )
    return SimulatedRun(
        seconds, dealer_seconds, rounds, sent, result.shares, result.reveal(), dealer.plan()
    )


def check_identical(what: str, expected: NDArray[Any], got: NDArray[Any]) -> None:
    """Raise :class:`MismatchError` unless the two arrays are equal bit for bit."""
    if expected.dtype != got.dtype or expected.shape != got.shape:
        detail = f"{expected.dtype}{expected.shape} against {got.dtype}{got.shape}"
    elif expected.tobytes() != got.tobytes():
        # Compared as bytes, element by element: -0.0 and 0.0 differ, NaN equals itself.
        rows = [np.ascontiguousarray(a).view(np.uint8).reshape(a.size, -1) for a in (expected, got)]
        differing = int(np.sum(np.any(rows[0] != rows[1], axis=1)))
        detail = f"{differing} of {expected.size:,} values differ"
    else:
        return
    raise MismatchError(f"{what} must be bit-identical (the same dealer seed), got {detail}")


def measure_privet(
    w: Workload,
    inputs: dict[str, NDArray[np.float64]],
    models: dict[Kind, nn.Sequential],
    repeats: int,
    warmup: int,
) -> Outcome:
    """Inline and dealer-ahead runs, alternating; the first inline run records the plan."""
    plan: DealerPlan | None = None
    first: SimulatedRun | None = None
    inline_times, online_times, dealer_times = [], [], []
    for repeat in range(warmup + repeats):
        inline = simulate(w, inputs, models, None)
        if isinstance(inline, str):
            return inline
        if first is None:
            first, plan = inline, inline.plan
        ahead = simulate(w, inputs, models, plan)
        if isinstance(ahead, str):  # pragma: no cover - the inline run was available
            return ahead
        check_identical(f"{w.kind.value}: inline output shares", first.shares, inline.shares)
        check_identical(f"{w.kind.value}: dealer-ahead output shares", first.shares, ahead.shares)
        if repeat >= warmup:
            inline_times.append(inline.seconds)
            online_times.append(ahead.seconds)
            dealer_times.append(ahead.dealer_seconds)
    if first is None:  # pragma: no cover - repeats >= 1
        return "not measured"
    return PrivetMeasured(
        statistics.median(online_times),
        first.rounds,
        first.bytes_sent,
        first.output,
        dealer_seconds=statistics.median(dealer_times),
        inline_seconds=statistics.median(inline_times),
    )
