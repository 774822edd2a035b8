"""DP-SGD's Gaussian noise: the cryptographic Box–Muller stream and its use by the optimizer.

The cryptographic stream cannot be seeded, so every statistical test on it
uses a false-alarm rate of 1e-6 (with several such tests in the file, the
chance of a spurious failure stays below 1e-5).
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import nn

from privet.train import DPOptimizer, GaussianNoise, GradSampleModule
from privet.train.noise import _CHUNK_PAIRS

FALSE_ALARM = 1e-6
# Box–Muller with a 53-bit radius uniform: the largest radius is sqrt(-2 ln(2^-54)).
LARGEST_DRAW = math.sqrt(2 * 54 * math.log(2))


@pytest.mark.parametrize("count", [1, 2, 7, 2 * _CHUNK_PAIRS - 1, 2 * _CHUNK_PAIRS + 3])
def test_every_requested_draw_is_written(count: int) -> None:
    """Odd counts and counts across a chunk boundary: no slot left unwritten or reused."""
    noise = GaussianNoise()
    first = noise.sample(torch.Size([count]), 1.0, torch.float32)
    assert first.shape == (count,)
    assert torch.isfinite(first).all()
    if count > 100:
        # Two draws from one stream never repeat (a stuck or rewound counter would).
        second = noise.sample(torch.Size([count]), 1.0, torch.float32)
        assert not torch.equal(first, second)
        assert (first == 0).sum() < 5  # an unwritten slot would stay at its initial value


def test_draws_follow_the_standard_normal_across_chunks() -> None:
    """KS test over three chunks, and over the cosine and sine halves of one chunk apart."""
    count = 6 * _CHUNK_PAIRS + 11
    draws = GaussianNoise().sample(torch.Size([count]), 1.0, torch.float64).numpy()
    assert stats.kstest(draws, "norm").pvalue > FALSE_ALARM
    cosines, sines = draws[:_CHUNK_PAIRS], draws[_CHUNK_PAIRS : 2 * _CHUNK_PAIRS]
    assert stats.kstest(cosines, "norm").pvalue > FALSE_ALARM
    assert stats.kstest(sines, "norm").pvalue > FALSE_ALARM
    # r cos t and r sin t of one pair are independent N(0, 1): their correlation is ~N(0, 1/n).
    correlation = stats.pearsonr(cosines, sines)
    assert correlation.pvalue > FALSE_ALARM
    assert abs(draws).max() <= LARGEST_DRAW


def test_standard_deviation_scales_and_dtype_converts() -> None:
    draws = GaussianNoise().sample(torch.Size([400, 500]), 3.5, torch.float64)
    assert draws.shape == (400, 500)
    assert draws.dtype == torch.float64
    # Sample variance of n = 2e5 normals: (n-1) s^2 / sigma^2 ~ chi^2(n-1).
    n = draws.numel()
    statistic = (n - 1) * float(draws.var()) / 3.5**2
    tail = min(stats.chi2.cdf(statistic, n - 1), stats.chi2.sf(statistic, n - 1))
    assert 2 * tail > FALSE_ALARM


def test_each_parameter_gets_its_own_noise_from_one_flat_draw() -> None:
    """The optimizer draws the whole model's noise at once; no two parameters share draws."""
    model = nn.Sequential(nn.Linear(300, 40), nn.Linear(40, 40))
    wrapped = GradSampleModule(model)
    optimizer = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.0),
        module=wrapped,
        noise_multiplier=2.0,
        max_grad_norm=0.5,
        expected_batch_size=8,
    )
    optimizer.zero_grad()
    (wrapped(torch.randn(8, 300)) * 0.0).sum().backward()  # zero gradients: p.grad is noise
    optimizer.step()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    standardized = [g.flatten() * 8 / (2.0 * 0.5) for g in grads if g is not None]
    for values in standardized:
        assert stats.kstest(values.numpy(), "norm").pvalue > FALSE_ALARM
    # The two weight matrices' leading draws differ (views into one buffer, not aliases).
    assert not torch.equal(standardized[0][:40], standardized[2][:40])
    assert stats.kstest(torch.cat(standardized).numpy(), "norm").pvalue > FALSE_ALARM
