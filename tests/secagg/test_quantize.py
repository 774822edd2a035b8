"""Fixed-point encoding for secure aggregation: accuracy, unbiasedness, no wrap-around.

References
----------
* Scheme (clip, scale, round, two's complement mod 2^k, modulus chosen so the
  n-client sum never wraps): Kairouz, Liu and Steinke, ICML 2021, §4;
  Bonawitz et al., CCS 2017, §4.
* Expected values come from a naive Python-int encoder/decoder written below
  (round-half-to-even is Python's ``round``; signed reading of a residue ``v``
  is ``v - 2^k`` when ``v >= 2^(k-1)``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from privet.errors import PrivacyError
from privet.secagg.masking import apply_masks, expand_mask
from privet.secagg.quantize import Quantizer

Z_ALPHA = 3.2905  # two-sided normal quantile for a false-alarm rate of 1e-3


def naive_encode(values: np.ndarray, q: Quantizer) -> list[int]:
    c = q.clip_bound
    return [round(min(max(float(x), -c), c) * q.scale) % 2**q.modulus_bits for x in values]


def naive_decode(total: list[int], q: Quantizer) -> list[float]:
    k = q.modulus_bits
    return [(v - 2**k if v >= 2 ** (k - 1) else v) / q.scale for v in total]


def encode_all(q: Quantizer, vectors: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [q.encode(v, rng) for v in vectors]


@pytest.mark.parametrize("k", [16, 32, 64])
def test_deterministic_encode_and_decode_match_naive(k: int) -> None:
    n = 5
    q = Quantizer(2.0, k, (2 ** (k - 1) - 1) // (n * 2) / 2.0 / 3, n)
    rng = np.random.default_rng(1)
    vectors = [rng.uniform(-2.5, 2.5, size=200) for _ in range(n)]
    encoded = [q.encode(v) for v in vectors]
    for vector, enc in zip(vectors, encoded, strict=True):
        assert enc.dtype == np.uint64
        assert enc.tolist() == naive_encode(vector, q)
    total = q.sum_mod(encoded)
    columns = zip(*(naive_encode(v, q) for v in vectors), strict=True)
    naive_total = [sum(column) % 2**k for column in columns]
    assert total.tolist() == naive_total
    np.testing.assert_allclose(q.decode_sum(total, n), naive_decode(naive_total, q), rtol=1e-15)


@pytest.mark.parametrize("stochastic", [False, True])
def test_decoded_sum_is_close_to_the_float_sum(stochastic: bool) -> None:
    n, scale = 10, 2.0**12
    q = Quantizer(1.0, 32, scale, n, stochastic)
    rng = np.random.default_rng(2)
    vectors = [rng.uniform(-1.0, 1.0, size=5000) for _ in range(n)]
    decoded = q.decode_sum(q.sum_mod(encode_all(q, vectors, 3)), n)
    error = np.abs(decoded - np.sum(vectors, axis=0))
    # Per coordinate, rounding moves each client by < 1 level (<= 1/2 deterministically).
    bound = n * (1.0 if stochastic else 0.5) / scale
    assert error.max() <= bound
    assert error.max() > bound / 4  # the bound is close to tight: the check has teeth


@pytest.mark.parametrize("value", [0.3, -1.7, 2.0 / 3.0])
def test_stochastic_rounding_is_unbiased(value: float) -> None:
    # Scale 1, so each encoding is floor(value) or floor(value) + 1 with
    # P(up) = frac(value); seed 4, false-alarm rate 1e-3 (two-sided z test).
    draws = 200_000
    q = Quantizer(3.0, 16, 1.0, 1, stochastic=True)
    encoded = q.encode(np.full(draws, value), np.random.default_rng(4))
    levels = q.decode_sum(encoded, 1)
    assert set(np.unique(levels)) == {math.floor(value), math.floor(value) + 1}
    frac = value - math.floor(value)
    standard_error = math.sqrt(frac * (1 - frac) / draws)
    assert abs(levels.mean() - value) < Z_ALPHA * standard_error
    # Deterministic rounding of the same value is biased by a whole fraction.
    deterministic = Quantizer(3.0, 16, 1.0, 1).decode_sum(
        Quantizer(3.0, 16, 1.0, 1).encode(np.full(draws, value)), 1
    )
    assert abs(deterministic.mean() - value) > 100 * standard_error


def test_stochastic_rounding_uses_the_given_rng() -> None:
    q = Quantizer(1.0, 32, 10.0, 1, stochastic=True)
    values = np.linspace(-1, 1, 1000)
    first = q.encode(values, np.random.default_rng(5))
    np.testing.assert_array_equal(first, q.encode(values, np.random.default_rng(5)))
    assert not np.array_equal(first, q.encode(values, np.random.default_rng(6)))
    os_random = q.decode_sum(q.encode(values), 1)  # rng=None: the OS CSPRNG
    assert np.all(np.abs(os_random - values) < 1 / q.scale)


def test_clipping_is_applied() -> None:
    q = Quantizer(1.5, 16, 100.0, 4)
    values = np.array([-9.0, -1.5, -0.25, 0.0, 0.25, 1.5, 9.0])
    decoded = q.decode_sum(q.encode(values), 1)
    np.testing.assert_array_equal(decoded, [-1.5, -1.5, -0.25, 0.0, 0.25, 1.5, 1.5])


def test_negative_values_are_twos_complement() -> None:
    q = Quantizer(100.0, 8, 1.0, 1)
    assert q.encode(np.array([-1.0, -2.0, -100.0, 5.0])).tolist() == [255, 254, 156, 5]


@pytest.mark.parametrize("k", [8, 16, 33, 63, 64])
@pytest.mark.parametrize("stochastic", [False, True])
def test_extreme_values_from_all_clients_do_not_wrap(k: int, stochastic: bool) -> None:
    n = 3
    q = Quantizer.with_max_scale(0.75, k, n, stochastic=stochastic)
    # Float spacing near 2^62 is 2^10, so the largest safe level may sit a few ulps below.
    levels = q.max_level
    assert (2 ** (k - 1) - 1) // n * (1 - 1e-12) <= levels <= (2 ** (k - 1) - 1) // n
    extremes = np.array([0.75, -0.75, 0.75, 10.0, -10.0])
    vectors = [extremes, extremes, extremes * np.array([1, 1, -1, 1, 1])]
    total = q.sum_mod(encode_all(q, vectors, 7))
    expected_levels = [n * levels, -n * levels, levels, n * levels, -n * levels]
    assert total.tolist() == [v % 2**k for v in expected_levels]
    decoded = q.decode_sum(total, n)
    np.testing.assert_allclose(decoded, np.array(expected_levels) / q.scale, rtol=1e-15)
    assert decoded[0] == pytest.approx(n * 0.75, rel=1e-9)
    assert decoded[1] == pytest.approx(-n * 0.75, rel=1e-9)


def test_k64_sum_wraps_in_uint64_and_decodes() -> None:
    n = 1000
    q = Quantizer(1.0, 64, 2.0**50, n)
    rng = np.random.default_rng(8)
    vectors = [rng.uniform(-1.0, 1.0, size=64) for _ in range(n)]
    encoded = [q.encode(v) for v in vectors]
    assert any(int(e.max()) >= 2**63 for e in encoded)  # negatives use the top half
    decoded = q.decode_sum(q.sum_mod(encoded), n)
    np.testing.assert_allclose(decoded, np.sum(vectors, axis=0), atol=n * 0.5 / q.scale + 1e-9)


def test_constructor_refuses_parameters_that_could_wrap() -> None:
    # 2 * ceil(1.0 * 2**14) = 2**15 = 2**(16 - 1): the sum 2**15 would read as -2**15.
    message = (
        r"^num_clients \* ceil\(clip_bound \* scale\) must be < 2\*\*\(modulus_bits - 1\) = "
        r"32768 so that the sum of 2 clients cannot wrap modulo 2\*\*16, "
        r"got 2 \* ceil\(1.0 \* 16384.0\) = 32768$"
    )
    with pytest.raises(PrivacyError, match=message):
        Quantizer(1.0, 16, 2.0**14, 2)
    assert Quantizer(1.0, 16, 2.0**14 - 1, 2).max_level == 2**14 - 1  # the boundary is allowed
    # Rounding up counts: 0.5 * 3 levels rounds to 2, and 2 clients * 2 >= 2**(3 - 1).
    with pytest.raises(PrivacyError, match=r"got 2 \* ceil\(0.5 \* 3.0\) = 4$"):
        Quantizer(0.5, 3, 3.0, 2)
    with pytest.raises(PrivacyError, match=r"must be < 2\*\*\(modulus_bits - 1\) = 1 "):
        Quantizer(1.0, 1, 1.0, 1)
    with pytest.raises(PrivacyError, match=r"^clip_bound \* scale must be finite, got inf$"):
        Quantizer(1e300, 64, 1e300, 1)


def test_masked_encodings_unmask_to_the_sum() -> None:
    # Bonawitz et al. 2017 §4 end to end, no dropouts: the server removes the self masks.
    n, k, length = 5, 32, 100
    q = Quantizer(1.0, k, 2.0**16, n)
    rng = np.random.default_rng(9)
    seeds: dict[int, dict[int, bytes]] = {i: {} for i in range(n)}
    for i in range(n):
        for j in range(i + 1, n):
            seeds[i][j] = seeds[j][i] = rng.bytes(32)
    self_seeds = [rng.bytes(32) for _ in range(n)]
    vectors = [rng.uniform(-1, 1, size=length) for _ in range(n)]
    masked = [
        apply_masks(q.encode(v), i, self_seeds[i], seeds[i], k) for i, v in enumerate(vectors)
    ]
    total = q.sum_mod(masked)
    total -= q.sum_mod([expand_mask(b, length, k) for b in self_seeds])
    total &= np.uint64(2**k - 1)
    decoded = q.decode_sum(total, n)
    np.testing.assert_allclose(decoded, np.sum(vectors, axis=0), atol=n * 0.5 / q.scale)


def test_quantizer_is_frozen() -> None:
    q = Quantizer(1.0, 32, 10.0, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.scale = 20.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clip_bound": 0.0}, r"^clip_bound must be a finite number > 0, got 0.0$"),
        ({"clip_bound": -1.0}, r"^clip_bound must be a finite number > 0, got -1.0$"),
        ({"clip_bound": math.nan}, r"^clip_bound must be a finite number > 0, got nan$"),
        ({"clip_bound": True}, r"^clip_bound must be a finite number > 0, got True$"),
        ({"scale": math.inf}, r"^scale must be a finite number > 0, got inf$"),
        ({"scale": "2"}, r"^scale must be a finite number > 0, got '2'$"),
        ({"modulus_bits": 0}, r"^modulus_bits must be an integer in \[1, 64\], got 0$"),
        ({"modulus_bits": 65}, r"^modulus_bits must be an integer in \[1, 64\], got 65$"),
        ({"modulus_bits": 32.0}, r"^modulus_bits must be an integer in \[1, 64\], got 32.0$"),
        ({"num_clients": 0}, r"^num_clients must be an integer >= 1, got 0$"),
        ({"num_clients": True}, r"^num_clients must be an integer >= 1, got True$"),
        ({"stochastic": 1}, r"^stochastic must be a bool, got 1$"),
    ],
)
def test_constructor_bad_inputs(kwargs: dict[str, object], message: str) -> None:
    params: dict[str, object] = {
        "clip_bound": 1.0,
        "modulus_bits": 32,
        "scale": 10.0,
        "num_clients": 2,
        "stochastic": False,
    }
    params.update(kwargs)
    with pytest.raises(PrivacyError, match=message):
        Quantizer(**params)  # type: ignore[arg-type]


def test_with_max_scale_bad_inputs() -> None:
    with pytest.raises(PrivacyError, match=r"^clip_bound must be a finite number > 0, got -2$"):
        Quantizer.with_max_scale(-2, 32, 2)
    with pytest.raises(
        PrivacyError, match=r"^modulus_bits must be an integer in \[2, 64\], got 1$"
    ):
        Quantizer.with_max_scale(1.0, 1, 2)
    with pytest.raises(PrivacyError, match=r"^num_clients must be an integer >= 1, got 0$"):
        Quantizer.with_max_scale(1.0, 32, 0)
    with pytest.raises(
        PrivacyError, match=r"^num_clients must be < 2\*\*\(modulus_bits - 1\) = 8 .*, got 9$"
    ):
        Quantizer.with_max_scale(1.0, 4, 9)


def test_encode_decode_sum_mod_bad_inputs() -> None:
    q = Quantizer(1.0, 8, 10.0, 3)
    with pytest.raises(PrivacyError, match=r"^values must be finite, got NaN or infinity$"):
        q.encode(np.array([0.0, np.nan]))
    with pytest.raises(PrivacyError, match=r"^count must be in \[1, 3\], got 4$"):
        q.decode_sum(np.zeros(2, dtype=np.uint64), 4)
    with pytest.raises(PrivacyError, match=r"^count must be in \[1, 3\], got 0$"):
        q.decode_sum(np.zeros(2, dtype=np.uint64), 0)
    with pytest.raises(PrivacyError, match=r"^count must be an integer in \[1, 3\], got 2.0$"):
        q.decode_sum(np.zeros(2, dtype=np.uint64), 2.0)  # type: ignore[arg-type]
    with pytest.raises(
        PrivacyError, match=r"^total must be a uint64 numpy array, got int64 array$"
    ):
        q.decode_sum(np.zeros(2, dtype=np.int64), 1)
    with pytest.raises(PrivacyError, match=r"^total must be in \[0, 2\*\*8\), got maximum 300$"):
        q.decode_sum(np.array([1, 300], dtype=np.uint64), 1)
    with pytest.raises(PrivacyError, match=r"^arrays must hold at least one array, got none$"):
        q.sum_mod([])
    with pytest.raises(PrivacyError, match=r"^arrays\[1\] must have shape \(2,\), got \(3,\)$"):
        q.sum_mod([np.zeros(2, dtype=np.uint64), np.zeros(3, dtype=np.uint64)])
    with pytest.raises(PrivacyError, match=r"^arrays\[0\] must be a uint64 numpy array, got list$"):
        q.sum_mod([[0, 1]])  # type: ignore[list-item]
