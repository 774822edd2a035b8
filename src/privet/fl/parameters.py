"""Model parameters as ordered, immutable named arrays.

Every strategy, engine and wire codec in :mod:`privet.fl` exchanges
:class:`Parameters`: a read-only mapping from layer names to numpy arrays in
a fixed order. Aggregation works on flat vectors (``to_vector`` /
``from_vector``), so robust statistics and server optimizers are one
vectorized expression over a ``(clients, parameters)`` matrix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError

__all__ = ["Parameters"]

_NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, floating: no objects, strings or complex


class Parameters(Mapping[str, NDArray[Any]]):
    """Ordered named arrays, copied on construction and read-only afterwards.

    Parameters
    ----------
    arrays
        A mapping (its iteration order is kept) or ``(name, array)`` pairs.
        Names must be unique non-empty strings; arrays numeric (bool,
        integer or floating).
    """

    __slots__ = ("_arrays",)

    def __init__(self, arrays: Mapping[str, ArrayLike] | Iterable[tuple[str, ArrayLike]]) -> None:
        self._arrays = self._checked(arrays, copy=True)

    @classmethod
    def adopt(cls, arrays: Mapping[str, NDArray[Any]]) -> Parameters:
        """Wrap arrays without copying them; the caller hands them over and must not keep,
        write or share them (engines use this for the fresh arrays a round produces)."""
        adopted = cls.__new__(cls)
        adopted._arrays = cls._checked(arrays, copy=False)
        return adopted

    @staticmethod
    def _checked(
        arrays: Mapping[str, ArrayLike] | Iterable[tuple[str, ArrayLike]], *, copy: bool
    ) -> dict[str, NDArray[Any]]:
        items = list(arrays.items()) if isinstance(arrays, Mapping) else list(arrays)
        stored: dict[str, NDArray[Any]] = {}
        for name, value in items:
            if not isinstance(name, str) or not name:
                raise PrivacyError(f"parameter names must be non-empty strings, got {name!r}")
            if name in stored:
                raise PrivacyError(f"parameter names must be unique, got {name!r} twice")
            array = np.array(value, copy=True) if copy else np.asarray(value)
            if array.dtype.kind not in _NUMERIC_KINDS:
                raise PrivacyError(
                    f"parameter {name!r} must be a bool, integer or floating array, "
                    f"got dtype {array.dtype}"
                )
            array.setflags(write=False)
            stored[name] = array
        return stored

    # -- Mapping ------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> NDArray[Any]:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        layout = ", ".join(f"{name}: {a.dtype}{list(a.shape)}" for name, a in self._arrays.items())
        return f"Parameters({layout})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Parameters):
            return NotImplemented
        return self.same_layout(other) and all(
            np.array_equal(self[name], other[name]) for name in self
        )

    __hash__ = None  # type: ignore[assignment]

    # -- layout -------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._arrays)

    @property
    def size(self) -> int:
        """Total number of scalars."""
        return sum(a.size for a in self._arrays.values())

    def same_layout(self, other: Parameters) -> bool:
        """Same names in the same order, with the same shapes and dtypes."""
        return self.names == other.names and all(
            self[n].shape == other[n].shape and self[n].dtype == other[n].dtype for n in self
        )

    def check_layout(self, other: Parameters, what: str = "parameters") -> None:
        """Raise :class:`PrivacyError` naming the first difference from ``other``'s layout."""
        if self.names != other.names:
            raise PrivacyError(
                f"{what} must have the names {list(self.names)}, got {list(other.names)}"
            )
        for name in self:
            mine, theirs = self[name], other[name]
            if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
                raise PrivacyError(
                    f"{what} {name!r} must be {mine.dtype}{list(mine.shape)}, "
                    f"got {theirs.dtype}{list(theirs.shape)}"
                )

    # -- flat views ---------------------------------------------------------------------------

    def to_vector(self, dtype: type[np.floating[Any]] = np.float64) -> NDArray[Any]:
        """All arrays flattened and concatenated, in order, as one new vector."""
        if not self._arrays:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([a.reshape(-1).astype(dtype, copy=False) for a in self.values()])

    def from_vector(self, vector: ArrayLike) -> Parameters:
        """Arrays shaped and typed like these, filled from ``vector`` (the inverse of
        ``to_vector``; values are cast to each array's dtype)."""
        flat = np.asarray(vector)
        if flat.ndim != 1 or flat.size != self.size:
            raise PrivacyError(
                f"vector must be 1-D with {self.size} entries, got shape {list(flat.shape)}"
            )
        out: dict[str, NDArray[Any]] = {}
        offset = 0
        for name, array in self._arrays.items():
            chunk = flat[offset : offset + array.size].reshape(array.shape)
            out[name] = chunk.astype(array.dtype)
            offset += array.size
        return Parameters(out)

    def map(self, function: Any) -> Parameters:
        """``function`` applied to every array, names kept."""
        return Parameters((name, function(array)) for name, array in self._arrays.items())

    @staticmethod
    def stack_vectors(items: Iterable[Parameters], like: Parameters) -> NDArray[np.float64]:
        """``(k, size)`` float64 matrix of ``items`` flattened; each must match ``like``."""
        rows = []
        for index, item in enumerate(items):
            like.check_layout(item, what=f"update {index}")
            rows.append(item.to_vector())
        if not rows:
            return np.zeros((0, like.size))
        return np.stack(rows)
