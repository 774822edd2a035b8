"""Helpers the benchmark scripts share: argument types, the console, versions, worker env,
one timed call.

Scripts import it by name: ``python bench/bench_x.py`` puts ``bench/`` on the path, and
the smoke tests prepend it before loading a script.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypeVar

from rich.console import Console


def package_version(package: str) -> str:
    """The installed version of ``package``, or ``"not installed"``."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def make_console(width: int = 220) -> Console:
    """A terminal console; piped or captured (make bench, pytest), one wide enough that
    each table row stays on one line."""
    console = Console()
    return console if console.is_terminal else Console(width=width)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def worker_env() -> dict[str, str]:
    """The environment of a worker subprocess: bench/ importable (``import bench_x``), and
    Flower's telemetry off (no network calls)."""
    env = dict(os.environ)
    bench_dir = str(Path(__file__).resolve().parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (bench_dir, env.get("PYTHONPATH", "")) if p)
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    return env


T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[T, float]:
    """``action()`` and the wall-clock seconds it took."""
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started
