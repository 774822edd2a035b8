"""Online protocols against plaintext: Beaver products, truncation, exact sign bits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from privet.mpc import protocols
from privet.mpc.dealer import Dealer, pack_bits, unpack_bits
from privet.mpc.ring import RingArray, ring_matmul_naive
from privet.mpc.runtime import Simulator


def shares_of(values: RingArray, parties: int, rng: np.random.Generator) -> RingArray:
    rows = rng.integers(0, 2**64, size=(parties - 1, *values.shape), dtype=np.uint64)
    last = values - np.add.reduce(rows, axis=0, dtype=np.uint64)
    return np.concatenate([rows, last[None]])


def uniform(shape: tuple[int, ...], rng: np.random.Generator) -> RingArray:
    return rng.integers(0, 2**64, size=shape, dtype=np.uint64)


@pytest.mark.parametrize("parties", [2, 3])
def test_beaver_products_equal_the_ring_products(parties: int) -> None:
    rng = np.random.default_rng(parties)
    runtime, dealer = Simulator(parties), Dealer(parties, bytes(32))
    x, y = uniform((4, 1, 5), rng), uniform((3, 5), rng)
    product = protocols.mul(runtime, dealer, shares_of(x, parties, rng), shares_of(y, parties, rng))
    np.testing.assert_array_equal(runtime.open_ring(product), x * y)
    a, b = uniform((2, 6, 7), rng), uniform((7, 3), rng)
    matrix = protocols.matmul(
        runtime, dealer, shares_of(a, parties, rng), shares_of(b, parties, rng)
    )
    np.testing.assert_array_equal(runtime.open_ring(matrix), ring_matmul_naive(a, b))


@pytest.mark.parametrize("parties", [2, 3])
def test_truncation_is_floor_or_one_more_with_no_failures_up_to_2_62(parties: int) -> None:
    """The exact-carry truncation never fails for |v| < 2^62 (checked on 200,000 values
    including both ends of the range), and rounds up with probability (v mod 2^f) / 2^f:
    unbiased, so the mean error over many values is ~0 (a z-test at false-alarm 1e-4)."""
    rng = np.random.default_rng(10 + parties)
    runtime, dealer = Simulator(parties), Dealer(parties, bytes(range(32)))
    f = 16
    values = rng.integers(-(2**62) + 1, 2**62, size=200_000, dtype=np.int64)
    values[:4] = [2**62 - 1, -(2**62) + 1, 0, -1]
    shared = shares_of(values.view(np.uint64), parties, rng)
    truncated = protocols.truncate(runtime, dealer, shared, f)
    got = runtime.open_ring(truncated).view(np.int64)
    floor = values >> f
    assert set(np.unique(got - floor)) <= {0, 1}
    # Stochastic rounding: E[got] = v / 2^f. Error = got - v/2^f has |.| < 1, variance <= 1/4.
    error = got - values / 2.0**f
    z = error.mean() / np.sqrt(0.25 / error.size)
    assert abs(z) < stats.norm.isf(0.5e-4)
    # And it does round up sometimes and down sometimes (the test above is not vacuous).
    assert 0.3 < np.mean(got - floor) < 0.7


@pytest.mark.parametrize("parties", [2, 3])
def test_sign_bits_are_exact_for_every_64_bit_value(parties: int) -> None:
    rng = np.random.default_rng(20 + parties)
    runtime, dealer = Simulator(parties), Dealer(parties, bytes(32))
    values = rng.integers(-(2**63), 2**63, size=5_000, dtype=np.int64, endpoint=False)
    values[:6] = [0, -1, 1, 2**63 - 1, -(2**63), -(2**62)]
    bits = protocols.msb(runtime, dealer, shares_of(values.view(np.uint64), parties, rng))
    np.testing.assert_array_equal(runtime.open_ring(bits), (values < 0).astype(np.uint64))


def test_sign_extraction_costs_eight_rounds() -> None:
    """1 opening of the masked value, 6 AND levels over 64 bit positions, 1 bit conversion."""
    rng = np.random.default_rng(0)
    runtime, dealer = Simulator(2), Dealer(2, bytes(32))
    protocols.msb(runtime, dealer, shares_of(uniform((1000,), rng), 2, rng))
    assert runtime.stats.rounds == 8


def test_bit_packing_round_trips() -> None:
    rng = np.random.default_rng(3)
    for count in (1, 63, 64, 65, 1000):
        bits = rng.integers(0, 2, size=(3, count)).astype(np.uint64)
        np.testing.assert_array_equal(unpack_bits(pack_bits(bits), count), bits)


def test_the_same_dealer_seed_gives_the_same_randomness_and_another_seed_does_not() -> None:
    first, again, other = Dealer(2, bytes(32)), Dealer(2, bytes(32)), Dealer(2, b"\x01" * 32)
    a, b, c = (d.mul_triple((4,), (4,)) for d in (first, again, other))
    np.testing.assert_array_equal(a.c, b.c)
    assert not np.array_equal(a.c, c.c)
    # Shares of a product add up to the product of the shared factors.
    total = lambda s: np.add.reduce(s, axis=0, dtype=np.uint64)  # noqa: E731
    np.testing.assert_array_equal(total(a.a) * total(a.b), total(a.c))
