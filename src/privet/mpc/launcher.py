"""Real parties: one call starts the dealer and ``n`` party processes on loopback.

The model is torchrun's (and CrypTen's): every party process runs the same
user script, ``python script.py ARGS``; the script calls
:func:`~privet.mpc.party.connect` to join the run and gets a
:class:`~privet.mpc.party.PartyRun` whose ``session`` is a
:class:`~privet.mpc.tensor.Session` over the network. The dealer is
privet's own module (``python -m privet.mpc.dealer_service``). Nothing is
pickled and nothing is imported by a name from data: programs travel as
script paths, everything else as privet wire messages.

:func:`launch`

1. draws a 32-byte run key and binds one loopback listening socket per party
   (port 0: the OS picks free ports, so there is no race between choosing a
   port and using it);
2. starts each party with its listening socket inherited (``pass_fds``) and
   the setup (node, ports, key, timeout, report path) written to its stdin,
   so the key appears in no command line or environment; then the dealer,
   with the dealer seed;
3. waits for every process; when one fails, the others notice by
   themselves (a lost connection, an abort frame or a timeout) and exit
   with their own error; whoever is still running ``timeout`` seconds after
   the first failure is killed;
4. reads each node's :class:`~privet.mpc.messages.NodeReport` (a wire file)
   and returns a :class:`LaunchResult`, or raises :class:`LaunchError`
   naming every node's exit status and error.

Inside a party, :func:`~privet.mpc.party.connect` reads the setup, connects
to the other parties and to the dealer, and receives its share stream's seed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.mpc.dealer import DealerPlan, DealerStats
from privet.mpc.messages import (
    NodeReport,
    Setup,
    decode_report,
    encode_plan,
    encode_setup,
    plan_from_array,
)
from privet.mpc.ring import FixedPoint
from privet.mpc.runtime import CommStats
from privet.mpc.tcp import KEY_BYTES, LOOPBACK
from privet.mpc.transport import MpcNetworkError, check_timeout, node_names

__all__ = ["LaunchError", "LaunchResult", "PartyResult", "launch"]

_DEALER_MODULE: Final = "privet.mpc.dealer_service"
_STDERR_LINES: Final = 5


@dataclass(frozen=True)
class PartyResult:
    """One party's outputs and what it sent.

    Attributes
    ----------
    party
        Its index.
    outputs
        What its program reported with :meth:`~privet.mpc.party.PartyRun.output`.
    stats
        Its :class:`~privet.mpc.runtime.CommStats` (as the simulator counts).
    dealer_stats
        Its view's :class:`~privet.mpc.dealer.DealerStats` (equal to the dealer's).
    wire_bytes
        Bytes it put on its sockets (frames, GCM tags and headers included).
    """

    party: int
    outputs: Mapping[str, NDArray[Any]]
    stats: CommStats
    dealer_stats: DealerStats
    wire_bytes: int


@dataclass(frozen=True)
class LaunchResult:
    """A finished run: every party's result and the dealer's cost.

    Attributes
    ----------
    parties
        By party index.
    dealer_stats
        Items the dealer produced and the bytes of shares and masks it had to send.
    dealer_wire_bytes
        Bytes the dealer put on its sockets (seeds, rows, masks, framing).
    seconds
        Wall-clock time from the first process start to the last exit.
    plan
        Every item the dealer made, in order: pass it as :func:`launch`'s ``plan`` to
        a later run of the same script on inputs of the same shapes, and the dealer
        makes and sends them ahead.
    """

    parties: tuple[PartyResult, ...]
    dealer_stats: DealerStats
    dealer_wire_bytes: int
    seconds: float
    plan: DealerPlan


class LaunchError(MpcNetworkError):
    """A launched run failed; the message names every node that failed, and how.

    Attributes
    ----------
    failures
        Node name to its exit status and error, for the nodes that failed.
    logs
        Node name to the end of its stderr.
    """

    def __init__(self, message: str, failures: Mapping[str, str], logs: Mapping[str, str]) -> None:
        super().__init__(message)
        self.failures = dict(failures)
        self.logs = dict(logs)


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    report_path: Path
    log_path: Path
    killed: str = ""


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    sock.listen(16)
    return sock


def _exit_status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def _start(
    command: Sequence[str],
    setup: Setup,
    name: str,
    directory: Path,
    cwd: str | None,
    pass_fds: Sequence[int],
) -> _Child:
    log_path = directory / f"{name.replace(' ', '-')}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stderr=log,
            pass_fds=tuple(pass_fds),
            cwd=cwd,
        )
    stdin = process.stdin
    if stdin is not None:
        with contextlib.suppress(BrokenPipeError):  # it died at once: its status says why
            stdin.write(encode_setup(setup))
        with contextlib.suppress(BrokenPipeError):
            stdin.close()
    return _Child(name, process, Path(setup.result_path), log_path)


def _supervise(children: list[_Child], grace: float, run_timeout: float | None) -> None:
    """Wait for every child; after the first failure, kill whoever outlives ``grace``."""
    exits: queue.SimpleQueue[int] = queue.SimpleQueue()

    def watch(index: int) -> None:
        children[index].process.wait()
        exits.put(index)

    for index in range(len(children)):
        threading.Thread(target=watch, args=(index,), daemon=True).start()
    deadline = None if run_timeout is None else time.monotonic() + run_timeout
    reason = f"the run exceeded run_timeout={run_timeout} s"
    running = set(range(len(children)))
    failed = False
    while running:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            index = exits.get(timeout=remaining)
        except queue.Empty:
            for i in running:
                children[i].killed = f"killed by the launcher: {reason}"
                children[i].process.kill()
            deadline = None  # the kills end every wait
            continue
        running.discard(index)
        child = children[index]
        if child.process.returncode != 0 and not child.killed and not failed:
            failed = True
            failed_by = time.monotonic() + grace
            if deadline is None or failed_by < deadline:
                deadline = failed_by
                reason = f"still running {grace:g} s after {child.name} exited with an error"


def _tail(path: Path) -> str:
    try:
        lines = path.read_text("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_STDERR_LINES:])


def _collect(children: list[_Child], started: float) -> LaunchResult:
    reports: dict[str, NodeReport | None] = {}
    failures: dict[str, str] = {}
    logs = {child.name: _tail(child.log_path) for child in children}
    for child in children:
        code = child.process.returncode
        report = None
        with contextlib.suppress(OSError):
            report = decode_report(child.report_path.read_bytes(), child.name)
        reports[child.name] = report
        if child.killed:
            failures[child.name] = child.killed
        elif code != 0 or report is None or report.error is not None:
            if report is not None and report.error is not None:
                detail = report.error
            elif report is None and code == 0:
                detail = "wrote no report: did the script leave its `with connect()` block?"
            else:
                last = logs[child.name].splitlines()
                detail = last[-1] if last else "no error message"
            failures[child.name] = f"{_exit_status(code)}: {detail}"
    if failures:
        summary = "; ".join(f"{name}: {what}" for name, what in failures.items())
        raise LaunchError(f"MPC run failed: {summary}", failures, logs)
    parties = []
    for child in children[:-1]:
        report = reports[child.name]
        if report is None:  # pragma: no cover - a missing report is a failure above
            raise PrivacyError(f"{child.name} wrote no report")
        parties.append(
            PartyResult(
                party=report.node,
                outputs=dict(report.outputs),
                stats=CommStats(report.rounds, report.bytes_sent),
                dealer_stats=DealerStats(report.dealer_items, report.dealer_bytes),
                wire_bytes=report.wire_bytes,
            )
        )
    dealer = reports[children[-1].name]
    if dealer is None or dealer.plan is None:  # pragma: no cover - as above
        raise PrivacyError("the dealer wrote no report, or one without its plan")
    return LaunchResult(
        parties=tuple(parties),
        dealer_stats=DealerStats(dealer.dealer_items, dealer.dealer_bytes, dealer.dealer_seconds),
        dealer_wire_bytes=dealer.wire_bytes,
        seconds=time.monotonic() - started,
        plan=plan_from_array(len(parties), dealer.plan, children[-1].name),
    )


def launch(
    script: str | os.PathLike[str],
    *,
    num_parties: int = 2,
    seed: bytes | None = None,
    args: Sequence[str] = (),
    timeout: float = 60.0,
    run_timeout: float | None = None,
    fractional_bits: int = 16,
    python: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    plan: DealerPlan | None = None,
) -> LaunchResult:
    """Run ``script`` as ``num_parties`` party processes and a dealer process on loopback.

    Parameters
    ----------
    script
        A Python file every party runs (``python script ARGS``); it calls :func:`connect`.
    num_parties
        ``n >= 2`` parties.
    seed
        The dealer's 32-byte seed: the same seed gives the simulator's results bit for
        bit. ``None`` draws a fresh one in the dealer process (a real deployment).
    args
        Command-line arguments for the script.
    timeout
        Seconds any single wait may last (a message from a peer, a connection); also how
        long the others may take to stop after one process fails.
    run_timeout
        Seconds the whole run may last (``None``: no limit beyond the per-wait ones).
    fractional_bits
        The parties' fixed-point encoding.
    python
        The interpreter (default: this one).
    cwd
        The children's working directory (default: this one).
    plan
        Items for the dealer to make and send ahead, while the parties compute (a
        previous run's :attr:`LaunchResult.plan`); the run fails with an error naming
        the first item where the program departs from it. ``None``: items on request.

    Raises
    ------
    LaunchError
        If any process failed: every failed node with its exit status and error.
    """
    if isinstance(num_parties, bool) or not isinstance(num_parties, int) or num_parties < 2:
        raise PrivacyError(f"num_parties must be an integer >= 2, got {num_parties!r}")
    if seed is not None and (not isinstance(seed, bytes) or len(seed) != 32):
        raise PrivacyError(f"seed must be 32 bytes or None, got {seed!r:.40}")
    wait = check_timeout(timeout)
    if wait is None:
        raise PrivacyError("timeout must be a number of seconds > 0, got None")
    check_timeout(run_timeout, "run_timeout")
    FixedPoint(fractional_bits)
    path = Path(script)
    if not path.is_file():
        raise PrivacyError(f"script must be an existing file, got {str(path)!r}")
    if not all(isinstance(arg, str) for arg in args):
        raise PrivacyError(f"args must be strings, got {args!r:.80}")
    if plan is not None and (not isinstance(plan, DealerPlan) or plan.num_parties != num_parties):
        raise PrivacyError(f"plan must be a DealerPlan for {num_parties} parties, got {plan!r:.80}")
    interpreter = python if python is not None else sys.executable
    workdir = os.fspath(cwd) if cwd is not None else None
    key = os.urandom(KEY_BYTES)
    directory = Path(tempfile.mkdtemp(prefix="privet-mpc-"))
    names = node_names(num_parties)
    children: list[_Child] = []
    listeners = [_listener() for _ in range(num_parties)]
    started = time.monotonic()
    try:
        plan_path = ""
        if plan is not None:
            plan_path = str(directory / "dealer.plan")
            Path(plan_path).write_bytes(encode_plan(plan))
        ports = tuple(sock.getsockname()[1] for sock in listeners)

        def setup(role: str, node: int, fd: int, dealer_seed: bytes | None) -> Setup:
            return Setup(
                role=role,  # type: ignore[arg-type]
                node=node,
                num_parties=num_parties,
                ports=ports,
                key=key,
                listen_fd=fd,
                result_path=str(directory / f"node-{node}.report"),
                timeout=wait,
                seed=dealer_seed,
                fractional_bits=fractional_bits,
                plan_path=plan_path if role == "dealer" else "",
            )

        for party, listener in enumerate(listeners):
            fd = listener.fileno()
            command = [interpreter, str(path.resolve()), *args]
            children.append(
                _start(
                    command, setup("party", party, fd, None), names[party], directory, workdir, [fd]
                )
            )
            listener.close()  # the child holds it now
        dealer_command = [interpreter, "-m", _DEALER_MODULE]
        children.append(
            _start(
                dealer_command,
                setup("dealer", num_parties, -1, seed),
                names[num_parties],
                directory,
                workdir,
                [],
            )
        )
        _supervise(children, wait + 1.0, run_timeout)
        return _collect(children, started)
    finally:
        for sock in listeners:
            sock.close()
        for child in children:
            if child.process.poll() is None:
                child.process.kill()
                child.process.wait()
        shutil.rmtree(directory, ignore_errors=True)
