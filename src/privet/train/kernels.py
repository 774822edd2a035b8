"""Per-sample gradient kernels, chosen by layer class.

For a layer whose forward is a (possibly batched) matrix product of the input
activations ``A`` and the weight, the per-sample gradient is ``A_iᵀ B_i``,
where ``B_i`` is the gradient of the loss with respect to the layer's output
for example ``i``. Two quantities are needed for DP-SGD, and neither requires
the per-sample gradients themselves:

* **Norms** ``||A_iᵀ B_i||²`` — by the *ghost norm* identity
  ``sum_{t,t'} (A_i A_iᵀ)_{tt'} (B_i B_iᵀ)_{tt'}`` (Goodfellow 2015; Li et
  al. 2022) when the sequence length ``T`` is short, or by materializing the
  ``d_in x d_out`` gradient when that is cheaper ("mixed" ghost clipping,
  Bu et al. 2023).
* **The clipped sum** ``sum_i c_i A_iᵀ B_i = Aᵀ diag(c) B`` — one matrix
  product on the stored activations and output gradients ("book-keeping",
  Bu et al. 2023), so no second backward pass is needed.

Every kernel also materializes per-sample gradients (``per_sample_grads``):
the slow path, used for weights shared across several calls and as the oracle
the fast path is tested against. Layers without a kernel fall back to
:class:`FunctorchKernel` (``torch.func.vmap`` over ``grad``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.grad
from torch import Tensor, nn
from torch.nn import functional

from privet.errors import PrivacyError

__all__ = [
    "KERNELS",
    "Capture",
    "FunctorchKernel",
    "LayerKernel",
    "kernel_for",
    "row_norms_sq",
    "weighted_sum",
]


@dataclass
class Capture:
    """One call of a layer: its inputs, and the per-sample gradient of its outputs."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    backprops: list[Tensor | None] = field(default_factory=list)
    #: Book-keeping (Bu et al. 2023): what ``norms_sq`` computed that ``clipped_sum`` reuses.
    kept: dict[str, Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        if not self.args or not isinstance(self.args[0], Tensor) or self.args[0].dim() == 0:
            raise PrivacyError(
                "a layer must receive its batched input as the first positional argument"
            )
        return int(self.args[0].shape[0])

    @property
    def grad_output(self) -> Tensor:
        (grad,) = self.backprops
        if grad is None:
            raise PrivacyError("a layer's output received no gradient; was the loss computed?")
        return grad


# Largest tensor (elements) a kernel keeps from the norm pass for the sum pass: 16 MiB of
# float32. Above it the sum is recomputed (the weight-gradient convolution), so a large
# network never holds every layer's unfolded patches at once.
BOOKKEEPING_BUDGET = 1 << 22


def _trainable(module: nn.Module, recurse: bool = False) -> dict[str, Tensor]:
    return {
        name: param
        for name, param in module.named_parameters(recurse=recurse)
        if param.requires_grad
    }


class LayerKernel(ABC):
    """Per-sample gradient arithmetic for one layer class."""

    #: The module's trainable parameters the kernel covers (direct or all).
    recurse: bool = False

    def parameters(self, module: nn.Module) -> dict[str, Tensor]:
        return _trainable(module, self.recurse)

    @abstractmethod
    def per_sample_grads(self, module: nn.Module, capture: Capture) -> dict[str, Tensor]:
        """Materialized per-sample gradients, ``name -> (N, *param.shape)``."""

    def norms_sq(self, module: nn.Module, capture: Capture) -> dict[str, Tensor]:
        """Squared per-sample gradient norms, ``name -> (N,)``."""
        return {
            name: row_norms_sq(grad)
            for name, grad in self.per_sample_grads(module, capture).items()
        }

    def clipped_sum(
        self, module: nn.Module, capture: Capture, scales: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        """``sum_i scales[name]_i * grad_i`` for each parameter ``name``."""
        return {
            name: weighted_sum(scales[name], grad)
            for name, grad in self.per_sample_grads(module, capture).items()
        }


def row_norms_sq(grads: Tensor) -> Tensor:
    """``||g_i||²`` for each example's gradient (one fused reduction)."""
    # vector_norm is several times faster than einsum or pow().sum() here.
    norms: Tensor = torch.linalg.vector_norm(grads.flatten(1), dim=1)
    return norms.square()


def weighted_sum(weights: Tensor, grads: Tensor) -> Tensor:
    """``sum_i weights_i * grads_i`` over the batch dimension."""
    total: Tensor = torch.tensordot(weights.to(grads.dtype), grads, dims=1)
    return total


def _weight(module: nn.Module) -> Tensor:
    return cast(Tensor, module.weight)


def _as_tokens(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Reshape ``(N, ..., d)`` activations and gradients to ``(N, T, d)``."""
    n = a.shape[0]
    return a.reshape(n, -1, a.shape[-1]), b.reshape(n, -1, b.shape[-1])


def _matmul_norms_sq(a: Tensor, b: Tensor) -> Tensor:
    """``||a_iᵀ b_i||_F²`` for ``a: (N, T, d_in)``, ``b: (N, T, d_out)``, cheapest way."""
    t, d_in, d_out = a.shape[1], a.shape[2], b.shape[2]
    if t == 1:
        return a.pow(2).sum((1, 2)) * b.pow(2).sum((1, 2))
    if t * t <= d_in * d_out:
        # Ghost norm: never forms the d_in x d_out gradient.
        return (torch.bmm(a, a.transpose(1, 2)) * torch.bmm(b, b.transpose(1, 2))).sum((1, 2))
    return torch.bmm(b.transpose(1, 2), a).pow(2).sum((1, 2))


class LinearKernel(LayerKernel):
    """``nn.Linear``: ``W.grad_i = B_iᵀ A_i``, ``b.grad_i = sum_t B_i``."""

    def _tokens(self, capture: Capture) -> tuple[Tensor, Tensor]:
        return _as_tokens(capture.args[0], capture.grad_output)

    def per_sample_grads(self, module: nn.Module, capture: Capture) -> dict[str, Tensor]:
        a, b = self._tokens(capture)
        grads = {"weight": torch.einsum("nto,nti->noi", b, a)}
        if "bias" in self.parameters(module):
            grads["bias"] = b.sum(1)
        return {name: grads[name] for name in self.parameters(module)}

    def norms_sq(self, module: nn.Module, capture: Capture) -> dict[str, Tensor]:
        a, b = self._tokens(capture)
        out = {"weight": _matmul_norms_sq(a, b)}
        if "bias" in self.parameters(module):
            out["bias"] = b.sum(1).pow(2).sum(1)
        return {name: out[name] for name in self.parameters(module)}

    def clipped_sum(
        self, module: nn.Module, capture: Capture, scales: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        a, b = self._tokens(capture)
        out = {}
        for name in self.parameters(module):
            scale = scales[name].to(b.dtype)
            if name == "weight":
                # Scale whichever of A and B is smaller: the copy is the only cost above the
                # weight gradient plain backward computes.
                if a.shape[-1] < b.shape[-1]:
                    left, right = b, a * scale.to(a.dtype)[:, None, None]
                else:
                    left, right = b * scale[:, None, None], a
                out[name] = left.reshape(-1, b.shape[-1]).T @ right.reshape(-1, a.shape[-1])
            else:
                # The bias needs only each example's summed output gradient.
                out[name] = scale @ b.sum(1)
        return out


class ConvKernel(LayerKernel):
    """``nn.Conv1d`` / ``nn.Conv2d`` through the convolution's own weight-gradient operator.

    Per-sample gradients are one grouped weight-gradient convolution with the
    batch folded into the groups (each example its own group); the clipped
    sum is the ordinary weight gradient of the scaled output gradients.
    """

    @staticmethod
    def _inputs(module: nn.Module, capture: Capture) -> tuple[Tensor, Any, Any]:
        """Input (explicitly padded unless zero padding), padding to use, weight-grad op."""
        conv: Any = module
        x = capture.args[0]
        if conv.padding_mode == "zeros" and not isinstance(conv.padding, str):
            padding = conv.padding
        else:
            mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
            x = functional.pad(x, conv._reversed_padding_repeated_twice, mode=mode)
            padding = 0
        weight_grad_of = (
            torch.nn.grad.conv1d_weight
            if isinstance(conv, nn.Conv1d)
            else torch.nn.grad.conv2d_weight
        )
        return x, padding, weight_grad_of

    def _per_sample_weight(self, module: nn.Module, capture: Capture) -> Tensor:
        conv: Any = module
        x, padding, weight_grad_of = self._inputs(module, capture)
        grad = capture.grad_output
        n, weight = x.shape[0], _weight(module)
        folded_x = x.reshape(1, n * x.shape[1], *x.shape[2:])
        folded_grad = grad.reshape(1, n * grad.shape[1], *grad.shape[2:])
        shape = (n * weight.shape[0], *weight.shape[1:])
        per_sample: Tensor = weight_grad_of(
            folded_x, shape, folded_grad, conv.stride, padding, conv.dilation, conv.groups * n
        )
        return per_sample.reshape(n, *weight.shape)

    def per_sample_grads(self, module: nn.Module, capture: Capture) -> dict[str, Tensor]:
        grads = {}
        for name in self.parameters(module):
            if name == "weight":
                grads[name] = self._per_sample_weight(module, capture)
            else:
                grads[name] = capture.grad_output.flatten(2).sum(2)
        return grads

    def _patches(self, module: nn.Module, capture: Capture) -> tuple[Tensor, Tensor]:
        """``a: (N*G, L, C_in/G * k)`` unfolded patches, ``b: (N*G, L, C_out/G)`` gradients.

        The patches are a strided view of the padded input copied once into
        ``(N, L, C_in * k)`` order (several times faster than ``unfold`` on CPU,
        and already laid out for the matrix products).
        """
        conv: Any = module
        x = capture.args[0]
        if isinstance(conv, nn.Conv1d):
            x = x.unsqueeze(2)
            kernel, stride, dilation = (
                (1, *conv.kernel_size),
                (1, *conv.stride),
                (1, *conv.dilation),
            )
            pad = (*conv._reversed_padding_repeated_twice, 0, 0)
        else:
            kernel, stride, dilation = conv.kernel_size, conv.stride, conv.dilation
            pad = conv._reversed_padding_repeated_twice
        mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        x = functional.pad(x, pad, mode=mode)
        n, channels, height, width = x.shape
        out_h = (height - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
        out_w = (width - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
        s_n, s_c, s_h, s_w = x.stride()
        windows = x.as_strided(
            (n, out_h, out_w, channels, kernel[0], kernel[1]),
            (s_n, s_h * stride[0], s_w * stride[1], s_c, s_h * dilation[0], s_w * dilation[1]),
        )
        a = windows.reshape(n, out_h * out_w, -1)
        groups = conv.groups
        if groups > 1:
            a = a.reshape(n, out_h * out_w, groups, -1).transpose(1, 2)
            a = a.reshape(n * groups, out_h * out_w, -1)
        return a, self._grad_columns(module, capture)

    @staticmethod
    def _grad_columns(module: nn.Module, capture: Capture) -> Tensor:
        """``b: (N*G, L, C_out/G)``: output gradients, one row per output position."""
        grad, groups = capture.grad_output, cast(Any, module).groups
        return grad.reshape(grad.shape[0] * groups, grad.shape[1] // groups, -1).transpose(1, 2)

    def norms_sq(self, module: nn.Module, capture: Capture) -> dict[str, Tensor]:
        # Ghost norms or a per-sample matrix product, whichever is cheaper; the
        # grouped weight-gradient convolution is slower here for many examples.
        params = self.parameters(module)
        out = {}
        if "weight" in params:
            a, b = self._patches(module, capture)
            n = capture.batch_size
            t, d_in, d_out = a.shape[1], a.shape[2], b.shape[2]
            if t * t <= d_in * d_out:
                norms = (torch.bmm(a, a.transpose(1, 2)) * torch.bmm(b, b.transpose(1, 2))).sum(
                    (1, 2)
                )
            else:
                per_sample = torch.bmm(b.transpose(1, 2), a)
                norms = row_norms_sq(per_sample)
                if per_sample.numel() <= BOOKKEEPING_BUDGET:
                    capture.kept["per_sample_weight"] = per_sample
            out["weight"] = norms.reshape(n, -1).sum(1)
        if "bias" in params:
            out["bias"] = row_norms_sq(capture.grad_output.flatten(2).sum(2))
        return out

    def clipped_sum(
        self, module: nn.Module, capture: Capture, scales: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        conv: Any = module
        grad = capture.grad_output
        out = {}
        for name in self.parameters(module):
            shape = (-1,) + (1,) * (grad.dim() - 1)
            if name == "weight":
                per_sample = capture.kept.get("per_sample_weight")
                if per_sample is not None:
                    # Book-keeping: the norm pass materialized small per-sample gradients.
                    flat = per_sample.reshape(capture.batch_size, -1)
                    summed = torch.tensordot(scales[name].to(flat.dtype), flat, dims=1)
                    out[name] = summed.reshape(_weight(module).shape)
                    continue
                x, padding, weight_grad_of = self._inputs(module, capture)
                scaled = grad * scales[name].to(grad.dtype).reshape(shape)
                out[name] = weight_grad_of(
                    x,
                    _weight(module).shape,
                    scaled,
                    conv.stride,
                    padding,
                    conv.dilation,
                    conv.groups,
                )
            else:
                scaled = grad * scales[name].to(grad.dtype).reshape(shape)
                out[name] = scaled.sum(dim=(0, *range(2, grad.dim())))
        return out


class EmbeddingKernel(LayerKernel):
    """``nn.Embedding``: example i's row v sums the output gradients where its index is v."""

    def _inputs(self, module: nn.Module, capture: Capture) -> tuple[Tensor, Tensor]:
        embedding: Any = module
        if embedding.sparse or embedding.scale_grad_by_freq or embedding.max_norm is not None:
            raise PrivacyError(
                "nn.Embedding with sparse, scale_grad_by_freq or max_norm is not supported by "
                "per-sample clipping; build it without them"
            )
        idx = capture.args[0]
        n = idx.shape[0]
        idx = idx.reshape(n, -1)
        b = capture.grad_output.reshape(n, idx.shape[1], -1)
        if embedding.padding_idx is not None:
            # torch gives the padding row no gradient.
            b = b * (idx != embedding.padding_idx).unsqueeze(-1).to(b.dtype)
        return idx, b

    def per_sample_grads(self, module: nn.Module, capture: Capture) -> dict[str, Tensor]:
        idx, b = self._inputs(module, capture)
        n, t = idx.shape
        grads = torch.zeros(n, *_weight(module).shape, dtype=b.dtype, device=b.device)
        rows = idx + torch.arange(n, device=idx.device)[:, None] * _weight(module).shape[0]
        grads.view(-1, b.shape[-1]).index_add_(0, rows.flatten(), b.reshape(n * t, -1))
        return {"weight": grads}

    def norms_sq(self, module: nn.Module, capture: Capture) -> dict[str, Tensor]:
        idx, b = self._inputs(module, capture)
        same = (idx[:, :, None] == idx[:, None, :]).to(b.dtype)
        return {"weight": (same * torch.bmm(b, b.transpose(1, 2))).sum((1, 2))}

    def clipped_sum(
        self, module: nn.Module, capture: Capture, scales: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        idx, b = self._inputs(module, capture)
        out = torch.zeros_like(_weight(module), dtype=b.dtype)
        scaled = b * scales["weight"].to(b.dtype)[:, None, None]
        out.index_add_(0, idx.flatten(), scaled.reshape(-1, b.shape[-1]))
        return {"weight": out}


class _NormKernel(LayerKernel):
    """Affine normalization: per-sample gradients are small (one value per channel)."""

    def _normalized(self, module: nn.Module, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _reduce(self, module: nn.Module, values: Tensor) -> Tensor:
        raise NotImplementedError

    def per_sample_grads(self, module: nn.Module, capture: Capture) -> dict[str, Tensor]:
        x, b = capture.args[0], capture.grad_output
        params = self.parameters(module)
        grads = {}
        if "weight" in params:
            grads["weight"] = self._reduce(module, self._normalized(module, x) * b)
        if "bias" in params:
            grads["bias"] = self._reduce(module, b)
        return grads


class LayerNormKernel(_NormKernel):
    """``nn.LayerNorm``: gradients summed over every dimension but batch and normalized ones."""

    def _normalized(self, module: nn.Module, x: Tensor) -> Tensor:
        norm: Any = module
        return functional.layer_norm(x, norm.normalized_shape, eps=norm.eps)

    def _reduce(self, module: nn.Module, values: Tensor) -> Tensor:
        norm: Any = module
        inner = values.dim() - 1 - len(norm.normalized_shape)
        return values.sum(tuple(range(1, 1 + inner))) if inner else values


class GroupNormKernel(_NormKernel):
    """``nn.GroupNorm``: gradients per channel, summed over spatial positions."""

    def _normalized(self, module: nn.Module, x: Tensor) -> Tensor:
        norm: Any = module
        return functional.group_norm(x, norm.num_groups, eps=norm.eps)

    def _reduce(self, module: nn.Module, values: Tensor) -> Tensor:
        return values.flatten(2).sum(2) if values.dim() > 2 else values


class FunctorchKernel(LayerKernel):
    """Any module: per-sample gradients of all its parameters by ``vmap(grad(...))``.

    The gradient of ``<module(x_i), B_i>`` with respect to the parameters is
    example ``i``'s gradient (a vector-Jacobian product), so one vmapped
    ``grad`` over the captured inputs gives them all.
    """

    recurse = True

    def per_sample_grads(self, module: nn.Module, capture: Capture) -> dict[str, Tensor]:
        from torch.func import functional_call, grad, vmap

        params = {name: p.detach() for name, p in self.parameters(module).items()}
        n = capture.batch_size
        # Tensors with the batch dimension are vmapped; everything else is passed as is.
        batched_args = [
            i for i, a in enumerate(capture.args) if isinstance(a, Tensor) and a.shape[:1] == (n,)
        ]
        batched_kwargs = [
            k for k, v in capture.kwargs.items() if isinstance(v, Tensor) and v.shape[:1] == (n,)
        ]
        dtype = next(iter(params.values())).dtype

        def inner_product(
            p: dict[str, Tensor],
            args_i: tuple[Tensor, ...],
            kwargs_i: dict[str, Tensor],
            gouts: tuple[Tensor | None, ...],
        ) -> Tensor:
            args = list(capture.args)
            for position, value in zip(batched_args, args_i, strict=True):
                args[position] = value.unsqueeze(0)
            kwargs = dict(capture.kwargs)
            kwargs.update({k: v.unsqueeze(0) for k, v in kwargs_i.items()})
            out = functional_call(module, p, tuple(args), kwargs)
            outputs = out if isinstance(out, tuple) else (out,)
            total = torch.zeros((), dtype=dtype)
            for value, g in zip(outputs, gouts, strict=False):
                if g is not None and isinstance(value, Tensor):
                    total = total + (value * g.unsqueeze(0)).sum()
            return total

        args_b = tuple(capture.args[i] for i in batched_args)
        kwargs_b = {k: capture.kwargs[k] for k in batched_kwargs}
        gouts = tuple(capture.backprops)
        gout_dims = tuple(0 if g is not None else None for g in gouts)
        per_sample = vmap(grad(inner_product), in_dims=(None, 0, 0, gout_dims))(
            params, args_b, kwargs_b, gouts
        )
        return dict(per_sample)


KERNELS: Mapping[type[nn.Module], LayerKernel] = {
    nn.Linear: LinearKernel(),
    nn.Conv1d: ConvKernel(),
    nn.Conv2d: ConvKernel(),
    nn.Embedding: EmbeddingKernel(),
    nn.LayerNorm: LayerNormKernel(),
    nn.GroupNorm: GroupNormKernel(),
}
_FALLBACK = FunctorchKernel()


def kernel_for(module: nn.Module) -> LayerKernel | None:
    """The kernel for ``module``'s own parameters, or ``None`` if it has none to train.

    Exact class match: a subclass may change ``forward``, so it gets the general
    ``torch.func`` kernel rather than a fast path that could be wrong for it.
    """
    kernel = KERNELS.get(type(module))
    if kernel is not None:
        return kernel if _trainable(module) else None
    return _FALLBACK if _trainable(module) else None
