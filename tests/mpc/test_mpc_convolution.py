"""Convolution and pooling on shared image batches against torch.nn.functional.

Bounds (privet.mpc.convolution docstring, f = 16, ulp = 2^-16): conv2d is off by one
stochastic rounding, at most 2^-16 per output; avg_pool2d by at most |mean| 2^-17 +
2^-16; max_pool2d is exact. Inputs are encoded values; a product of two has at most 32
fractional bits and every sum here stays far below 2^(53 - 32), so torch's float64
convolution is exact: the reference is the true value for the encoded inputs. Inputs,
dealer seed and simulator are fixed: every check is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as tf
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.mpc import Dealer, FixedPoint, Session, SharedTensor, Simulator
from privet.mpc.convolution import avg_pool2d, conv2d, max_pool2d

ULP = 2.0**-16


def session(parties: int) -> Session:
    return Session(Simulator(parties), Dealer(parties, bytes(32)))


def encoded(values: NDArray[np.float64]) -> NDArray[np.float64]:
    fp = FixedPoint()
    return fp.decode(fp.encode(values))


def rounds_of(mpc: Session, call: Callable[[], SharedTensor]) -> tuple[int, SharedTensor]:
    before = mpc.runtime.stats.rounds
    result = call()
    return mpc.runtime.stats.rounds - before, result


def torch_of(values: NDArray[np.float64] | None) -> torch.Tensor | None:
    return None if values is None else torch.from_numpy(values)


@pytest.fixture(params=[2, 3], ids=["2 parties", "3 parties"])
def mpc(request: pytest.FixtureRequest) -> Session:
    return session(request.param)


# -- conv2d ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_hw", "kernel_hw", "stride", "padding"),
    [
        ((6, 6), (3, 3), 1, 0),
        ((9, 8), (3, 2), 2, 1),  # non-square kernel, stride and padding
        ((9, 8), (2, 3), (1, 2), (2, 0)),  # per-axis stride and padding
        ((7, 10), (1, 4), (3, 2), (0, 1)),
        ((5, 4), (7, 4), 1, (1, 0)),  # the kernel exactly as tall as the padded image
        ((5, 5), (1, 1), 2, 0),
        ((4, 4), (2, 2), 3, 2),  # stride larger than the kernel
    ],
)
def test_conv2d_matches_torch_within_one_unit_with_shared_or_public_kernels_and_bias(
    mpc: Session,
    image_hw: tuple[int, int],
    kernel_hw: tuple[int, int],
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
) -> None:
    """Shared kernels cost 2 rounds (one Beaver opening of images and kernels, one
    truncation), public kernels 1 (the truncation); a bias adds none."""
    rng = np.random.default_rng(sum(image_hw) + sum(kernel_hw))
    images = encoded(rng.normal(size=(2, 3, *image_hw)) * 4)
    images[0, 0, 0, :2] = [0.0, -ULP]
    kernels = encoded(rng.normal(size=(4, 3, *kernel_hw)))
    bias = encoded(rng.normal(size=4) * 2)
    shared_images = mpc.share(images)
    shared_kernels, shared_bias = mpc.share(kernels, owner=1), mpc.share(bias, owner=1)
    Operand = SharedTensor | NDArray[np.float64]
    cases: list[tuple[Operand, Operand | None, NDArray[np.float64] | None, int]] = [
        (shared_kernels, shared_bias, bias, 2),
        (shared_kernels, None, None, 2),
        (shared_kernels, bias, bias, 2),
        (kernels, bias, bias, 1),
        (kernels, shared_bias, bias, 1),
        (kernels, None, None, 1),
    ]
    for kernel_arg, bias_arg, plain_bias, expected_rounds in cases:
        before = mpc.runtime.stats.rounds
        out = conv2d(shared_images, kernel_arg, bias_arg, stride=stride, padding=padding)
        assert mpc.runtime.stats.rounds - before == expected_rounds
        expected = tf.conv2d(
            torch.from_numpy(images),
            torch.from_numpy(kernels),
            torch_of(plain_bias),
            stride=stride,
            padding=padding,
        ).numpy()
        assert out.shape == expected.shape
        assert np.all(np.abs(out.reveal() - expected) <= ULP)


def test_conv2d_refuses_bad_images_kernels_geometry_and_foreign_tensors() -> None:
    mpc, other = session(2), session(2)
    images = mpc.share(np.zeros((2, 3, 5, 5)))
    kernels = np.zeros((4, 3, 2, 2))
    with pytest.raises(PrivacyError, match=r"images must be a shared \(N, C, H, W\) tensor, got"):
        conv2d(mpc.share(np.zeros((3, 5, 5))), kernels)
    with pytest.raises(PrivacyError, match=r"images must be .* tensor, got ndarray"):
        conv2d(np.zeros((2, 3, 5, 5)), kernels)  # type: ignore[arg-type]
    with pytest.raises(
        PrivacyError, match=r"kernels must be \(O, 3, kh, kw\) .* got \(4, 2, 2, 2\)"
    ):
        conv2d(images, np.zeros((4, 2, 2, 2)))
    with pytest.raises(PrivacyError, match=r"kernels must be \(O, 3, kh, kw\) .* got \(3, 2, 2\)"):
        conv2d(images, np.zeros((3, 2, 2)))
    with pytest.raises(PrivacyError, match=r"kernels must be .* got \(1, 4, 3, 2, 2\)"):
        conv2d(images, mpc.share(np.zeros((1, 4, 3, 2, 2))))
    with pytest.raises(PrivacyError, match="kernel size must be <= padded input size 5, got 6"):
        conv2d(images, np.zeros((4, 3, 6, 2)))
    with pytest.raises(PrivacyError, match="kernel size must be <= padded input size 7, got 8"):
        conv2d(images, np.zeros((4, 3, 2, 8)), padding=1)
    for stride in (0, -1, True, (1, 0), (1,), (1, 2, 3), 1.5, [1, 1]):
        with pytest.raises(PrivacyError, match=r"stride must be an integer >= 1 or a pair"):
            conv2d(images, kernels, stride=stride)  # type: ignore[arg-type]
    for padding in (-1, True, (0, -1), 0.5):
        with pytest.raises(PrivacyError, match=r"padding must be an integer >= 0 or a pair"):
            conv2d(images, kernels, padding=padding)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="images and kernels must belong to the same session"):
        conv2d(images, other.share(kernels))
    with pytest.raises(PrivacyError, match="shared tensors must belong to the same session"):
        conv2d(images, kernels, other.share(np.zeros(4)))
    with pytest.raises(
        PrivacyError, match=r"bias must be one value per output channel, shape \(4,\), got \(5,\)"
    ):
        conv2d(images, kernels, np.zeros(5))


@pytest.mark.parametrize("bias_shape", [(2, 2), (1,)])
def test_conv2d_refuses_a_bias_that_is_not_one_value_per_output_channel(
    bias_shape: tuple[int, ...],
) -> None:
    mpc = session(2)
    with pytest.raises(PrivacyError, match="bias must be"):
        conv2d(mpc.share(np.zeros((1, 3, 5, 5))), np.zeros((4, 3, 2, 2)), np.zeros(bias_shape))


# -- pooling -----------------------------------------------------------------------------------


POOLS = [
    ((6, 6), 2, None),
    ((7, 9), (2, 3), (1, 2)),  # stride differs from the kernel on both axes
    ((8, 7), 3, 2),  # overlapping windows
    ((7, 7), 2, 3),  # stride larger than the kernel: some pixels are in no window
    ((5, 6), (1, 1), None),
    ((5, 6), (5, 6), None),  # one window covering the image
]


@pytest.mark.parametrize(("image_hw", "kernel", "stride"), POOLS)
def test_avg_pool2d_within_its_bound_in_one_round(
    mpc: Session,
    image_hw: tuple[int, int],
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] | None,
) -> None:
    rng = np.random.default_rng(sum(image_hw))
    images = encoded(rng.normal(size=(2, 3, *image_hw)) * 8)
    shared = mpc.share(images)
    rounds, out = rounds_of(mpc, lambda: avg_pool2d(shared, kernel, stride))
    # The division by the public window size is one truncation, except by 1 (an integer
    # factor: exact and local).
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    assert rounds == (0 if kh * kw == 1 else 1)
    expected = tf.avg_pool2d(torch.from_numpy(images), kernel, stride).numpy()
    assert out.shape == expected.shape
    assert np.all(np.abs(out.reveal() - expected) <= np.abs(expected) * ULP / 2 + ULP)


@pytest.mark.parametrize(("image_hw", "kernel", "stride"), POOLS)
def test_max_pool2d_is_exact_in_ceil_log2_window_levels_of_nine_rounds(
    mpc: Session,
    image_hw: tuple[int, int],
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] | None,
) -> None:
    rng = np.random.default_rng(10 + sum(image_hw))
    # Half small integers (ties within windows), half spread-out encoded values.
    images = np.concatenate(
        [
            rng.integers(-2, 3, size=(1, 3, *image_hw)).astype(np.float64),
            encoded(rng.normal(size=(1, 3, *image_hw)) * 100),
        ]
    )
    shared = mpc.share(images)
    rounds, out = rounds_of(mpc, lambda: max_pool2d(shared, kernel, stride))
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    assert rounds == 9 * math.ceil(math.log2(kh * kw))
    expected = tf.max_pool2d(torch.from_numpy(images), kernel, stride).numpy()
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.reveal(), expected)


@pytest.mark.parametrize("pool", [avg_pool2d, max_pool2d])
def test_pooling_refuses_bad_images_kernels_and_strides(
    pool: Callable[..., SharedTensor],
) -> None:
    mpc = session(2)
    images = mpc.share(np.zeros((1, 2, 5, 5)))
    with pytest.raises(PrivacyError, match=r"images must be a shared \(N, C, H, W\) tensor, got"):
        pool(mpc.share(np.zeros((2, 5, 5))), 2)
    with pytest.raises(PrivacyError, match="kernel size must be <= padded input size 5, got 6"):
        pool(images, (6, 1))
    for kernel in (0, -2, True, (2, 0), (2,), 2.0):
        with pytest.raises(PrivacyError, match=r"kernel_size must be an integer >= 1 or a pair"):
            pool(images, kernel)
    for stride in (0, False, (1, -1), [2, 2]):
        with pytest.raises(PrivacyError, match=r"stride must be an integer >= 1 or a pair"):
            pool(images, 2, stride)
