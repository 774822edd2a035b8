"""Private selection: pick a good candidate by a utility score, epsilon-DP.

Three mechanisms with the same interface, each an epsilon-DP
:class:`~privet.dp.events.PureDpEvent` for utilities of sensitivity
``sensitivity`` (``monotonic=True`` when every utility moves in the same
direction between neighbours, which halves the noise):

* :class:`ExponentialMechanism` — McSherry & Talwar 2007, sampled by the
  Gumbel-max trick.
* :class:`PermuteAndFlip` — McKenna & Sheldon 2020; never worse in expected
  utility than the exponential mechanism. Sampled as report-noisy-max with
  exponential noise, to which it is identical (Ding, Kifer et al. 2021); the
  original permute-and-flip loop is kept as the slow oracle.
* :class:`ReportNoisyMax` — Laplace noise on each score (Dwork & Roth 2014,
  §3.3).

All three draw floating-point noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from privet.dp._validation import check_epsilon, check_finite_array, check_positive
from privet.dp.events import DpEvent, PureDpEvent
from privet.dp.mechanisms import laplace_noise
from privet.dp.randomness import RandomSource, RngLike, resolve_rng
from privet.errors import PrivacyError

__all__ = ["ExponentialMechanism", "PermuteAndFlip", "ReportNoisyMax"]


def _check_utilities(utilities: Any) -> np.ndarray:
    scores = check_finite_array("utilities", utilities)
    if scores.ndim != 1 or scores.size == 0:
        raise PrivacyError(f"utilities must be a non-empty 1-D array, got shape {scores.shape}")
    return scores


@dataclass(frozen=True)
class _Selection:
    epsilon: float
    sensitivity: float = 1.0
    monotonic: bool = False

    def __post_init__(self) -> None:
        check_epsilon(self.epsilon)
        check_positive("sensitivity", self.sensitivity)

    @property
    def event(self) -> DpEvent:
        return PureDpEvent(float(self.epsilon))

    @property
    def _scale(self) -> float:
        """epsilon / (2 sensitivity), or epsilon / sensitivity when monotonic."""
        factor = 1.0 if self.monotonic else 2.0
        return self.epsilon / (factor * self.sensitivity)

    def validate(self, value: Any) -> np.ndarray:
        """The utilities as a non-empty 1-D float array, or ``PrivacyError``."""
        return _check_utilities(value)

    def release(self, value: Any, *, rng: RngLike = None) -> int:
        """The index of the selected candidate, given one utility per candidate."""
        scores = self.validate(value)
        return self._select(scores, resolve_rng(rng, release=True))

    def _select(self, scores: np.ndarray, source: RandomSource) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class ExponentialMechanism(_Selection):
    """Select index i with probability proportional to exp(epsilon u_i / (2 sensitivity))."""

    def probabilities(self, utilities: Any) -> np.ndarray:
        """The exact selection probabilities (for checking and analysis)."""
        logits = self._scale * _check_utilities(utilities)
        weights = np.exp(logits - logits.max())
        return np.asarray(weights / weights.sum())

    def _select(self, scores: np.ndarray, source: RandomSource) -> int:
        return int(np.argmax(self._scale * scores + source.standard_gumbel(scores.size)))


@dataclass(frozen=True)
class PermuteAndFlip(_Selection):
    """Permute-and-flip (McKenna & Sheldon 2020)."""

    def _select(self, scores: np.ndarray, source: RandomSource) -> int:
        noise = source.standard_exponential(scores.size)
        return int(np.argmax(self._scale * scores + noise))

    def release_by_flipping(self, utilities: Any, *, rng: RngLike = None) -> int:
        """The original algorithm: visit candidates in random order, keep each
        with probability exp(scale (u_r - u_max)). Slow oracle for :meth:`release`."""
        source = resolve_rng(rng, release=True)
        scores = _check_utilities(utilities)
        best = scores.max()
        while True:
            order = np.argsort(source.uniform(scores.size))
            accept = source.uniform(scores.size)
            for candidate in order:
                if accept[candidate] <= math.exp(self._scale * (scores[candidate] - best)):
                    return int(candidate)


@dataclass(frozen=True)
class ReportNoisyMax(_Selection):
    """Add Laplace(1 / scale) noise to each utility and report the argmax."""

    def _select(self, scores: np.ndarray, source: RandomSource) -> int:
        return int(np.argmax(scores + laplace_noise(1.0 / self._scale, scores.size, source)))
