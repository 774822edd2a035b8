"""Fixed-point encoding (privet.he.encoding): exact rounding, bounds, overflow refused."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privet.errors import PrivacyError
from privet.he.encoding import (
    check_frac_bits,
    check_within,
    decode_fixed,
    encode_bound,
    encode_fixed,
    from_residue,
)

finite = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(finite, max_size=20), frac_bits=st.integers(0, 80))
def test_encoding_rounds_half_to_even_exactly(values: list[float], frac_bits: int) -> None:
    ints, shape = encode_fixed(np.array(values, dtype=np.float64), frac_bits)
    assert shape == (len(values),)
    # The exact reference: the rational x 2^f rounded half to even (Python's round).
    assert ints == [round(Fraction(x) * 2**frac_bits) for x in values]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=20), frac_bits=st.integers(0, 60))
def test_decoding_is_within_half_a_step(values: list[float], frac_bits: int) -> None:
    ints, shape = encode_fixed(np.array(values), frac_bits)
    decoded = decode_fixed(ints, frac_bits, shape)
    step = 2.0**-frac_bits
    for x, y in zip(values, decoded.tolist(), strict=True):
        assert abs(x - y) <= step / 2 + 4 * math.ulp(max(abs(x), 1.0))


def test_boundary_values_round_trip() -> None:
    values = np.array([0.0, -0.0, 0.5, -0.5, 1.5, 2.5, 2.0**-33, -(2.0**-33), 1e300, -1e300])
    ints, shape = encode_fixed(values, 32)
    # Half steps round to even: 2^-33 is half of 2^-32 and rounds to 0.
    assert ints[:8] == [0, 0, 2**31, -(2**31), 3 * 2**31, 5 * 2**31, 0, 0]
    assert ints[8] == int(1e300) << 32
    np.testing.assert_array_equal(decode_fixed(ints, 32, shape)[:6], values[:6])
    assert decode_fixed(ints, 32, shape)[8] == 1e300


def test_integer_arrays_are_exact() -> None:
    values = np.array([[-(2**62), 2**62], [0, -1]], dtype=np.int64)
    ints, shape = encode_fixed(values, 10)
    assert ints == [-(2**72), 2**72, 0, -1024]
    assert shape == (2, 2)


def test_bad_values_are_refused() -> None:
    with pytest.raises(PrivacyError, match="values must be finite, got NaN or infinity"):
        encode_fixed(np.array([1.0, np.nan]), 8)
    with pytest.raises(PrivacyError, match="values must be finite"):
        encode_fixed([np.inf], 8)
    with pytest.raises(PrivacyError, match="values must be an integer or float array, got dtype"):
        encode_fixed(np.array(["a"]), 8)
    with pytest.raises(PrivacyError, match=r"values must lie within the declared bound"):
        encode_fixed([1.0, 2.0], 4, bound=16)  # 2.0 * 2^4 = 32 > 16
    assert encode_fixed([1.0, -1.0], 4, bound=16)[0] == [16, -16]  # the bound itself is inside


def test_bounds_are_rounded_up_and_checked() -> None:
    assert encode_bound(1.0, 32) == 2**32
    assert encode_bound(0.1, 4) == 2  # 0.1 * 16 = 1.6 -> 2
    assert encode_bound(3, 0) == 3
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(PrivacyError, match="bound must be finite and > 0"):
            encode_bound(bad, 8)
    with pytest.raises(PrivacyError, match="bound must be a real number, got str"):
        encode_bound("1", 8)
    with pytest.raises(PrivacyError, match="frac_bits must be in \\[0, 1024\\], got 1025"):
        check_frac_bits(1025)
    with pytest.raises(PrivacyError, match="frac_bits must be an int, got float"):
        check_frac_bits(8.0)


def test_check_within_names_the_bound() -> None:
    check_within(10, 10, "the sum")
    with pytest.raises(PrivacyError, match=r"the sum must stay within .* got a bound of 11"):
        check_within(11, 10, "the sum")
    with pytest.raises(
        PrivacyError, match=r"max_int = n//3 - 1 \(2\^100\.0\), got a bound of 2\^101\.0"
    ):
        check_within(2**101, 2**100, "the product")


def test_residues_outside_the_range_are_errors_not_wraps() -> None:
    n = 1000003
    max_int = n // 3 - 1
    assert from_residue(5, n, max_int, 10) == 5
    assert from_residue(n - 5, n, max_int, 10) == -5
    assert from_residue(max_int, n, max_int, max_int) == max_int
    assert from_residue(n - max_int, n, max_int, max_int) == -max_int
    for residue in (max_int + 1, n // 2, n - max_int - 1):
        with pytest.raises(PrivacyError, match="overflow band"):
            from_residue(residue, n, max_int, max_int)
    with pytest.raises(
        PrivacyError, match="must be within its tracked bound 10, got one of magnitude 11"
    ):
        from_residue(n - 11, n, max_int, 10)


def test_decoding_refuses_values_beyond_float64() -> None:
    with pytest.raises(PrivacyError, match="decrypted values must fit float64"):
        decode_fixed([2**1100], 10, (1,))
