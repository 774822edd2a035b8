"""Nonlinear functions of shared tensors against plaintext numpy, scipy and torch.

The bounds asserted are the ones the privet.mpc.functions docstring states for f = 16
fractional bits (ulp = 2^-16): max and argmax exact; exp within 2^-13 for x <= 0 and
2^-11 e^x for 0 < x <= 6; reciprocal within 2^-13 / |x| + 2^-16 on reciprocal_range(16)
= [2^-16, 2^29); sigmoid within 2^-13; softmax within 2^-12 per entry. Inputs are
encoded values (decode(encode(x))), so every error measured is the protocol's, not the
input rounding's. The inputs, the dealer seed and the simulator are all fixed, so each
check is deterministic: it passes or fails the same way on every run.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from scipy.special import expit

from privet.errors import PrivacyError
from privet.mpc import Dealer, FixedPoint, Session, SharedTensor, Simulator
from privet.mpc import functions as mpc_fn

ULP = 2.0**-16
#: The largest magnitude whose encoding decodes exactly: 2^(53 - 16) - ulp.
EXACT_MAX = 2.0**37 - ULP


def session(parties: int) -> Session:
    return Session(Simulator(parties), Dealer(parties, bytes(32)))


def encoded(values: NDArray[np.float64]) -> NDArray[np.float64]:
    fp = FixedPoint()
    return fp.decode(fp.encode(values))


def rounds_of(mpc: Session, call: Callable[[], SharedTensor]) -> int:
    """Communication rounds ``call`` costs (the reveal afterwards is not counted)."""
    before = mpc.runtime.stats.rounds
    call()
    return mpc.runtime.stats.rounds - before


def first_max_one_hot(values: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """numpy's argmax (the first maximum) as a one-hot array of ``values``' shape."""
    one_hot = np.zeros_like(values)
    index = np.expand_dims(np.argmax(values, axis=axis), axis)
    np.put_along_axis(one_hot, index, 1.0, axis=axis)
    return one_hot


@pytest.fixture(params=[2, 3], ids=["2 parties", "3 parties"])
def mpc(request: pytest.FixtureRequest) -> Session:
    return session(request.param)


# -- max and argmax ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 3, 7, 10])
def test_max_and_argmax_are_exact_and_argmax_marks_the_first_of_tied_maxima(
    mpc: Session, length: int
) -> None:
    rng = np.random.default_rng(length)
    # Small integers: most rows hold repeated maxima (ties at every tournament level).
    ties = rng.integers(-2, 3, size=(40, length)).astype(np.float64)
    spread = encoded(rng.normal(size=(40, length)) * 1e3)
    extremes = rng.choice([-EXACT_MAX, -ULP, 0.0, ULP, EXACT_MAX], size=(20, length))
    values = np.concatenate([ties, spread, extremes])
    values[0] = 1.0  # every entry tied: the first one wins
    values[1, -1] = 5.0  # the maximum last (the carried odd element, for odd lengths)
    shared = mpc.share(values)
    np.testing.assert_array_equal(mpc_fn.max(shared).reveal(), values.max(axis=-1))
    np.testing.assert_array_equal(mpc_fn.argmax(shared).reveal(), first_max_one_hot(values, -1))


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_max_and_argmax_along_every_axis_with_and_without_keepdims(axis: int) -> None:
    rng = np.random.default_rng(10 + axis)
    mpc = session(3)
    values = rng.integers(-3, 4, size=(5, 6, 3)).astype(np.float64) + encoded(
        rng.uniform(0, 1, size=(5, 6, 3))
    ) * (rng.uniform(size=(5, 6, 3)) < 0.3)
    shared = mpc.share(values)
    largest = mpc_fn.max(shared, axis=axis)
    assert largest.shape == values.max(axis=axis).shape
    np.testing.assert_array_equal(largest.reveal(), values.max(axis=axis))
    kept = mpc_fn.max(shared, axis=axis, keepdims=True)
    assert kept.shape == values.max(axis=axis, keepdims=True).shape
    np.testing.assert_array_equal(kept.reveal(), values.max(axis=axis, keepdims=True))
    np.testing.assert_array_equal(
        mpc_fn.argmax(shared, axis=axis).reveal(), first_max_one_hot(values, axis)
    )


@pytest.mark.parametrize("length", [1, 2, 3, 7, 10, 17])
def test_max_and_argmax_cost_ceil_log2_length_levels_of_nine_rounds(length: int) -> None:
    """Docstring: ceil(log2 L) levels of one sign extraction (8 rounds) and one product
    (1 round); argmax carries its one-hot vectors in the same product."""
    mpc = session(2)
    shared = mpc.share(np.arange(4.0 * length).reshape(4, length))
    expected = 9 * math.ceil(math.log2(length))
    assert rounds_of(mpc, lambda: mpc_fn.max(shared)) == expected
    assert rounds_of(mpc, lambda: mpc_fn.argmax(shared)) == expected


def test_max_argmax_and_softmax_refuse_bad_axes() -> None:
    mpc = session(2)
    matrix = mpc.share(np.zeros((2, 3)))
    for function in (mpc_fn.max, mpc_fn.argmax, mpc_fn.softmax):
        with pytest.raises(PrivacyError, match=r"axis must be in \[-2, 1\], got 2"):
            function(matrix, axis=2)
        with pytest.raises(PrivacyError, match=r"axis must be in \[-2, 1\], got -3"):
            function(matrix, axis=-3)
        with pytest.raises(PrivacyError, match=r"axis must be in \[-2, 1\], got True"):
            function(matrix, axis=True)
        with pytest.raises(PrivacyError, match=r"axis 1 must not be empty, got shape \(2, 0\)"):
            function(mpc.share(np.zeros((2, 0))), axis=1)
        with pytest.raises(PrivacyError, match=r"axis 0 must not be empty, got shape \(0, 3\)"):
            function(mpc.share(np.zeros((0, 3))), axis=-2)
    # A 0-d tensor has no axis at all.
    with pytest.raises(PrivacyError, match="x must have at least one axis, got a 0-d tensor"):
        mpc_fn.max(mpc.share(np.float64(1.0)))


# -- exp ---------------------------------------------------------------------------------------


def test_exp_within_2_to_minus_13_below_zero_and_2_to_minus_11_relative_above() -> None:
    """50,000 random points per party count over [-70, 6] (most of the mass where e^x is
    not negligible) plus the boundaries: -64 (the clamp) and its neighbours, far below it
    (-1000, the most negative exactly decodable value), 0, +-ulp and 6."""
    rng = np.random.default_rng(20)
    boundary = np.array(
        [-64.0, -64.0 - ULP, -64.0 + ULP, -1000.0, -EXACT_MAX, 0.0, ULP, -ULP, 6.0, 6.0 - ULP]
    )
    values = encoded(
        np.concatenate(
            [
                rng.uniform(-70, 6, size=20_000),
                rng.uniform(-8, 6, size=20_000),
                rng.uniform(-1 / 64, 1 / 64, size=10_000),
                boundary,
            ]
        )
    )
    for parties in (2, 3):
        mpc = session(parties)
        got = mpc_fn.exp(mpc.share(values)).reveal()
        error = np.abs(got - np.exp(values))
        negative = values <= 0
        assert np.all(error[negative] <= 2.0**-13), values[negative][np.argmax(error[negative])]
        relative = error[~negative] / np.exp(values[~negative])
        assert np.all(relative <= 2.0**-11), values[~negative][np.argmax(relative)]
        # e^-64 ~ 1.6e-28 and below are 0 in fixed point: the clamp yields (about) zero.
        assert np.all(np.abs(got[values <= -64]) <= 2.0**-13)


# -- reciprocal --------------------------------------------------------------------------------


def test_reciprocal_range_is_2_to_minus_16_up_to_2_to_29_at_16_bits() -> None:
    assert mpc_fn.reciprocal_range(16) == (2.0**-16, 2.0**29)
    assert mpc_fn.reciprocal_range() == (2.0**-16, 2.0**29)


def test_reciprocal_within_its_bound_over_the_whole_range_of_both_signs() -> None:
    """20,000 magnitudes log-uniform over reciprocal_range(16) with random signs, every
    power of two in range and its lower neighbour (where the exact normalization switches
    exponent), both ends of the range, and 0 (which maps to 0). Bound: 2^-13/|x| + 2^-16."""
    rng = np.random.default_rng(30)
    low, high = mpc_fn.reciprocal_range(16)
    powers = np.exp2(np.arange(-16, 29, dtype=np.float64))
    magnitudes = np.concatenate(
        [
            np.exp2(rng.uniform(np.log2(low), np.log2(high), size=20_000)),
            powers,
            powers[1:] - ULP,
            [low, high - ULP, 1.0],
        ]
    )
    signs = rng.choice([-1.0, 1.0], size=magnitudes.size)
    signs[-3:] = 1.0
    values = encoded(np.concatenate([magnitudes * signs, [-low, -(high - ULP), 0.0]]))
    assert np.abs(values[values != 0]).min() == low
    assert np.abs(values).max() == high - ULP
    mpc = session(2)
    # Two batches: 45 comparisons per value make the dealer's masks large (memory, not time).
    got = np.concatenate(
        [mpc_fn.reciprocal(mpc.share(part)).reveal() for part in np.array_split(values, 2)]
    )
    nonzero = values != 0
    error = np.abs(got[nonzero] - 1 / values[nonzero])
    bound = 2.0**-13 / np.abs(values[nonzero]) + ULP
    assert np.all(error <= bound), values[nonzero][np.argmax(error / bound)]
    assert got[~nonzero].tolist() == [0.0]


def test_reciprocal_of_known_positive_values_within_its_bound_with_three_parties() -> None:
    rng = np.random.default_rng(31)
    low, high = mpc_fn.reciprocal_range(16)
    values = encoded(np.exp2(rng.uniform(np.log2(low), np.log2(high), size=10_000)))
    values[:3] = [low, high - ULP, 0.0]
    mpc = session(3)
    got = mpc_fn.reciprocal(mpc.share(values), positive=True).reveal()
    positive = values > 0
    error = np.abs(got[positive] - 1 / values[positive])
    assert np.all(error <= 2.0**-13 / values[positive] + ULP)
    assert got[2] == 0.0


# -- sigmoid and softmax -----------------------------------------------------------------------


def test_sigmoid_within_2_to_minus_13_for_every_encodable_input(mpc: Session) -> None:
    """25,000 points per party count, against scipy.special.expit, with large magnitudes
    up to the encoding's limit 2^46 (exclusive) and 0."""
    rng = np.random.default_rng(40)
    values = encoded(
        np.concatenate(
            [
                rng.uniform(-20, 20, size=20_000),
                rng.uniform(-1e4, 1e4, size=5_000),
                [0.0, ULP, -ULP, 1e4, -1e4, 2.0**46 - 1, -(2.0**46 - 1), 64.0, -64.0],
            ]
        )
    )
    got = mpc_fn.sigmoid(mpc.share(values)).reveal()
    error = np.abs(got - expit(values))
    assert np.all(error <= 2.0**-13), values[np.argmax(error)]


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((300, 1), -1), ((400, 2), -1), ((200, 7), 1), ((10, 60), 0), ((4, 6, 5), 1), ((3, 100), -1)],
)
def test_softmax_within_2_to_minus_12_per_entry(
    mpc: Session, shape: tuple[int, ...], axis: int
) -> None:
    """Against torch.softmax in float64, over spreads from 0.1 to 100 (so e^(x - max)
    reaches the clamp at -64), rows of ties, a row with -1000 entries and a large offset."""
    rng = np.random.default_rng(sum(shape) + axis)
    scale = rng.choice([0.1, 1.0, 5.0, 100.0], size=shape)
    values = encoded(rng.normal(size=shape) * scale)
    rows = np.moveaxis(values, axis, -1)  # a view: writes land in `values`
    rows[0] = 3.0
    rows[1, ...] = np.where(np.arange(rows.shape[-1]) % 2 == 0, -1000.0, 0.0)
    rows[2] += 1e4
    got = mpc_fn.softmax(mpc.share(values), axis=axis).reveal()
    expected = torch.softmax(torch.from_numpy(values), dim=axis).numpy()
    error = np.abs(got - expected)
    assert np.all(error <= 2.0**-12), (np.max(error), np.unravel_index(np.argmax(error), shape))
