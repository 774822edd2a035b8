"""Offline data sets: tables bundled with installed packages, never downloaded."""

from __future__ import annotations

from privet.data.tabular import Table, load_breast_cancer, load_diabetes

__all__ = ["Table", "load_breast_cancer", "load_diabetes"]
