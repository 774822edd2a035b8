"""Random sources: the primitives every sampler builds on.

Seeded tests have false-alarm rate 1e-3; OS CSPRNG tests 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from privet.dp import GeneratorRandom, OsRandom, RandomSource
from privet.dp.randomness import resolve_rng

SOURCES = {"os": OsRandom, "seeded": lambda: GeneratorRandom(np.random.default_rng(31))}
THRESHOLD = {"os": 1e-6, "seeded": 1e-3}


@pytest.fixture(params=sorted(SOURCES))
def source_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(name: str) -> RandomSource:
    return SOURCES[name]()  # type: ignore[no-any-return]


def test_uniform_is_open_interval_and_uniform(source_name: str) -> None:
    draws = make(source_name).uniform(100_000)
    assert draws.min() > 0.0
    assert draws.max() < 1.0
    assert stats.kstest(draws, "uniform").pvalue > THRESHOLD[source_name]


def test_normal_and_exponential(source_name: str) -> None:
    source = make(source_name)
    assert stats.kstest(source.standard_normal(100_001), "norm").pvalue > THRESHOLD[source_name]
    assert (
        stats.kstest(source.standard_exponential(100_000), "expon").pvalue > THRESHOLD[source_name]
    )
    assert stats.kstest(source.standard_gumbel(100_000), "gumbel_r").pvalue > THRESHOLD[source_name]


@pytest.mark.parametrize("high", [1, 2, 3, 7, 1000, 2**32, 2**32 + 1, 2**40 + 3])
def test_integers_are_uniform_and_in_range(source_name: str, high: int) -> None:
    draws = make(source_name).integers(high, 60_000)
    assert draws.dtype == np.int64
    assert draws.min() >= 0
    assert draws.max() < high
    if high <= 1000:
        counts = np.bincount(draws, minlength=high)
        assert high == 1 or stats.chisquare(counts).pvalue > THRESHOLD[source_name]


@pytest.mark.parametrize("high", [1, 5, 2**64 + 1, 10**30])
def test_randbelow_big_integers(source_name: str, high: int) -> None:
    source = make(source_name)
    draws = [source.randbelow(high) for _ in range(2000)]
    assert all(0 <= d < high for d in draws)
    if high == 5:
        assert stats.chisquare(np.bincount(draws, minlength=5)).pvalue > THRESHOLD[source_name]
    if high > 2**64:
        # The top bit of a uniform value below 10**30 is set about half the time or more.
        assert max(draws) > high // 2


def test_bad_arguments(source_name: str) -> None:
    source = make(source_name)
    with pytest.raises(ValueError, match="high must be"):
        source.integers(0, 3)
    with pytest.raises(ValueError, match="high must be >= 1"):
        source.randbelow(0)


def test_resolve_rng() -> None:
    assert isinstance(resolve_rng(None, release=True), OsRandom)
    assert resolve_rng(None, release=True).is_cryptographic
    generator = np.random.default_rng(0)
    wrapped = resolve_rng(generator, release=False)
    assert isinstance(wrapped, GeneratorRandom)
    assert wrapped.generator is generator
    with pytest.raises(TypeError, match="rng must be None"):
        resolve_rng(42, release=False)  # type: ignore[arg-type]


def test_seeded_sources_reproduce() -> None:
    a = GeneratorRandom(np.random.default_rng(5)).uniform(10)
    b = GeneratorRandom(np.random.default_rng(5)).uniform(10)
    assert np.array_equal(a, b)
