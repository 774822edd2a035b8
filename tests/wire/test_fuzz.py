"""Fuzzing privet.wire decoding: whatever the bytes, WireError or a valid message.

Hypothesis generates (a) arbitrary bytes, bytes behind a valid preamble and
arbitrary JSON headers, (b) valid messages mutated by bit flips, truncations,
insertions, deletions and overwrites, and (c) valid messages for the
round-trip property. Any exception other than WireError fails the test, as
would a hang (each file runs in seconds). ``derandomize=True`` makes CI runs
reproducible.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from privet.wire import Limits, Message, WireError, decode_message, encode_message
from privet.wire.codec import DTYPES

FUZZ = settings(max_examples=200, deadline=None, derandomize=True)
# Generous enough for any nesting the strategies produce, so round trips never hit a cap.
ROOMY = Limits(max_meta_depth=64)

kinds = st.from_regex(r"[A-Za-z][A-Za-z0-9_.:\-]{0,12}", fullmatch=True)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
metas = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
arrays = st.sampled_from(list(DTYPES)).flatmap(
    lambda name: hnp.arrays(
        np.dtype(name),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    )
)
named_arrays = st.dictionaries(st.text(min_size=1, max_size=8), arrays, max_size=4)


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    return draw(kinds), draw(metas), draw(named_arrays)


@st.composite
def encoded(draw: st.DrawFn) -> bytes:
    kind, meta, named = draw(messages())
    return encode_message(kind, meta, named, limits=ROOMY)


def check_decoded(message: Message, data: bytes) -> None:
    """What every successful decode guarantees, whatever the input was."""
    payload = sum(array.nbytes for array in message.arrays.values())
    header_size = struct.unpack_from("<I", data, 6)[0]
    assert len(data) == 10 + header_size + payload
    for array in message.arrays.values():
        assert not array.flags.writeable
        assert array.dtype.name in DTYPES
    # Re-encoding what was decoded and decoding again is stable (idempotent).
    again = decode_message(encode_message(message.kind, message.meta, message.arrays, limits=ROOMY))
    assert again.kind == message.kind
    assert json.dumps(dict(again.meta)) == json.dumps(dict(message.meta))
    assert list(again.arrays) == list(message.arrays)
    for name, array in message.arrays.items():
        assert again.arrays[name].tobytes() == array.tobytes()
        assert again.arrays[name].shape == array.shape


def decode_or_wire_error(data: bytes, limits: Limits = ROOMY) -> Message | None:
    try:
        message = decode_message(data, limits=limits)
    except WireError:
        return None
    check_decoded(message, data)
    return message


# -- (a) arbitrary input ----------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=256))
def test_arbitrary_bytes(data: bytes) -> None:
    decode_or_wire_error(data)


@FUZZ
@given(st.binary(max_size=200), st.binary(max_size=64))
def test_arbitrary_header_behind_a_valid_preamble(raw: bytes, payload: bytes) -> None:
    decode_or_wire_error(b"PRVW\x01\x00" + struct.pack("<I", len(raw)) + raw + payload)


header_values = st.recursive(
    scalars | st.sampled_from(list(DTYPES)) | st.integers(-2, 64),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def forged(draw: st.DrawFn) -> bytes:
    """A coherent header and payload with one field (or the payload length) spoiled.

    Starting from consistent entries lets the spoiled field reach the checks deep
    in the header (nbytes, offsets, names, bool bytes) instead of failing early.
    """
    entries: list[dict[str, Any]] = []
    offset = 0
    for name in draw(st.lists(st.text(min_size=1, max_size=3), max_size=3, unique=True)):
        dtype = draw(st.sampled_from(list(DTYPES)))
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        entries.append(
            {"name": name, "dtype": dtype, "shape": shape, "offset": offset, "nbytes": nbytes}
        )
        offset += nbytes
    header: dict[str, Any] = {"kind": draw(kinds), "meta": draw(metas), "arrays": entries}
    spoil = draw(st.sampled_from(["none", "header", "entry", "entry", "payload"]))
    if spoil == "header":
        header[draw(st.sampled_from(sorted(header)))] = draw(header_values)
    elif spoil == "entry" and entries:
        target = draw(st.sampled_from(entries))
        target[draw(st.sampled_from(sorted(target)))] = draw(header_values)
    elif spoil == "payload":
        offset = max(0, offset + draw(st.integers(-3, 3)))
    raw = json.dumps(header).encode("utf-8")
    # bool bytes are 0 or 1 unless hypothesis picks otherwise: exercise both.
    payload = draw(st.binary(min_size=offset, max_size=offset))
    if draw(st.booleans()):
        payload = bytes(byte & 1 for byte in payload)
    return b"PRVW\x01\x00" + struct.pack("<I", len(raw)) + raw + payload


@FUZZ
@given(header_values, st.binary(max_size=64))
def test_arbitrary_json_headers(header: Any, payload: bytes) -> None:
    """Headers that parse as JSON but are shaped at random."""
    raw = json.dumps(header).encode("utf-8")
    decode_or_wire_error(b"PRVW\x01\x00" + struct.pack("<I", len(raw)) + raw + payload)


@FUZZ
@given(forged())
def test_forged_headers(data: bytes) -> None:
    decode_or_wire_error(data)


# -- (b) mutated valid messages ---------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(encoded()))
    # Aim most edits at the header: positions drawn from the whole message would
    # mostly hit the payload or (hypothesis favouring small numbers) the magic.
    structure = 10 + struct.unpack_from("<I", data, 6)[0]
    regions = [(10, structure)] * 3 + [(structure, len(data))] * 2 + [(0, 10)]
    # Uniform positions: hypothesis' own integers lean to the low end of a range.
    uniform = draw(st.randoms(use_true_random=False))
    for _ in range(draw(st.integers(1, 4))):
        low, high = draw(st.sampled_from(regions))
        high = min(high, len(data))
        if low >= high:
            continue
        at = uniform.randrange(low, high)
        edit = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        if edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_messages(data: bytes) -> None:
    decode_or_wire_error(data)


@FUZZ
@given(mutated())
def test_mutated_messages_under_tight_limits(data: bytes) -> None:
    tight = Limits(
        max_message_bytes=512,
        max_header_bytes=256,
        max_arrays=2,
        max_ndim=2,
        max_string_bytes=4,
        max_meta_entries=4,
        max_meta_depth=2,
    )
    decode_or_wire_error(data, tight)


@FUZZ
@given(encoded(), st.data())
def test_a_single_bit_flip_never_escapes(data: bytes, choose: st.DataObject) -> None:
    at = choose.draw(st.integers(0, len(data) - 1))
    flipped = bytearray(data)
    flipped[at] ^= 1 << choose.draw(st.integers(0, 7))
    decode_or_wire_error(bytes(flipped))


# -- (c) round trip ---------------------------------------------------------------------------


@FUZZ
@given(messages())
def test_round_trip(message: tuple[str, dict[str, Any], dict[str, np.ndarray]]) -> None:
    kind, meta, named = message
    data = encode_message(kind, meta, named, limits=ROOMY)
    decoded = decode_message(data, expected_kind=kind, limits=ROOMY)
    assert decoded.kind == kind
    assert decoded.meta == meta
    # repr tells -0.0 from 0.0 and keeps key order, which == ignores.
    assert json.dumps(dict(decoded.meta)) == json.dumps(meta)
    assert list(decoded.arrays) == list(named)
    for name, array in named.items():
        assert decoded.arrays[name].dtype == array.dtype.newbyteorder("<")
        assert decoded.arrays[name].shape == array.shape
        assert decoded.arrays[name].tobytes() == np.ascontiguousarray(array).tobytes()
    check_decoded(decoded, data)
    # The encoding is canonical: encoding the decoded message reproduces the bytes.
    assert encode_message(decoded.kind, decoded.meta, decoded.arrays, limits=ROOMY) == data
