"""Throughput of privet's DP mechanisms and of its budget ledger, against baselines.

Two tables, every ratio taken against a baseline measured in the same run:

1. Mechanism throughput (samples/s, or selections/s for private selection):
   privet with the OS CSPRNG (``rng=None``, the default for releases) and with a
   seeded numpy Generator, against numpy's own sampler for the same (or the
   nearest) distribution and against diffprivlib's mechanism. diffprivlib
   randomises one scalar per call, so its figure is calls/s, which is what a
   user of it gets per sample.
2. Ledger charges/s, in memory and in SQLite, under both accountants, for a
   repeated DP-SGD step event and for distinct Laplace events. The baseline is
   a bare dp-accounting computation of the same composed epsilon after each
   charge, so the ratio is the ledger's overhead over the accounting itself.

Run ``python bench/bench_mechanisms.py`` (about a minute on 2 cores) or with
``--quick`` for a smoke run of a few seconds (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import diffprivlib.mechanisms as dpl
import dp_accounting
import numpy as np
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant
from rich.console import Console
from rich.table import Table

from cli_helpers import make_console, positive_int
from privet.dp import (
    AccountantName,
    DiscreteGaussianMechanism,
    DiscreteLaplaceMechanism,
    ExponentialMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    Ledger,
    PermuteAndFlip,
    RandomizedResponse,
    ReportNoisyMax,
    SeededRandomnessWarning,
    dpsgd_event,
)

EPSILON = 1.0
DELTA = 1e-5
CANDIDATES = 1000
INTEGER_SIGMA = 4.0  # sigma**2 = 16: the exact sampler's all-int64 path
# The ledger and a bare accountant may differ by PLD's discretization interval.
AGREEMENT = 1e-4
LEDGER_BUDGET = 1e9  # large enough that no charge is refused
DPSGD_STEP = (1.1, 0.004, 1)  # noise multiplier, sample rate, steps of one charged event
DIFFPRIVLIB_CALL_FRACTION = 20  # diffprivlib is timed on size // 20 scalar calls
SELECTION_FRACTION = 500  # selections timed per repeat: size // 500
QUICK = {"size": 2_000, "repeats": 1, "same_charges": 2, "distinct_charges": 5}
FULL_SAME_CHARGES = 10
FULL_DISTINCT_CHARGES = 40
MISSING = "—"

Sampler = Callable[[], Any]


@dataclass(frozen=True)
class Row:
    """One mechanism: privet's rate with one randomness source, and the baselines' rates."""

    name: str
    rng: str
    privet: float
    numpy: float
    diffprivlib: float | None
    note: str = ""


@dataclass(frozen=True)
class LedgerRow:
    """One ledger configuration: charges/s and final epsilon, against bare dp-accounting."""

    accountant: str
    store: str
    events: str
    charges: int
    ledger_rate: float
    bare_rate: float
    ledger_epsilon: float
    bare_epsilon: float


@dataclass(frozen=True)
class Settings:
    size: int
    repeats: int
    same_charges: int
    distinct_charges: int
    quick: bool


# -- timing -----------------------------------------------------------------------------------


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(median wall time, result of the last call) of ``run`` over ``repeats`` calls."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def rate(run: Sampler, count: int, repeats: int, *, ignore: type[Warning] | None = None) -> float:
    """Items per second, where one call of ``run`` produces ``count`` items.

    One warm-up call, then the median of ``repeats`` timed calls. Warnings of
    category ``ignore`` are silenced meanwhile.
    """
    with warnings.catch_warnings():
        if ignore is not None:
            warnings.simplefilter("ignore", ignore)
        run()
        seconds, _ = timed(run, repeats)
    return count / seconds


def scalar_loop(randomise: Callable[[Any], Any], value: Any, calls: int) -> Sampler:
    """A sampler that calls a scalar-only ``randomise`` ``calls`` times."""

    def run() -> None:
        for _ in range(calls):
            randomise(value)

    return run


# -- mechanism throughput ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A mechanism to time: privet's release, numpy's sampler, diffprivlib's (or none)."""

    name: str
    release: Callable[[Any], Any]  # called with rng=None or a seeded Generator
    numpy: Sampler
    diffprivlib: Sampler | None
    count: int  # samples (or selections) per privet / numpy call
    diffprivlib_count: int
    note: str = ""


def release_with(release: Callable[..., Any], value: Any) -> Callable[[Any], Any]:
    return lambda rng: release(value, rng=rng)


def measure_case(case: Case, repeats: int) -> list[Row]:
    """Rows for ``case`` with the OS CSPRNG and a seeded Generator; baselines timed once."""
    numpy_rate = rate(case.numpy, case.count, repeats)
    dpl_rate = None
    if case.diffprivlib is not None:
        # diffprivlib warns about settings a timing does not care about (PrivacyLeakWarning,
        # DiffprivlibCompatibilityWarning, both RuntimeWarnings); keep them out of the table.
        dpl_rate = rate(case.diffprivlib, case.diffprivlib_count, repeats, ignore=Warning)
    rows = []
    for label, rng in (("OS CSPRNG", None), ("seeded PCG64", np.random.default_rng(0))):
        # A seeded Generator protecting a release warns (SeededRandomnessWarning): anyone
        # who learns the seed can reproduce the noise. Timing the seeded path, on no private
        # data, is the point here, so the warning is silenced; the OS CSPRNG never warns.
        release = functools.partial(case.release, rng)
        privet_rate = rate(release, case.count, repeats, ignore=SeededRandomnessWarning)
        rows.append(Row(case.name, label, privet_rate, numpy_rate, dpl_rate, case.note))
    return rows


def additive_cases(size: int) -> list[Case]:
    """Laplace, Gaussian, discrete Laplace and discrete Gaussian, ``size`` samples a call."""
    gen = np.random.default_rng(1)
    zeros = np.zeros(size)
    int_zeros = np.zeros(size, dtype=np.int64)
    calls = max(1, size // DIFFPRIVLIB_CALL_FRACTION)

    laplace = LaplaceMechanism(EPSILON)
    gaussian = GaussianMechanism(EPSILON, DELTA)
    discrete_laplace = DiscreteLaplaceMechanism(EPSILON)
    geometric_p = -np.expm1(-EPSILON)  # P(success) of each one-sided geometric
    float_sigma = gaussian.sigma  # a float: its square has a huge denominator
    dpl_discrete_gaussian = dpl.GaussianDiscrete(epsilon=EPSILON, delta=DELTA)

    def discrete_gaussian(sigma: float, note: str) -> Case:
        return Case(
            f"discrete Gaussian σ={sigma:.4g}",
            release_with(DiscreteGaussianMechanism(sigma).release, int_zeros),
            lambda: np.rint(gen.normal(0.0, sigma, size)),
            scalar_loop(dpl_discrete_gaussian.randomise, 0, calls),
            size,
            calls,
            note,
        )

    return [
        Case(
            "Laplace",
            release_with(laplace.release, zeros),
            lambda: gen.laplace(0.0, laplace.scale, size),
            scalar_loop(dpl.Laplace(epsilon=EPSILON, sensitivity=1.0).randomise, 0.0, calls),
            size,
            calls,
            "numpy rng.laplace; dpl Laplace",
        ),
        Case(
            "Gaussian (analytic)",
            release_with(gaussian.release, zeros),
            lambda: gen.normal(0.0, gaussian.sigma, size),
            scalar_loop(
                dpl.GaussianAnalytic(epsilon=EPSILON, delta=DELTA, sensitivity=1.0).randomise,
                0.0,
                calls,
            ),
            size,
            calls,
            "numpy rng.normal; dpl GaussianAnalytic",
        ),
        Case(
            "discrete Laplace",
            release_with(discrete_laplace.release, int_zeros),
            lambda: gen.geometric(geometric_p, size) - gen.geometric(geometric_p, size),
            scalar_loop(dpl.Geometric(epsilon=EPSILON).randomise, 0, calls),
            size,
            calls,
            "exact; numpy geometric − geometric; dpl Geometric",
        ),
        discrete_gaussian(
            INTEGER_SIGMA,
            "exact, int64 path; numpy rint(normal)†; dpl GaussianDiscrete†",
        ),
        discrete_gaussian(
            float_sigma,
            "exact, σ rounded up onto the int64 grid; numpy rint(normal)†; dpl GaussianDiscrete†",
        ),
    ]


def randomized_response_cases(size: int) -> list[Case]:
    """k-ary randomized response for k = 2 and k = 10."""
    gen = np.random.default_rng(2)
    calls = max(1, size // DIFFPRIVLIB_CALL_FRACTION)
    cases = []
    for k in (2, 10):
        mechanism = RandomizedResponse(EPSILON, num_categories=k)
        values = gen.integers(0, k, size)
        odds = float(np.exp(EPSILON))
        keep_probability = odds / (odds + k - 1)

        def numpy_rr(values: np.ndarray = values, p: float = keep_probability, k: int = k) -> Any:
            keep = gen.random(values.size) < p
            shift = gen.integers(1, k, values.size)
            return np.where(keep, values, (values + shift) % k)

        dpl_run = None
        note = "numpy where + integers; no dpl k-ary RR"
        if k == 2:
            binary = dpl.Binary(epsilon=EPSILON, value0="0", value1="1")
            dpl_run = scalar_loop(binary.randomise, "0", calls)
            note = "numpy where + integers; dpl Binary"
        cases.append(
            Case(
                f"randomized response k={k}",
                release_with(mechanism.release, values),
                numpy_rr,
                dpl_run,
                size,
                calls,
                note,
            )
        )
    return cases


def selection_cases(size: int) -> list[Case]:
    """Exponential mechanism, permute-and-flip, report-noisy-max over 1000 candidates."""
    gen = np.random.default_rng(3)
    utilities = gen.uniform(0.0, 100.0, CANDIDATES)
    utility_list = utilities.tolist()
    selections = max(1, size // SELECTION_FRACTION)
    scale = EPSILON / 2.0  # epsilon / (2 sensitivity), non-monotonic utilities

    def many(select: Callable[[], Any]) -> Sampler:
        def run() -> None:
            for _ in range(selections):
                select()

        return run

    def privet_many(mechanism: Any) -> Callable[[Any], Any]:
        return lambda rng: many(lambda: mechanism.release(utilities, rng=rng))()

    def dpl_many(cls: Any) -> Sampler:
        # diffprivlib binds the utilities at construction, so a new query is a new object.
        return many(lambda: cls(epsilon=EPSILON, sensitivity=1.0, utility=utility_list).randomise())

    return [
        Case(
            "exponential mechanism",
            privet_many(ExponentialMechanism(EPSILON)),
            many(lambda: np.argmax(scale * utilities + gen.gumbel(size=CANDIDATES))),
            dpl_many(dpl.Exponential),
            selections,
            selections,
            "numpy Gumbel-max argmax; dpl Exponential‡",
        ),
        Case(
            "permute-and-flip",
            privet_many(PermuteAndFlip(EPSILON)),
            many(lambda: np.argmax(scale * utilities + gen.standard_exponential(CANDIDATES))),
            dpl_many(dpl.PermuteAndFlip),
            selections,
            selections,
            "numpy Exp-noise argmax; dpl PermuteAndFlip‡",
        ),
        Case(
            "report-noisy-max",
            privet_many(ReportNoisyMax(EPSILON)),
            many(lambda: np.argmax(utilities + gen.laplace(0.0, 1.0 / scale, CANDIDATES))),
            None,
            selections,
            selections,
            "numpy Laplace-noise argmax; no dpl equivalent",
        ),
    ]


# -- ledger -----------------------------------------------------------------------------------


def same_events(count: int) -> list[Any]:
    """One DP-SGD step charged ``count`` times: the ledger groups identical events."""
    return [dpsgd_event(*DPSGD_STEP)] * count


def distinct_events(count: int) -> list[Any]:
    """``count`` Laplace events with distinct epsilons, so the history cannot be grouped."""
    return [LaplaceMechanism(0.01 * (1.0 + i / count)).event for i in range(count)]


def bare_composition(events: Sequence[Any]) -> Any:
    """The events composed the way the ledger composes its history, in plain dp-accounting."""
    groups: dict[Any, int] = {}
    for event in events:
        groups[event] = groups.get(event, 0) + 1
    parts = [
        event if count == 1 else dp_accounting.SelfComposedDpEvent(event, count)
        for event, count in groups.items()
    ]
    return parts[0] if len(parts) == 1 else dp_accounting.ComposedDpEvent(parts)


def bare_epsilon(events: Sequence[Any], accountant: str) -> float:
    """A fresh dp-accounting accountant: compose, then get_epsilon at the ledger's delta."""
    acct = RdpAccountant() if accountant == "rdp" else PLDAccountant()
    acct.compose(bare_composition(events))
    return float(acct.get_epsilon(DELTA))


def run_bare(events: Sequence[Any], accountant: str) -> float:
    """What the ledger computes on each charge, without the ledger: every prefix's epsilon."""
    epsilon = 0.0
    for end in range(1, len(events) + 1):
        epsilon = bare_epsilon(events[:end], accountant)
    return epsilon


def run_ledger(events: Sequence[Any], accountant: AccountantName, path: Path | None) -> float:
    """Charge ``events`` to a fresh ledger one by one; the epsilon it reached."""
    ledger = Ledger(LEDGER_BUDGET, DELTA, accountant, path=path)
    for i, event in enumerate(events):
        ledger.charge(event, label=f"charge-{i}")
    return ledger.spent()


def measure_ledger(
    accountant: AccountantName, kind: str, events: list[Any], repeats: int, workdir: Path
) -> list[LedgerRow]:
    """In-memory and SQLite rows for one accountant and one event stream."""
    n = len(events)
    bare_s, bare_eps = timed(lambda: run_bare(events, accountant), repeats)
    files = itertools.count()
    rows = []
    for store in ("memory", "sqlite"):

        def once(store: str = store) -> float:
            # A fresh file each run: an existing one would hold the previous run's charges.
            path = workdir / f"{accountant}-{kind}-{next(files)}.db" if store == "sqlite" else None
            return run_ledger(events, accountant, path)

        ledger_s, ledger_eps = timed(once, repeats)
        rows.append(
            LedgerRow(accountant, store, kind, n, n / ledger_s, n / bare_s, ledger_eps, bare_eps)
        )
    return rows


def measure_ledgers(settings: Settings, workdir: Path) -> list[LedgerRow]:
    rows = []
    accountants: tuple[AccountantName, ...] = ("rdp", "pld")
    for accountant in accountants:
        run_ledger(same_events(1), accountant, None)  # warm-up: imports, first compositions
        streams = (
            ("same", same_events(settings.same_charges)),
            ("distinct", distinct_events(settings.distinct_charges)),
        )
        for kind, events in streams:
            rows += measure_ledger(accountant, kind, events, settings.repeats, workdir)
    return rows


# -- output -----------------------------------------------------------------------------------


def fmt_rate(value: float | None) -> str:
    if value is None:
        return MISSING
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.1f}"


def fmt_ratio(numerator: float, denominator: float | None) -> str:
    return MISSING if denominator is None else f"{numerator / denominator:.2f}×"


def mechanism_table(title: str, unit: str, rows: list[Row], caption: str) -> Table:
    table = Table(
        title=f"{title} ({unit})", title_justify="left", caption=caption, caption_justify="left"
    )
    table.add_column("mechanism", no_wrap=True)
    table.add_column("privet rng", no_wrap=True)
    for name in ("privet", "numpy", "dpl", "privet/numpy", "privet/dpl"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("note")
    for row in rows:
        table.add_row(
            row.name,
            row.rng,
            fmt_rate(row.privet),
            fmt_rate(row.numpy),
            fmt_rate(row.diffprivlib),
            fmt_ratio(row.privet, row.numpy),
            fmt_ratio(row.privet, row.diffprivlib),
            row.note,
        )
    return table


def ledger_table(rows: list[LedgerRow], caption: str) -> Table:
    table = Table(
        title="Ledger charges/s vs a bare dp-accounting computation of the same epsilon",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    for name in ("accountant", "store", "events"):
        table.add_column(name, no_wrap=True)
    for name in ("charges", "ledger /s", "bare /s", "ledger/bare", "ε ledger", "ε bare"):
        table.add_column(name, justify="right")
    table.add_column("agree")
    for row in rows:
        difference = row.ledger_epsilon - row.bare_epsilon
        table.add_row(
            row.accountant,
            row.store,
            row.events,
            str(row.charges),
            fmt_rate(row.ledger_rate),
            fmt_rate(row.bare_rate),
            fmt_ratio(row.ledger_rate, row.bare_rate),
            f"{row.ledger_epsilon:.6f}",
            f"{row.bare_epsilon:.6f}",
            ("yes" if abs(difference) <= AGREEMENT else "no") + f" (Δ={difference:.1e})",
        )
    return table


def machine_facts() -> str:
    return (
        f"python {platform.python_version()} · numpy {np.__version__} · "
        f"privet {version('privet')} · diffprivlib {version('diffprivlib')} · "
        f"dp-accounting {version('dp-accounting')} · {os.cpu_count()} CPUs · "
        f"{platform.machine()} · {datetime.now().astimezone().isoformat(timespec='seconds')}"
    )


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 1 repeat")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed runs (median)")
    parser.add_argument("--size", type=positive_int, default=100_000, help="samples a release")
    parser.add_argument(
        "--charges",
        type=positive_int,
        default=FULL_DISTINCT_CHARGES,
        help=f"distinct-event ledger charges (same-event: {FULL_SAME_CHARGES} by default)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        return Settings(quick=True, **QUICK)
    same = min(FULL_SAME_CHARGES, args.charges)
    return Settings(args.size, args.repeats, same, args.charges, quick=False)


def samples_caption() -> str:
    dpl_sigma = dpl.GaussianDiscrete(epsilon=EPSILON, delta=DELTA)._scale
    return (
        "dpl = diffprivlib, scalar-only: its rate is calls/s. numpy draws from PCG64 (it has no "
        "CSPRNG). exact = integer-only sampler (Canonne, Kamath & Steinke 2020).\n"
        "† numpy has no discrete Gaussian: rint(normal) is a speed floor, not the same law. "
        f"dpl GaussianDiscrete(ε={EPSILON}, δ={DELTA}) has σ={dpl_sigma:.4g}; privet's "
        f"σ={INTEGER_SIGMA:g} is an integer; the analytic Gaussian's float σ is rounded up (by "
        "at most 5e-4 relative, the event records it) so the exact sampler stays in int64."
    )


SELECTION_CAPTION = (
    "utilities uniform in [0, 100), sensitivity 1, not monotonic.\n"
    "‡ diffprivlib binds the utilities when a mechanism is built, so each selection is timed "
    "as construct + randomise."
)
LEDGER_CAPTION = (
    f"budget ε={LEDGER_BUDGET:g}, δ={DELTA}. same = dpsgd_event{DPSGD_STEP} charged again and "
    "again (the ledger groups identical events); distinct = Laplace events with ε in "
    "[0.01, 0.02).\nbare /s = a fresh dp-accounting RdpAccountant / PLDAccountant composing "
    "the grouped history and calling get_epsilon, once per charge, with no ledger. "
    f"agree = final ε within {AGREEMENT:g} (PLD's discretization interval): the ledger reuses "
    "each distinct event's analysis instead of recomposing the history."
)


def print_header(console: Console, settings: Settings) -> None:
    console.print(machine_facts())
    quick = "  [quick: smoke run, figures are not meaningful]" if settings.quick else ""
    console.print(
        f"size={settings.size} samples a release, repeats={settings.repeats} (median after a "
        f"warm-up), ε={EPSILON}, δ={DELTA}{quick}"
    )


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    console = make_console(200)
    started = time.perf_counter()
    print_header(console, settings)

    cases = additive_cases(settings.size) + randomized_response_cases(settings.size)
    rows = [row for case in cases for row in measure_case(case, settings.repeats)]
    console.print(mechanism_table("Mechanism throughput", "samples/s", rows, samples_caption()))

    cases = selection_cases(settings.size)
    rows = [row for case in cases for row in measure_case(case, settings.repeats)]
    title = f"Private selection over {CANDIDATES} candidates"
    console.print(mechanism_table(title, "selections/s", rows, SELECTION_CAPTION))

    with tempfile.TemporaryDirectory() as workdir:
        ledger_rows = measure_ledgers(settings, Path(workdir))
    console.print(ledger_table(ledger_rows, LEDGER_CAPTION))
    console.print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
