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
and weights (CrypTen's and privet's party processes through ``.npy`` and
safetensors files).

What every clock covers: the operation on inputs that are already secret-shared
(and, for the models, weights already shared), up to its output *shares*;
sharing the inputs and opening the output are outside it. Each figure is the
median of ``--repeats`` runs after one warm-up. The time table's columns:

* **privet online s** (dealer ahead): :class:`~privet.mpc.Simulator` (both
  parties in this process). The first inline run (the warm-up; the timed run
  under ``--quick``) records its :class:`~privet.mpc.DealerPlan`
  (:meth:`~privet.mpc.Dealer.plan`: every item it asked for, input masks
  included). Each repeat then builds a fresh ``Dealer(2, seed)``, makes the
  whole plan with :meth:`~privet.mpc.Dealer.preprocess`, shares the inputs
  (they take the planned input masks) and times the operation alone: the
  protocols only take items made before. The bench checks that the dealer made
  nothing during the clock (its ``stats.seconds`` did not grow, no planned
  item was left over).
* **privet dealer s** (ahead, offline): what ``preprocess(plan)`` returned in
  the same repeats: every item of the run, the input masks included.
* **privet inline s**: the same simulator with a fresh ``Dealer(2, seed)``
  that the protocols call as they run, so its work is inside the clock. This
  is the mode that matches CrypTen's: its default trusted-first-party provider
  (``cfg.mpc.provider == "TFP"``) has party 0 generate each triple during the
  operation. Repeats alternate inline and ahead runs, so that a busy machine
  slows both alike.
* **privet 3-process s**: 2 party processes and privet's dealer process on
  loopback (:func:`privet.mpc.launch`, authenticated TCP), each party running
  ``bench/mpc_bench_party.py``. A first launch (dealer on request) records the
  plan and warms the caches; a second launch passes it (``plan=``), so the
  dealer process makes and streams the items while the parties compute. In
  each launch a party shares the inputs, runs the operation once untimed, then
  ``--repeats`` times, each after a one-round barrier; the figure is party 0's
  median in the second launch. The dealer process works during the clock, on
  the same two cores: it makes and sends the plan's items as fast as it can,
  so the first repeats share the cores with it (they are slower than the last
  ones, and the median counts them). The first launch's median (dealer on
  request) is in the note below the table.
* **CrypTen s**: CrypTen's 2 processes
  (``crypten.mpc.run_multiprocess(world_size=2)``, gloo over loopback), each
  timing the operation after a barrier; the figure is party 0's.

The ratios, each CrypTen's seconds over privet's:

* **online** = CrypTen s / privet online s. The field's usual figure: MPC
  papers report the online phase and count preprocessing apart (SecureML,
  Mohassel & Zhang, IEEE S&P 2017; ABY3, Mohassel & Rindal, CCS 2018), because
  correlated randomness depends on no input and can be made before the inputs
  exist. CrypTen's TFP figure includes its triple generation, so this ratio
  flatters privet.
* **end-to-end** = CrypTen s / (privet online s + privet dealer s): the
  conservative one. privet pays for every item of the run, input masks
  included (CrypTen's clock has no input sharing in it), with nothing
  overlapped: the offline and online phases one after the other.
* **3-process** = CrypTen s / privet 3-process s: both systems as separate
  processes talking over loopback, privet's dealer a third process.

The TARGET_RATIO check (the issue's target: CrypTen's seconds at least 2x
privet's on every workload) marks each of the three ratios.

Same seed, same items: the inline and ahead runs must give bit-identical
output shares, and the first (untimed) run of the real parties must open to
bit-identical values; either mismatch stops the bench with
``mpc_privet.MismatchError``. ``bench/mpc_privet.py`` holds privet's side (the
workloads as privet programs, the simulator runs) that the bench and its party
script share.

Communication, per party and per operation (the same for every repetition):
privet's :class:`~privet.mpc.CommStats` before and after the operation
(rounds; bytes a party sends), in the simulator and in party 0's process.
CrypTen's communicator statistics (``comm.get().get_communication_stats()``,
``cfg.communicator.verbose`` on), the delta around the operation: its rounds
are its collective calls; its bytes count an ``all_reduce`` of ``n`` elements
as ``2 n * 8`` (what a party sends plus what it receives). With two parties
and the TFP provider every exchange in these workloads is an ``all_reduce``
(checked once by counting the communicator's calls), so the table gives
CrypTen's logged bytes / 2 as bytes sent. privet's dealer traffic (to the last
party) is not in either count; CrypTen's TFP provider sends none (party 0 is
the dealer).

Accuracy: the opened output against a float64 plaintext computation (numpy for
matmul and ReLU, a float64 copy of the torch model for inference), the largest
absolute difference; for inference also how many predicted labels (argmax)
agree with the plaintext ones. The note counts outputs off by more than 0.5:
CrypTen 0.4.1's decoder (``FixedPointEncoder.decode``) floors a negative
encoding divided by ``2^16 - 1`` instead of ``2^16``, so a value in
``(-k-1, -k)`` within ``(k + 1) 2^-16`` of ``-k-1`` opens 1.0 too low (PEERS.md
saw the same).

CrypTen 0.4.1 is installed with ``--no-deps`` (see the Makefile) and imported
through ``bench/crypten_loader.py``; it runs in a subprocess of its own (the
bench's ``--crypten-worker``, which hands files back, never pickles). If it
cannot be imported, its rows say why and privet's numbers still print.
Private inference on privet's side uses ``privet.mpc.torch_models``; until that
module exists its rows say so.

Run ``python bench/bench_mpc.py`` (a few minutes on 2 cores) or with
``--quick`` for a smoke run of about 15 s (16x16 matmul, 1,000 ReLUs, 4
images, models trained one epoch, one repeat, no warm-up: the figures mean
nothing; the real parties run the matmul only). The quick run includes CrypTen
when it imports (its two processes start in about 2 s); ``--no-crypten`` leaves
it out, ``--no-processes`` privet's real parties. Each CrypTen party runs on
``--crypten-threads`` torch threads and each privet party process on
``--party-threads`` (default 1 both: two parties on two cores; two threads each
oversubscribe the cores and made CrypTen several times slower in a trial run).
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
from mpc_privet import (
    DEALER_SEED,
    SEED,
    Kind,
    Measured,
    Outcome,
    PrivetMeasured,
    Workload,
    check_identical,
    measure_privet,
)
from privet.mpc import DealerPlan, LaunchError, LaunchResult, launch

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
PARTY_THREADS = 1  # torch threads per privet party process, the same reason
CRYPTEN_TIMEOUT_S = 600
PARTY_SCRIPT = Path(__file__).resolve().with_name("mpc_bench_party.py")
LAUNCH_WAIT_S = 120.0  # the longest any party may wait for one message
LAUNCH_RUN_S = 600.0  # the longest one launch may last
MISSING = "—"
FAR_ERROR = 0.5  # outputs off by more than this are counted in the note
CONFIG_FILE = "config.json"
RESULT_FILE = "crypten.json"
QUICK_PROCESSES_SKIPPED = "skipped (--quick launches the matmul only)"


@dataclass(frozen=True, kw_only=True)
class ProcessMeasured(Measured):
    """privet's real parties: ``seconds`` with the plan streamed, party 0's median."""

    on_request_seconds: float  # the recording launch's median: the dealer answering requests


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


def write_inputs(
    folder: Path, inputs: dict[str, NDArray[np.float64]], models: dict[Kind, nn.Sequential]
) -> None:
    """The inputs as ``<stem>.npy`` and each model as ``<kind>.safetensors`` (no pickle): what
    CrypTen's parties and privet's party processes load."""
    for stem, array in inputs.items():
        np.save(folder / f"{stem}.npy", array, allow_pickle=False)
    for kind, model in models.items():
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(folder / f"{kind.value}.safetensors"))


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


# -- privet in the simulator ------------------------------------------------------------------


# -- privet's real parties (2 party processes and a dealer process) ---------------------------


def launch_failure(error: LaunchError) -> str:
    return f"not available: {str(error).splitlines()[0][:200]}"


def launch_parties(
    w: Workload, folder: str, repeats: int, threads: int, plan: DealerPlan | None
) -> LaunchResult:
    """One launch of ``bench/mpc_bench_party.py`` on ``folder``'s inputs."""
    return launch(
        PARTY_SCRIPT,
        num_parties=2,
        seed=DEALER_SEED,
        args=[folder, w.kind.value, str(w.size), str(repeats), str(threads)],
        timeout=LAUNCH_WAIT_S,
        run_timeout=LAUNCH_RUN_S,
        cwd=str(PARTY_SCRIPT.parent),
        plan=plan,
    )


def measure_processes(
    work: list[Workload],
    inputs: dict[str, NDArray[np.float64]],
    models: dict[Kind, nn.Sequential],
    repeats: int,
    threads: int,
    progress: Callable[[str], None] | None = None,
) -> dict[Kind, Outcome]:
    """Each workload launched twice: dealer on request (recording the plan), then with the
    plan streamed; party 0's medians. The two launches must open the same output.
    ``progress`` hears of each workload when it is done."""
    outcomes: dict[Kind, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="bench_mpc_parties_") as folder:
        write_inputs(Path(folder), inputs, models)
        for w in work:
            try:
                first = launch_parties(w, folder, repeats, threads, None)
                planned = launch_parties(w, folder, repeats, threads, first.plan)
            except LaunchError as error:
                outcomes[w.kind] = launch_failure(error)
                continue
            recorded, streamed = first.parties[0].outputs, planned.parties[0].outputs
            check_identical(
                f"{w.kind.value}: the real parties' output with and without a plan",
                recorded["output"],
                streamed["output"],
            )
            outcomes[w.kind] = ProcessMeasured(
                statistics.median(streamed["seconds"].tolist()),
                int(streamed["comm"][0]),
                int(streamed["comm"][1]),
                np.asarray(streamed["output"], dtype=np.float64),
                on_request_seconds=statistics.median(recorded["seconds"].tolist()),
            )
            if progress is not None:
                progress(f"privet 3-process {w.kind.value} done")
    return outcomes


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
        write_inputs(path, inputs, models)
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


# -- the tables -------------------------------------------------------------------------------


class Ratio(Enum):
    """CrypTen's seconds over one of privet's figures (the module docstring says why each)."""

    ONLINE = "online"  # privet online s (dealer ahead)
    END_TO_END = "end-to-end"  # privet online s + privet dealer s
    PROCESSES = "3-process"  # privet 3-process s (plan streamed)


@dataclass(frozen=True)
class Row:
    workload: Workload
    privet: Outcome  # the simulator: a PrivetMeasured when measured
    processes: Outcome  # the real parties: a ProcessMeasured when measured
    crypten: Outcome
    reference: NDArray[np.float64]

    def privet_seconds(self, which: Ratio) -> float | None:
        """The privet figure a ratio divides by."""
        if which is Ratio.PROCESSES:
            return None if isinstance(self.processes, str) else self.processes.seconds
        if not isinstance(self.privet, PrivetMeasured):
            return None
        if which is Ratio.ONLINE:
            return self.privet.seconds
        return self.privet.seconds + self.privet.dealer_seconds

    def ratio(self, which: Ratio) -> float | None:
        """CrypTen seconds / privet seconds."""
        seconds = self.privet_seconds(which)
        if seconds is None or isinstance(self.crypten, str):
            return None
        return self.crypten.seconds / seconds

    def target_met(self, which: Ratio) -> bool | None:
        ratio = self.ratio(which)
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


def fmt_seconds(seconds: float | None) -> str:
    return MISSING if seconds is None else f"{seconds:.3g}"


def fmt_ratio(row: Row, which: Ratio) -> str:
    ratio = row.ratio(which)
    if ratio is None:
        return MISSING
    return f"{ratio:.2f}× {'met' if row.target_met(which) else 'missed'}"


def time_cells(row: Row) -> list[str]:
    """The time table's cells after the workload: five seconds, three ratios, the note."""
    privet = row.privet if isinstance(row.privet, PrivetMeasured) else None
    seconds = [
        fmt_seconds(None if privet is None else privet.seconds),
        fmt_seconds(None if privet is None else privet.dealer_seconds),
        fmt_seconds(None if privet is None else privet.inline_seconds),
        fmt_seconds(row.privet_seconds(Ratio.PROCESSES)),
        fmt_seconds(None if isinstance(row.crypten, str) else row.crypten.seconds),
    ]
    reasons = [
        f"{name}: {outcome}"
        for name, outcome in (
            ("privet", row.privet),
            ("3-process", row.processes),
            ("CrypTen", row.crypten),
        )
        if isinstance(outcome, str)
    ]
    return [*seconds, *(fmt_ratio(row, which) for which in Ratio), "; ".join(reasons)]


def time_table(rows: list[Row]) -> Table:
    result = Table(
        title=(
            "Two-party MPC: median seconds of one operation on shared inputs; "
            f"ratios = CrypTen s / privet s, target ≥ {TARGET_RATIO:g}×"
        ),
        title_justify="left",
    )
    for name in (
        "workload",
        "privet online s\n(dealer ahead)",
        "privet dealer s\n(ahead, offline)",
        "privet\ninline s",
        "privet\n3-process s",
        "CrypTen s",
        "ratio\nonline",
        "ratio end-to-end\n(online + dealer)",
        "ratio\n3-process",
    ):
        result.add_column(name, justify="left" if name == "workload" else "right")
    result.add_column("note", overflow="fold", min_width=20)
    for row in rows:
        result.add_row(row.workload.title, *time_cells(row))
    return result


SYSTEMS = ("privet", "privet 3-process", "CrypTen")


def system_cells(row: Row, outcome: Outcome) -> list[str]:
    """Rounds, MB sent per party, max error, labels agreeing, the note."""
    if isinstance(outcome, str):
        return [MISSING] * 4 + [outcome]
    agree = labels_agreeing(outcome, row.reference) if row.workload.kind.is_model else None
    error = max_error(outcome, row.reference)
    far = int(np.sum(np.abs(outcome.output - row.reference) > FAR_ERROR))
    return [
        str(outcome.rounds),
        fmt_megabytes(outcome.bytes_sent),
        MISSING if error is None else f"{error:.2e}",
        MISSING if agree is None else f"{agree}/{row.workload.size}",
        f"{far} of {outcome.output.size:,} outputs off by > {FAR_ERROR:g}" if far else "",
    ]


def accuracy_table(rows: list[Row]) -> Table:
    result = Table(
        title="Communication per party and operation, and accuracy of the opened output",
        title_justify="left",
    )
    for name in (
        "workload",
        "system",
        "rounds",
        "MB sent\n/ party",
        "max |error|\nvs float64",
        "labels\nagree",
    ):
        result.add_column(name, justify="left" if name in ("workload", "system") else "right")
    result.add_column("note", overflow="fold", min_width=20)
    for row in rows:
        outcomes = (row.privet, row.processes, row.crypten)
        for index, (system, outcome) in enumerate(zip(SYSTEMS, outcomes, strict=True)):
            title = row.workload.title if index == 0 else ""
            last = index == len(SYSTEMS) - 1
            result.add_row(title, system, *system_cells(row, outcome), end_section=last)
    return result


def summary(rows: list[Row]) -> str:
    parts = []
    for which in Ratio:
        verdicts = [(r.workload.kind.value, r.target_met(which)) for r in rows]
        met = [kind for kind, verdict in verdicts if verdict is True]
        missed = [kind for kind, verdict in verdicts if verdict is False]
        unmeasured = [kind for kind, verdict in verdicts if verdict is None]
        words = [f"met on {', '.join(met) or 'none'}", f"missed on {', '.join(missed) or 'none'}"]
        if unmeasured:
            words.append(f"not measured on {', '.join(unmeasured)}")
        parts.append(f"{which.value}: " + ", ".join(words))
    return f"target (CrypTen s ≥ {TARGET_RATIO:g}× privet s on each workload) · " + " · ".join(
        parts
    )


def setup_note(
    args: argparse.Namespace, rows: list[Row], provider: str, repeats: int, warmup: int
) -> str:
    """How each system ran, and what was checked."""
    parts = [
        "note: privet online, dealer and inline: Simulator(2), both parties in this process; "
        "inline and dealer-ahead runs gave bit-identical output shares (same dealer seed)."
    ]
    if any(isinstance(row.processes, ProcessMeasured) for row in rows):
        parts.append(
            "privet 3-process: 2 party processes + a dealer process (privet.mpc.launch, TCP on "
            f"loopback, the plan streamed, {args.party_threads} torch thread(s) per party), "
            "timed by party 0; its first run opened to the simulator's output bit for bit."
        )
    if not args.no_crypten:
        parts.append(
            "CrypTen's 2 parties are 2 processes (run_multiprocess, gloo on loopback, provider "
            f"{provider}, {args.crypten_threads} torch thread(s) each), timed by party 0; its "
            "bytes are its logged bytes / 2 (it counts an all_reduce as sent + received)."
        )
    parts.append(f"{repeats} timed run(s) after {warmup} warm-up.")
    if args.quick:
        parts.append("Quick: the figures mean nothing.")
    return " ".join(parts)


def on_request_note(rows: list[Row]) -> str:
    """The real parties' figures with the dealer answering requests (the recording launch)."""
    figures = [
        f"{row.workload.kind.value} {row.processes.on_request_seconds:.3g} s"
        for row in rows
        if isinstance(row.processes, ProcessMeasured)
    ]
    return (
        "privet 3-process with the dealer answering each request (the launch that records the "
        f"plan): {', '.join(figures) or MISSING}"
    )


def machine_facts() -> str:
    return (
        f"python {platform.python_version()} · numpy {np.__version__} · torch {torch.__version__}"
        f" · crypten {package_version('crypten')} · privet {package_version('privet')} · "
        f"{os.cpu_count()} CPUs · {platform.machine()} · "
        f"{datetime.now().astimezone().isoformat(timespec='seconds')}"
    )


def load_average() -> str:
    """The 1-minute load average (another job on the cores slows every column)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # pragma: no cover - not on this platform
        return MISSING


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 16x16 matmul, 1,000 ReLUs, 4 images, 1 epoch, 1 repeat, no warm-up; "
        "real parties for the matmul only",
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=REPEATS, help="timed runs per workload (median)"
    )
    parser.add_argument("--no-crypten", action="store_true", help="leave CrypTen out")
    parser.add_argument(
        "--no-processes", action="store_true", help="leave privet's real party processes out"
    )
    parser.add_argument(
        "--crypten-threads",
        type=positive_int,
        default=CRYPTEN_THREADS,
        help="torch threads in each CrypTen party process",
    )
    parser.add_argument(
        "--party-threads",
        type=positive_int,
        default=PARTY_THREADS,
        help="torch threads in each privet party process",
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


def run_processes(
    args: argparse.Namespace,
    work: list[Workload],
    privet: dict[Kind, Outcome],
    inputs: dict[str, NDArray[np.float64]],
    models: dict[Kind, nn.Sequential],
    repeats: int,
    progress: Callable[[str], None],
) -> dict[Kind, Outcome]:
    """The real-process outcome per workload, each checked against the simulator's output."""
    if args.no_processes:
        return {w.kind: "skipped (--no-processes)" for w in work}
    outcomes: dict[Kind, Outcome] = {}
    launched = []
    for w in work:
        simulated = privet[w.kind]
        if isinstance(simulated, str):
            outcomes[w.kind] = simulated
        elif args.quick and w.kind is not Kind.MATMUL:
            outcomes[w.kind] = QUICK_PROCESSES_SKIPPED
        else:
            launched.append(w)
    outcomes |= measure_processes(launched, inputs, models, repeats, args.party_threads, progress)
    for w in launched:
        simulated, measured = privet[w.kind], outcomes[w.kind]
        if not isinstance(simulated, str) and not isinstance(measured, str):
            check_identical(
                f"{w.kind.value}: the real parties' opened output and the simulator's",
                simulated.output,
                measured.output,
            )
    return outcomes


def run(args: argparse.Namespace) -> int:
    quick: bool = args.quick
    repeats = 1 if quick else args.repeats
    warmup = 0 if quick else 1
    console = make_console()
    started = time.perf_counter()
    console.print(f"{machine_facts()} · load average {load_average()} at the start")
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

    def progress(done: str) -> None:
        console.print(f"{done} at {time.perf_counter() - started:.1f} s")

    processes = run_processes(args, work, privet, inputs, models, repeats, progress)
    provider = MISSING
    if args.no_crypten:
        crypten: dict[Kind, Outcome] = {w.kind: "skipped (--no-crypten)" for w in work}
    else:
        crypten, provider = measure_crypten(
            work, inputs, models, repeats, warmup, args.crypten_threads
        )
        console.print(f"CrypTen done at {time.perf_counter() - started:.1f} s")

    rows = [
        Row(w, privet[w.kind], processes[w.kind], crypten[w.kind], plaintext(w, inputs, models))
        for w in work
    ]
    console.print(time_table(rows))
    console.print(accuracy_table(rows))
    console.print(setup_note(args, rows, provider, repeats, warmup))
    if any(isinstance(row.processes, ProcessMeasured) for row in rows):
        console.print(on_request_note(rows))
    console.print(summary(rows))
    console.print(
        f"total {time.perf_counter() - started:.1f} s · load average {load_average()} at the end"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
