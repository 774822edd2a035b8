"""The DP-SGD optimizer: clip per example, add Gaussian noise, then step.

:class:`DPOptimizer` wraps any ``torch.optim.Optimizer`` (SGD, Adam, AdamW,
...). At ``step()`` it asks the :class:`GradSampleModule` for per-sample
gradient norms, clips every example's gradient to ``max_grad_norm`` (flat: one
bound on the whole gradient; per-layer: one bound per parameter tensor, the
noise scaled to their root-sum-square), sums the clipped gradients, runs its
``before_noise`` hooks — the engine charges the privacy ledger there, so a
refused step changes nothing — adds N(0, (noise_multiplier * C)^2) noise,
divides by the expected batch size (never the real one, which is private
under Poisson sampling) and lets the wrapped optimizer step.

Abadi et al., "Deep Learning with Differential Privacy", CCS 2016.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from privet.dp._validation import check_positive, check_positive_int
from privet.errors import PrivacyError
from privet.train.grad_sample_module import GradSampleModule
from privet.train.noise import GaussianNoise

__all__ = ["DPOptimizer"]

_NORM_EPSILON = 1e-6  # as Opacus: keeps the clip factor finite for zero gradients

StepHook = Callable[["DPOptimizer"], None]


class DPOptimizer(Optimizer):
    """Differentially private wrapper around ``optimizer``.

    Parameters
    ----------
    optimizer
        The optimizer to wrap; its parameters must be those of ``module``.
    module
        The :class:`GradSampleModule` whose forward/backward this step uses.
    noise_multiplier
        Noise standard deviation over the clipping bound (> 0).
    max_grad_norm
        Flat clipping bound (> 0), or one bound per trainable parameter
        tensor, in ``module.parameters()`` order, for per-layer clipping.
    expected_batch_size
        ``sample_rate * dataset size``; the noisy sum is divided by it when
        ``module.loss_reduction == "mean"``.
    noise_generator
        ``None`` for cryptographic noise; a seeded ``torch.Generator`` for
        reproducible simulation (warns).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        module: GradSampleModule,
        noise_multiplier: float,
        max_grad_norm: float | Sequence[float],
        expected_batch_size: int,
        noise_generator: torch.Generator | None = None,
    ) -> None:
        self.original_optimizer = optimizer
        self.module = module
        self._noise_multiplier = check_positive("noise_multiplier", noise_multiplier)
        self.expected_batch_size = check_positive_int("expected_batch_size", expected_batch_size)
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        trainable = [p for p in module.wrapped.parameters() if p.requires_grad]
        if {id(p) for p in self.params} != {id(p) for p in trainable}:
            raise PrivacyError(
                "the optimizer must hold exactly the model's trainable parameters "
                f"({len(trainable)}), got {len(self.params)}"
            )
        self.bounds = self._bounds(max_grad_norm, trainable)
        self.per_layer = not isinstance(max_grad_norm, int | float)
        self.noise = GaussianNoise(noise_generator)
        self.before_noise: list[StepHook] = []
        self.after_step: list[StepHook] = []
        self._summed: dict[Tensor, Tensor] = {}
        self._skip_next = False
        self.steps_taken = 0

    @staticmethod
    def _bounds(
        max_grad_norm: float | Sequence[float], params: Sequence[Tensor]
    ) -> dict[Tensor, float]:
        if isinstance(max_grad_norm, int | float):
            bound = check_positive("max_grad_norm", max_grad_norm)
            return {p: bound for p in params}
        bounds = [check_positive("max_grad_norm", value) for value in max_grad_norm]
        if len(bounds) != len(params):
            raise PrivacyError(
                f"per-layer max_grad_norm needs one bound per trainable parameter "
                f"({len(params)}), got {len(bounds)}"
            )
        return dict(zip(params, bounds, strict=True))

    @property
    def noise_multiplier(self) -> float:
        """Noise std over the clipping bound. Settable (noise schedules); every step is
        accounted with the value it actually used."""
        return self._noise_multiplier

    @noise_multiplier.setter
    def noise_multiplier(self, value: float) -> None:
        self._noise_multiplier = check_positive("noise_multiplier", value)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Refused: a parameter added after wrapping would train without clipping or noise."""
        raise PrivacyError(
            "parameters cannot be added to a DPOptimizer; build the model with every trainable "
            "parameter and call make_private again"
        )

    def discard_accumulated(self) -> None:
        """Drop clipped sums of an unfinished logical batch (nothing from it is released)."""
        self._summed.clear()
        self._skip_next = False
        self.module.clear()

    @property
    def max_grad_norm(self) -> float:
        """The L2 sensitivity of one example's clipped gradient."""
        if not self.per_layer:
            return next(iter(self.bounds.values()))
        return math.sqrt(sum(bound**2 for bound in self.bounds.values()))

    # -- the optimizer interface, forwarded --------------------------------------------------

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.original_optimizer.param_groups

    @property
    def state(self) -> Any:  # type: ignore[override]
        return self.original_optimizer.state

    @property
    def defaults(self) -> dict[str, Any]:  # type: ignore[override]
        return self.original_optimizer.defaults

    def state_dict(self) -> dict[str, Any]:
        return self.original_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.original_optimizer.load_state_dict(state_dict)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients and the captured batch (not the accumulated clipped sums)."""
        self.original_optimizer.zero_grad(set_to_none=set_to_none)
        self.module.clear()

    def __repr__(self) -> str:
        return f"DPOptimizer({self.original_optimizer!r}, noise_multiplier={self.noise_multiplier})"

    # -- DP-SGD ------------------------------------------------------------------------------------

    def signal_skip_step(self, do_skip: bool = True) -> None:
        """Make the next ``step()`` only accumulate clipped gradients (virtual steps)."""
        self._skip_next = do_skip

    def per_sample_clip_factors(self) -> dict[Tensor, Tensor]:
        """``min(1, C / ||g_i||)`` for every parameter (shared across parameters when flat)."""
        norms_sq = self.module.per_sample_norms_sq()
        if not norms_sq:
            return {}
        if not self.per_layer:
            total = torch.sqrt(torch.stack(list(norms_sq.values())).sum(0))
            bound = self.max_grad_norm
            factor = (bound / (total + _NORM_EPSILON)).clamp(max=1.0)
            return {param: factor for param in norms_sq}
        return {
            param: (self.bounds[param] / (value.sqrt() + _NORM_EPSILON)).clamp(max=1.0)
            for param, value in norms_sq.items()
        }

    def _accumulate(self) -> None:
        """Add this batch's clipped per-sample gradients to the running sums."""
        factors = self.per_sample_clip_factors()
        for param, value in self.module.clipped_sums(factors).items():
            previous = self._summed.get(param)
            self._summed[param] = value if previous is None else previous + value
        self.module.clear()

    def _noise_by_layout(self, std: float) -> list[tuple[list[Tensor], list[Tensor]]]:
        """N(0, std^2) noise for every parameter, drawn as one flat vector per (dtype, device).

        One draw for the whole model, rather than one per tensor, keeps a
        step's noise to a few large vector ops; each parameter gets a view.
        """
        layouts: dict[tuple[torch.dtype, torch.device], list[Tensor]] = {}
        for param in self.params:
            layouts.setdefault((param.dtype, param.device), []).append(param)
        drawn = []
        for (dtype, device), params in layouts.items():
            sizes = [param.numel() for param in params]
            flat = self.noise.sample(torch.Size([sum(sizes)]), std, dtype).to(device)
            views = [
                chunk.view(param.shape)
                for chunk, param in zip(torch.split(flat, sizes), params, strict=True)
            ]
            drawn.append((params, views))
        return drawn

    def pre_step(self) -> bool:
        """Clip and accumulate; on the last virtual step, add noise and write ``p.grad``."""
        self.module.check_one_batch()
        self._accumulate()
        if self._skip_next:
            self._skip_next = False
            for param in self.params:
                param.grad = None  # no non-private gradient may linger
            return False
        try:
            for hook in self.before_noise:
                hook(self)
        except BaseException:
            # Refused (e.g. by the ledger): nothing is noised, nothing changes.
            self._summed.clear()
            for param in self.params:
                param.grad = None
            raise
        std = self.noise_multiplier * self.max_grad_norm
        divisor = self.expected_batch_size if self.module.loss_reduction == "mean" else 1
        for params, noise in self._noise_by_layout(std / divisor):
            for param, grad in zip(params, noise, strict=True):
                # The fresh noise view becomes the gradient: add the scaled sum in place.
                summed = self._summed.get(param)
                if summed is not None:
                    grad.add_(summed.to(param.dtype), alpha=1.0 / divisor)
                param.grad = grad
        self._summed.clear()
        return True

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not self.pre_step():
            return loss
        self.original_optimizer.step()
        self.steps_taken += 1
        for hook in self.after_step:
            hook(self)
        return loss
