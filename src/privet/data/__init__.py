"""Offline data sets: tables bundled with installed packages, never downloaded."""

from __future__ import annotations

from privet.data.mnist import ImageSplit, load_mnist_subset
from privet.data.tabular import Table, load_breast_cancer, load_diabetes

__all__ = ["ImageSplit", "Table", "load_breast_cancer", "load_diabetes", "load_mnist_subset"]
