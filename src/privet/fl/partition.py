"""Partitioners that split a data set across simulated federated clients.

Each scheme works on sizes or a label vector only, so it applies to any data
set (a :class:`privet.data.Table`'s ``target``, an
:class:`privet.data.ImageSplit`'s ``train_labels``, ...); :func:`split_arrays`
then cuts the feature and label arrays into per-client data sets. Every
scheme draws from an explicit ``rng``: one seed, one partition.

Schemes
-------
- :func:`iid_partition` -- shuffled, near-equal parts (the IID baseline).
- :func:`dirichlet_partition` -- label skew, per-class proportions ~ Dir(alpha).
- :func:`shard_partition` -- pathological label skew, a few label-sorted shards each.
- :func:`quantity_skew_partition` -- client sizes ~ Dir(alpha), labels IID within.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError

__all__ = [
    "Partition",
    "dirichlet_partition",
    "iid_partition",
    "quantity_skew_partition",
    "shard_partition",
    "split_arrays",
]


@dataclass(frozen=True, eq=False)
class Partition:
    """Disjoint sets of example indices, one per client.

    Parameters
    ----------
    client_indices
        One index array per client. Copied, sorted and made read-only on
        construction; a client may hold no examples.
    num_examples
        Size of the data set the indices point into.

    Raises
    ------
    PrivacyError
        If an index is out of ``[0, num_examples)`` or appears twice (within
        one client or across clients).

    Notes
    -----
    A partition need not cover every example: :func:`shard_partition` drops the
    remainder that does not fill a whole shard. :attr:`is_complete` says whether
    it does.
    """

    client_indices: tuple[NDArray[np.int64], ...]
    num_examples: int

    def __post_init__(self) -> None:
        n = _check_count("num_examples", self.num_examples, 1)
        object.__setattr__(self, "num_examples", n)
        raw = list(self.client_indices)
        if not raw:
            raise PrivacyError("client_indices must hold at least one client, got 0")
        stored: list[NDArray[np.int64]] = []
        for client, indices in enumerate(raw):
            array = np.asarray(indices)
            if array.ndim != 1 or (array.size > 0 and array.dtype.kind not in "iu"):
                raise PrivacyError(
                    f"client_indices[{client}] must be a 1-D integer array, "
                    f"got dtype {array.dtype} shape {list(array.shape)}"
                )
            array = np.sort(array.astype(np.int64))
            if array.size and (array[0] < 0 or array[-1] >= n):
                bad = array[0] if array[0] < 0 else array[-1]
                raise PrivacyError(
                    f"client_indices[{client}] must lie in [0, {n}), got index {int(bad)}"
                )
            array.setflags(write=False)
            stored.append(array)
        counts = np.bincount(np.concatenate(stored), minlength=n)
        if counts.max(initial=0) > 1:
            repeated = int(np.argmax(counts > 1))
            raise PrivacyError(
                "client_indices must be disjoint without repeats, "
                f"got index {repeated} {int(counts[repeated])} times"
            )
        object.__setattr__(self, "client_indices", tuple(stored))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Partition):
            return NotImplemented
        return (
            self.num_examples == other.num_examples
            and self.num_clients == other.num_clients
            and all(
                np.array_equal(mine, theirs)
                for mine, theirs in zip(self.client_indices, other.client_indices, strict=True)
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Partition(num_clients={self.num_clients}, num_examples={self.num_examples}, "
            f"sizes={self.sizes.tolist()})"
        )

    @property
    def num_clients(self) -> int:
        return len(self.client_indices)

    @property
    def sizes(self) -> NDArray[np.int64]:
        """Examples per client."""
        return np.array([a.size for a in self.client_indices], dtype=np.int64)

    @property
    def num_assigned(self) -> int:
        """Examples held by some client."""
        return int(self.sizes.sum())

    @property
    def is_complete(self) -> bool:
        """Whether every example belongs to a client."""
        return self.num_assigned == self.num_examples

    def assignment(self) -> NDArray[np.int64]:
        """The client of each example (``-1`` for an example no client holds)."""
        owner = np.full(self.num_examples, -1, dtype=np.int64)
        for client, indices in enumerate(self.client_indices):
            owner[indices] = client
        return owner

    def label_counts(self, labels: ArrayLike, num_classes: int) -> NDArray[np.int64]:
        """A ``(clients, classes)`` table: how many examples of each class each client holds.

        ``labels`` must be integers in ``[0, num_classes)``, one per example.
        """
        classes = _check_count("num_classes", num_classes, 1)
        y = _check_labels(labels)
        if y.size != self.num_examples:
            raise PrivacyError(
                f"labels must hold one label per example ({self.num_examples}), got {y.size}"
            )
        if y.min() < 0 or y.max() >= classes:
            bad = int(y.min()) if y.min() < 0 else int(y.max())
            raise PrivacyError(f"labels must lie in [0, {classes}) (num_classes), got {bad}")
        return np.stack([np.bincount(y[idx], minlength=classes) for idx in self.client_indices])


def split_arrays(partition: Partition, *arrays: ArrayLike) -> list[tuple[NDArray[Any], ...]]:
    """Per-client data sets: for each client, the rows of every array it holds.

    Parameters
    ----------
    partition
        Which rows go to which client.
    *arrays
        Arrays whose first axis runs over the ``partition.num_examples`` examples
        (features, labels, weights, ...).

    Returns
    -------
    list of tuple
        ``result[client][i]`` is ``arrays[i][partition.client_indices[client]]`` (a copy).
    """
    if not isinstance(partition, Partition):
        raise PrivacyError(f"partition must be a Partition, got {type(partition).__name__}")
    if not arrays:
        raise PrivacyError("arrays must hold at least one array, got 0")
    columns = [np.asarray(a) for a in arrays]
    for position, array in enumerate(columns):
        if array.ndim == 0 or array.shape[0] != partition.num_examples:
            raise PrivacyError(
                f"arrays[{position}] must have {partition.num_examples} rows "
                f"(partition.num_examples), got shape {list(array.shape)}"
            )
    return [tuple(a[idx] for a in columns) for idx in partition.client_indices]


def iid_partition(num_examples: int, num_clients: int, rng: np.random.Generator) -> Partition:
    """Shuffle the examples, then cut them into ``num_clients`` near-equal parts.

    The IID baseline of McMahan et al. (2017), "Communication-Efficient Learning
    of Deep Networks from Decentralized Data" (AISTATS), Section 3: "the data is
    shuffled, and then partitioned into 100 clients each receiving 600 examples".
    Sizes differ by at most one; every example is assigned.
    """
    n = _check_count("num_examples", num_examples, 1)
    k = _check_num_clients(num_clients, n)
    _check_rng(rng)
    order = rng.permutation(n)
    return Partition(tuple(np.array_split(order, k)), n)


def dirichlet_partition(
    labels: ArrayLike,
    num_clients: int,
    alpha: float,
    rng: np.random.Generator,
    *,
    min_examples: int = 10,
    self_balancing: bool = False,
    max_attempts: int = 100,
) -> Partition:
    """Label skew: each class is shared among the clients in Dir(alpha) proportions.

    For every class (in sorted order) its examples are shuffled, proportions
    ``p ~ Dir(alpha * 1_K)`` are drawn over the ``K`` clients, and client ``j``
    gets the ``j``-th slice of the cumulative split ``floor(cumsum(p) * n_class)``.
    If some client ends with fewer than ``min_examples`` examples the whole draw
    is repeated, at most ``max_attempts`` times. Small ``alpha`` (0.1) gives each
    client a few dominant classes; large ``alpha`` (100) approaches IID.

    This is the per-class scheme of Yurochkin et al. (2019), "Bayesian
    Nonparametric Federated Learning of Neural Networks" (ICML), as used by
    NIID-Bench (Li et al. 2022, "Federated Learning on Non-IID Data Silos: An
    Experimental Study", ICDE, "distribution-based label imbalance") and Flower
    Datasets' ``DirichletPartitioner``; it realises the Dirichlet label skew of
    Hsu, Qi & Brown (2019), "Measuring the Effects of Non-Identical Data
    Distribution for Federated Visual Classification" (who draw per-client class
    mixtures instead). Every example is assigned.

    Parameters
    ----------
    labels
        Integer class labels, one per example.
    num_clients
        Number of clients ``K``, in ``[1, len(labels)]``.
    alpha
        Dirichlet concentration, finite and > 0.
    rng
        Source of randomness (a seeded generator reproduces the partition).
    min_examples
        Fewest examples any client may hold (default 10, as NIID-Bench and Flower);
        ``num_clients * min_examples`` must not exceed ``len(labels)``.
    self_balancing
        Flower's and Yurochkin et al.'s balancing (off by default): a client that
        already holds more than ``len(labels) / K`` examples gets no share of the
        classes still to be split. It keeps sizes closer to equal and makes
        ``min_examples`` easier to meet, at the price of proportions that no longer
        follow Dir(alpha) exactly (later classes skew more).
    max_attempts
        Draws tried before giving up (Flower tries 11).

    Raises
    ------
    PrivacyError
        On bad arguments, or if no draw in ``max_attempts`` gives every client
        ``min_examples`` examples (then raise ``alpha`` or lower ``min_examples``
        or ``num_clients``).
    """
    y = _check_labels(labels)
    n = y.size
    k = _check_num_clients(num_clients, n)
    concentration = _check_alpha(alpha)
    floor = _check_min_examples(min_examples, n, k)
    attempts = _check_count("max_attempts", max_attempts, 1)
    if not isinstance(self_balancing, bool):
        raise PrivacyError(f"self_balancing must be a bool, got {self_balancing!r}")
    _check_rng(rng)
    members = [np.flatnonzero(y == c) for c in np.unique(y)]
    average = n / k
    smallest = 0
    for _ in range(attempts):
        pieces: list[list[NDArray[np.int64]]] = [[] for _ in range(k)]
        held = np.zeros(k, dtype=np.int64)
        for indices in members:
            shuffled = rng.permutation(indices)
            shares = rng.dirichlet(np.full(k, concentration))
            if self_balancing:
                open_shares = np.where(held > average, 0.0, shares)
                # Small alpha can put (numerically) all of the mass on full clients;
                # then the class is split by the unbalanced draw rather than 0/0.
                if open_shares.sum() > 0:
                    shares = open_shares / open_shares.sum()
            for client, part in enumerate(_cut(shuffled, shares)):
                pieces[client].append(part)
                held[client] += part.size
        smallest = int(held.min())
        if smallest >= floor:
            return Partition(tuple(np.concatenate(p) for p in pieces), n)
    raise PrivacyError(
        f"min_examples={floor} was not met for all num_clients={k} clients with "
        f"alpha={concentration:g} in max_attempts={attempts} draws (the last gave a client "
        f"{smallest}); raise alpha or lower min_examples or num_clients"
    )


def shard_partition(
    labels: ArrayLike, num_clients: int, shards_per_client: int, rng: np.random.Generator
) -> Partition:
    """Pathological label skew: label-sorted shards, ``shards_per_client`` to each client.

    McMahan et al. (2017), "Communication-Efficient Learning of Deep Networks
    from Decentralized Data" (AISTATS), Section 3: "sort the data by digit label,
    divide it into 200 shards of size 300, and assign each of 100 clients 2
    shards". Here the examples are sorted by label (ties in random order), cut
    into ``S = num_clients * shards_per_client`` shards of ``len(labels) // S``
    examples, and the shards dealt out uniformly at random.

    When ``len(labels)`` is not a multiple of ``S``, the ``len(labels) % S``
    examples that would not fill a shard are left out (chosen at random), so
    every shard has the same size and the partition is then not complete. When
    every class size is a multiple of the shard size, each shard holds one label
    and each client at most ``shards_per_client`` labels.
    """
    y = _check_labels(labels)
    n = y.size
    k = _check_num_clients(num_clients, n)
    per_client = _check_count("shards_per_client", shards_per_client, 1)
    num_shards = k * per_client
    if num_shards > n:
        raise PrivacyError(
            f"num_clients * shards_per_client must be <= {n} (num_examples), "
            f"got {k} * {per_client} = {num_shards}"
        )
    _check_rng(rng)
    shard_size = n // num_shards
    kept = rng.permutation(n)[: num_shards * shard_size]
    by_label = kept[np.argsort(y[kept], kind="stable")]
    shards = by_label.reshape(num_shards, shard_size)
    owners = rng.permutation(num_shards).reshape(k, per_client)
    return Partition(tuple(shards[row].ravel() for row in owners), n)


def quantity_skew_partition(
    num_examples: int,
    num_clients: int,
    alpha: float,
    rng: np.random.Generator,
    *,
    min_examples: int = 10,
) -> Partition:
    """Quantity skew: client sizes in Dir(alpha) proportions, labels IID within clients.

    Li et al. (2022), "Federated Learning on Non-IID Data Silos: An Experimental
    Study" (ICDE), Section "Quantity skew": ``q ~ Dir_K(alpha)`` and client ``j``
    gets a ``q_j`` share of the shuffled examples. (Not their "quantity-based
    label imbalance", which fixes how many labels each client holds.)

    Each client first gets ``min_examples`` examples and the remaining
    ``len - K * min_examples`` are shared in Dir(alpha) proportions (cumulative
    floor rounding, so the sizes add up exactly). NIID-Bench instead redraws
    ``q`` until every share reaches 10 examples; with small ``alpha`` and many
    clients that rarely succeeds, while the floor always does and equals their
    scheme when ``min_examples=0``. Every example is assigned.

    Parameters
    ----------
    num_examples
        Size of the data set, >= 1.
    num_clients
        Number of clients ``K``, in ``[1, num_examples]``.
    alpha
        Dirichlet concentration, finite and > 0: small values give a few large
        clients and many at the floor, large values near-equal sizes.
    rng
        Source of randomness.
    min_examples
        Fewest examples per client (default 10); ``K * min_examples <= num_examples``.
    """
    n = _check_count("num_examples", num_examples, 1)
    k = _check_num_clients(num_clients, n)
    concentration = _check_alpha(alpha)
    floor = _check_min_examples(min_examples, n, k)
    _check_rng(rng)
    spare = n - k * floor
    shares = rng.dirichlet(np.full(k, concentration))
    extra = np.diff(_cut_points(shares, spare), prepend=0, append=spare)
    sizes = floor + extra
    order = rng.permutation(n)
    return Partition(tuple(np.split(order, np.cumsum(sizes)[:-1])), n)


# -- helpers ----------------------------------------------------------------------------------


def _cut_points(shares: NDArray[np.float64], total: int) -> NDArray[np.int64]:
    """Where to cut ``total`` items so part ``j`` gets about ``shares[j] * total``."""
    points = np.floor(np.cumsum(shares[:-1]) * total).astype(np.int64)
    # The cumulative sum can overshoot 1 by a rounding error.
    return np.minimum(points, total)


def _cut(items: NDArray[np.int64], shares: NDArray[np.float64]) -> list[NDArray[np.int64]]:
    return np.split(items, _cut_points(shares, items.size))


def _is_int(value: object) -> TypeGuard[int | np.integer[Any]]:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_count(name: str, value: object, minimum: int) -> int:
    if not _is_int(value) or int(value) < minimum:
        raise PrivacyError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_num_clients(value: object, num_examples: int) -> int:
    if not _is_int(value) or not 1 <= int(value) <= num_examples:
        raise PrivacyError(
            f"num_clients must be an integer in [1, {num_examples}] (num_examples), got {value!r}"
        )
    return int(value)


def _check_min_examples(value: object, num_examples: int, num_clients: int) -> int:
    most = num_examples // num_clients
    if not _is_int(value) or not 0 <= int(value) <= most:
        raise PrivacyError(
            f"min_examples must be an integer in [0, {most}] (num_examples // num_clients), "
            f"got {value!r}"
        )
    return int(value)


def _check_alpha(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not math.isfinite(float(value))
        or float(value) <= 0
    ):
        raise PrivacyError(f"alpha must be a finite number > 0, got {value!r}")
    return float(value)


def _check_labels(labels: ArrayLike) -> NDArray[np.int64]:
    array = np.asarray(labels)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise PrivacyError(
            f"labels must be a 1-D integer array, got dtype {array.dtype} shape {list(array.shape)}"
        )
    if array.size == 0:
        raise PrivacyError("labels must hold at least one example, got 0")
    return array.astype(np.int64)


def _check_rng(rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise PrivacyError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
