"""Importing a bench script in a test: bench/ is not a package, and its scripts import their
siblings (cli_helpers.py, mpc_models.py, ...) by name, as when run from the shell."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def load_bench_script(monkeypatch: pytest.MonkeyPatch, name: str) -> ModuleType:
    """Import ``bench/<name>.py`` with bench/ on ``sys.path`` for the test's duration."""
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve a class's module through sys.modules.
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module
