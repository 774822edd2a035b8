"""privet.wire.checkpoint: safetensors files written atomically, refused cleanly when damaged."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from privet.errors import PrivacyError
from privet.wire import WireError, load_checkpoint, save_checkpoint
from privet.wire import checkpoint as checkpoint_module
from privet.wire.codec import DTYPES

ARRAYS = {
    "layer2.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
    "layer1.bias": np.array([-1.5, 0.0, 2.25]),
    "mask": np.array([True, False, True]),
    "steps": np.array(7, dtype=np.int64),
    "empty": np.zeros((0, 5), dtype=np.uint16),
}


def assert_same(loaded: dict[str, np.ndarray], expected: dict[str, Any]) -> None:
    assert list(loaded) == list(expected)
    for name, array in expected.items():
        assert loaded[name].dtype == array.dtype.newbyteorder("<")
        assert loaded[name].shape == array.shape
        np.testing.assert_array_equal(loaded[name], array)


def test_round_trip_keeps_order_values_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, ARRAYS, {"round": "12", "note": "ünïcødé"})
    arrays, metadata = load_checkpoint(path)
    # safetensors itself stores tensors sorted; privet restores the caller's order.
    assert_same(arrays, ARRAYS)
    assert metadata == {"round": "12", "note": "ünïcødé"}
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_every_dtype_round_trips(tmp_path: Path, dtype: str) -> None:
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 256, size=6 * np.dtype(dtype).itemsize, dtype=np.uint8)
    array = (bits % 2).astype(bool) if dtype == "bool" else bits.view(dtype)
    save_checkpoint(tmp_path / "c", {"a": array.reshape(2, 3)})
    loaded, metadata = load_checkpoint(tmp_path / "c")
    assert loaded["a"].tobytes() == array.tobytes()
    assert metadata == {}


def test_big_endian_and_strided_arrays_are_stored_by_value(tmp_path: Path) -> None:
    arrays = {
        "big": np.arange(6, dtype=">i4").reshape(2, 3),
        "strided": np.arange(20.0).reshape(4, 5)[::2, ::-2],
        "fortran": np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3)),
    }
    save_checkpoint(tmp_path / "c", arrays)
    assert_same(load_checkpoint(tmp_path / "c")[0], arrays)


def test_string_paths_and_replacing_a_file(tmp_path: Path) -> None:
    path = str(tmp_path / "c")
    save_checkpoint(path, {"a": np.zeros(2)})
    save_checkpoint(path, {"b": np.ones(3)}, {"v": "2"})
    arrays, metadata = load_checkpoint(path)
    assert list(arrays) == ["b"]
    assert metadata == {"v": "2"}


def test_files_from_plain_safetensors_load_in_file_order(tmp_path: Path) -> None:
    """Interoperability: a file written by safetensors itself, without privet's metadata."""
    path = tmp_path / "foreign.safetensors"
    save_file({"b": np.ones(2, np.float32), "a": np.zeros(3)}, str(path), metadata={"k": "v"})
    arrays, metadata = load_checkpoint(path)
    assert sorted(arrays) == ["a", "b"]
    np.testing.assert_array_equal(arrays["a"], np.zeros(3))
    assert metadata == {"k": "v"}


# -- refusals on save -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrays", "metadata", "match"),
    [
        ({"x": [1.0]}, None, "array 'x' must be a numpy.ndarray, got list"),
        ({"x": np.zeros(2, np.complex64)}, None, "array 'x' dtype must be one of .*complex64"),
        ({"x": np.array(["s"])}, None, "dtype must be one of"),
        ({"": np.zeros(1)}, None, "array names must be non-empty strings"),
        ({"__metadata__": np.zeros(1)}, None, "safetensors reserves it"),
        ({"x": np.zeros(1)}, {"k": 3}, "metadata must map str to str, got 'k': 3"),
        ({"x": np.zeros(1)}, {"privet.names": "[]"}, "must not start with 'privet.'"),
        ([("x", np.zeros(1))], None, "arrays must be a mapping"),
    ],
)
def test_save_refuses_what_it_cannot_store(
    tmp_path: Path, arrays: Any, metadata: Any, match: str
) -> None:
    with pytest.raises(PrivacyError, match=match):
        save_checkpoint(tmp_path / "c", arrays, metadata)
    assert os.listdir(tmp_path) == []


# -- refusals on load -------------------------------------------------------------------------


def test_missing_file_or_directory(tmp_path: Path) -> None:
    with pytest.raises(WireError, match="is not a readable safetensors checkpoint"):
        load_checkpoint(tmp_path / "absent.safetensors")
    with pytest.raises(WireError, match="is not a readable safetensors checkpoint"):
        load_checkpoint(tmp_path)


def test_every_truncation_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    save_checkpoint(path, ARRAYS)
    data = path.read_bytes()
    for length in range(len(data)):
        path.write_bytes(data[:length])
        with pytest.raises(WireError, match="not a readable safetensors checkpoint"):
            load_checkpoint(path)


def test_damaged_headers_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    save_checkpoint(path, ARRAYS)
    data = path.read_bytes()
    header_size = struct.unpack_from("<Q", data)[0]
    damaged = {
        "length too large": struct.pack("<Q", header_size + 1) + data[8:],
        "length huge": struct.pack("<Q", 2**62) + data[8:],
        "brace flipped": data[:8] + bytes([data[8] ^ 0x01]) + data[9:],
        "not UTF-8": data[:9] + b"\xff" + data[10:],
        "not safetensors": b"PK\x03\x04" + b"\x00" * 60,
    }
    for content in damaged.values():
        path.write_bytes(content)
        with pytest.raises(WireError, match="Error while deserializing header"):
            load_checkpoint(path)


def test_tampered_name_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    save_file(
        {"a": np.zeros(1), "b": np.zeros(1)}, str(path), metadata={"privet.names": '["a", "a"]'}
    )
    with pytest.raises(WireError, match=r"'privet\.names' must list its tensors once each"):
        load_checkpoint(path)
    save_file({"a": np.zeros(1)}, str(path), metadata={"privet.names": "not json"})
    with pytest.raises(WireError, match=r"'privet\.names' must list its tensors once each"):
        load_checkpoint(path)


def test_dtypes_outside_the_allowlist_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    save_file({"z": np.ones(2, np.complex64)}, str(path))
    with pytest.raises(WireError, match=r"checkpoint tensor 'z' dtype must be one of .*complex64"):
        load_checkpoint(path)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.binary(max_size=200), st.data())
def test_arbitrary_files_give_only_wire_errors(
    tmp_path_factory: pytest.TempPathFactory, junk: bytes, choose: st.DataObject
) -> None:
    """Random bytes, sometimes behind a header length that fits, never escape as other errors."""
    path = tmp_path_factory.mktemp("fuzz") / "c"
    if choose.draw(st.booleans()):
        text = json.dumps(choose.draw(st.dictionaries(st.text(max_size=4), st.text(max_size=4))))
        junk = struct.pack("<Q", len(text)) + text.encode() + junk
    path.write_bytes(junk)
    try:
        arrays, _ = load_checkpoint(path)
    except WireError:
        return
    assert all(array.dtype.name in DTYPES for array in arrays.values())


# -- atomicity --------------------------------------------------------------------------------


def fail(*args: Any, **kwargs: Any) -> None:
    raise OSError("disk full (simulated)")


def interrupt(*args: Any, **kwargs: Any) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("target", "attribute", "replacement", "error"),
    [
        (checkpoint_module, "save", interrupt, KeyboardInterrupt),
        (checkpoint_module.os, "replace", fail, OSError),
        (checkpoint_module.os, "replace", interrupt, KeyboardInterrupt),
        (checkpoint_module.os, "fsync", fail, OSError),
    ],
    ids=["serialize", "rename", "rename-interrupted", "fsync"],
)
def test_a_failed_write_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    attribute: str,
    replacement: Any,
    error: type[BaseException],
) -> None:
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, ARRAYS, {"version": "1"})
    before = path.read_bytes()
    monkeypatch.setattr(target, attribute, replacement)
    with pytest.raises(error):
        save_checkpoint(path, {"other": np.ones(4)}, {"version": "2"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]
    arrays, metadata = load_checkpoint(path)
    assert_same(arrays, ARRAYS)
    assert metadata == {"version": "1"}


def test_a_failed_first_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "c", ARRAYS)
    assert os.listdir(tmp_path) == []


def test_the_temporary_is_complete_and_beside_the_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.replace is atomic only within one file system: the temporary must share the folder."""
    seen: list[tuple[Path, bytes]] = []
    real_replace = os.replace

    def spy(source: str, destination: Any) -> None:
        seen.append((Path(source), Path(source).read_bytes()))
        real_replace(source, destination)

    monkeypatch.setattr(checkpoint_module.os, "replace", spy)
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, ARRAYS)
    [(temporary, content)] = seen
    assert temporary.parent == tmp_path
    assert temporary.name != path.name
    assert content == path.read_bytes()


def test_missing_directory_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        save_checkpoint(tmp_path / "absent" / "c", ARRAYS)
