"""The ring Z_2^64, fixed-point encoding and the limb-BLAS matmul against numpy's integer loop."""

from __future__ import annotations

import numpy as np
import pytest

from privet.errors import PrivacyError
from privet.mpc.ring import FixedPoint, ring_matmul, ring_matmul_naive


@pytest.mark.parametrize("bits", [0, 8, 16, 24])
def test_decode_of_encode_is_exact_for_every_multiple_of_the_resolution(bits: int) -> None:
    """Catrina & Saxena 2010 encoding: round(x 2^f) in two's complement. Every multiple of
    2^-f below 2^(53-f) must survive the round trip, negatives and the extremes included
    (CrypTen returns some negative values off by exactly 1.0: ../shared/PEERS.md)."""
    fp = FixedPoint(bits)
    rng = np.random.default_rng(bits)
    top = 2 ** (53 - bits) * fp.scale - 1
    integers = rng.integers(-top, top, size=10_000)
    integers[:6] = [0, 1, -1, top, -top, -(fp.scale // 2 or 1)]
    values = np.ldexp(integers.astype(np.float64), -bits)
    np.testing.assert_array_equal(fp.decode(fp.encode(values)), values)
    np.testing.assert_array_equal(fp.encode(values).view(np.int64), integers)


def test_encoding_rounds_half_to_even_and_refuses_out_of_range_values() -> None:
    fp = FixedPoint(2)
    np.testing.assert_array_equal(
        fp.encode([0.125, 0.375, -0.125, -0.375]).view(np.int64), [0, 2, 0, -2]
    )
    assert FixedPoint(16).max_abs == 2.0**46
    with pytest.raises(PrivacyError, match=r"values must be in \(-2\*\*46, 2\*\*46\) .* got -7"):
        FixedPoint(16).encode([1.0, -(2.0**46) - 7])
    with pytest.raises(PrivacyError, match="values must be finite"):
        FixedPoint().encode([np.nan])
    with pytest.raises(PrivacyError, match=r"fractional_bits must be an integer in \[0, 30\]"):
        FixedPoint(31)
    with pytest.raises(PrivacyError, match="values must be a uint64 numpy array"):
        FixedPoint().decode(np.zeros(3, dtype=np.int64))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ((3, 5), (5, 4)),
        ((1, 1), (1, 1)),
        ((64, 512), (512, 8)),  # the longest exact inner dimension
        ((7, 1300), (1300, 3)),  # chunked
        ((2, 5, 9), (9, 6)),  # batch broadcasting
        ((9,), (9, 4)),
    ],
)
def test_limb_matmul_equals_the_integer_loop_modulo_2_64(
    left: tuple[int, ...], right: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(sum(left) + sum(right))
    a = rng.integers(0, 2**64, size=left, dtype=np.uint64)
    b = rng.integers(0, 2**64, size=right, dtype=np.uint64)
    a.flat[0] = b.flat[0] = 2**64 - 1  # the largest limbs
    np.testing.assert_array_equal(ring_matmul(a, b), ring_matmul_naive(a, b))
