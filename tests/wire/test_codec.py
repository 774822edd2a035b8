"""privet.wire.codec: round trips, the pinned byte layout, and every malformed input refused.

The expected bytes come from the layout written in the module docstring of
``privet.wire.codec`` (magic, uint16 version, uint32 header length, compact JSON
header, little-endian C-order payload), spelled out by hand here.
"""

from __future__ import annotations

import ast
import json
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from privet.errors import PrivacyError
from privet.wire import (
    DEFAULT_LIMITS,
    FORMAT_VERSION,
    Limits,
    Message,
    WireError,
    decode_arrays,
    decode_message,
    encode_arrays,
    encode_message,
)
from privet.wire.codec import DTYPES

WIRE_SOURCE = Path(__file__).resolve().parents[2] / "src" / "privet" / "wire"
ALL_DTYPES = list(DTYPES)


def frame(
    header: dict[str, Any] | str | bytes,
    payload: bytes = b"",
    *,
    magic: bytes = b"PRVW",
    version: int = 1,
    header_size: int | None = None,
) -> bytes:
    """A message assembled by hand, to forge what encode_message never writes."""
    if isinstance(header, dict):
        header = json.dumps(header)
    raw = header.encode("utf-8") if isinstance(header, str) else header
    size = len(raw) if header_size is None else header_size
    return magic + struct.pack("<HI", version, size) + raw + payload


def entry(
    name: str = "x",
    dtype: Any = "float64",
    shape: Any = (2,),
    offset: Any = 0,
    nbytes: Any = 16,
) -> dict[str, Any]:
    return {
        "name": name,
        "dtype": dtype,
        "shape": list(shape) if isinstance(shape, tuple) else shape,
        "offset": offset,
        "nbytes": nbytes,
    }


def header(*entries: dict[str, Any], kind: Any = "t", meta: Any = None) -> dict[str, Any]:
    return {"kind": kind, "meta": {} if meta is None else meta, "arrays": list(entries)}


def sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values spanning the dtype's range (random bits; bool as 0/1)."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    if dtype == "bool":
        return rng.integers(0, 2, size=size).astype(bool).reshape(shape)
    bits = rng.integers(0, 256, size=size * np.dtype(dtype).itemsize, dtype=np.uint8)
    return bits.view(np.dtype(dtype).newbyteorder("<")).reshape(shape)


def little_endian_bytes(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


SMALL = encode_message(
    "fl.fit_ins",
    {"round": 3, "lr": 0.5},
    {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([True, False])},
)


# -- the pinned layout ------------------------------------------------------------------------


def test_bytes_match_the_documented_layout() -> None:
    data = encode_message("t", {"k": [1, None]}, {"x": np.array([1, 258], dtype=np.uint16)})
    text = (
        b'{"kind":"t","meta":{"k":[1,null]},"arrays":'
        b'[{"name":"x","dtype":"uint16","shape":[2],"offset":0,"nbytes":4}]}'
    )
    assert data == b"PRVW" + b"\x01\x00" + struct.pack("<I", len(text)) + text + b"\x01\x00\x02\x01"
    assert FORMAT_VERSION == 1


def test_empty_message_is_preamble_and_header() -> None:
    text = b'{"kind":"ping","meta":{},"arrays":[]}'
    assert encode_message("ping") == b"PRVW\x01\x00" + struct.pack("<I", len(text)) + text
    message = decode_message(encode_message("ping"))
    assert (message.kind, dict(message.meta), dict(message.arrays)) == ("ping", {}, {})


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (5,), (3, 0, 2), (1, 1, 1), (2, 3, 4), (1,) * 32])
def test_round_trip_every_dtype_and_shape(dtype: str, shape: tuple[int, ...]) -> None:
    array = sample(dtype, shape)
    decoded = decode_arrays(encode_arrays({"a": array}))["a"]
    assert decoded.shape == shape
    assert decoded.dtype == np.dtype(dtype).newbyteorder("<")
    # Byte equality: exact for NaN payloads and -0.0 alike.
    assert decoded.tobytes() == array.tobytes()


@pytest.mark.parametrize("dtype", [d for d in ALL_DTYPES if np.dtype(d).itemsize > 1])
def test_big_endian_input_is_written_little_endian(dtype: str) -> None:
    array = sample(dtype, (4, 3), seed=1)
    swapped = array.astype(array.dtype.newbyteorder(">"))
    decoded = decode_arrays(encode_arrays({"a": swapped}))["a"]
    assert decoded.dtype.byteorder in "<|="
    assert decoded.dtype.isnative
    assert decoded.tobytes() == array.tobytes()
    np.testing.assert_array_equal(decoded, swapped)


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a.T,
        lambda a: a[::2, 1:],
        lambda a: np.asfortranarray(a),
        lambda a: a[:, ::-1],
        lambda a: np.broadcast_to(a[:1], a.shape),
    ],
    ids=["transpose", "strided", "fortran", "reversed", "broadcast"],
)
def test_non_contiguous_input_is_written_in_c_order(view: Any) -> None:
    """Documented choice: encoding copies anyway, so any layout is accepted."""
    source = view(np.arange(24, dtype=np.int32).reshape(4, 6))
    decoded = decode_arrays(encode_arrays({"a": source}))["a"]
    assert decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, source)


def test_order_names_and_unaligned_arrays_survive() -> None:
    arrays = {
        "z": np.array([True]),  # one byte: everything after it is unaligned
        "é/层.0": np.array([1.5, -2.25]),
        "a": np.arange(3, dtype=np.uint64),
    }
    decoded = decode_arrays(encode_arrays(arrays))
    assert list(decoded) == list(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(decoded[name], array)


def test_meta_round_trips_exactly() -> None:
    meta = {
        "none": None,
        "flags": [True, False],
        "ints": [0, -1, 2**63 - 1, -(2**63)],
        "floats": [0.1, -0.0, 1e308, 5e-324, 1.0],
        "text": 'ünïcødé ✓ 🦜 \n\t"quoted" \\',
        "nested": {"b": {"a": [[], {}, [1, [2, [3]]]]}, "a": "order kept"},
        "": "empty key",
    }
    decoded = decode_message(encode_message("meta.test", meta)).meta
    assert decoded == meta
    assert list(decoded) == list(meta)
    assert list(decoded["nested"]) == ["b", "a"]
    # repr compares -0.0 and exact float bits, which == does not.
    assert repr(decoded["floats"]) == repr(meta["floats"])
    assert type(decoded["floats"][-1]) is float
    assert type(decoded["ints"][0]) is int


def test_meta_numpy_scalars_and_tuples_become_json_types() -> None:
    meta = {"i": np.int64(7), "f": np.float32(0.5), "b": np.bool_(True), "t": (1, (2, 3))}
    decoded = decode_message(encode_message("t", meta)).meta
    assert decoded == {"i": 7, "f": 0.5, "b": True, "t": [1, [2, 3]]}
    assert [type(decoded[k]) for k in "ifb"] == [int, float, bool]


def test_arrays_from_bytes_are_read_only_views() -> None:
    message = decode_message(SMALL)
    array = message.arrays["w"]
    assert not array.flags.writeable
    assert np.shares_memory(array, np.frombuffer(SMALL, dtype=np.uint8))
    with pytest.raises(ValueError, match="read-only"):
        array[0, 0] = 1.0
    with pytest.raises(TypeError):
        message.arrays["new"] = array  # type: ignore[index]
    with pytest.raises(TypeError):
        message.meta["new"] = 1  # type: ignore[index]


@pytest.mark.parametrize("wrap", [bytearray, memoryview, lambda b: memoryview(bytearray(b))])
def test_mutable_buffers_are_copied_before_decoding(wrap: Any) -> None:
    buffer = bytearray(SMALL)
    data = wrap(buffer) if wrap is not bytearray else buffer
    message = decode_message(data)
    before = message.arrays["w"].copy()
    buffer[-9:] = b"\xff" * 9  # the caller reuses its buffer
    np.testing.assert_array_equal(message.arrays["w"], before)
    assert not message.arrays["w"].flags.writeable


def test_memoryview_of_another_format_or_shape_reads_its_bytes() -> None:
    # Pad meta until the message is a whole number of float64 words.
    data = next(
        m
        for k in range(8)
        if len(m := encode_message("t", {"p": "x" * k}, {"a": np.ones(3)})) % 8 == 0
    )
    words = memoryview(np.frombuffer(data, dtype=np.float64))
    assert words.format == "d"
    assert words.nbytes == len(data)
    rows = memoryview(np.frombuffer(data, dtype=np.uint8).reshape(2, -1))
    for view in (words, rows):
        message = decode_message(view)
        np.testing.assert_array_equal(message.arrays["a"], np.ones(3))
        assert message.meta == decode_message(data).meta


def test_kind_is_checked_when_expected() -> None:
    assert decode_message(SMALL, expected_kind="fl.fit_ins").kind == "fl.fit_ins"
    assert decode_message(SMALL, expected_kind={"fl.fit_ins", "fl.evaluate_ins"}).kind
    with pytest.raises(WireError, match=r"kind must be 'fl.fit_res', got 'fl.fit_ins'"):
        decode_message(SMALL, expected_kind="fl.fit_res")
    with pytest.raises(WireError, match=r"kind must be one of \['a', 'b'\], got 'fl.fit_ins'"):
        decode_message(SMALL, expected_kind=["b", "a"])
    with pytest.raises(WireError, match="kind must be 'arrays'"):
        decode_arrays(SMALL)
    with pytest.raises(PrivacyError, match="message kind must be"):
        decode_message(SMALL, expected_kind="not a kind")


def test_message_is_frozen() -> None:
    message = decode_message(SMALL)
    assert isinstance(message, Message)
    with pytest.raises(AttributeError):
        message.kind = "other"  # type: ignore[misc]


# -- encoding refuses what it cannot represent ------------------------------------------------


@pytest.mark.parametrize("kind", ["", "1abc", "a" * 65, "fl fit", "é", "a\n", None, 3])
def test_encode_refuses_bad_kinds(kind: Any) -> None:
    with pytest.raises(PrivacyError, match="message kind must be 1 to 64 ASCII"):
        encode_message(kind)


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"x": float("nan")}, r"meta\['x'\] must be finite, got nan"),
        ({"x": [float("-inf")]}, r"meta\['x'\]\[0\] must be finite, got -inf"),
        ({"x": 2**63}, r"meta\['x'\] must be a 64-bit signed integer"),
        ({"x": -(2**63) - 1}, "64-bit signed integer"),
        ({"x": object()}, r"must be None, bool, int, float, str, list or dict, got object"),
        ({"x": b"bytes"}, "got bytes"),
        ({"x": {1: 2}}, r"meta\['x'\] keys must be strings, got 1"),
        ({"x": "\ud800"}, "must be valid Unicode, got a lone surrogate"),
        ({"x": np.complex128(1j)}, "got complex128"),
        ([("x", 1)], "meta must be a mapping"),
    ],
)
def test_encode_refuses_bad_meta(meta: Any, match: str) -> None:
    with pytest.raises(PrivacyError, match=match) as caught:
        encode_message("t", meta)
    assert caught.type is PrivacyError  # WireError is kept for bad bytes


def test_encode_refuses_meta_beyond_limits() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(16):
        node["d"] = node = {}
    with pytest.raises(PrivacyError, match="max_meta_depth=16 levels"):
        encode_message("t", deep)
    with pytest.raises(PrivacyError, match="max_meta_entries=3 values"):
        encode_message("t", {"a": [1, 2], "b": 3}, limits=Limits(max_meta_entries=3))
    with pytest.raises(PrivacyError, match="max_string_bytes=4 bytes, got 6"):
        encode_message("t", {"a": "ééé"}, limits=Limits(max_string_bytes=4))
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    with pytest.raises(PrivacyError, match="max_meta_depth"):
        encode_message("t", cycle)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"x": [1, 2]}, "array 'x' must be a numpy.ndarray, got list"),
        (
            {"x": np.zeros(2, np.complex64)},
            "array 'x' dtype must be one of bool, int8.*got complex64",
        ),
        ({"x": np.array(["a"])}, "got <U1"),
        ({"x": np.array([None])}, "got object"),
        ({"x": np.zeros(2, "i4,f4")}, r"got \[\('f0'"),
        ({"x": np.zeros(2, "datetime64[s]")}, "got datetime64"),
        ({"x": np.zeros(2, np.longdouble)}, "dtype must be one of"),
        ({"": np.zeros(2)}, "array names must be non-empty strings, got ''"),
        ({3: np.zeros(2)}, "array names must be non-empty strings, got 3"),
        ({"x": np.zeros((1,) * 33)}, "at most max_ndim=32 dimensions, got 33"),
        ({"x": np.frombuffer(b"\x02", dtype=bool)}, "bool but holds bytes other than 0 and 1"),
    ],
)
def test_encode_refuses_unsupported_arrays(arrays: Any, match: str) -> None:
    with pytest.raises(PrivacyError, match=match):
        encode_message("t", None, arrays)


def test_encode_refuses_messages_above_the_limits() -> None:
    three = {name: np.zeros(1) for name in "abc"}
    with pytest.raises(PrivacyError, match="at most max_arrays=2"):
        encode_arrays(three, limits=Limits(max_arrays=2))
    with pytest.raises(PrivacyError, match="header must be at most max_header_bytes=50 bytes"):
        encode_arrays(three, limits=Limits(max_header_bytes=50))
    with pytest.raises(PrivacyError, match="message must be at most max_message_bytes=300 bytes"):
        encode_arrays({"a": np.zeros(30)}, limits=Limits(max_message_bytes=300))
    with pytest.raises(PrivacyError, match="needs more than max_message_bytes=100"):
        encode_arrays({"a": np.zeros(20)}, limits=Limits(max_message_bytes=100))
    with pytest.raises(PrivacyError, match="arrays must total at most max_message_bytes=100"):
        encode_arrays({"a": np.zeros(10), "b": np.zeros(10)}, limits=Limits(max_message_bytes=100))
    with pytest.raises(PrivacyError, match="arrays must be a mapping"):
        encode_message("t", None, [("a", np.zeros(1))])  # type: ignore[arg-type]


# -- Limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", list(Limits.__dataclass_fields__))
@pytest.mark.parametrize("value", [0, -1, True, 1.5, "8", 2**63])
def test_limits_must_be_positive_ints_in_range(field: str, value: Any) -> None:
    with pytest.raises(PrivacyError, match=rf"{field} must be an int in \[1, \d+\], got"):
        Limits(**{field: value})


def test_limit_upper_bounds() -> None:
    with pytest.raises(PrivacyError, match=r"max_header_bytes must be an int in \[1, 4294967295\]"):
        Limits(max_header_bytes=2**32)
    with pytest.raises(PrivacyError, match=r"max_ndim must be an int in \[1, 64\], got 65"):
        Limits(max_ndim=65)
    assert Limits() == DEFAULT_LIMITS
    assert DEFAULT_LIMITS.max_message_bytes == 1 << 30


# -- decoding refuses every malformed message -------------------------------------------------


def test_every_prefix_is_truncated() -> None:
    for length in range(len(SMALL)):
        with pytest.raises(WireError, match="message truncated"):
            decode_message(SMALL[:length])


def test_truncation_messages_name_the_sizes() -> None:
    with pytest.raises(WireError, match="truncated: 7 bytes, shorter than the 10-byte preamble"):
        decode_message(SMALL[:7])
    header_size = struct.unpack_from("<I", SMALL, 6)[0]
    with pytest.raises(
        WireError,
        match=f"truncated: preamble declares a {header_size}-byte header, 5 bytes present",
    ):
        decode_message(SMALL[:15])
    with pytest.raises(WireError, match="truncated: header declares 26 payload bytes, 25 present"):
        decode_message(SMALL[:-1])


def test_trailing_bytes() -> None:
    with pytest.raises(WireError, match="3 trailing bytes after the 26 payload bytes"):
        decode_message(SMALL + b"abc")


@pytest.mark.parametrize("data", [b"XXXX" + SMALL[4:], b"PRVX", b"\x00", b"GIF89a" + b"\x00" * 20])
def test_bad_magic(data: bytes) -> None:
    with pytest.raises(WireError, match="message must start with b'PRVW'"):
        decode_message(data)


@pytest.mark.parametrize("version", [0, 2, 65535])
def test_unknown_version_names_the_supported_one(version: int) -> None:
    data = SMALL[:4] + struct.pack("<H", version) + SMALL[6:]
    with pytest.raises(
        WireError, match=f"unsupported wire format version {version}; this privet reads version 1"
    ):
        decode_message(data)


def test_header_length_beyond_limit_or_data() -> None:
    with pytest.raises(WireError, match="header of 4294967295 bytes is above max_header_bytes"):
        decode_message(frame(b"{}", header_size=2**32 - 1))
    with pytest.raises(WireError, match="truncated: preamble declares a 1000-byte header, 2"):
        decode_message(frame(b"{}", header_size=1000))


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\xff\xfe{}", "header must be UTF-8, got byte 0xff at 0"),
        (b'{"kind":"\xc3"}', "header must be UTF-8"),
        (b"{", "header must be JSON"),
        (b"", "header must be JSON"),
        (b"{}{}", "header must be JSON: Extra data"),
        (b"[]", "header must be a JSON object, got list"),
        (b"null", "header must be a JSON object, got NoneType"),
        (b'{"kind":"t","meta":{}}', r"keys must be exactly \['arrays', 'kind', 'meta'\]"),
        (b'{"kind":"t","meta":{},"arrays":[],"x":1}', "keys must be exactly"),
        (
            b'{"kind":"t","kind":"u","meta":{},"arrays":[]}',
            "must not repeat a key, got 'kind' twice",
        ),
        (b'{"kind":"t","meta":{"a":1,"a":2},"arrays":[]}', "must not repeat a key, got 'a'"),
        (b'{"kind":"t","meta":{"a":NaN},"arrays":[]}', "must not contain NaN"),
        (b'{"kind":"t","meta":{"a":-Infinity},"arrays":[]}', "must not contain -Infinity"),
        (b'{"kind":"t","meta":{"a":1e999},"arrays":[]}', "numbers must be finite 64-bit floats"),
        (b'{"kind":"t","meta":{"a":9223372036854775808},"arrays":[]}', "fit 64 bits signed"),
        (b'{"kind":"t","meta":{"a":"\\ud800"},"arrays":[]}', "lone surrogate"),
        (b'{"kind":"t","meta":{"a":"\x01"},"arrays":[]}', "header must be JSON: Invalid control"),
        (b'{"kind":"t","meta":[],"arrays":[]}', "meta must be a mapping"),
        (b'{"kind":"t","meta":{},"arrays":{}}', "header 'arrays' must be a list, got dict"),
        (b'{"kind":"no space","meta":{},"arrays":[]}', "message kind must be 1 to 64 ASCII"),
        (b'{"kind":7,"meta":{},"arrays":[]}', "message kind must be"),
    ],
)
def test_malformed_headers(raw: bytes, match: str) -> None:
    with pytest.raises(WireError, match=match):
        decode_message(frame(raw))


def test_huge_integer_literal_is_refused_without_parsing_it() -> None:
    raw = b'{"kind":"t","meta":{"a":' + b"9" * 500_000 + b'},"arrays":[]}'
    with pytest.raises(WireError, match="fit 64 bits signed"):
        decode_message(frame(raw))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (entry(dtype="complex64"), "dtype must be one of bool, .*got 'complex64'"),
        (entry(dtype="<f8"), "got '<f8'"),
        (entry(dtype="object"), "got 'object'"),
        (entry(dtype=8), "got 8"),
        (entry(shape=3), "shape must be a list of ints, got 3"),
        (entry(shape=[-2]), r"shape must hold non-negative ints, got \[-2\]"),
        (entry(shape=[2.0]), "non-negative ints"),
        (entry(shape=[True, 2], nbytes=16), "non-negative ints"),
        (entry(shape=["2"]), "non-negative ints"),
        (entry(shape=(1,) * 33, nbytes=8), "at most max_ndim=32 dimensions, got 33"),
        (entry(nbytes=15), r"declares nbytes=15, but shape \[2\] of float64 needs 16"),
        (entry(nbytes=16.0), "declares nbytes=16.0"),
        (entry(offset=1), r"offset must be 0 \(right after the previous array"),
        (entry(offset=None), "offset must be 0"),
        (entry(name=""), "array names must be non-empty strings, got ''"),
        (entry(name=["x"]), "array names must be non-empty strings"),
        ({"name": "x", "dtype": "int8", "shape": []}, r"arrays\[0\] must be an object with keys"),
        ([], r"arrays\[0\] must be an object"),
    ],
)
def test_malformed_array_entries(bad: Any, match: str) -> None:
    with pytest.raises(WireError, match=match):
        decode_message(frame(header(bad), b"\x00" * 16))


@pytest.mark.parametrize(
    ("second_offset", "match"),
    [(17, "offset must be 16.*got 17"), (15, "offset must be 16.*got 15")],
)
def test_offset_gaps_and_overlaps(second_offset: int, match: str) -> None:
    raw = header(entry("a"), entry("b", offset=second_offset))
    with pytest.raises(WireError, match=match):
        decode_message(frame(raw, b"\x00" * 40))


def test_duplicate_array_names() -> None:
    raw = header(entry("a"), entry("a", offset=16))
    with pytest.raises(WireError, match="array names must be unique, got 'a' twice"):
        decode_message(frame(raw, b"\x00" * 32))


def test_bool_bytes_other_than_zero_and_one() -> None:
    raw = header(entry("flags", "bool", (3,), 0, 3))
    assert decode_message(frame(raw, b"\x00\x01\x01")).arrays["flags"].tolist() == [
        False,
        True,
        True,
    ]
    with pytest.raises(WireError, match="array 'flags' is bool but holds bytes other than 0 and 1"):
        decode_message(frame(raw, b"\x00\x02\x01"))


def test_long_untrusted_values_are_cut_short_in_errors() -> None:
    raw = header(entry(dtype="q" * 10_000))
    with pytest.raises(WireError) as caught:
        decode_message(frame(raw, b"\x00" * 16))
    assert len(str(caught.value)) < 300


# -- declared sizes are refused before anything is allocated ----------------------------------


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (entry(shape=[2**57], nbytes=2**60), r"of shape \[144115188075855872\] needs more than"),
        (entry(shape=[2**62, 2**62], nbytes=0), "needs more than max_message_bytes"),
        (entry(shape=[0, 2**62], nbytes=0), "needs more than max_message_bytes"),
        (entry(shape=[2**31] * 32, nbytes=0), "needs more than max_message_bytes"),
    ],
)
def test_huge_declared_arrays_fail_fast_without_allocating(bad: Any, match: str) -> None:
    data = frame(header(bad), b"\x00" * 16)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(WireError, match=match):
            decode_message(data)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 1 << 20  # numpy allocations are traced too


def test_arrays_summing_above_the_limit() -> None:
    limits = Limits(max_message_bytes=4096)
    raw = header(*(entry(f"a{i}", "uint8", (1000,), 1000 * i, 1000) for i in range(5)))
    with pytest.raises(WireError, match="arrays declare more than max_message_bytes=4096 bytes"):
        decode_message(frame(raw), limits=limits)


def test_message_above_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(
        WireError, match=f"message is {len(SMALL)} bytes, above max_message_bytes=64"
    ):
        decode_message(SMALL, limits=Limits(max_message_bytes=64))
    with pytest.raises(WireError, match="above max_message_bytes=64"):
        decode_message(bytearray(SMALL), limits=Limits(max_message_bytes=64))


def test_too_many_arrays() -> None:
    raw = header(*(entry(f"a{i}", "uint8", (0,), 0, 0) for i in range(3)))
    assert len(decode_message(frame(raw)).arrays) == 3
    with pytest.raises(WireError, match="message declares 3 arrays, above max_arrays=2"):
        decode_message(frame(raw), limits=Limits(max_arrays=2))


def test_meta_beyond_limits() -> None:
    with pytest.raises(WireError, match="max_meta_entries=3 values"):
        decode_message(
            encode_message("t", {"a": [1, 2], "b": 3}), limits=Limits(max_meta_entries=3)
        )
    with pytest.raises(WireError, match=r"meta\['a'\] must be at most max_string_bytes=2 bytes"):
        decode_message(encode_message("t", {"a": "abc"}), limits=Limits(max_string_bytes=2))
    with pytest.raises(WireError, match="array name 'abc' must be at most max_string_bytes=2"):
        decode_message(encode_arrays({"abc": np.zeros(1)}), limits=Limits(max_string_bytes=2))
    deep = encode_message("t", {"a": {"b": {"c": 1}}})
    assert decode_message(deep, limits=Limits(max_meta_depth=3)).meta["a"]["b"]["c"] == 1
    # Header levels: header, meta, a, b, c: one more than max_meta_depth=3 allows.
    deeper = encode_message("t", {"a": {"b": {"c": {"d": 1}}}})
    with pytest.raises(WireError, match=r"header must nest at most 4 levels \(max_meta_depth=3\)"):
        decode_message(deeper, limits=Limits(max_meta_depth=3))


def test_meta_depth_counted_by_the_walker_too() -> None:
    # Depth within the parser's bound (4 for the array entries) but beyond max_meta_depth=2.
    raw = header(meta={"a": [[1]]})
    with pytest.raises(WireError, match=r"max_meta_depth=2 levels, got deeper at meta\['a'\]"):
        decode_message(frame(raw), limits=Limits(max_meta_depth=2))


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * (1 << 20),
        b'{"kind":"t","meta":{"a":' + b"[" * 900_000 + b"]" * 900_000 + b'},"arrays":[]}',
    ],
    ids=["unclosed", "balanced"],
)
def test_deep_nesting_is_refused_by_limit_not_by_the_stack(raw: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(WireError, match="header must nest at most 17 levels"):
        decode_message(frame(raw), limits=Limits(max_header_bytes=len(raw)))
    assert time.perf_counter() - started < 2.0


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    meta = {"s": "[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{{", "t": 'x"]]]\\"'}
    assert decode_message(encode_message("t", meta)).meta == meta


def test_unterminated_escaped_quotes_scan_in_linear_time() -> None:
    # A string-matching regex that needs the closing quote rescans from every later
    # quote: quadratic, minutes for this header. The decoder must answer quickly.
    raw = b'"' + b'\\"' * 400_000
    started = time.perf_counter()
    with pytest.raises(WireError, match="header must be JSON"):
        decode_message(frame(raw), limits=Limits(max_header_bytes=len(raw)))
    assert time.perf_counter() - started < 2.0


def test_decode_refuses_non_buffers() -> None:
    with pytest.raises(WireError, match="data must be bytes, bytearray or memoryview, got str"):
        decode_message("PRVW")  # type: ignore[arg-type]


# -- no unsafe deserialization, floor dependencies only ---------------------------------------


def test_wire_imports_only_its_floor() -> None:
    """No pickle/marshal (or kin) and nothing above the floor: numpy, safetensors, errors."""
    allowed_third_party = {"numpy", "safetensors"}
    stdlib = {"__future__", "collections", "contextlib", "dataclasses", "json", "math", "os"}
    stdlib |= {"pathlib", "re", "struct", "tempfile", "types", "typing"}
    imported: set[str] = set()
    for path in sorted(WIRE_SOURCE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                imported.add(node.module)
    assert imported  # the scan found the imports
    forbidden = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "importlib"}
    assert not {name.split(".")[0] for name in imported} & forbidden
    for name in imported:
        root = name.split(".")[0]
        if root == "privet":
            assert name == "privet.errors" or name.startswith("privet.wire"), name
        else:
            assert root in allowed_third_party | stdlib, name


def test_importing_wire_pulls_in_neither_torch_nor_fl() -> None:
    # numpy itself imports pickle, so sys.modules cannot show its absence; the AST
    # scan above covers privet.wire's own imports.
    code = (
        "import sys, privet.wire; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('privet.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(ast.literal_eval(result.stdout.strip()))
    assert loaded == {
        "privet.errors",
        "privet.wire",
        "privet.wire.checkpoint",
        "privet.wire.codec",
        "privet.wire.files",
    }
