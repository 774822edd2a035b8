"""Secure aggregation per round: SecAgg and SecAgg+ against their floors, measured side by side.

One round of privet's four-round protocol (Bonawitz et al., CCS 2017, Fig. 4,
honest-but-curious; SecAgg+ on a random Harary graph, Bell et al., CCS 2020)
for ``n`` = 10, 100 and 500 clients, each holding a uniformly random vector of
100,000 values in ``Z_{2^32}`` (``modulus_bits`` = 32, the modulus Flower's
SecAgg+ uses by default, so the two do the same arithmetic). 10% of the
clients (rounded up) drop out in round 2, after sharing their keys and before
sending their masked input: the worst case for the server, which must then
recover each dropout's mask key from its holders and expand the pairwise
masks the survivors added for it.

* SecAgg: the complete graph, threshold ``t = floor(n/2) + 1`` (the smallest
  majority the protocol accepts);
* SecAgg+: the degree ``k`` and threshold ``t`` that
  :func:`privet.secagg.secagg_plus_settings` picks for 10% dropouts and
  ``--corruption`` (default 10%) of the clients colluding with the server,
  with 2^-40 security and 2^-20 correctness failure bounds.

Client seconds are one client's own work, the mean over the clients active in
each round summed over the four rounds (round 0 includes building the client,
which draws its keys); server seconds are every ``receive`` plus the four
round-ending calls. Clients run one after another in this process with their
secrets from the OS CSPRNG (as in real use); the masking graph's
neighbourhoods are computed once before the clock starts. Each configuration
runs ``--rounds`` rounds (default 3, each with fresh keys, graph and inputs),
starting another only within ``--repeat-budget`` seconds of the first, and
the table gives the medians. The result of every round is checked against the
plaintext sum of the survivors' inputs.

The floors, measured in the same run on the same machine:

* plaintext sum: numpy adding ``n`` uint64 vectors of length ``L`` in place
  (what the server would do with no protection at all);
* PRG floor: :func:`privet.secagg.expand_mask` (AES-256-CTR) expanding as
  many masks as the protocol expands in this configuration, counted from the
  graph: on the mean surviving client one self mask plus one per neighbour in
  ``U2``; on the server one self mask per survivor plus, for each dropout, one
  pairwise mask per surviving neighbour;
* one mask per client: a client expanding one mask and the server expanding
  one per survivor, the cost of a scheme that masks with a single seed.

The target (the issue's): SecAgg+ server + client seconds per round at most
3x the PRG floor at ``n`` = 100.

``--flower`` adds Flower's SecAgg+ (``SecAggPlusWorkflow`` with
``secaggplus_mod``) with the same ``k + 1`` shares, threshold, dropouts (a
mod that fails the clients chosen to drop in the masked-input stage) and
vector length, each client count in a subprocess of its own running
``flwr.simulation.run_simulation`` (Ray actors of one CPU, one round). Its
server seconds are the workflow's time outside ``Grid.send_and_receive``
(waiting for clients and the simulation's message polling are excluded; the
round's wall clock is in the note), its client seconds are timed around the
client's mod stack, with the same per-round means. Flower draws its own ring
order and expands masks with numpy's Mersenne Twister, so its row is set
against the floors of privet's SecAgg+ row (same ``k``, ``t`` and dropouts).
Flower quantizes floats itself, so its clients hold float32 vectors; its
average is checked against the plaintext mean (within ``FLOWER_TOLERANCE``).

Timings are noisy on a shared 2-core machine. Run ``python
bench/bench_secagg.py`` (a few minutes; most of it SecAgg at 500 clients,
which ``--max-secagg-n`` can skip) or with ``--quick`` for a smoke run of a
few seconds: n = 5 and 10, L = 1000, no Flower (the figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, cast

import numpy as np
from rich.table import Table

from cli_helpers import make_console, package_version, positive_float, positive_int, worker_env
from privet.secagg import (
    MaskingGraph,
    SecAggClient,
    SecAggParams,
    SecAggServer,
    expand_mask,
    secagg_plus_settings,
)

SEED = 0
MODULUS_BITS = 32
VECTOR_LENGTH = 100_000
CLIENT_COUNTS = (10, 100, 500)
QUICK_COUNTS = (5, 10)
QUICK_LENGTH = 1_000
DROPOUT = 0.1
CORRUPTION = 0.1
TARGET_RATIO = 3.0  # SecAgg+ (server + client) <= 3x the PRG floor (the target)
TARGET_CLIENTS = 100
ROUNDS = 3
REPEAT_BUDGET_S = 30.0  # repeat a configuration's round only while it has taken less than this
MAX_SECONDS = 600  # wall-clock cap on one Flower configuration
MISSING = "—"
# Flower averages floats quantized to 2^22 levels over [-8, 8], its client weights quantized
# too: its mean of vectors in [-1, 1] carries a few 1e-3 of error, while a mask left in the
# sum would put errors of the order of the clipping range (8) in.
FLOWER_TOLERANCE = 1e-2
RESULT_PREFIX = "RESULT "
# Flower's worker imports this file as the module ``bench_secagg`` (not ``__main__``) so that
# the functions Ray ships to its actors pickle by reference.
BOOTSTRAP = "import sys, bench_secagg; raise SystemExit(bench_secagg.main(sys.argv[1:]))"


class Protocol(Enum):
    SECAGG = "SecAgg"
    SECAGG_PLUS = "SecAgg+"
    FLOWER = "Flower SecAgg+"


@dataclass(frozen=True)
class Config:
    """One configuration: who masks with whom, and how much."""

    protocol: Protocol
    clients: int
    length: int
    degree: int
    threshold: int
    dropped: int


def configure(
    protocol: Protocol, clients: int, length: int, dropout: float, corruption: float
) -> Config:
    dropped = math.ceil(dropout * clients)  # as secagg_plus_settings counts them
    if protocol is Protocol.SECAGG:
        return Config(protocol, clients, length, clients - 1, clients // 2 + 1, dropped)
    settings = secagg_plus_settings(clients, dropout, corruption)
    return Config(protocol, clients, length, settings.degree, settings.threshold, dropped)


@dataclass(frozen=True)
class MaskCounts:
    """Mask expansions of one round, counted from the graph."""

    per_client: float  # mean over the survivors: one self mask plus its neighbours in U2
    server: int  # survivors' self masks plus each dropout's surviving neighbours
    survivors: int


def mask_counts(graph: MaskingGraph, dropped: frozenset[int]) -> MaskCounts:
    ids = range(1, graph.num_clients + 1)
    survivors = [u for u in ids if u not in dropped]
    # Dropouts leave after sharing keys, so U2 is everyone: each survivor masks with all of
    # its neighbours.
    client_total = sum(1 + len(graph.neighbours(u)) for u in survivors)
    pairwise = sum(len(graph.neighbours(v) - dropped) for v in dropped)
    return MaskCounts(client_total / len(survivors), len(survivors) + pairwise, len(survivors))


# -- privet's protocol ------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundTimes:
    """One measured round."""

    client_s: tuple[float, float, float, float]  # mean per active client, by protocol round
    server_s: tuple[float, float, float, float]  # receive + the round-ending call
    correct: bool
    masks: MaskCounts

    @property
    def client_total(self) -> float:
        return sum(self.client_s)

    @property
    def server_total(self) -> float:
        return sum(self.server_s)


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def run_round(config: Config, modulus_bits: int, rng: np.random.Generator) -> RoundTimes:
    """Drive one round of privet's protocol, timing the server and each client apart."""
    n, length = config.clients, config.length
    graph = (
        MaskingGraph.complete(n)
        if config.degree == n - 1
        else MaskingGraph.random(n, config.degree, rng)
    )
    params = SecAggParams(n, config.threshold, length, modulus_bits, graph=graph)
    for u in params.client_ids:
        params.holders(u)  # neighbourhoods are cached on params: compute them off the clock
    dropped = frozenset(int(v) + 1 for v in rng.choice(n, size=config.dropped, replace=False))
    server = SecAggServer(params)
    client_s = np.zeros((4, n))
    server_s = [0.0, 0.0, 0.0, 0.0]
    expected = np.zeros(length, dtype=np.uint64)
    clients: list[SecAggClient] = []
    for u in sorted(params.client_ids):
        x = rng.integers(0, 1 << modulus_bits, size=length, dtype=np.uint64)
        if u not in dropped:
            expected += x
        # rng=None: the client's keys, seed and Shamir polynomials come from the OS CSPRNG.
        start = time.perf_counter()
        clients.append(SecAggClient(params, u, x, None))
        client_s[0, u - 1] += time.perf_counter() - start

    def client_round(r: int, active: Sequence[SecAggClient], step: Callable[[Any], Any]) -> None:
        for client in active:
            start = time.perf_counter()
            message = step(client)
            middle = time.perf_counter()
            server.receive(message)
            client_s[r, client.client_id - 1] += middle - start
            server_s[r] += time.perf_counter() - middle

    client_round(0, clients, lambda c: c.advertise())
    broadcasts, seconds = _timed(server.broadcast_keys)
    server_s[0] += seconds
    client_round(1, clients, lambda c: c.share_keys(broadcasts[c.client_id]))
    deliveries, seconds = _timed(server.deliver_shares)
    server_s[1] += seconds
    survivors = [c for c in clients if c.client_id not in dropped]
    client_round(2, survivors, lambda c: c.masked_input(deliveries[c.client_id]))
    request, seconds = _timed(server.request_unmask)
    server_s[2] += seconds
    client_round(3, survivors, lambda c: c.unmask(request))
    total, seconds = _timed(server.finish)
    server_s[3] += seconds

    expected &= np.uint64((1 << modulus_bits) - 1)
    everyone = list(range(n))
    alive = [c.client_id - 1 for c in survivors]
    means = tuple(float(client_s[r, everyone if r < 2 else alive].mean()) for r in range(4))
    return RoundTimes(
        (means[0], means[1], means[2], means[3]),
        (server_s[0], server_s[1], server_s[2], server_s[3]),
        bool(np.array_equal(total, expected)),
        mask_counts(graph, dropped),
    )


# -- floors -----------------------------------------------------------------------------------


def median_time(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        _, seconds = _timed(call)
        times.append(seconds)
    return statistics.median(times)


def plaintext_sum_s(clients: int, length: int, rng: np.random.Generator) -> float:
    vectors = [rng.integers(0, 1 << MODULUS_BITS, size=length, dtype=np.uint64)] * clients

    def add() -> np.ndarray:
        total = np.zeros(length, dtype=np.uint64)
        for v in vectors:
            total += v
        return total

    return median_time(add, 5)


def prg_s(masks: int, length: int, modulus_bits: int, rng: np.random.Generator) -> float:
    """Seconds to expand ``masks`` masks of ``length`` values, each from a seed of its own."""
    seeds = [rng.bytes(32) for _ in range(masks)]

    def expand() -> None:
        for seed in seeds:
            expand_mask(seed, length, modulus_bits)

    return median_time(expand, 3)


@dataclass(frozen=True)
class Floors:
    plaintext_s: float
    prg_client_s: float  # the mean survivor's masks
    prg_server_s: float
    one_mask_s: float  # one mask on a client + one per survivor on the server

    @property
    def prg_s(self) -> float:
        return self.prg_client_s + self.prg_server_s


def measure_floors(
    config: Config, masks: MaskCounts, modulus_bits: int, rng: np.random.Generator
) -> Floors:
    length = config.length
    return Floors(
        plaintext_sum_s(config.clients, length, rng),
        prg_s(round(masks.per_client), length, modulus_bits, rng),
        prg_s(masks.server, length, modulus_bits, rng),
        prg_s(1 + masks.survivors, length, modulus_bits, rng),
    )


# -- Flower's SecAgg+ (in a subprocess of its own) --------------------------------------------


@dataclass(frozen=True)
class FlowerClientTiming:
    """A client mod that times the mods inside it and appends the seconds to a file.

    It runs in Flower's Ray actors, which share this machine's file system: each call
    appends one JSON line, so concurrent actors never interleave within a line.
    """

    path: str

    def __call__(self, message: Any, context: Any, call_next: Any) -> Any:
        from flwr.common.secure_aggregation.secaggplus_constants import (
            RECORD_KEY_CONFIGS,
            Key,
        )

        stage = str(message.content.config_records[RECORD_KEY_CONFIGS][Key.STAGE])
        start = time.perf_counter()
        reply = call_next(message, context)
        seconds = time.perf_counter() - start
        line = json.dumps({"stage": stage, "node": context.node_id, "seconds": seconds})
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        return reply


@dataclass(frozen=True)
class FlowerDropout:
    """A client mod that fails the chosen partitions in the masked-input stage (a dropout)."""

    dropped: frozenset[int]

    def __call__(self, message: Any, context: Any, call_next: Any) -> Any:
        from flwr.common.secure_aggregation.secaggplus_constants import (
            RECORD_KEY_CONFIGS,
            Key,
            Stage,
        )

        stage = message.content.config_records[RECORD_KEY_CONFIGS][Key.STAGE]
        partition = int(context.node_config["partition-id"])
        if stage == Stage.COLLECT_MASKED_VECTORS and partition in self.dropped:
            raise RuntimeError(f"partition {partition} drops out (simulated)")
        return call_next(message, context)


def flower_vector(partition: int, length: int) -> np.ndarray:
    rng = np.random.default_rng([SEED, partition])
    return rng.uniform(-1.0, 1.0, size=length).astype(np.float32)


@dataclass(frozen=True)
class FlowerClientFactory:
    """``client_fn`` of the ClientApp: a NumPyClient returning its fixed vector from ``fit``."""

    length: int

    def __call__(self, context: Any) -> Any:
        from flwr.client import NumPyClient

        vector = flower_vector(int(context.node_config["partition-id"]), self.length)

        class FixedClient(NumPyClient):
            def fit(self, parameters: Any, config: Any) -> Any:
                return [vector], 1, {}

        return FixedClient().to_client()


def flower_dropouts(config: Config) -> frozenset[int]:
    rng = np.random.default_rng(SEED)
    return frozenset(int(p) for p in rng.choice(config.clients, size=config.dropped, replace=False))


class _TimedGrid:
    """Forwards to Flower's Grid, adding up the time spent waiting in ``send_and_receive``."""

    def __init__(self, grid: Any) -> None:
        self._grid = grid
        self.waiting_s = 0.0

    def send_and_receive(self, *args: Any, **kwargs: Any) -> Any:
        replies, seconds = _timed(lambda: self._grid.send_and_receive(*args, **kwargs))
        self.waiting_s += seconds
        return replies

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)


def measure_flower(config: Config) -> dict[str, Any]:
    """One SecAgg+ round of Flower's simulation (runs in the worker subprocess)."""
    with tempfile.TemporaryDirectory(prefix="bench_secagg_") as folder:
        return _flower_round(config, Path(folder) / "client_times.jsonl")


def _flower_round(config: Config, times_path: Path) -> dict[str, Any]:
    from flwr.client import ClientApp
    from flwr.client.mod import secaggplus_mod
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.simulation import run_simulation

    n, length = config.clients, config.length
    dropped = flower_dropouts(config)
    times_path.touch()
    round_s: list[tuple[float, float]] = []  # (wall, waiting for clients)
    results: list[np.ndarray] = []

    class TimedSecAggPlus(SecAggPlusWorkflow):
        def __call__(self, grid: Grid, context: Context) -> None:
            if isinstance(context, LegacyContext):
                # Off the clock: the strategy's sampling waits for every node to register.
                context.client_manager.wait_for(n, timeout=MAX_SECONDS)
            timed = _TimedGrid(grid)
            start = time.perf_counter()
            super().__call__(cast(Grid, timed), context)
            round_s.append((time.perf_counter() - start, timed.waiting_s))

    class KeepResult(FedAvg):
        def aggregate_fit(self, server_round: int, fit_results: Any, failures: Any) -> Any:
            aggregated = super().aggregate_fit(server_round, fit_results, failures)
            from flwr.common import parameters_to_ndarrays

            if aggregated[0] is not None:
                results.append(parameters_to_ndarrays(aggregated[0])[0])
            return aggregated

    strategy = KeepResult(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=n,
        min_available_clients=n,
        initial_parameters=ndarrays_to_parameters([np.zeros(length, dtype=np.float32)]),
    )
    server_app = ServerApp()

    @server_app.main()
    def server_main(grid: Grid, context: Context) -> None:
        legacy = LegacyContext(
            context=context, config=ServerConfig(num_rounds=1), strategy=strategy
        )
        # Flower counts the client itself among its shares: k neighbours + itself.
        fit = TimedSecAggPlus(
            num_shares=config.degree + 1, reconstruction_threshold=config.threshold
        )
        workflow = DefaultWorkflow(fit_workflow=fit)
        workflow(grid, legacy)

    client_app = ClientApp(
        client_fn=FlowerClientFactory(length),
        mods=[FlowerClientTiming(str(times_path)), FlowerDropout(dropped), secaggplus_mod],
    )
    cpus = os.cpu_count() or 1
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=n,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": cpus, "log_to_driver": False},
        },
    )
    if not round_s or not results:
        return {"error": "Flower's SecAgg+ round did not complete"}
    wall, waiting = round_s[0]
    by_stage: dict[str, list[float]] = {}
    for line in times_path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        by_stage.setdefault(entry["stage"], []).append(entry["seconds"])
    counts = {stage: len(v) for stage, v in by_stage.items()}
    wanted = {
        "setup": n,
        "share_keys": n,
        "collect_masked_vectors": n - len(dropped),
        "unmask": n - len(dropped),
    }
    if counts != wanted:
        return {"error": f"client calls by stage must be {wanted}, got {counts}"}
    survivors = [p for p in range(n) if p not in dropped]
    expected = np.mean([flower_vector(p, length) for p in survivors], axis=0)
    return {
        "server_s": wall - waiting,
        "client_s": sum(statistics.mean(v) for v in by_stage.values()),
        "wall_s": wall,
        "max_error": float(np.max(np.abs(results[0] - expected))),
    }


def _error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:160]
    return (lines or ["no output"])[-1][:160]


def flower_in_subprocess(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        "-c",
        BOOTSTRAP,
        "--flower-worker",
        str(config.clients),
        str(config.length),
        str(config.degree),
        str(config.threshold),
        str(config.dropped),
    ]
    # A session of its own: on a timeout the worker and Ray's processes go down together.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=args.max_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"error": f"timed out at {args.max_seconds:g} s"}
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return result
    return {"error": f"worker exited {process.returncode}: {_error_line(stderr)}"}


def flower_skipped(quick: bool, wanted: bool, clients: int, max_n: int) -> str | None:
    if quick:
        return "skipped (--quick)"
    if not wanted:
        return "skipped (run with --flower)"
    if clients > max_n:
        return f"skipped (n > --max-flower-n {max_n})"
    try:
        import flwr.simulation  # noqa: F401
    except ImportError as exc:
        return f"skipped (Flower does not import: {exc}; pip install 'privet[bench]')"
    return None


# -- rows and the table -----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    config: Config
    client_s: float | None = None
    server_s: float | None = None
    rounds: int = 0
    correct: bool | None = None
    masks: MaskCounts | None = None
    floors: Floors | None = None
    note: str = ""

    @property
    def total_s(self) -> float | None:
        if self.client_s is None or self.server_s is None:
            return None
        return self.client_s + self.server_s

    @property
    def ratio(self) -> float | None:
        total = self.total_s
        if total is None or self.floors is None:
            return None
        return total / self.floors.prg_s

    @property
    def target_met(self) -> bool | None:
        """Judged on privet's SecAgg+ at the target client count only."""
        if self.config.protocol is not Protocol.SECAGG_PLUS:
            return None
        if self.config.clients != TARGET_CLIENTS or self.ratio is None:
            return None
        return self.ratio <= TARGET_RATIO


def measure_privet(config: Config, args: argparse.Namespace, rng: np.random.Generator) -> Row:
    started = time.perf_counter()
    rounds: list[RoundTimes] = []
    while len(rounds) < args.rounds and (
        not rounds or time.perf_counter() - started < args.repeat_budget
    ):
        rounds.append(run_round(config, MODULUS_BITS, rng))
    masks = rounds[0].masks
    return Row(
        config,
        statistics.median(r.client_total for r in rounds),
        statistics.median(r.server_total for r in rounds),
        len(rounds),
        all(r.correct for r in rounds),
        masks,
        measure_floors(config, masks, MODULUS_BITS, rng),
    )


def flower_row(config: Config, result: dict[str, Any], floors: Floors | None) -> Row:
    if "error" in result:
        return Row(config, floors=floors, note=result["error"])
    return Row(
        config,
        result["client_s"],
        result["server_s"],
        1,
        result["max_error"] <= FLOWER_TOLERANCE,
        floors=floors,
        note=(
            f"round wall clock {result['wall_s']:.3g} s on {os.cpu_count()} CPUs; "
            f"max error of the mean {result['max_error']:.2g}"
        ),
    )


def fmt(value: float | None, digits: str = ".3g") -> str:
    return MISSING if value is None else format(value, digits)


def table(rows: Sequence[Row], length: int) -> Table:
    result = Table(
        title=(
            f"Seconds per round, {length:,} values in Z_2^{MODULUS_BITS} per client, "
            f"{DROPOUT:.0%} dropped in round 2"
        ),
        title_justify="left",
    )
    for name in (
        "protocol",
        "n",
        "k",
        "t",
        "dropped",
        "rounds",
        "client\ns",
        "server\ns",
        "server +\nclient s",
        "plaintext\nsum s",
        "masks\nclient/server",
        "PRG\nfloor s",
        "1 mask per\nclient s",
        "(server+client)\n/ PRG floor",
        f"target ≤ {TARGET_RATIO:g}×\nat n = {TARGET_CLIENTS}",
        "sum\ncorrect",
    ):
        result.add_column(name, justify="left" if name == "protocol" else "right", no_wrap=True)
    result.add_column("note", overflow="fold", min_width=20)
    for row in rows:
        c, floors, masks = row.config, row.floors, row.masks
        result.add_row(
            c.protocol.value,
            str(c.clients),
            str(c.degree),
            str(c.threshold),
            str(c.dropped),
            str(row.rounds) if row.rounds else MISSING,
            fmt(row.client_s),
            fmt(row.server_s),
            fmt(row.total_s),
            fmt(floors.plaintext_s if floors else None),
            MISSING if masks is None else f"{masks.per_client:.3g}/{masks.server}",
            fmt(floors.prg_s if floors else None),
            fmt(floors.one_mask_s if floors else None),
            MISSING if row.ratio is None else f"{row.ratio:.3g}×",
            {True: "met", False: "missed", None: MISSING}[row.target_met],
            {True: "yes", False: "NO", None: MISSING}[row.correct],
            row.note,
        )
    return result


def summary(rows: Sequence[Row]) -> str:
    judged = [row for row in rows if row.target_met is not None]
    if not judged:
        return (
            f"target (SecAgg+ ≤ {TARGET_RATIO:g}× PRG floor at n = {TARGET_CLIENTS}): not measured"
        )
    row = judged[0]
    word = "met" if row.target_met else "missed"
    return (
        f"target (SecAgg+ ≤ {TARGET_RATIO:g}× PRG floor at n = {TARGET_CLIENTS}): {word} "
        f"({fmt(row.total_s)} s against a floor of {fmt(row.floors.prg_s if row.floors else None)}"
        f" s, {row.ratio:.3g}×)"
    )


def machine_facts() -> str:
    return (
        f"python {platform.python_version()} · numpy {np.__version__} · "
        f"cryptography {package_version('cryptography')} · flwr {package_version('flwr')} · "
        f"privet {package_version('privet')} · {os.cpu_count()} CPUs · {platform.machine()} · "
        f"{datetime.now().astimezone().isoformat(timespec='seconds')}"
    )


# -- main -------------------------------------------------------------------------------------


def client_count(text: str) -> int:
    value = int(text)
    if value < 3:  # secagg_plus_settings needs 3 clients
        raise argparse.ArgumentTypeError(f"must be >= 3, got {value}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"must be in [0, 0.5), got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: n = 5 and 10, L = 1000, no Flower"
    )
    parser.add_argument(
        "--clients", type=client_count, nargs="+", default=list(CLIENT_COUNTS), help="client counts"
    )
    parser.add_argument("--length", type=positive_int, default=VECTOR_LENGTH, help="values")
    parser.add_argument(
        "--corruption",
        type=fraction,
        default=CORRUPTION,
        help="fraction of clients colluding with the server (sets SecAgg+'s k and t)",
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=ROUNDS, help="rounds per configuration (median)"
    )
    parser.add_argument(
        "--repeat-budget",
        type=positive_float,
        default=REPEAT_BUDGET_S,
        help="start another round of a configuration only within this many seconds of its first",
    )
    parser.add_argument(
        "--max-secagg-n",
        type=positive_int,
        default=max(CLIENT_COUNTS),
        help="skip SecAgg (complete graph) above this many clients",
    )
    parser.add_argument("--flower", action="store_true", help="add Flower's SecAgg+ rows")
    parser.add_argument(
        "--max-flower-n",
        type=positive_int,
        default=max(CLIENT_COUNTS),
        help="skip Flower above this many clients",
    )
    parser.add_argument(
        "--max-seconds",
        type=positive_float,
        default=MAX_SECONDS,
        help="wall-clock cap on one Flower configuration",
    )
    parser.add_argument(
        "--flower-worker",
        nargs=5,
        type=int,
        metavar=("N", "LENGTH", "DEGREE", "THRESHOLD", "DROPPED"),
        help="internal: measure one Flower configuration and print its result as JSON",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.flower_worker:
        n, length, degree, threshold, dropped = args.flower_worker
        config = Config(Protocol.FLOWER, n, length, degree, threshold, dropped)
        try:
            result = measure_flower(config)
        except Exception as exc:  # a measured failure is a row, not a crash
            result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:160]}
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    return run(args)


def run(args: argparse.Namespace) -> int:
    quick: bool = args.quick
    counts: Sequence[int] = QUICK_COUNTS if quick else args.clients
    length: int = QUICK_LENGTH if quick else args.length
    console = make_console()
    started = time.perf_counter()
    console.print(machine_facts())
    console.print(
        f"modulus_bits {MODULUS_BITS}, L = {length:,}, dropout {DROPOUT:.0%} in round 2, "
        f"SecAgg+ for corruption {args.corruption:.0%} (2^-40 security, 2^-20 correctness), "
        f"SecAgg t = floor(n/2) + 1; median of up to {args.rounds} rounds "
        f"(more only within {args.repeat_budget:g} s); clients one after another in one process"
        + ("; quick: the figures mean nothing" if quick else "")
    )
    rng = np.random.default_rng(SEED)
    rows: list[Row] = []
    for clients in counts:
        plus: Row | None = None
        for protocol in (Protocol.SECAGG, Protocol.SECAGG_PLUS):
            config = configure(protocol, clients, length, DROPOUT, args.corruption)
            if protocol is Protocol.SECAGG and clients > args.max_secagg_n:
                rows.append(Row(config, note=f"skipped (n > --max-secagg-n {args.max_secagg_n})"))
                continue
            row = measure_privet(config, args, rng)
            if config.degree == clients - 1 and protocol is Protocol.SECAGG_PLUS:
                row = replace(row, note="complete graph: no sparse k meets the bounds")
            rows.append(row)
            plus = row if protocol is Protocol.SECAGG_PLUS else plus
        flower = configure(Protocol.FLOWER, clients, length, DROPOUT, args.corruption)
        floors = plus.floors if plus is not None else None
        reason = flower_skipped(quick, args.flower, clients, args.max_flower_n)
        if reason is not None:
            rows.append(Row(flower, floors=floors, note=reason))
        else:
            rows.append(flower_row(flower, flower_in_subprocess(flower, args), floors))
        console.print(f"n = {clients} done at {time.perf_counter() - started:.1f} s")

    console.print(table(rows, length))
    console.print(summary(rows))
    console.print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
