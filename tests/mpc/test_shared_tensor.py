"""Shared fixed-point tensors against plaintext numpy, within their stated error bounds.

Bounds (privet.mpc.tensor docstring, f = 16): inputs are rounded to multiples of
2^-16 (error <= 2^-17 each); a product adds at most one unit 2^-16 of stochastic
rounding; sums are exact in the ring; comparisons and ReLU are exact on the encoded
inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from privet.errors import PrivacyError
from privet.mpc import Dealer, FixedPoint, Session, Simulator

ULP = 2.0**-16


def session(parties: int = 2) -> Session:
    return Session(Simulator(parties), Dealer(parties, bytes(32)))


def encoded(values: np.ndarray) -> np.ndarray:
    fp = FixedPoint()
    return fp.decode(fp.encode(values))


@pytest.fixture(params=[2, 3], ids=["2 parties", "3 parties"])
def mpc(request: pytest.FixtureRequest) -> Session:
    return session(request.param)


def test_sharing_and_revealing_is_exact_for_encoded_values(mpc: Session) -> None:
    rng = np.random.default_rng(0)
    values = encoded(rng.normal(size=(3, 4)) * 1e3)
    values[0, :3] = [-(2.0**-16), -1.0, -12345.5]  # negative values decode exactly
    assert mpc.share(values, owner=mpc.runtime.num_parties - 1).reveal().tolist() == values.tolist()


def test_elementwise_arithmetic_with_broadcasting_within_bounds(mpc: Session) -> None:
    rng = np.random.default_rng(1)
    x, y = encoded(rng.normal(size=(4, 1, 5)) * 30), encoded(rng.normal(size=(3, 5)) * 30)
    shared_x, shared_y = mpc.share(x), mpc.share(y, owner=1)
    np.testing.assert_array_equal((shared_x + shared_y).reveal(), x + y)
    np.testing.assert_array_equal((shared_x - shared_y).reveal(), x - y)
    np.testing.assert_array_equal((-shared_x).reveal(), -x)
    np.testing.assert_array_equal((shared_x * 3).reveal(), x * 3)  # public integer: exact
    np.testing.assert_allclose((shared_x * shared_y).reveal(), x * y, rtol=0, atol=ULP)
    np.testing.assert_allclose((2.0 - shared_y).reveal(), 2.0 - y, rtol=0, atol=0)


def test_products_with_public_reals_and_division_by_public_values(mpc: Session) -> None:
    """The largest |w| of a public array is encoded with f + 1 significant bits however
    small it is, so the error is |x| max|w| 2^-17 + 2^-16 (tensor.py docstring). Dividing
    by 1000 with w encoded at plain f = 16 bits (round(65.536) = 66) would be off by 0.7%
    of the quotient."""
    rng = np.random.default_rng(2)
    x = encoded(rng.normal(size=200) * 100)
    x[:2] = [-3000.0, 2999.5]
    shared = mpc.share(x)
    for w in (0.3, -1.7, 1 / 1000, 3e-6, 123.25):
        bound = np.abs(x * w) * ULP / 2 + ULP
        assert np.all(np.abs((shared * w).reveal() - x * w) <= bound), w
    for divisor in (7.0, 1000.0, -3e5):
        bound = np.abs(x / divisor) * ULP / 2 + ULP
        assert np.all(np.abs((shared / divisor).reveal() - x / divisor) <= bound), divisor
    rows, per_row = x[:12].reshape(3, 4), np.array([0.25, -0.001, 9.0])[:, None]
    product = (mpc.share(rows) * per_row).reveal()
    assert np.all(np.abs(product - rows * per_row) <= np.abs(rows) * 9.0 * ULP / 2 + ULP)


def test_matmul_sum_and_mean_within_bounds(mpc: Session) -> None:
    rng = np.random.default_rng(3)
    a, b = encoded(rng.normal(size=(2, 6, 9))), encoded(rng.normal(size=(9, 4)))
    shared_a, shared_b = mpc.share(a), mpc.share(b, owner=1)
    np.testing.assert_allclose((shared_a @ shared_b).reveal(), a @ b, rtol=0, atol=ULP)
    np.testing.assert_allclose((a @ shared_b).reveal(), a @ b, rtol=0, atol=ULP)
    np.testing.assert_allclose((shared_a @ b).reveal(), a @ b, rtol=0, atol=ULP)
    v = encoded(rng.normal(size=9))
    np.testing.assert_allclose((shared_a[0] @ mpc.share(v)).reveal(), a[0] @ v, atol=ULP)
    np.testing.assert_allclose((mpc.share(v) @ shared_b).reveal(), v @ b, atol=ULP)
    np.testing.assert_array_equal(shared_a.sum(axis=1).reveal(), a.sum(axis=1))
    np.testing.assert_allclose(shared_a.mean().reveal(), a.mean(), atol=2 * ULP)


def test_comparisons_and_relu_are_exact(mpc: Session) -> None:
    rng = np.random.default_rng(4)
    x = encoded(rng.normal(size=2000) * 50)
    x[:5] = [0.0, -(2.0**-16), 2.0**-16, 2.0**40, -(2.0**40)]
    y = encoded(rng.normal(size=2000) * 50)
    y[:3] = x[:3]  # ties
    shared_x, shared_y = mpc.share(x), mpc.share(y, owner=1)
    np.testing.assert_array_equal(shared_x.relu().reveal(), np.maximum(x, 0.0))
    np.testing.assert_array_equal((shared_x < shared_y).reveal(), (x < y).astype(float))
    np.testing.assert_array_equal((shared_x > shared_y).reveal(), (x > y).astype(float))
    np.testing.assert_array_equal((shared_x <= shared_y).reveal(), (x <= y).astype(float))
    np.testing.assert_array_equal((shared_x >= 0.5).reveal(), (x >= 0.5).astype(float))


def test_bad_inputs_are_clear_errors() -> None:
    mpc = session()
    shared = mpc.share(np.zeros((2, 3)))
    with pytest.raises(PrivacyError, match=r"shapes must broadcast, got \(2, 3\) and \(4,\)"):
        shared + np.zeros(4)
    with pytest.raises(PrivacyError, match=r"shapes must broadcast, got \(2, 3\) and \(3, 2\)"):
        shared * mpc.share(np.zeros((3, 2)))
    with pytest.raises(PrivacyError, match=r"matmul shapes must align, got \(2, 3\) and \(2, 3\)"):
        shared @ mpc.share(np.zeros((2, 3)))
    with pytest.raises(PrivacyError, match=r"values must be in \(-2\*\*46, 2\*\*46\)"):
        mpc.share([2.0**47])
    with pytest.raises(PrivacyError, match=r"owner must be a party index in \[0, 1\], got 2"):
        mpc.share([1.0], owner=2)
    with pytest.raises(PrivacyError, match="divisor must be finite and nonzero"):
        shared / 0.0
    with pytest.raises(PrivacyError, match="same session"):
        shared + session().share(np.zeros((2, 3)))
    with pytest.raises(PrivacyError, match="dealer must serve the runtime's 2 parties"):
        Session(Simulator(2), Dealer(3, bytes(32)))
    with pytest.raises(PrivacyError, match="num_parties must be an integer >= 2, got 1"):
        Simulator(1)


def test_the_same_seeds_give_bit_identical_shares() -> None:
    def run() -> np.ndarray:
        mpc = session()
        x = mpc.share(np.linspace(-3, 3, 12).reshape(3, 4))
        return ((x * x).relu() @ mpc.share(np.ones((4, 2)))).shares

    np.testing.assert_array_equal(run(), run())
