"""Polynomial approximations: the published sigmoid fit reproduced, the error measured
independently, and the depth counted exactly as TenSEAL's polyval spends it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tenseal", reason="the he extra (pip install 'privet[he]')")

import tenseal as ts
from scipy.special import expit

from privet.errors import PrivacyError
from privet.he.ckks import fit_polynomial, polyval_depth, sigmoid_approximation


def test_degree_3_sigmoid_on_8_is_kim_et_al_s_g3() -> None:
    # Kim, Song, Kim, Lee, Cheon 2018 (BMC Med. Genomics 11(Suppl 4):83), least squares
    # on [-8, 8]: g3(x) = 0.5 + 1.20096 (x/8) - 0.81562 (x/8)^3
    #                   = 0.5 + 0.15012 x - 0.001593 x^3.
    # Their coefficients are printed to 5 decimals from a fit on the continuum; ours is
    # on a 20,001-point grid, and the two agree to 1e-4.
    sigmoid = sigmoid_approximation(3, (-8.0, 8.0))
    np.testing.assert_allclose(sigmoid.unit_coefficients, [0.5, 1.20096, 0.0, -0.81562], atol=1e-4)
    np.testing.assert_allclose(sigmoid.coefficients, [0.5, 0.15012, 0.0, -0.001593], atol=5e-6)
    # The even terms are exactly zero, so polyval spends nothing on them.
    assert sigmoid.unit_coefficients[2] == 0.0


def test_degree_3_on_5_rounds_to_the_tenseal_tutorial_sigmoid() -> None:
    # TenSEAL's tutorial 1 (encrypted logistic regression) uses 0.5 + 0.197 x - 0.004 x^3:
    # the least-squares cubic on [-5, 5], rounded.
    coefficients = sigmoid_approximation(3, (-5.0, 5.0)).coefficients
    np.testing.assert_allclose(coefficients, [0.5, 0.197, 0.0, -0.004], atol=1.5e-3)


@pytest.mark.parametrize(
    ("degree", "interval"), [(3, (-8.0, 8.0)), (5, (-6.0, 6.0)), (7, (-20.0, 20.0))]
)
def test_max_error_is_the_measured_error(degree: int, interval: tuple[float, float]) -> None:
    approximation = sigmoid_approximation(degree, interval)
    # An independent grid (random points, scipy's sigmoid): never above the stated
    # maximum by more than the grid spacing's effect, and the maximum is attained.
    rng = np.random.default_rng(degree)
    points = rng.uniform(*interval, 200_001)
    errors = np.abs(approximation(points) - expit(points))
    assert errors.max() <= approximation.max_error * (1 + 1e-6)
    assert errors.max() >= 0.99 * approximation.max_error


def test_higher_degree_is_more_accurate_on_the_same_interval() -> None:
    errors = [sigmoid_approximation(d, (-8.0, 8.0)).max_error for d in (1, 3, 5, 7)]
    assert errors == sorted(errors, reverse=True)
    assert errors[1] == pytest.approx(0.1143, abs=1e-4)


def test_fit_polynomial_is_exact_on_polynomials() -> None:
    cubic = fit_polynomial(lambda x: 1 - 2 * x + 0.5 * x**3, 3, (-2.0, 3.0), name="cubic")
    np.testing.assert_allclose(cubic.coefficients, [1, -2, 0, 0.5], atol=1e-9)
    assert cubic.max_error < 1e-9
    assert cubic.reach == 3.0


@pytest.mark.parametrize(
    ("coefficients", "depth"),
    [
        ([0.0, 1.0], 0),
        ([0.5, 2.0], 1),
        ([0.0, 0.0, 1.0], 1),
        ([0.0, 0.0, 3.0], 2),
        ([0.5, 0.2, 0.0, -0.004], 2),
        ([0.0, 0.0, 0.0, 0.0, 0.5], 3),
        ([0.0, 0.0, 0.0, 0.0, 1.0], 2),
        ([0.1] * 8, 3),
        ([0.1] * 9, 4),
    ],
)
def test_depth_is_what_tenseal_polyval_spends(coefficients: list[float], depth: int) -> None:
    # The reference is TenSEAL itself: polyval succeeds in a chain of exactly `depth`
    # levels and fails ("scale out of bounds") with one level fewer.
    assert polyval_depth(tuple(coefficients)) == depth
    for levels, fits in ((depth, True), (depth - 1, False)):
        if levels < 0:
            continue
        context = ts.context(
            ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[40] + [30] * levels + [40]
        )
        context.global_scale = 2**30
        vector = ts.ckks_vector(context, [0.5, -0.5])
        if fits:
            got = vector.polyval(coefficients).decrypt()
            want = np.polynomial.polynomial.polyval([0.5, -0.5], coefficients)
            np.testing.assert_allclose(got, want, atol=1e-3)
        else:
            with pytest.raises(ValueError, match="scale out of bounds"):
                vector.polyval(coefficients)


def test_a_constant_polynomial_spends_no_level() -> None:
    # TenSEAL's own polyval fails on a constant ("vector::reserve"); privet's does not.
    from privet.he.ckks import CkksContext, choose_parameters, encrypt

    assert polyval_depth((2.5,)) == 0
    context = CkksContext.create(choose_parameters(1, precision_bits=16, integer_bits=4))
    vector = encrypt(context, [0.5, -0.5])
    result = vector.polyval([2.5, 0.0])
    assert result.levels_left == vector.levels_left
    np.testing.assert_allclose(result.decrypt(), [2.5, 2.5], atol=2.0**-16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"degree": 0}, r"degree must be an int in \[1, 31\], got 0"),
        (
            {"degree": 3, "interval": (1.0, 1.0)},
            r"interval must be finite \(low, high\) with low < high",
        ),
        ({"degree": 3, "interval": (0.0, np.inf)}, "interval must be finite"),
    ],
)
def test_bad_fits_are_refused(kwargs: dict[str, object], message: str) -> None:
    arguments = {"interval": (-1.0, 1.0), **kwargs}
    with pytest.raises(PrivacyError, match=message):
        fit_polynomial(np.sin, **arguments)  # type: ignore[arg-type]


def test_a_function_that_is_not_finite_on_the_interval_is_refused() -> None:
    def reciprocal(x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, 1.0, np.inf)

    with pytest.raises(PrivacyError, match=r"step must map the grid on .* to finite values"):
        fit_polynomial(reciprocal, 3, (-1.0, 1.0), name="step")
