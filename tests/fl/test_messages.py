"""The four federated wire messages: round trips, layout and type checks, fuzzing.

Every engine that crosses a process (Ray, gRPC) sends only these messages, so
decoding must give back exactly what was encoded and must turn any other bytes
into :class:`privet.wire.WireError` — never another exception, never a silent
reshape or cast. The fuzz tests run with ``derandomize=True`` (the same examples
on every run), so they have no false alarms.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privet.fl import (
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    Parameters,
)
from privet.fl.messages import (
    EVALUATE_INS,
    EVALUATE_RES,
    FIT_INS,
    FIT_RES,
    decode_evaluate_instructions,
    decode_evaluate_result,
    decode_fit_instructions,
    decode_fit_result,
    encode_evaluate_instructions,
    encode_evaluate_result,
    encode_fit_instructions,
    encode_fit_result,
)
from privet.wire import WireError, decode_message, encode_message

FUZZ = settings(max_examples=300, deadline=None, derandomize=True)


def mixed_parameters() -> Parameters:
    """Every dtype family, a scalar, an empty array and a 3-D one."""
    return Parameters(
        {
            "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
            "conv.bias": np.array([-1.5, np.inf, 0.0], dtype=np.float64),
            "half": np.array([0.1, -2.0], dtype=np.float16),
            "steps": np.array(2**40, dtype=np.int64),
            "codes": np.array([0, 255], dtype=np.uint8),
            "mask": np.array([True, False, True]),
            "empty": np.zeros((0, 5), dtype=np.float32),
        }
    )


def assert_identical(got: Parameters, expected: Parameters) -> None:
    """Same names in order, same dtypes and shapes, same bytes (NaN/inf included)."""
    assert got.names == expected.names
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name
        assert got[name].shape == expected[name].shape, name
        assert got[name].tobytes() == expected[name].tobytes(), name


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instructions",
    [
        FitInstructions(1),
        FitInstructions(
            7,
            proximal_mu=0.25,
            local_epochs=3,
            learning_rate=0.01,
            extra={"flag": True, "count": 2, "scale": 1.5, "name": "x", "huge": 2**62},
        ),
    ],
    ids=["defaults", "everything"],
)
def test_fit_instructions_round_trip(instructions: FitInstructions) -> None:
    parameters = mixed_parameters()
    decoded_parameters, decoded = decode_fit_instructions(
        encode_fit_instructions(parameters, instructions), like=parameters
    )
    assert_identical(decoded_parameters, parameters)
    assert decoded == instructions
    # Booleans stay booleans and integers integers (1 == True would hide a change).
    for key, value in instructions.extra.items():
        assert type(decoded.extra[key]) is type(value)
    assert type(decoded.proximal_mu) is float


def test_fit_result_round_trip() -> None:
    result = FitResult(mixed_parameters(), 17, {"train_loss": 0.125, "clipped": False, "n": 3})
    decoded = decode_fit_result(encode_fit_result(result), like=result.parameters)
    assert_identical(decoded.parameters, result.parameters)
    assert decoded.num_examples == 17
    assert decoded.metrics == result.metrics
    assert type(decoded.metrics["clipped"]) is bool
    # Without ``like`` the layout is whatever the message says.
    assert_identical(decode_fit_result(encode_fit_result(result)).parameters, result.parameters)


def test_evaluate_instructions_round_trip() -> None:
    parameters = mixed_parameters()
    instructions = EvaluateInstructions(4, extra={"split": "test", "batch": 64})
    decoded_parameters, decoded = decode_evaluate_instructions(
        encode_evaluate_instructions(parameters, instructions), like=parameters
    )
    assert_identical(decoded_parameters, parameters)
    assert decoded == instructions


def test_evaluate_result_round_trip_with_a_nan_loss_sent_as_null() -> None:
    result = EvaluateResult(0.75, 40, {"accuracy": 0.5, "label": "ok"})
    assert decode_evaluate_result(encode_evaluate_result(result)) == result
    empty = EvaluateResult(math.nan, 0)
    data = encode_evaluate_result(empty)
    assert decode_message(data).meta["loss"] is None  # JSON has no NaN
    decoded = decode_evaluate_result(data)
    assert math.isnan(decoded.loss)
    assert decoded.num_examples == 0
    assert decoded.metrics == {}


def test_decoded_arrays_are_read_only() -> None:
    parameters = mixed_parameters()
    decoded, _ = decode_fit_instructions(encode_fit_instructions(parameters, FitInstructions(1)))
    with pytest.raises(ValueError, match="read-only"):
        decoded["conv.bias"][0] = 1.0


# -- layout, kind and field checks ------------------------------------------------------------


def test_a_wrong_layout_is_refused_naming_the_array() -> None:
    like = Parameters({"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)})
    reshaped = Parameters({"w": np.zeros((3, 2), np.float32), "b": np.zeros(3, np.float32)})
    recast = Parameters({"w": np.zeros((2, 3), np.float64), "b": np.zeros(3, np.float32)})
    renamed = Parameters({"b": np.zeros(3, np.float32), "w": np.zeros((2, 3), np.float32)})
    with pytest.raises(WireError, match=r"'w' must be float32\[2, 3\], got float32\[3, 2\]"):
        decode_fit_result(encode_fit_result(FitResult(reshaped, 1)), like=like)
    with pytest.raises(WireError, match=r"'w' must be float32\[2, 3\], got float64\[2, 3\]"):
        decode_fit_instructions(encode_fit_instructions(recast, FitInstructions(1)), like=like)
    with pytest.raises(WireError, match=r"must have the names \['w', 'b'\], got \['b', 'w'\]"):
        decode_evaluate_instructions(
            encode_evaluate_instructions(renamed, EvaluateInstructions(1)), like=like
        )


@pytest.mark.parametrize(
    ("data", "decode", "expected"),
    [
        (
            encode_fit_instructions(Parameters({}), FitInstructions(1)),
            decode_fit_result,
            FIT_RES,
        ),
        (encode_fit_result(FitResult(Parameters({}), 1)), decode_fit_instructions, FIT_INS),
        (
            encode_evaluate_result(EvaluateResult(0.0, 1)),
            decode_evaluate_instructions,
            EVALUATE_INS,
        ),
        (
            encode_evaluate_instructions(Parameters({}), EvaluateInstructions(1)),
            decode_evaluate_result,
            EVALUATE_RES,
        ),
    ],
    ids=["fit_ins-as-fit_res", "fit_res-as-fit_ins", "eval_res-as-eval_ins", "eval_ins-as-res"],
)
def test_a_message_of_another_kind_is_refused(
    data: bytes, decode: Callable[[bytes], object], expected: str
) -> None:
    with pytest.raises(WireError, match=f"message kind must be '{expected}'"):
        decode(data)


FIT_INS_META: dict[str, Any] = {
    "server_round": 1,
    "proximal_mu": 0.0,
    "local_epochs": None,
    "learning_rate": None,
    "extra": {},
}


def with_meta(kind: str, meta: dict[str, Any], **changes: Any) -> bytes:
    """A message built by hand: ``meta`` with ``changes`` (a value of ... drops the field)."""
    fields = {**meta, **changes}
    return encode_message(kind, {k: v for k, v in fields.items() if v is not ...})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"server_round": "1"}, "field 'server_round' must be int, got '1'"),
        ({"server_round": True}, "field 'server_round' must not be a boolean, got True"),
        ({"server_round": 1.0}, "field 'server_round' must be int, got 1.0"),
        ({"server_round": None}, "field 'server_round' must be int, got None"),
        ({"proximal_mu": "0"}, "field 'proximal_mu' must be int or float, got '0'"),
        ({"local_epochs": 2.5}, "field 'local_epochs' must be int, got 2.5"),
        ({"learning_rate": [0.1]}, r"field 'learning_rate' must be int or float, got \[0.1\]"),
        ({"extra": []}, r"field 'extra' must be dict or Mapping, got \[\]"),
        ({"extra": {"a": [1]}}, r"field 'extra' must map names to scalars, got 'a': \[1\]"),
        ({"extra": {"a": None}}, "field 'extra' must map names to scalars, got 'a': None"),
        ({"proximal_mu": ...}, "fl.fit_ins message lacks the field 'proximal_mu'"),
        # Well-typed but out of range: the record's own check, as a WireError.
        ({"server_round": 0}, "fl.fit_ins message: server_round must be an integer >= 1, got 0"),
        ({"proximal_mu": -1.0}, "fl.fit_ins message: proximal_mu must be >= 0, got -1.0"),
    ],
)
def test_fit_instructions_fields_of_the_wrong_type_are_named(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(WireError, match=message):
        decode_fit_instructions(with_meta(FIT_INS, FIT_INS_META, **changes))


@pytest.mark.parametrize(
    ("kind", "meta", "decode", "message"),
    [
        (
            FIT_RES,
            {"num_examples": "5", "metrics": {}},
            decode_fit_result,
            "field 'num_examples' must be int, got '5'",
        ),
        (
            FIT_RES,
            {"num_examples": -1, "metrics": {}},
            decode_fit_result,
            "fl.fit_res message: num_examples must be an integer >= 0, got -1",
        ),
        (
            FIT_RES,
            {"num_examples": 1, "metrics": {"loss": {"nested": 1}}},
            decode_fit_result,
            "field 'metrics' must map names to scalars",
        ),
        (
            EVALUATE_RES,
            {"loss": "0.5", "num_examples": 1, "metrics": {}},
            decode_evaluate_result,
            "field 'loss' must be int or float, got '0.5'",
        ),
        (
            EVALUATE_RES,
            {"loss": 0.5, "metrics": {}},
            decode_evaluate_result,
            "fl.evaluate_res message lacks the field 'num_examples'",
        ),
        (
            EVALUATE_INS,
            {"server_round": 2, "extra": "none"},
            decode_evaluate_instructions,
            "field 'extra' must be dict or Mapping, got 'none'",
        ),
    ],
)
def test_result_and_evaluate_fields_of_the_wrong_type_are_named(
    kind: str, meta: dict[str, Any], decode: Callable[[bytes], object], message: str
) -> None:
    with pytest.raises(WireError, match=message):
        decode(encode_message(kind, meta))


def test_an_evaluate_result_carrying_arrays_is_refused() -> None:
    data = encode_message(
        EVALUATE_RES, {"loss": 0.5, "num_examples": 1, "metrics": {}}, {"w": np.zeros(2)}
    )
    with pytest.raises(WireError, match="must carry no arrays"):
        decode_evaluate_result(data)


# -- fuzzing ----------------------------------------------------------------------------------

scalars = st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(-1e6, 1e6) | st.text()
extras = st.dictionaries(st.text(max_size=6), scalars, max_size=3)
small_parameters = st.lists(
    st.tuples(
        st.sampled_from(["float32", "float64", "int64", "bool", "uint8", "float16"]),
        st.lists(st.integers(0, 3), max_size=2),
    ),
    max_size=3,
).map(
    lambda specs: Parameters(
        {f"p{i}": np.ones(shape, dtype=dtype) for i, (dtype, shape) in enumerate(specs)}
    )
)


@st.composite
def fl_messages(draw: st.DrawFn) -> tuple[bytes, Callable[[bytes], object], Parameters]:
    """A valid encoded message of a random kind, its decoder and its parameters' layout."""
    parameters = draw(small_parameters)
    kind = draw(st.sampled_from([FIT_INS, FIT_RES, EVALUATE_INS, EVALUATE_RES]))
    if kind == FIT_INS:
        instructions = FitInstructions(
            draw(st.integers(1, 10**6)),
            proximal_mu=draw(st.floats(0, 10)),
            local_epochs=draw(st.none() | st.integers(1, 10)),
            learning_rate=draw(st.none() | st.floats(1e-6, 1.0)),
            extra=draw(extras),
        )
        return (
            encode_fit_instructions(parameters, instructions),
            decode_fit_instructions,
            parameters,
        )
    if kind == FIT_RES:
        result = FitResult(parameters, draw(st.integers(0, 10**6)), draw(extras))
        return encode_fit_result(result), decode_fit_result, parameters
    if kind == EVALUATE_INS:
        ins = EvaluateInstructions(draw(st.integers(1, 10**6)), extra=draw(extras))
        return (
            encode_evaluate_instructions(parameters, ins),
            decode_evaluate_instructions,
            parameters,
        )
    loss = draw(st.floats(allow_infinity=False))  # NaN included: it travels as null
    evaluation = EvaluateResult(loss, draw(st.integers(0, 10**6)), draw(extras))
    return encode_evaluate_result(evaluation), decode_evaluate_result, parameters


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after one random bit flip, overwrite, truncation, insertion or deletion."""
    buffer = bytearray(data)
    position = draw(st.integers(0, len(buffer) - 1))
    operation = draw(st.sampled_from(["flip", "overwrite", "truncate", "insert", "delete"]))
    if operation == "flip":
        buffer[position] ^= 1 << draw(st.integers(0, 7))
    elif operation == "overwrite":
        chunk = draw(st.binary(min_size=1, max_size=8))
        buffer[position : position + len(chunk)] = chunk
    elif operation == "truncate":
        del buffer[position:]
    elif operation == "insert":
        buffer[position:position] = draw(st.binary(min_size=1, max_size=8))
    else:
        del buffer[position : position + draw(st.integers(1, 8))]
    return bytes(buffer)


def decode_or_wire_error(decode: Callable[..., object], data: bytes, like: Parameters) -> None:
    """Decoding succeeds with a well-formed record, or raises WireError — nothing else."""
    try:
        # An evaluation result carries no parameters, hence no ``like``.
        decoded = decode(data) if decode is decode_evaluate_result else decode(data, like=like)
    except WireError:
        return
    if isinstance(decoded, tuple):
        parameters, instructions = decoded
        like.check_layout(parameters)
        assert isinstance(instructions, FitInstructions | EvaluateInstructions)
    else:
        assert isinstance(decoded, FitResult | EvaluateResult)
        if isinstance(decoded, FitResult):
            like.check_layout(decoded.parameters)


@FUZZ
@given(st.data())
def test_mutated_fl_messages_decode_or_raise_wire_error(data: st.DataObject) -> None:
    encoded, decode, like = data.draw(fl_messages())
    decode_or_wire_error(decode, data.draw(mutated(encoded)), like)


# JSON values of any shape, to put where a field of one type is expected.
json_values = st.recursive(
    st.none() | scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@FUZZ
@given(st.data())
def test_meta_fields_of_any_json_type_decode_or_raise_wire_error(data: st.DataObject) -> None:
    """Well-formed messages whose meta fields hold arbitrary JSON (or are missing)."""
    encoded, decode, like = data.draw(fl_messages())
    message = decode_message(encoded)
    meta = dict(message.meta)
    field = data.draw(st.sampled_from([*sorted(meta), "unexpected"]))
    if data.draw(st.booleans()) and field in meta:
        del meta[field]
    else:
        meta[field] = data.draw(json_values)
    forged = encode_message(message.kind, meta, message.arrays)
    decode_or_wire_error(decode, forged, like)


def test_byte_mutations_reach_past_the_preamble() -> None:
    """What the byte fuzzer relies on: a changed header byte is caught by the header
    checks, and a changed payload byte decodes to a changed value of the same layout
    (payload bytes carry no structure to check)."""
    parameters = Parameters({"w": np.zeros(4, np.float32)})
    data = encode_fit_result(FitResult(parameters, 3))
    header_length = struct.unpack_from("<I", data, 6)[0]
    header = data[10 : 10 + header_length]
    assert json.loads(header)["meta"] == {"num_examples": 3, "metrics": {}}
    at = 10 + header.index(b"3")
    with pytest.raises(WireError, match="header"):
        decode_fit_result(data[:at] + b"x" + data[at + 1 :], like=parameters)
    changed = decode_fit_result(data[:-1] + b"\x3f", like=parameters)  # last float's top byte
    assert changed.parameters["w"][-1] != 0.0
    assert changed.num_examples == 3
