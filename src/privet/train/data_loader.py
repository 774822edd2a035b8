"""Poisson sampling: the batches DP-SGD's accounting assumes.

The subsampled-Gaussian analysis (Abadi et al. 2016; Mironov, Talwar & Zhang
2019) assumes each example joins each batch independently with probability
``q``. Shuffled fixed-size batches are a different scheme with a different
(and, under Poisson accounting, unaccounted) privacy cost, so privet's engine
replaces the user's loader with :class:`DPDataLoader`, whose batch sizes vary
and may be empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler
from torch.utils.data.dataloader import default_collate

from privet.dp._validation import check_positive_int, check_probability
from privet.dp.randomness import RngLike, resolve_rng
from privet.errors import PrivacyError

__all__ = ["DPDataLoader", "PoissonBatchSampler"]


class PoissonBatchSampler(Sampler[list[int]]):
    """Yields ``steps`` batches; each index is in each batch with probability ``sample_rate``.

    Membership is drawn from ``rng`` (``None``: the OS CSPRNG — which examples
    were sampled is part of what the privacy analysis keeps secret).
    """

    def __init__(
        self,
        num_samples: int,
        sample_rate: float,
        steps: int | None = None,
        rng: RngLike = None,
        *,
        release: bool = False,
    ) -> None:
        self.num_samples = check_positive_int("num_samples", num_samples)
        self.sample_rate = check_probability("sample_rate", sample_rate, open_low=True)
        self.steps = (
            check_positive_int("steps", steps)
            if steps is not None
            else max(1, round(1 / sample_rate))
        )
        # Which examples were sampled is secret too: a seeded generator warns for training.
        self._source = resolve_rng(rng, release=release)
        # 2**30 resolution: probabilities are compared exactly as integers.
        self._threshold = int(self.sample_rate * 2**30)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.steps):
            draws = self._source.integers(2**30, self.num_samples)
            yield np.flatnonzero(draws < self._threshold).tolist()


def _empty_like(example: Any) -> Any:
    """A batch of zero examples shaped like ``example`` (so empty steps still run)."""
    if isinstance(example, torch.Tensor):
        return torch.empty((0, *example.shape), dtype=example.dtype)
    if isinstance(example, int | float | np.number):
        return torch.empty((0,), dtype=torch.as_tensor(example).dtype)
    if isinstance(example, tuple | list):
        return type(example)(_empty_like(item) for item in example)
    if isinstance(example, dict):
        return {key: _empty_like(value) for key, value in example.items()}
    raise TypeError(f"cannot build an empty batch for examples of type {type(example).__name__}")


class _PoissonCollate:
    def __init__(self, collate: Any, empty: Any) -> None:
        self.collate = collate
        self.empty = empty

    def __call__(self, batch: Sequence[Any]) -> Any:
        return self.empty if len(batch) == 0 else self.collate(batch)


class DPDataLoader(DataLoader[Any]):
    """A ``DataLoader`` over ``dataset`` with Poisson-sampled batches of expected size ``q N``."""

    def __init__(
        self,
        dataset: Dataset[Any],
        *,
        sample_rate: float,
        steps: int | None = None,
        collate_fn: Any = None,
        num_workers: int = 0,
        rng: RngLike = None,
        release: bool = False,
        **kwargs: Any,
    ) -> None:
        size = len(dataset)  # type: ignore[arg-type]
        sampler = PoissonBatchSampler(size, sample_rate, steps, rng, release=release)
        collate = collate_fn or default_collate
        empty = _empty_like(dataset[0])
        super().__init__(
            dataset,
            batch_sampler=sampler,
            collate_fn=_PoissonCollate(collate, empty),
            num_workers=num_workers,
            **kwargs,
        )
        self.sample_rate = sampler.sample_rate
        self.expected_batch_size = max(1, round(sample_rate * size))

    @classmethod
    def from_data_loader(
        cls, loader: DataLoader[Any], *, rng: RngLike = None, release: bool = False
    ) -> DPDataLoader:
        """Poisson batches with the same expected size and epoch length as ``loader``.

        Only loaders that draw from their whole dataset (shuffled or in order)
        are converted: a custom sampler (a subset, weights) would be silently
        replaced by sampling from every example, training on data it excluded.
        """
        size = len(loader.dataset)  # type: ignore[arg-type]
        sampler = getattr(loader.batch_sampler, "sampler", None)
        if not isinstance(sampler, RandomSampler | SequentialSampler) or (
            isinstance(sampler, RandomSampler) and (sampler.replacement or len(sampler) != size)
        ):
            raise PrivacyError(
                f"cannot convert a loader with sampler {type(sampler).__name__} to Poisson "
                "sampling; wrap the examples to train on in their own Dataset "
                "(e.g. torch.utils.data.Subset)"
            )
        batch_size = loader.batch_size or getattr(loader.batch_sampler, "batch_size", None)
        if not batch_size:
            raise PrivacyError("the data loader must have a batch_size to convert it")
        return cls(
            loader.dataset,
            sample_rate=min(1.0, batch_size / size),
            steps=len(loader),
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            rng=rng,
            release=release,
        )
