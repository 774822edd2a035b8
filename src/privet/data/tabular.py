"""Real tables that scikit-learn ships inside its wheel (no network needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Table", "load_breast_cancer", "load_diabetes"]


@dataclass(frozen=True)
class Table:
    """A numeric table: ``features`` (rows x columns), their names, and a ``target``."""

    name: str
    features: np.ndarray
    feature_names: tuple[str, ...]
    target: np.ndarray
    description: str

    def column(self, name: str) -> np.ndarray:
        """One feature column by name."""
        try:
            index = self.feature_names.index(name)
        except ValueError:
            raise KeyError(f"column must be one of {self.feature_names}, got {name!r}") from None
        return np.asarray(self.features[:, index])


def load_breast_cancer() -> Table:
    """Wisconsin diagnostic breast cancer: 569 patients, 30 features, benign/malignant target."""
    from sklearn import datasets

    bunch = datasets.load_breast_cancer()
    return Table(
        name="breast_cancer",
        features=np.asarray(bunch.data, dtype=np.float64),
        feature_names=tuple(str(n) for n in bunch.feature_names),
        target=np.asarray(bunch.target),
        description="Wisconsin diagnostic breast cancer (UCI), bundled with scikit-learn",
    )


def load_diabetes() -> Table:
    """Diabetes progression: 442 patients, 10 raw baseline features, progression target."""
    from sklearn import datasets

    bunch = datasets.load_diabetes(scaled=False)
    return Table(
        name="diabetes",
        features=np.asarray(bunch.data, dtype=np.float64),
        feature_names=tuple(str(n) for n in bunch.feature_names),
        target=np.asarray(bunch.target, dtype=np.float64),
        description="Efron et al. (2004) diabetes data, bundled with scikit-learn",
    )
