"""The ring Z_2^64, fixed-point encoding, the limb-BLAS and torch matmuls, im2col convolution and
bit planes, each against a slow numpy loop."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from privet.errors import PrivacyError
from privet.mpc import torch_kernels
from privet.mpc.dealer import pack_bits
from privet.mpc.ring import (
    ConvGeometry,
    FixedPoint,
    RingArray,
    bit_planes,
    ring_conv2d,
    ring_matmul,
    ring_matmul_limbs,
    ring_matmul_naive,
)
from privet.mpc.torch_kernels import torch_ring_matmul


@pytest.mark.parametrize("bits", [0, 8, 16, 24])
def test_decode_of_encode_is_exact_for_every_multiple_of_the_resolution(bits: int) -> None:
    """Catrina & Saxena 2010 encoding: round(x 2^f) in two's complement. Every multiple of
    2^-f below 2^(53-f) must survive the round trip, negatives and the extremes included
    (CrypTen returns some negative values off by exactly 1.0: ../shared/PEERS.md)."""
    fp = FixedPoint(bits)
    rng = np.random.default_rng(bits)
    top = 2 ** (53 - bits) * fp.scale - 1
    integers = rng.integers(-top, top, size=10_000)
    integers[:6] = [0, 1, -1, top, -top, -(fp.scale // 2 or 1)]
    values = np.ldexp(integers.astype(np.float64), -bits)
    np.testing.assert_array_equal(fp.decode(fp.encode(values)), values)
    np.testing.assert_array_equal(fp.encode(values).view(np.int64), integers)


def test_encoding_rounds_half_to_even_and_refuses_out_of_range_values() -> None:
    fp = FixedPoint(2)
    np.testing.assert_array_equal(
        fp.encode([0.125, 0.375, -0.125, -0.375]).view(np.int64), [0, 2, 0, -2]
    )
    assert FixedPoint(16).max_abs == 2.0**46
    with pytest.raises(PrivacyError, match=r"values must be in \(-2\*\*46, 2\*\*46\) .* got -7"):
        FixedPoint(16).encode([1.0, -(2.0**46) - 7])
    with pytest.raises(PrivacyError, match="values must be finite"):
        FixedPoint().encode([np.nan])
    with pytest.raises(PrivacyError, match=r"fractional_bits must be an integer in \[0, 30\]"):
        FixedPoint(31)
    with pytest.raises(PrivacyError, match="values must be a uint64 numpy array"):
        FixedPoint().decode(np.zeros(3, dtype=np.int64))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ((3, 5), (5, 4)),
        ((1, 1), (1, 1)),
        ((64, 512), (512, 8)),  # the longest exact inner dimension
        ((7, 1300), (1300, 3)),  # chunked
        ((2, 5, 9), (9, 6)),  # batch broadcasting
        ((9,), (9, 4)),
    ],
)
def test_limb_matmul_equals_the_integer_loop_modulo_2_64(
    left: tuple[int, ...], right: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(sum(left) + sum(right))
    a = rng.integers(0, 2**64, size=left, dtype=np.uint64)
    b = rng.integers(0, 2**64, size=right, dtype=np.uint64)
    a.flat[0] = b.flat[0] = 2**64 - 1  # the largest limbs
    np.testing.assert_array_equal(ring_matmul(a, b), ring_matmul_naive(a, b))


# -- ring_conv2d -------------------------------------------------------------------------------


def uniform(shape: tuple[int, ...], rng: np.random.Generator) -> RingArray:
    """Full-range ring elements, the largest one included."""
    values = rng.integers(0, 2**64, size=shape, dtype=np.uint64)
    values.flat[0] = np.uint64(2**64 - 1)
    return values


def naive_conv2d(
    images: RingArray, kernels: RingArray, stride: tuple[int, int], padding: tuple[int, int]
) -> RingArray:
    """Cross-correlation by a loop over output positions; numpy's uint64 products and sums
    wrap modulo 2^64. Leading axes broadcast as in numpy."""
    (sh, sw), (ph, pw) = stride, padding
    padded = np.pad(images, [(0, 0)] * (images.ndim - 2) + [(ph, ph), (pw, pw)])
    kh, kw = kernels.shape[-2:]
    out_h, out_w = (padded.shape[-2] - kh) // sh + 1, (padded.shape[-1] - kw) // sw + 1
    lead = np.broadcast_shapes(images.shape[:-4], kernels.shape[:-4])
    out = np.zeros((*lead, images.shape[-4], kernels.shape[-4], out_h, out_w), dtype=np.uint64)
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[..., i * sh : i * sh + kh, j * sw : j * sw + kw]  # (..., N, C, kh, kw)
            products = patch[..., :, None, :, :, :] * kernels[..., None, :, :, :, :]
            out[..., i, j] = products.sum(axis=(-3, -2, -1), dtype=np.uint64)
    return out


@pytest.mark.parametrize(
    ("images_shape", "kernels_shape", "stride", "padding"),
    [
        ((2, 3, 6, 6), (4, 3, 3, 3), (1, 1), (0, 0)),
        ((1, 2, 7, 5), (3, 2, 3, 2), (2, 1), (1, 2)),  # non-square kernel, per-axis geometry
        ((2, 1, 5, 5), (2, 1, 1, 1), (3, 3), (0, 0)),
        ((1, 2, 4, 3), (1, 2, 6, 3), (1, 1), (1, 0)),  # kernel as large as the padded input
        ((3, 2, 2, 5, 5), (2, 2, 2, 3), (1, 2), (1, 1)),  # a party axis on the images
        ((1, 2, 5, 4), (3, 2, 2, 2, 2), (1, 1), (0, 1)),  # ... on the kernels
        ((3, 2, 2, 6, 6), (3, 1, 2, 3, 3), (2, 2), (1, 0)),  # ... on both
        ((2, 1, 1, 1, 4, 4), (3, 2, 1, 2, 2), (1, 1), (0, 0)),  # two leading axes, broadcast
    ],
)
def test_ring_conv2d_equals_a_loop_over_output_positions_modulo_2_64(
    images_shape: tuple[int, ...],
    kernels_shape: tuple[int, ...],
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> None:
    rng = np.random.default_rng(sum(images_shape) + 10 * sum(kernels_shape))
    images, kernels = uniform(images_shape, rng), uniform(kernels_shape, rng)
    got = ring_conv2d(images, kernels, ConvGeometry(stride, padding))
    expected = naive_conv2d(images, kernels, stride, padding)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, expected)
    image_hw, kernel_hw = images_shape[-2:], kernels_shape[-2:]
    output_hw = ConvGeometry(stride, padding).output_size(
        (image_hw[0], image_hw[1]), (kernel_hw[0], kernel_hw[1])
    )
    assert output_hw == expected.shape[-2:]


def test_ring_conv2d_defaults_to_stride_1_without_padding() -> None:
    rng = np.random.default_rng(5)
    images, kernels = uniform((2, 2, 5, 6), rng), uniform((3, 2, 2, 3), rng)
    np.testing.assert_array_equal(
        ring_conv2d(images, kernels), naive_conv2d(images, kernels, (1, 1), (0, 0))
    )


def test_ring_conv2d_and_conv_geometry_refuse_bad_input() -> None:
    images, kernels = np.zeros((1, 3, 5, 5), np.uint64), np.zeros((2, 3, 2, 2), np.uint64)
    with pytest.raises(PrivacyError, match="images must be a uint64 numpy array, got int64"):
        ring_conv2d(images.astype(np.int64), kernels)
    with pytest.raises(PrivacyError, match="kernels must be a uint64 numpy array, got list"):
        ring_conv2d(images, kernels.tolist())
    with pytest.raises(PrivacyError, match=r"images must be \(\.\.\., N, C, H, W\) .* \(3, 5, 5\)"):
        ring_conv2d(images[0], kernels)
    with pytest.raises(PrivacyError, match=r"kernels \(\.\.\., O, C, kh, kw\), .* \(3, 2, 2\)"):
        ring_conv2d(images, kernels[0])
    with pytest.raises(PrivacyError, match="kernel channels must equal image channels 3, got 2"):
        ring_conv2d(images, kernels[:, :2])
    with pytest.raises(PrivacyError, match="kernel size must be <= padded input size 5, got 6"):
        ring_conv2d(images, np.zeros((2, 3, 6, 1), np.uint64))
    for stride in ((0, 1), (1, -1), (True, 1), (1,), [1, 1], (1.0, 1)):
        with pytest.raises(PrivacyError, match=r"stride must be a pair of integers >= 1, got"):
            ConvGeometry(stride=stride)  # type: ignore[arg-type]
    for padding in ((-1, 0), (0, False), (0, 0, 0), (0, 0.5)):
        with pytest.raises(PrivacyError, match=r"padding must be a pair of integers >= 0, got"):
            ConvGeometry(padding=padding)  # type: ignore[arg-type]


def test_ring_conv2d_refuses_leading_axes_that_do_not_broadcast() -> None:
    with pytest.raises(PrivacyError, match="must broadcast"):
        ring_conv2d(np.zeros((2, 1, 1, 4, 4), np.uint64), np.zeros((3, 1, 1, 2, 2), np.uint64))


# -- bit_planes --------------------------------------------------------------------------------


def slow_bit_planes(values: RingArray) -> RingArray:
    """Shift each bit position out of every element and pack it by hand (bit j of word w of
    plane k is bit k of element 64 w + j)."""
    flat = values.reshape(-1)
    planes = np.zeros((64, (flat.size + 63) // 64), dtype=np.uint64)
    for k in range(64):
        for index, value in enumerate(flat.tolist()):
            if (value >> k) & 1:
                planes[k, index // 64] |= np.uint64(1 << (index % 64))
    return planes


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 1000])
def test_bit_planes_equal_shifting_every_bit_out(size: int) -> None:
    rng = np.random.default_rng(size)
    values = rng.integers(0, 2**64, size=size, dtype=np.uint64)
    if size:
        values[0] = np.uint64(2**64 - 1)
        values[-1] = np.uint64(1 << 63)
    planes = bit_planes(values)
    assert planes.dtype == np.uint64
    assert planes.shape == (64, (size + 63) // 64)  # size 0: (64, 0), nothing to pack
    np.testing.assert_array_equal(planes, slow_bit_planes(values))
    # The layout of privet.mpc.dealer.pack_bits, which the comparison protocol pairs it with.
    shifted = (values[None, :] >> np.arange(64, dtype=np.uint64)[:, None]) & np.uint64(1)
    np.testing.assert_array_equal(planes, pack_bits(shifted))


def test_bit_planes_flatten_any_shape_in_c_order_and_refuse_other_dtypes() -> None:
    rng = np.random.default_rng(7)
    matrix = rng.integers(0, 2**64, size=(9, 13), dtype=np.uint64)
    np.testing.assert_array_equal(bit_planes(matrix.T), slow_bit_planes(matrix.T.copy()))
    with pytest.raises(PrivacyError, match="values must be a uint64 numpy array, got int64"):
        bit_planes(matrix.view(np.int64))


# -- torch's integer GEMM ----------------------------------------------------------------------


MATMUL_SHAPES = [
    ((3, 5), (5, 4)),
    ((2, 1, 3, 5), (4, 5, 2)),  # batch axes broadcast on both sides
    ((3, 19, 67), (67, 21)),
    ((6, 700), (700, 3)),  # beyond the limb path's unchunked inner dimension
    ((7,), (7,)),
    ((7,), (2, 7, 3)),
    ((2, 3, 7), (7,)),
    ((1,), (1, 1)),
]


@pytest.mark.parametrize(("left", "right"), MATMUL_SHAPES)
def test_torch_ring_matmul_equals_the_integer_loop_and_the_limb_path(
    left: tuple[int, ...], right: tuple[int, ...]
) -> None:
    kernel = torch_ring_matmul()
    assert callable(kernel)  # torch is installed here and wraps modulo 2^64
    rng = np.random.default_rng(sum(left) + sum(right))
    a, b = uniform(left, rng), uniform(right, rng)
    expected = ring_matmul_naive(a, b)
    np.testing.assert_array_equal(kernel(a, b), expected)
    with np.errstate(over="ignore"):  # numpy wraps 1-d @ 1-d in scalars, which warn
        np.testing.assert_array_equal(ring_matmul_limbs(a, b), expected)
    np.testing.assert_array_equal(ring_matmul(a, b), expected)


def test_ring_matmul_falls_back_to_limbs_without_a_torch_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(8)
    a, b = uniform((2, 4, 600), rng), uniform((600, 3), rng)
    monkeypatch.setattr(torch_kernels, "torch_ring_matmul", lambda: None)
    np.testing.assert_array_equal(ring_matmul(a, b), ring_matmul_naive(a, b))


def test_torch_kernel_is_refused_when_torch_is_missing_or_does_not_wrap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch_ring_matmul.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
            assert torch_ring_matmul() is None
        torch_ring_matmul.cache_clear()
        with monkeypatch.context() as patch:
            # A GEMM that saturates instead of wrapping fails the self-check.
            patch.setattr(torch_kernels, "_matmul", lambda x, y: np.minimum(x, 1) @ y)
            assert torch_ring_matmul() is None
    finally:
        torch_ring_matmul.cache_clear()
    assert torch_ring_matmul() is not None


def test_limb_matmul_chunks_a_long_1d_right_operand() -> None:
    a = np.ones((2, 600), dtype=np.uint64)
    b = np.ones(600, dtype=np.uint64)
    np.testing.assert_array_equal(ring_matmul_limbs(a, b), [600, 600])


def test_limb_matmul_of_two_vectors_is_a_0d_array_without_overflow_warnings() -> None:
    a = np.full(3, 2**63, dtype=np.uint64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        product = ring_matmul_limbs(a, a)
    assert isinstance(product, np.ndarray)
    assert product.shape == ()
