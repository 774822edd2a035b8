"""SecAgg+ (Bell et al., CCS 2020): random k-regular masking graphs and the protocol on them.

Expected sums are plaintext sums modulo ``2^k`` of the inputs of the clients
whose masked input reached the server, computed directly with numpy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from privet.errors import PrivacyError
from privet.secagg import (
    AbortedRound,
    KeyPair,
    KeyPurpose,
    MaskingGraph,
    SecAggClient,
    SecAggParams,
    SecAggServer,
    agree,
    agreement_info,
    expand_mask,
    run_protocol,
    secagg_plus_settings,
    simulate,
)

BITS = 32


def _inputs(n: int, seed: int, length: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 2**BITS, size=length, dtype=np.uint64) for _ in range(n)]


def _expected(inputs: list[np.ndarray], ids: set[int]) -> np.ndarray:
    total = np.zeros(inputs[0].size, dtype=np.uint64)
    for i in sorted(ids):
        total += inputs[i - 1]
    return total & np.uint64(2**BITS - 1)


# --- the graph ------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "k"), [(5, 2), (10, 4), (31, 6), (100, 22), (7, 6)])
def test_graph_is_simple_symmetric_and_regular(n: int, k: int) -> None:
    graph = MaskingGraph.random(n, k, np.random.default_rng(n))
    for u in range(1, n + 1):
        neighbours = graph.neighbours(u)
        assert len(neighbours) == k
        assert u not in neighbours
        assert neighbours <= set(range(1, n + 1))
        assert all(u in graph.neighbours(v) for v in neighbours)


def test_graph_is_a_function_of_its_public_seed() -> None:
    a = MaskingGraph(40, 8, bytes(range(32)))
    b = MaskingGraph(40, 8, bytes(range(32)))
    c = MaskingGraph(40, 8, bytes(range(1, 33)))
    assert [a.neighbours(u) for u in range(1, 41)] == [b.neighbours(u) for u in range(1, 41)]
    assert [a.neighbours(u) for u in range(1, 41)] != [c.neighbours(u) for u in range(1, 41)]
    assert MaskingGraph.complete(5).neighbours(3) == {1, 2, 4, 5}


def test_neighbourhood_is_a_uniform_subset() -> None:
    """Who neighbours client 1 over 3000 random graphs: chi-square against uniform.

    Under a uniform relabelling every other client is a neighbour with probability
    k/(n-1) (what :func:`secagg_plus_settings` assumes). Fixed seed; alpha = 1e-3.
    """
    n, k, trials = 12, 4, 3000
    rng = np.random.default_rng(2020)
    counts = np.zeros(n - 1)
    for _ in range(trials):
        for v in MaskingGraph.random(n, k, rng).neighbours(1):
            counts[v - 2] += 1
    assert counts.sum() == trials * k
    assert stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1, 0), "num_clients must be >= 2, got 1"),
        ((10, 3), r"degree must be n - 1 = 9 \(complete\) or even in \[2, 8\], got 3"),
        ((10, 10), "degree must be"),
        ((10, 0), "degree must be"),
    ],
)
def test_bad_graphs(args: tuple[int, int], message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        MaskingGraph(*args)
    with pytest.raises(PrivacyError, match="seed must be 32 bytes"):
        MaskingGraph(10, 4, b"short")
    with pytest.raises(PrivacyError, match=r"client must be in 1\.\.10, got 11"):
        MaskingGraph(10, 4).neighbours(11)


# --- choosing k and t -------------------------------------------------------------------


def _hypergeometric_sf(x: int, population: int, marked: int, draws: int) -> float:
    """P(X > x) by explicit binomial coefficients: the slow reference for scipy's hypergeom."""
    total = math.comb(population, draws)
    return (
        sum(
            math.comb(marked, i) * math.comb(population - marked, draws - i)
            for i in range(x + 1, min(marked, draws) + 1)
        )
        / total
    )


def _meets_bounds(n: int, k: int, t: int, dropped: int, corrupt: int) -> bool:
    leak = n * _hypergeometric_sf(t - 1, n - 1, corrupt, k)
    half = k // 2
    removed = dropped + corrupt
    ring = (
        0.0 if k == n - 1 or removed < half else n * math.perm(removed, half) / math.perm(n, half)
    )
    loss = n * _hypergeometric_sf(k - t, n - 1, dropped, k)
    return leak + min(1.0, ring) <= 2.0**-40 and loss <= 2.0**-20


@pytest.mark.parametrize(
    ("n", "dropout", "corruption"),
    [(50, 0.1, 0.0), (100, 0.1, 0.1), (200, 0.05, 0.05), (500, 0.1, 0.1), (40, 0.3, 0.1)],
)
def test_settings_are_the_smallest_degree_meeting_the_bounds(
    n: int, dropout: float, corruption: float
) -> None:
    settings = secagg_plus_settings(n, dropout, corruption)
    k, t = settings.degree, settings.threshold
    dropped, corrupt = math.ceil(dropout * n), math.ceil(corruption * n)
    assert _meets_bounds(n, k, t, dropped, corrupt)
    assert settings.security_failure <= 2.0**-40
    assert settings.correctness_failure <= 2.0**-20
    assert (k + 1) / 2 < t <= k
    # No smaller even degree meets both bounds with any majority threshold.
    for smaller in range(2, min(k, n - 1), 2):
        assert not any(
            _meets_bounds(n, smaller, s, dropped, corrupt)
            for s in range(smaller // 2 + 1, smaller + 1)
        )


def test_degree_grows_logarithmically() -> None:
    """Bell et al. 2020's point: k = O(log n). Here k at n = 10^4 is under 4x k at n = 10^2."""
    degrees = [secagg_plus_settings(n, 0.1, 0.1).degree for n in (100, 1000, 10_000)]
    assert degrees == sorted(degrees)
    assert degrees[-1] < 4 * degrees[0]
    assert degrees[-1] < 10_000 // 50


def test_settings_fall_back_to_secagg_and_refuse_the_impossible() -> None:
    small = secagg_plus_settings(10, 0.3, 0.1)
    assert small.degree == 9
    with pytest.raises(PrivacyError, match="must leave enough honest survivors"):
        secagg_plus_settings(6, 0.45, 0.45)
    with pytest.raises(PrivacyError, match=r"dropout_fraction must be in \[0, 0.5\), got 0.5"):
        secagg_plus_settings(100, 0.5, 0.0)
    with pytest.raises(PrivacyError, match="num_clients must be an integer >= 3, got 2"):
        secagg_plus_settings(2, 0.1, 0.1)
    with pytest.raises(PrivacyError, match=r"security_bits must be an integer in \[1, 128\]"):
        secagg_plus_settings(100, 0.1, 0.1, security_bits=0)


# --- the protocol on a sparse graph ---------------------------------------------------------

PLUS_CASES = [(50, 0.0, 2)] + [
    (n, f, r) for n in (50, 100) for f in (0.1, 0.3) for r in (0, 1, 2, 3)
]


@pytest.mark.parametrize(("n", "fraction", "round_"), PLUS_CASES)
def test_secagg_plus_sum_is_exact_with_dropouts(n: int, fraction: float, round_: int) -> None:
    settings = secagg_plus_settings(n, fraction, 0.0)
    graph = MaskingGraph.random(n, settings.degree, np.random.default_rng(n))
    inputs = _inputs(n, seed=n)
    rng = np.random.default_rng(round_)
    dropped = set((rng.permutation(n)[: math.ceil(fraction * n)] + 1).tolist())
    result = simulate(inputs, settings.threshold, BITS, {round_: dropped}, rng, graph)
    survivors = set(range(1, n + 1)) - (dropped if round_ < 3 else set())
    np.testing.assert_array_equal(result, _expected(inputs, survivors))


@pytest.mark.slow
@pytest.mark.parametrize("graph_kind", ["secagg", "secagg+"])
def test_sum_is_exact_for_200_clients(graph_kind: str) -> None:
    n = 200
    inputs = _inputs(n, seed=200)
    if graph_kind == "secagg":
        graph, threshold = None, n // 2 + 1
    else:
        settings = secagg_plus_settings(n, 0.1, 0.0)
        graph = MaskingGraph.random(n, settings.degree, np.random.default_rng(0))
        threshold = settings.threshold
    dropped = set(range(5, 205, 10))  # 20 clients, 10%
    result = simulate(inputs, threshold, BITS, {2: dropped}, np.random.default_rng(9), graph)
    np.testing.assert_array_equal(result, _expected(inputs, set(range(1, n + 1)) - dropped))


def test_losing_one_neighbourhood_aborts_before_reconstruction() -> None:
    n = 30
    graph = MaskingGraph.random(n, 6, np.random.default_rng(4))
    params = SecAggParams(n, 4, 8, BITS, graph=graph)
    # Client 1's holders are itself and 6 neighbours; 4 of the neighbours drop after masking,
    # which leaves 3 < t holders able to reveal client 1's self-mask shares.
    gone = set(sorted(graph.neighbours(1))[:4])
    clients = [
        SecAggClient(params, i, x, np.random.default_rng(i))
        for i, x in enumerate(_inputs(n, 5), start=1)
    ]
    server = SecAggServer(params)
    with pytest.raises(AbortedRound, match="holders, got 3"):
        run_protocol(server, clients, {3: gone})
    assert server.aborted
    assert server.result is None
    assert server.recovered_self_seeds == {}
    assert server.recovered_mask_keys == {}


def test_sparse_threshold_is_checked_against_the_degree() -> None:
    graph = MaskingGraph(30, 6)
    with pytest.raises(PrivacyError, match=r"threshold must be in \(3.5, 7\] and >= 2 for 7"):
        SecAggParams(30, 16, 8, BITS, graph=graph)
    with pytest.raises(PrivacyError, match="graph must be a MaskingGraph over 30 clients"):
        SecAggParams(30, 4, 8, BITS, graph=MaskingGraph(20, 6))


@pytest.mark.parametrize("graph_kind", ["secagg", "secagg+"])
def test_no_single_input_is_recoverable_from_the_server_state_after_dropouts(
    graph_kind: str,
) -> None:
    """The server's whole state after a round with dropouts: every y_u, the survivors'
    self-mask seeds b_u and the dropouts' mask keys. It never holds both secrets of one
    client, and stripping from y_u everything it can (b_u's mask, the masks shared with
    dropouts) leaves a vector still hidden by the masks u shares with other survivors:
    not x_u, and uniform by chi-square on the low byte (fixed seeds; alpha = 1e-3 each,
    so a false alarm somewhere in the 2 x 20 checks below has probability < 4%)."""
    n, length = 24, 512
    graph = None if graph_kind == "secagg" else MaskingGraph.random(n, 8, np.random.default_rng(1))
    threshold = 13 if graph is None else 5
    params = SecAggParams(n, threshold, length, BITS, graph=graph)
    inputs = [np.full(length, 1000 + u, dtype=np.uint64) for u in range(1, n + 1)]
    clients = [
        SecAggClient(params, u, inputs[u - 1], np.random.default_rng(50 + u))
        for u in range(1, n + 1)
    ]
    server = SecAggServer(params)
    dropped = {3, 9, 17, 22}
    total = run_protocol(server, clients, {2: dropped})
    survivors = set(range(1, n + 1)) - dropped
    np.testing.assert_array_equal(total, _expected(inputs, survivors))
    assert not set(server.recovered_self_seeds) & set(server.recovered_mask_keys)
    assert set(server.recovered_mask_keys) == dropped
    keys = server.public_keys
    for u in sorted(survivors)[:20]:
        stripped = server.masked_inputs[u] - expand_mask(
            server.recovered_self_seeds[u], length, BITS
        )
        for v in dropped & params.holders(u):
            pair = KeyPair.from_private_bytes(server.recovered_mask_keys[v])
            seed = agree(pair, keys[u][1], info=agreement_info(KeyPurpose.MASK, 0, u, v))
            mask = expand_mask(seed, length, BITS)
            stripped = stripped - mask if u < v else stripped + mask
        stripped &= np.uint64(2**BITS - 1)
        assert not np.array_equal(stripped, inputs[u - 1])
        counts = np.bincount((stripped & np.uint64(255)).astype(np.int64), minlength=256)
        assert stats.chisquare(counts).pvalue > 1e-3
