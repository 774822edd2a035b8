"""Trained ``torch.nn`` models as private models on shares: the torch adapter of privet.mpc.

:func:`private_model` reads a ``torch.nn.Sequential`` (nested ones are
flattened) layer by layer — no ONNX round trip — and secret-shares every
weight as the model owner's input, so the other parties never see them;
the data owner's inputs stay theirs the same way. The architecture (layer
types and shapes) is public: every party calls :func:`private_model` with a
module of the same architecture, and only the owner's weights are used.

Supported layers: ``Linear``, ``Conv2d`` (``groups=1``, ``dilation=1``, zero
padding), ``ReLU``, ``AvgPool2d`` and ``MaxPool2d`` (no padding, ``ceil_mode``
off), ``Flatten``, ``Dropout`` and ``Identity`` (no-ops at inference),
``Sigmoid``, ``Softmax``; ``BatchNorm1d``/``BatchNorm2d`` in eval mode are
folded into the preceding ``Linear``/``Conv2d`` (``W' = W gamma / sigma``,
``b' = (b - mu) gamma / sigma + beta``; Ioffe & Szegedy 2015), or applied as a
shared affine map when nothing precedes them. Anything else is refused with
its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from privet.errors import PrivacyError
from privet.mpc import convolution, functions
from privet.mpc.tensor import Session, SharedTensor

__all__ = ["PrivateModel", "private_model"]

Layer = Callable[[SharedTensor], SharedTensor]


def _array(tensor: torch.Tensor) -> NDArray[np.float64]:
    return tensor.detach().to(torch.float64).cpu().numpy()


@dataclass(frozen=True)
class _Affine:
    """``x @ W^T + b`` (Linear) or ``conv2d(x, W) + b`` with shared ``W`` and ``b``."""

    weight: SharedTensor
    bias: SharedTensor | None
    stride: tuple[int, int] | None = None  # None: a Linear layer
    padding: tuple[int, int] = (0, 0)

    def __call__(self, x: SharedTensor) -> SharedTensor:
        if self.stride is None:
            out = x @ self.weight.T
            return out + self.bias if self.bias is not None else out
        return convolution.conv2d(x, self.weight, self.bias, self.stride, self.padding)


@dataclass(frozen=True)
class _Scale:
    """``x * scale + shift`` per channel (a BatchNorm with nothing to fold into)."""

    scale: SharedTensor
    shift: SharedTensor

    def __call__(self, x: SharedTensor) -> SharedTensor:
        return x * self.scale + self.shift


@dataclass(frozen=True)
class _Function:
    """A parameter-free layer."""

    apply: Layer
    name: str

    def __call__(self, x: SharedTensor) -> SharedTensor:
        return self.apply(x)


class PrivateModel:
    """A model whose weights are secret-shared: call it on a shared batch.

    Built by :func:`private_model`; ``layers`` names what runs, in order.
    """

    def __init__(self, session: Session, layers: Sequence[Layer], names: Sequence[str]) -> None:
        self.session = session
        self._layers = tuple(layers)
        self.layers = tuple(names)

    def __call__(self, x: SharedTensor) -> SharedTensor:
        if not isinstance(x, SharedTensor) or x.session is not self.session:
            raise PrivacyError("input must be a SharedTensor of the model's session")
        for layer in self._layers:
            x = layer(x)
        return x

    def __repr__(self) -> str:
        return f"PrivateModel({', '.join(self.layers)})"


def _flatten(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _flatten(child)]
    return [module]


def _pair(value: int | tuple[int, ...] | str, name: str) -> tuple[int, int]:
    if isinstance(value, str):
        raise PrivacyError(f"{name} must be integers (torch's '{value}' padding is not supported)")
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise PrivacyError(f"{name} must be a pair, got {value!r}")
    return int(pair[0]), int(pair[1])


def _bn_factors(norm: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[NDArray[np.float64], ...]:
    """``gamma / sigma`` and ``beta - mu gamma / sigma`` of an eval-mode BatchNorm."""
    if norm.running_mean is None or norm.running_var is None:
        raise PrivacyError("BatchNorm layers must track running statistics to be folded")
    gamma = _array(norm.weight) if norm.weight is not None else 1.0
    beta = _array(norm.bias) if norm.bias is not None else 0.0
    scale = gamma / np.sqrt(_array(norm.running_var) + norm.eps)
    return np.broadcast_to(scale, norm.running_mean.shape), beta - _array(norm.running_mean) * scale


@dataclass
class _Pending:
    """A Linear/Conv2d in plaintext, kept until the next layer shows no BatchNorm follows."""

    weight: NDArray[np.float64]
    bias: NDArray[np.float64]
    stride: tuple[int, int] | None
    padding: tuple[int, int]
    name: str

    def fold(self, scale: NDArray[np.float64], shift: NDArray[np.float64]) -> None:
        shape = (-1,) + (1,) * (self.weight.ndim - 1)
        self.weight = self.weight * scale.reshape(shape)
        self.bias = self.bias * scale + shift
        self.name += "+BatchNorm"


def _plain_affine(module: nn.Linear | nn.Conv2d) -> _Pending:
    weight = _array(module.weight)
    bias = _array(module.bias) if module.bias is not None else np.zeros(weight.shape[0])
    if isinstance(module, nn.Linear):
        return _Pending(weight, bias, None, (0, 0), "Linear")
    if module.groups != 1 or _pair(module.dilation, "dilation") != (1, 1):
        raise PrivacyError(
            f"Conv2d must have groups=1 and dilation=1, got {module.groups} and {module.dilation}"
        )
    if module.padding_mode != "zeros":
        raise PrivacyError(f"Conv2d padding_mode must be 'zeros', got {module.padding_mode!r}")
    return _Pending(
        weight, bias, _pair(module.stride, "stride"), _pair(module.padding, "padding"), "Conv2d"
    )


def _pool(module: nn.AvgPool2d | nn.MaxPool2d) -> _Function:
    if _pair(module.padding, "padding") != (0, 0) or module.ceil_mode:
        raise PrivacyError(f"{type(module).__name__} must have padding 0 and ceil_mode off")
    if isinstance(module, nn.MaxPool2d) and _pair(module.dilation, "dilation") != (1, 1):
        raise PrivacyError(f"MaxPool2d dilation must be 1, got {module.dilation}")
    kernel = _pair(module.kernel_size, "kernel_size")
    stride = _pair(module.stride, "stride") if module.stride is not None else kernel
    if isinstance(module, nn.AvgPool2d):
        return _Function(lambda x: convolution.avg_pool2d(x, kernel, stride), "AvgPool2d")
    return _Function(lambda x: convolution.max_pool2d(x, kernel, stride), "MaxPool2d")


def _flatten_layer(module: nn.Flatten) -> _Function:
    if module.start_dim != 1 or module.end_dim != -1:
        raise PrivacyError(
            f"Flatten must keep the batch axis (start_dim=1, end_dim=-1), got "
            f"{module.start_dim} and {module.end_dim}"
        )
    return _Function(lambda x: x.reshape(x.shape[0], -1), "Flatten")


def _function(module: nn.Module) -> _Function | None:
    """The parameter-free layers, or None."""
    if isinstance(module, nn.ReLU):
        return _Function(SharedTensor.relu, "ReLU")
    if isinstance(module, nn.Sigmoid):
        return _Function(functions.sigmoid, "Sigmoid")
    if isinstance(module, nn.Softmax):
        axis = module.dim if module.dim is not None else -1
        return _Function(lambda x: functions.softmax(x, axis), "Softmax")
    if isinstance(module, nn.AvgPool2d | nn.MaxPool2d):
        return _pool(module)
    if isinstance(module, nn.Flatten):
        return _flatten_layer(module)
    if isinstance(module, nn.Dropout | nn.Identity):
        return _Function(lambda x: x, type(module).__name__)
    return None


def private_model(module: nn.Module, session: Session, owner: int = 0) -> PrivateModel:
    """Secret-share ``module``'s weights as ``owner``'s input and return the private model.

    Parameters
    ----------
    module
        A trained ``torch.nn.Sequential`` (nested ones are flattened) of the
        supported layers (module docstring); BatchNorm must be in eval mode.
    session
        The MPC session whose parties run the model.
    owner
        The party that holds the weights (the others' weights are ignored).
    """
    if not isinstance(module, nn.Module):
        raise PrivacyError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    leaves = _flatten(module)
    layers: list[Layer] = []
    names: list[str] = []
    pending: _Pending | None = None

    def share(values: NDArray[np.float64]) -> SharedTensor:
        return session.share(values, owner=owner)

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            bias = share(pending.bias)
            layers.append(_Affine(share(pending.weight), bias, pending.stride, pending.padding))
            names.append(pending.name)
            pending = None

    for leaf in leaves:
        if isinstance(leaf, nn.BatchNorm1d | nn.BatchNorm2d):
            if leaf.training:
                raise PrivacyError("BatchNorm layers must be in eval mode (call module.eval())")
            scale, shift = _bn_factors(leaf)
            if pending is not None:
                pending.fold(scale, shift)
                continue
            shape = (-1, 1, 1) if isinstance(leaf, nn.BatchNorm2d) else (-1,)
            layers.append(_Scale(share(scale.reshape(shape)), share(shift.reshape(shape))))
            names.append(type(leaf).__name__)
            continue
        flush()
        if isinstance(leaf, nn.Linear | nn.Conv2d):
            pending = _plain_affine(leaf)
            continue
        function = _function(leaf)
        if function is None:
            raise PrivacyError(
                f"layer must be one of Linear, Conv2d, ReLU, AvgPool2d, MaxPool2d, Flatten, "
                f"BatchNorm1d/2d, Dropout, Identity, Sigmoid, Softmax; got {type(leaf).__name__}"
            )
        layers.append(function)
        names.append(function.name)
    flush()
    _pool_before_relu(layers, names)
    return PrivateModel(session, layers, names)


def _pool_before_relu(layers: list[Layer], names: list[str]) -> None:
    """Swap each ReLU followed by a MaxPool2d: ``maxpool(relu(x)) = relu(maxpool(x))`` (both
    are monotone), and the ReLU then runs on ``kh kw`` times fewer values."""
    for i in range(len(names) - 1):
        if names[i] == "ReLU" and names[i + 1] == "MaxPool2d":
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
            names[i], names[i + 1] = names[i + 1], names[i]
