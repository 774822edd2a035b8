"""privet.train.layers compute what torch's own layers compute, on the fast path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from privet import PrivacyError
from privet.train import GradSampleModule, SelfAttention, TransformerEncoder
from privet.train.kernels import FunctorchKernel


def test_self_attention_equals_multihead_attention_with_the_same_weights() -> None:
    torch.manual_seed(0)
    ours = SelfAttention(12, 3).double()
    reference = nn.MultiheadAttention(12, 3, batch_first=True).double()
    with torch.no_grad():
        reference.in_proj_weight.copy_(ours.qkv.weight)
        reference.in_proj_bias.copy_(ours.qkv.bias)
        reference.out_proj.weight.copy_(ours.out.weight)
        reference.out_proj.bias.copy_(ours.out.bias)
    x = torch.randn(4, 7, 12, dtype=torch.float64)
    expected, _ = reference(x, x, x, need_weights=False)
    torch.testing.assert_close(ours(x), expected)


def test_encoder_uses_only_fast_kernels() -> None:
    wrapped = GradSampleModule(TransformerEncoder(8, 2))
    assert wrapped.units
    assert not any(isinstance(unit.kernel, FunctorchKernel) for unit in wrapped.units)


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(PrivacyError, match=r"dim must be divisible by heads \(3\), got 8"):
        SelfAttention(8, 3)
