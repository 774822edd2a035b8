"""DP-SGD: clipping, noise, accounting, the ledger, Poisson batches, the validator.

Statistical tests use fixed seeds and state their false-alarm rate; tests on
the cryptographic noise (unseedable) use 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from privet import BudgetExceeded, PrivacyError
from privet.dp import Ledger, dpsgd_event, epsilon
from privet.train import (
    DPDataLoader,
    DPOptimizer,
    GradSampleModule,
    ModuleValidator,
    PrivacyEngine,
)

TINY_NOISE = 1e-9  # noise_multiplier must be > 0; this makes the noise ~1e-9 C


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mlp() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(11)
    return torch.randn(n, 5, generator=generator), torch.randint(0, 3, (n,), generator=generator)


def naive_clipped_mean(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bound: float) -> list:  # type: ignore[type-arg]
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i in range(x.shape[0]):
        loss = nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, params)
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        factor = min(1.0, bound / (float(norm) + 1e-6))
        total = [t + factor * g for t, g in zip(total, grads, strict=True)]
    return [t / x.shape[0] for t in total]


def private_step(model: nn.Module, max_grad_norm: float | list[float], **options) -> DPOptimizer:  # type: ignore[no-untyped-def]
    wrapped = GradSampleModule(model)
    optimizer = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.0),
        module=wrapped,
        noise_multiplier=options.pop("noise_multiplier", TINY_NOISE),
        max_grad_norm=max_grad_norm,
        expected_batch_size=16,
        noise_generator=options.pop("noise_generator", seeded()),
        **options,
    )
    x, y = batch()
    optimizer.zero_grad()
    nn.functional.cross_entropy(wrapped(x), y).backward()
    optimizer.step()
    return optimizer


@pytest.mark.parametrize("bound", [0.05, 0.5, 100.0])
def test_flat_clipping_matches_a_naive_loop(bound: float) -> None:
    model = mlp()
    expected = naive_clipped_mean(model, *batch(), bound)
    private_step(model, bound)
    for param, value in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(param.grad, value, rtol=1e-5, atol=1e-6)


def test_per_layer_clipping_matches_a_naive_loop() -> None:
    model = mlp()
    bounds = [0.1, 0.2, 0.05, 0.3]
    params = list(model.parameters())
    x, y = batch()
    expected = [torch.zeros_like(p) for p in params]
    for i in range(16):
        grads = torch.autograd.grad(
            nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), params
        )
        for j, (g, c) in enumerate(zip(grads, bounds, strict=True)):
            expected[j] += min(1.0, c / (float(g.norm()) + 1e-6)) * g / 16
    optimizer = private_step(model, bounds)
    assert optimizer.max_grad_norm == pytest.approx(math.sqrt(sum(c * c for c in bounds)))
    for param, value in zip(params, expected, strict=True):
        torch.testing.assert_close(param.grad, value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("secure", [False, True])
def test_noise_has_the_promised_standard_deviation(secure: bool) -> None:
    """KS test of grad * B / (sigma C) against N(0, 1): seeded rate 1e-3, secure rate 1e-6."""
    model = nn.Linear(200, 50)
    wrapped = GradSampleModule(model)
    generator = None if secure else seeded(5)
    optimizer = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.0),
        module=wrapped,
        noise_multiplier=1.3,
        max_grad_norm=0.7,
        expected_batch_size=10,
        noise_generator=generator,
    )
    optimizer.zero_grad()
    (wrapped(torch.randn(10, 200)) * 0.0).sum().backward()  # zero gradients: p.grad is noise
    optimizer.step()
    assert model.weight.grad is not None
    standardized = (model.weight.grad * 10 / (1.3 * 0.7)).flatten().numpy()
    assert stats.kstest(standardized, "norm").pvalue > (1e-6 if secure else 1e-3)


def test_optimizer_must_hold_the_model_parameters() -> None:
    model = mlp()
    with pytest.raises(PrivacyError, match="exactly the model's trainable parameters"):
        DPOptimizer(
            torch.optim.SGD(list(model.parameters())[:2], lr=0.1),
            module=GradSampleModule(model),
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            expected_batch_size=4,
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"noise_multiplier": 0.0}, "noise_multiplier must be > 0, got 0.0"),
        ({"noise_multiplier": -1.0}, "noise_multiplier must be > 0, got -1.0"),
        ({"max_grad_norm": 0.0}, "max_grad_norm must be > 0, got 0.0"),
        ({"max_grad_norm": [1.0], "clipping": "per_layer"}, "one bound per trainable parameter"),
        ({"max_grad_norm": [1.0]}, "needs max_grad_norm to be one number"),
        ({"poisson_sampling": False}, "poisson_sampling must be True"),
        ({"clipping": "per_layer"}, "needs max_grad_norm to be a list"),
        ({"clipping": "adaptive"}, "clipping must be one of"),
    ],
)
def test_make_private_rejects_bad_input(options: dict, message: str) -> None:  # type: ignore[type-arg]
    model = mlp()
    arguments = {"noise_multiplier": 1.0, "max_grad_norm": 1.0} | options
    loader = DataLoader(TensorDataset(*batch(64)), batch_size=8)
    with pytest.raises(PrivacyError, match=message):
        PrivacyEngine().make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=loader,
            **arguments,
        )


def train(engine: PrivacyEngine, epochs: int = 1, optimizer_class=torch.optim.SGD, **options):  # type: ignore[no-untyped-def]
    model = mlp()
    loader = DataLoader(TensorDataset(*batch(64)), batch_size=8)
    model, optimizer, loader = engine.make_private(
        module=model,
        optimizer=optimizer_class(model.parameters(), lr=0.05),
        data_loader=loader,
        noise_multiplier=options.pop("noise_multiplier", 1.1),
        max_grad_norm=1.0,
        noise_generator=seeded(1),
        sampler_rng=np.random.default_rng(2),
        **options,
    )
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model, optimizer, loader


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_get_epsilon_accounts_for_every_step(accountant: str) -> None:
    engine = PrivacyEngine(accountant)  # type: ignore[arg-type]
    _, optimizer, loader = train(engine, epochs=2)
    assert engine.steps == optimizer.steps_taken == 2 * len(loader) == 16
    expected = epsilon(dpsgd_event(1.1, loader.sample_rate, 16), 1e-5, accountant)  # type: ignore[arg-type]
    assert engine.get_epsilon(1e-5) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("optimizer_class", [torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW])
def test_common_optimizers_train(optimizer_class: type) -> None:
    model, optimizer, _ = train(PrivacyEngine(), epochs=1, optimizer_class=optimizer_class)
    assert optimizer.steps_taken == 8
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_ledger_refuses_a_step_before_the_parameters_change() -> None:
    three, four = (epsilon(dpsgd_event(1.1, 0.125, k), 1e-5, "rdp") for k in (3, 4))
    ledger = Ledger((three + four) / 2, 1e-5, "rdp")  # room for three steps, not four
    engine = PrivacyEngine("rdp", ledger=ledger)
    model = mlp()
    loader = DataLoader(TensorDataset(*batch(64)), batch_size=8)
    model, optimizer, loader = engine.make_private(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        data_loader=loader,
        noise_multiplier=1.1,
        max_grad_norm=1.0,
        noise_generator=seeded(1),
    )
    x, y = batch(8)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    with pytest.raises(BudgetExceeded):
        optimizer.step()
    for old, param in zip(before, model.parameters(), strict=True):
        assert torch.equal(old, param)
        assert param.grad is None  # the non-private gradient does not linger
    assert len(ledger.history()) == 3
    assert engine.steps == 3
    assert ledger.spent() == pytest.approx(engine.get_epsilon(1e-5), rel=1e-9)


def test_make_private_with_epsilon_lands_within_its_target() -> None:
    engine = PrivacyEngine("rdp")
    model = mlp()
    model, optimizer, loader = engine.make_private_with_epsilon(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
        data_loader=DataLoader(TensorDataset(*batch(64)), batch_size=8),
        target_epsilon=2.0,
        target_delta=1e-5,
        epochs=3,
        max_grad_norm=1.0,
        noise_generator=seeded(0),
    )
    planned = epsilon(
        dpsgd_event(optimizer.noise_multiplier, loader.sample_rate, 3 * len(loader)), 1e-5, "rdp"
    )
    assert 0.95 * 2.0 <= planned <= 2.0


def test_gradient_accumulation_equals_one_large_batch() -> None:
    """Two virtual steps of 8 examples give the gradient of one step of 16 (same noise seed)."""
    x, y = batch(16)
    results = []
    for halves in (1, 2):
        model = mlp()
        wrapped = GradSampleModule(model)
        optimizer = DPOptimizer(
            torch.optim.SGD(model.parameters(), lr=0.0),
            module=wrapped,
            noise_multiplier=0.5,
            max_grad_norm=0.3,
            expected_batch_size=16,
            noise_generator=seeded(9),
        )
        for part in torch.arange(16).chunk(halves):
            optimizer.zero_grad()
            nn.functional.cross_entropy(wrapped(x[part]), y[part]).backward()
            # With mean reduction each half's loss is its own mean: rescale to the sum.
            optimizer.signal_skip_step(do_skip=part[-1] != 15)
            optimizer.step()
        results.append([p.grad.clone() for p in model.parameters()])  # type: ignore[union-attr]
    for one, two in zip(*results, strict=True):
        torch.testing.assert_close(one, two, rtol=1e-5, atol=1e-7)


def test_poisson_batches_have_binomial_sizes() -> None:
    """Mean and variance of 400 batch sizes vs Binomial(1000, 0.05): within 5 standard errors."""
    dataset = TensorDataset(torch.arange(1000.0))
    loader = DPDataLoader(dataset, sample_rate=0.05, steps=400, rng=np.random.default_rng(4))
    sizes = np.array([len(xs) for (xs,) in loader])
    assert len(sizes) == 400
    assert abs(sizes.mean() - 50) < 5 * math.sqrt(47.5 / 400)
    assert sizes.var() == pytest.approx(47.5, rel=0.25)
    assert loader.expected_batch_size == 50


def test_empty_batches_keep_their_shape_and_still_step() -> None:
    dataset = TensorDataset(torch.randn(20, 5), torch.randint(0, 3, (20,)))
    loader = DPDataLoader(dataset, sample_rate=1e-6, steps=3, rng=np.random.default_rng(0))
    model = mlp()
    wrapped = GradSampleModule(model)
    optimizer = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1),
        module=wrapped,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        expected_batch_size=1,
        noise_generator=seeded(0),
    )
    before = [p.detach().clone() for p in model.parameters()]
    for x, y in loader:
        assert x.shape == (0, 5)
        assert y.shape == (0,)
        optimizer.zero_grad()
        nn.functional.cross_entropy(wrapped(x), y, reduction="sum").backward()
        optimizer.step()  # noise only
    assert optimizer.steps_taken == 3
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_from_data_loader_keeps_expected_size_and_epoch_length() -> None:
    loader = DataLoader(TensorDataset(torch.randn(100, 2)), batch_size=10, shuffle=True)
    private = DPDataLoader.from_data_loader(loader, rng=np.random.default_rng(0))
    assert private.sample_rate == 0.1
    assert len(private) == 10
    assert private.expected_batch_size == 10


def test_validator_refuses_batch_norm_and_fix_replaces_it() -> None:
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    problems = ModuleValidator.validate(model)
    assert len(problems) == 1
    assert "BatchNorm2d" in problems[0]
    with pytest.raises(PrivacyError, match="GroupNorm"):
        ModuleValidator.validate(model, strict=True)
    fixed = ModuleValidator.fix(model)
    assert isinstance(fixed[1], nn.GroupNorm)
    assert fixed[1].num_groups == 8
    assert ModuleValidator.validate(fixed) == []
    assert isinstance(model[1], nn.BatchNorm2d)  # the original is untouched
    with pytest.raises(PrivacyError, match="BatchNorm2d"):
        PrivacyEngine().make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=DataLoader(TensorDataset(torch.randn(8, 1, 5, 5)), batch_size=4),
            noise_multiplier=1.0,
            max_grad_norm=1.0,
        )


def test_batch_memory_manager_matches_whole_batches() -> None:
    """Physical batches of 3 give the same private run as whole Poisson batches (same seeds)."""
    from privet.train import BatchMemoryManager

    results = []
    for physical in (None, 3):
        engine = PrivacyEngine("rdp")
        model = mlp()
        model, optimizer, loader = engine.make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=DataLoader(TensorDataset(*batch(64)), batch_size=8),
            noise_multiplier=1.0,
            max_grad_norm=0.5,
            noise_generator=seeded(4),
            sampler_rng=np.random.default_rng(6),
        )
        if physical is None:
            batches = iter(loader)
            for x, y in batches:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
        else:
            with BatchMemoryManager(
                data_loader=loader, max_physical_batch_size=physical, optimizer=optimizer
            ) as physical_batches:
                for x, y in physical_batches:
                    assert len(x) <= physical
                    optimizer.zero_grad()
                    nn.functional.cross_entropy(model(x), y).backward()
                    optimizer.step()
        assert engine.steps == len(loader) == 8  # one accounted step per logical batch
        results.append([p.detach().clone() for p in model.parameters()])
    for whole, split in zip(*results, strict=True):
        torch.testing.assert_close(whole, split, rtol=1e-5, atol=1e-6)
