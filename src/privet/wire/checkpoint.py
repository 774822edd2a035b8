"""Named arrays on disk as safetensors files, written atomically.

safetensors stores a length-prefixed JSON header and raw little-endian bytes;
loading it parses JSON and copies numbers, never runs code
(https://github.com/huggingface/safetensors). :func:`save_checkpoint` writes a
temporary file beside the destination, flushes it to disk and renames it into
place, so a crash leaves the previous file or the new one under ``path``,
never half of one. safetensors sorts tensors by dtype and name; the original
order is kept in the metadata key ``privet.names`` and restored on load.
safetensors has no checksum: flipped bytes inside an array's data go unnoticed,
while a damaged header or a truncated file is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from privet.errors import PrivacyError
from privet.wire.codec import DTYPES, WireError
from privet.wire.files import write_atomically

__all__ = ["load_checkpoint", "save_checkpoint"]

#: Metadata keys starting with this are privet's own.
RESERVED_PREFIX: Final = "privet."
_NAMES_KEY: Final = "privet.names"


def _contiguous(name: object, array: object) -> NDArray[Any]:
    if not isinstance(name, str) or not name:
        raise PrivacyError(f"array names must be non-empty strings, got {name!r}")
    if name == "__metadata__":
        raise PrivacyError("array names must not be '__metadata__' (safetensors reserves it)")
    if not isinstance(array, np.ndarray):
        raise PrivacyError(f"array {name!r} must be a numpy.ndarray, got {type(array).__name__}")
    dtype = DTYPES.get(array.dtype.name) if array.dtype.fields is None else None
    if dtype is None:
        raise PrivacyError(
            f"array {name!r} dtype must be one of {', '.join(DTYPES)}, got {array.dtype}"
        )
    # safetensors wants dense little-endian buffers; converting here copies only when needed.
    return np.ascontiguousarray(array, dtype=dtype).reshape(array.shape)


def save_checkpoint(
    path: str | os.PathLike[str],
    arrays: Mapping[str, NDArray[Any]],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write named arrays and string metadata to a safetensors file, atomically.

    Parameters
    ----------
    path
        Destination; its directory must exist. An existing file is replaced
        only once the new one is complete and flushed.
    arrays
        Names to numpy arrays of an allowed dtype (see :data:`privet.wire.codec.DTYPES`);
        big-endian or non-contiguous arrays are stored as their little-endian C-order values.
    metadata
        Free-form string pairs; keys starting with ``"privet."`` are reserved.

    Raises
    ------
    PrivacyError
        A name, array or metadata entry is not storable.
    OSError
        The file could not be written; the previous file is untouched.
    """
    if not isinstance(arrays, Mapping):
        raise PrivacyError(f"arrays must be a mapping of names to arrays, got {type(arrays)}")
    tensors = {name: _contiguous(name, array) for name, array in arrays.items()}
    extra = dict(metadata or {})
    for key, value in extra.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise PrivacyError(f"metadata must map str to str, got {key!r}: {value!r}")
        if key.startswith(RESERVED_PREFIX):
            raise PrivacyError(
                f"metadata keys must not start with {RESERVED_PREFIX!r}, got {key!r}"
            )
    extra[_NAMES_KEY] = json.dumps(list(tensors))
    data = save(tensors, metadata=extra)

    write_atomically(path, data)


def _order(source: str, names: list[str], stored: str | None) -> list[str]:
    """The saved order when ``privet.names`` lists exactly the stored names, else file order."""
    if stored is None:
        return names
    try:
        order = json.loads(stored)
    except ValueError:
        order = None
    if (
        not isinstance(order, list)
        or not all(isinstance(name, str) for name in order)
        or sorted(order) != sorted(names)
    ):
        raise WireError(
            f"{source!r} is not a readable privet checkpoint: metadata {_NAMES_KEY!r} must "
            "list its tensors once each"
        )
    return order


def load_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, NDArray[Any]], dict[str, str]]:
    """Read a safetensors file: arrays in their saved order, and the caller's metadata.

    Raises
    ------
    WireError
        The file is missing, unreadable, not safetensors, truncated, or holds a
        dtype outside :data:`privet.wire.codec.DTYPES`.
    """
    source = os.fspath(path)
    try:
        with safe_open(source, framework="numpy") as handle:
            metadata: dict[str, str] = dict(handle.metadata() or {})
            names = [str(name) for name in handle.offset_keys()]
            loaded = {name: handle.get_tensor(name) for name in names}
    except (OSError, SafetensorError, ValueError, TypeError, KeyError) as exc:
        raise WireError(f"{source!r} is not a readable safetensors checkpoint: {exc}") from None
    order = _order(source, names, metadata.pop(_NAMES_KEY, None))
    arrays: dict[str, NDArray[Any]] = {}
    for name in order:
        array = loaded[name]
        if not isinstance(array, np.ndarray) or array.dtype.name not in DTYPES:
            raise WireError(
                f"checkpoint tensor {name!r} dtype must be one of {', '.join(DTYPES)}, "
                f"got {getattr(array, 'dtype', type(array).__name__)}"
            )
        arrays[name] = array
    return arrays, metadata
