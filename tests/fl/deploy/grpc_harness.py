"""Shared harness of the gRPC deployment tests: child processes, a server thread, raw calls.

``grpc_party.py`` is the child process; :class:`Party` reads its stdout with a
timeout, :class:`ServerThread` runs :func:`~privet.fl.deploy.serve` in the test
process, :class:`RawClient` sends what a buggy or hostile client could.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_party import DELTAS, EXAMPLES, TOKENS, ShiftClient, initial_parameters, make_strategy

from privet.fl import History, Parameters, SequentialEngine, run_federated
from privet.fl.deploy import TlsFiles, TokenTable, serve
from privet.fl.deploy.protocol import (
    CLIENT_ID_KEY,
    TOKEN_KEY,
    Task,
    decode_instruction,
    encode_join,
)

PARTY = Path(__file__).with_name("grpc_party.py")
WAIT = 60.0  # generous bound on any single wait: 2 loaded cores start Python slowly


class Party:
    """A child process whose stdout lines arrive on a queue (a reader thread), so waiting for
    a line has a timeout and never blocks the test forever."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(PARTY), *args],
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )
        self.lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.seen: list[str] = []
        self._unread: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _next(self, timeout: float) -> str | None:
        if self._unread:
            return self._unread.pop(0)
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line within {timeout} s; log:\n{self.log.read_text()}")
        if line is None:
            self.lines.put(None)  # the end stays the end for later reads
        else:
            self.seen.append(line)
        return line

    def expect(self, prefix: str, timeout: float = WAIT) -> str:
        """The next line starting with ``prefix`` (earlier ones are skipped)."""
        while (line := self._next(timeout)) is not None:
            if line.startswith(prefix):
                return line
        pytest.fail(f"no {prefix!r} line before the end; log:\n{self.log.read_text()}")

    def finish(self, timeout: float = WAIT) -> int:
        """Wait for the exit; its remaining lines stay readable by :meth:`expect`."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.process.args} did not exit; log:\n{self.log.read_text()}")
        while (line := self.lines.get(timeout=WAIT)) is not None:
            self.seen.append(line)
            self._unread.append(line)
        self.lines.put(None)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._log_file.close()


class ServerThread:
    """:func:`serve` on a thread of the test process (clients are still real processes)."""

    def __init__(self, **kwargs: Any) -> None:
        self._ports: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self.history: History | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, kwargs=kwargs, daemon=True)
        self._thread.start()
        port = self._ports.get(timeout=WAIT)
        if port is None:
            raise AssertionError(f"server failed to start: {self.error!r}")
        self.port = port

    def _run(self, **kwargs: Any) -> None:
        try:
            self.history = serve("127.0.0.1:0", on_start=self._ports.put, **kwargs)
        except BaseException as error:
            self.error = error
        finally:
            self._ports.put(None)

    def result(self) -> History:
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the server did not finish"
        if self.error is not None:
            raise self.error
        assert self.history is not None
        return self.history


def served(tls: TlsFiles, tmp_path: Path, **kwargs: Any) -> ServerThread:
    options: dict[str, Any] = {
        "initial_parameters": initial_parameters(),
        "tokens": TokenTable.from_tokens(TOKENS),
        "certificate_file": tls.server_certificate,
        "key_file": tls.server_key,
        "checkpoint_dir": tmp_path / "checkpoints",
        "join_timeout": WAIT,
        "round_timeout": WAIT,
        "rng": np.random.default_rng(0),
    }
    options.update(kwargs)
    return ServerThread(**options)


def reference(strategy: str, clients: list[str], rounds: int, seed: int = 0) -> History:
    """The same training in this process on the reference engine."""
    engine = SequentialEngine(
        {name: ShiftClient(DELTAS[name], EXAMPLES[name]) for name in sorted(clients)}
    )
    return run_federated(
        engine,
        make_strategy(strategy),
        initial_parameters(),
        rounds,
        rng=np.random.default_rng(seed),
    )


def shifted(by: float) -> Parameters:
    start = initial_parameters()
    return Parameters({name: array + array.dtype.type(by) for name, array in start.items()})


def assert_same(actual: Parameters, expected: Parameters) -> None:
    assert actual.names == expected.names
    for name in expected:
        assert actual[name].dtype == expected[name].dtype
        np.testing.assert_array_equal(actual[name], expected[name])


class RawClient:
    """Raw gRPC calls with a client's credentials: what a buggy or hostile client could send."""

    def __init__(self, port: int, tls: TlsFiles, metadata: tuple[tuple[str, str], ...]) -> None:
        credentials = grpc.ssl_channel_credentials(tls.ca_certificate.read_bytes())
        self.channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials)
        self.metadata = metadata
        self._tasks = self.channel.unary_stream("/privet.fl.Deploy/Tasks")
        self._submit = self.channel.unary_unary("/privet.fl.Deploy/Submit")

    @classmethod
    def of(cls, port: int, tls: TlsFiles, client_id: str) -> RawClient:
        return cls(port, tls, ((CLIENT_ID_KEY, client_id), (TOKEN_KEY, TOKENS[client_id])))

    def open(self) -> Any:
        stream = self._tasks(encode_join(), metadata=self.metadata)
        stream.initial_metadata()
        return stream

    def submit(self, data: bytes) -> str:
        try:
            self._submit(data, metadata=self.metadata, timeout=WAIT)
        except grpc.RpcError as error:
            return str(error.code().name)
        return "OK"

    def next_task(self, stream: Any) -> Task:
        message = decode_instruction(next(stream))
        assert isinstance(message, Task)
        return message
