"""DP-SGD step time and peak memory: privet against plain PyTorch and Opacus, side by side.

Three workloads, each trained on one fixed batch (the Poisson loader is
bypassed, so every framework times the same batch; the DP optimizer's
expected batch size is the batch size):

* MLP 784-256-10, batch 256;
* CNN, the Opacus MNIST example's network (conv 16 8x8/2, conv 32 4x4/2, each
  followed by ReLU and 2x2/1 max-pool, then linear 512-32-10), 28x28, batch 64;
* transformer encoder block on tokens: token + position embeddings, one
  pre-norm block of 4-head self-attention built from ``nn.Linear`` plus
  LayerNorm and a 128-512-128 GELU MLP, mean pooling, linear head; vocabulary
  1000, sequence 64, width 128, batch 32.

For each: plain PyTorch (no privacy), Opacus in each ``grad_sample_mode`` it
has (hooks, functorch, ew, ghost; ghost through ``PrivacyEngine.make_private``
with its wrapped criterion, which runs the second backward pass inside
``loss.backward()``), and privet with its default cryptographic noise
(``noise_generator=None``) and with a seeded ``torch.Generator`` (the kind of
noise Opacus draws by default). The timed step is ``zero_grad``, forward,
loss, backward, ``optimizer.step``; the figure is the median after warm-up.

Every (framework, workload) pair runs in its own fresh subprocess so that its
peak RSS (``VmHWM`` on Linux, else ``ru_maxrss``) is its own: "peak" is the
process's peak, "step" is that peak minus the resident set just before the
first step (what training adds on top of the model, the batch and imports).
A final table times one step's noise alone for each model's parameter count.

Run ``python bench/bench_dpsgd.py`` (about 90 s on 2 cores) or with
``--quick`` for a smoke run of a few seconds in one process (small batches,
one repeat, no memory figures: its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from rich.table import Table
from torch import Tensor, nn
from torch.nn import functional

from cli_helpers import make_console, positive_int
from privet.train import TransformerEncoder

THREADS = 2
NOISE_MULTIPLIER = 1.0
MAX_GRAD_NORM = 1.0
PLAIN_TARGET = 1.5  # privet <= 1.5x plain PyTorch (the target)
WORKER_TIMEOUT_S = 300
RESULT_PREFIX = "RESULT "
MISSING = "—"

FRAMEWORKS: dict[str, str] = {
    "plain": "plain PyTorch",
    "opacus-hooks": "Opacus hooks",
    "opacus-functorch": "Opacus functorch",
    "opacus-ew": "Opacus ew",
    "opacus-ghost": "Opacus ghost",
    "privet": "privet (crypto noise)",
    "privet-seeded": "privet (seeded noise)",
}
OPACUS_MODES = ("hooks", "functorch", "ew", "ghost")


# -- workloads --------------------------------------------------------------------------------


class EncoderClassifier(nn.Module):
    """Embeddings, one pre-norm transformer encoder block, mean pooling, linear head."""

    def __init__(self, vocab: int, seq: int, dim: int, heads: int, classes: int = 10) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(seq, dim)
        self.block = TransformerEncoder(dim, heads)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: Tensor) -> Tensor:
        # Positions carry the batch dimension (both libraries assume batch-first inputs) and
        # are contiguous (Opacus ghost's embedding norm calls .view on the indices).
        positions = torch.arange(x.shape[1], device=x.device).repeat(x.shape[0], 1)
        return self.head(self.block(self.tokens(x) + self.positions(positions)).mean(1))


@dataclass(frozen=True)
class Workload:
    title: str
    batch: int
    quick_batch: int
    build: Callable[[int], tuple[nn.Module, Tensor, Tensor]]


def _mlp(batch: int) -> tuple[nn.Module, Tensor, Tensor]:
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    return model, torch.randn(batch, 784), torch.randint(0, 10, (batch,))


def _cnn(batch: int) -> tuple[nn.Module, Tensor, Tensor]:
    model = nn.Sequential(
        nn.Conv2d(1, 16, 8, 2, padding=3),
        nn.ReLU(),
        nn.MaxPool2d(2, 1),
        nn.Conv2d(16, 32, 4, 2),
        nn.ReLU(),
        nn.MaxPool2d(2, 1),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )
    return model, torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))


def _transformer(batch: int) -> tuple[nn.Module, Tensor, Tensor]:
    vocab, seq = 1000, 64
    model = EncoderClassifier(vocab=vocab, seq=seq, dim=128, heads=4)
    return model, torch.randint(0, vocab, (batch, seq)), torch.randint(0, 10, (batch,))


WORKLOADS: dict[str, Workload] = {
    "mlp": Workload("MLP 784-256-10", 256, 32, _mlp),
    "cnn": Workload("CNN conv 16/32 on 28×28 (Opacus MNIST example)", 64, 8, _cnn),
    "transformer": Workload(
        "Transformer encoder block (seq 64, d 128, 4 heads, vocab 1000)", 32, 4, _transformer
    ),
}


# -- one configuration ------------------------------------------------------------------------

Step = Callable[[], None]


def _plain_step(model: nn.Module, x: Tensor, y: Tensor) -> Step:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> None:
        optimizer.zero_grad()
        functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def _opacus_step(model: nn.Module, x: Tensor, y: Tensor, mode: str) -> Step:
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    # A loader over the one batch: Opacus's expected batch size is then the batch size.
    loader = DataLoader(TensorDataset(x, y), batch_size=len(x))
    engine = PrivacyEngine(accountant="rdp")
    private = engine.make_private(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        criterion=nn.CrossEntropyLoss(),
        data_loader=loader,
        noise_multiplier=NOISE_MULTIPLIER,
        max_grad_norm=MAX_GRAD_NORM,
        grad_sample_mode=mode,
    )
    if mode == "ghost":
        module, optimizer, criterion, _ = private
    else:
        module, optimizer, _ = private
        criterion = nn.CrossEntropyLoss()
    if optimizer.expected_batch_size != len(x):
        raise RuntimeError(f"Opacus expected batch size {optimizer.expected_batch_size}")

    def step() -> None:
        optimizer.zero_grad()
        criterion(module(x), y).backward()
        optimizer.step()

    return step


def _privet_step(model: nn.Module, x: Tensor, y: Tensor, seeded: bool) -> Step:
    from privet.train import DPOptimizer, GradSampleModule

    module = GradSampleModule(model)
    optimizer = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.01),
        module=module,
        noise_multiplier=NOISE_MULTIPLIER,
        max_grad_norm=MAX_GRAD_NORM,
        expected_batch_size=len(x),
        noise_generator=torch.Generator().manual_seed(0) if seeded else None,
    )

    def step() -> None:
        optimizer.zero_grad()
        functional.cross_entropy(module(x), y).backward()
        optimizer.step()

    return step


def make_step(framework: str, model: nn.Module, x: Tensor, y: Tensor) -> Step:
    if framework == "plain":
        return _plain_step(model, x, y)
    if framework.startswith("opacus-"):
        return _opacus_step(model, x, y, framework.removeprefix("opacus-"))
    return _privet_step(model, x, y, seeded=framework == "privet-seeded")


def _proc_status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field in MB (Linux), else ``None``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return None


def _resident_mb() -> float:
    """Current RSS (Linux /proc), else the peak so far."""
    current = _proc_status_mb("VmRSS")
    return current if current is not None else _peak_mb()


def _peak_mb() -> float:
    """Peak RSS: VmHWM, the same accounting as VmRSS (so peak >= current always holds);
    elsewhere ``ru_maxrss``."""
    high_water = _proc_status_mb("VmHWM")
    if high_water is not None:
        return high_water
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def measure(framework: str, workload: str, batch: int, warmup: int, repeats: int) -> dict[str, Any]:
    """Times ``repeats`` steps after ``warmup`` ones; memory figures are this process's."""
    torch.manual_seed(0)
    model, x, y = WORKLOADS[workload].build(batch)
    try:
        with warnings.catch_warnings():
            # Opacus: "Secure RNG turned off", full-backward-hook notes; privet: seeded noise.
            warnings.simplefilter("ignore")
            step = make_step(framework, model, x, y)
            before = _resident_mb()
            for _ in range(warmup):
                step()
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                step()
                times.append(time.perf_counter() - started)
    except Exception as exc:  # a mode that does not support this model
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:120]}
    return {"times": times, "before_mb": before, "peak_mb": _peak_mb()}


def measure_in_subprocess(framework: str, workload: str, settings: Settings) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        framework,
        workload,
        "--repeats",
        str(settings.repeats),
        "--warmup",
        str(settings.warmup),
        "--threads",
        str(settings.threads),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT_S} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return result
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"worker exited {done.returncode}: {tail[:120]}"}


# -- noise alone ------------------------------------------------------------------------------


def noise_seconds(numels: list[int], seeded: bool, repeats: int) -> float:
    """Median time to draw one step's noise for parameter tensors of these sizes.

    One flat draw for them all, as ``DPOptimizer`` does.
    """
    from privet.train import GaussianNoise

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noise = GaussianNoise(torch.Generator().manual_seed(0) if seeded else None)
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        noise.sample(torch.Size((sum(numels),)), 1.0, torch.float32)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


# -- tables -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    repeats: int
    warmup: int
    threads: int
    quick: bool
    rounds: int = 1


@dataclass(frozen=True)
class Row:
    framework: str
    seconds: float | None  # median s/step; None when the mode failed
    spread: float | None  # interquartile range / median
    peak_mb: float | None
    step_mb: float | None
    error: str = ""


def pooled(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several rounds: every timed step together, memory from the first."""
    failed = [r for r in results if "error" in r]
    if failed:
        return failed[0]
    merged = dict(results[0])
    merged["times"] = [t for r in results for t in r["times"]]
    return merged


def to_row(framework: str, result: dict[str, Any]) -> Row:
    if "error" in result:
        return Row(framework, None, None, None, None, result["error"])
    times = result["times"]
    median = statistics.median(times)
    spread = None
    if len(times) >= 4:
        q1, _, q3 = statistics.quantiles(times, n=4)
        spread = (q3 - q1) / median
    peak = result.get("peak_mb")
    step_mb = None if peak is None else max(0.0, peak - result["before_mb"])
    return Row(framework, median, spread, peak, step_mb)


def fastest_opacus(rows: list[Row]) -> Row | None:
    timed = [r for r in rows if r.framework.startswith("opacus-") and r.seconds is not None]
    return min(timed, key=lambda r: r.seconds or math.inf) if timed else None


def meets_targets(row: Row, plain: Row, opacus: Row | None) -> bool | None:
    if row.seconds is None or plain.seconds is None or opacus is None or opacus.seconds is None:
        return None
    return row.seconds <= PLAIN_TARGET * plain.seconds and row.seconds < opacus.seconds


def fmt_seconds(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3g}"


def fmt_ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None:
        return MISSING
    return f"{numerator / denominator:.2f}×"


def fmt_mb(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0f}"


def workload_table(name: str, batch: int, rows: list[Row]) -> Table:
    plain = next(r for r in rows if r.framework == "plain")
    opacus = fastest_opacus(rows)
    best = FRAMEWORKS[opacus.framework] if opacus else MISSING
    table = Table(
        title=f"{WORKLOADS[name].title}, batch {batch}",
        title_justify="left",
        caption=f"fastest Opacus mode here: {best}",
        caption_justify="left",
    )
    table.add_column("framework", no_wrap=True)
    for column in ("s/step", "IQR", "× plain", "× Opacus best", "peak RSS MB", "step RSS MB"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("targets / note")
    for row in rows:
        note = row.error
        if row.framework.startswith("privet"):
            met = meets_targets(row, plain, opacus)
            note = {True: "met", False: "missed", None: MISSING}[met] + (f" {note}" if note else "")
        table.add_row(
            FRAMEWORKS[row.framework],
            fmt_seconds(row.seconds),
            MISSING if row.spread is None else f"{100 * row.spread:.0f}%",
            fmt_ratio(row.seconds, plain.seconds),
            fmt_ratio(row.seconds, opacus.seconds if opacus else None),
            fmt_mb(row.peak_mb),
            fmt_mb(row.step_mb),
            note,
        )
    return table


def noise_table(entries: list[tuple[str, int, int, float, float]]) -> Table:
    table = Table(
        title="Noise for one step alone (all parameter tensors in one float32 draw)",
        title_justify="left",
        caption=(
            "crypto = privet's default AES-256-CTR stream + Box–Muller (53-bit radius, "
            "float32 angle); seeded = a torch.Generator (torch.normal), as Opacus without "
            "secure_mode."
        ),
        caption_justify="left",
    )
    table.add_column("workload", no_wrap=True)
    for column in ("tensors", "parameters", "crypto s", "seeded s", "crypto/seeded"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, tensors, params, crypto, seeded in entries:
        row = (str(tensors), f"{params:,}", f"{crypto:.3g}", f"{seeded:.3g}")
        table.add_row(name, *row, fmt_ratio(crypto, seeded))
    return table


def summary(results: dict[str, list[Row]]) -> str:
    met, missed = [], []
    for name, rows in results.items():
        plain = next(r for r in rows if r.framework == "plain")
        opacus = fastest_opacus(rows)
        for row in rows:
            if row.framework.startswith("privet"):
                label = f"{name}/{FRAMEWORKS[row.framework]}"
                (met if meets_targets(row, plain, opacus) else missed).append(label)
    return (
        f"Targets (issue): privet ≤ {PLAIN_TARGET}× plain PyTorch and faster than Opacus's "
        "fastest mode on the same workload, both measured in this run.\n"
        f"met: {', '.join(met) or 'none'}\nmissed: {', '.join(missed) or 'none'}"
    )


def machine_facts(settings: Settings) -> str:
    opacus = version("opacus")
    return (
        f"python {platform.python_version()} · torch {torch.__version__} · opacus {opacus} · "
        f"privet {version('privet')} · {os.cpu_count()} CPUs, torch threads {settings.threads} · "
        f"{platform.machine()} · {datetime.now().astimezone().isoformat(timespec='seconds')}"
    )


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small batches, 1 step")
    parser.add_argument("--repeats", type=positive_int, default=15, help="timed steps a round")
    parser.add_argument(
        "--rounds", type=positive_int, default=2, help="round-robin rounds per workload (pooled)"
    )
    parser.add_argument("--warmup", type=positive_int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=positive_int, default=THREADS, help="torch threads")
    parser.add_argument(
        "--worker",
        nargs=2,
        metavar=("FRAMEWORK", "WORKLOAD"),
        help="internal: measure one configuration and print its result as JSON",
    )
    args = parser.parse_args(argv)
    if args.worker:
        framework, workload = args.worker
        if framework not in FRAMEWORKS or workload not in WORKLOADS:
            parser.error(f"--worker takes one of {list(FRAMEWORKS)} and one of {list(WORKLOADS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)  # called in-process (the smoke test): leave it as found


def run(args: argparse.Namespace) -> int:
    if args.quick:
        settings = Settings(repeats=1, warmup=1, threads=args.threads, quick=True)
    else:
        settings = Settings(args.repeats, args.warmup, args.threads, False, args.rounds)

    if args.worker:
        framework, workload = args.worker
        spec = WORKLOADS[workload]
        batch = spec.quick_batch if settings.quick else spec.batch
        result = measure(framework, workload, batch, settings.warmup, settings.repeats)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    console = make_console(200)
    started = time.perf_counter()
    console.print(machine_facts(settings))
    mode = (
        "quick: one process, small batches, no memory figures; the figures mean nothing"
        if settings.quick
        else (
            f"each configuration in a fresh subprocess, {settings.rounds} round(s) run "
            "round-robin and pooled so drift on a shared machine hits every framework alike"
        )
    )
    console.print(
        f"noise multiplier {NOISE_MULTIPLIER}, max grad norm {MAX_GRAD_NORM}, SGD; "
        f"median of {settings.repeats} steps after {settings.warmup} warm-up; {mode}"
    )

    results: dict[str, list[Row]] = {}
    noise_entries = []
    for name, spec in WORKLOADS.items():
        batch = spec.quick_batch if settings.quick else spec.batch
        if settings.quick:
            rows = []
            for framework in FRAMEWORKS:
                result = measure(framework, name, batch, settings.warmup, settings.repeats)
                result.pop("peak_mb", None)
                rows.append(to_row(framework, result))
        else:
            rounds: dict[str, list[dict[str, Any]]] = {framework: [] for framework in FRAMEWORKS}
            for _ in range(settings.rounds):
                for framework in FRAMEWORKS:
                    rounds[framework].append(measure_in_subprocess(framework, name, settings))
            rows = [to_row(framework, pooled(rounds[framework])) for framework in FRAMEWORKS]
        results[name] = rows
        console.print(workload_table(name, batch, rows))

        torch.manual_seed(0)
        numels = [p.numel() for p in spec.build(1)[0].parameters()]
        noise_repeats = 1 if settings.quick else 10
        noise_entries.append(
            (
                name,
                len(numels),
                sum(numels),
                noise_seconds(numels, seeded=False, repeats=noise_repeats),
                noise_seconds(numels, seeded=True, repeats=noise_repeats),
            )
        )

    console.print(noise_table(noise_entries))
    console.print(summary(results))
    console.print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
