"""Convolution and pooling on shared image batches ``(N, C, H, W)``, torch's semantics.

* :func:`conv2d`: with shared kernels, one round of a convolution triple
  (:func:`privet.mpc.protocols.conv2d`: only images and kernels are opened,
  not their im2col patches) and one truncation; with public kernels, local
  and one truncation. Error: one stochastic rounding, at most ``2^-f``.
* :func:`avg_pool2d`: window sums are local; one division by the public
  window size (error ``|mean| 2^-(f+1) + 2^-f``).
* :func:`max_pool2d`: the exact tournament of :func:`privet.mpc.functions.max`
  over each window (``ceil(log2(kh kw))`` levels, 9 rounds each).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from privet.errors import PrivacyError
from privet.mpc import functions, protocols
from privet.mpc.ring import ConvGeometry
from privet.mpc.tensor import SharedTensor

__all__ = ["avg_pool2d", "conv2d", "max_pool2d"]


def _pair(value: int | tuple[int, int], name: str, low: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, tuple)
        or len(pair) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in pair)
    ):
        raise PrivacyError(f"{name} must be an integer >= {low} or a pair of them, got {value!r}")
    return pair


def _check_images(images: SharedTensor) -> None:
    if not isinstance(images, SharedTensor) or images.ndim != 4:
        shape = images.shape if isinstance(images, SharedTensor) else type(images).__name__
        raise PrivacyError(f"images must be a shared (N, C, H, W) tensor, got {shape}")


def _height_width(images: SharedTensor) -> tuple[int, int]:
    return images.shape[2], images.shape[3]


def conv2d(
    images: SharedTensor,
    kernels: SharedTensor | ArrayLike,
    bias: SharedTensor | ArrayLike | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> SharedTensor:
    """``torch.nn.functional.conv2d`` on shares: kernels ``(O, C, kh, kw)``, bias ``(O,)``.

    Kernels and bias may be shared (a model owner's secret) or public.
    """
    _check_images(images)
    geometry = ConvGeometry(_pair(stride, "stride", 1), _pair(padding, "padding", 0))
    session = images.session
    if isinstance(kernels, SharedTensor):
        if kernels.session is not session:
            raise PrivacyError("images and kernels must belong to the same session")
        kernel_shape = kernels.shape
    else:
        public = np.asarray(kernels, dtype=np.float64)
        kernel_shape = public.shape
    if len(kernel_shape) != 4 or kernel_shape[1] != images.shape[1]:
        raise PrivacyError(
            f"kernels must be (O, {images.shape[1]}, kh, kw) for {images.shape[1]} input "
            f"channels, got {kernel_shape}"
        )
    # The kernel fits the padded images, or a clear error.
    geometry.output_size(_height_width(images), (kernel_shape[2], kernel_shape[3]))
    if isinstance(kernels, SharedTensor):
        product = protocols.conv2d(
            session.runtime, session.dealer, images.shares, kernels.shares, geometry
        )
    else:
        encoded = session.encoding.encode(public)
        product = protocols.conv2d_public(images.shares, encoded, geometry)
    bits = session.encoding.fractional_bits
    out = SharedTensor(session, protocols.truncate(session.runtime, session.dealer, product, bits))
    if bias is None:
        return out
    bias_shape = bias.shape if isinstance(bias, SharedTensor) else np.shape(bias)
    if tuple(bias_shape) != (kernel_shape[0],):
        raise PrivacyError(
            f"bias must be one value per output channel, shape ({kernel_shape[0]},), "
            f"got {tuple(bias_shape)}"
        )
    column = (
        bias.reshape(-1, 1, 1) if isinstance(bias, SharedTensor) else np.reshape(bias, (-1, 1, 1))
    )
    return out + column


def _windows(
    images: SharedTensor, kernel: tuple[int, int], stride: tuple[int, int]
) -> SharedTensor:
    """``(N, C, H_out, W_out, kh * kw)``: each output position's window, flattened."""
    geometry = ConvGeometry(stride, (0, 0))
    ho, wo = geometry.output_size(_height_width(images), kernel)
    view = np.lib.stride_tricks.sliding_window_view(images.shares, kernel, axis=(-2, -1))
    view = view[..., :: stride[0], :: stride[1], :, :][..., :ho, :wo, :, :]
    flat = np.ascontiguousarray(view).reshape((*view.shape[:-2], kernel[0] * kernel[1]))
    return SharedTensor(images.session, flat)


def avg_pool2d(
    images: SharedTensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
) -> SharedTensor:
    """``torch.nn.functional.avg_pool2d`` (no padding); ``stride`` defaults to the kernel."""
    _check_images(images)
    kernel = _pair(kernel_size, "kernel_size", 1)
    steps = kernel if stride is None else _pair(stride, "stride", 1)
    return _windows(images, kernel, steps).sum(axis=-1) / float(kernel[0] * kernel[1])


def max_pool2d(
    images: SharedTensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
) -> SharedTensor:
    """``torch.nn.functional.max_pool2d`` (no padding), exactly; ``stride`` defaults to
    the kernel."""
    _check_images(images)
    kernel = _pair(kernel_size, "kernel_size", 1)
    steps = kernel if stride is None else _pair(stride, "stride", 1)
    return functions.max(_windows(images, kernel, steps), axis=-1)
