"""The secure-fit task on the wire: what a client needs to start a securely aggregated round.

A :class:`~privet.fl.secure_client.SecureFitTask` travels as one
:mod:`privet.wire` message of kind ``fl.secure_fit``: the global parameters as
its arrays (as in a plain ``fl.fit_ins``), and as JSON meta the fit
instructions, the secure-aggregation instance (ids, threshold, vector length,
modulus, round, masking graph with its public seed), the contribution the
strategy asked for, the encoder that maps it into ``Z_{2^k}`` and the weight
cap. Decoding checks the exact field set and types, rebuilds every record
through its own validation, and then checks that the pieces agree with each
other (the vector length matches the parameters and the encoder, the encoder
covers all ``n`` clients in the instance's ring, the client id is one of
``1..n``, the instructions are for the instance's round), so a client never
starts a protocol it could not finish.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from privet.errors import PrivacyError
from privet.fl.messages import (
    fit_instructions_from,
    fit_instructions_meta,
    parameters_from,
)
from privet.fl.secure_client import SecureFitTask, SumEncoder
from privet.fl.strategy import SecureContribution
from privet.secagg.distributed_dp import DistributedDiscreteGaussian
from privet.secagg.graph import MaskingGraph
from privet.secagg.masking import SEED_BYTES
from privet.secagg.messages import SecAggParams
from privet.secagg.quantize import Quantizer
from privet.wire import Limits, Message, WireError, decode_message, encode_message
from privet.wire.codec import DEFAULT_LIMITS

__all__ = [
    "DEFAULT_MAX_CLIENTS",
    "DISTRIBUTED_NOISE_FIELDS",
    "SECURE_FIT",
    "checked_fields",
    "decode_secure_fit_task",
    "distributed_noise_meta",
    "encode_secure_fit_task",
]

SECURE_FIT: Final = "fl.secure_fit"
#: Default cap on ``n`` in a decoded task (far above what one gRPC server holds).
DEFAULT_MAX_CLIENTS: Final = 100_000
_SEED: Final = re.compile(f"[0-9a-f]{{{2 * SEED_BYTES}}}", re.ASCII)
_PROTOCOL: Final = "privet-secure-fit/v1"
_QUANTIZER: Final = "quantizer"
_DISTRIBUTED_DG: Final = "distributed_discrete_gaussian"

_NUMBER: Final = (int, float)
_OPTIONAL_NUMBER: Final = (int, float, type(None))
#: The meta fields of a :class:`DistributedDiscreteGaussian` and their types, all but
#: ``modulus_bits``: the ring is the carrying message's to state (``fl.secure_fit`` has it
#: once for the whole protocol instance; ``fl.he_fit`` adds it beside these).
DISTRIBUTED_NOISE_FIELDS: Final[Mapping[str, tuple[type, ...]]] = MappingProxyType(
    {
        "l2_clip": _NUMBER,
        "scale": _NUMBER,
        "noise_multiplier": _NUMBER,
        "dimension": (int,),
        "num_clients": (int,),
        "min_honest_clients": (int,),
        "rounding_beta": _NUMBER,
    }
)
_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    "protocol": (str,),
    "client_id": (int,),
    "num_clients": (int,),
    "threshold": (int,),
    "vector_length": (int,),
    "modulus_bits": (int,),
    "round_id": (int,),
    "graph_degree": (int,),
    "graph_seed": (str,),
    "l2_clip": _OPTIONAL_NUMBER,
    "weighted": (bool,),
    "report_unclipped": (bool,),
    "max_weight": (int,),
    "encoder": (dict, Mapping),
    # The fit instructions' own fields (privet.fl.messages checks their types).
    "server_round": (int,),
    "proximal_mu": _NUMBER,
    "local_epochs": (int, type(None)),
    "learning_rate": _OPTIONAL_NUMBER,
    "extra": (dict, Mapping),
}
_ENCODER_FIELDS: Final[dict[str, dict[str, tuple[type, ...]]]] = {
    _QUANTIZER: {
        "kind": (str,),
        "clip_bound": _NUMBER,
        "scale": _NUMBER,
        "num_clients": (int,),
        "stochastic": (bool,),
    },
    _DISTRIBUTED_DG: {"kind": (str,), **DISTRIBUTED_NOISE_FIELDS},
}


def distributed_noise_meta(noise: DistributedDiscreteGaussian) -> dict[str, Any]:
    """The mechanism as JSON meta: the fields of :data:`DISTRIBUTED_NOISE_FIELDS`, in its order.

    ``DistributedDiscreteGaussian(modulus_bits=..., **meta)`` rebuilds it once
    the meta has been checked against those fields.
    """
    return {
        "l2_clip": float(noise.l2_clip),
        "scale": float(noise.scale),
        "noise_multiplier": float(noise.noise_multiplier),
        "dimension": noise.dimension,
        "num_clients": noise.num_clients,
        "min_honest_clients": noise.min_honest_clients,
        "rounding_beta": float(noise.rounding_beta),
    }


def _encoder_meta(encoder: SumEncoder) -> dict[str, Any]:
    if isinstance(encoder, Quantizer):
        return {
            "kind": _QUANTIZER,
            "clip_bound": float(encoder.clip_bound),
            "scale": float(encoder.scale),
            "num_clients": encoder.num_clients,
            "stochastic": encoder.stochastic,
        }
    return {"kind": _DISTRIBUTED_DG, **distributed_noise_meta(encoder)}


def encode_secure_fit_task(task: SecureFitTask) -> bytes:
    """One client's task as ``fl.secure_fit`` wire bytes (see the module docstring)."""
    if not isinstance(task, SecureFitTask):
        raise PrivacyError(f"task must be a SecureFitTask, got {type(task).__name__}")
    params = task.params
    graph = params.masking_graph
    l2_clip = task.contribution.l2_clip
    meta = {
        "protocol": _PROTOCOL,
        "client_id": task.client_id,
        "num_clients": params.num_clients,
        "threshold": params.threshold,
        "vector_length": params.vector_length,
        "modulus_bits": params.modulus_bits,
        "round_id": params.round_id,
        "graph_degree": graph.degree,
        "graph_seed": graph.seed.hex(),
        "l2_clip": None if l2_clip is None else float(l2_clip),
        "weighted": task.contribution.weighted,
        "report_unclipped": task.contribution.report_unclipped,
        "max_weight": task.max_weight,
        "encoder": _encoder_meta(task.encoder),
        **fit_instructions_meta(task.instructions),
    }
    return encode_message(SECURE_FIT, meta, dict(task.parameters))


def checked_fields(
    kind: str, meta: Mapping[str, Any], fields: Mapping[str, tuple[type, ...]]
) -> dict[str, Any]:
    """``meta`` with exactly ``fields``, each of its types (a bool is not a number here)."""
    if set(meta) != set(fields):
        raise WireError(f"{kind} fields must be {sorted(fields)}, got {sorted(meta)}")
    for name, kinds in fields.items():
        value = meta[name]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise WireError(f"{kind} field {name!r} has the wrong type: {str(value)[:80]!r}")
    return dict(meta)


def _encoder(raw: Mapping[str, Any], modulus_bits: int) -> SumEncoder:
    kind = raw.get("kind")
    fields = _ENCODER_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise WireError(
            f"{SECURE_FIT} encoder kind must be one of {sorted(_ENCODER_FIELDS)}, "
            f"got {str(kind)[:80]!r}"
        )
    meta = checked_fields(f"{SECURE_FIT} encoder", raw, fields)
    del meta["kind"]
    if kind == _QUANTIZER:
        return Quantizer(modulus_bits=modulus_bits, **meta)
    return DistributedDiscreteGaussian(modulus_bits=modulus_bits, **meta)


def _seed(text: str) -> bytes:
    # One spelling only: lower-case hex, no separators.
    if _SEED.fullmatch(text) is None:
        raise WireError(
            f"{SECURE_FIT} graph_seed must be {2 * SEED_BYTES} lower-case hex digits, "
            f"got {text[:80]!r}"
        )
    return bytes.fromhex(text)


def _consistent(task: SecureFitTask) -> None:
    """The task's parts must describe one protocol instance the client can finish."""
    params, encoder, size = task.params, task.encoder, task.parameters.size
    n = params.num_clients
    if not 1 <= task.client_id <= n:
        raise WireError(f"{SECURE_FIT} client_id must be in [1, {n}], got {task.client_id}")
    if task.instructions.server_round != params.round_id:
        raise WireError(
            f"{SECURE_FIT} instructions are for round {task.instructions.server_round}, "
            f"the protocol for round {params.round_id}"
        )
    if encoder.num_clients < n:
        raise WireError(
            f"{SECURE_FIT} encoder must cover num_clients >= {n}, got {encoder.num_clients}"
        )
    if task.max_weight < 1:
        raise WireError(f"{SECURE_FIT} max_weight must be >= 1, got {task.max_weight}")
    # The quantizer path appends the weight (and the unclipped bit if asked); the
    # distributed mechanism sums the update alone.
    report = int(task.contribution.report_unclipped)
    expected = size + 1 + report if isinstance(encoder, Quantizer) else size
    if params.vector_length != expected:
        raise WireError(
            f"{SECURE_FIT} vector_length must be {expected} for {size} parameters, "
            f"got {params.vector_length}"
        )
    if isinstance(encoder, DistributedDiscreteGaussian) and encoder.dimension != size:
        raise WireError(
            f"{SECURE_FIT} distributed noise must cover {size} parameters, got {encoder.dimension}"
        )


def _task(message: Message, max_clients: int) -> SecureFitTask:
    meta = checked_fields(SECURE_FIT, message.meta, _FIELDS)
    if meta["protocol"] != _PROTOCOL:
        raise WireError(
            f"{SECURE_FIT} protocol must be {_PROTOCOL!r}, got {meta['protocol'][:80]!r}"
        )
    # Checked before anything sized by n is built: a few bytes must not buy gigabytes.
    if not 2 <= meta["num_clients"] <= max_clients:
        raise WireError(
            f"{SECURE_FIT} num_clients must be in [2, max_clients={max_clients}], "
            f"got {meta['num_clients']}"
        )
    graph = MaskingGraph(meta["num_clients"], meta["graph_degree"], _seed(meta["graph_seed"]))
    params = SecAggParams(
        meta["num_clients"],
        meta["threshold"],
        meta["vector_length"],
        meta["modulus_bits"],
        round_id=meta["round_id"],
        graph=graph,
    )
    encoder = _encoder(meta["encoder"], params.modulus_bits)
    noise = encoder if isinstance(encoder, DistributedDiscreteGaussian) else None
    contribution = SecureContribution(
        meta["l2_clip"], meta["weighted"], noise, meta["report_unclipped"]
    )
    task = SecureFitTask(
        params,
        meta["client_id"],
        parameters_from(message),
        fit_instructions_from(message),
        contribution,
        encoder,
        meta["max_weight"],
    )
    _consistent(task)
    return task


def decode_secure_fit_task(
    data: bytes, *, limits: Limits = DEFAULT_LIMITS, max_clients: int = DEFAULT_MAX_CLIENTS
) -> SecureFitTask:
    """Decode and check an ``fl.secure_fit`` message.

    ``max_clients`` caps the instance's ``n``: a client's protocol state grows
    with ``n`` (ids and neighbourhoods), so a hostile task could otherwise ask
    for gigabytes in a few bytes.

    Raises
    ------
    WireError
        Not the declared bytes, fields or types; a record's own validation
        failed (a threshold out of range, an encoder whose sum could wrap, ...);
        or the parts disagree (see the module docstring).
    """
    if isinstance(max_clients, bool) or not isinstance(max_clients, int) or max_clients < 2:
        raise PrivacyError(f"max_clients must be an integer >= 2, got {max_clients!r}")
    message = decode_message(data, expected_kind=SECURE_FIT, limits=limits)
    try:
        return _task(message, max_clients)
    except WireError:
        raise
    except PrivacyError as error:
        raise WireError(f"{SECURE_FIT} message: {error}") from error
