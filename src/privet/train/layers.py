"""Layers built for per-sample clipping: every parameter lives in a fast-path layer.

``nn.MultiheadAttention`` keeps its projection weights in fused parameters
and calls its output projection without running it as a module, so privet
must fall back to ``torch.func`` for it. :class:`SelfAttention` computes the
same function from two ``nn.Linear`` layers, which take the ghost-norm and
book-keeping path; :class:`TransformerEncoder` is a pre-norm encoder built
from them and a position-wise MLP (Vaswani et al. 2017; Xiong et al. 2020).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from privet.dp._validation import check_positive_int
from privet.errors import PrivacyError

__all__ = ["SelfAttention", "TransformerEncoder"]


class SelfAttention(nn.Module):
    """Batch-first multi-head self-attention from two ``nn.Linear`` layers.

    Parameters
    ----------
    dim
        Model width; must be divisible by ``heads``.
    heads
        Number of attention heads.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        width, n_heads = check_positive_int("dim", dim), check_positive_int("heads", heads)
        if width % n_heads:
            raise PrivacyError(f"dim must be divisible by heads ({n_heads}), got {width}")
        self.heads = n_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        per_head = d // self.heads
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, per_head).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(per_head), dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(n, t, d))  # type: ignore[no-any-return]


class TransformerEncoder(nn.Module):
    """One pre-norm encoder block: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, dim: int, heads: int, hidden: int | None = None) -> None:
        super().__init__()
        inner = check_positive_int("hidden", hidden) if hidden is not None else 4 * dim
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, inner), nn.GELU(), nn.Linear(inner, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))  # type: ignore[no-any-return]
