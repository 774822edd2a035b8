"""Secure aggregation as the fit stage of a federated round.

:class:`SecAggEngine` runs each round's fits through the protocol of Bonawitz
et al. 2017 (SecAgg) or Bell et al. 2020 (SecAgg+) over a
:class:`SecureTransport`: the server side here sends and receives only
:mod:`privet.wire` bytes, holds only masked vectors, and learns the sum of the
updates of the clients that finished (:class:`~privet.fl.strategy.SecureSum`).
:func:`privet.fl.run_federated` hands that sum to the strategy's
``aggregate_secure_sum``; a strategy that needs individual updates (Krum,
median) is refused before the first round.

The transport is injectable: :class:`InMemorySecureTransport` drives
:class:`~privet.fl.secure_client.SecureClientSession` objects in this process
(tests, simulation), and every message, the round's task included, still
crosses it as bytes; :class:`privet.fl.deploy.GrpcSecureTransport` carries
the same bytes over the gRPC deployment.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

import numpy as np

from privet.errors import PrivacyError
from privet.fl.engine import Engine, SequentialEngine, SumOnlyEngine
from privet.fl.parameters import Parameters
from privet.fl.secure_client import SecureClientSession, SecureFitTask, SumEncoder
from privet.fl.secure_messages import decode_secure_fit_task, encode_secure_fit_task
from privet.fl.strategy import SecureContribution, SecureSum
from privet.fl.types import (
    Client,
    FitInstructions,
    RoundAborted,
)
from privet.secagg.codec import decode_client_message, encode_secagg_message
from privet.secagg.graph import MaskingGraph, secagg_plus_settings
from privet.secagg.messages import AbortedRound, SecAggParams, Stage
from privet.secagg.quantize import Quantizer
from privet.secagg.server import SecAggServer

__all__ = [
    "InMemorySecureTransport",
    "MaskingMode",
    "SecAggEngine",
    "SecureAggregation",
    "SecureTransport",
]

logger = logging.getLogger("privet.fl")


class MaskingMode(Enum):
    """Which masking graph the protocol runs on."""

    SECAGG = "secagg"  # complete graph (Bonawitz et al. 2017)
    SECAGG_PLUS = "secagg+"  # random k-regular graph (Bell et al. 2020)


@dataclass(frozen=True)
class SecureAggregation:
    """How a federated round is securely aggregated.

    Attributes
    ----------
    mode
        SecAgg (complete graph) or SecAgg+ (sparse graph, ``k`` from
        :func:`~privet.secagg.secagg_plus_settings`).
    dropout_fraction, corruption_fraction
        What the round must tolerate: dropouts, and clients that may collude
        with the (honest-but-curious) server; both in ``[0, 0.5)``. They set
        the threshold ``t`` (and SecAgg+'s degree).
    coordinate_clip
        Without an L2 clip from the strategy, each update coordinate is
        clipped to ``[-coordinate_clip, coordinate_clip]`` before quantizing.
    modulus_bits
        The ring ``Z_{2^k}`` of the plain (noise-free) encoding.
    max_weight
        Example counts are capped here for weighted averaging.
    """

    mode: MaskingMode = MaskingMode.SECAGG_PLUS
    dropout_fraction: float = 0.1
    corruption_fraction: float = 0.0
    coordinate_clip: float = 10.0
    modulus_bits: int = 62
    max_weight: int = 100_000

    def __post_init__(self) -> None:
        if not isinstance(self.mode, MaskingMode):
            raise PrivacyError(f"mode must be a MaskingMode, got {self.mode!r}")
        for name in ("dropout_fraction", "corruption_fraction"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value < 0.5:
                raise PrivacyError(f"{name} must be in [0, 0.5), got {value!r}")
        clip = self.coordinate_clip
        if not isinstance(clip, int | float) or not (math.isfinite(clip) and clip > 0):
            raise PrivacyError(f"coordinate_clip must be a finite number > 0, got {clip!r}")
        bits = self.modulus_bits
        if isinstance(bits, bool) or not isinstance(bits, int) or not 16 <= bits <= 64:
            raise PrivacyError(f"modulus_bits must be an integer in [16, 64], got {bits!r}")
        weight = self.max_weight
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise PrivacyError(f"max_weight must be an integer >= 1, got {weight!r}")

    def graph_and_threshold(
        self, num_clients: int, rng: np.random.Generator | None = None
    ) -> tuple[MaskingGraph, int]:
        """The round's masking graph (fresh random ring order) and Shamir threshold."""
        n = num_clients
        dropped = math.ceil(self.dropout_fraction * n)
        corrupt = math.ceil(self.corruption_fraction * n)
        if self.mode is MaskingMode.SECAGG_PLUS and n >= 3:
            settings = secagg_plus_settings(n, self.dropout_fraction, self.corruption_fraction)
            if settings.degree < n - 1:
                return MaskingGraph.random(n, settings.degree, rng), settings.threshold
        # Complete graph: a majority, more than the colluders, at most the expected survivors.
        threshold = max(2, n // 2 + 1, corrupt + 1)
        if threshold > n - dropped:
            raise RoundAborted(
                f"secure aggregation of {n} clients must tolerate {dropped} dropouts and "
                f"{corrupt} colluders, which needs t = {threshold} <= {n - dropped} survivors"
            )
        return MaskingGraph.complete(n), threshold


@runtime_checkable
class SecureTransport(Protocol):
    """Carries one secure round's messages between the server and named clients.

    Each call is one protocol round trip. A client missing from the reply
    dropped out (it failed, timed out, or its connection broke).
    """

    def start(self, tasks: Mapping[str, SecureFitTask]) -> dict[str, bytes]:
        """Send each client its task; collect the round-0 messages (public keys)."""
        ...

    def exchange(self, messages: Mapping[str, bytes]) -> dict[str, bytes]:
        """Send each client its message; collect the answers."""
        ...


class InMemorySecureTransport:
    """Clients in this process; every message still travels as wire bytes.

    Parameters
    ----------
    clients
        Client id -> federated client.
    rng
        ``None`` (default): each session draws from the OS CSPRNG. A seeded
        generator makes the simulation reproducible (never for real data).
    """

    def __init__(self, clients: Mapping[str, Client], rng: np.random.Generator | None = None):
        self._clients = dict(clients)
        self._rng = rng
        self._sessions: dict[str, SecureClientSession] = {}

    @property
    def client_ids(self) -> Sequence[str]:
        return list(self._clients)

    def start(self, tasks: Mapping[str, SecureFitTask]) -> dict[str, bytes]:
        self._sessions = {}
        replies: dict[str, bytes] = {}
        for name, task in tasks.items():
            if name not in self._clients:
                raise PrivacyError(f"unknown client id {name!r}")
            try:
                # The task crosses as bytes, as it would over a network.
                received = decode_secure_fit_task(encode_secure_fit_task(task))
                session = SecureClientSession(self._clients[name], received, self._rng)
                replies[name] = session.advertise()
            except Exception as error:  # a failing client drops out of the round
                logger.warning("client %r failed to start secure fit: %s", name, error)
                continue
            self._sessions[name] = session
        return replies

    def exchange(self, messages: Mapping[str, bytes]) -> dict[str, bytes]:
        replies: dict[str, bytes] = {}
        for name, data in messages.items():
            session = self._sessions.get(name)
            if session is None:
                continue
            try:
                replies[name] = session.respond(data)
            except Exception as error:  # a failing client drops out of the round
                logger.warning("client %r dropped out of secure aggregation: %s", name, error)
                del self._sessions[name]
        return replies


class SecAggEngine(SumOnlyEngine):
    """Fits through secure aggregation; evaluation as a plain engine would.

    Parameters
    ----------
    transport
        Carries the protocol messages (see :class:`SecureTransport`).
    evaluation
        The engine that runs client-side evaluation (losses are not updates).
    config
        How rounds are aggregated (see :class:`SecureAggregation`).
    rng
        ``None`` (default): the ring order of SecAgg+ graphs from the OS
        CSPRNG; a seeded generator for simulation.
    """

    def __init__(
        self,
        transport: SecureTransport,
        evaluation: Engine,
        config: SecureAggregation | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        if not isinstance(transport, SecureTransport):
            raise PrivacyError(f"transport must implement SecureTransport, got {transport!r}")
        self.transport = transport
        self.evaluation = evaluation
        self.config = config if config is not None else SecureAggregation()
        self._rng = rng
        #: The masked vectors the server held in the last round: its whole view of the inputs.
        self.last_masked_inputs: dict[int, np.ndarray] = {}

    @classmethod
    def in_memory(
        cls,
        clients: Mapping[str, Client],
        config: SecureAggregation | None = None,
        rng: np.random.Generator | None = None,
    ) -> SecAggEngine:
        """Clients in this process behind an :class:`InMemorySecureTransport`."""
        return cls(InMemorySecureTransport(clients, rng), SequentialEngine(clients), config, rng)

    def _encoder(
        self, contribution: SecureContribution, size: int, num_clients: int
    ) -> tuple[SumEncoder, int]:
        noise = contribution.distributed_noise
        if noise is not None:
            if noise.dimension != size or noise.num_clients < num_clients:
                raise PrivacyError(
                    f"distributed noise must cover {size} parameters and >= {num_clients} "
                    f"clients, got dimension {noise.dimension} for {noise.num_clients} clients"
                )
            return noise, size
        # An L2-clipped update has every coordinate within the L2 bound; weights are in [0, 1].
        bound = contribution.l2_clip
        clip = max(bound if bound is not None else self.config.coordinate_clip, 1.0)
        quantizer = Quantizer.with_max_scale(
            clip, self.config.modulus_bits, num_clients, stochastic=True
        )
        return quantizer, size + 1 + int(contribution.report_unclipped)

    def fit_secure(
        self,
        parameters: Parameters,
        tasks: Sequence[tuple[str, FitInstructions]],
        contribution: SecureContribution,
        server_round: int,
    ) -> SecureSum:
        """Run one secure round: the sum of the finishing clients' contributions."""
        names = [name for name, _ in tasks]
        n = len(names)
        if n < 2:
            raise RoundAborted(f"secure aggregation needs at least 2 clients, got {n}")
        graph, threshold = self.config.graph_and_threshold(n, self._rng)
        noise = contribution.distributed_noise
        if noise is not None and threshold < noise.min_honest_clients:
            raise PrivacyError(
                f"the threshold t = {threshold} must be >= min_honest_clients = "
                f"{noise.min_honest_clients}, so a finished round holds that many clients' noise"
            )
        encoder, length = self._encoder(contribution, parameters.size, n)
        bits = encoder.modulus_bits
        params = SecAggParams(n, threshold, length, bits, round_id=server_round, graph=graph)
        server = SecAggServer(params)
        ids = {name: i for i, name in enumerate(names, start=1)}
        tasks_by_name = {
            name: SecureFitTask(
                params, ids[name], parameters, ins, contribution, encoder, self.config.max_weight
            )
            for name, ins in tasks
        }
        try:
            self._receive(server, ids, self.transport.start(tasks_by_name))
            for _ in range(3):
                outbound = self._next_messages(server, params)
                by_name = {name: outbound[i] for name, i in ids.items() if i in outbound}
                self._receive(server, ids, self.transport.exchange(by_name))
            total = server.finish()
        except AbortedRound as error:
            raise RoundAborted(f"secure aggregation aborted: {error}") from None
        finally:
            self.last_masked_inputs = dict(server.masked_inputs)
        finished = len(self.last_masked_inputs)
        decoded = encoder.decode_sum(total, finished)
        if noise is not None:
            return SecureSum(decoded, float(finished), finished, n - finished)
        size = parameters.size
        # Bits sum to an integer; the fixed-point error is far below 1/2.
        unclipped = round(float(decoded[size + 1])) if contribution.report_unclipped else None
        return SecureSum(decoded[:size], float(decoded[size]), finished, n - finished, unclipped)

    @staticmethod
    def _next_messages(server: SecAggServer, params: SecAggParams) -> dict[int, bytes]:
        if server.stage is Stage.ADVERTISE:
            return {i: encode_secagg_message(m, params) for i, m in server.broadcast_keys().items()}
        if server.stage is Stage.SHARE:
            return {i: encode_secagg_message(m, params) for i, m in server.deliver_shares().items()}
        request = server.request_unmask()
        encoded = encode_secagg_message(request, params)
        return {i: encoded for i in request.survivors}

    @staticmethod
    def _receive(
        server: SecAggServer, ids: Mapping[str, int], replies: Mapping[str, bytes]
    ) -> None:
        for name, data in replies.items():
            sender = ids.get(name)
            if sender is None:
                continue
            try:
                server.receive(decode_client_message(data, server.params, sender=sender))
            except PrivacyError as error:  # a bad message drops its sender, never the server
                logger.warning("dropping client %r: %s", name, error)
