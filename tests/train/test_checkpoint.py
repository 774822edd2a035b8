"""Checkpoints: a resumed run continues exactly as if it had never stopped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from privet import PrivacyError
from privet.train import PrivacyEngine
from privet.train.checkpoint import load_checkpoint, save_checkpoint

DATA = TensorDataset(
    torch.randn(64, 5, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 3
)


def setup(seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    engine = PrivacyEngine("rdp")
    model, optimizer, loader = engine.make_private(
        module=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        data_loader=DataLoader(DATA, batch_size=8),
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        noise_generator=torch.Generator().manual_seed(7),
        sampler_rng=np.random.default_rng(3),
    )
    return engine, model, optimizer, loader


def run(model, optimizer, loader, steps: int) -> None:  # type: ignore[no-untyped-def]
    batches = iter(loader)
    for _ in range(steps):
        x, y = next(batches)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_resume_continues_bit_for_bit(tmp_path: Path) -> None:
    """Stop after 4 steps, resume in a fresh process state, take 3 more: same weights."""
    engine, model, optimizer, loader = setup()
    batches = iter(loader)
    run_from(batches, model, optimizer, 4)
    save_checkpoint(
        tmp_path / "ckpt",
        engine=engine,
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        extra={"epoch": 0, "batch": 4},
    )
    # The noise stream is not part of a checkpoint (cryptographic noise cannot be
    # replayed); a seeded one is re-seeded alike on both sides.
    optimizer.noise.generator = torch.Generator().manual_seed(99)
    run_from(batches, model, optimizer, 3)

    engine2, model2, optimizer2, loader2 = setup(seed=1)  # different initial weights
    restored = load_checkpoint(
        tmp_path / "ckpt", engine=engine2, module=model2, optimizer=optimizer2, data_loader=loader2
    )
    assert restored.steps == 4
    assert restored.extra == {"epoch": 0, "batch": 4}
    optimizer2.noise.generator = torch.Generator().manual_seed(99)
    # The saved sampler state is the one after 4 batches were drawn in this epoch.
    run_from(iter(loader2), model2, optimizer2, 3)
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)
    assert engine2.get_epsilon(1e-5) == engine.get_epsilon(1e-5)


def run_from(batches, model, optimizer, steps: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(steps):
        x, y = next(batches)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_resumed_epsilon_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    engine, model, optimizer, loader = setup()
    run(model, optimizer, loader, 5)
    save_checkpoint(
        tmp_path / "ckpt", engine=engine, module=model, optimizer=optimizer, data_loader=loader
    )
    engine2, model2, optimizer2, loader2 = setup(seed=1)
    load_checkpoint(
        tmp_path / "ckpt", engine=engine2, module=model2, optimizer=optimizer2, data_loader=loader2
    )
    assert engine2.get_epsilon(1e-5) == engine.get_epsilon(1e-5)
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)
    # Adam's moments came back too.
    for a, b in zip(optimizer.state.values(), optimizer2.state.values(), strict=True):
        assert torch.equal(a["exp_avg"], b["exp_avg"])
    run(model2, optimizer2, loader2, 2)
    assert engine2.steps == 7
    assert engine2.get_epsilon(1e-5) > engine.get_epsilon(1e-5)


def test_the_sampler_continues_its_stream(tmp_path: Path) -> None:
    engine, model, optimizer, loader = setup()
    first = iter(loader)
    next(first)
    save_checkpoint(
        tmp_path / "ckpt", engine=engine, module=model, optimizer=optimizer, data_loader=loader
    )
    expected = [x.tolist() for x, _ in loader][:3]
    engine2, model2, optimizer2, loader2 = setup(seed=1)
    load_checkpoint(
        tmp_path / "ckpt", engine=engine2, module=model2, optimizer=optimizer2, data_loader=loader2
    )
    assert [x.tolist() for x, _ in loader2][:3] == expected


def test_checkpoint_files_are_safetensors_and_json(tmp_path: Path) -> None:
    engine, model, optimizer, loader = setup()
    run(model, optimizer, loader, 1)
    path = save_checkpoint(tmp_path / "ckpt", engine=engine, module=model, optimizer=optimizer)
    assert sorted(p.name for p in path.iterdir()) == [
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
    ]
    state = json.loads((path / "state.json").read_text())
    assert state["history"] == [[1.0, 0.125, 1]]
    # Overwriting keeps exactly one checkpoint and no staging directories.
    save_checkpoint(tmp_path / "ckpt", engine=engine, module=model, optimizer=optimizer)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_bad_checkpoints_are_refused(tmp_path: Path) -> None:
    engine, model, optimizer, _loader = setup()
    with pytest.raises(PrivacyError, match="not a readable privet checkpoint"):
        load_checkpoint(tmp_path / "missing", engine=engine, module=model, optimizer=optimizer)
    path = save_checkpoint(tmp_path / "ckpt", engine=engine, module=model, optimizer=optimizer)
    with pytest.raises(PrivacyError, match="accounted with 'rdp'"):
        load_checkpoint(path, engine=PrivacyEngine("pld"), module=model, optimizer=optimizer)
    with pytest.raises(PrivacyError, match="JSON-serializable"):
        save_checkpoint(
            tmp_path / "other",
            engine=engine,
            module=model,
            optimizer=optimizer,
            extra={"x": object()},
        )
    assert not (tmp_path / "other").exists()
