"""Aggregation arithmetic as pure functions over ``(clients, parameters)`` matrices.

Strategies are thin classes around these (sampling, bookkeeping); the maths
lives here so it can be tested against slow references on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError

__all__ = [
    "FedOptKind",
    "ServerOptimizer",
    "check_krum_counts",
    "check_trim_fraction",
    "coordinate_median",
    "fedopt_step",
    "krum_scores",
    "multi_krum_select",
    "pairwise_squared_distances",
    "trimmed_mean",
    "weighted_mean",
]


def weighted_mean(
    updates: NDArray[np.float64], weights: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``sum_k w_k x_k / sum_k w_k`` over the rows of ``updates`` (McMahan et al. 2017).

    Raises :class:`PrivacyError` if the weights are negative or sum to zero.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or weights.shape[0] != updates.shape[0]:
        raise PrivacyError(
            f"weights must be one per update ({updates.shape[0]}), got shape {list(weights.shape)}"
        )
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise PrivacyError(f"weights must be finite and >= 0, got {weights.tolist()}")
    total = weights.sum()
    if total <= 0:
        raise PrivacyError("weights must not all be zero")
    result: NDArray[np.float64] = (weights / total) @ updates
    return result


# -- argument checks (one message format: "<name> must be <range>, got <value>") ---------------


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise PrivacyError(f"{name} must be a real number, got {value!r}")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise PrivacyError(f"{name} must be finite, got {value!r}")
    return as_float


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise PrivacyError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _update_matrix(updates: NDArray[np.float64]) -> NDArray[np.float64]:
    matrix = np.asarray(updates, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise PrivacyError(
            f"updates must be a (clients, parameters) matrix with at least one row, "
            f"got shape {list(matrix.shape)}"
        )
    if not np.isfinite(matrix).all():
        rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1)).tolist()
        raise PrivacyError(f"updates must be finite, got NaN or infinity in rows {rows}")
    return matrix


# -- adaptive server optimizers (Reddi et al. 2021) --------------------------------------------


class FedOptKind(Enum):
    """Which second-moment rule the server optimizer uses (Reddi et al. 2021, Algorithm 2)."""

    ADAGRAD = "adagrad"
    ADAM = "adam"
    YOGI = "yogi"


@dataclass(frozen=True)
class ServerOptimizer:
    """Hyperparameters of FedAdagrad, FedAdam or FedYogi (Reddi et al., "Adaptive Federated
    Optimization", ICLR 2021, Algorithm 2).

    Attributes
    ----------
    kind
        The second-moment rule.
    eta
        Server learning rate ``η`` > 0.
    beta_1
        First-moment decay ``β1`` in [0, 1) (all three rules use momentum).
    beta_2
        Second-moment decay ``β2`` in [0, 1); ignored by Adagrad.
    tau
        ``τ`` > 0, the degree of adaptivity: the step divides by ``sqrt(v) + τ``, so a
        large ``τ`` approaches server SGD with momentum and a small one is fully adaptive.
    """

    kind: FedOptKind
    eta: float
    beta_1: float = 0.9
    beta_2: float = 0.99
    tau: float = 1e-9

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FedOptKind):
            raise PrivacyError(f"kind must be a FedOptKind, got {self.kind!r}")
        checked: dict[str, float] = {}
        for name in ("eta", "tau"):
            checked[name] = _real(name, getattr(self, name))
            if checked[name] <= 0:
                raise PrivacyError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("beta_1", "beta_2"):
            checked[name] = _real(name, getattr(self, name))
            if not 0.0 <= checked[name] < 1.0:
                raise PrivacyError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        # Plain floats, so that numpy scalars never leak into checkpoints or metrics.
        for name, value in checked.items():
            object.__setattr__(self, name, value)


def fedopt_step(
    optimizer: ServerOptimizer,
    x: NDArray[np.float64],
    delta: NDArray[np.float64],
    m: NDArray[np.float64],
    v: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """One server step of Reddi et al. (ICLR 2021), Algorithm 2: ``(x_new, m_new, v_new)``.

    With the pseudo-gradient ``Δ = delta`` (the averaged client change)::

        m = β1 m + (1 - β1) Δ
        v = v + Δ²                                  (Adagrad)
        v = β2 v + (1 - β2) Δ²                      (Adam)
        v = v - (1 - β2) Δ² sign(v - Δ²)            (Yogi)
        x = x + η m / (sqrt(v) + τ)

    There is no bias correction: Algorithm 2 has none (unlike Kingma & Ba's Adam), and
    ``τ`` bounds the first steps instead. The algorithm starts from ``m = 0`` and any
    ``v ≥ τ²``. Inputs are not modified.

    Raises :class:`PrivacyError` if the vectors differ in length, ``v`` is negative or
    any input is not finite (a NaN would poison the moments for every later round).
    """
    vectors = {"x": x, "delta": delta, "m": m, "v": v}
    arrays = {name: np.asarray(value, dtype=np.float64) for name, value in vectors.items()}
    size = arrays["x"].shape
    for name, array in arrays.items():
        if array.ndim != 1 or array.shape != size:
            raise PrivacyError(
                f"{name} must be a vector of the same length as x ({size}), "
                f"got shape {list(array.shape)}"
            )
        if not np.isfinite(array).all():
            raise PrivacyError(f"{name} must be finite, got NaN or infinity")
    if (arrays["v"] < 0).any():
        raise PrivacyError("v must be >= 0 (it is a sum of squares), got a negative entry")
    o = optimizer
    d, m_old, v_old = arrays["delta"], arrays["m"], arrays["v"]
    squared = d * d
    m_new = o.beta_1 * m_old + (1.0 - o.beta_1) * d
    if o.kind is FedOptKind.ADAGRAD:
        v_new = v_old + squared
    elif o.kind is FedOptKind.ADAM:
        v_new = o.beta_2 * v_old + (1.0 - o.beta_2) * squared
    else:
        v_new = v_old - (1.0 - o.beta_2) * squared * np.sign(v_old - squared)
    x_new = arrays["x"] + o.eta * m_new / (np.sqrt(v_new) + o.tau)
    return x_new, m_new, v_new


# -- coordinate-wise robust statistics (Yin et al. 2018) ---------------------------------------


def coordinate_median(updates: NDArray[np.float64]) -> NDArray[np.float64]:
    """Coordinate-wise median of the rows (Yin et al., "Byzantine-Robust Distributed
    Learning: Towards Optimal Statistical Rates", ICML 2018).

    With an even number of rows each coordinate is the mean of its two middle values.
    """
    matrix = _update_matrix(updates)
    result: NDArray[np.float64] = np.median(matrix, axis=0)
    return result


def check_trim_fraction(beta: Any) -> float:
    """Return ``beta`` as a float, or raise unless it lies in [0, 0.5)."""
    value = _real("beta", beta)
    if not 0.0 <= value < 0.5:
        raise PrivacyError(f"beta must be in [0, 0.5), got {beta!r}")
    return value


def trimmed_mean(updates: NDArray[np.float64], beta: float) -> NDArray[np.float64]:
    """Coordinate-wise ``beta``-trimmed mean of the rows (Yin et al., ICML 2018).

    For each coordinate, the ``k = floor(beta * n)`` smallest and ``k`` largest of the
    ``n`` values are removed and the rest averaged — the cut of
    ``scipy.stats.trim_mean`` and Flower's ``aggregate_trimmed_avg``. As
    ``beta < 0.5``, at least one value always remains; ``beta = 0`` is the plain mean.
    """
    fraction = check_trim_fraction(beta)
    matrix = _update_matrix(updates)
    n = matrix.shape[0]
    cut = int(fraction * n)
    if cut == 0:
        plain: NDArray[np.float64] = matrix.mean(axis=0)
        return plain
    # Partitioning puts the k smallest before index k and the k largest after n-k-1
    # without a full sort.
    middle = np.partition(matrix, (cut, n - cut - 1), axis=0)[cut : n - cut]
    result: NDArray[np.float64] = middle.mean(axis=0)
    return result


# -- Krum and Multi-Krum (Blanchard et al. 2017) ------------------------------------------------


def check_krum_counts(num_byzantine: Any, num_selected: Any) -> tuple[int, int]:
    """Return ``(f, m)`` as ints, or raise unless ``f >= 0`` and ``m >= 1``."""
    return _integer("num_byzantine", num_byzantine, 0), _integer("num_selected", num_selected, 1)


def pairwise_squared_distances(updates: NDArray[np.float64]) -> NDArray[np.float64]:
    """``D[i, j] = ||x_i - x_j||²`` for all pairs of rows, as one matrix product.

    Uses ``||a - b||² = ||a||² + ||b||² - 2 a·b`` on rows centred at their coordinate-wise
    median: distances do not change under translation, and centring removes the large
    common part that would otherwise cancel. The median, not the mean, so that one
    far-away (Byzantine) row cannot move the centre and cost the others their precision.
    """
    matrix = _update_matrix(updates)
    centred = matrix - np.median(matrix, axis=0)
    norms = np.einsum("ij,ij->i", centred, centred)
    distances: NDArray[np.float64] = norms[:, None] + norms[None, :] - 2.0 * (centred @ centred.T)
    # Rounding can leave tiny negatives; the diagonal is exactly zero by definition.
    np.maximum(distances, 0.0, out=distances)
    np.fill_diagonal(distances, 0.0)
    return distances


def _check_krum_size(n: int, f: int) -> None:
    if n <= 2 * f + 2:
        raise PrivacyError(
            f"updates must number n > 2f + 2 = {2 * f + 2} for num_byzantine f={f}, got n={n}"
        )


def krum_scores(updates: NDArray[np.float64], num_byzantine: int) -> NDArray[np.float64]:
    """Krum score of each row: the sum of its squared distances to its ``n - f - 2``
    nearest other rows (Blanchard et al., "Machine Learning with Adversaries: Byzantine
    Tolerant Gradient Descent", NeurIPS 2017).

    Raises :class:`PrivacyError` unless ``n > 2f + 2``, the condition of their Lemma 1.
    """
    f = _integer("num_byzantine", num_byzantine, 0)
    distances = pairwise_squared_distances(updates)
    n = distances.shape[0]
    _check_krum_size(n, f)
    neighbours = n - f - 2
    # A row is not its own neighbour.
    np.fill_diagonal(distances, np.inf)
    nearest = np.partition(distances, neighbours - 1, axis=1)[:, :neighbours]
    scores: NDArray[np.float64] = nearest.sum(axis=1)
    return scores


def multi_krum_select(
    updates: NDArray[np.float64], num_byzantine: int, num_selected: int
) -> NDArray[np.intp]:
    """Indices of the ``m`` rows with the lowest Krum scores, best first (Multi-Krum,
    Blanchard et al. 2017; ``m = 1`` is Krum). Ties go to the lower index.

    Raises :class:`PrivacyError` unless ``n > 2f + 2`` and ``1 <= m <= n - f``.
    """
    f, m = check_krum_counts(num_byzantine, num_selected)
    matrix = _update_matrix(updates)
    n = matrix.shape[0]
    _check_krum_size(n, f)
    if m > n - f:
        raise PrivacyError(f"num_selected must be <= n - f = {n - f} (n={n}, f={f}), got {m}")
    scores = krum_scores(matrix, f)
    chosen: NDArray[np.intp] = np.argsort(scores, kind="stable")[:m]
    return chosen
