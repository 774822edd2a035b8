"""Regression tests for privacy defects an independent review found in privet.train.

Each once let a model leak more than the epsilon privet reported:
1. changing ``optimizer.noise_multiplier`` (a noise schedule) changed the noise
   but not the accounting;
2. a layer whose dimension 0 was not the batch (flattened tokens, time-major
   attention, ``batch_first=False``) was clipped per row, not per example;
3. two forward/backward passes before one step merged examples;
4. parameters added with ``add_param_group`` trained without clipping or noise;
5. leaving a BatchMemoryManager mid-batch carried clipped sums into a later step;
6. LazyBatchNorm passed the validator;
7. loading an old checkpoint into a used engine dropped steps from the history;
8. ``from_data_loader`` ignored a loader's subset sampler.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset

from privet import PrivacyError
from privet.dp import dpsgd_event, epsilon
from privet.train import (
    BatchMemoryManager,
    DPDataLoader,
    GradSampleModule,
    ModuleValidator,
    PrivacyEngine,
    load_checkpoint,
    save_checkpoint,
)

DATA = TensorDataset(torch.randn(64, 5), torch.arange(64) % 3)


def private(engine: PrivacyEngine, model: nn.Module | None = None, **options):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = model or nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    return engine.make_private(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        data_loader=options.pop("data_loader", DataLoader(DATA, batch_size=8)),
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        noise_generator=torch.Generator().manual_seed(0),
        sampler_rng=np.random.default_rng(0),
        **options,
    )


def one_step(model, optimizer, x, y) -> None:  # type: ignore[no-untyped-def]
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def test_a_noise_schedule_is_accounted_step_by_step() -> None:
    engine = PrivacyEngine("rdp")
    model, optimizer, loader = private(engine)
    x, y = DATA[:8]
    one_step(model, optimizer, x, y)
    optimizer.noise_multiplier = 0.5
    one_step(model, optimizer, x, y)
    q = loader.sample_rate
    expected = epsilon([dpsgd_event(1.0, q, 1), dpsgd_event(0.5, q, 1)], 1e-5, "rdp")
    assert engine.get_epsilon(1e-5) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(PrivacyError, match="noise_multiplier must be > 0, got 0"):
        optimizer.noise_multiplier = 0


def test_flattened_examples_are_refused() -> None:
    class Flattening(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 3)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            rows = self.embed(tokens.reshape(-1)).reshape(tokens.shape[0], -1, 4)
            return self.head(rows.mean(1))

    engine = PrivacyEngine("rdp")
    tokens = TensorDataset(torch.randint(0, 10, (64, 6)), torch.arange(64) % 3)
    model, optimizer, _ = private(
        engine, Flattening(), data_loader=DataLoader(tokens, batch_size=8)
    )
    x, y = tokens[:8]
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    with pytest.raises(PrivacyError, match="dimension 0 of size 48, but the batch has 8"):
        optimizer.step()
    assert engine.steps == 0


def test_time_major_inputs_are_refused() -> None:
    with pytest.raises(PrivacyError, match="batch_first must be True"):
        private(PrivacyEngine(), batch_first=False)
    with pytest.raises(PrivacyError, match="time-major"):
        GradSampleModule(nn.MultiheadAttention(4, 2))


def test_two_forward_passes_before_a_step_are_refused() -> None:
    engine = PrivacyEngine("rdp")
    model, optimizer, _ = private(engine)
    x, y = DATA[:8]
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    nn.functional.cross_entropy(model(DATA[8:16][0]), y).backward()
    with pytest.raises(PrivacyError, match="2 forward passes"):
        optimizer.step()
    assert engine.steps == 0


def test_parameters_cannot_be_added_after_wrapping() -> None:
    _, optimizer, _ = private(PrivacyEngine())
    with pytest.raises(PrivacyError, match="cannot be added"):
        optimizer.add_param_group({"params": [nn.Parameter(torch.zeros(2))]})


def test_leaving_a_memory_manager_mid_batch_discards_its_clipped_sums() -> None:
    engine = PrivacyEngine("rdp")
    model, optimizer, loader = private(engine)
    with BatchMemoryManager(
        data_loader=loader, max_physical_batch_size=2, optimizer=optimizer
    ) as batches:
        for x, y in batches:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()  # a skipped (accumulating) step
            if optimizer._summed:
                break
    assert optimizer._summed == {}
    assert engine.steps == 0


def test_lazy_batch_norm_is_refused() -> None:
    problems = ModuleValidator.validate(nn.Sequential(nn.LazyBatchNorm1d()))
    assert len(problems) == 1
    assert "mixes examples" in problems[0]


def test_a_used_engine_cannot_load_an_older_checkpoint(tmp_path: Path) -> None:
    engine = PrivacyEngine("rdp")
    model, optimizer, _loader = private(engine)
    path = save_checkpoint(tmp_path / "ckpt", engine=engine, module=model, optimizer=optimizer)
    one_step(model, optimizer, *DATA[:8])
    with pytest.raises(PrivacyError, match="already taken 1 steps"):
        load_checkpoint(path, engine=engine, module=model, optimizer=optimizer)


def test_a_subset_sampler_is_not_silently_replaced() -> None:
    loader = DataLoader(DATA, batch_size=8, sampler=SubsetRandomSampler(list(range(32))))
    with pytest.raises(PrivacyError, match="SubsetRandomSampler"):
        DPDataLoader.from_data_loader(loader)
