"""Distributed discrete Gaussian for secure aggregation: accounting, encoding, decoding.

References
----------
* Kairouz, Liu & Steinke, "The Distributed Discrete Gaussian Mechanism for
  Federated Learning with Secure Aggregation", ICML 2021 (arXiv:2102.06387),
  "KLS": Thm 1 (privacy of the sum, sensitivity after conditional rounding),
  Prop. 14 (its RDP form).
* Reference implementation, transcribed below as the oracle:
  google-research/federated, ``distributed_discrete_gaussian/accounting_utils.py``
  (commit 2bb71cd5): ``compute_l2_sensitivy_squared``,
  ``_compute_rdp_discrete_gaussian_simplified`` and the ``tau`` / ``l2_scale``
  lines of ``get_ddgauss_epsilon``; and ``distributed_dp/accounting_utils.py``
  (commit 5e27a863): ``rounded_l2_norm_bound``. They work in the float domain
  (``gamma = 1/scale``); privet works in integer units.
* Canonne, Kamath & Steinke, NeurIPS 2020 ("CKS"), Thm 14: one discrete
  Gaussian is ``Delta^2 / (2 sigma^2)``-zCDP.
* dp-accounting's ``RdpAccountant`` on ``ZCDpEvent`` (called directly) for the
  ledger's epsilon.

Statistical tests use fixed seeds; each states its false-alarm rate.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from fractions import Fraction

import dp_accounting
import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant
from scipy import stats

from privet.dp import exact
from privet.dp.accounting import NeighboringRelation
from privet.dp.accounting import epsilon as privet_epsilon
from privet.dp.ledger import Ledger
from privet.dp.randomness import GeneratorRandom, SeededRandomnessWarning
from privet.errors import PrivacyError
from privet.secagg import distributed_dp
from privet.secagg.distributed_dp import (
    DistributedDiscreteGaussian,
    ddg_tau,
    ddg_zcdp_rho,
    rounded_l2_sensitivity_squared,
)
from privet.secagg.quantize import Quantizer

BETA = math.exp(-0.5)  # KLS's recommended conditional-rounding parameter

# ----------------------------------------------------------------------------
# The reference implementation, transcribed (google-research/federated)
# ----------------------------------------------------------------------------

DIV_EPSILON = 1e-22
# distributed_discrete_gaussian/accounting_utils.py: RDP_ORDERS
REF_ORDERS = (*map(float, range(2, 21)), 22.0, 24.0, 28.0, 32.0, 64.0, 128.0, 256.0)


def ref_compute_l2_sensitivy_squared(
    l2_clip_norm: float, gamma: float, beta: float, dimension: int
) -> float:
    """distributed_discrete_gaussian/accounting_utils.py: compute_l2_sensitivy_squared."""
    term_1 = math.pow(l2_clip_norm + gamma * math.sqrt(dimension), 2)
    if beta is None or beta == 0:
        return term_1
    term_2 = math.pow(l2_clip_norm, 2)
    term_2 += 0.25 * math.pow(gamma, 2) * dimension
    term_2 += (
        math.sqrt(2.0 * math.log(1 / beta))
        * gamma
        * (l2_clip_norm + 0.5 * gamma * math.sqrt(dimension))
    )
    return min(term_1, term_2)


def ref_rounded_l2_norm_bound(l2_norm_bound: float, beta: float, dim: int) -> float:
    """distributed_dp/accounting_utils.py: rounded_l2_norm_bound (already scaled input)."""
    bound_1 = l2_norm_bound + np.sqrt(dim)
    if beta == 0:
        return float(bound_1)
    squared_bound_2 = np.square(l2_norm_bound) + 0.25 * dim
    squared_bound_2 += np.sqrt(2.0 * np.log(1.0 / beta)) * (l2_norm_bound + 0.5 * np.sqrt(dim))
    return float(min(bound_1, np.sqrt(squared_bound_2)))


def ref_rdp_simplified(l2_scale: float, tau: float, dimension: int, order: float) -> float:
    """distributed_discrete_gaussian/accounting_utils.py:
    _compute_rdp_discrete_gaussian_simplified."""
    term_1 = order * (l2_scale**2) / 2.0 + tau * dimension
    term_2 = (order / 2.0) * (l2_scale + math.sqrt(dimension) * tau) ** 2
    return min(term_1, term_2)


def ref_scale_and_tau(
    noise_stddev: float, l2_clip_norm: float, gamma: float, beta: float, num_clients: int, dim: int
) -> tuple[float, float]:
    """The l2_scale and tau lines of get_ddgauss_epsilon (float domain, local stddev)."""
    variance = math.pow(noise_stddev, 2)
    l2_sensitivity_squared = ref_compute_l2_sensitivy_squared(l2_clip_norm, gamma, beta, dim)
    sq_l2_scale = l2_sensitivity_squared / (num_clients * variance + DIV_EPSILON)
    tau = 0.0
    for k in range(1, num_clients):
        tau += math.exp(
            -2 * (variance / (math.pow(gamma, 2) + DIV_EPSILON)) * math.pi**2 * (k * 1.0 / (k + 1))
        )
    tau *= 10
    return math.sqrt(sq_l2_scale), tau


# (l2_clip, scale, noise_multiplier, dimension, num_clients, min_honest_clients, beta)
SETTINGS = [
    (1.0, 1000.0, 1.0, 1000, 10, 5, BETA),  # sigma ~ 447: tau underflows to 0
    (0.1, 64.0, 0.8, 4096, 100, 50, BETA),  # sigma ~ 0.72: tau matters, branch 2
    (1.0, 2.0, 0.5, 16, 4, 3, BETA),  # sigma ~ 0.58: tau large, branch 1
    (2.0, 10.0, 0.3, 50, 8, 2, 0.0),  # deterministic bound, sigma ~ 4.2
]


def make(setting: tuple[float, float, float, int, int, int, float]) -> DistributedDiscreteGaussian:
    c, s, z, d, n, h, beta = setting
    return DistributedDiscreteGaussian(c, s, z, d, n, h, 62, rounding_beta=beta)


# ----------------------------------------------------------------------------
# Accounting against the reference implementation and CKS
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("setting", SETTINGS)
def test_sensitivity_matches_reference(setting: tuple) -> None:
    c, s, _, d, _, _, beta = setting
    mech = make(setting)
    ref = ref_compute_l2_sensitivy_squared(c, 1.0 / s, beta, d) * s * s
    assert mech.sensitivity_squared == pytest.approx(ref, rel=1e-12)
    other = ref_rounded_l2_norm_bound(c * s, beta, d) ** 2
    assert mech.sensitivity_squared == pytest.approx(other, rel=1e-12)
    assert mech.max_squared_norm == math.floor(mech.sensitivity_squared)


@pytest.mark.parametrize("setting", SETTINGS)
def test_rho_is_the_reference_rdp_at_order_one_and_dominates_its_curve(setting: tuple) -> None:
    c, s, _, d, _, h, beta = setting
    mech = make(setting)
    # The reference takes the float-domain local stddev: sigma (integer units) / scale.
    l2_scale, tau = ref_scale_and_tau(float(mech.local_sigma) / s, c, 1.0 / s, beta, h, d)
    assert mech.tau == pytest.approx(tau, rel=1e-9, abs=1e-300)
    assert mech.rho == pytest.approx(ref_rdp_simplified(l2_scale, tau, d, 1.0), rel=1e-9)
    for order in REF_ORDERS:
        assert mech.rho * order >= ref_rdp_simplified(l2_scale, tau, d, order) * (1 - 1e-12)


def test_settings_exercise_both_branches_of_the_minimum() -> None:
    # Without this the reference test could pass while one branch is wrong.
    branches = set()
    for setting in SETTINGS:
        mech = make(setting)
        scale_sq = mech.sensitivity_squared / (
            mech.min_honest_clients * float(mech.local_sigma) ** 2
        )
        first = scale_sq + 2 * mech.tau * mech.dimension
        second = (math.sqrt(scale_sq) + mech.tau * math.sqrt(mech.dimension)) ** 2
        if mech.tau > 1e-3:
            branches.add("first" if first < second else "second")
    assert branches == {"first", "second"}


def test_one_client_is_the_discrete_gaussian_of_cks() -> None:
    # CKS Thm 14: Delta^2 / (2 sigma^2)-zCDP; tau = 0 for h = 1 whatever sigma.
    mech = DistributedDiscreteGaussian(1.0, 3.0, 0.25, 20, 5, 1, 62)
    assert mech.tau == 0.0
    sigma = float(mech.local_sigma)
    assert mech.rho == pytest.approx(mech.sensitivity_squared / (2 * sigma**2), rel=1e-15)
    assert ddg_zcdp_rho(9.0, 0.7, 1, 100) == pytest.approx(9.0 / (2 * 0.49), rel=1e-15)


def test_rho_tends_to_the_central_discrete_gaussian_as_sigma_grows() -> None:
    # Delta^2 / (2 h sigma^2) is the limit; the gap is tau's and shrinks with sigma.
    gaps = []
    for sigma in (0.6, 0.8, 1.0, 1.5, 2.0, 4.0):
        central = 25.0 / (2 * 8 * sigma**2)
        rho = ddg_zcdp_rho(25.0, sigma, 8, 64)
        assert rho >= central * (1 - 1e-15)
        gaps.append(rho / central - 1)
    assert all(later < earlier for earlier, later in itertools.pairwise(gaps[:-1]))
    assert gaps[0] > 1.0
    assert gaps[-2] < 1e-6
    assert abs(gaps[-1]) < 1e-15  # tau vanishes in double precision: the central value


def test_tau_matches_the_reference_loop() -> None:
    for sigma, h in [(0.5, 2), (0.7, 10), (1.0, 100), (3.0, 7)]:
        expected = 10 * sum(math.exp(-2 * math.pi**2 * sigma**2 * k / (k + 1)) for k in range(1, h))
        assert ddg_tau(sigma, h) == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert ddg_tau(0.5, 1) == 0.0


def test_replace_one_doubles_the_sensitivity() -> None:
    mech = make(SETTINGS[1])
    replace = mech.dp_event(NeighboringRelation.REPLACE_ONE)
    expected = ddg_zcdp_rho(
        4 * mech.sensitivity_squared, float(mech.local_sigma), mech.min_honest_clients, 4096
    )
    assert replace.rho == pytest.approx(expected, rel=1e-15)
    assert mech.event.rho == mech.rho
    assert mech.dp_event().rho == mech.rho
    single = DistributedDiscreteGaussian(1.0, 10.0, 1.0, 5, 3, 1, 62)
    assert single.dp_event(NeighboringRelation.REPLACE_ONE).rho == pytest.approx(4 * single.rho)


# ----------------------------------------------------------------------------
# Ledger and accountants
# ----------------------------------------------------------------------------


def test_ledger_charges_match_dp_accounting_rdp_over_rounds() -> None:
    mech = DistributedDiscreteGaussian(1.0, 100.0, 1.2, 500, 20, 10, 40)
    ledger = Ledger(epsilon=100.0, delta=1e-5, accountant="rdp")
    rounds = 6
    for index in range(rounds):
        charge = ledger.charge(mech.event, label=f"round {index}")
        direct = rdp_privacy_accountant.RdpAccountant()
        direct.compose(dp_accounting.ZCDpEvent(mech.rho), index + 1)
        assert charge.epsilon_after == pytest.approx(direct.get_epsilon(1e-5), rel=1e-9)
    direct = rdp_privacy_accountant.RdpAccountant()
    direct.compose(dp_accounting.ZCDpEvent(mech.rho), rounds)
    assert ledger.spent() == pytest.approx(direct.get_epsilon(1e-5), rel=1e-9)
    assert privet_epsilon([mech.event] * rounds, 1e-5, "rdp") == pytest.approx(
        direct.get_epsilon(1e-5), rel=1e-9
    )
    # More rounds cost more; the numbers are not degenerate.
    assert 0 < privet_epsilon(mech.event, 1e-5, "rdp") < ledger.spent()


def test_pld_refuses_the_zcdp_event_and_records_nothing() -> None:
    mech = make(SETTINGS[0])
    ledger = Ledger(epsilon=10.0, delta=1e-5, accountant="pld")
    with pytest.raises(PrivacyError, match=r"'pld' accountant .* cannot account for ZCDpEvent"):
        ledger.charge(mech.event, label="round 0")
    assert ledger.history() == []
    with pytest.raises(PrivacyError, match="cannot account for ZCDpEvent"):
        privet_epsilon(mech.event, 1e-5, "pld")


# ----------------------------------------------------------------------------
# Noise: variance, mean, sigma
# ----------------------------------------------------------------------------


def test_local_sigma_is_rounded_up_slightly_onto_the_fast_path() -> None:
    for setting in SETTINGS:
        mech = make(setting)
        c, s, z, _, _, h, _ = setting
        exact_sigma_sq = (Fraction(z) * Fraction(c) * Fraction(s)) ** 2 / h
        assert mech.local_sigma**2 >= exact_sigma_sq
        assert mech.local_sigma**2 <= exact_sigma_sq * (1 + 1e-3)
        assert exact._gaussian_fits_int64(mech.local_sigma**2)


@pytest.mark.parametrize("sigma", [0.5, 0.6, 1.0, 1.99, 2.0, 7.5])
def test_discrete_gaussian_variance_matches_the_pmf(sigma: float) -> None:
    # Naive: sum x^2 pmf(x) with privet.dp.exact's reference pmf.
    support = np.arange(-400, 401)
    naive = float(np.sum(support**2 * exact.discrete_gaussian_pmf(support, sigma)))
    assert distributed_dp._discrete_gaussian_variance(sigma) == pytest.approx(naive, rel=1e-12)
    assert naive <= sigma**2


def test_decoded_noise_of_h_clients_has_the_target_variance_and_zero_mean() -> None:
    # h clients encode zero updates: the decoded sum is pure noise, variance
    # h Var(N_Z(0, sigma^2)) / s^2 ~ (z c)^2. Chi-square on N coordinates (the sum of
    # discrete Gaussians is close to normal for sigma >= 1), two-sided, false-alarm 1e-3;
    # mean: z-test, false-alarm 1e-3.
    c, s, z, d, n, h = 0.5, 40.0, 1.5, 6000, 6, 4
    mech = DistributedDiscreteGaussian(c, s, z, d, n, h, 32)
    rng = np.random.default_rng(20240611)
    total = mech.sum_mod([mech.encode(np.zeros(d), rng) for _ in range(h)])
    decoded = mech.decode_sum(total, h)
    variance = mech.noise_variance(h)
    assert variance == pytest.approx((z * c) ** 2, rel=1e-3)
    statistic = float(np.sum(decoded**2)) / variance
    low, high = stats.chi2.ppf([5e-4, 1 - 5e-4], df=d)
    assert low < statistic < high
    assert abs(float(decoded.mean())) < 3.2905 * math.sqrt(variance / d)
    # Every decoded value is a multiple of 1/s: the noise is integer.
    np.testing.assert_array_equal(decoded * s, np.round(decoded * s))


def test_noise_variance_scales_with_count() -> None:
    mech = make(SETTINGS[3])
    one = mech.noise_variance(1)
    assert mech.noise_variance(8) == pytest.approx(8 * one, rel=1e-15)
    assert one == pytest.approx(float(mech.local_sigma) ** 2 / 100.0, rel=1e-12)


# ----------------------------------------------------------------------------
# Conditional stochastic rounding
# ----------------------------------------------------------------------------


def test_conditional_rounding_never_exceeds_the_bound_and_is_a_true_conditioning() -> None:
    # y = 0.5 in 16 coordinates: unconditionally ||x||^2 ~ Binomial(16, 1/2); conditioned on
    # <= 6 it must follow C(16, j) / sum_{i<=6} C(16, i). Chi-square goodness of fit on 2000
    # draws (j <= 3 merged into one bin), false-alarm 1e-3.
    source = GeneratorRandom(np.random.default_rng(7))
    scaled = np.full(16, 0.5)
    counts = np.zeros(7, dtype=np.int64)
    for _ in range(2000):
        rounded = distributed_dp._conditional_round(scaled, 6, 1, source, 200)
        assert set(rounded.tolist()) <= {0, 1}
        norm_sq = int(np.dot(rounded, rounded))
        assert norm_sq <= 6
        counts[norm_sq] += 1
    weights = np.array([math.comb(16, j) for j in range(7)], dtype=np.float64)
    expected = 2000 * weights / weights.sum()
    observed = np.concatenate([[counts[:4].sum()], counts[4:]])
    expected_bins = np.concatenate([[expected[:4].sum()], expected[4:]])
    statistic = float(np.sum((observed - expected_bins) ** 2 / expected_bins))
    assert statistic < stats.chi2.ppf(1 - 1e-3, df=len(observed) - 1)


def test_stochastic_rounding_is_unbiased_when_the_bound_is_loose() -> None:
    # Each value repeated 20000 times; z-test per value with Bonferroni over the 6 values,
    # false-alarm 1e-3 in total.
    values = np.array([0.1, 0.25, 0.5, 0.9, -0.3, -2.7])
    reps = 20_000
    scaled = np.repeat(values, reps)
    source = GeneratorRandom(np.random.default_rng(11))
    rounded = distributed_dp._conditional_round(scaled, 10**12, 3, source, 1)
    z = stats.norm.ppf(1 - 1e-3 / 12)
    for index, value in enumerate(values):
        chunk = rounded[index * reps : (index + 1) * reps]
        assert set(chunk.tolist()) <= {math.floor(value), math.ceil(value)}
        frac = value - math.floor(value)
        assert abs(chunk.mean() - value) < z * math.sqrt(frac * (1 - frac) / reps)


def test_conditional_rounding_gives_up_with_a_clear_error() -> None:
    source = GeneratorRandom(np.random.default_rng(3))
    # Every rounding of 1.5 is 1 or 2: ||x||^2 >= 4 > 3.
    with pytest.raises(PrivacyError, match=r"squared norm <= 3 within 5 attempts"):
        distributed_dp._conditional_round(np.full(4, 1.5), 3, 2, source, 5)


def test_rounding_attempts_bound_the_failure_probability() -> None:
    mech = make(SETTINGS[0])
    # beta^attempts <= 2^-40, with exp(-0.5): ceil(80 ln 2) = 56.
    assert mech.max_rounding_attempts == 56
    assert BETA**mech.max_rounding_attempts <= 2.0**-40
    assert make(SETTINGS[3]).max_rounding_attempts == 4  # beta = 0: the bound always holds


@pytest.mark.parametrize("max_level", [3, 2**40])
def test_squared_norm_fast_path_matches_python_ints(max_level: int) -> None:
    rng = np.random.default_rng(5)
    values = rng.integers(-max_level, max_level + 1, size=1000, dtype=np.int64)
    naive = sum(int(v) ** 2 for v in values)
    assert distributed_dp._squared_norm(values, max_level) == naive
    if max_level > 2**31:
        # The int64 dot product would have wrapped: the slow path is needed.
        assert int(np.dot(values, values)) != naive


# ----------------------------------------------------------------------------
# Encode / decode
# ----------------------------------------------------------------------------


def naive_encode(mech: DistributedDiscreteGaussian, update: np.ndarray, seed: int) -> list[int]:
    """clip -> scale -> conditional rounding -> + noise -> mod 2^k, in Python where possible."""
    norm = math.sqrt(sum(float(x) ** 2 for x in update))
    factor = min(1.0, mech.l2_clip / norm) if norm > 0 else 1.0
    scaled = np.array([float(x) * factor * mech.scale for x in update])
    source = GeneratorRandom(np.random.default_rng(seed))
    rounded = distributed_dp._conditional_round(
        scaled, mech.max_squared_norm, mech.max_level, source, mech.max_rounding_attempts
    )
    noise = exact.discrete_gaussian(mech.local_sigma, mech.dimension, source)
    k = mech.modulus_bits
    return [(int(r) + int(e)) % 2**k for r, e in zip(rounded, noise, strict=True)]


@pytest.mark.parametrize("k", [20, 64])
def test_encode_matches_a_naive_composition(k: int) -> None:
    mech = DistributedDiscreteGaussian(1.0, 30.0, 1.0, 300, 5, 3, k)
    rng = np.random.default_rng(2)
    for update in (rng.normal(size=300), 1e-3 * rng.normal(size=300), np.zeros(300)):
        encoded = mech.encode(update, np.random.default_rng(99))
        assert encoded.dtype == np.uint64
        assert encoded.tolist() == naive_encode(mech, update, 99)


def test_decoded_sum_is_the_clipped_sum_within_rounding_and_noise_headroom() -> None:
    # |error| <= n / s (rounding) + T / s (noise headroom, exceeded w.p. <= 2^-40).
    c, s, n, d = 1.0, 2.0**20, 7, 400
    mech = DistributedDiscreteGaussian(c, s, 1e-4, d, n, n, 48)
    rng = np.random.default_rng(4)
    updates = [rng.normal(scale=0.2, size=d) for _ in range(n)]
    updates[0] = 1e6 * updates[0]  # gets clipped
    encoded = [mech.encode(u, rng) for u in updates]
    decoded = mech.decode_sum(mech.sum_mod(encoded), n)
    clipped = [u * min(1.0, c / float(np.linalg.norm(u))) for u in updates]
    error = np.abs(decoded - np.sum(clipped, axis=0))
    assert float(error.max()) <= (n + mech.noise_headroom) / s
    # Not vacuous: the clipped client dominates, and a missing clip would blow the bound.
    assert float(np.abs(np.sum(updates, axis=0) - decoded).max()) > 1.0


def test_huge_updates_are_clipped_without_overflow() -> None:
    mech = DistributedDiscreteGaussian(1.0, 50.0, 1.0, 4, 3, 3, 32)
    encoded = mech.encode(np.array([1e300, -1e300, 1e300, 0.0]), np.random.default_rng(0))
    assert encoded.dtype == np.uint64
    assert int(encoded.max()) < 2**32


def test_encode_defaults_to_the_os_csprng_and_warns_on_a_seed() -> None:
    mech = make(SETTINGS[0])
    encoded = mech.encode(np.zeros(1000))
    assert encoded.dtype == np.uint64
    assert int(encoded.max()) < 2**62
    with pytest.warns(SeededRandomnessWarning):
        mech.encode(np.zeros(1000), np.random.default_rng(0))


# ----------------------------------------------------------------------------
# Overflow guarantee
# ----------------------------------------------------------------------------


def naive_headroom(sigma: Fraction, n: int, d: int) -> int:
    # Sub-Gaussian sum (proxy n sigma^2), union bound over d coordinates, failure 2^-40.
    return math.ceil(float(sigma) * math.sqrt(2 * n * (math.log(2 * d) + 40 * math.log(2))))


def test_overflow_check_is_exactly_n_levels_plus_headroom() -> None:
    c, s, z, d, n, h = 1.0, 1000.0, 1.0, 100, 10, 10
    accepted = []
    for k in range(14, 20):
        try:
            mech = DistributedDiscreteGaussian(c, s, z, d, n, h, k)
        except PrivacyError:
            accepted.append(False)
            continue
        accepted.append(True)
        headroom = naive_headroom(mech.local_sigma, n, d)
        assert headroom <= mech.noise_headroom <= headroom + 1
        assert n * 1000 + mech.noise_headroom < 2 ** (k - 1)
    assert accepted == [False, False, True, True, True, True]  # 2^14 < 10000 + ~8100 < 2^15


def test_overflow_refusal_names_the_values() -> None:
    # Quantizer alone accepts k = 15 (10 * 1000 < 2^14); the noise headroom does not fit.
    Quantizer(1.0, 15, 1000.0, 10)
    with pytest.raises(
        PrivacyError,
        match=r"num_clients \* ceil\(l2_clip \* scale\) \+ noise headroom must be < "
        r"2\*\*\(modulus_bits - 1\) = 16384 .* got 10 \* 1000 \+ \d+ = \d+",
    ):
        DistributedDiscreteGaussian(1.0, 1000.0, 1.0, 100, 10, 10, 15)


# ----------------------------------------------------------------------------
# Bad inputs
# ----------------------------------------------------------------------------

GOOD = {
    "l2_clip": 1.0,
    "scale": 100.0,
    "noise_multiplier": 1.0,
    "dimension": 10,
    "num_clients": 5,
    "min_honest_clients": 3,
    "modulus_bits": 32,
    "rounding_beta": BETA,
}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("l2_clip", 0.0, r"l2_clip must be a finite number > 0, got 0.0"),
        ("l2_clip", -1.0, r"l2_clip must be a finite number > 0, got -1.0"),
        ("l2_clip", math.nan, r"l2_clip must be a finite number > 0, got nan"),
        ("l2_clip", True, r"l2_clip must be a finite number > 0, got True"),
        ("l2_clip", "1", r"l2_clip must be a finite number > 0, got '1'"),
        ("scale", math.inf, r"scale must be a finite number > 0, got inf"),
        ("scale", 0, r"scale must be a finite number > 0, got 0"),
        ("noise_multiplier", 0.0, r"noise_multiplier must be a finite number > 0, got 0.0"),
        ("noise_multiplier", None, r"noise_multiplier must be a finite number > 0, got None"),
        ("dimension", 0, r"dimension must be an integer >= 1, got 0"),
        ("dimension", 10.0, r"dimension must be an integer >= 1, got 10.0"),
        ("num_clients", 0, r"num_clients must be an integer >= 1, got 0"),
        ("num_clients", True, r"num_clients must be an integer >= 1, got True"),
        ("min_honest_clients", 0, r"min_honest_clients must be an integer in \[1, num_clients=5\]"),
        ("min_honest_clients", 6, r"min_honest_clients must be .* got 6"),
        ("min_honest_clients", 3.0, r"min_honest_clients must be .* got 3.0"),
        ("modulus_bits", 1, r"modulus_bits must be an integer in \[2, 64\], got 1"),
        ("modulus_bits", 65, r"modulus_bits must be an integer in \[2, 64\], got 65"),
        ("modulus_bits", 32.0, r"modulus_bits must be an integer in \[2, 64\], got 32.0"),
        ("rounding_beta", -0.1, r"rounding_beta must be in \[0, 1\), got -0.1"),
        ("rounding_beta", 1.0, r"rounding_beta must be in \[0, 1\), got 1.0"),
        ("rounding_beta", math.nan, r"rounding_beta must be in \[0, 1\), got nan"),
    ],
)
def test_bad_parameters_are_refused(name: str, value: object, message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        DistributedDiscreteGaussian(**{**GOOD, name: value})  # type: ignore[arg-type]


def test_sigma_outside_the_analysed_range_is_refused() -> None:
    pattern = r"noise_multiplier \* l2_clip \* scale / sqrt\(min_honest_clients\) must be in "
    with pytest.raises(PrivacyError, match=pattern + r"\[0.5, 2\*\*50\], got 0.4"):
        DistributedDiscreteGaussian(**{**GOOD, "scale": 0.4, "min_honest_clients": 1})
    with pytest.raises(PrivacyError, match=pattern):
        DistributedDiscreteGaussian(**{**GOOD, "noise_multiplier": 2.0**51, "modulus_bits": 64})
    with pytest.raises(PrivacyError, match="l2_clip \\* scale must be finite"):
        DistributedDiscreteGaussian(**{**GOOD, "l2_clip": 1e200, "scale": 1e200})
    # Exactly 1/2 is allowed.
    DistributedDiscreteGaussian(**{**GOOD, "scale": 0.5, "min_honest_clients": 1})


def test_bad_encode_and_decode_inputs() -> None:
    mech = DistributedDiscreteGaussian(**GOOD)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    with pytest.raises(PrivacyError, match=r"update must have shape \(10,\), got \(9,\)"):
        mech.encode(np.zeros(9), rng)
    with pytest.raises(PrivacyError, match=r"update must have shape \(10,\), got \(2, 5\)"):
        mech.encode(np.zeros((2, 5)), rng)
    with pytest.raises(PrivacyError, match="update must be finite, got NaN or infinity"):
        mech.encode(np.full(10, math.nan), rng)
    total = mech.sum_mod([mech.encode(np.zeros(10), rng)])
    for count in (0, 6, True, 1.0):
        with pytest.raises(PrivacyError, match=r"count must be"):
            mech.decode_sum(total, count)  # type: ignore[arg-type]
        with pytest.raises(PrivacyError, match=r"count must be an integer in \[1, 5\]"):
            mech.noise_variance(count)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="total must be a uint64 numpy array, got int64 array"):
        mech.decode_sum(total.astype(np.int64), 1)
    with pytest.raises(PrivacyError, match=r"total must be in \[0, 2\*\*32\)"):
        mech.decode_sum(total | np.uint64(2**40), 1)
    with pytest.raises(PrivacyError, match=r"neighboring_relation must be a privet\.dp"):
        mech.dp_event("replace_one")  # type: ignore[arg-type]


def test_bad_inputs_of_the_pure_functions() -> None:
    with pytest.raises(PrivacyError, match="sensitivity_squared must be a finite number >= 0"):
        ddg_zcdp_rho(-1.0, 1.0, 2, 3)
    with pytest.raises(PrivacyError, match=r"sigma must be a finite number > 0, got 0\.0"):
        ddg_zcdp_rho(1.0, 0.0, 2, 3)
    with pytest.raises(PrivacyError, match="honest_clients must be an integer >= 1, got 0"):
        ddg_tau(1.0, 0)
    with pytest.raises(PrivacyError, match="dimension must be an integer >= 1, got 0"):
        ddg_zcdp_rho(1.0, 1.0, 2, 0)
    with pytest.raises(PrivacyError, match=r"rounding_beta must be in \[0, 1\), got 2"):
        rounded_l2_sensitivity_squared(1.0, 1.0, 3, 2)


def test_mechanism_is_frozen() -> None:
    mech = DistributedDiscreteGaussian(**GOOD)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        mech.noise_multiplier = 0.1  # type: ignore[misc]
    assert mech == DistributedDiscreteGaussian(**GOOD)  # type: ignore[arg-type]
