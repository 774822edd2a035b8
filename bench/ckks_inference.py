"""The CKKS half of bench/bench_he.py: encrypted logistic inference, privet against the same
computation written directly against TenSEAL, measured side by side in one run.

The workload: scikit-learn's breast cancer set (569 rows x 30 features), standardized,
a ``LogisticRegression`` fitted on it, and 1,000 rows drawn from it with replacement
(seed 0) to be scored encrypted. privet's model is
``EncryptedLogisticRegression.from_sklearn(fitted, reference_rows=X)``: a degree-3
least-squares sigmoid on the training rows' decision range, 10% wider. The parameters
are ``model.requirements.parameters(precision_bits=12, length=rows, input_bound=16)``
and both sides use exactly them (ring degree, prime chain, scale), each with its own
fresh keys, so the ratio measures privet's overhead and not a choice of parameters.

Feature packing (one ciphertext per feature, what privet does), four steps:

* encrypt: the key holder encrypts the 30 columns under the public context
  (privet: :func:`~privet.he.ckks.encrypt_columns`; TenSEAL: one ``ckks_vector`` per
  column);
* evaluate: the server's inference, ``sum_j col_j * (w_j / reach) + b / reach`` then
  ``polyval`` of the sigmoid's unit coefficients (privet: ``predict_proba``, whose
  ``_affine`` does exactly this on TenSEAL's vectors);
* decrypt: the key holder decrypts the probabilities;
* total: the sum of the three medians.

Each step's figure is the median of 5 repetitions after one untimed warm-up, privet
and TenSEAL alternating (which goes first alternates too). The ratio is privet's
seconds over TenSEAL's: lower is better, and the issue's target is at most 1.1x on
evaluate and on total.

Row packing (one ciphertext per row, TenSEAL's tutorial layout), raw TenSEAL only:
each row a ``ckks_vector`` of its 30 features, ``.dot(w / reach) + b / reach`` (the
dot product sums across slots by rotations, so it needs Galois keys) then the same
``polyval``. At about 30 ms a row, 1,000 rows would take half a minute, so it is
timed on 10 rows (after one untimed) and extrapolated to 1,000, and the table says
so; the last column compares it with feature packing's TenSEAL figure. It runs on
the public context as the server would receive it from privet's codec
(``decode_public_context``), its TenSEAL context used directly.

Public contexts: the bytes of ``encode_public_context`` for a context with
relinearization keys only (what privet sends for this model) and for one with
Galois keys as well (what row packing needs), and the seconds each took to generate.

Checks: privet's and TenSEAL's probabilities against each other and against the
plaintext polynomial (within ``2^-12``, the precision the parameters were chosen for,
and twice that between the two), the polynomial against scikit-learn's
``predict_proba`` (within the sigmoid fit's measured error), and the classes
(probability >= 0.5) against scikit-learn's ``predict``.

The file is not named ``bench_*`` because ``make bench`` runs every ``bench/bench_*.py``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tenseal as ts
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from cli_helpers import timed
from privet.he.ckks import (
    CkksContext,
    CkksParameters,
    EncryptedLogisticRegression,
    KeyNeeds,
    PolynomialApproximation,
    decode_public_context,
    decrypt,
    encode_public_context,
    encrypt_columns,
)
from privet.he.ckks.polynomial import GRID_POINTS

SEED = 0
ROWS = 1_000
QUICK_ROWS = 200
REPEATS = 5
QUICK_REPEATS = 1
ROW_PACKED_ROWS = 10
QUICK_ROW_PACKED_ROWS = 2
PRECISION_BITS = 12
#: Declared magnitude bound of the standardized features (the rows are checked against it).
INPUT_BOUND = 16.0
TARGET_RATIO = 1.1  # privet s <= 1.1x raw TenSEAL s on evaluate and total (the issue's)
MISSING = "—"
# -- the workload ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """The rows to score, the model, the parameters, and the plaintext answers."""

    rows: NDArray[np.float64]  # (n_rows, 30), standardized
    model: EncryptedLogisticRegression
    parameters: CkksParameters
    polynomial: NDArray[np.float64]  # the sigmoid polynomial on the decision values, float64
    sklearn_proba: NDArray[np.float64]  # scikit-learn's probability of classes_[1]
    sklearn_positive: NDArray[np.bool_]  # scikit-learn's predict == classes_[1]
    source_rows: int  # rows of the data set the rows are drawn from
    regularization: float  # the fitted LogisticRegression's C

    @property
    def n_rows(self) -> int:
        return int(self.rows.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.rows.shape[1])

    @property
    def unit_weights(self) -> tuple[list[float], float]:
        """``w / reach`` and ``b / reach``: the decision value in the sigmoid's unit variable."""
        reach = self.model.sigmoid.reach
        return [float(w) / reach for w in self.model.coef], self.model.intercept / reach

    @property
    def unit_coefficients(self) -> list[float]:
        return list(self.model.sigmoid.unit_coefficients)


def make_workload(n_rows: int) -> Workload:
    """Breast cancer, standardized, a fitted logistic regression, ``n_rows`` rows drawn."""
    data = load_breast_cancer()
    x = StandardScaler().fit_transform(data.data)
    fitted = LogisticRegression(max_iter=10_000).fit(x, data.target)
    rows = np.ascontiguousarray(x[np.random.default_rng(SEED).integers(0, len(x), n_rows)])
    largest = float(np.max(np.abs(rows)))
    if largest >= INPUT_BOUND:
        raise ValueError(f"standardized rows must stay below {INPUT_BOUND:g}, got {largest:g}")
    model = EncryptedLogisticRegression.from_sklearn(fitted, reference_rows=x)
    parameters = model.requirements.parameters(
        precision_bits=PRECISION_BITS, length=n_rows, input_bound=INPUT_BOUND
    )
    positive = fitted.classes_[1]
    return Workload(
        rows=rows,
        model=model,
        parameters=parameters,
        polynomial=model.sigmoid(rows @ model.coef + model.intercept),
        sklearn_proba=fitted.predict_proba(rows)[:, 1],
        sklearn_positive=fitted.predict(rows) == positive,
        source_rows=len(x),
        regularization=float(fitted.C),
    )


# -- one system's inference, step by step ------------------------------------------------------


@dataclass(frozen=True)
class Steps:
    """Encrypt, evaluate, decrypt: each step takes what the one before returned."""

    encrypt: Callable[[], Any]
    evaluate: Callable[[Any], Any]
    decrypt: Callable[[Any], NDArray[np.float64]]


def privet_steps(workload: Workload) -> Steps:
    requirements = workload.model.requirements
    secret = CkksContext.create(workload.parameters, requirements.keys)
    public = secret.public()
    return Steps(
        encrypt=lambda: encrypt_columns(public, workload.rows, requirements=requirements),
        evaluate=workload.model.predict_proba,
        decrypt=lambda vector: decrypt(secret, vector),
    )


def tenseal_contexts(parameters: CkksParameters, *, galois: bool) -> tuple[Any, Any]:
    """A private TenSEAL context of ``parameters`` and its public copy (relinearization
    keys, and Galois keys if ``galois``)."""
    secret = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=parameters.poly_modulus_degree,
        coeff_mod_bit_sizes=list(parameters.coeff_mod_bit_sizes),
    )
    secret.global_scale = 2.0**parameters.scale_bits
    if galois:
        secret.generate_galois_keys()
    public = ts.context_from(
        secret.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=galois,
            save_relin_keys=True,
        )
    )
    return secret, public


def tenseal_steps(workload: Workload) -> Steps:
    """The same computation as privet's ``predict_proba``, written against TenSEAL."""
    secret, public = tenseal_contexts(workload.parameters, galois=False)
    weights, bias = workload.unit_weights
    coefficients = workload.unit_coefficients

    def evaluate(columns: list[Any]) -> Any:
        total = columns[0] * weights[0]
        for column, weight in zip(columns[1:], weights[1:], strict=True):
            total += column * weight
        total += bias
        return total.polyval(coefficients)

    return Steps(
        encrypt=lambda: [ts.ckks_vector(public, column.tolist()) for column in workload.rows.T],
        evaluate=evaluate,
        decrypt=lambda vector: np.asarray(vector.decrypt(secret.secret_key()), dtype=np.float64),
    )


@dataclass(frozen=True)
class Timing:
    """Seconds per step."""

    encrypt: float
    evaluate: float
    decrypt: float

    @property
    def total(self) -> float:
        return self.encrypt + self.evaluate + self.decrypt

    def scaled(self, factor: float) -> Timing:
        return Timing(self.encrypt * factor, self.evaluate * factor, self.decrypt * factor)


@dataclass(frozen=True)
class Measured:
    """Median seconds per step, and the probabilities of the last repetition."""

    timing: Timing
    output: NDArray[np.float64]


def run_steps(steps: Steps) -> tuple[Timing, NDArray[np.float64]]:
    encrypted, encrypt_s = timed(steps.encrypt)
    result, evaluate_s = timed(lambda: steps.evaluate(encrypted))
    output, decrypt_s = timed(lambda: steps.decrypt(result))
    return Timing(encrypt_s, evaluate_s, decrypt_s), output


def median_timing(samples: list[Timing]) -> Timing:
    return Timing(
        statistics.median(t.encrypt for t in samples),
        statistics.median(t.evaluate for t in samples),
        statistics.median(t.decrypt for t in samples),
    )


def measure_feature_packing(workload: Workload, repeats: int) -> tuple[Measured, Measured]:
    """privet and raw TenSEAL, one ciphertext per feature: (privet, TenSEAL)."""
    systems = (privet_steps(workload), tenseal_steps(workload))
    for steps in systems:
        run_steps(steps)  # warm-up, untimed
    samples: tuple[list[Timing], list[Timing]] = ([], [])
    outputs: list[NDArray[np.float64]] = [np.empty(0), np.empty(0)]
    for repeat in range(repeats):
        # Alternate who goes first, so that drift (caches, clock) favours neither.
        for index in (0, 1) if repeat % 2 == 0 else (1, 0):
            timing, outputs[index] = run_steps(systems[index])
            samples[index].append(timing)
    privet, tenseal = (
        Measured(median_timing(samples[i]), outputs[i]) for i in (0, 1)
    )  # fmt: skip
    return privet, tenseal


# -- row packing and the public contexts -------------------------------------------------------


@dataclass(frozen=True)
class RowPacking:
    """Raw TenSEAL, one ciphertext per row, on the first ``rows`` rows."""

    rows: int
    per_row: Timing  # mean seconds per row
    output: NDArray[np.float64]  # those rows' probabilities


@dataclass(frozen=True)
class PublicContexts:
    """``encode_public_context`` bytes and key generation seconds, without and with
    Galois keys."""

    relin_bytes: int
    galois_bytes: int
    relin_keygen_s: float
    galois_keygen_s: float


def measure_contexts(workload: Workload) -> tuple[PublicContexts, CkksContext, CkksContext]:
    """The two public contexts' sizes, the private context with Galois keys and the
    server's public copy of it (decoded from the wire)."""
    parameters = workload.parameters
    keys = workload.model.requirements.keys
    plain, relin_s = timed(lambda: CkksContext.create(parameters, keys))
    rotating_keys = keys.union(KeyNeeds(relinearization=False, rotations=True))
    rotating, galois_s = timed(lambda: CkksContext.create(parameters, rotating_keys))
    relin_message = encode_public_context(plain)
    galois_message = encode_public_context(rotating)
    sizes = PublicContexts(len(relin_message), len(galois_message), relin_s, galois_s)
    return sizes, rotating, decode_public_context(galois_message)


def measure_row_packing(
    workload: Workload, secret: CkksContext, server: CkksContext, rows: int
) -> RowPacking:
    """Each row a vector: ``dot`` with the weights, the bias, the sigmoid; timed per step
    over ``rows`` rows after one untimed."""
    public = server.tenseal
    key = secret.tenseal.secret_key()
    weights, bias = workload.unit_weights
    coefficients = workload.unit_coefficients
    table = workload.rows[: rows + 1]

    def encrypt(part: NDArray[np.float64]) -> list[Any]:
        return [ts.ckks_vector(public, row.tolist()) for row in part]

    def evaluate(vectors: list[Any]) -> list[Any]:
        return [(vector.dot(weights) + bias).polyval(coefficients) for vector in vectors]

    def decrypt_rows(results: list[Any]) -> NDArray[np.float64]:
        return np.array([result.decrypt(key)[0] for result in results], dtype=np.float64)

    decrypt_rows(evaluate(encrypt(table[-1:])))  # warm-up, untimed
    vectors, encrypt_s = timed(lambda: encrypt(table[:rows]))
    results, evaluate_s = timed(lambda: evaluate(vectors))
    output, decrypt_s = timed(lambda: decrypt_rows(results))
    return RowPacking(rows, Timing(encrypt_s, evaluate_s, decrypt_s).scaled(1.0 / rows), output)


# -- all of it ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CkksResults:
    workload: Workload
    repeats: int
    privet: Measured
    tenseal: Measured
    row_packing: RowPacking
    contexts: PublicContexts
    quick: bool


def measure(quick: bool) -> CkksResults:
    workload = make_workload(QUICK_ROWS if quick else ROWS)
    repeats = QUICK_REPEATS if quick else REPEATS
    privet, tenseal = measure_feature_packing(workload, repeats)
    contexts, secret, server = measure_contexts(workload)
    row_rows = QUICK_ROW_PACKED_ROWS if quick else ROW_PACKED_ROWS
    row_packing = measure_row_packing(workload, secret, server, row_rows)
    return CkksResults(workload, repeats, privet, tenseal, row_packing, contexts, quick)


# -- checks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A measured disagreement and the bound it must stay within."""

    name: str
    value: float
    bound: float
    bound_text: str
    count: bool = False  # a number of rows, not an error

    @property
    def ok(self) -> bool:
        return self.value <= self.bound


def max_difference(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    return float(np.max(np.abs(a - b)))


def fit_error_bound(sigmoid: PolynomialApproximation) -> tuple[float, float]:
    """The sigmoid fit's error anywhere on its interval: ``(measured, slack)``.

    ``max_error`` is measured on the nodes of a grid of spacing ``h``; between two nodes
    the error exceeds the nearer node's by at most ``h^2 / 8 * max |e''|`` (Taylor at the
    maximum, where ``e' = 0``), with ``|sigmoid''| <= 1 / (6 sqrt 3)`` and the
    polynomial's second derivative bounded by its grid maximum with 1% room.
    """
    low, high = sigmoid.interval
    spacing = (high - low) / (GRID_POINTS - 1)
    second = np.polynomial.polynomial.polyder(np.asarray(sigmoid.unit_coefficients), 2)
    unit_grid = np.linspace(low, high, GRID_POINTS) / sigmoid.reach
    polynomial_second = float(np.max(np.abs(np.polynomial.polynomial.polyval(unit_grid, second))))
    curvature = 1.0 / (6.0 * np.sqrt(3.0)) + 1.01 * polynomial_second / sigmoid.reach**2
    return sigmoid.max_error, float(spacing**2 / 8.0 * curvature)


def checks(results: CkksResults) -> list[Check]:
    workload = results.workload
    n = workload.n_rows
    precision = 2.0**-PRECISION_BITS
    precision_text = f"2^-{PRECISION_BITS} = {precision:.1e}"
    privet, tenseal = results.privet.output, results.tenseal.output
    rows = results.row_packing.rows
    fit_error, slack = fit_error_bound(workload.model.sigmoid)

    def disagreements(probabilities: NDArray[np.float64]) -> float:
        return float(np.count_nonzero((probabilities >= 0.5) != workload.sklearn_positive))

    return [
        Check("max |privet − TenSEAL|", max_difference(privet, tenseal), 2 * precision,
              f"2 × {precision_text}"),
        Check("max |privet − polynomial|", max_difference(privet, workload.polynomial),
              precision, precision_text),
        Check("max |TenSEAL − polynomial|", max_difference(tenseal, workload.polynomial),
              precision, precision_text),
        Check(f"max |TenSEAL row-packed − polynomial| ({rows} rows)",
              max_difference(results.row_packing.output, workload.polynomial[:rows]),
              precision, precision_text),
        Check("max |polynomial − scikit-learn predict_proba|",
              max_difference(workload.polynomial, workload.sklearn_proba), fit_error + slack,
              f"sigmoid fit error {fit_error:.3f} + {slack:.0e}"),
        Check(f"privet classes ≠ scikit-learn predict (of {n:,})", disagreements(privet), 0.0,
              "0", count=True),
        Check(f"TenSEAL classes ≠ scikit-learn predict (of {n:,})", disagreements(tenseal), 0.0,
              "0", count=True),
    ]  # fmt: skip


def checks_table(items: list[Check]) -> Table:
    result = Table(title="CKKS agreement checks", title_justify="left")
    result.add_column("check", justify="left")
    for name in ("measured", "bound", "within"):
        result.add_column(name, justify="right")
    for item in items:
        value = f"{item.value:.0f}" if item.count else f"{item.value:.1e}"
        result.add_row(item.name, value, item.bound_text, "yes" if item.ok else "NO")
    return result


# -- the timing table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    step: str  # encrypt, evaluate, decrypt or total
    operation: str
    packing: str
    privet: float | None  # seconds; None: privet has no such layout
    tenseal: float
    judged: bool = False  # against the target
    feature_tenseal: float | None = None  # row packing: feature packing's TenSEAL seconds
    note: str = ""
    end_section: bool = False

    @property
    def ratio(self) -> float | None:
        """privet seconds / TenSEAL seconds (lower is better)."""
        return None if self.privet is None else self.privet / self.tenseal

    @property
    def target_met(self) -> bool | None:
        ratio = self.ratio
        return None if not self.judged or ratio is None else ratio <= TARGET_RATIO

    @property
    def packing_ratio(self) -> float | None:
        """Row packing seconds / feature packing seconds, both raw TenSEAL."""
        return None if self.feature_tenseal is None else self.tenseal / self.feature_tenseal


def build_rows(results: CkksResults) -> list[Row]:
    workload = results.workload
    n, features = workload.n_rows, workload.n_features
    privet, tenseal = results.privet.timing, results.tenseal.timing
    per_feature = f"one ciphertext per feature ({features})"
    degree = workload.model.sigmoid.degree
    names = (
        f"encrypt {n:,} × {features}",
        f"evaluate (affine, degree-{degree} sigmoid)",
        f"decrypt {n:,} probabilities",
        "total (encrypt + evaluate + decrypt)",
    )
    steps = ("encrypt", "evaluate", "decrypt", "total")
    rows = [
        Row(step, name, per_feature, getattr(privet, step), getattr(tenseal, step),
            judged=step in ("evaluate", "total"), end_section=step == "total")
        for name, step in zip(names, steps, strict=True)
    ]  # fmt: skip
    packed = results.row_packing
    extrapolated = packed.per_row.scaled(float(n))
    per_row = f"one ciphertext per row ({n:,}), TenSEAL only"
    for name, step in zip(names, steps, strict=True):
        seconds_per_row = getattr(packed.per_row, step)
        rows.append(
            Row(step, f"{name}, extrapolated from {packed.rows} rows", per_row, None,
                getattr(extrapolated, step), feature_tenseal=getattr(tenseal, step),
                note=f"{seconds_per_row * 1e3:.3g} ms per row")
        )  # fmt: skip
    return rows


def fmt_seconds(seconds: float | None) -> str:
    return MISSING if seconds is None else f"{seconds:.3g}"


def fmt_ratio(ratio: float | None, digits: str = ".2f") -> str:
    return MISSING if ratio is None else f"{ratio:{digits}}×"


def timing_table(rows: list[Row], results: CkksResults) -> Table:
    workload = results.workload
    result = Table(
        title=(
            f"CKKS encrypted logistic inference, {workload.n_rows:,} × {workload.n_features} "
            f"rows: privet vs raw TenSEAL, seconds (median of {results.repeats}; "
            "privet s / TenSEAL s: lower is better)"
        ),
        title_justify="left",
    )
    for name in ("operation", "packing"):
        result.add_column(name, justify="left")
    for name in (
        "privet s",
        "TenSEAL s",
        "privet s\n/ TenSEAL s",
        f"target\n≤ {TARGET_RATIO:g}×",
        "row packing\n/ feature",
    ):
        result.add_column(name, justify="right")
    result.add_column("note", justify="left")
    for row in rows:
        target = {True: "met", False: "missed", None: ""}[row.target_met]
        result.add_row(
            row.operation,
            row.packing,
            fmt_seconds(row.privet),
            fmt_seconds(row.tenseal),
            fmt_ratio(row.ratio),
            target,
            fmt_ratio(row.packing_ratio, ".0f"),
            row.note,
            end_section=row.end_section,
        )
    return result


def contexts_table(contexts: PublicContexts) -> Table:
    result = Table(
        title="CKKS public context sent to the server (privet.he.ckks.encode_public_context)",
        title_justify="left",
    )
    for name in ("evaluation keys", "needed by"):
        result.add_column(name, justify="left")
    for name in ("bytes", "MB", "× relin only", "keygen s"):
        result.add_column(name, justify="right")
    for keys, needed_by, size, keygen in (
        ("relinearization", "feature packing (what privet sends)", contexts.relin_bytes,
         contexts.relin_keygen_s),
        ("relinearization + Galois", "row packing (dot products rotate)",
         contexts.galois_bytes, contexts.galois_keygen_s),
    ):  # fmt: skip
        result.add_row(
            keys,
            needed_by,
            f"{size:,}",
            f"{size / 1e6:.3g}",
            f"{size / contexts.relin_bytes:.1f}×",
            f"{keygen:.3g}",
        )
    return result


def notes(results: CkksResults) -> list[str]:
    workload = results.workload
    sigmoid = workload.model.sigmoid
    parameters = workload.parameters
    low, high = sigmoid.interval
    lines = [
        f"data: scikit-learn's breast cancer set ({workload.source_rows} × "
        f"{workload.n_features}), standardized; LogisticRegression "
        f"(C={workload.regularization:g}) fitted on it; "
        f"{workload.n_rows:,} rows drawn from it with replacement (seed {SEED}), every "
        f"feature below the declared bound {INPUT_BOUND:g}.",
        f"model: EncryptedLogisticRegression.from_sklearn(reference_rows=the {workload.source_rows}"
        f" rows): degree-{sigmoid.degree} sigmoid on [{low:.2f}, {high:.2f}] (decision range, "
        f"10% wider), fit error {sigmoid.max_error:.3f} on it (the polynomial's, not CKKS's).",
        f"parameters: requirements.parameters(precision_bits={PRECISION_BITS}, "
        f"length={workload.n_rows}, input_bound={INPUT_BOUND:g}): N = "
        f"{parameters.poly_modulus_degree}, chain {list(parameters.coeff_mod_bit_sizes)}, "
        f"scale 2^{parameters.scale_bits}, depth {parameters.depth}; privet and TenSEAL both "
        "use exactly these, each with its own fresh keys.",
        *(f"  {line}" for line in parameters.explain().splitlines()),
        f"timing: median of {results.repeats} after one untimed warm-up, privet and TenSEAL "
        "alternating; total = the sum of the step medians. Row packing: the steps timed on "
        f"{results.row_packing.rows} rows (after one untimed), per row × {workload.n_rows:,}.",
    ]
    if results.quick:
        lines.append(
            f"Quick: {workload.n_rows} rows, {results.repeats} repetition(s), "
            f"{results.row_packing.rows} row-packed rows: the figures mean little."
        )
    return lines


def summary(rows: list[Row], items: list[Check], contexts: PublicContexts) -> str:
    verdicts = "; ".join(
        f"{r.step} {fmt_ratio(r.ratio)} {'met' if r.target_met else 'missed'}"
        for r in rows
        if r.judged
    )
    packed = {r.step: r for r in rows if r.privet is None}
    failed = [item.name for item in items if not item.ok]
    return (
        f"CKKS target (privet s ≤ {TARGET_RATIO:g}× raw TenSEAL s on evaluate and total): "
        f"{verdicts}. One ciphertext per row (extrapolated): evaluate "
        f"{fmt_ratio(packed['evaluate'].packing_ratio, '.0f')}, total "
        f"{fmt_ratio(packed['total'].packing_ratio, '.0f')} feature packing's seconds, and a "
        f"{contexts.galois_bytes / contexts.relin_bytes:.0f}× larger public context. "
        + ("Checks: all within their bounds." if not failed else f"Checks FAILED: {failed}.")
    )


def report(console: Console, *, quick: bool) -> CkksResults:
    """Measure, and print the tables, notes and verdict."""
    results = measure(quick)
    rows = build_rows(results)
    items = checks(results)
    console.print(timing_table(rows, results))
    console.print(contexts_table(results.contexts))
    console.print(checks_table(items))
    for line in notes(results):
        console.print(line, markup=False, highlight=False)
    console.print(summary(rows, items, results.contexts), markup=False, highlight=False)
    return results
