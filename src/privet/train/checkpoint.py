"""Save and resume private training: tensors as safetensors, everything else as JSON.

A checkpoint is a directory holding ``model.safetensors``, ``optimizer.safetensors``
and ``state.json`` (optimizer hyperparameters and scalar state, the engine's
step history — so :meth:`PrivacyEngine.get_epsilon` resumes where it stopped —
the steps taken, and a seeded sampler's generator state). Nothing is pickled.
The directory is written beside its destination and renamed into place, so a
crash leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torch.utils.data import DataLoader

from privet.dp.randomness import GeneratorRandom
from privet.errors import PrivacyError
from privet.train.data_loader import PoissonBatchSampler
from privet.train.engine import PrivacyEngine
from privet.train.grad_sample_module import GradSampleModule
from privet.train.optimizer import DPOptimizer

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` restored besides the tensors."""

    steps: int
    epsilon_history: list[tuple[float, float, int]]
    extra: dict[str, Any]


def _module_of(module: nn.Module) -> nn.Module:
    return module.wrapped if isinstance(module, GradSampleModule) else module


def _sampler(loader: DataLoader[Any] | None) -> PoissonBatchSampler | None:
    sampler = getattr(loader, "batch_sampler", None)
    return sampler if isinstance(sampler, PoissonBatchSampler) else None


def _split_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors of ``optimizer.state_dict()`` by flat key, and the JSON-able rest."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, Tensor):
                tensors[f"{index}.{name}"] = value.detach().contiguous().clone()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(
    directory: str | os.PathLike[str],
    *,
    engine: PrivacyEngine,
    module: nn.Module,
    optimizer: DPOptimizer,
    data_loader: DataLoader[Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory atomically; ``extra`` must be JSON-serializable."""
    from safetensors.torch import save_file

    target = Path(directory)
    model_state = {
        name: value.detach().contiguous().clone()
        for name, value in _module_of(module).state_dict().items()
    }
    optimizer_tensors, optimizer_rest = _split_optimizer_state(optimizer.state_dict())
    sampler = _sampler(data_loader)
    sampler_state = None
    if sampler is not None and isinstance(sampler._source, GeneratorRandom):
        sampler_state = sampler._source.generator.bit_generator.state
    state = {
        "format": FORMAT_VERSION,
        "steps": engine.steps,
        "accountant": engine.accountant,
        "history": [[sigma, q, count] for (sigma, q), count in engine._history.items()],
        "optimizer": optimizer_rest,
        "sampler_state": sampler_state,
        "extra": extra or {},
    }
    try:
        text = json.dumps(state, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PrivacyError(f"checkpoint state must be JSON-serializable: {exc}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        save_file(model_state, str(staging / "model.safetensors"))
        save_file(optimizer_tensors, str(staging / "optimizer.safetensors"))
        (staging / "state.json").write_text(text, encoding="utf-8")
        if target.exists():
            retired = target.with_name(f".{target.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(target, retired)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_checkpoint(
    directory: str | os.PathLike[str],
    *,
    engine: PrivacyEngine,
    module: nn.Module,
    optimizer: DPOptimizer,
    data_loader: DataLoader[Any] | None = None,
) -> Checkpoint:
    """Restore weights, optimizer state, the engine's history and a seeded sampler's state."""
    from safetensors.torch import load_file

    source = Path(directory)
    try:
        state = json.loads((source / "state.json").read_text(encoding="utf-8"))
        model_state = load_file(str(source / "model.safetensors"))
        optimizer_tensors = load_file(str(source / "optimizer.safetensors"))
    except (OSError, ValueError) as exc:
        raise PrivacyError(f"{str(source)!r} is not a readable privet checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise PrivacyError(
            f"checkpoint format must be {FORMAT_VERSION}, got {state.get('format')!r}"
        )
    if engine.steps:
        raise PrivacyError(
            f"the engine has already taken {engine.steps} steps; load a checkpoint into a fresh "
            "engine (discarding steps already taken would under-report epsilon)"
        )
    if state["accountant"] != engine.accountant:
        raise PrivacyError(
            f"the checkpoint was accounted with {state['accountant']!r}, "
            f"the engine uses {engine.accountant!r}"
        )
    _module_of(module).load_state_dict(model_state)
    entries: dict[int, dict[str, Any]] = {}
    for key, value in optimizer_tensors.items():
        index, name = key.split(".", 1)
        entries.setdefault(int(index), {})[name] = value
    for index, scalars in state["optimizer"]["scalars"].items():
        entries.setdefault(int(index), {}).update(scalars)
    optimizer.load_state_dict(
        {"state": entries, "param_groups": state["optimizer"]["param_groups"]}
    )
    history = [(float(sigma), float(q), int(count)) for sigma, q, count in state["history"]]
    engine._history.clear()
    for sigma, q, count in history:
        engine._history[(sigma, q)] = count
    sampler = _sampler(data_loader)
    if state["sampler_state"] is not None and sampler is not None:
        if not isinstance(sampler._source, GeneratorRandom):
            raise PrivacyError("the checkpoint holds a seeded sampler state; pass a seeded loader")
        sampler._source.generator.bit_generator.state = state["sampler_state"]
    optimizer.steps_taken = int(state["steps"])
    return Checkpoint(steps=int(state["steps"]), epsilon_history=history, extra=state["extra"])
