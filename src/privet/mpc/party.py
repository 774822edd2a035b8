"""A party process's side of a launched run: :func:`connect` and the :class:`PartyRun`.

A script that :func:`privet.mpc.launch` starts in every party process calls
:func:`connect`: it reads the setup the launcher wrote to its stdin (its
index, the parties' ports, the run key, the timeout), connects to the other
parties and to the dealer (:func:`~privet.mpc.tcp.connect_mesh`: the
higher-numbered node dials, both authenticate with the run key), receives
its share stream's seed, and returns a :class:`PartyRun` whose ``session``
computes over the network::

    with privet.mpc.connect() as run:
        x = run.session.share(my_input if run.party == 0 else np.zeros(shape), owner=0)
        run.output("y", (x * x).reveal())
"""

from __future__ import annotations

import socket
import sys
from types import TracebackType
from typing import IO, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError
from privet.mpc.dealer import PartyDealer
from privet.mpc.messages import NodeReport, Setup, describe_error, read_setup, write_report
from privet.mpc.network import NetworkRuntime, party_dealer
from privet.mpc.ring import FixedPoint
from privet.mpc.tcp import LOOPBACK, TcpTransport, connect_mesh
from privet.mpc.tensor import Session
from privet.mpc.transport import node_names
from privet.wire.codec import DTYPES

__all__ = ["PartyRun", "connect"]


class PartyRun:
    """A party's side of a launched run: its session, its outputs, and the way out.

    Use it as a context manager: on a clean exit it says goodbye to every peer and
    writes the outputs (:meth:`output`) for the launcher; on an error it tells the
    peers why (they stop at once with that reason) and reports the error.

    Attributes
    ----------
    party
        This party's index.
    num_parties
        ``n``.
    session
        The :class:`~privet.mpc.tensor.Session` to compute in.
    """

    def __init__(
        self,
        setup: Setup,
        transport: TcpTransport,
        runtime: NetworkRuntime,
        dealer: PartyDealer,
        session: Session,
    ) -> None:
        self.party = setup.node
        self.num_parties = setup.num_parties
        self.session = session
        self.runtime = runtime
        self.dealer = dealer
        self._setup = setup
        self._transport = transport
        self._outputs: dict[str, NDArray[Any]] = {}
        self._done = False

    def output(self, name: str, values: ArrayLike) -> None:
        """Report ``values`` (a numeric array) to the launcher under ``name``."""
        if not isinstance(name, str) or not name or name in self._outputs:
            raise PrivacyError(f"name must be a new non-empty string, got {name!r:.40}")
        array = np.array(values)
        if array.dtype.name not in DTYPES:
            raise PrivacyError(
                f"values must be an array of {', '.join(DTYPES)}, got dtype {array.dtype}"
            )
        self._outputs[name] = array

    def close(self) -> None:
        """Say goodbye to every peer and write the report (idempotent)."""
        if self._done:
            return
        self._done = True
        self._transport.close()
        self._report(None)

    def fail(self, error: BaseException) -> None:
        """Tell every peer this party failed, and report why (idempotent)."""
        if self._done:
            return
        self._done = True
        self._transport.abort(describe_error(error))
        self._report(describe_error(error))

    def _report(self, error: str | None) -> None:
        stats = self.runtime.stats
        write_report(
            self._setup.result_path,
            NodeReport(
                node=self.party,
                rounds=stats.rounds,
                bytes_sent=stats.bytes_sent,
                dealer_items=self.dealer.stats.items,
                dealer_bytes=self.dealer.stats.bytes_sent,
                wire_bytes=self._transport.bytes_sent,
                error=error,
                outputs=self._outputs if error is None else {},
            ),
        )

    def __enter__(self) -> PartyRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self.close()
        else:
            self.fail(error)


def connect(stdin: IO[bytes] | None = None) -> PartyRun:
    """Join the run this process was launched into (:func:`~privet.mpc.launcher.launch`).

    Parameters
    ----------
    stdin
        Where the setup arrives (default: this process's stdin, as the launcher writes it).
    """
    setup = read_setup(stdin if stdin is not None else sys.stdin.buffer)
    if setup.role != "party":
        raise PrivacyError(f"connect() is for parties, got a setup for the {setup.role}")
    n, node = setup.num_parties, setup.node
    transport: TcpTransport | None = None
    try:
        with socket.socket(fileno=setup.listen_fd) as listener:
            transport = connect_mesh(
                node,
                node_names(n),
                setup.key,
                dial_to={peer: (LOOPBACK, setup.ports[peer]) for peer in range(node)},
                listener=listener,
                accept_from=[*range(node + 1, n), n],
                timeout=setup.timeout,
            )
        dealer = party_dealer(transport, node, n, setup.timeout)
        runtime = NetworkRuntime(node, n, transport, setup.timeout)
        session = Session(runtime, dealer, FixedPoint(setup.fractional_bits))
    except Exception as error:
        if transport is not None:
            transport.abort(describe_error(error))
        write_report(setup.result_path, NodeReport(node=node, error=describe_error(error)))
        raise
    return PartyRun(setup, transport, runtime, dealer, session)
