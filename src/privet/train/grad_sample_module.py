"""Wrap a model so one ordinary backward pass yields per-sample clipping.

:class:`GradSampleModule` splits a model into *units*: layers with a kernel in
:data:`privet.train.kernels.KERNELS` (Linear, Conv1d/2d, Embedding, LayerNorm,
GroupNorm), and any other module owning parameters directly (handled, with all
its sub-modules, by the ``torch.func`` kernel). A forward hook keeps each
unit's inputs; a tensor hook on its outputs keeps the gradient that flows back
into them during the user's ``loss.backward()``. From those the optimizer
asks for per-sample norms and clipped sums (:meth:`per_sample_norms_sq`,
:meth:`clipped_sums`).

Assumptions, checked where possible: the batch is dimension 0 of every
unit's first input; with ``loss_reduction="mean"`` the loss is the mean over
the batch (the stored gradients are multiplied by the batch size, as Opacus
does).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from privet.errors import PrivacyError
from privet.train.fast_forward import fast_forward_for
from privet.train.kernels import (
    KERNELS,
    Capture,
    LayerKernel,
    kernel_for,
    row_norms_sq,
    weighted_sum,
)
from privet.train.validator import ModuleValidator

__all__ = ["GradSampleModule", "LossReduction", "Unit"]

LossReduction = Literal["mean", "sum"]


@dataclass(frozen=True)
class Unit:
    """A module whose parameters one kernel handles."""

    name: str
    module: nn.Module
    kernel: LayerKernel

    def parameters(self) -> dict[str, Tensor]:
        return self.kernel.parameters(self.module)


def _find_units(module: nn.Module, prefix: str = "") -> Iterator[Unit]:
    kernel = kernel_for(module)
    if type(module) in KERNELS or kernel is not None:
        if kernel is not None:
            yield Unit(prefix, module, kernel)
        return
    for name, child in module.named_children():
        yield from _find_units(child, f"{prefix}.{name}" if prefix else name)


def _batch_size_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Tensor) and value.dim() > 0:
            return int(value.shape[0])
        if isinstance(value, tuple | list) and value and isinstance(value[0], Tensor):
            return int(value[0].shape[0])
    raise PrivacyError("the model's inputs must include a tensor whose dimension 0 is the batch")


class GradSampleModule(nn.Module):
    """``module`` with hooks that record what per-sample clipping needs.

    Parameters
    ----------
    module
        The model. Its trainable parameters must each be reached by exactly
        one unit (see the module docstring).
    loss_reduction
        ``"mean"`` if the loss averages over the batch, ``"sum"`` if it sums.
    """

    def __init__(self, module: nn.Module, *, loss_reduction: LossReduction = "mean") -> None:
        super().__init__()
        if loss_reduction not in ("mean", "sum"):
            raise PrivacyError(f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}")
        # Refuse what per-sample clipping cannot handle before touching the model.
        ModuleValidator.validate(module, strict=True)
        self._module = module
        self.loss_reduction: LossReduction = loss_reduction
        self.units = list(_find_units(module))
        covered = [id(p) for unit in self.units for p in unit.parameters().values()]
        trainable = [p for p in module.parameters() if p.requires_grad]
        if sorted(covered) != sorted(id(p) for p in trainable):
            raise PrivacyError("every trainable parameter must belong to exactly one layer")
        self._captures: dict[int, list[Capture]] = {i: [] for i in range(len(self.units))}
        # Off while kernels re-run a layer (torch.func), so they record nothing.
        self._recording = True
        # Batch size of each forward pass with gradients since the last clear().
        self._forward_sizes: list[int] = []
        self._handles: list[RemovableHandle] = []
        self._patched: list[nn.Module] = []
        for index, unit in enumerate(self.units):
            fast = fast_forward_for(unit.module, functools.partial(self._capture_call, index))
            if fast is not None:
                # An instance attribute shadows the class's forward until remove_hooks().
                unit.module.forward = fast
                self._patched.append(unit.module)
            else:
                hook = functools.partial(self._on_forward, index)
                self._handles.append(unit.module.register_forward_hook(hook, with_kwargs=True))

    @property
    def wrapped(self) -> nn.Module:
        """The model being trained."""
        return self._module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if torch.is_grad_enabled() and self._recording:
            self._forward_sizes.append(_batch_size_of(args, kwargs))
        return self._module(*args, **kwargs)

    # -- hooks -----------------------------------------------------------------------------------

    def _on_forward(
        self,
        index: int,
        module: nn.Module,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        output: Any,
    ) -> None:
        if not (self._recording and torch.is_grad_enabled()):
            return
        outputs = output if isinstance(output, tuple) else (output,)
        if not any(isinstance(o, Tensor) and o.requires_grad for o in outputs):
            return
        capture = Capture(
            args=tuple(a.detach() if isinstance(a, Tensor) else a for a in args),
            kwargs={k: v.detach() if isinstance(v, Tensor) else v for k, v in kwargs.items()},
            backprops=[None] * len(outputs),
        )
        for position, value in enumerate(outputs):
            if isinstance(value, Tensor) and value.requires_grad:
                hook = functools.partial(self._on_backward, capture, position)
                value.register_hook(hook)  # type: ignore[no-untyped-call]
        self._captures[index].append(capture)

    def _capture_call(
        self, index: int, module: nn.Module, args: tuple[Any, ...]
    ) -> Callable[[Tensor], None]:
        """Record one call of a fast-forward layer; return what receives its output gradient."""
        capture = Capture(args=tuple(a.detach() for a in args), kwargs={}, backprops=[None])
        if self._recording:
            self._captures[index].append(capture)
        return functools.partial(self._on_backward, capture, 0)

    def _on_backward(self, capture: Capture, position: int, grad: Tensor) -> None:
        # Kept as the loss gave it; the mean's 1/N is undone on the (N,) norms and
        # scales (see _loss_scale) rather than by copying every output gradient.
        grad = grad.detach()
        previous = capture.backprops[position]
        capture.backprops[position] = grad if previous is None else previous + grad

    def _loss_scale(self, capture: Capture) -> float:
        """Factor from the stored gradients to per-example ones: N for a mean loss."""
        return float(capture.batch_size) if self.loss_reduction == "mean" else 1.0

    # -- what the optimizer asks -----------------------------------------------------------------

    def clear(self) -> None:
        """Forget every captured batch (called by ``zero_grad`` and after each step)."""
        for captures in self._captures.values():
            captures.clear()
        self._forward_sizes.clear()

    def check_one_batch(self) -> None:
        """Refuse a step whose captures do not come from exactly one batch of examples.

        Two forward passes before one step would sum example ``i`` of one batch
        with example ``i`` of the other before clipping; a layer whose dimension
        0 is not the batch (a time-major layer, flattened tokens) would clip
        something other than examples. Either breaks the sensitivity bound.
        """
        if len(self._forward_sizes) > 1:
            raise PrivacyError(
                f"{len(self._forward_sizes)} forward passes with gradients before one step; "
                "DP-SGD clips one batch per step (use BatchMemoryManager or "
                "signal_skip_step for accumulation, torch.no_grad() for evaluation)"
            )
        expected = self._forward_sizes[0] if self._forward_sizes else None
        for index, unit in enumerate(self.units):
            for capture in self._captures[index]:
                if expected is None:
                    raise PrivacyError(
                        "layers ran outside the wrapped model; call the module that "
                        "make_private returned"
                    )
                if capture.batch_size != expected:
                    raise PrivacyError(
                        f"layer {unit.name!r} saw dimension 0 of size {capture.batch_size}, but "
                        f"the batch has {expected} examples; every layer's dimension 0 must be "
                        "the batch (batch_first=True, no flattening of examples)"
                    )

    @contextlib.contextmanager
    def _paused(self) -> Iterator[None]:
        self._recording = False
        try:
            yield
        finally:
            self._recording = True

    def _ready(self, index: int) -> list[Capture]:
        # An empty Poisson batch contributes nothing (the step adds noise only).
        captures = [
            c
            for c in self._captures[index]
            if c.batch_size > 0 and any(g is not None for g in c.backprops)
        ]
        sizes = {c.batch_size for c in captures}
        if len(sizes) > 1:
            raise PrivacyError(
                f"layer {self.units[index].name!r} ran on batches of sizes {sorted(sizes)} in one "
                "step; run other forward passes under torch.no_grad() or call zero_grad() first"
            )
        return captures

    def _materialized(self, unit: Unit, captures: list[Capture]) -> dict[str, Tensor]:
        """Per-sample gradients summed over several calls of one layer (shared weights)."""
        total: dict[str, Tensor] = {}
        for capture in captures:
            factor = self._loss_scale(capture)
            for name, grad in unit.kernel.per_sample_grads(unit.module, capture).items():
                grad = grad * factor
                total[name] = grad if name not in total else total[name] + grad
        return total

    def per_sample_norms_sq(self) -> dict[Tensor, Tensor]:
        """Squared per-sample gradient norm of every trainable parameter: ``param -> (N,)``."""
        with self._paused(), torch.no_grad():
            return self._norms_sq()

    def _norms_sq(self) -> dict[Tensor, Tensor]:
        out: dict[Tensor, Tensor] = {}
        for index, unit in enumerate(self.units):
            captures = self._ready(index)
            params = unit.parameters()
            if not captures:
                continue
            if len(captures) == 1:
                factor_sq = self._loss_scale(captures[0]) ** 2
                norms = {
                    name: value * factor_sq
                    for name, value in unit.kernel.norms_sq(unit.module, captures[0]).items()
                }
            else:
                norms = {
                    name: row_norms_sq(grad)
                    for name, grad in self._materialized(unit, captures).items()
                }
            out.update({params[name]: value for name, value in norms.items()})
        return out

    def clipped_sums(self, scales: Mapping[Tensor, Tensor]) -> dict[Tensor, Tensor]:
        """``sum_i scales[param]_i * grad_i`` for every parameter that took part in the step."""
        with self._paused(), torch.no_grad():
            return self._clipped_sums(scales)

    def _clipped_sums(self, scales: Mapping[Tensor, Tensor]) -> dict[Tensor, Tensor]:
        out: dict[Tensor, Tensor] = {}
        for index, unit in enumerate(self.units):
            captures = self._ready(index)
            if not captures:
                continue
            params = unit.parameters()
            by_name = {name: scales[param] for name, param in params.items()}
            if len(captures) == 1:
                factor = self._loss_scale(captures[0])
                scaled = {name: value * factor for name, value in by_name.items()}
                sums = unit.kernel.clipped_sum(unit.module, captures[0], scaled)
            else:
                sums = {
                    name: weighted_sum(by_name[name], grad)
                    for name, grad in self._materialized(unit, captures).items()
                }
            out.update({params[name]: value for name, value in sums.items()})
        return out

    def per_sample_grads(self) -> dict[Tensor, Tensor]:
        """Materialized per-sample gradients (the slow path; for tests and audits)."""
        with self._paused(), torch.no_grad():
            return self._per_sample_grads()

    def _per_sample_grads(self) -> dict[Tensor, Tensor]:
        out: dict[Tensor, Tensor] = {}
        for index, unit in enumerate(self.units):
            captures = self._ready(index)
            if captures:
                params = unit.parameters()
                grads = self._materialized(unit, captures)
                out.update({params[name]: value for name, value in grads.items()})
        return out

    def remove_hooks(self) -> None:
        """Detach from the model (it keeps working as a plain module)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for module in self._patched:
            del module.forward
        self._patched.clear()
        self.clear()
