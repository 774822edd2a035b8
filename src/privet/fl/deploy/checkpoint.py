"""Round checkpoints of a federated run: one safetensors file per round, written atomically.

After round ``r`` the server writes ``round-<r>.safetensors`` holding, in one
file, everything a restarted server needs to continue at round ``r + 1``
exactly as if it had never stopped: the global parameters (arrays named
``parameters/<name>``), the strategy's state if it has ``state_dict()`` (its
arrays as ``strategy/<key>``, the rest as JSON — FedOpt's moments), the
sampling generator's state, and the round records so far (JSON metadata).
One file, written by :func:`privet.wire.save_checkpoint` (temporary file,
fsync, rename), so a kill mid-write leaves the previous checkpoint or the
new one, never a mix of two rounds. Loading parses JSON and copies numbers;
every field is checked and a malformed file raises
:class:`~privet.wire.WireError`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from privet.errors import PrivacyError
from privet.fl.engine import RoundRecord
from privet.fl.parameters import Parameters
from privet.fl.strategy import EvaluationSummary
from privet.wire import WireError, load_checkpoint, save_checkpoint

__all__ = [
    "RoundCheckpoint",
    "checkpoint_path",
    "latest_round",
    "load_round",
    "restore_rng",
    "restore_strategy",
    "rng_state",
    "save_round",
    "strategy_state",
]

FORMAT: Final = "1"
_PARAMETERS: Final = "parameters/"
_STRATEGY: Final = "strategy/"
_FILE = re.compile(r"round-(\d{6,})\.safetensors", re.ASCII)
_KEYS: Final = frozenset({"fl.format", "fl.round", "fl.history", "fl.strategy", "fl.rng"})


@dataclass(frozen=True)
class RoundCheckpoint:
    """The state of a run after ``server_round`` rounds.

    Attributes
    ----------
    server_round
        The last completed round (aborted rounds count: they happened).
    parameters
        The global parameters after that round.
    rounds
        The records of rounds ``1 .. server_round`` (or of those this run kept).
    strategy_state
        What the strategy's ``state_dict()`` returned, or ``None`` if it has none.
    rng_state
        The client-sampling generator's ``bit_generator.state``, or ``None``.
    """

    server_round: int
    parameters: Parameters
    rounds: tuple[RoundRecord, ...] = ()
    strategy_state: Mapping[str, Any] | None = None
    rng_state: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        value = self.server_round
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PrivacyError(f"server_round must be an integer >= 1, got {value!r}")
        if not isinstance(self.parameters, Parameters):
            raise PrivacyError(f"parameters must be Parameters, got {type(self.parameters)}")


def checkpoint_path(directory: str | os.PathLike[str], server_round: int) -> Path:
    return Path(directory) / f"round-{server_round:06d}.safetensors"


# -- strategy and generator state -------------------------------------------------------------


def strategy_state(strategy: object) -> dict[str, Any] | None:
    """``strategy.state_dict()`` if the strategy has one (FedOpt does), else ``None``."""
    method = getattr(strategy, "state_dict", None)
    if not callable(method):
        return None
    state = method()
    if not isinstance(state, dict):
        raise PrivacyError(f"strategy.state_dict() must return a dict, got {type(state)}")
    return state


def restore_strategy(strategy: object, state: Mapping[str, Any] | None) -> None:
    """Give a checkpoint's strategy state back to a strategy of the same kind."""
    method = getattr(strategy, "load_state_dict", None)
    if state is None:
        if callable(method):
            raise PrivacyError(
                f"checkpoint must hold the state of {type(strategy).__name__}, got none"
            )
        return
    if not callable(method):
        raise PrivacyError(
            f"strategy must have load_state_dict to resume this checkpoint, "
            f"got {type(strategy).__name__}"
        )
    method(dict(state))


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as JSON-able values (big integers included)."""
    return dict(rng.bit_generator.state)


def restore_rng(rng: np.random.Generator, state: Mapping[str, Any]) -> None:
    """Put ``rng`` back where a checkpoint left it; its bit generator must be the same kind."""
    kind = type(rng.bit_generator).__name__
    if not isinstance(state, Mapping) or state.get("bit_generator") != kind:
        shown = state.get("bit_generator") if isinstance(state, Mapping) else state
        raise PrivacyError(f"rng state must be of a {kind} generator, got {shown!r}")
    try:
        rng.bit_generator.state = dict(state)
    except (TypeError, ValueError, KeyError) as error:
        raise PrivacyError(f"rng state must be a valid {kind} state: {error}") from None


# -- round records as JSON --------------------------------------------------------------------


def _record_json(record: RoundRecord) -> dict[str, Any]:
    evaluation = record.evaluation
    return {
        "server_round": record.server_round,
        "clients": record.clients,
        "failures": record.failures,
        "fit_metrics": dict(record.fit_metrics),
        "evaluation": None
        if evaluation is None
        else {
            "loss": evaluation.loss,
            "num_examples": evaluation.num_examples,
            "metrics": dict(evaluation.metrics),
        },
        "central_loss": record.central_loss,
        "central_metrics": dict(record.central_metrics),
        "seconds": record.seconds,
        "aborted": record.aborted,
    }


def _bad(what: str, value: object) -> WireError:
    return WireError(f"checkpoint {what} is malformed: {repr(value)[:80]}")


def _int(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"round field {key!r}", value)
    return value


def _float(raw: Mapping[str, Any], key: str, optional: bool = False) -> float | None:
    value = raw.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"round field {key!r}", value)
    return float(value)


def _metrics(raw: Mapping[str, Any], key: str) -> dict[str, bool | int | float | str]:
    value = raw.get(key)
    if not isinstance(value, dict) or not all(
        isinstance(item, bool | int | float | str) for item in value.values()
    ):
        raise _bad(f"round field {key!r}", value)
    return value


def _record(raw: object) -> RoundRecord:
    fields = {
        "server_round", "clients", "failures", "fit_metrics", "evaluation",
        "central_loss", "central_metrics", "seconds", "aborted",
    }  # fmt: skip
    if not isinstance(raw, dict) or set(raw) != fields:
        raise _bad("round record", raw)
    evaluation = raw["evaluation"]
    summary = None
    if evaluation is not None:
        if not isinstance(evaluation, dict) or set(evaluation) != {
            "loss",
            "num_examples",
            "metrics",
        }:
            raise _bad("round evaluation", evaluation)
        summary = EvaluationSummary(
            _float(evaluation, "loss", optional=True),
            _int(evaluation, "num_examples"),
            _metrics(evaluation, "metrics"),
        )
    aborted = raw["aborted"]
    if aborted is not None and not isinstance(aborted, str):
        raise _bad("round field 'aborted'", aborted)
    seconds = _float(raw, "seconds")
    return RoundRecord(
        server_round=_int(raw, "server_round"),
        clients=_int(raw, "clients"),
        failures=_int(raw, "failures"),
        fit_metrics=_metrics(raw, "fit_metrics"),
        evaluation=summary,
        central_loss=_float(raw, "central_loss", optional=True),
        central_metrics=_metrics(raw, "central_metrics"),
        seconds=math.nan if seconds is None else seconds,
        aborted=aborted,
    )


# -- files ------------------------------------------------------------------------------------


def save_round(
    directory: str | os.PathLike[str], checkpoint: RoundCheckpoint, *, keep: int = 2
) -> Path:
    """Write ``checkpoint`` as ``round-<r>.safetensors``; keep the newest ``keep`` files.

    Raises
    ------
    PrivacyError
        The strategy state holds something neither an array nor JSON-able.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise PrivacyError(f"keep must be an integer >= 1, got {keep!r}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray[Any, Any]] = {
        _PARAMETERS + name: array for name, array in checkpoint.parameters.items()
    }
    strategy_json = None
    if checkpoint.strategy_state is not None:
        values: dict[str, Any] = {}
        array_keys = []
        for key, value in checkpoint.strategy_state.items():
            if not isinstance(key, str) or not key:
                raise PrivacyError(f"strategy state keys must be non-empty strings, got {key!r}")
            if isinstance(value, np.ndarray):
                arrays[_STRATEGY + key] = value
                array_keys.append(key)
            else:
                values[key] = value
        strategy_json = {"values": values, "arrays": array_keys}
    metadata = {
        "fl.format": FORMAT,
        "fl.round": str(checkpoint.server_round),
        "fl.history": json.dumps([_record_json(record) for record in checkpoint.rounds]),
    }
    try:
        metadata["fl.strategy"] = json.dumps(strategy_json)
        metadata["fl.rng"] = json.dumps(
            None if checkpoint.rng_state is None else dict(checkpoint.rng_state)
        )
    except (TypeError, ValueError) as error:
        raise PrivacyError(f"strategy and rng state must be arrays or JSON-able: {error}") from None
    path = checkpoint_path(folder, checkpoint.server_round)
    save_checkpoint(path, arrays, metadata)
    for server_round, older in _rounds(folder)[:-keep]:
        if server_round < checkpoint.server_round:
            older.unlink(missing_ok=True)
    return path


def _json(metadata: Mapping[str, str], key: str) -> Any:
    try:
        return json.loads(metadata[key])
    except (KeyError, ValueError):
        raise _bad(f"metadata {key!r}", metadata.get(key)) from None


def load_round(path: str | os.PathLike[str]) -> RoundCheckpoint:
    """Read one round checkpoint; every field is checked."""
    arrays, metadata = load_checkpoint(path)
    if set(metadata) != _KEYS or metadata["fl.format"] != FORMAT:
        raise WireError(
            f"{os.fspath(path)!r} must be a privet round checkpoint of format {FORMAT}, "
            f"got metadata keys {sorted(metadata)}"
        )
    server_round = _json(metadata, "fl.round")
    if isinstance(server_round, bool) or not isinstance(server_round, int) or server_round < 1:
        raise _bad("round", server_round)
    history = _json(metadata, "fl.history")
    if not isinstance(history, list):
        raise _bad("history", history)
    rounds = tuple(_record(raw) for raw in history)
    parameters = Parameters(
        (name[len(_PARAMETERS) :], array)
        for name, array in arrays.items()
        if name.startswith(_PARAMETERS)
    )
    strategy_raw = _json(metadata, "fl.strategy")
    state = None
    if strategy_raw is not None:
        if (
            not isinstance(strategy_raw, dict)
            or set(strategy_raw) != {"values", "arrays"}
            or not isinstance(strategy_raw["values"], dict)
            or not isinstance(strategy_raw["arrays"], list)
            or any(_STRATEGY + key not in arrays for key in strategy_raw["arrays"])
        ):
            raise _bad("strategy state", strategy_raw)
        state = dict(strategy_raw["values"])
        for key in strategy_raw["arrays"]:
            state[key] = np.array(arrays[_STRATEGY + key])
    known = {_PARAMETERS + name for name in parameters} | {
        _STRATEGY + key for key in (strategy_raw or {}).get("arrays", [])
    }
    if set(arrays) != known:
        raise _bad("array names", sorted(set(arrays) - known))
    rng = _json(metadata, "fl.rng")
    if rng is not None and not isinstance(rng, dict):
        raise _bad("rng state", rng)
    return RoundCheckpoint(server_round, parameters, rounds, state, rng)


def _rounds(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _FILE.fullmatch(path.name)
        if match is not None:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_round(directory: str | os.PathLike[str]) -> RoundCheckpoint | None:
    """The newest round checkpoint in ``directory``, or ``None`` if there is none.

    A newest file that does not load is an error, not a reason to fall back
    silently to an older round (files are renamed into place whole, so a bad
    one means damage worth a look).
    """
    found = _rounds(Path(directory))
    if not found:
        return None
    server_round, path = found[-1]
    checkpoint = load_round(path)
    if checkpoint.server_round != server_round:
        raise WireError(f"{path} holds round {checkpoint.server_round}, not {server_round}")
    return checkpoint
