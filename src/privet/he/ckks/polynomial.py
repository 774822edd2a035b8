"""Polynomial stand-ins for activations, with their error measured and their depth counted.

CKKS evaluates only additions and multiplications, so a sigmoid or a ReLU is
replaced by a polynomial fitted on the interval its inputs fall in. The fit is
least squares on a uniform grid, the approximation of Kim et al. 2018 ("Logistic
regression model training based on the approximate homomorphic encryption", BMC
Medical Genomics 11(Suppl 4):83), whose degree-3 sigmoid on [-8, 8] is
``0.5 + 0.15012 x - 0.001593 x^3``; the maximum error on the interval is measured
on a dense grid when the polynomial is fitted. Outside the interval the polynomial
diverges from the function quickly: choose the interval from the inputs' range.

On ciphertexts the polynomial is evaluated in the unit variable ``t = x / reach``
(``reach = max(|low|, |high|)``), whose powers stay at most 1:
:attr:`PolynomialApproximation.unit_coefficients`. The division is folded into the
plaintext weights of the layer before it (free), and CKKS's noise, which grows with
the magnitude of what it multiplies, stays at its unit-magnitude level; in the
``x`` basis a degree-7 fit on [-32, 32] would square values up to ``32^4``.

:attr:`PolynomialApproximation.depth` is the multiplicative depth TenSEAL's
``polyval`` spends (powers ``x^(2^k)`` by repeated squaring, each term assembled
from them and its coefficient), so a context can be sized before anything is
encrypted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError

__all__ = [
    "PolynomialApproximation",
    "fit_polynomial",
    "polyval_depth",
    "sigmoid_approximation",
]

#: Grid points the fit and its error are computed on.
GRID_POINTS = 20_001


def _term_depth(power: int, coefficient: float) -> int:
    # TenSEAL's compute_polynomial_term: x^(2^k) (depth k) times the rest of the term,
    # and the coefficient multiplied in at the innermost power of two (unless it is 1).
    high = power.bit_length() - 1
    rest = power - (1 << high)
    if rest == 0:
        return high + (0 if coefficient == 1.0 else 1)
    return max(high, _term_depth(rest, coefficient)) + 1


def polyval_depth(coefficients: tuple[float, ...]) -> int:
    """Multiplicative depth TenSEAL's ``polyval`` spends on ``sum_k c_k x^k``."""
    depths = [_term_depth(k, c) for k, c in enumerate(coefficients) if k >= 1 and c != 0.0]
    return max(depths, default=0)


@dataclass(frozen=True)
class PolynomialApproximation:
    """A polynomial standing in for a function on an interval.

    Attributes
    ----------
    unit_coefficients
        Coefficients of ``q(t) = p(reach * t)`` in the power basis, constant first:
        what is evaluated on ciphertexts, on inputs divided by :attr:`reach`.
    interval
        ``(low, high)``: where the approximation holds.
    max_error
        Largest ``|p(x) - f(x)|`` on the interval, measured on a grid of
        :data:`GRID_POINTS` points.
    name
        What it approximates, for messages.
    """

    unit_coefficients: tuple[float, ...]
    interval: tuple[float, float]
    max_error: float
    name: str

    @property
    def reach(self) -> float:
        """``max(|low|, |high|)``: inputs are divided by it before evaluation."""
        return max(abs(self.interval[0]), abs(self.interval[1]))

    @property
    def coefficients(self) -> tuple[float, ...]:
        """Coefficients of ``p(x)`` in the power basis, constant first."""
        return tuple(c / self.reach**k for k, c in enumerate(self.unit_coefficients))

    @property
    def degree(self) -> int:
        """The degree (highest nonzero coefficient)."""
        nonzero = [k for k, c in enumerate(self.unit_coefficients) if c != 0.0]
        return max(nonzero, default=0)

    @property
    def depth(self) -> int:
        """Multiplicative depth of evaluating it on a ciphertext (:func:`polyval_depth`)."""
        return polyval_depth(self.unit_coefficients)

    @property
    def max_magnitude(self) -> float:
        """Largest magnitude an evaluation in the unit variable computes: powers of
        ``|t| <= 1`` and terms ``|u_k t^k| <= |u_k|`` (partial products of a term are
        smaller); what the context's integer bits must hold."""
        return float(max([1.0, *(abs(c) for c in self.unit_coefficients)]))

    def __call__(self, x: ArrayLike) -> NDArray[np.float64]:
        """The polynomial on plaintext values."""
        values = np.asarray(x, dtype=np.float64) / self.reach
        return np.asarray(np.polynomial.polynomial.polyval(values, self.unit_coefficients))


def fit_polynomial(
    function: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    degree: int,
    interval: tuple[float, float],
    *,
    name: str = "function",
) -> PolynomialApproximation:
    """Least-squares polynomial of ``degree`` for ``function`` on ``interval``.

    Parameters
    ----------
    function
        Vectorized over a float64 array.
    degree
        In ``[1, 31]``; the depth grows as ``floor(log2(degree)) + 1``.
    interval
        ``(low, high)`` with ``low < high``, finite.
    name
        For messages.
    """
    if isinstance(degree, bool) or not isinstance(degree, int) or not 1 <= degree <= 31:
        raise PrivacyError(f"degree must be an int in [1, 31], got {degree!r}")
    low, high = (float(interval[0]), float(interval[1]))
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise PrivacyError(f"interval must be finite (low, high) with low < high, got {interval}")
    reach = max(abs(low), abs(high))
    grid = np.linspace(low, high, GRID_POINTS)
    target = np.asarray(function(grid), dtype=np.float64)
    if target.shape != grid.shape or not np.all(np.isfinite(target)):
        raise PrivacyError(f"{name} must map the grid on {interval} to finite values of its shape")
    unit = grid / reach
    coefficients = np.polynomial.polynomial.polyfit(unit, target, degree)
    # Round-off leaves the even terms of an odd function (the sigmoid's) at ~1e-18 instead
    # of 0; each would cost TenSEAL a multiplication, so terms below 1e-12 of the total on
    # the interval (|t| <= 1) are dropped: below float64 resolution there.
    magnitudes = np.abs(coefficients)
    coefficients[magnitudes < 1e-12 * magnitudes.sum()] = 0.0
    error = np.max(np.abs(np.polynomial.polynomial.polyval(unit, coefficients) - target))
    return PolynomialApproximation(
        unit_coefficients=tuple(float(c) for c in coefficients),
        interval=(low, high),
        max_error=float(error),
        name=name,
    )


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))


def sigmoid_approximation(
    degree: int = 3, interval: tuple[float, float] = (-8.0, 8.0)
) -> PolynomialApproximation:
    """The logistic sigmoid as a least-squares polynomial (Kim et al. 2018).

    Degree 3 on [-8, 8] (the default) errs by at most 0.114 there; degree 5 and 7
    do better at one more level of depth (see ``max_error``).
    """
    return fit_polynomial(_sigmoid, degree, interval, name="sigmoid")
