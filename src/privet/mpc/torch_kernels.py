"""Ring kernels on torch's integer GEMM: the one module of :mod:`privet.mpc` that imports torch.

torch multiplies ``int64`` matrices with vectorized integer kernels whose
products and sums wrap modulo ``2^64`` (two's-complement hardware
arithmetic), which is exactly the ring product; measured here about 5x
faster than the limb-BLAS path of :func:`privet.mpc.ring.ring_matmul` at
256x256. Because wrapping is not something torch documents, the kernel is
used only after it reproduces numpy's integer loop on full-range random
operands with odd sizes (vector tails included) in this process; otherwise,
or without torch installed, privet keeps the numpy path. Either way results
are bit-identical.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from privet.mpc.ring import RingArray

__all__ = ["torch_ring_matmul"]

RingMatmul = Callable[[RingArray, RingArray], RingArray]


def _matmul(left: RingArray, right: RingArray) -> RingArray:
    import torch

    # Writable and contiguous: torch.from_numpy warns on read-only views (im2col's).
    product = torch.matmul(
        torch.from_numpy(np.require(left, requirements=("C", "W")).view(np.int64)),
        torch.from_numpy(np.require(right, requirements=("C", "W")).view(np.int64)),
    )
    result: RingArray = product.numpy().view(np.uint64)
    return result


@functools.cache
def torch_ring_matmul() -> RingMatmul | None:
    """torch's ``int64`` matmul if it is installed and wraps modulo ``2^64`` here, else None."""
    try:
        import torch  # noqa: F401 - availability check
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    left = rng.integers(0, 2**64, size=(2, 19, 67), dtype=np.uint64)
    right = rng.integers(0, 2**64, size=(67, 21), dtype=np.uint64)
    left.flat[0] = right.flat[0] = np.uint64(2**64 - 1)
    expected = np.matmul(left, right)  # numpy's loop wraps modulo 2^64
    if not np.array_equal(_matmul(left, right), expected):
        return None
    return _matmul
