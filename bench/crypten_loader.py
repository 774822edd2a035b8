"""Import CrypTen 0.4.1 (the last release, 2022) on a torch that no longer has what its
ONNX converter imports.

``import crypten`` imports ``crypten.nn``, which imports its ONNX converter
(``crypten/nn/onnx_converter.py``); that module does ``from
torch.onnx._internal.registration import registry`` at import time, a private
module torch removed (it is gone in torch 2.13). Only ``crypten.nn.from_onnx`` /
``crypten.nn.from_pytorch`` use that registry, and privet's benchmarks never take
that path: they build CrypTen models from ``crypten.nn`` layers and copy the
torch weights in. So :func:`load_crypten` registers a stand-in module under that
name (only while the real one is missing) whose ``registry`` refuses every use,
then imports CrypTen. See shared/PEERS.md, row "crypten".
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

REGISTRATION = "torch.onnx._internal.registration"


class _NoOnnxRegistry:
    """The stand-in for torch's ONNX symbolic registry: any use says why it is missing."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(
            f"{REGISTRATION} is a stub (bench/crypten_loader.py): CrypTen's ONNX converter "
            f"(crypten.nn.from_pytorch / from_onnx) does not work on this torch; build CrypTen "
            f"models from crypten.nn layers instead (asked for registry.{name})"
        )


def _registration_missing() -> bool:
    try:
        import torch.onnx._internal.registration  # noqa: F401
    except ImportError:
        return True
    return False


def load_crypten() -> ModuleType:
    """Import and return ``crypten``, registering the ONNX registry stub first if needed.

    Raises
    ------
    ImportError
        If CrypTen (or one of its runtime dependencies) is not installed.
    """
    if REGISTRATION not in sys.modules and _registration_missing():
        stub = ModuleType(REGISTRATION, "Stand-in registered by bench/crypten_loader.py.")
        stub.registry = _NoOnnxRegistry()  # type: ignore[attr-defined]
        sys.modules[REGISTRATION] = stub
    import crypten

    return crypten
