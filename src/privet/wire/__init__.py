"""Safe serialization of named arrays and protocol messages (never pickle).

Messages (:func:`encode_message` / :func:`decode_message`) are a magic, a format
version, a JSON header and raw little-endian array bytes; checkpoints
(:func:`save_checkpoint` / :func:`load_checkpoint`) are safetensors files written
atomically. Decoding untrusted bytes never executes code, checks every declared
size against :class:`Limits` before allocating, and raises :class:`WireError`
on anything truncated, oversized or malformed.

This package is privet's floor: it imports only numpy, safetensors and
:mod:`privet.errors`.
"""

from __future__ import annotations

from privet.wire.checkpoint import load_checkpoint, save_checkpoint
from privet.wire.codec import (
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

__all__ = [
    "DEFAULT_LIMITS",
    "FORMAT_VERSION",
    "Limits",
    "Message",
    "WireError",
    "decode_arrays",
    "decode_message",
    "encode_arrays",
    "encode_message",
    "load_checkpoint",
    "save_checkpoint",
]
