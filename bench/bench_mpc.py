"""Secret-sharing MPC: privet against CrypTen on the same inputs, side by side.

Two parties, semi-honest, 16 fractional bits in ``Z_{2^64}`` on both sides
(CrypTen's default encoder and privet's default :class:`~privet.mpc.FixedPoint`).
Four workloads:

* matmul: ``X @ Y`` for two 256x256 matrices, uniform in [-1, 1), ``X`` party
  0's input and ``Y`` party 1's;
* ReLU on 100,000 elements uniform in [-4, 4) (party 0's input);
* private inference of an MLP 784-128-128-10 on 100 MNIST test images;
* private inference of a CNN (conv 16 5x5, pool 2, conv 16 5x5, pool 2,
  256-100-10) on the same 100 images.

The models (``bench/mpc_models.py``) are trained here, with a fixed seed, on
the training part of :func:`privet.data.load_mnist_subset`; the weights are
party 0's input, the images party 1's. Both systems get the very same inputs
and weights (CrypTen's through ``.npy`` and safetensors files).

What is timed ("online s", the median of ``--repeats`` runs after one warm-up):
the operation on inputs that are already secret-shared (and, for the models,
weights already shared), up to its output *shares*; sharing the inputs and
opening the output are outside the clock. Correlated randomness is made
inline on both sides, inside the clock: privet's :class:`~privet.mpc.Dealer`
is called by the protocols as they run, and CrypTen's default
trusted-first-party provider (``cfg.mpc.provider == "TFP"``) has party 0
generate each triple during the operation. privet's
:class:`~privet.mpc.Simulator` runs both parties in one process; CrypTen runs
2 processes (``crypten.mpc.run_multiprocess(world_size=2)``, gloo over
loopback), each timing the operation after a barrier; the figure is party 0's.

Communication, per party and per operation (the same for every repetition):
privet's :class:`~privet.mpc.CommStats` before and after the operation
(rounds; bytes a party sends). CrypTen's communicator statistics
(``comm.get().get_communication_stats()``, ``cfg.communicator.verbose`` on),
the delta around the operation: its rounds are its collective calls; its
bytes count an ``all_reduce`` of ``n`` elements as ``2 n * 8`` (what a party
sends plus what it receives). With two parties and the TFP provider every
exchange in these workloads is an ``all_reduce`` (checked once by counting
the communicator's calls), so the table gives CrypTen's logged bytes / 2 as
bytes sent. privet's dealer traffic (to the last party) is not in either
count; CrypTen's TFP provider sends none (party 0 is the dealer).

Accuracy: the opened output against a float64 plaintext computation (numpy for
matmul and ReLU, a float64 copy of the torch model for inference), the largest
absolute difference; for inference also how many predicted labels (argmax)
agree with the plaintext ones. The note counts outputs off by more than 0.5:
CrypTen 0.4.1's decoder (``FixedPointEncoder.decode``) floors a negative
encoding divided by ``2^16 - 1`` instead of ``2^16``, so a value in
``(-k-1, -k)`` within ``(k + 1) 2^-16`` of ``-k-1`` opens 1.0 too low (PEERS.md
saw the same). The target (the issue's): CrypTen's seconds at
least 2x privet's on every workload.

CrypTen 0.4.1 is installed with ``--no-deps`` (see the Makefile) and imported
through ``bench/crypten_loader.py``; it runs in a subprocess of its own (the
bench's ``--crypten-worker``, which hands files back, never pickles). If it
cannot be imported, its rows say why and privet's numbers still print.
Private inference on privet's side uses ``privet.mpc.torch_models``; until that
module exists its rows say so.

Run ``python bench/bench_mpc.py`` (about a minute on 2 cores) or with
``--quick`` for a smoke run of a few seconds (16x16 matmul, 1,000 ReLUs, 4
images, models trained one epoch, one repeat: the figures mean nothing). The
quick run includes CrypTen when it imports (its two processes start in about
2 s); ``--no-crypten`` leaves it out. Each CrypTen party runs on
``--crypten-threads`` torch threads (default 1: two parties on two cores; two
threads each oversubscribe the cores and made CrypTen several times slower
in a trial run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from rich.table import Table
from safetensors.torch import load_file, save_file
from torch import nn

from cli_helpers import make_console, package_version, positive_int, worker_env
from mpc_models import (
    ImageSplit,
    accuracy,
    load_mnist_subset,
    mnist_cnn,
    mnist_mlp,
    model_inputs,
    predict,
    train,
)
from privet.mpc import Dealer, Session, SharedTensor, Simulator

SEED = 0
DEALER_SEED = SEED.to_bytes(32, "big")
TARGET_RATIO = 2.0  # CrypTen seconds >= 2x privet's on every workload (the target)
REPEATS = 5
MATMUL_SIZE = 256
RELU_COUNT = 100_000
IMAGES = 100
EPOCHS = 10
QUICK_MATMUL_SIZE = 16
QUICK_RELU_COUNT = 1_000
QUICK_IMAGES = 4
QUICK_EPOCHS = 1
CRYPTEN_THREADS = 1  # torch threads per CrypTen party: 2 parties on 2 cores
CRYPTEN_TIMEOUT_S = 600
MISSING = "—"
FAR_ERROR = 0.5  # outputs off by more than this are counted in the note
CONFIG_FILE = "config.json"
RESULT_FILE = "crypten.json"
TORCH_MODELS_MISSING = "not available: privet.mpc.torch_models missing"


class Kind(Enum):
    MATMUL = "matmul"
    RELU = "relu"
    MLP = "mlp"
    CNN = "cnn"

    @property
    def is_model(self) -> bool:
        return self in (Kind.MLP, Kind.CNN)


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

    seconds: float  # median over the repeats
    rounds: int
    bytes_sent: int  # per party
    output: NDArray[np.float64]  # opened after the clock


Outcome = Measured | str  # a string says why there is no measurement


def workloads(quick: bool) -> list[Workload]:
    images = QUICK_IMAGES if quick else IMAGES
    return [
        Workload(Kind.MATMUL, QUICK_MATMUL_SIZE if quick else MATMUL_SIZE),
        Workload(Kind.RELU, QUICK_RELU_COUNT if quick else RELU_COUNT),
        Workload(Kind.MLP, images),
        Workload(Kind.CNN, images),
    ]


# -- inputs -----------------------------------------------------------------------------------


def make_inputs(
    work: list[Workload], split: ImageSplit, models: dict[Kind, nn.Sequential]
) -> dict[str, NDArray[np.float64]]:
    """Every workload's inputs, by file stem (``matmul_x``, ``relu_z``, ``mlp_images``, ...)."""
    rng = np.random.default_rng(SEED)
    arrays: dict[str, NDArray[np.float64]] = {}
    for w in work:
        if w.kind is Kind.MATMUL:
            arrays["matmul_x"] = rng.uniform(-1.0, 1.0, (w.size, w.size))
            arrays["matmul_y"] = rng.uniform(-1.0, 1.0, (w.size, w.size))
        elif w.kind is Kind.RELU:
            arrays["relu_z"] = rng.uniform(-4.0, 4.0, w.size)
        else:
            images = model_inputs(models[w.kind], split.test_images[: w.size])
            arrays[f"{w.kind.value}_images"] = np.asarray(images, dtype=np.float64)
    return arrays


def plaintext(
    w: Workload, inputs: dict[str, NDArray[np.float64]], models: dict[Kind, nn.Sequential]
) -> NDArray[np.float64]:
    """The float64 reference output."""
    if w.kind is Kind.MATMUL:
        return inputs["matmul_x"] @ inputs["matmul_y"]
    if w.kind is Kind.RELU:
        return np.maximum(inputs["relu_z"], 0.0)
    return predict(models[w.kind], inputs[f"{w.kind.value}_images"])


def train_models(split: ImageSplit, epochs: int) -> dict[Kind, tuple[nn.Sequential, float, float]]:
    """Each model, its training seconds and its plaintext test accuracy."""
    trained = {}
    for kind, build in ((Kind.MLP, mnist_mlp), (Kind.CNN, mnist_cnn)):
        started = time.perf_counter()
        model = train(build(SEED), split, epochs=epochs, seed=SEED)
        seconds = time.perf_counter() - started
        trained[kind] = (model, seconds, accuracy(model, split.test_images, split.test_labels))
    return trained


# -- privet -----------------------------------------------------------------------------------


def privet_operation(
    w: Workload,
    session: Session,
    inputs: dict[str, NDArray[np.float64]],
    models: dict[Kind, nn.Sequential],
) -> Callable[[], SharedTensor] | str:
    """The operation to time, its inputs already shared; or why it is not available."""
    if w.kind is Kind.MATMUL:
        x = session.share(inputs["matmul_x"], owner=0)
        y = session.share(inputs["matmul_y"], owner=1)
        return lambda: x @ y
    if w.kind is Kind.RELU:
        z = session.share(inputs["relu_z"], owner=0)
        return z.relu
    try:
        from privet.mpc.torch_models import private_model
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "privet.mpc.torch_models":
            return TORCH_MODELS_MISSING
        return f"not available: privet.mpc.torch_models does not import ({exc})"
    model = private_model(models[w.kind], session, owner=0)
    images = session.share(inputs[f"{w.kind.value}_images"], owner=1)
    return lambda: model(images)


def measure_privet(
    w: Workload,
    inputs: dict[str, NDArray[np.float64]],
    models: dict[Kind, nn.Sequential],
    repeats: int,
    warmup: int,
) -> Outcome:
    runtime = Simulator(2)
    session = Session(runtime, Dealer(2, seed=DEALER_SEED))
    operation = privet_operation(w, session, inputs, models)
    if isinstance(operation, str):
        return operation
    for _ in range(warmup):
        operation()
    times, rounds, sent = [], 0, 0
    result: SharedTensor | None = None
    for repeat in range(repeats):
        before = (runtime.stats.rounds, runtime.stats.bytes_sent)
        started = time.perf_counter()
        result = operation()
        times.append(time.perf_counter() - started)
        if repeat == 0:
            rounds = runtime.stats.rounds - before[0]
            sent = runtime.stats.bytes_sent - before[1]
    if result is None:  # pragma: no cover - repeats >= 1
        return "not measured"
    return Measured(statistics.median(times), rounds, sent, result.reveal())


# -- CrypTen (in a subprocess of its own, parties in processes of their own) ------------------


def crypten_sequential(crypten: ModuleType, model: nn.Sequential) -> Any:
    """The same network from ``crypten.nn`` layers, torch's weights copied in (plaintext:
    the caller encrypts it). CrypTen's ONNX converter (``from_pytorch``) is never used."""
    cnn = crypten.nn
    layers = []
    for layer in model:
        if isinstance(layer, nn.Linear):
            copy = cnn.Linear(layer.in_features, layer.out_features)
        elif isinstance(layer, nn.Conv2d):
            copy = cnn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel_size,
                stride=layer.stride,
                padding=layer.padding,
            )
        elif isinstance(layer, nn.ReLU):
            copy = cnn.ReLU()
        elif isinstance(layer, nn.MaxPool2d):
            copy = cnn.MaxPool2d(layer.kernel_size, stride=layer.stride)
        elif isinstance(layer, nn.Flatten):
            copy = cnn.Flatten()
        else:
            raise TypeError(f"no CrypTen counterpart for {type(layer).__name__}")
        for name, parameter in layer.named_parameters():
            copy.set_parameter(name, parameter.detach().clone())
        layers.append(copy)
    return cnn.Sequential(*layers)


def crypten_party(folder: str) -> None:
    """One CrypTen party (``run_multiprocess`` forks two): measure every workload; party 0
    writes the figures as JSON and the opened outputs as ``.npy`` into ``folder``."""
    import crypten
    import crypten.communicator as comm

    path = Path(folder)
    config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    torch.set_num_threads(config["threads"])
    crypten.cfg.communicator.verbose = True  # CrypTen counts rounds and bytes only then
    communicator = comm.get()
    rank = communicator.get_rank()

    def load(stem: str) -> torch.Tensor:
        return torch.from_numpy(np.load(path / f"{stem}.npy", allow_pickle=False))

    results: dict[str, Any] = {}
    for entry in config["workloads"]:
        kind = Kind(entry["kind"])
        if kind is Kind.MATMUL:
            x = crypten.cryptensor(load("matmul_x"), src=0)
            y = crypten.cryptensor(load("matmul_y"), src=1)
            operation = lambda x=x, y=y: x.matmul(y)  # noqa: E731
        elif kind is Kind.RELU:
            operation = crypten.cryptensor(load("relu_z"), src=0).relu
        else:
            torch_model = mnist_mlp() if kind is Kind.MLP else mnist_cnn()
            torch_model.load_state_dict(load_file(str(path / f"{kind.value}.safetensors")))
            model = crypten_sequential(crypten, torch_model).encrypt(src=0).eval()
            images = crypten.cryptensor(load(f"{kind.value}_images"), src=1)
            operation = lambda m=model, i=images: m(i)  # noqa: E731
        times, rounds, logged = [], 0, 0
        with crypten.no_grad():
            for _ in range(config["warmup"]):
                operation()
            for repeat in range(config["repeats"]):
                communicator.barrier()  # both parties start together
                before = dict(communicator.get_communication_stats())
                started = time.perf_counter()
                result = operation()
                times.append(time.perf_counter() - started)
                after = communicator.get_communication_stats()
                if repeat == 0:
                    rounds, logged = (
                        after["rounds"] - before["rounds"],
                        after["bytes"] - before["bytes"],
                    )
            opened = result.get_plain_text().double().numpy()
        if rank == 0:
            np.save(path / f"{kind.value}_out.npy", opened, allow_pickle=False)
            results[kind.value] = {"times": times, "rounds": rounds, "logged_bytes": logged}
    if rank == 0:
        summary = {"workloads": results, "provider": str(crypten.cfg.mpc.provider)}
        (path / RESULT_FILE).write_text(json.dumps(summary), encoding="utf-8")


def crypten_worker(folder: str) -> int:
    """The ``--crypten-worker`` subprocess: import CrypTen, fork its two parties."""
    path = Path(folder)
    try:
        from crypten_loader import load_crypten

        crypten = load_crypten()
    except Exception as exc:  # not installed, or an import that fails on this torch
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
        error = {"error": f"CrypTen does not import ({reason})"}
        (path / RESULT_FILE).write_text(json.dumps(error), encoding="utf-8")
        return 0
    returned = crypten.mpc.run_multiprocess(world_size=2)(crypten_party)(folder)
    if returned is None and not (path / RESULT_FILE).exists():
        error = {"error": "a CrypTen party failed (see its log)"}
        (path / RESULT_FILE).write_text(json.dumps(error), encoding="utf-8")
    return 0


def measure_crypten(
    work: list[Workload],
    inputs: dict[str, NDArray[np.float64]],
    models: dict[Kind, nn.Sequential],
    repeats: int,
    warmup: int,
    threads: int,
) -> tuple[dict[Kind, Outcome], str]:
    """CrypTen's outcome per workload, and the provider it ran with."""
    with tempfile.TemporaryDirectory(prefix="bench_mpc_") as folder:
        path = Path(folder)
        for stem, array in inputs.items():
            np.save(path / f"{stem}.npy", array, allow_pickle=False)
        for kind, model in models.items():
            state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(path / f"{kind.value}.safetensors"))
        config = {
            "workloads": [{"kind": w.kind.value, "size": w.size} for w in work],
            "repeats": repeats,
            "warmup": warmup,
            "threads": threads,
        }
        (path / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
        error = run_worker(folder)
        result_path = path / RESULT_FILE
        if error is None and not result_path.exists():
            error = "the CrypTen worker wrote no result"
        if error is not None:
            return {w.kind: f"not available: {error}" for w in work}, MISSING
        result = json.loads(result_path.read_text(encoding="utf-8"))
        if "error" in result:
            return {w.kind: f"not available: {result['error']}" for w in work}, MISSING
        outcomes: dict[Kind, Outcome] = {}
        for w in work:
            entry = result["workloads"][w.kind.value]
            output = np.load(path / f"{w.kind.value}_out.npy", allow_pickle=False)
            outcomes[w.kind] = Measured(
                statistics.median(entry["times"]),
                int(entry["rounds"]),
                # CrypTen logs an all_reduce as sent + received: half is what a party sends.
                round(entry["logged_bytes"] / 2),
                output.astype(np.float64),
            )
        return outcomes, str(result["provider"])


def run_worker(folder: str) -> str | None:
    """Run ``--crypten-worker`` and wait; an error line, or ``None`` when it exited 0."""
    command = [sys.executable, str(Path(__file__).resolve()), "--crypten-worker", folder]
    # A session of its own: on a timeout the worker and its parties go down together.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=CRYPTEN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return f"timed out at {CRYPTEN_TIMEOUT_S} s"
    if process.returncode != 0:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        return f"worker exited {process.returncode}: {(lines or ['no output'])[-1][:160]}"
    return None


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    workload: Workload
    privet: Outcome
    crypten: Outcome
    reference: NDArray[np.float64]

    @property
    def ratio(self) -> float | None:
        """CrypTen seconds / privet seconds."""
        if isinstance(self.privet, str) or isinstance(self.crypten, str):
            return None
        return self.crypten.seconds / self.privet.seconds

    @property
    def target_met(self) -> bool | None:
        ratio = self.ratio
        return None if ratio is None else ratio >= TARGET_RATIO


def max_error(outcome: Outcome, reference: NDArray[np.float64]) -> float | None:
    if isinstance(outcome, str):
        return None
    return float(np.max(np.abs(outcome.output - reference)))


def labels_agreeing(outcome: Outcome, reference: NDArray[np.float64]) -> int | None:
    if isinstance(outcome, str):
        return None
    return int(np.sum(outcome.output.argmax(axis=1) == reference.argmax(axis=1)))


def fmt_megabytes(nbytes: int) -> str:
    megabytes = nbytes / 1e6
    return f"{megabytes:,.0f}" if megabytes >= 100 else f"{megabytes:.3g}"


def system_cells(row: Row, outcome: Outcome) -> list[str]:
    if isinstance(outcome, str):
        return [MISSING] * 5 + [outcome]
    agree = labels_agreeing(outcome, row.reference) if row.workload.kind.is_model else None
    error = max_error(outcome, row.reference)
    far = int(np.sum(np.abs(outcome.output - row.reference) > FAR_ERROR))
    return [
        f"{outcome.seconds:.3g}",
        str(outcome.rounds),
        fmt_megabytes(outcome.bytes_sent),
        MISSING if error is None else f"{error:.2e}",
        MISSING if agree is None else f"{agree}/{row.workload.size}",
        f"{far} of {outcome.output.size:,} outputs off by > {FAR_ERROR:g}" if far else "",
    ]


def table(rows: list[Row]) -> Table:
    result = Table(
        title="Two-party MPC, online phase (inputs already shared), median seconds",
        title_justify="left",
    )
    for name in (
        "workload",
        "system",
        "online s",
        "rounds",
        "MB sent\n/ party",
        "max |error|\nvs float64",
        "labels\nagree",
        "CrypTen s\n/ privet s",
        f"target\n≥ {TARGET_RATIO:g}×",
    ):
        result.add_column(name, justify="left" if name in ("workload", "system") else "right")
    result.add_column("note", overflow="fold", min_width=20)
    for row in rows:
        ratio = MISSING if row.ratio is None else f"{row.ratio:.2f}×"
        target = {True: "met", False: "missed", None: MISSING}[row.target_met]
        privet = system_cells(row, row.privet)
        crypten = system_cells(row, row.crypten)
        result.add_row(row.workload.title, "privet", *privet[:5], ratio, target, privet[5])
        result.add_row("", "CrypTen", *crypten[:5], "", "", crypten[5], end_section=True)
    return result


def summary(rows: list[Row]) -> str:
    met = [r.workload.kind.value for r in rows if r.target_met is True]
    missed = [r.workload.kind.value for r in rows if r.target_met is False]
    unmeasured = [r.workload.kind.value for r in rows if r.target_met is None]
    parts = [f"met on {', '.join(met) or 'none'}", f"missed on {', '.join(missed) or 'none'}"]
    if unmeasured:
        parts.append(f"not measured on {', '.join(unmeasured)}")
    return f"target (CrypTen s ≥ {TARGET_RATIO:g}× privet s on each workload): " + "; ".join(parts)


def machine_facts() -> str:
    return (
        f"python {platform.python_version()} · numpy {np.__version__} · torch {torch.__version__}"
        f" · crypten {package_version('crypten')} · privet {package_version('privet')} · "
        f"{os.cpu_count()} CPUs · {platform.machine()} · "
        f"{datetime.now().astimezone().isoformat(timespec='seconds')}"
    )


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 16x16 matmul, 1,000 ReLUs, 4 images, 1 epoch, 1 repeat, no warm-up",
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=REPEATS, help="timed runs per workload (median)"
    )
    parser.add_argument("--no-crypten", action="store_true", help="privet's rows only")
    parser.add_argument(
        "--crypten-threads",
        type=positive_int,
        default=CRYPTEN_THREADS,
        help="torch threads in each CrypTen party process",
    )
    parser.add_argument(
        "--crypten-worker", metavar="DIR", help="internal: run CrypTen's parties on DIR's inputs"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.crypten_worker:
        return crypten_worker(args.crypten_worker)
    return run(args)


def run(args: argparse.Namespace) -> int:
    quick: bool = args.quick
    repeats = 1 if quick else args.repeats
    warmup = 0 if quick else 1
    console = make_console()
    started = time.perf_counter()
    console.print(machine_facts())
    work = workloads(quick)
    split = load_mnist_subset()
    epochs = QUICK_EPOCHS if quick else EPOCHS
    trained = train_models(split, epochs)
    models = {kind: model for kind, (model, _, _) in trained.items()}
    for kind, (_, seconds, acc) in trained.items():
        console.print(
            f"{kind.value.upper()}: trained {epochs} epoch(s) on {len(split.train_labels):,} "
            f"images in {seconds:.2f} s, plaintext test accuracy {acc:.3f} "
            f"on {len(split.test_labels):,}"
        )
    inputs = make_inputs(work, split, models)

    privet: dict[Kind, Outcome] = {}
    for w in work:
        privet[w.kind] = measure_privet(w, inputs, models, repeats, warmup)
        console.print(f"privet {w.kind.value} done at {time.perf_counter() - started:.1f} s")
    provider = MISSING
    if args.no_crypten:
        crypten: dict[Kind, Outcome] = {w.kind: "skipped (--no-crypten)" for w in work}
    else:
        crypten, provider = measure_crypten(
            work, inputs, models, repeats, warmup, args.crypten_threads
        )
        console.print(f"CrypTen done at {time.perf_counter() - started:.1f} s")

    rows = [Row(w, privet[w.kind], crypten[w.kind], plaintext(w, inputs, models)) for w in work]
    console.print(table(rows))
    console.print(
        f"note: privet's Simulator(2) runs both parties in one process (numpy, dealer inline); "
        f"CrypTen's 2 parties are 2 processes (run_multiprocess, gloo on loopback, provider "
        f"{provider}, {args.crypten_threads} torch thread(s) each), timed by party 0. "
        f"{repeats} timed run(s) after {warmup} warm-up; CrypTen's bytes are its logged "
        f"bytes / 2 (it counts an all_reduce as sent + received)."
        + (" Quick: the figures mean nothing." if quick else "")
    )
    console.print(summary(rows))
    console.print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
