"""Masking graphs: who shares keys and masks with whom (SecAgg and SecAgg+).

In SecAgg (Bonawitz et al., CCS 2017) every client agrees a pairwise mask with
every other client and Shamir-shares its secrets among all of them: ``O(n)``
work and messages per client, ``O(n^2)`` mask expansions on the server after
dropouts. SecAgg+ (Bell, Bonawitz, Gascón, Lepoint & Raykova, "Secure
Single-Server Aggregation with (Poly)Logarithmic Overhead", CCS 2020) keeps the
protocol but runs it on a sparse ``k``-regular graph: a client masks with, and
shares its secrets among, its ``k`` neighbours only, with ``k = O(log n)``.

The graph here is the Harary graph ``H(n, k)`` (the circulant graph joining
each node to the ``k/2`` nearest on either side of a ring) with the ring order
a uniformly random permutation of the clients — the construction of Bell et
al.'s practical variant (their §5), also used by Flower's SecAgg+. The
permutation comes from a public 32-byte seed through AES-CTR, so every party
derives the same graph from the seed alone. Under a random relabelling a
client's ``k`` neighbours are a uniformly random ``k``-subset of the others,
which is what :func:`secagg_plus_settings` analyses.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import stats

from privet.errors import PrivacyError
from privet.secagg.masking import SEED_BYTES, expand_mask

__all__ = ["MaskingGraph", "SecAggPlusSettings", "secagg_plus_settings"]


@dataclass(frozen=True)
class MaskingGraph:
    """A ``k``-regular masking graph over clients ``1..n``.

    Parameters
    ----------
    num_clients
        ``n >= 2``.
    degree
        ``k``: either ``n - 1`` (the complete graph of SecAgg) or an even
        number in ``[2, n - 2]`` (the Harary graph ``H(n, k)`` of SecAgg+).
    seed
        32 public bytes fixing the random ring order; every party derives
        the same neighbourhoods from it. Irrelevant for the complete graph.
    """

    num_clients: int
    degree: int
    seed: bytes = bytes(SEED_BYTES)

    def __post_init__(self) -> None:
        n, k = self.num_clients, self.degree
        for name, value in (("num_clients", n), ("degree", k)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise PrivacyError(f"{name} must be an integer, got {value!r}")
        if n < 2:
            raise PrivacyError(f"num_clients must be >= 2, got {n}")
        if k != n - 1 and not (k % 2 == 0 and 2 <= k <= n - 2):
            raise PrivacyError(
                f"degree must be n - 1 = {n - 1} (complete) or even in [2, {n - 2}], got {k}"
            )
        if not isinstance(self.seed, bytes) or len(self.seed) != SEED_BYTES:
            raise PrivacyError(f"seed must be {SEED_BYTES} bytes, got {self.seed!r}")

    @classmethod
    def complete(cls, num_clients: int) -> MaskingGraph:
        """The complete graph: every client is every other client's neighbour (SecAgg)."""
        return cls(num_clients, num_clients - 1)

    @classmethod
    def random(
        cls, num_clients: int, degree: int, rng: np.random.Generator | None = None
    ) -> MaskingGraph:
        """A Harary graph with a fresh random ring order (OS CSPRNG unless ``rng`` is given)."""
        seed = secrets.token_bytes(SEED_BYTES) if rng is None else rng.bytes(SEED_BYTES)
        return cls(num_clients, degree, seed)

    @property
    def is_complete(self) -> bool:
        """Whether this is the complete graph of SecAgg."""
        return self.degree == self.num_clients - 1

    def neighbours(self, client: int) -> frozenset[int]:
        """The ``k`` neighbours of ``client`` (an id in ``1..n``)."""
        if isinstance(client, bool) or not isinstance(client, int):
            raise PrivacyError(
                f"client must be an integer in 1..{self.num_clients}, got {client!r}"
            )
        if not 1 <= client <= self.num_clients:
            raise PrivacyError(f"client must be in 1..{self.num_clients}, got {client}")
        return self._neighbourhoods[client - 1]

    @cached_property
    def _neighbourhoods(self) -> tuple[frozenset[int], ...]:
        n = self.num_clients
        everyone = frozenset(range(1, n + 1))
        if self.is_complete:
            return tuple(everyone - {u} for u in range(1, n + 1))
        # Sorting AES-CTR words gives a uniform permutation (ties have probability ~n^2/2^64).
        order = np.argsort(expand_mask(self.seed, n, 64), kind="stable")
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        half = self.degree // 2
        result = []
        for u in range(n):
            p = int(position[u])
            ring = [(p + j) % n for j in range(-half, half + 1) if j != 0]
            result.append(frozenset(int(order[q]) + 1 for q in ring))
        return tuple(result)


@dataclass(frozen=True)
class SecAggPlusSettings:
    """A SecAgg+ degree and threshold with the failure bounds that justify them.

    Attributes
    ----------
    degree, threshold
        ``k`` and ``t``: each client shares its secrets ``t``-of-``(k + 1)``
        among its neighbours and itself.
    security_failure
        Upper bound on the probability that the adversary learns more than
        the sum of the honest survivors (log2 is ``<= -security_bits``).
    correctness_failure
        Upper bound on the probability that some client's secrets cannot be
        recovered because too few of its neighbours survive.
    """

    degree: int
    threshold: int
    security_failure: float
    correctness_failure: float


def secagg_plus_settings(
    num_clients: int,
    dropout_fraction: float,
    corruption_fraction: float,
    *,
    security_bits: int = 40,
    correctness_bits: int = 20,
) -> SecAggPlusSettings:
    """The smallest even degree ``k`` (and its threshold) that SecAgg+ can run with.

    Follows the conditions of Bell et al. 2020 (§3–§5): on a random ``k``-regular
    graph, with at most ``dropout_fraction * n`` dropouts and at most
    ``corruption_fraction * n`` clients colluding with the (semi-honest)
    server, both chosen independently of the graph,

    1. *security*: no honest client has ``t`` or more corrupt neighbours (else
       the adversary holds ``t`` shares of both its secrets), and the honest
       survivors stay connected (else the server learns partial sums);
    2. *correctness*: every client keeps at least ``t`` surviving neighbours,
       so its self-mask seed or its mask key can be reconstructed;

    each must fail with probability at most ``2^-security_bits`` and
    ``2^-correctness_bits``. A neighbourhood is a uniform ``k``-subset of the
    other ``n - 1`` clients, so the counts are hypergeometric; the bounds
    union over the ``n`` clients. Disconnection of the ring needs a run of
    ``k/2`` consecutive removed clients, bounded by ``n`` times the chance of
    one such run. ``t > (k + 1)/2`` as in SecAgg. When no sparse degree works
    the complete graph (``k = n - 1``, SecAgg) is returned.

    Raises
    ------
    PrivacyError
        If an argument is out of range, or not even the complete graph meets
        the bounds (too many dropouts or corrupt clients).
    """
    n = num_clients
    if isinstance(n, bool) or not isinstance(n, int) or n < 3:
        raise PrivacyError(f"num_clients must be an integer >= 3, got {n!r}")
    for name, value in (
        ("dropout_fraction", dropout_fraction),
        ("corruption_fraction", corruption_fraction),
    ):
        if not isinstance(value, (int, float)) or not 0.0 <= value < 0.5:
            raise PrivacyError(f"{name} must be in [0, 0.5), got {value!r}")
    for name, bits in (("security_bits", security_bits), ("correctness_bits", correctness_bits)):
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 128:
            raise PrivacyError(f"{name} must be an integer in [1, 128], got {bits!r}")
    # Fractions of a client round up: tolerating 5% of 10 clients means tolerating one.
    dropped = math.ceil(dropout_fraction * n)
    corrupt = math.ceil(corruption_fraction * n)
    security_target, correctness_target = 2.0**-security_bits, 2.0**-correctness_bits
    for k in [*range(2, n - 1, 2), n - 1]:
        disconnect = _ring_disconnection_bound(n, dropped + corrupt, k)
        if k == n - 1:
            disconnect = 0.0  # the complete graph stays connected after any removal
        for t in range(k // 2 + 1, k + 1):
            # Corrupt holders of an honest client's shares: its corrupt neighbours.
            leak = n * float(stats.hypergeom.sf(t - 1, n - 1, corrupt, k))
            security = leak + disconnect
            if security > security_target:
                continue
            # Too few surviving neighbours: more than k - t of them dropped.
            loss = n * float(stats.hypergeom.sf(k - t, n - 1, dropped, k))
            if loss <= correctness_target:
                return SecAggPlusSettings(k, t, security, loss)
            break  # a larger t only loses more; try a larger degree
    raise PrivacyError(
        f"dropout_fraction + corruption_fraction must leave enough honest survivors for "
        f"n = {n} clients, got {dropout_fraction} + {corruption_fraction}"
    )


def _ring_disconnection_bound(n: int, removed: int, degree: int) -> float:
    """``n * P(k/2 given ring positions are all removed)`` for ``removed`` random clients."""
    half = degree // 2
    if removed < half:
        return 0.0
    chance = 1.0
    for i in range(half):
        chance *= (removed - i) / (n - i)
    return min(1.0, n * chance)
