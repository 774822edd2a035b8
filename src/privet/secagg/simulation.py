"""Drive a secure-aggregation server and its clients in memory, synchronously.

For tests, benchmarks and simulations; a deployment moves the same messages
over a transport (see :mod:`privet.secagg.codec` for their wire form).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from privet.errors import PrivacyError
from privet.secagg.client import SecAggClient
from privet.secagg.graph import MaskingGraph
from privet.secagg.messages import SecAggParams
from privet.secagg.server import SecAggServer

__all__ = ["run_protocol", "simulate"]


def run_protocol(
    server: SecAggServer,
    clients: Sequence[SecAggClient],
    drop: Mapping[int, set[int]] | None = None,
) -> np.ndarray:
    """Drive a server and its clients through the four rounds.

    ``drop[r]`` holds the ids that drop out before sending their round-``r``
    message (``r`` in 0..3); a dropout stays out. Raises
    :class:`~privet.secagg.messages.AbortedRound` when too few clients remain.
    """
    drop = drop or {}
    gone: set[int] = set()

    def alive(r: int) -> list[SecAggClient]:
        gone.update(drop.get(r, set()))
        return [c for c in clients if c.client_id not in gone]

    for client in alive(0):
        server.receive(client.advertise())
    broadcasts = server.broadcast_keys()
    for client in alive(1):
        server.receive(client.share_keys(broadcasts[client.client_id]))
    shares = server.deliver_shares()
    for client in alive(2):
        server.receive(client.masked_input(shares[client.client_id]))
    request = server.request_unmask()
    for client in alive(3):
        if client.client_id in request.survivors:
            server.receive(client.unmask(request))
    return server.finish()


def simulate(
    inputs: Sequence[np.ndarray],
    threshold: int,
    modulus_bits: int,
    drop: Mapping[int, set[int]] | None = None,
    rng: np.random.Generator | None = None,
    graph: MaskingGraph | None = None,
) -> np.ndarray:
    """Run the protocol in memory for clients ``1..n`` holding ``inputs`` (already in ``Z_2^k``).

    Returns ``sum_{u in U3} x_u mod 2^k``; raises
    :class:`~privet.secagg.messages.AbortedRound` below the threshold. ``graph``
    ``None`` runs SecAgg; a sparse :class:`~privet.secagg.graph.MaskingGraph`
    runs SecAgg+. A seeded ``rng`` makes every secret reproducible: simulation only.
    """
    if len(inputs) < 2:
        raise PrivacyError(f"inputs must hold at least 2 vectors, got {len(inputs)}")
    length = int(np.shape(inputs[0])[0])
    params = SecAggParams(len(inputs), threshold, length, modulus_bits, graph=graph)
    clients = [SecAggClient(params, i + 1, x, rng) for i, x in enumerate(inputs)]
    return run_protocol(SecAggServer(params), clients, drop)
