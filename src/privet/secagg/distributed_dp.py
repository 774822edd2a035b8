"""Distributed discrete Gaussian noise for secure aggregation (client side and accounting).

Each client clips its update to L2 norm ``c``, scales it by ``s`` levels per
unit, rounds it to the integer grid by *conditional* stochastic rounding, adds
its own share of discrete Gaussian noise and wraps the result into
``Z_{2^k}``. Secure aggregation reveals only the modular sum, which carries
the noise of every honest client, so the server learns a differentially
private sum without being trusted. The mechanism and its analysis are those of
Kairouz, Liu & Steinke, "The Distributed Discrete Gaussian Mechanism for
Federated Learning with Secure Aggregation", ICML 2021 (arXiv:2102.06387),
written "KLS" below.

Privacy (KLS Thm 1, from their Prop. 14). Let ``h`` clients each add
``N_Z(0, sigma^2)^d`` noise and let one client's rounded vector have L2 norm
at most ``Delta``. Then the sum is ``rho``-zCDP with ``rho = eps^2 / 2`` and::

    eps = min( sqrt(Delta^2 / (h sigma^2) + 2 tau d),  Delta / (sqrt(h) sigma) + tau sqrt(d) )
    tau = 10 * sum_{k=1}^{h-1} exp(-2 pi^2 sigma^2 k / (k + 1))

The second term is Prop. 14's RDP bound ``alpha/2 (Delta/(sqrt(h) sigma) +
tau sqrt(d))^2`` read as zCDP. The first comes from Prop. 14's other bound
``alpha Delta^2 / (2 h sigma^2) + tau d``: it is at most ``alpha * rho`` for
*every* order ``alpha >= 1`` exactly when ``rho >= Delta^2 / (2 h sigma^2) +
tau d``, hence ``2 tau d`` (a smaller constant such as ``tau d / 2`` would
hold only for ``alpha >= 4``). Equivalently, ``rho`` is the RDP at order 1 of
the reference implementation, google-research/federated
``distributed_discrete_gaussian/accounting_utils.py``
(``_compute_rdp_discrete_gaussian_simplified``, ``get_ddgauss_epsilon``),
and ``alpha * rho`` dominates that RDP curve at every order (tested). With
``h = 1`` (or ``tau -> 0``) it is the discrete Gaussian's ``Delta^2 / (2 h
sigma^2)`` (Canonne, Kamath & Steinke, NeurIPS 2020, Thm 14).

Sensitivity after rounding (KLS Thm 1 / conditional randomized rounding, the
reference's ``compute_l2_sensitivy_squared``), in integer units::

    Delta^2 = min( c^2 s^2 + d/4 + sqrt(2 ln(1/beta)) (c s + sqrt(d)/2),  (c s + sqrt(d))^2 )

Unconditional stochastic rounding moves each coordinate by less than one, so
the second bound always holds; the first holds for a rounding that is redone
until it does, which succeeds on each try with probability at least ``1 -
beta``. ``beta = 0`` keeps only the second bound. The bound is *enforced* on
the integer vector (its exact squared norm must not exceed ``floor(Delta^2)``),
so the guarantee never rests on floating-point luck.

Trust assumption. Only the noise of ``min_honest_clients = h`` clients is
counted: up to ``n - h`` participants may omit theirs (or collude with the
server). The FL layer must make a completed round have at least ``h``
contributors (SecAgg threshold ``t >= h``). KLS Thm 1 compares two sums
whose inputs differ by at most ``Delta`` in L2 norm, with the same noise
shares in both: the *zero-out* relation (one client's update replaced by
zero while it still adds its noise), which stands in for add/remove-one-client
(user-level) DP exactly as in central DP-FedAvg, and is what the event is
charged as (``ADD_OR_REMOVE_ONE``). A client that truly leaves also takes its
noise share with it, a change of variance this bound does not cover: count
only the *other* clients' noise in ``h`` if that matters.
:meth:`DistributedDiscreteGaussian.dp_event` doubles ``Delta`` for
replace-one.

Overflow. The modulus is chosen so that the sum never wraps: every
coordinate of a rounded vector is at most ``L = ceil(c s)`` in magnitude, and
the sum of ``m <= n`` noise shares is sub-Gaussian with variance proxy ``n
sigma^2`` (the discrete Gaussian is sub-Gaussian with proxy ``sigma^2``, CKS
2020 Cor. 9), so every coordinate of the noise sum stays within ``T =
sigma sqrt(2 n ln(2 d / 2^-40))`` except with probability ``2^-40`` (union
bound over ``d`` coordinates). Parameters are refused unless ``n L + T <
2^(k-1)``. A wrap would only cost accuracy, never privacy: reducing modulo
``2^k`` is post-processing of the noisy sum.

No random rotation. KLS rotate updates (randomized Hadamard) to flatten them
so that a *small* modulus with modular clipping rarely wraps. Here the
modulus covers the worst case, one coordinate carrying the whole norm, so
nothing is clipped modulo ``2^k`` and the rotation buys nothing for privacy
(it preserves L2 norms, so the sensitivity is unchanged); the cost is a few
more bits per coordinate.

The exact sampler :func:`privet.dp.exact.discrete_gaussian` draws the noise;
``sigma`` is rounded *up* (:func:`privet.dp.exact.round_sigma_up`) to a dyadic
rational so that ``sigma^2`` has a small denominator and the sampler stays on
its int64 fast path. Rounding up only adds noise; the accounting uses the
rounded value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import dp_accounting
import numpy as np
from numpy.typing import NDArray

from privet.dp.accounting import NeighboringRelation
from privet.dp.events import DpEvent
from privet.dp.exact import MAX_PARAMETER, discrete_gaussian, round_sigma_up
from privet.dp.randomness import RandomSource, RngLike, resolve_rng
from privet.errors import PrivacyError
from privet.secagg.quantize import Quantizer

__all__ = [
    "DistributedDiscreteGaussian",
    "ddg_tau",
    "ddg_zcdp_rho",
    "rounded_l2_sensitivity_squared",
]

_MAX_MODULUS_BITS = 64

#: Probability that the noise sum of one round exceeds the overflow headroom.
OVERFLOW_PROBABILITY_LOG2 = -40

#: Conditional rounding gives up (raising PrivacyError) after enough tries that
#: an honest input fails with probability at most 2**-40 (each try succeeds
#: with probability >= 1 - beta, KLS Thm 1), but never more than this many.
_MAX_ROUNDING_ATTEMPTS = 100_000

#: With beta = 0 the bound holds for every rounding; retries only absorb the
#: float rounding of the bound itself.
_DETERMINISTIC_BOUND_ATTEMPTS = 4

#: Above this sigma the discrete Gaussian's variance equals sigma**2 in double
#: precision: the deficit is about 4 pi^2 sigma^2 exp(-2 pi^2 sigma^2) relative.
_VARIANCE_EXACT_SIGMA = 2.0


# ----------------------------------------------------------------------------
# Pure accounting functions (KLS 2021)
# ----------------------------------------------------------------------------


def rounded_l2_sensitivity_squared(
    l2_clip: float, scale: float, dimension: int, rounding_beta: float
) -> float:
    """Squared L2 norm bound of one client's rounded vector, in integer units.

    ``min(c^2 s^2 + d/4 + sqrt(2 ln(1/beta)) (c s + sqrt(d)/2), (c s + sqrt(d))^2)``
    (KLS Thm 1; google-research/federated ``compute_l2_sensitivy_squared``
    with ``gamma = 1/s``, multiplied by ``s^2``). ``rounding_beta = 0`` gives
    ``(c s + sqrt(d))^2``, which holds for every stochastic rounding.
    """
    top = _positive_finite("l2_clip", l2_clip) * _positive_finite("scale", scale)
    d = _int_at_least("dimension", dimension, 1)
    beta = _beta(rounding_beta)
    always = (top + math.sqrt(d)) ** 2
    if beta == 0.0:
        return always
    conditional = (
        top * top + 0.25 * d + math.sqrt(2.0 * math.log(1.0 / beta)) * (top + 0.5 * math.sqrt(d))
    )
    return min(always, conditional)


def ddg_tau(sigma: float, honest_clients: int) -> float:
    """``tau = 10 sum_{k=1}^{h-1} exp(-2 pi^2 sigma^2 k / (k + 1))`` (KLS Thm 1).

    How far the sum of ``h`` discrete Gaussians of parameter ``sigma`` is from
    one discrete Gaussian of parameter ``sqrt(h) sigma``; 0 for ``h = 1``.
    """
    s = _positive_finite("sigma", sigma)
    h = _int_at_least("honest_clients", honest_clients, 1)
    k = np.arange(1, h, dtype=np.float64)
    return 10.0 * float(np.sum(np.exp(-2.0 * math.pi**2 * s * s * k / (k + 1.0))))


def ddg_zcdp_rho(
    sensitivity_squared: float, sigma: float, honest_clients: int, dimension: int
) -> float:
    """``rho`` such that the sum of ``h`` clients' noise is ``rho``-zCDP (KLS Thm 1).

    ``rho = eps^2 / 2`` with ``eps = min(sqrt(Delta^2/(h sigma^2) + 2 tau d),
    Delta/(sqrt(h) sigma) + tau sqrt(d))``; see the module docstring for why
    the constant is ``2 tau d``.

    Parameters
    ----------
    sensitivity_squared
        ``Delta^2``, the squared L2 distance between neighbouring sums, in
        integer units (>= 0).
    sigma
        Each honest client's discrete Gaussian parameter, in integer units.
    honest_clients
        ``h``: how many clients' noise is counted.
    dimension
        ``d``.
    """
    delta_sq = _finite_at_least("sensitivity_squared", sensitivity_squared, 0.0)
    s = _positive_finite("sigma", sigma)
    h = _int_at_least("honest_clients", honest_clients, 1)
    d = _int_at_least("dimension", dimension, 1)
    tau = ddg_tau(s, h)
    scale_sq = delta_sq / (h * s * s)
    eps_sq = min(scale_sq + 2.0 * tau * d, (math.sqrt(scale_sq) + tau * math.sqrt(d)) ** 2)
    return 0.5 * eps_sq


# ----------------------------------------------------------------------------
# The mechanism
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DistributedDiscreteGaussian:
    """The distributed discrete Gaussian mechanism of KLS 2021, for SecAgg sums.

    Parameters
    ----------
    l2_clip
        ``c > 0``: each update is clipped to this L2 norm (float domain).
    scale
        ``s > 0``: integer levels per unit (the paper's ``gamma`` is ``1/s``).
    noise_multiplier
        ``z > 0``: the noise of ``h`` honest clients together has standard
        deviation about ``z c`` per coordinate in the float domain.
    dimension
        ``d >= 1``: the length of every update.
    num_clients
        ``n >= 1``: the most encodings that will be summed.
    min_honest_clients
        ``h`` in ``1..n``: the accounting assumption that the noise of at
        least ``h`` clients that follow the protocol is in every released sum.
        Each client adds ``sigma = z c s / sqrt(h)`` (integer units).
    modulus_bits
        ``k`` in ``2..64``: encodings live in ``Z_{2^k}`` (uint64).
    rounding_beta
        ``beta`` in ``[0, 1)`` for conditional rounding; KLS use
        ``exp(-0.5)`` (the default). 0 means the deterministic bound
        ``(c s + sqrt(d))^2``, with no retries.

    Raises
    ------
    PrivacyError
        If a parameter is out of range, if ``sigma`` is outside ``[1/2,
        2**50]``, or if ``n * ceil(c s) + T >= 2^(k-1)`` where ``T`` is the
        noise headroom (see the module docstring): the sum could wrap.
    """

    l2_clip: float
    scale: float
    noise_multiplier: float
    dimension: int
    num_clients: int
    min_honest_clients: int
    modulus_bits: int
    rounding_beta: float = math.exp(-0.5)
    _sigma: Fraction = field(init=False, repr=False, compare=False)
    _sensitivity_squared: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = _positive_finite("l2_clip", self.l2_clip)
        s = _positive_finite("scale", self.scale)
        z = _positive_finite("noise_multiplier", self.noise_multiplier)
        d = _int_at_least("dimension", self.dimension, 1)
        n = _int_at_least("num_clients", self.num_clients, 1)
        h = self.min_honest_clients
        if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= n:
            raise PrivacyError(
                f"min_honest_clients must be an integer in [1, num_clients={n}], got {h!r}"
            )
        k = self.modulus_bits
        if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= _MAX_MODULUS_BITS:
            raise PrivacyError(f"modulus_bits must be an integer in [2, 64], got {k!r}")
        beta = _beta(self.rounding_beta)
        if not math.isfinite(c * s):
            raise PrivacyError(f"l2_clip * scale must be finite, got {c * s}")
        # The signal alone must fit first: the bounds below square c * s in floats.
        if n * math.ceil(c * s) >= 1 << (k - 1):
            raise PrivacyError(
                f"num_clients * ceil(l2_clip * scale) must be < 2**(modulus_bits - 1) = "
                f"{1 << (k - 1)} so that the sum of {n} clients cannot wrap modulo 2**{k}, "
                f"got {n} * {math.ceil(c * s)}"
            )
        # sigma^2 = z^2 c^2 s^2 / h exactly; the sampler gets a dyadic sigma at or above it.
        sigma_squared = (_exact(z) * _exact(c) * _exact(s)) ** 2 / h
        if not Fraction(1, 4) <= sigma_squared <= MAX_PARAMETER**2:
            # Floats for the message: the exact value may be beyond the float range.
            shown = float(z) * float(c) * float(s) / math.sqrt(h)
            raise PrivacyError(
                "noise_multiplier * l2_clip * scale / sqrt(min_honest_clients) must be in "
                f"[0.5, 2**50], got {shown!r}"
            )
        object.__setattr__(self, "_sigma", round_sigma_up(_sqrt_at_least(sigma_squared)))
        object.__setattr__(
            self, "_sensitivity_squared", rounded_l2_sensitivity_squared(c, s, d, beta)
        )
        bound = n * self.max_level + self.noise_headroom
        if bound >= 1 << (k - 1):
            raise PrivacyError(
                f"num_clients * ceil(l2_clip * scale) + noise headroom must be < "
                f"2**(modulus_bits - 1) = {1 << (k - 1)} so that the sum of {n} clients "
                f"cannot wrap modulo 2**{k}, got {n} * {self.max_level} + "
                f"{self.noise_headroom} = {bound}"
            )

    # -- derived parameters ------------------------------------------------------------------

    @property
    def local_sigma(self) -> Fraction:
        """Each client's discrete Gaussian parameter (integer units), ``>= z c s / sqrt(h)``."""
        return self._sigma

    @property
    def max_level(self) -> int:
        """``ceil(c s)``: the largest magnitude of a rounded coordinate."""
        return math.ceil(float(self.l2_clip) * float(self.scale))

    @property
    def noise_headroom(self) -> int:
        """``T``: each coordinate of ``<= n`` clients' noise sum is within ``T`` w.p. ``1 - 2^-40``.

        ``T = ceil(sigma sqrt(2 n ln(2 d / 2^-40)))``, from the sub-Gaussian
        tail ``P(|S| > T) <= 2 exp(-T^2 / (2 n sigma^2))`` of the sum ``S``
        (CKS 2020 Cor. 9) and a union bound over the ``d`` coordinates.
        """
        log_terms = math.log(2.0 * self.dimension) - OVERFLOW_PROBABILITY_LOG2 * math.log(2.0)
        # The relative nudge absorbs float rounding so T never falls below the real bound.
        raw = float(self._sigma) * math.sqrt(2.0 * self.num_clients * log_terms)
        return math.ceil(raw * (1.0 + 1e-12))

    @property
    def sensitivity_squared(self) -> float:
        """``Delta^2`` of one client's rounded vector, in integer units (KLS Thm 1)."""
        return self._sensitivity_squared

    @property
    def max_squared_norm(self) -> int:
        """``floor(Delta^2)``: the squared norm conditional rounding enforces exactly."""
        return math.floor(self._sensitivity_squared)

    @property
    def tau(self) -> float:
        """KLS's ``tau`` for ``h`` honest clients at the sampled ``sigma``."""
        return ddg_tau(float(self._sigma), self.min_honest_clients)

    @property
    def rho(self) -> float:
        """``rho``-zCDP of one round under the zero-out (add/remove-one-client) relation."""
        return ddg_zcdp_rho(
            self._sensitivity_squared,
            float(self._sigma),
            self.min_honest_clients,
            self.dimension,
        )

    @property
    def max_rounding_attempts(self) -> int:
        """Tries of conditional rounding before :meth:`encode` gives up."""
        beta = float(self.rounding_beta)
        if beta == 0.0:
            return _DETERMINISTIC_BOUND_ATTEMPTS
        needed = math.ceil(-OVERFLOW_PROBABILITY_LOG2 * math.log(2.0) / math.log(1.0 / beta))
        return max(_DETERMINISTIC_BOUND_ATTEMPTS, min(_MAX_ROUNDING_ATTEMPTS, needed))

    def dp_event(
        self,
        neighboring_relation: NeighboringRelation = NeighboringRelation.ADD_OR_REMOVE_ONE,
    ) -> DpEvent:
        """The privacy cost of one round, as a dp-accounting ``ZCDpEvent``.

        Parameters
        ----------
        neighboring_relation
            ``ADD_OR_REMOVE_ONE``: one client's update replaced by zero
            (sensitivity ``Delta``). ``REPLACE_ONE``: one client's update
            replaced by another (sensitivity ``2 Delta``).

        Notes
        -----
        Only privet's ``"rdp"`` accountant reads ``ZCDpEvent``; the ``"pld"``
        accountant (and a PLD ledger) refuses it with a ``PrivacyError``.
        """
        if not isinstance(neighboring_relation, NeighboringRelation):
            raise PrivacyError(
                "neighboring_relation must be a privet.dp.NeighboringRelation, "
                f"got {neighboring_relation!r}"
            )
        factor = 4.0 if neighboring_relation is NeighboringRelation.REPLACE_ONE else 1.0
        rho = ddg_zcdp_rho(
            factor * self._sensitivity_squared,
            float(self._sigma),
            self.min_honest_clients,
            self.dimension,
        )
        event: DpEvent = dp_accounting.ZCDpEvent(rho)
        return event

    @property
    def event(self) -> DpEvent:
        """:meth:`dp_event` under add/remove-one-client: what a ledger is charged per round."""
        return self.dp_event()

    # -- client side -------------------------------------------------------------------------

    def encode(self, update: Any, rng: RngLike = None) -> NDArray[np.uint64]:
        """Clip, scale, round conditionally, add this client's noise, wrap into ``Z_{2^k}``.

        Parameters
        ----------
        update
            A finite float vector of length ``dimension``.
        rng
            ``None`` for the OS CSPRNG (for real rounds); a seeded
            ``numpy.random.Generator`` for simulation, which warns
            (``SeededRandomnessWarning``).

        Returns
        -------
        numpy.ndarray
            uint64 of length ``d`` with entries in ``[0, 2^k)``: ``round(clip(x)
            s) + noise`` in two's complement.

        Raises
        ------
        PrivacyError
            If ``update`` has the wrong shape or a non-finite entry, or if
            conditional rounding fails :attr:`max_rounding_attempts` times.

        Notes
        -----
        Stochastic rounding is unbiased; conditioning it on the norm bound
        adds a small bias only when a draw is rejected (probability at most
        ``beta`` per try, and far less for typical updates, KLS §4).
        """
        scaled = self._clip_and_scale(update)
        source = resolve_rng(rng, release=True)
        rounded = _conditional_round(
            scaled, self.max_squared_norm, self.max_level, source, self.max_rounding_attempts
        )
        noise = discrete_gaussian(self._sigma, self.dimension, source)
        # uint64 arithmetic wraps modulo 2^64, a multiple of 2^k: two's complement for free.
        encoded: NDArray[np.uint64] = rounded.astype(np.uint64) + noise.astype(np.uint64)
        if self.modulus_bits < _MAX_MODULUS_BITS:
            encoded &= np.uint64((1 << self.modulus_bits) - 1)
        return encoded

    def _clip_and_scale(self, update: Any) -> NDArray[np.float64]:
        array = np.asarray(update, dtype=np.float64)
        if array.shape != (self.dimension,):
            raise PrivacyError(f"update must have shape ({self.dimension},), got {array.shape}")
        if not np.all(np.isfinite(array)):
            raise PrivacyError("update must be finite, got NaN or infinity")
        c = float(self.l2_clip)
        largest = float(np.max(np.abs(array)))
        if largest > 0.0:
            # Dividing by the largest entry first keeps the norm finite for huge entries.
            norm = largest * float(np.linalg.norm(array / largest))
            if norm > c:
                array = array * (c / norm)
        top = c * float(self.scale)
        # The clip is a no-op in exact arithmetic; it keeps float error from lifting a
        # coordinate past c s, which would break the max_level overflow bound.
        scaled: NDArray[np.float64] = np.clip(array * float(self.scale), -top, top)
        return scaled

    # -- server side -------------------------------------------------------------------------

    def sum_mod(self, encodings: list[NDArray[np.uint64]]) -> NDArray[np.uint64]:
        """Add encodings modulo ``2^k`` (what secure aggregation computes)."""
        total: NDArray[np.uint64] = self._quantizer().sum_mod(encodings)
        return total

    def decode_sum(self, total: NDArray[np.uint64], count: int) -> NDArray[np.float64]:
        """Decode the modular sum of ``count`` encodings (``1..n``) to floats.

        The residue is read as a signed integer in ``[-2^(k-1), 2^(k-1))`` and
        divided by ``scale``. The result is the sum of the clipped updates plus
        rounding error plus noise of variance :meth:`noise_variance`.
        """
        decoded: NDArray[np.float64] = self._quantizer().decode_sum(total, count)
        return decoded

    def noise_variance(self, count: int) -> float:
        """Per-coordinate variance of the noise in :meth:`decode_sum` for ``count`` clients.

        ``count * Var(N_Z(0, sigma^2)) / s^2``: each client's discrete Gaussian
        has variance slightly below ``sigma^2`` (equal to it in double
        precision for ``sigma >= 2``). For ``count = h`` this is about ``(z
        c)^2``. Dishonest clients that omit their noise lower it.
        """
        n = self.num_clients
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= n:
            raise PrivacyError(f"count must be an integer in [1, {n}], got {count!r}")
        per_client = _discrete_gaussian_variance(float(self._sigma))
        return count * per_client / float(self.scale) ** 2

    def _quantizer(self) -> Quantizer:
        # Same modulus, scale and client count: its sum and signed decoding are ours.
        # Its overflow check (n ceil(c s) < 2^(k-1)) is implied by ours.
        return Quantizer(self.l2_clip, self.modulus_bits, self.scale, self.num_clients)


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


def _conditional_round(
    scaled: NDArray[np.float64],
    max_squared_norm: int,
    max_level: int,
    source: RandomSource,
    max_attempts: int,
) -> NDArray[np.int64]:
    """Unbiased stochastic rounding, redone until the squared norm is ``<= max_squared_norm``.

    KLS §4 (conditional randomized rounding). Each coordinate ``y`` becomes
    ``floor(y) + Bernoulli(y - floor(y))``; the result has magnitude at most
    ``max_level`` when ``|y| <= max_level``. Raises ``PrivacyError`` after
    ``max_attempts`` failures.
    """
    floor = np.floor(scaled)
    fraction = scaled - floor
    base = floor.astype(np.int64)
    for _ in range(max_attempts):
        # P(u < f) = f for u uniform on (0, 1) (to 2^-52): E[rounded] = scaled.
        rounded = base + (source.uniform(scaled.size) < fraction)
        if _squared_norm(rounded, max_level) <= max_squared_norm:
            return rounded
    raise PrivacyError(
        f"conditional rounding must reach squared norm <= {max_squared_norm} within "
        f"{max_attempts} attempts, got none; the update's norm exceeds the clip bound"
    )


def _squared_norm(values: NDArray[np.int64], max_level: int) -> int:
    """Exact ``sum(v^2)`` of an int64 vector whose entries are at most ``max_level``."""
    if values.size * max_level * max_level < 2**63:
        # No partial sum can overflow int64, so numpy's integer dot product is exact.
        return int(np.dot(values, values))
    return sum(v * v for v in values.tolist())


def _discrete_gaussian_variance(sigma: float) -> float:
    """``E[X^2]`` for ``X ~ N_Z(0, sigma^2)``."""
    if sigma >= _VARIANCE_EXACT_SIGMA:
        return sigma * sigma
    # Terms beyond 40 sigma + 40 are below exp(-800) of the centre's.
    half = math.ceil(40.0 * sigma) + 40
    support = np.arange(-half, half + 1, dtype=np.float64)
    weights = np.exp(-(support**2) / (2.0 * sigma * sigma))
    return float(np.sum(support**2 * weights) / np.sum(weights))


def _sqrt_at_least(value: Fraction) -> float:
    """A float ``>= sqrt(value)``."""
    root = math.sqrt(value)
    while Fraction(root) ** 2 < value:
        root = math.nextafter(root, math.inf)
    return root


def _exact(value: float) -> Fraction:
    return Fraction(value)


def _positive_finite(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise PrivacyError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _finite_at_least(name: str, value: Any, low: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < low
    ):
        raise PrivacyError(f"{name} must be a finite number >= {low}, got {value!r}")
    return float(value)


def _int_at_least(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PrivacyError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _beta(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value < 1
    ):
        raise PrivacyError(f"rounding_beta must be in [0, 1), got {value!r}")
    return float(value)
