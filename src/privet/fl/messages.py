"""Federated messages on the wire: instructions and results as :mod:`privet.wire` bytes.

Every engine that crosses a process boundary (Ray, gRPC) sends these four
message kinds and nothing else; the parameters travel as the message's named
arrays (in order), the rest as JSON meta. Decoding checks the kind, every
meta field's type, and — given the expected layout — every array's name,
shape and dtype, so a malformed or hostile message is a clear error, never a
crash or a silent reshape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from privet.errors import PrivacyError
from privet.fl.parameters import Parameters
from privet.fl.types import (
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    Metrics,
)
from privet.wire import Limits, Message, WireError, decode_message, encode_message
from privet.wire.codec import DEFAULT_LIMITS

__all__ = [
    "EVALUATE_INS",
    "EVALUATE_RES",
    "FIT_INS",
    "FIT_RES",
    "decode_evaluate_instructions",
    "decode_evaluate_result",
    "decode_fit_instructions",
    "decode_fit_result",
    "encode_evaluate_instructions",
    "encode_evaluate_result",
    "encode_fit_instructions",
    "encode_fit_result",
    "fit_instructions_from",
    "fit_instructions_meta",
    "parameters_from",
]

FIT_INS = "fl.fit_ins"
FIT_RES = "fl.fit_res"
EVALUATE_INS = "fl.evaluate_ins"
EVALUATE_RES = "fl.evaluate_res"


def _field(message: Message, name: str, kinds: tuple[type, ...], optional: bool = False) -> Any:
    if name not in message.meta:
        raise WireError(f"{message.kind} message lacks the field {name!r}")
    value = message.meta[name]
    if value is None and optional:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise WireError(f"{message.kind} field {name!r} must not be a boolean, got {value!r}")
    if not isinstance(value, kinds):
        expected = " or ".join(kind.__name__ for kind in kinds)
        raise WireError(f"{message.kind} field {name!r} must be {expected}, got {value!r}")
    return value


def _scalars(message: Message, name: str) -> dict[str, bool | int | float | str]:
    value = _field(message, name, (dict, Mapping))
    for key, item in value.items():
        if not isinstance(item, bool | int | float | str):
            raise WireError(
                f"{message.kind} field {name!r} must map names to scalars, got {key!r}: {item!r}"
            )
    return dict(value)


def _parameters(message: Message, like: Parameters | None) -> Parameters:
    try:
        parameters = Parameters(message.arrays)
        if like is not None:
            like.check_layout(parameters, what=f"{message.kind} parameters")
    except WireError:
        raise
    except PrivacyError as error:
        raise WireError(str(error)) from error
    return parameters


def _wire_metrics(metrics: Metrics) -> dict[str, bool | int | float | str]:
    """Metrics as JSON allows them: a non-finite float (a diverged loss) travels as its
    text, ``"nan"`` or ``"inf"``, so the round goes on and the value stays visible."""
    return {
        key: repr(value) if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in metrics.items()
    }


def _built(kind: str, build: Any, *args: Any, **kwargs: Any) -> Any:
    """Construct a record from decoded fields; its own validation errors become WireError."""
    try:
        return build(*args, **kwargs)
    except WireError:
        raise
    except PrivacyError as error:
        raise WireError(f"{kind} message: {error}") from error


# -- fit --------------------------------------------------------------------------------------


def fit_instructions_meta(instructions: FitInstructions) -> dict[str, Any]:
    """The meta fields that carry fit instructions (shared with the secure-fit task)."""
    return {
        "server_round": instructions.server_round,
        "proximal_mu": instructions.proximal_mu,
        "local_epochs": instructions.local_epochs,
        "learning_rate": instructions.learning_rate,
        "extra": _wire_metrics(instructions.extra),
    }


def fit_instructions_from(message: Message) -> FitInstructions:
    """Fit instructions from a decoded message's meta fields (see :func:`fit_instructions_meta`)."""
    instructions: FitInstructions = _built(
        message.kind,
        FitInstructions,
        server_round=_field(message, "server_round", (int,)),
        proximal_mu=float(_field(message, "proximal_mu", (int, float))),
        local_epochs=_field(message, "local_epochs", (int,), optional=True),
        learning_rate=_field(message, "learning_rate", (int, float), optional=True),
        extra=_scalars(message, "extra"),
    )
    return instructions


def parameters_from(message: Message, like: Parameters | None = None) -> Parameters:
    """A decoded message's arrays as parameters, checked against ``like``'s layout if given."""
    return _parameters(message, like)


def encode_fit_instructions(parameters: Parameters, instructions: FitInstructions) -> bytes:
    return encode_message(FIT_INS, fit_instructions_meta(instructions), dict(parameters))


def decode_fit_instructions(
    data: bytes, *, like: Parameters | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[Parameters, FitInstructions]:
    """Parameters and instructions; ``like`` (if given) is the layout they must have."""
    message = decode_message(data, expected_kind=FIT_INS, limits=limits)
    instructions = fit_instructions_from(message)
    return _parameters(message, like), instructions


def encode_fit_result(result: FitResult) -> bytes:
    meta = {"num_examples": result.num_examples, "metrics": _wire_metrics(result.metrics)}
    return encode_message(FIT_RES, meta, dict(result.parameters))


def decode_fit_result(
    data: bytes, *, like: Parameters | None = None, limits: Limits = DEFAULT_LIMITS
) -> FitResult:
    message = decode_message(data, expected_kind=FIT_RES, limits=limits)
    parameters = _parameters(message, like)
    result: FitResult = _built(
        FIT_RES,
        FitResult,
        parameters,
        _field(message, "num_examples", (int,)),
        _scalars(message, "metrics"),
    )
    return result


# -- evaluate ---------------------------------------------------------------------------------


def encode_evaluate_instructions(
    parameters: Parameters, instructions: EvaluateInstructions
) -> bytes:
    meta = {"server_round": instructions.server_round, "extra": _wire_metrics(instructions.extra)}
    return encode_message(EVALUATE_INS, meta, dict(parameters))


def decode_evaluate_instructions(
    data: bytes, *, like: Parameters | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[Parameters, EvaluateInstructions]:
    message = decode_message(data, expected_kind=EVALUATE_INS, limits=limits)
    instructions = _built(
        EVALUATE_INS,
        EvaluateInstructions,
        server_round=_field(message, "server_round", (int,)),
        extra=_scalars(message, "extra"),
    )
    return _parameters(message, like), instructions


def encode_evaluate_result(result: EvaluateResult) -> bytes:
    # JSON has no NaN or infinity: a client without evaluation data (NaN), or whose loss
    # diverged, sends null, which decodes as NaN.
    loss = result.loss if math.isfinite(result.loss) else None
    meta = {
        "loss": loss,
        "num_examples": result.num_examples,
        "metrics": _wire_metrics(result.metrics),
    }
    return encode_message(EVALUATE_RES, meta)


def decode_evaluate_result(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> EvaluateResult:
    message = decode_message(data, expected_kind=EVALUATE_RES, limits=limits)
    if message.arrays:
        raise WireError(f"{EVALUATE_RES} message must carry no arrays")
    loss = _field(message, "loss", (int, float), optional=True)
    result: EvaluateResult = _built(
        EVALUATE_RES,
        EvaluateResult,
        math.nan if loss is None else float(loss),
        _field(message, "num_examples", (int,)),
        _scalars(message, "metrics"),
    )
    return result
