"""Additive-noise and local mechanisms, each describing its cost as a ``DpEvent``.

A mechanism is a frozen record of its privacy parameters, validated when it is
built. ``mechanism.event`` says what a release costs; ``mechanism.release``
draws the noise. The ledger (:meth:`privet.dp.Ledger.release`) charges the
event *before* it calls ``release``.

Which samplers are exact
------------------------
* :class:`DiscreteLaplaceMechanism` and :class:`DiscreteGaussianMechanism`
  sample with exact integer arithmetic (Canonne, Kamath & Steinke 2020), so the
  floating-point attack on textbook Laplace (Mironov 2012) does not apply.
  Prefer them for integer-valued queries such as counts.
* :class:`LaplaceMechanism` and :class:`GaussianMechanism` draw IEEE doubles;
  their outputs' low-order bits can leak information in the way Mironov (2012)
  describes. Use them for real-valued queries and accept that caveat.
* :class:`RandomizedResponse` is exact: it only compares uniform integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, Protocol, runtime_checkable

import dp_accounting
import numpy as np
from dp_accounting import dp_event

from privet.dp import exact
from privet.dp._validation import (
    check_choice,
    check_epsilon,
    check_finite_array,
    check_integer_array,
    check_positive,
    check_positive_int,
)
from privet.dp.calibration import calibrate_gaussian, classic_gaussian_sigma
from privet.dp.events import DiscreteGaussianDpEvent, DpEvent
from privet.dp.randomness import RandomSource, RngLike, resolve_rng
from privet.errors import PrivacyError

__all__ = [
    "DiscreteGaussianMechanism",
    "DiscreteLaplaceMechanism",
    "GaussianMechanism",
    "LaplaceMechanism",
    "Mechanism",
    "RandomizedResponse",
]

GaussianCalibration = Literal["analytic", "classic"]

_MAX_DISCRETE_SENSITIVITY = 2**20
_MAX_RR_CATEGORIES = 2**31
_RR_RESOLUTION = 2**30
_MAX_RR_EPSILON = 20.0  # keeps the integer weights of RandomizedResponse below 2**62


@runtime_checkable
class Mechanism(Protocol):
    """What the ledger needs from a mechanism: its cost, then its release."""

    @property
    def event(self) -> DpEvent:
        """The privacy cost of one release."""
        ...

    def validate(self, value: Any) -> np.ndarray:
        """Check ``value`` can be released; raise ``PrivacyError`` naming the problem if not."""
        ...

    def release(self, value: Any, *, rng: RngLike = None) -> Any:
        """Release ``value`` privately."""
        ...


def _float_at_least(value: Fraction) -> float:
    """The nearest float to ``value`` that is not below it."""
    nearest = float(value)
    return nearest if Fraction(nearest) >= value else math.nextafter(nearest, math.inf)


def _shape_like(value: Any, array: np.ndarray) -> Any:
    return array.item() if np.ndim(value) == 0 else array


def laplace_noise(scale: float, size: int, source: RandomSource) -> np.ndarray:
    """``size`` Laplace(0, scale) draws by inversion of the CDF (floating point)."""
    centred = source.uniform(size) - 0.5
    return -scale * np.sign(centred) * np.log1p(-2.0 * np.abs(centred))


@dataclass(frozen=True)
class LaplaceMechanism:
    """The Laplace mechanism (Dwork, McSherry, Nissim & Smith 2006).

    Adds Laplace(0, sensitivity / epsilon) noise to each coordinate; pure
    epsilon-DP for queries of L1 sensitivity ``sensitivity`` under
    add-or-remove-one neighbours. Floating-point sampler (see module notes).
    """

    epsilon: float
    sensitivity: float = 1.0

    def __post_init__(self) -> None:
        check_epsilon(self.epsilon)
        check_positive("sensitivity", self.sensitivity)

    @property
    def scale(self) -> float:
        """The Laplace scale ``b = sensitivity / epsilon``."""
        return self.sensitivity / self.epsilon

    @property
    def event(self) -> DpEvent:
        return dp_accounting.LaplaceDpEvent(1.0 / self.epsilon)

    def validate(self, value: Any) -> np.ndarray:
        return check_finite_array("value", value)

    def release(self, value: Any, *, rng: RngLike = None) -> Any:
        array = self.validate(value)
        source = resolve_rng(rng, release=True)
        noisy = array + laplace_noise(self.scale, array.size, source).reshape(array.shape)
        return _shape_like(value, noisy)


@dataclass(frozen=True)
class GaussianMechanism:
    """The Gaussian mechanism for queries of L2 sensitivity ``sensitivity``.

    ``calibration="analytic"`` (default) uses the exact noise of Balle & Wang
    (2018), valid for every epsilon; ``"classic"`` uses Dwork & Roth's
    Theorem A.1, valid only for epsilon < 1. Floating-point sampler.
    """

    epsilon: float
    delta: float
    sensitivity: float = 1.0
    calibration: GaussianCalibration = "analytic"

    def __post_init__(self) -> None:
        check_choice("calibration", self.calibration, ("analytic", "classic"))
        # Computing sigma validates epsilon, delta and sensitivity.
        object.__setattr__(self, "_sigma", self._calibrate())

    def _calibrate(self) -> float:
        if self.calibration == "classic":
            return classic_gaussian_sigma(self.epsilon, self.delta, self.sensitivity)
        return calibrate_gaussian(self.epsilon, self.delta, self.sensitivity)

    @property
    def sigma(self) -> float:
        """Noise standard deviation."""
        return float(self.__dict__["_sigma"])

    @property
    def event(self) -> DpEvent:
        return dp_accounting.GaussianDpEvent(self.sigma / self.sensitivity)

    def validate(self, value: Any) -> np.ndarray:
        return check_finite_array("value", value)

    def release(self, value: Any, *, rng: RngLike = None) -> Any:
        array = self.validate(value)
        source = resolve_rng(rng, release=True)
        noise = self.sigma * source.standard_normal(array.size).reshape(array.shape)
        return _shape_like(value, array + noise)


@dataclass(frozen=True)
class DiscreteLaplaceMechanism:
    """The discrete Laplace (two-sided geometric) mechanism for integer queries.

    Adds noise with P(z) proportional to exp(-epsilon |z| / sensitivity)
    (Ghosh, Roughgarden & Sundararajan 2009); pure epsilon-DP for integer
    queries of L1 sensitivity ``sensitivity``. Exact sampler
    (Canonne, Kamath & Steinke 2020, Algorithm 2).
    """

    epsilon: float
    sensitivity: int = 1

    def __post_init__(self) -> None:
        eps = check_epsilon(self.epsilon)
        sensitivity = check_positive_int("sensitivity", self.sensitivity)
        if sensitivity > _MAX_DISCRETE_SENSITIVITY:
            raise PrivacyError(
                f"sensitivity must be <= 2**20 for DiscreteLaplaceMechanism (its PLD enumerates "
                f"the sensitivity), got {sensitivity}; use LaplaceMechanism for wider ranges"
            )
        exact_scale = Fraction(sensitivity) / Fraction(eps)
        if exact_scale > exact.MAX_PARAMETER:
            raise PrivacyError(
                f"sensitivity / epsilon must be <= 2**50, got {float(exact_scale):.6g}"
            )
        object.__setattr__(self, "_scale", _float_at_least(exact_scale))

    @property
    def scale(self) -> float:
        """The noise scale drawn: ``sensitivity / epsilon``, rounded up to a float."""
        return float(self.__dict__["_scale"])

    @property
    def event(self) -> DpEvent:
        # The parameter a = 1 / scale of the noise actually drawn, rounded *up*: the
        # event may overstate epsilon by an ulp, never understate it.
        parameter = _float_at_least(1 / Fraction(self.scale))
        return dp_event.DiscreteLaplaceDpEvent(parameter, self.sensitivity)

    def validate(self, value: Any) -> np.ndarray:
        return check_integer_array("value", value)

    def release(self, value: Any, *, rng: RngLike = None) -> Any:
        array = self.validate(value)
        source = resolve_rng(rng, release=True)
        noise = exact.discrete_laplace(self.scale, array.size, source).reshape(array.shape)
        return _shape_like(value, array + noise)


@dataclass(frozen=True)
class DiscreteGaussianMechanism:
    """The discrete Gaussian mechanism with parameter ``sigma`` for integer queries.

    Adds noise with P(z) proportional to exp(-z^2 / (2 sigma^2)), which is
    ``sensitivity^2 / (2 sigma^2)``-zCDP for integer queries of L2 sensitivity
    ``sensitivity`` (Canonne, Kamath & Steinke 2020, Theorem 14). Exact
    sampler (ibid., Algorithm 3). A starting point for ``sigma`` is
    :func:`privet.dp.calibrate_gaussian`; the accountant states the
    resulting epsilon exactly.

    The noise is drawn with :attr:`effective_sigma`: ``sigma`` rounded *up*
    to a dyadic grid (a relative change below 3e-4, see
    :func:`privet.dp.exact.round_sigma_up`) so the exact sampler runs in
    int64; the event records the effective value.
    """

    sigma: float
    sensitivity: int = 1

    def __post_init__(self) -> None:
        check_positive("sigma", self.sigma)
        check_positive_int("sensitivity", self.sensitivity)
        object.__setattr__(self, "_effective", exact.round_sigma_up(self.sigma))

    @property
    def effective_sigma(self) -> float:
        """The sigma the noise is drawn with (``sigma`` rounded up), as a float never above it."""
        effective = self.__dict__["_effective"]
        as_float = float(effective)
        # The event must not claim more noise than is drawn.
        return as_float if as_float <= effective else math.nextafter(as_float, 0.0)

    @property
    def event(self) -> DpEvent:
        return DiscreteGaussianDpEvent(self.effective_sigma, int(self.sensitivity))

    def validate(self, value: Any) -> np.ndarray:
        return check_integer_array("value", value)

    def release(self, value: Any, *, rng: RngLike = None) -> Any:
        array = self.validate(value)
        source = resolve_rng(rng, release=True)
        noise = exact.discrete_gaussian(self.__dict__["_effective"], array.size, source)
        return _shape_like(value, array + noise.reshape(array.shape))


@dataclass(frozen=True)
class RandomizedResponse:
    """k-ary randomized response (Warner 1965; Kairouz, Oh & Viswanath 2016).

    Each individual's category in ``0 .. num_categories - 1`` is kept with
    probability ``e^eps / (e^eps + k - 1)`` and otherwise replaced by one of
    the other categories uniformly at random: epsilon-local-DP, analysed under
    the *replace-one* neighbouring relation. Exact sampler (integer
    comparisons only).
    """

    epsilon: float
    num_categories: int = 2

    def __post_init__(self) -> None:
        if check_epsilon(self.epsilon) > _MAX_RR_EPSILON:
            raise PrivacyError(
                f"epsilon must be <= {_MAX_RR_EPSILON} for RandomizedResponse, got {self.epsilon!r}"
            )
        if not 2 <= check_positive_int("num_categories", self.num_categories) <= _MAX_RR_CATEGORIES:
            raise PrivacyError(f"num_categories must be in [2, 2**31], got {self.num_categories!r}")

    @property
    def _keep_weight(self) -> int:
        # The odds e^eps, rounded *down* to a multiple of 2^-30 so the sampled
        # mechanism is never less private than its event says.
        return math.floor(math.exp(self.epsilon) * _RR_RESOLUTION)

    @property
    def flip_probability(self) -> float:
        """dp-accounting's noise parameter: the chance of answering uniformly at random."""
        k = self.num_categories
        return k / (self._keep_weight / _RR_RESOLUTION + k - 1)

    @property
    def event(self) -> DpEvent:
        return dp_accounting.RandomizedResponseDpEvent(self.flip_probability, self.num_categories)

    def validate(self, value: Any) -> np.ndarray:
        categories = check_integer_array("value", value)
        k = self.num_categories
        if categories.size and (categories.min() < 0 or categories.max() >= k):
            bad = categories.min() if categories.min() < 0 else categories.max()
            raise PrivacyError(f"value must hold categories in [0, {k - 1}], got {bad}")
        return categories

    def release(self, value: Any, *, rng: RngLike = None) -> Any:
        categories = self.validate(value)
        source = resolve_rng(rng, release=True)
        k = self.num_categories
        flat = categories.ravel()
        keep_weight = self._keep_weight
        keep = source.integers(keep_weight + (k - 1) * _RR_RESOLUTION, flat.size) < keep_weight
        shift = source.integers(k - 1, flat.size) + 1
        out = np.where(keep, flat, (flat + shift) % k)
        return _shape_like(value, out.reshape(categories.shape))

    def estimate_frequencies(self, reports: Any) -> np.ndarray:
        """Unbiased estimates of the true category frequencies from released reports.

        Inverts E[report share] = p_keep * f + (1 - p_keep) * (1 - f) / (k - 1)
        (Wang, Blocki, Li & Jha 2017). Post-processing: costs no privacy.
        """
        counts = np.bincount(
            check_integer_array("reports", reports).ravel(), minlength=self.num_categories
        )
        k = self.num_categories
        share = counts / max(counts.sum(), 1)
        odds = self._keep_weight / _RR_RESOLUTION
        p_keep = odds / (odds + k - 1)
        p_other = (1.0 - p_keep) / (k - 1)
        return np.asarray((share - p_other) / (p_keep - p_other))
