"""The client's side of a securely aggregated federated round.

A :class:`SecureClientSession` wraps any :class:`~privet.fl.types.Client`. It
trains on the task the server sends, turns the result into the vector the
strategy asked for (:class:`~privet.fl.strategy.SecureContribution`), encodes
it into ``Z_{2^k}`` and then speaks the secure-aggregation protocol
(:mod:`privet.secagg`) in :mod:`privet.wire` bytes. The trained parameters
never leave the session: the server receives masked vectors only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.fl.central_dp import clip_rows
from privet.fl.parameters import Parameters
from privet.fl.strategy import SecureContribution
from privet.fl.types import Client, FitInstructions
from privet.secagg.client import SecAggClient
from privet.secagg.codec import decode_server_message, encode_secagg_message
from privet.secagg.distributed_dp import DistributedDiscreteGaussian
from privet.secagg.messages import (
    KeysBroadcast,
    ProtocolViolation,
    SecAggParams,
    SharesDelivery,
    Stage,
    UnmaskRequest,
)
from privet.secagg.quantize import Quantizer

__all__ = ["SecureClientSession", "SecureFitTask", "contribution_vector"]

SumEncoder = Quantizer | DistributedDiscreteGaussian


@dataclass(frozen=True)
class SecureFitTask:
    """What the server tells one client at the start of a secure round.

    Attributes
    ----------
    params
        The secure-aggregation instance (ids, threshold, graph, modulus, round).
    client_id
        This client's protocol id in ``1..n``.
    parameters, instructions
        The global model and the fit instructions, as in a plain round.
    contribution
        What to add to the sum.
    encoder
        How to map the contribution into ``Z_{2^k}``: a :class:`Quantizer`
        (the weight rides in the last coordinate), or the distributed DP
        mechanism (unweighted; it clips and adds noise).
    max_weight
        Example counts are capped here and divided by it, so a weight is in
        ``[0, 1]`` and the quantizer's clip bound covers it.
    """

    params: SecAggParams
    client_id: int
    parameters: Parameters
    instructions: FitInstructions
    contribution: SecureContribution
    encoder: SumEncoder
    max_weight: int


def contribution_vector(
    trained: Parameters,
    global_parameters: Parameters,
    num_examples: int,
    contribution: SecureContribution,
    max_weight: int,
) -> NDArray[np.float64]:
    """The float vector a client adds: its (clipped, weighted) update, then its weight.

    With distributed noise the vector is the update alone (the mechanism clips);
    otherwise it is ``[w delta, w]`` with ``w = min(num_examples, max_weight) /
    max_weight`` if weighted, else ``w = 1``, followed by the bit
    ``1[‖delta‖ <= l2_clip]`` if the contribution asks to report it.
    """
    global_parameters.check_layout(trained, what="trained parameters")
    delta: NDArray[np.float64] = trained.to_vector() - global_parameters.to_vector()
    if not np.isfinite(delta).all():
        raise PrivacyError("trained parameters must be finite, got NaN or infinity")
    if contribution.distributed_noise is not None:
        return delta
    tail: list[float] = []
    if contribution.l2_clip is not None:
        clipped, norms = clip_rows(delta[None, :], contribution.l2_clip)
        delta = clipped[0]
        if contribution.report_unclipped:
            tail.append(float(norms[0] <= contribution.l2_clip))
    weight = min(num_examples, max_weight) / max_weight if contribution.weighted else 1.0
    vector: NDArray[np.float64] = np.concatenate([weight * delta, [weight], tail])
    return vector


class SecureClientSession:
    """One client's part in one securely aggregated round.

    Parameters
    ----------
    client
        The federated client that trains.
    task
        The round's task (see :class:`SecureFitTask`).
    rng
        ``None`` (real use): keys, masks, rounding and noise from the OS
        CSPRNG. A seeded generator is for simulation only.
    """

    def __init__(
        self, client: Client, task: SecureFitTask, rng: np.random.Generator | None = None
    ) -> None:
        self._task = task
        result = client.fit(task.parameters, task.instructions)
        vector = contribution_vector(
            result.parameters,
            task.parameters,
            result.num_examples,
            task.contribution,
            task.max_weight,
        )
        if vector.size != task.params.vector_length:
            raise PrivacyError(
                f"contribution must have {task.params.vector_length} values, got {vector.size}"
            )
        encoded = task.encoder.encode(vector, rng)
        self._protocol = SecAggClient(task.params, task.client_id, encoded, rng)

    @property
    def finished(self) -> bool:
        """Whether this client has answered the unmask request (its part is over)."""
        return self._protocol.stage is Stage.DONE

    def advertise(self) -> bytes:
        """Round 0: this client's public keys, as wire bytes."""
        return encode_secagg_message(self._protocol.advertise(), self._task.params)

    def respond(self, data: bytes) -> bytes:
        """Rounds 1–3: decode the server's message, answer it, encode the answer."""
        params = self._task.params
        message = decode_server_message(data, params, recipient=self._task.client_id)
        if isinstance(message, KeysBroadcast):
            return encode_secagg_message(self._protocol.share_keys(message), params)
        if isinstance(message, SharesDelivery):
            return encode_secagg_message(self._protocol.masked_input(message), params)
        if isinstance(message, UnmaskRequest):
            return encode_secagg_message(self._protocol.unmask(message), params)
        raise ProtocolViolation(f"message must be a server message, got {type(message).__name__}")
