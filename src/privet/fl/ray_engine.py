"""Clients as Ray actors: one machine's cores now, a cluster of machines through Ray.

:class:`RayEngine` spreads the clients over a fixed pool of long-lived Ray
actors (at most ``num_workers`` worker processes, each hosting many clients,
so a thousand clients are not a thousand processes). Each half-round:

1. the global parameters and each distinct set of instructions (usually one
   per round) are encoded once as a :mod:`privet.fl.messages` message and
   put once in Ray's object store, shared by every task;
2. each sampled client becomes one call on the actor that hosts it; the actor
   decodes the shared message once for all its clients, builds a client with
   ``client_factory`` the first time it is asked for it, and answers with the
   client's result encoded as wire bytes — or, if the client raised, with
   the error's text;
3. the engine decodes every answer, checking the fit results against the
   global parameters' layout (``like=``), and reports each client that
   raised, sent malformed bytes, lost its worker or overran ``timeout`` as a
   failure of the round, never an exception.

Only privet wire bytes and plain strings carry privet data through Ray;
Ray itself serializes the client factory (code) with cloudpickle, and its
transport between its own processes uses pickle, so a Ray cluster must be
trusted like any Ray cluster (Ray's security model); the wire codec guards
what privet decodes, not Ray.

A worker that dies fails the calls still queued on it (other clients it
hosts included) for that round. Dead workers, and workers killed after a
timeout (Ray cannot interrupt a running call of a plain actor), are
replaced at the start of the next half-round; the clients they hosted are
built again by the factory, so a client that keeps state between rounds
loses it then.

References
----------
Moritz et al. 2018, "Ray: A Distributed Framework for Emerging AI
Applications", OSDI (actors, the shared object store). Beutel et al. 2020,
"Flower: A Friendly Federated Learning Research Framework", arXiv:2007.14390
(simulated clients on a bounded pool of Ray actors).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from privet.dp._validation import check_positive, check_positive_int
from privet.errors import PrivacyError
from privet.fl.messages import (
    decode_evaluate_instructions,
    decode_evaluate_result,
    decode_fit_instructions,
    decode_fit_result,
    encode_evaluate_instructions,
    encode_evaluate_result,
    encode_fit_instructions,
    encode_fit_result,
)
from privet.fl.parameters import Parameters
from privet.fl.types import (
    Client,
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
    RoundResults,
)
from privet.wire import WireError

try:
    import ray
    from ray import exceptions as ray_exceptions
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError("privet.fl.ray_engine needs Ray: pip install privet[fl]") from error

__all__ = ["RayEngine"]

logger = logging.getLogger("privet.fl")

InstructionsT = TypeVar("InstructionsT", FitInstructions, EvaluateInstructions)
ResultT = TypeVar("ResultT", FitResult, EvaluateResult)

# Ray prints this tip on every start; it concerns GPUs, which the engine never requests.
_ACCELERATOR_TIP = "Tip: In future versions of Ray"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours the names in its error messages


class _ClientHost:
    """The clients one Ray worker process hosts; its methods run inside the actor.

    Instructions arrive as an object reference wrapped in a list, so Ray hands
    over the reference rather than the bytes: the host fetches and decodes each
    shared message once and keeps the latest, which serves every client that
    follows it in the actor's queue (the engine submits tasks grouped by message).
    """

    def __init__(self, client_factory: Callable[[str], Client]) -> None:
        self._factory = client_factory
        self._clients: dict[str, Client] = {}
        self._latest: tuple[str, Any] | None = None

    def ready(self) -> bool:
        """Answered once the worker runs (the factory arrived and unpickled)."""
        return True

    def _client(self, client_id: str) -> Client:
        client = self._clients.get(client_id)
        if client is None:
            client = self._factory(client_id)
            if not isinstance(client, Client):
                raise TypeError(
                    f"client_factory({client_id!r}) must return a client with fit and "
                    f"evaluate, got {type(client).__name__}"
                )
            self._clients[client_id] = client
        return client

    def _decoded(self, boxed: list[Any], decode: Callable[[bytes], Any]) -> Any:
        (reference,) = boxed
        key = reference.hex()
        if self._latest is None or self._latest[0] != key:
            self._latest = None  # free the previous round's parameters before decoding
            self._latest = (key, decode(ray.get(reference)))
        return self._latest[1]

    def fit(self, client_id: str, boxed: list[Any]) -> bytes | str:
        try:
            parameters, instructions = self._decoded(boxed, decode_fit_instructions)
            result = self._client(client_id).fit(parameters, instructions)
            if not isinstance(result, FitResult):
                raise TypeError(f"fit must return a FitResult, got {type(result).__name__}")
            return encode_fit_result(result)
        except Exception as error:  # reported to the server as this client's failure
            return f"{type(error).__name__}: {error}"

    def evaluate(self, client_id: str, boxed: list[Any]) -> bytes | str:
        try:
            parameters, instructions = self._decoded(boxed, decode_evaluate_instructions)
            result = self._client(client_id).evaluate(parameters, instructions)
            if not isinstance(result, EvaluateResult):
                raise TypeError(
                    f"evaluate must return an EvaluateResult, got {type(result).__name__}"
                )
            return encode_evaluate_result(result)
        except Exception as error:
            return f"{type(error).__name__}: {error}"


def _summary(error: BaseException) -> str:
    """A Ray error in one line: what happened, and the root cause it ends with."""
    lines = [line.strip() for line in _ANSI.sub("", str(error)).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    summary = f"{type(error).__name__}: {lines[0]}"
    return summary if len(lines) == 1 else f"{summary} ... {lines[-1]}"


class RayEngine:
    """Clients hosted by a pool of Ray actors, on this machine or a Ray cluster.

    Parameters
    ----------
    client_factory
        Builds the client for an id; called inside a worker process, once per
        client (and again after that worker is replaced). Ray ships it to the
        workers with cloudpickle, so it must be importable or picklable there;
        build data from the id (or load it) rather than capture large arrays.
    client_ids
        The clients, in a fixed order; client ``i`` lives on worker
        ``i % num_workers``.
    num_workers
        Actors (worker processes) in the pool; by default the cluster's CPUs,
        never more than the clients.
    address
        A Ray cluster to connect to (as for ``ray.init``); ``None`` starts a
        local Ray with ``os.cpu_count()`` CPUs. If Ray is already initialized
        in this process, the engine uses that connection and ignores
        ``address`` and ``ray_init_options``.
    ray_init_options
        Extra keyword arguments for ``ray.init`` (they override the engine's
        quiet defaults: no dashboard, worker output not forwarded, Ray's log
        level WARNING).
    timeout
        Seconds a half-round waits for its clients; those not done are
        failures (``"timed out"``) and their workers are killed and replaced.
        ``None`` waits for every client.

    Use it as a context manager, or call :meth:`close`: it kills the actors
    and shuts Ray down if (and only if) this engine started it.
    """

    def __init__(
        self,
        client_factory: Callable[[str], Client],
        client_ids: Sequence[str],
        *,
        num_workers: int | None = None,
        address: str | None = None,
        ray_init_options: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        if not callable(client_factory):
            raise PrivacyError(f"client_factory must be callable, got {client_factory!r}")
        ids = self._checked_ids(client_ids)
        if num_workers is not None:
            check_positive_int("num_workers", num_workers)
        self._timeout = None if timeout is None else check_positive("timeout", timeout)
        options = dict(ray_init_options or {})
        if "address" in options:
            raise PrivacyError("ray_init_options must not hold 'address', got one: use address=")
        self._ids = ids
        self._actors: list[Any] = []
        self._replace: set[int] = set()
        self._closed = False
        self._owns_ray = False
        if ray.is_initialized():
            if address is not None or options:
                logger.info("Ray is already initialized: address and ray_init_options ignored")
        else:
            self._start_ray(address, options)
            self._owns_ray = True
        try:
            self._start_workers(client_factory, num_workers)
        except BaseException:
            self.close()  # leave no actors behind, nor a Ray this engine started
            raise

    def _start_workers(self, client_factory: Callable[[str], Client], wanted: int | None) -> None:
        if wanted is None:
            cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
            wanted = max(1, int(cpus))
        workers = min(wanted, len(self._ids))
        self._home = {client_id: index % workers for index, client_id in enumerate(self._ids)}
        self._host = ray.remote(_ClientHost)
        # The factory is serialized once, whatever the number of actors.
        self._factory = ray.put(client_factory)
        self._actors = [self._spawn() for _ in range(workers)]
        try:  # pay the workers' start-up here, not in the first round's timeout
            ray.get([actor.ready.remote() for actor in self._actors])
        except ray_exceptions.RayError as error:
            raise RuntimeError(
                f"Ray workers failed to start: {_summary(error)} (the client factory must be "
                "importable by the workers, or defined in the main script)"
            ) from error

    @staticmethod
    def _checked_ids(client_ids: Sequence[str]) -> list[str]:
        if isinstance(client_ids, str) or not isinstance(client_ids, Sequence) or not client_ids:
            raise PrivacyError(
                f"client_ids must be a non-empty sequence of strings, got {client_ids!r}"
            )
        seen: set[str] = set()
        for client_id in client_ids:
            if not isinstance(client_id, str) or not client_id:
                raise PrivacyError(f"client ids must be non-empty strings, got {client_id!r}")
            if client_id in seen:
                raise PrivacyError(f"client ids must be unique, got {client_id!r} twice")
            seen.add(client_id)
        return list(client_ids)

    @staticmethod
    def _start_ray(address: str | None, options: dict[str, Any]) -> None:
        settings: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if address is None:
            settings["num_cpus"] = os.cpu_count() or 1
        settings.update(options)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_ACCELERATOR_TIP, category=FutureWarning)
            # "local" starts a new Ray here even if RAY_ADDRESS names a cluster.
            ray.init(address=address if address is not None else "local", **settings)

    def _spawn(self) -> Any:
        # SPREAD places the pool across a cluster's machines rather than packing one.
        return self._host.options(scheduling_strategy="SPREAD").remote(self._factory)

    # -- Engine -----------------------------------------------------------------------------

    @property
    def client_ids(self) -> Sequence[str]:
        return list(self._ids)

    @property
    def num_workers(self) -> int:
        """Actors in the pool (0 once closed)."""
        return len(self._actors)

    def fit(
        self, parameters: Parameters, tasks: Sequence[tuple[str, FitInstructions]]
    ) -> RoundResults[FitResult]:
        return self._run(
            "fit",
            parameters,
            tasks,
            encode_fit_instructions,
            lambda data: decode_fit_result(data, like=parameters),
        )

    def evaluate(
        self, parameters: Parameters, tasks: Sequence[tuple[str, EvaluateInstructions]]
    ) -> RoundResults[EvaluateResult]:
        return self._run(
            "evaluate", parameters, tasks, encode_evaluate_instructions, decode_evaluate_result
        )

    def close(self) -> None:
        """Kill the actors; shut Ray down if this engine started it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        actors, self._actors = self._actors, []
        if not ray.is_initialized():  # someone shut Ray down already: nothing left to kill
            return
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception as error:  # an actor that is already gone is fine
                logger.debug("could not kill a Ray actor: %s", error)
        if self._owns_ray:
            ray.shutdown()

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- one half-round ---------------------------------------------------------------------

    def _run(
        self,
        method: str,
        parameters: Parameters,
        tasks: Sequence[tuple[str, InstructionsT]],
        encode: Callable[[Parameters, InstructionsT], bytes],
        decode: Callable[[bytes], ResultT],
    ) -> RoundResults[ResultT]:
        if self._closed:
            raise PrivacyError("the engine must be open, got a closed RayEngine")
        for client_id, _ in tasks:
            if client_id not in self._home:
                raise PrivacyError(f"unknown client id {client_id!r}")
        if not tasks:
            return RoundResults([], [])
        self._respawn()

        # Instructions encoded without parameters identify a message exactly (the
        # codec's own bytes), so equal instructions share one put of the full message.
        empty = Parameters({})
        group_of: dict[bytes, int] = {}
        references: list[Any] = []
        groups: list[int] = []
        for _, instructions in tasks:
            key = encode(empty, instructions)
            if key not in group_of:
                group_of[key] = len(references)
                references.append(ray.put(encode(parameters, instructions)))
            groups.append(group_of[key])
        pending: dict[int, Any] = {}
        for position in sorted(range(len(tasks)), key=groups.__getitem__):
            client_id = tasks[position][0]
            call = getattr(self._actors[self._home[client_id]], method)
            pending[position] = call.remote(client_id, [references[groups[position]]])

        answers = self._collect([pending[position] for position in range(len(tasks))])
        results: list[tuple[str, ResultT]] = []
        failures: list[tuple[str, str]] = []
        for (client_id, _), answer in zip(tasks, answers, strict=True):
            reason: str
            if isinstance(answer, bytes):
                try:
                    results.append((client_id, decode(answer)))
                    continue
                except WireError as error:
                    reason = f"WireError: {error}"
            elif isinstance(answer, str):
                reason = answer
            elif isinstance(answer, _Lost):
                reason = answer.reason
                if answer.worker_lost:
                    self._replace.add(self._home[client_id])
            else:
                reason = f"worker answered {type(answer).__name__}, expected bytes"
            logger.warning("client %r failed to %s: %s", client_id, method, reason)
            failures.append((client_id, reason))
        self._kill_replaced()
        return RoundResults(results, failures)

    def _collect(self, references: list[Any]) -> list[Any]:
        """Each call's answer, or a :class:`_Lost` saying why there is none."""
        ready, late = ray.wait(references, num_returns=len(references), timeout=self._timeout)
        late_ids = {reference.hex() for reference in late}
        try:  # one call for the common case where every answer is there
            values = dict(zip((r.hex() for r in ready), ray.get(ready), strict=True))
        except ray_exceptions.RayError:
            values = {}
        answers: list[Any] = []
        for reference in references:
            key = reference.hex()
            if key in late_ids:
                answers.append(_Lost(f"timed out after {self._timeout:g} s", worker_lost=True))
            elif key in values:
                answers.append(values[key])
            else:
                answers.append(self._get_one(reference))
        return answers

    @staticmethod
    def _get_one(reference: Any) -> Any:
        try:
            return ray.get(reference)
        except ray_exceptions.RayActorError as error:
            return _Lost(f"worker lost: {_summary(error)}", worker_lost=True)
        except ray_exceptions.RayError as error:
            return _Lost(_summary(error), worker_lost=False)

    def _respawn(self) -> None:
        if not self._replace:
            return
        for index in self._replace:
            self._actors[index] = self._spawn()
        starting = [self._actors[index].ready.remote() for index in self._replace]
        self._replace.clear()
        # Start-up does not count against the clients' timeout; a worker that fails
        # to start fails its clients' calls, reported like any lost worker.
        ray.wait(starting, num_returns=len(starting), timeout=self._timeout)

    def _kill_replaced(self) -> None:
        # A timed-out worker may still be running a client: kill it so the next
        # round starts on a fresh one instead of queueing behind it.
        for index in self._replace:
            try:
                ray.kill(self._actors[index])
            except Exception as error:
                logger.debug("could not kill a Ray actor: %s", error)


class _Lost:
    """Why a call has no answer (timeout, dead worker, Ray error)."""

    __slots__ = ("reason", "worker_lost")

    def __init__(self, reason: str, *, worker_lost: bool) -> None:
        self.reason = reason
        self.worker_lost = worker_lost
