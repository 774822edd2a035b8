"""Named arrays and protocol messages as bytes that are safe to decode from strangers.

A message is a ``kind`` (a short ASCII identifier such as ``"fl.fit_ins"``), a
``meta`` JSON object and an ordered set of named numpy arrays. Decoding parses
JSON and copies raw numbers — it never unpickles, never imports or calls
anything named by the data, and checks every size the message declares
against :class:`Limits` *before* allocating for it. Every problem with the
bytes raises :class:`WireError` naming what is wrong.

Byte layout, format version 1 (integers little-endian)::

    offset   size  field
    0        4     magic b"PRVW"
    4        2     format version, uint16 (1)
    6        4     header length H, uint32
    10       H     header: UTF-8 JSON object (below)
    10 + H   P     payload: every array's raw bytes, back to back in header order

    header = {"kind": "fl.fit_ins",
              "meta": {...},
              "arrays": [{"name": "w", "dtype": "float32", "shape": [2, 3],
                          "offset": 0, "nbytes": 24}, ...]}

* ``dtype`` is one of bool, int8/16/32/64, uint8/16/32/64, float16/32/64; array
  bytes are little-endian and C-ordered; bool bytes are 0 or 1.
* ``nbytes`` equals ``prod(shape) * itemsize``; offsets are contiguous (the first
  is 0, each next one is the previous ``offset + nbytes``) and ``P`` is exactly
  their sum: no gaps, overlaps or trailing bytes, so one message has one encoding
  of its arrays.
* ``meta`` holds only null, booleans, 64-bit signed integers, finite floats,
  strings, lists and objects, nested at most ``max_meta_depth`` levels; JSON
  objects have no duplicate keys and there is no NaN or Infinity.
* The header carries exactly the keys shown; a reader that meets an unknown
  version refuses it rather than guess.

Decoded arrays are always read-only. From ``bytes`` (immutable) they are
zero-copy views into the input, which they keep alive; from a ``bytearray`` or
``memoryview`` the input is first copied once, so later writes to the caller's
buffer cannot change a decoded message. Views may be unaligned (arrays follow
one another byte for byte); numpy handles that, at some speed cost.

Encoding accepts any numpy array of an allowed dtype: big-endian, Fortran-ordered
or strided arrays are written as their little-endian C-order values (encoding
copies the bytes in any case, so this costs nothing extra).

References
----------
The layout follows the shape of safetensors (a length-prefixed JSON header of
dtype/shape/offsets, then raw bytes; https://github.com/huggingface/safetensors),
with a magic and version in front and strict contiguity checks.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NoReturn

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError

__all__ = [
    "ARRAYS_KIND",
    "DEFAULT_LIMITS",
    "DTYPES",
    "FORMAT_VERSION",
    "MAGIC",
    "Limits",
    "Message",
    "WireError",
    "decode_arrays",
    "decode_message",
    "encode_arrays",
    "encode_message",
]

MAGIC: Final = b"PRVW"
FORMAT_VERSION: Final = 1
#: The kind that :func:`encode_arrays` writes and :func:`decode_arrays` expects.
ARRAYS_KIND: Final = "arrays"

_PREAMBLE: Final = struct.Struct("<4sHI")  # magic, version, header length
_DTYPE_ORDER = "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64"
#: Allowed dtypes by their wire name, as the little-endian numpy dtype they decode to.
DTYPES: Final[Mapping[str, np.dtype[Any]]] = MappingProxyType(
    {name: np.dtype(name).newbyteorder("<") for name in _DTYPE_ORDER.split()}
)
_DTYPE_NAMES: Final = ", ".join(DTYPES)
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9_.:\-]{0,63}", re.ASCII)
_HEADER_KEYS: Final = frozenset({"kind", "meta", "arrays"})
_ENTRY_KEYS: Final = frozenset({"name", "dtype", "shape", "offset", "nbytes"})
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1
# A JSON string, or an unterminated one up to the end: removed before the header's
# nesting is measured. It matches at every quote it meets and never backtracks
# (possessive ``*+``), so the scan is linear; a pattern that can fail after scanning
# far, like one demanding the closing quote, retries at each later quote: quadratic.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"?', re.DOTALL)
_OPENERS = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSERS = np.frombuffer(b"]}", dtype=np.uint8)


class WireError(PrivacyError):
    """Bytes are not a well-formed privet wire message within the decoder's limits."""


@dataclass(frozen=True)
class Limits:
    """Caps on what a decoder accepts, checked before anything is allocated.

    Attributes
    ----------
    max_message_bytes
        Whole message, and the bytes any one array or all arrays together may declare.
    max_header_bytes
        The JSON header (at most ``2**32 - 1``, the width of its length field).
        Parsing builds Python objects before their count is checked: at most about
        30 times this many bytes (measured for a header of empty JSON objects).
    max_arrays
        Arrays in one message.
    max_ndim
        Dimensions of one array (at most 64, numpy's own limit).
    max_string_bytes
        UTF-8 bytes of one array name, meta key or meta string.
    max_meta_entries
        Values in ``meta``, counted over every nested object and list.
    max_meta_depth
        Nesting of ``meta``: the meta object itself is level 1 (at most 256).
    """

    max_message_bytes: int = 1 << 30
    max_header_bytes: int = 1 << 20
    max_arrays: int = 100_000
    max_ndim: int = 32
    max_string_bytes: int = 1 << 16
    max_meta_entries: int = 10_000
    max_meta_depth: int = 16

    def __post_init__(self) -> None:
        uppers = {
            "max_message_bytes": 2**62,
            "max_header_bytes": 2**32 - 1,
            "max_arrays": 2**62,
            "max_ndim": 64,
            "max_string_bytes": 2**62,
            "max_meta_entries": 2**62,
            # Deeper would approach the JSON parser's recursion limit.
            "max_meta_depth": 256,
        }
        for name, upper in uppers.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
                raise PrivacyError(f"{name} must be an int in [1, {upper}], got {value!r}")


DEFAULT_LIMITS: Final = Limits()


@dataclass(frozen=True, eq=False)
class Message:
    """A decoded message; ``meta`` and ``arrays`` are read-only mappings in wire order.

    Compared by identity (arrays have no single truth value); compare fields instead.
    """

    kind: str
    meta: Mapping[str, Any]
    arrays: Mapping[str, NDArray[Any]]


def _show(value: object, width: int = 60) -> str:
    """``repr`` cut short: error messages echo untrusted values, which may be huge."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _fail(error: type[PrivacyError], message: str) -> NoReturn:
    raise error(message)


def _check_kind(kind: object, error: type[PrivacyError]) -> str:
    if not isinstance(kind, str) or _KIND.fullmatch(kind) is None:
        _fail(
            error,
            "message kind must be 1 to 64 ASCII letters, digits or '_.:-' starting with a "
            f"letter, got {_show(kind)}",
        )
    return kind


def _check_string(text: str, what: str, limits: Limits, error: type[PrivacyError]) -> None:
    # len() in characters is a lower bound on the UTF-8 length: refuse early, cheaply.
    if len(text) > limits.max_string_bytes:
        _fail(error, f"{what} must be at most max_string_bytes={limits.max_string_bytes} bytes")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        _fail(error, f"{what} must be valid Unicode, got a lone surrogate in {_show(text)}")
    if size > limits.max_string_bytes:
        _fail(
            error,
            f"{what} must be at most max_string_bytes={limits.max_string_bytes} bytes, got {size}",
        )


def _check_name(name: object, seen: set[str], limits: Limits, error: type[PrivacyError]) -> str:
    if not isinstance(name, str) or not name:
        _fail(error, f"array names must be non-empty strings, got {_show(name)}")
    _check_string(name, f"array name {_show(name)}", limits, error)
    if name in seen:
        _fail(error, f"array names must be unique, got {_show(name)} twice")
    seen.add(name)
    return name


def _array_nbytes(
    name: str, shape: object, itemsize: int, limits: Limits, error: type[PrivacyError]
) -> tuple[tuple[int, ...], int]:
    """The shape as a tuple and its byte size, refused before any oversized product forms."""
    if not isinstance(shape, list | tuple):
        _fail(error, f"array {_show(name)} shape must be a list of ints, got {_show(shape)}")
    if len(shape) > limits.max_ndim:
        _fail(
            error,
            f"array {_show(name)} must have at most max_ndim={limits.max_ndim} dimensions, "
            f"got {len(shape)}",
        )
    # ``span`` ignores zero-length axes: numpy refuses an empty array whose other axes
    # overflow, so those are bounded too. Stopping at the first excess keeps the
    # integers small whatever the header claims.
    span = itemsize
    for dim in shape:
        if type(dim) is not int or dim < 0:
            _fail(
                error,
                f"array {_show(name)} shape must hold non-negative ints, got {_show(shape)}",
            )
        span *= max(dim, 1)
        if span > limits.max_message_bytes:
            _fail(
                error,
                f"array {_show(name)} of shape {_show(shape)} needs more than "
                f"max_message_bytes={limits.max_message_bytes} bytes",
            )
    return tuple(shape), math.prod(shape) * itemsize


class _MetaWalker:
    """Checks a meta tree against the limits and returns a plain-JSON copy of it.

    Numpy scalars of allowed kinds become Python scalars and tuples become lists,
    so ``meta`` round-trips as the JSON types it decodes to.
    """

    def __init__(self, limits: Limits, error: type[PrivacyError]) -> None:
        self.limits = limits
        self.error = error
        self.entries = 0

    def where(self, path: tuple[str | int, ...]) -> str:
        return "meta" + "".join(f"[{_show(key, 40)}]" for key in path)

    def value(self, value: object, path: tuple[str | int, ...], depth: int) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, int | np.integer):
            number = int(value)
            if not _INT_MIN <= number <= _INT_MAX:
                _fail(
                    self.error,
                    f"{self.where(path)} must be a 64-bit signed integer, got {_show(number)}",
                )
            return number
        if isinstance(value, float | np.floating):
            real = float(value)
            if not math.isfinite(real):
                _fail(self.error, f"{self.where(path)} must be finite, got {real}")
            return real
        if isinstance(value, str):
            _check_string(value, self.where(path), self.limits, self.error)
            return value
        if isinstance(value, Mapping):
            return self.mapping(value, path, depth + 1)
        if isinstance(value, list | tuple):
            self.enter(path, depth + 1)
            self.count(len(value))
            return [self.value(item, (*path, index), depth + 1) for index, item in enumerate(value)]
        _fail(
            self.error,
            f"{self.where(path)} must be None, bool, int, float, str, list or dict, "
            f"got {type(value).__name__}",
        )

    def enter(self, path: tuple[str | int, ...], depth: int) -> None:
        if depth > self.limits.max_meta_depth:
            _fail(
                self.error,
                f"meta must nest at most max_meta_depth={self.limits.max_meta_depth} levels, "
                f"got deeper at {self.where(path)}",
            )

    def count(self, items: int) -> None:
        self.entries += items
        if self.entries > self.limits.max_meta_entries:
            _fail(
                self.error,
                f"meta must hold at most max_meta_entries={self.limits.max_meta_entries} values",
            )

    def mapping(self, value: Mapping[Any, Any], path: tuple[str | int, ...], depth: int) -> Any:
        self.enter(path, depth)
        self.count(len(value))
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                _fail(self.error, f"{self.where(path)} keys must be strings, got {_show(key)}")
            _check_string(key, f"key {_show(key)} of {self.where(path)}", self.limits, self.error)
            result[key] = self.value(item, (*path, key), depth)
        return result


def _clean_meta(meta: object, limits: Limits, error: type[PrivacyError]) -> dict[str, Any]:
    if not isinstance(meta, Mapping):
        _fail(error, f"meta must be a mapping with string keys, got {type(meta).__name__}")
    walker = _MetaWalker(limits, error)
    result: dict[str, Any] = walker.mapping(meta, (), 1)
    return result


# -- encoding ----------------------------------------------------------------------------------


def encode_message(
    kind: str,
    meta: Mapping[str, Any] | None = None,
    arrays: Mapping[str, NDArray[Any]] | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """Encode a message; the result decodes under the same ``limits``.

    Parameters
    ----------
    kind
        1 to 64 ASCII letters, digits or ``_.:-``, starting with a letter.
    meta
        JSON-like values: None, bool, int (64-bit signed), finite float, str, and
        lists/tuples/mappings of them; numpy scalars of those kinds are accepted.
    arrays
        Names to numpy arrays of an allowed dtype (:data:`DTYPES`), kept in order.
    limits
        The caps the receiver will apply; a message above them is refused here.

    Raises
    ------
    PrivacyError
        Naming the offending field or array.
    """
    kind = _check_kind(kind, PrivacyError)
    clean = _clean_meta({} if meta is None else meta, limits, PrivacyError)
    named: Mapping[str, Any] = {} if arrays is None else arrays
    if not isinstance(named, Mapping):
        raise PrivacyError(f"arrays must be a mapping of names to arrays, got {type(named)}")
    if len(named) > limits.max_arrays:
        raise PrivacyError(f"arrays must number at most max_arrays={limits.max_arrays}")
    entries: list[dict[str, Any]] = []
    chunks: list[memoryview] = []
    seen: set[str] = set()
    offset = 0
    for name, array in named.items():
        _check_name(name, seen, limits, PrivacyError)
        if not isinstance(array, np.ndarray):
            raise PrivacyError(
                f"array {_show(name)} must be a numpy.ndarray, got {type(array).__name__}"
            )
        dtype = DTYPES.get(array.dtype.name) if array.dtype.fields is None else None
        if dtype is None:
            raise PrivacyError(
                f"array {_show(name)} dtype must be one of {_DTYPE_NAMES}, got {array.dtype}"
            )
        shape, nbytes = _array_nbytes(name, array.shape, dtype.itemsize, limits, PrivacyError)
        data = np.asarray(array, dtype=dtype, order="C")
        # A bool view of arbitrary bytes can hold values numpy never writes itself.
        if dtype.kind == "b" and data.size and int(data.view(np.uint8).max()) > 1:
            raise PrivacyError(f"array {_show(name)} is bool but holds bytes other than 0 and 1")
        entries.append(
            {
                "name": name,
                "dtype": dtype.name,
                "shape": list(shape),
                "offset": offset,
                "nbytes": nbytes,
            }
        )
        chunks.append(data.data)
        offset += nbytes
        if offset > limits.max_message_bytes:
            raise PrivacyError(
                f"arrays must total at most max_message_bytes={limits.max_message_bytes} bytes"
            )
    header = json.dumps(
        {"kind": kind, "meta": clean, "arrays": entries},
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    ).encode("utf-8")
    if len(header) > limits.max_header_bytes:
        raise PrivacyError(
            f"header must be at most max_header_bytes={limits.max_header_bytes} bytes, "
            f"got {len(header)}"
        )
    total = _PREAMBLE.size + len(header) + offset
    if total > limits.max_message_bytes:
        raise PrivacyError(
            f"message must be at most max_message_bytes={limits.max_message_bytes} bytes, "
            f"got {total}"
        )
    return b"".join([_PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(header)), header, *chunks])


def encode_arrays(arrays: Mapping[str, NDArray[Any]], *, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Encode named arrays alone, as a message of kind :data:`ARRAYS_KIND`."""
    return encode_message(ARRAYS_KIND, None, arrays, limits=limits)


# -- decoding ----------------------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise WireError(f"header must not contain {name} (JSON has no NaN or Infinity)")


def _parse_int(text: str) -> int:
    # Bounding the digits first keeps a million-digit literal from costing anything.
    if len(text.lstrip("-")) > 19 or not _INT_MIN <= (number := int(text)) <= _INT_MAX:
        raise WireError(f"header integers must fit 64 bits signed, got {_show(text)}")
    return number


def _parse_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise WireError(f"header numbers must be finite 64-bit floats, got {_show(text)}")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise WireError(f"header must not repeat a key, got {_show(key)} twice")
        result[key] = value
    return result


def _json_depth(text: str) -> int:
    """How deep the header nests, measured without recursion.

    Python's JSON parser recurses once per level; measuring first means a hostile
    ``[[[[...`` is refused by a limit rather than by the interpreter's stack.
    """
    structure = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), dtype=np.uint8)
    steps = np.isin(structure, _OPENERS).astype(np.int64) - np.isin(structure, _CLOSERS)
    return int(np.cumsum(steps).max(initial=0))


def _parse_header(raw: bytes, limits: Limits) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(
            f"header must be UTF-8, got byte {raw[exc.start]:#04x} at {exc.start}"
        ) from None
    # header -> arrays list -> entry -> shape is 4 levels; meta sits one below the header.
    max_depth = max(limits.max_meta_depth + 1, 4)
    if (depth := _json_depth(text)) > max_depth:
        raise WireError(
            f"header must nest at most {max_depth} levels (max_meta_depth="
            f"{limits.max_meta_depth}), got {depth}"
        )
    decoder = json.JSONDecoder(
        object_pairs_hook=_unique_keys,
        parse_int=_parse_int,
        parse_float=_parse_float,
        parse_constant=_reject_constant,
    )
    try:
        header = decoder.decode(text)
    except WireError:
        raise
    except RecursionError:
        raise WireError("header nests too deeply to parse") from None
    except ValueError as exc:
        raise WireError(f"header must be JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WireError(f"header must be a JSON object, got {type(header).__name__}")
    if header.keys() != _HEADER_KEYS:
        raise WireError(
            f"header keys must be exactly ['arrays', 'kind', 'meta'], got {_show(sorted(header))}"
        )
    return header


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    offset: int
    nbytes: int


def _parse_entries(raw: object, limits: Limits) -> list[_Entry]:
    if not isinstance(raw, list):
        raise WireError(f"header 'arrays' must be a list, got {type(raw).__name__}")
    if len(raw) > limits.max_arrays:
        raise WireError(f"message declares {len(raw)} arrays, above max_arrays={limits.max_arrays}")
    entries: list[_Entry] = []
    seen: set[str] = set()
    offset = 0
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or item.keys() != _ENTRY_KEYS:
            raise WireError(
                f"header arrays[{index}] must be an object with keys "
                f"{sorted(_ENTRY_KEYS)}, got {_show(item)}"
            )
        name = _check_name(item["name"], seen, limits, WireError)
        dtype_name = item["dtype"]
        dtype = DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
        if dtype is None:
            raise WireError(
                f"array {_show(name)} dtype must be one of {_DTYPE_NAMES}, got {_show(dtype_name)}"
            )
        shape, nbytes = _array_nbytes(name, item["shape"], dtype.itemsize, limits, WireError)
        if type(item["nbytes"]) is not int or item["nbytes"] != nbytes:
            raise WireError(
                f"array {_show(name)} declares nbytes={_show(item['nbytes'])}, but shape "
                f"{list(shape)} of {dtype.name} needs {nbytes}"
            )
        if type(item["offset"]) is not int or item["offset"] != offset:
            raise WireError(
                f"array {_show(name)} offset must be {offset} (right after the previous "
                f"array: no gap, no overlap), got {_show(item['offset'])}"
            )
        entries.append(_Entry(name, dtype, shape, offset, nbytes))
        offset += nbytes
        if offset > limits.max_message_bytes:
            raise WireError(
                f"arrays declare more than max_message_bytes={limits.max_message_bytes} bytes"
            )
    return entries


def _as_bytes(data: object, limits: Limits) -> bytes:
    """Immutable bytes, copied from a mutable buffer only after its size is checked."""
    if isinstance(data, bytes):
        size = len(data)
    elif isinstance(data, bytearray | memoryview):
        size = data.nbytes if isinstance(data, memoryview) else len(data)
    else:
        raise WireError(f"data must be bytes, bytearray or memoryview, got {type(data).__name__}")
    if size > limits.max_message_bytes:
        raise WireError(
            f"message is {size} bytes, above max_message_bytes={limits.max_message_bytes}"
        )
    return data if isinstance(data, bytes) else bytes(data)


def _check_expected(kind: str, expected: str | Collection[str] | None) -> None:
    if expected is None:
        return
    allowed = {expected} if isinstance(expected, str) else set(expected)
    for name in allowed:
        _check_kind(name, PrivacyError)
    if kind not in allowed:
        wanted = repr(expected) if isinstance(expected, str) else f"one of {sorted(allowed)}"
        raise WireError(f"message kind must be {wanted}, got {kind!r}")


def decode_message(
    data: bytes | bytearray | memoryview,
    *,
    expected_kind: str | Collection[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Message:
    """Decode and fully check a message (the layout is in the module docstring).

    Parameters
    ----------
    data
        The message. Arrays of a ``bytes`` input are read-only views into it;
        other buffers are copied once first, so arrays are always read-only.
    expected_kind
        A kind or collection of kinds to accept; any other kind is refused
        before meta and arrays are looked at.
    limits
        Caps on declared sizes, checked before allocating.

    Raises
    ------
    WireError
        The bytes are truncated, oversized, malformed or of an unexpected kind.
        Nothing else is raised for any input bytes.
    """
    buffer = _as_bytes(data, limits)
    size = len(buffer)
    if size < _PREAMBLE.size:
        if not MAGIC.startswith(buffer[: len(MAGIC)]):
            raise WireError(f"message must start with {MAGIC!r}, got {buffer[:4]!r}")
        raise WireError(
            f"message truncated: {size} bytes, shorter than the {_PREAMBLE.size}-byte preamble"
        )
    magic, version, header_size = _PREAMBLE.unpack_from(buffer)
    if magic != MAGIC:
        raise WireError(f"message must start with {MAGIC!r}, got {magic!r}")
    if version != FORMAT_VERSION:
        raise WireError(
            f"unsupported wire format version {version}; this privet reads version {FORMAT_VERSION}"
        )
    if header_size > limits.max_header_bytes:
        raise WireError(
            f"header of {header_size} bytes is above max_header_bytes={limits.max_header_bytes}"
        )
    start = _PREAMBLE.size + header_size
    if start > size:
        raise WireError(
            f"message truncated: preamble declares a {header_size}-byte header, "
            f"{size - _PREAMBLE.size} bytes present"
        )
    header = _parse_header(buffer[_PREAMBLE.size : start], limits)
    kind = _check_kind(header["kind"], WireError)
    _check_expected(kind, expected_kind)
    meta = _clean_meta(header["meta"], limits, WireError)
    entries = _parse_entries(header["arrays"], limits)
    declared = entries[-1].offset + entries[-1].nbytes if entries else 0
    present = size - start
    if declared > present:
        raise WireError(
            f"message truncated: header declares {declared} payload bytes, {present} present"
        )
    if declared < present:
        raise WireError(
            f"message has {present - declared} trailing bytes after the {declared} payload "
            "bytes the header declares"
        )
    arrays: dict[str, NDArray[Any]] = {}
    for entry in entries:
        at = start + entry.offset
        if entry.dtype.kind == "b" and entry.nbytes:
            raw = np.frombuffer(buffer, dtype=np.uint8, count=entry.nbytes, offset=at)
            if int(raw.max()) > 1:
                raise WireError(
                    f"array {_show(entry.name)} is bool but holds bytes other than 0 and 1"
                )
        count = entry.nbytes // entry.dtype.itemsize
        flat = np.frombuffer(buffer, dtype=entry.dtype, count=count, offset=at)
        arrays[entry.name] = flat.reshape(entry.shape)
    return Message(kind, MappingProxyType(meta), MappingProxyType(arrays))


def decode_arrays(
    data: bytes | bytearray | memoryview, *, limits: Limits = DEFAULT_LIMITS
) -> dict[str, NDArray[Any]]:
    """Decode what :func:`encode_arrays` wrote: read-only arrays in their wire order."""
    return dict(decode_message(data, expected_kind=ARRAYS_KIND, limits=limits).arrays)
