"""Forward passes that skip the non-private weight gradient.

In plain backpropagation autograd computes every weight's batch gradient —
exactly what DP-SGD throws away, since it rebuilds the weight gradient from
the clipped per-sample terms. For Linear, Conv1d/2d (zero padding) and
Embedding, :class:`GradSampleModule` therefore runs the layer through a
custom autograd function whose backward returns only the gradient of the
*input* and hands the output gradient to the capture: one matrix product per
layer saved, and no ``param.grad`` to leak before the private step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.grad
from torch import Tensor, nn
from torch.nn import functional

from privet.train.kernels import Capture

__all__ = ["fast_forward_for"]

Record = Callable[[Capture, int, Tensor], None]


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, hook: Any) -> Tensor:
        ctx.save_for_backward(weight)
        ctx.hook = hook
        return functional.linear(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None]:
        ctx.hook(grad)
        (weight,) = ctx.saved_tensors
        return (grad @ weight if ctx.needs_input_grad[0] else None), None, None, None


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, conv: Any, hook: Any
    ) -> Tensor:
        ctx.save_for_backward(weight)
        ctx.conv = conv
        ctx.hook = hook
        ctx.input_shape = x.shape
        out: Tensor = conv._conv_forward(x, weight, bias)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None, None]:
        ctx.hook(grad)
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        (weight,) = ctx.saved_tensors
        conv = ctx.conv
        grad_input_of = (
            torch.nn.grad.conv1d_input
            if isinstance(conv, nn.Conv1d)
            else torch.nn.grad.conv2d_input
        )
        grad_input: Tensor = grad_input_of(  # type: ignore[no-untyped-call]
            ctx.input_shape, weight, grad, conv.stride, conv.padding, conv.dilation, conv.groups
        )
        return grad_input, None, None, None, None


class _Embedding(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, indices: Tensor, weight: Tensor, module: Any, hook: Any) -> Tensor:
        ctx.hook = hook
        return functional.embedding(indices, weight, module.padding_idx)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, None, None]:
        ctx.hook(grad)
        return None, None, None, None


def _weight_only_trainable(module: Any) -> bool:
    bias = module.bias
    return bool(module.weight.requires_grad and (bias is None or bias.requires_grad))


def fast_forward_for(
    module: nn.Module, capture_for: Callable[[nn.Module, tuple[Any, ...]], Callable[[Tensor], None]]
) -> Callable[..., Tensor] | None:
    """A replacement ``forward`` for ``module``, or ``None`` if it needs the general path.

    ``capture_for(module, args)`` stores a capture of the call and returns the
    function that receives the output gradient.
    """
    if type(module) is nn.Linear and _weight_only_trainable(module):
        linear: Any = module

        def forward_linear(x: Tensor) -> Tensor:
            if not torch.is_grad_enabled():
                return functional.linear(x, linear.weight, linear.bias)
            hook = capture_for(linear, (x,))
            out: Tensor = _Linear.apply(x, linear.weight, linear.bias, hook)  # type: ignore[no-untyped-call]
            return out

        return forward_linear
    if (
        type(module) in (nn.Conv1d, nn.Conv2d)
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
        and _weight_only_trainable(module)
    ):
        conv: Any = module

        def forward_conv(x: Tensor) -> Tensor:
            if not torch.is_grad_enabled():
                plain: Tensor = conv._conv_forward(x, conv.weight, conv.bias)
                return plain
            hook = capture_for(conv, (x,))
            out: Tensor = _Conv.apply(x, conv.weight, conv.bias, conv, hook)  # type: ignore[no-untyped-call]
            return out

        return forward_conv
    if type(module) is nn.Embedding and module.weight.requires_grad:
        embedding: Any = module
        if embedding.max_norm is not None or embedding.sparse or embedding.scale_grad_by_freq:
            return None

        def forward_embedding(indices: Tensor) -> Tensor:
            if not torch.is_grad_enabled():
                return functional.embedding(indices, embedding.weight, embedding.padding_idx)
            hook = capture_for(embedding, (indices,))
            out: Tensor = _Embedding.apply(indices, embedding.weight, embedding, hook)  # type: ignore[no-untyped-call]
            return out

        return forward_embedding
    return None
