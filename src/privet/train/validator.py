"""Which layers per-sample privacy can train, and how to fix the ones it cannot.

BatchNorm mixes the examples of a batch (each output depends on every input's
statistics), so a single example's influence is not confined to its own
gradient and per-sample clipping does not bound it. :meth:`ModuleValidator.fix`
swaps each BatchNorm for a GroupNorm over the same channels (Opacus does the
same). Frozen BatchNorm layers in eval mode would be safe, but training code
rarely keeps them so; privet refuses them all and lets ``fix`` decide.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from privet.errors import PrivacyError

__all__ = ["ModuleValidator"]

# _BatchNorm covers BatchNorm1d/2d/3d, SyncBatchNorm, the lazy variants and subclasses.
_BATCH_NORMS = (_BatchNorm,)


class ModuleValidator:
    """Checks a model before private training (stateless; methods are static)."""

    @staticmethod
    def validate(module: nn.Module, *, strict: bool = False) -> list[str]:
        """Problems that make ``module`` unfit for per-sample privacy (empty if none).

        With ``strict=True`` the first problem raises :class:`privet.PrivacyError`.
        """
        problems = []
        for name, layer in module.named_modules():
            if isinstance(layer, nn.MultiheadAttention) and not layer.batch_first:
                problems.append(
                    f"{name or 'model'} (MultiheadAttention) is time-major; build it with "
                    "batch_first=True so dimension 0 is the batch"
                )
            if isinstance(layer, _BATCH_NORMS):
                problems.append(
                    f"{name or 'model'} ({type(layer).__name__}) mixes examples across the batch; "
                    "replace it with GroupNorm (ModuleValidator.fix does)"
                )
            if isinstance(layer, nn.RNNBase):
                problems.append(
                    f"{name or 'model'} ({type(layer).__name__}) is a fused recurrent layer that "
                    "per-sample clipping cannot yet differentiate per example; not supported"
                )
            if isinstance(layer, nn.Embedding) and (
                layer.sparse or layer.scale_grad_by_freq or layer.max_norm is not None
            ):
                problems.append(
                    f"{name or 'model'} (Embedding) uses sparse, scale_grad_by_freq or max_norm, "
                    "which per-sample clipping does not support"
                )
        if strict and problems:
            raise PrivacyError("; ".join(problems))
        return problems

    @staticmethod
    def fix(module: nn.Module) -> nn.Module:
        """A copy of ``module`` with every BatchNorm replaced by a GroupNorm.

        The group count is the largest of gcd(channels, 32) — 32 groups where
        the channels allow, as in Wu & He (2018) and Opacus.
        """
        fixed = copy.deepcopy(module)
        if isinstance(fixed, _BATCH_NORMS):
            return _group_norm_for(fixed)
        for parent in fixed.modules():
            for name, child in list(parent.named_children()):
                if isinstance(child, _BATCH_NORMS):
                    setattr(parent, name, _group_norm_for(child))
        return fixed


def _group_norm_for(batch_norm: Any) -> nn.GroupNorm:
    channels = int(batch_norm.num_features)
    groups = math.gcd(channels, 32)
    return nn.GroupNorm(groups, channels, eps=float(batch_norm.eps), affine=bool(batch_norm.affine))
