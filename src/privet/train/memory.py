"""Logical batches bigger than memory: split into physical batches, one private step each.

As Opacus's ``BatchMemoryManager``: each Poisson batch (the unit the
accounting counts) is cut into physical batches of at most
``max_physical_batch_size``; the optimizer accumulates their clipped
per-sample gradients and only the last one adds noise and steps. The privacy
cost is unchanged — one step per logical batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import torch
from torch.utils.data import DataLoader

from privet.dp._validation import check_positive_int
from privet.train.optimizer import DPOptimizer

__all__ = ["BatchMemoryManager"]


def _batch_length(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, tuple | list) and batch:
        return _batch_length(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_length(next(iter(batch.values())))
    raise TypeError(f"cannot split a batch of type {type(batch).__name__}")


def _slice(batch: Any, start: int, stop: int) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch[start:stop]
    if isinstance(batch, tuple | list):
        return type(batch)(_slice(item, start, stop) for item in batch)
    if isinstance(batch, dict):
        return {key: _slice(value, start, stop) for key, value in batch.items()}
    return batch


class BatchMemoryManager:
    """Context manager yielding physical batches of a private data loader.

    Examples
    --------
    >>> with BatchMemoryManager(data_loader=loader, max_physical_batch_size=32,
    ...                         optimizer=optimizer) as physical:  # doctest: +SKIP
    ...     for x, y in physical:
    ...         optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()
    """

    def __init__(
        self, *, data_loader: DataLoader[Any], max_physical_batch_size: int, optimizer: DPOptimizer
    ) -> None:
        self.data_loader = data_loader
        self.max_physical_batch_size = check_positive_int(
            "max_physical_batch_size", max_physical_batch_size
        )
        self.optimizer = optimizer

    def __enter__(self) -> Iterator[Any]:
        return self._physical_batches()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Leaving mid-batch (break, exception) must not carry clipped sums into a later step.
        self.optimizer.discard_accumulated()

    def _physical_batches(self) -> Iterator[Any]:
        for batch in self.data_loader:
            size = _batch_length(batch)
            pieces = max(1, math.ceil(size / self.max_physical_batch_size))
            for piece in range(pieces):
                start = piece * self.max_physical_batch_size
                self.optimizer.signal_skip_step(piece < pieces - 1)
                yield _slice(batch, start, min(size, start + self.max_physical_batch_size))
