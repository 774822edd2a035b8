"""Exact samplers for the discrete Laplace and discrete Gaussian distributions.

The algorithms are Algorithms 1–3 of Canonne, Kamath & Steinke, "The Discrete
Gaussian for Differential Privacy", NeurIPS 2020 (arXiv:2004.00010), written
here as "CKS Alg. n". They are *exact*: the sampling path uses only integer
and rational arithmetic (Python ``int``, :class:`fractions.Fraction`, and
int64 numpy arithmetic whose operands are bounded below ``2**62``) and exact
uniform integers from a :class:`~privet.dp.randomness.RandomSource`. No
floating-point value is ever computed from the noise, so the attack of
Mironov ("On Significance of the Least Significant Bits for Differential
Privacy", CCS 2012) on textbook floating-point Laplace does not apply.

Parameters may be given as ``int``, ``float`` or :class:`~fractions.Fraction`.
A float is converted with ``Fraction(x)``, i.e. to the exact binary value it
holds: ``2.5`` becomes ``5/2``, but ``0.1`` becomes
``3602879701896397/36028797018963968``, not ``1/10``. Nothing is rounded.

Two implementations sit behind each array sampler:

* a scalar reference in pure Python ints (``_discrete_laplace_scalar``,
  ``_discrete_gaussian_scalar``), one sample per call, that transcribes the
  paper line by line; and
* a vectorized numpy version of the same algorithms (rejection loops over the
  still-undecided elements), taken when the parameter's numerator and
  denominator are small enough for int64 (see :func:`_laplace_fits_int64` and
  :func:`_gaussian_fits_int64`). Otherwise the Laplace runs the scalar path;
  the Gaussian keeps its int64 Laplace proposals and runs only its acceptance
  test in Python ints.

The reference pmfs :func:`discrete_laplace_pmf` and :func:`discrete_gaussian_pmf`
are floating point; they are for tests and for users, never for sampling.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import logsumexp

from privet.dp.randomness import RandomSource
from privet.errors import PrivacyError

__all__ = [
    "ExactReal",
    "bernoulli_exp",
    "discrete_gaussian",
    "discrete_gaussian_pmf",
    "discrete_laplace",
    "discrete_laplace_pmf",
    "round_sigma_up",
]

ExactReal = int | float | Fraction
"""A parameter of the exact samplers; floats are taken at their exact binary value."""

_INT64_MAX = 2**63 - 1

#: The largest ``high`` that ``RandomSource.integers`` accepts, and the bound
#: every int64 intermediate of the vectorized path is kept under.
_MAX_HIGH = 2**62

#: Largest scale / sigma accepted. Samples are returned as int64; at this
#: bound a sample reaches 2**63 with probability below exp(-2**12).
MAX_PARAMETER = 2**50

#: Fast-path bounds on the Laplace scale t/s (CKS Alg. 2): t <= 2**56 keeps
#: U < t, t * K and U + t * V inside int64 until Alg. 1's counter K or the
#: geometric V pass 64 (probability < e**-64); s is only a divisor.
_LAPLACE_MAX_NUMERATOR = 2**56
_LAPLACE_MAX_DENOMINATOR = 2**62

#: Fast-path bound for the Gaussian (CKS Alg. 3) with sigma**2 = p/q and
#: t = floor(sigma) + 1: q * t**2 <= 2**27. See :func:`_gaussian_fits_int64`.
_GAUSSIAN_MAX_QT2 = 2**27

#: round_sigma_up never moves sigma by more than this fraction of itself.
_MAX_SIGMA_ROUNDING = Fraction(1, 2000)

#: |d| <= this bound implies d * d <= 2**62. Module-level so tests can shrink
#: it and exercise the exact big-integer fallback of the vectorized Gaussian.
_INT64_SQRT_BOUND = 2**31

#: Above this sigma the pmf's normalizer comes from Poisson summation, not a
#: direct sum over ~80 sigma points.
_DIRECT_SUM_MAX_SIGMA = 25_000.0


# ----------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------


def _exact_real(name: str, value: Any) -> Fraction:
    """``value`` as an exact Fraction; floats keep their exact binary value."""
    if isinstance(value, bool) or not isinstance(
        value, int | float | Fraction | np.integer | np.floating
    ):
        raise PrivacyError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            raise PrivacyError(f"{name} must be finite, got {value!r}")
        # as_integer_ratio is exact for every float type, np.longdouble included.
        numerator, denominator = value.as_integer_ratio()
        return Fraction(int(numerator), int(denominator))
    if isinstance(value, np.integer):
        # Fraction(np.int64) would keep numpy ints inside and could overflow.
        return Fraction(int(value))
    return Fraction(value)


def _exact_parameter(name: str, value: Any) -> Fraction:
    """Validate a scale / sigma: finite, > 0 and <= 2**50, as an exact Fraction."""
    exact = _exact_real(name, value)
    if exact <= 0:
        raise PrivacyError(f"{name} must be > 0, got {value!r}")
    if exact > MAX_PARAMETER:
        raise PrivacyError(f"{name} must be <= 2**50, got {value!r}")
    return exact


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 0:
        raise PrivacyError(f"size must be an integer >= 0, got {size!r}")
    return int(size)


def _to_int64(values: list[int]) -> NDArray[np.int64]:
    # Reached only with probability ~exp(-2**12) under the parameter cap, but an
    # out-of-range sample must never be clipped or wrapped silently.
    for value in values:
        if not -_INT64_MAX <= value <= _INT64_MAX:
            raise OverflowError(f"a sample ({value}) does not fit in int64")
    return np.array(values, dtype=np.int64)


# ----------------------------------------------------------------------------
# Scalar reference path: Python ints only, one draw per call
# ----------------------------------------------------------------------------


def _bernoulli_exp_le1_int(num: int, den: int, source: RandomSource) -> bool:
    """Bernoulli(exp(-num/den)) for 0 <= num <= den (CKS Alg. 1, gamma in [0, 1])."""
    k = 1
    # K is the index of the first failed Bernoulli(gamma / K); P(K odd) = exp(-gamma).
    while source.bernoulli_fraction(num, den * k):
        k += 1
    return k % 2 == 1


def _bernoulli_exp_int(num: int, den: int, source: RandomSource) -> bool:
    """Bernoulli(exp(-num/den)) for any num >= 0, den >= 1 (CKS Alg. 1, gamma > 1)."""
    whole, frac = divmod(num, den)
    # exp(-gamma) = exp(-1)**floor(gamma) * exp(-frac(gamma)); stop at the first 0.
    for _ in range(whole):
        if not _bernoulli_exp_le1_int(1, 1, source):
            return False
    return _bernoulli_exp_le1_int(frac, den, source)


def _discrete_laplace_scalar(scale: Fraction, source: RandomSource) -> int:
    """One draw from the discrete Laplace with ``scale = t/s`` (CKS Alg. 2), in Python ints."""
    t, s = scale.numerator, scale.denominator
    while True:
        u = source.randbelow(t)
        if not _bernoulli_exp_le1_int(u, t, source):
            continue
        v = 0
        while _bernoulli_exp_le1_int(1, 1, source):
            v += 1
        # X = U + tV is geometric with parameter 1 - exp(-1/t); Y with 1 - exp(-s/t).
        y = (u + t * v) // s
        negative = source.randbelow(2) == 1
        if negative and y == 0:
            # Otherwise 0 would be counted twice (as +0 and -0).
            continue
        return -y if negative else y


def _discrete_gaussian_scalar(sigma_squared: Fraction, source: RandomSource) -> int:
    """One draw from the discrete Gaussian with ``sigma**2 = sigma_squared`` (CKS Alg. 3).

    The reference the vectorized path is tested against; :func:`discrete_gaussian`
    itself always uses :func:`_discrete_gaussian_vec`, which is faster for every sigma.
    """
    p, q = sigma_squared.numerator, sigma_squared.denominator
    # t = floor(sigma) + 1, computed without a square root of a non-square.
    t = math.isqrt(p // q) + 1
    # gamma = (|Y| - sigma²/t)² / (2 sigma²) = (|Y| q t - p)² / (2 p q t²).
    den = 2 * p * q * t * t
    laplace_scale = Fraction(t)
    while True:
        y = _discrete_laplace_scalar(laplace_scale, source)
        d = abs(y) * q * t - p
        if _bernoulli_exp_int(d * d, den, source):
            return y


# ----------------------------------------------------------------------------
# Vectorized path: the same algorithms over int64 arrays
# ----------------------------------------------------------------------------


def _laplace_fits_int64(scale: Fraction) -> bool:
    """Whether CKS Alg. 2 with ``scale = t/s`` runs on the int64 fast path.

    The condition is ``t <= 2**56`` and ``s <= 2**62``. Then ``U < t``, the
    Bernoulli draws of Alg. 1 use ``integers(t * K)`` while ``t * K <= 2**62``
    (and two draws, ``integers(t)`` and ``integers(K)``, beyond), and
    ``X = U + t V < t (V + 1) <= 2**62`` whenever ``V <= 63``. A larger V
    (probability ``e**-64`` per draw) is finished in Python ints, so the fast
    path is exact unconditionally; the bound only keeps it fast. Every float
    scale in ``[2**-9, 2**50]`` qualifies: its numerator is below ``2**53``.
    """
    return (
        scale.numerator <= _LAPLACE_MAX_NUMERATOR and scale.denominator <= _LAPLACE_MAX_DENOMINATOR
    )


def _gaussian_fits_int64(sigma_squared: Fraction) -> bool:
    """Whether CKS Alg. 3 with ``sigma**2 = p/q`` runs on the int64 fast path.

    With ``t = floor(sigma) + 1`` the condition is ``q * t**2 <= 2**27``.
    Since ``p/q < t**2`` it implies ``p <= 2**27``, the acceptance
    denominator ``2 p q t**2 <= 2**55``, and ``t <= 2**27`` (so the inner
    Laplace is on its fast path). The acceptance numerator
    ``(|Y| q t - p)**2`` is then at most ``2**62`` for every
    ``|Y| <= 2**31 / (q t)``, which is at least ``16 t``; rarer, larger
    ``|Y|`` (probability about ``e**-16``) get their acceptance test in Python
    ints. Float sigmas rarely qualify: ``Fraction(0.6)**2`` has a ``2**106``
    denominator; pass ``Fraction(3, 5)`` for the fully vectorized path.
    """
    p, q = sigma_squared.numerator, sigma_squared.denominator
    t = math.isqrt(p // q) + 1
    return q * t * t <= _GAUSSIAN_MAX_QT2


def _bernoulli_exp_le1_vec(
    num: NDArray[np.int64], den: int, source: RandomSource
) -> NDArray[np.bool_]:
    """Elementwise Bernoulli(exp(-num/den)), ``0 <= num <= den <= 2**62`` (CKS Alg. 1)."""
    result = np.empty(num.shape[0], dtype=np.bool_)
    undecided = np.arange(num.shape[0])
    live_num = num
    k = 1
    # Every undecided element is at the same step K = k, so one draw serves all.
    while undecided.size:
        n = undecided.size
        if den * k <= _MAX_HIGH:
            success = source.integers(den * k, n) < live_num
        else:
            # Bernoulli(num / (den k)) = Bernoulli(num / den) AND Bernoulli(1 / k),
            # which keeps every bound within int64 however large k grows.
            success = (source.integers(den, n) < live_num) & (source.integers(k, n) == 0)
        result[undecided[~success]] = k % 2 == 1
        undecided = undecided[success]
        live_num = live_num[success]
        k += 1
    return result


def _bernoulli_exp_minus1_vec(n: int, source: RandomSource) -> NDArray[np.bool_]:
    """``n`` independent Bernoulli(exp(-1)) (CKS Alg. 1 with gamma = 1)."""
    result = np.empty(n, dtype=np.bool_)
    undecided = np.arange(n)
    # With gamma = 1 the first Bernoulli(gamma / 1) always succeeds: start at K = 2.
    k = 2
    while undecided.size:
        success = source.integers(k, undecided.size) == 0
        result[undecided[~success]] = k % 2 == 1
        undecided = undecided[success]
        k += 1
    return result


def _bernoulli_exp_vec(num: NDArray[np.int64], den: int, source: RandomSource) -> NDArray[np.bool_]:
    """Elementwise Bernoulli(exp(-num/den)), ``0 <= num <= 2**62``, ``1 <= den <= 2**62``."""
    whole = num // den
    frac = num - whole * den
    result = np.ones(num.shape[0], dtype=np.bool_)
    # exp(-gamma) = exp(-1)**floor(gamma) * exp(-frac(gamma)). The exp(-1) factors
    # are drawn round by round; an element leaves at its first failure, so the
    # number of rounds is logarithmic even when floor(gamma) is huge.
    pending = np.flatnonzero(whole > 0)
    drawn = 0
    while pending.size:
        alive = _bernoulli_exp_minus1_vec(pending.size, source)
        result[pending[~alive]] = False
        pending = pending[alive]
        drawn += 1
        pending = pending[whole[pending] > drawn]
    survivors = np.flatnonzero(result)
    result[survivors] = _bernoulli_exp_le1_vec(frac[survivors], den, source)
    return result


def _geometric_exp1_vec(n: int, source: RandomSource) -> NDArray[np.int64]:
    """``n`` counts of Bernoulli(exp(-1)) successes before the first failure (CKS Alg. 2's V)."""
    v = np.zeros(n, dtype=np.int64)
    alive = np.arange(n)
    while alive.size:
        alive = alive[_bernoulli_exp_minus1_vec(alive.size, source)]
        v[alive] += 1
    return v


def _discrete_laplace_vec(t: int, s: int, size: int, source: RandomSource) -> NDArray[np.int64]:
    """``size`` draws from the discrete Laplace with scale ``t/s`` (CKS Alg. 2), in int64.

    Requires ``1 <= t, s <= 2**62``; exact for all such values, fast under
    :func:`_laplace_fits_int64`.
    """
    out = np.empty(size, dtype=np.int64)
    filled = 0
    # For V <= v_max, X = U + tV < t (V + 1) <= 2**62.
    v_max = (_MAX_HIGH - t) // t
    while filled < size:
        n = size - filled
        u = source.integers(t, n)
        u = u[_bernoulli_exp_le1_vec(u, t, source)]
        v = _geometric_exp1_vec(u.size, source)
        big = v > v_max
        y = (u + t * np.where(big, 0, v)) // s
        if big.any():
            y[big] = _to_int64(
                [(int(ui) + t * int(vi)) // s for ui, vi in zip(u[big], v[big], strict=True)]
            )
        negative = source.integers(2, y.size) == 1
        # Reject -0 so that 0 is not counted twice.
        keep = ~(negative & (y == 0))
        y = np.where(negative, -y, y)[keep]
        # Candidates are i.i.d., so keeping the first accepted ones is exact.
        take = min(n, y.size)
        out[filled : filled + take] = y[:take]
        filled += take
    return out


def _discrete_gaussian_vec(
    sigma_squared: Fraction, size: int, source: RandomSource
) -> NDArray[np.int64]:
    """``size`` draws from the discrete Gaussian (CKS Alg. 3), with int64 proposals.

    The discrete Laplace proposals (scale ``t = floor(sigma) + 1 <= 2**50 + 1``)
    always come from the int64 path. The acceptance test runs in int64 under
    :func:`_gaussian_fits_int64` (except for the rare ``|Y|`` beyond the
    int64 bound), and otherwise element by element in Python ints, which is
    still about 3x faster than :func:`_discrete_gaussian_scalar` because the
    proposals are vectorized. Exact in every case.
    """
    p, q = sigma_squared.numerator, sigma_squared.denominator
    t = math.isqrt(p // q) + 1
    den = 2 * p * q * t * t
    qt = q * t
    int64_ok = _gaussian_fits_int64(sigma_squared)
    # |Y| <= abs_max gives 0 <= |Y| q t <= bound and, as p <= bound, (|Y| q t - p)**2 <= bound**2.
    abs_max = _INT64_SQRT_BOUND // qt if int64_ok else -1
    out = np.empty(size, dtype=np.int64)
    filled = 0
    while filled < size:
        n = size - filled
        y = _discrete_laplace_vec(t, 1, n, source)
        magnitude = np.abs(y)
        fits = magnitude <= abs_max
        accept = np.empty(n, dtype=np.bool_)
        if int64_ok:
            d = magnitude[fits] * qt - p
            accept[fits] = _bernoulli_exp_vec(d * d, den, source)
        too_big = np.flatnonzero(~fits)
        for i, m in zip(too_big.tolist(), magnitude[too_big].tolist(), strict=True):
            d_big = m * qt - p
            accept[i] = _bernoulli_exp_int(d_big * d_big, den, source)
        y = y[accept]
        take = min(n, y.size)
        out[filled : filled + take] = y[:take]
        filled += take
    return out


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------


def bernoulli_exp(gamma: ExactReal, source: RandomSource) -> bool:
    """Draw exactly from Bernoulli(exp(-gamma)).

    CKS Alg. 1 (Canonne, Kamath & Steinke, NeurIPS 2020, arXiv:2004.00010):
    for ``gamma in [0, 1]``, count the Bernoulli(gamma / K) trials,
    K = 1, 2, ..., up to the first failure; the index K of that failure is odd
    with probability exactly ``exp(-gamma)``. For ``gamma > 1`` the result is
    the product of ``floor(gamma)`` Bernoulli(exp(-1)) draws and one
    Bernoulli(exp(-(gamma - floor(gamma)))), stopping at the first 0.

    Parameters
    ----------
    gamma
        The rate, >= 0, as an int, a Fraction or a float; a float is taken at
        its exact binary value ``Fraction(gamma)``.
    source
        Where the randomness comes from; only exact uniform integers are drawn.

    Returns
    -------
    bool
        True with probability ``exp(-gamma)``.

    Raises
    ------
    PrivacyError
        If ``gamma`` is negative, not finite, or not a real number.
    """
    exact = _exact_real("gamma", gamma)
    if exact < 0:
        raise PrivacyError(f"gamma must be >= 0, got {gamma!r}")
    return _bernoulli_exp_int(exact.numerator, exact.denominator, source)


def discrete_laplace(scale: ExactReal, size: int, source: RandomSource) -> NDArray[np.int64]:
    """Draw exactly from the discrete Laplace (two-sided geometric) distribution.

    The pmf is ``P(x) = tanh(1 / (2 scale)) * exp(-|x| / scale)`` on the
    integers. The sampler is CKS Alg. 2 (Canonne, Kamath & Steinke, NeurIPS
    2020, arXiv:2004.00010) with ``scale = t/s`` in lowest terms; it uses only
    integer arithmetic and exact uniform integers, so none of the
    floating-point artifacts of textbook Laplace sampling (Mironov, CCS 2012)
    can occur.

    Parameters
    ----------
    scale
        The scale, in ``(0, 2**50]``, as an int, a Fraction or a float; a
        float is taken at its exact binary value ``Fraction(scale)``, never
        rounded. Adding this noise to an integer query of sensitivity Δ gives
        ``(Δ / scale)``-DP.
    size
        How many samples, >= 0.
    source
        Where the randomness comes from.

    Returns
    -------
    numpy.ndarray
        ``size`` int64 samples.

    Raises
    ------
    PrivacyError
        If ``scale`` is not a finite real in ``(0, 2**50]`` or ``size`` is not
        an integer >= 0.

    Notes
    -----
    The vectorized int64 path runs when ``scale = t/s`` has ``t <= 2**56``
    and ``s <= 2**62`` (every float scale from ``2**-9`` up qualifies);
    otherwise a scalar Python-int implementation of the same algorithm does.
    Both are exact.
    """
    exact = _exact_parameter("scale", scale)
    n = _check_size(size)
    if _laplace_fits_int64(exact):
        return _discrete_laplace_vec(exact.numerator, exact.denominator, n, source)
    return _to_int64([_discrete_laplace_scalar(exact, source) for _ in range(n)])


def discrete_gaussian(sigma: ExactReal, size: int, source: RandomSource) -> NDArray[np.int64]:
    """Draw exactly from the discrete Gaussian distribution.

    The pmf is ``P(x) ∝ exp(-x**2 / (2 sigma**2))`` on the integers. The
    sampler is CKS Alg. 3 (Canonne, Kamath & Steinke, NeurIPS 2020,
    arXiv:2004.00010): draw ``Y`` from the discrete Laplace with scale
    ``t = floor(sigma) + 1`` (Alg. 2) and keep it with probability
    ``exp(-(|Y| - sigma**2 / t)**2 / (2 sigma**2))`` (Alg. 1), with
    ``sigma**2`` held as an exact Fraction. Only integer arithmetic and exact
    uniform integers are used.

    Parameters
    ----------
    sigma
        The scale parameter, in ``(0, 2**50]``, as an int, a Fraction or a
        float; a float is taken at its exact binary value ``Fraction(sigma)``
        and squared exactly. The variance of the output is slightly below
        ``sigma**2``.
    size
        How many samples, >= 0.
    source
        Where the randomness comes from.

    Returns
    -------
    numpy.ndarray
        ``size`` int64 samples.

    Raises
    ------
    PrivacyError
        If ``sigma`` is not a finite real in ``(0, 2**50]`` or ``size`` is
        not an integer >= 0.

    Notes
    -----
    The discrete Laplace proposals are always drawn on the vectorized int64
    path. With ``sigma**2 = p/q`` and ``t = floor(sigma) + 1``, the
    acceptance test is int64 too when ``q * t**2 <= 2**27``: integer sigmas
    up to about 11000, and Fractions with small denominators such as
    ``Fraction(10, 3)`` (millions of samples/s). A float such as ``0.6`` or
    ``1 / 0.3`` squares to a ``2**100``-ish denominator, so its acceptance
    test runs in Python ints (about 10**5 samples/s); nothing is approximated.
    """
    exact = _exact_parameter("sigma", sigma)
    n = _check_size(size)
    # Proposals are always int64 (t <= 2**50 + 1); only the acceptance test may need
    # Python ints, so the scalar reference is never the faster choice here.
    return _discrete_gaussian_vec(exact * exact, n, source)


def round_sigma_up(sigma: ExactReal) -> Fraction:
    """The smallest dyadic rational ``>= sigma`` on which :func:`discrete_gaussian` is all int64.

    A float sigma squares to a huge denominator, which sends the acceptance
    test of CKS Alg. 3 to Python ints. Rounding sigma *up* to a multiple of
    ``2**-j``, with ``j`` as large as :func:`_gaussian_fits_int64` allows,
    keeps every intermediate in int64. More noise never costs privacy. The
    change is at most ``2**-j`` (``j >= 11`` for sigma < 2); if that would move
    sigma by more than ``5e-4`` of itself (tiny or very large sigmas), sigma is
    returned unchanged and sampled on the slower exact path instead.
    """
    exact = _exact_parameter("sigma", sigma)
    if _gaussian_fits_int64(exact * exact):
        return exact
    # t after rounding is at most floor(sigma) + 2; with t**2 < 2**b, a grid of
    # 2**-j where 2j <= 27 - b gives q t**2 = 2**(2j) t**2 < 2**27.
    t_bound = math.floor(exact) + 2
    j = (27 - (t_bound * t_bound).bit_length()) // 2
    if j < 0:
        return exact
    rounded = Fraction(math.ceil(exact * 2**j), 2**j)
    return rounded if rounded - exact <= _MAX_SIGMA_ROUNDING * exact else exact


def discrete_laplace_pmf(k: ArrayLike, scale: ExactReal) -> NDArray[np.float64]:
    """The discrete Laplace pmf ``tanh(1 / (2 scale)) * exp(-|k| / scale)``.

    Floating point, for reference and tests; the samplers never use it.

    Parameters
    ----------
    k
        Integer points.
    scale
        The scale, > 0.

    Returns
    -------
    numpy.ndarray
        float64 probabilities, the shape of ``k``.
    """
    b = float(_exact_parameter("scale", scale))
    points = np.abs(np.asarray(k, dtype=np.float64))
    pmf: NDArray[np.float64] = np.tanh(0.5 / b) * np.exp(-points / b)
    return pmf


def _gaussian_log_normalizer(sigma: float) -> float:
    """``log sum_k exp(-k**2 / (2 sigma**2))`` over all integers k."""
    if sigma <= _DIRECT_SUM_MAX_SIGMA:
        # Terms beyond |k| = 40 sigma are below exp(-800) relative to the centre.
        half_width = math.ceil(40.0 * sigma) + 40
        support = np.arange(-half_width, half_width + 1, dtype=np.float64)
        return float(logsumexp(-(support**2) / (2.0 * sigma * sigma)))
    # Large sigma: Poisson summation, sum = sigma sqrt(2 pi) (1 + 2 sum_j exp(-2 pi² sigma² j²)),
    # where the j >= 1 terms are below exp(-2 pi² 25000²): zero in double precision.
    return math.log(sigma) + 0.5 * math.log(2.0 * math.pi)


def discrete_gaussian_pmf(k: ArrayLike, sigma: ExactReal) -> NDArray[np.float64]:
    """The discrete Gaussian pmf ``exp(-k**2 / (2 sigma**2)) / Z``.

    The normalizing constant ``Z`` is the series summed in log-space over
    ``|k| <= 40 sigma + 40`` (beyond it the terms are below ``exp(-800)``
    relative to the centre); for ``sigma > 25000`` it is ``sigma sqrt(2 pi)``
    by Poisson summation, exact in double precision. Floating point, for
    reference and tests; the samplers never use it.

    Parameters
    ----------
    k
        Integer points.
    sigma
        The scale parameter, > 0.

    Returns
    -------
    numpy.ndarray
        float64 probabilities, the shape of ``k``.
    """
    s = float(_exact_parameter("sigma", sigma))
    points = np.asarray(k, dtype=np.float64)
    pmf: NDArray[np.float64] = np.exp(-(points**2) / (2.0 * s * s) - _gaussian_log_normalizer(s))
    return pmf
