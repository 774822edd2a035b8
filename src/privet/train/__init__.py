"""DP-SGD for PyTorch: per-sample clipping without per-sample gradients, Poisson batches,
cryptographic noise, and every step charged to a privet ledger.

Imports torch; may import :mod:`privet.dp` (see DESIGN.md).
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("privet.train needs PyTorch: pip install 'privet[torch]'") from exc

from privet.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from privet.train.data_loader import DPDataLoader, PoissonBatchSampler
from privet.train.engine import PrivacyEngine
from privet.train.grad_sample_module import GradSampleModule
from privet.train.layers import SelfAttention, TransformerEncoder
from privet.train.memory import BatchMemoryManager
from privet.train.noise import GaussianNoise
from privet.train.optimizer import DPOptimizer
from privet.train.validator import ModuleValidator

__all__ = [
    "BatchMemoryManager",
    "Checkpoint",
    "DPDataLoader",
    "DPOptimizer",
    "GaussianNoise",
    "GradSampleModule",
    "ModuleValidator",
    "PoissonBatchSampler",
    "PrivacyEngine",
    "SelfAttention",
    "TransformerEncoder",
    "load_checkpoint",
    "save_checkpoint",
]
