"""The dealer process: a full :class:`~privet.mpc.dealer.Dealer` serving the parties' views.

Message flow (node ``n`` is the dealer; :mod:`privet.mpc.messages`):

1. At setup it sends each party ``i < n - 1`` its share stream's seed
   (``mpc.seed``): from then on that party draws its own rows, and no share
   of it ever travels.
2. The last party sends each item's request (``mpc.request``: method and
   public shapes, numbered) at the moment its protocol needs the item; the
   dealer checks the number and the shapes, produces the item with the full
   dealer (drawing every party's stream, so the streams stay in step), and
   answers with the last party's rows (``mpc.item``). For an input mask it
   also sends ``r`` to the input's owner (in the item if the owner is the
   last party, else ``mpc.mask``).
3. The run ends when the last party says goodbye.

Why the last party asks, item by item: the sequence of items is fixed by
public shapes, but only the program knows them, and the dealer does not run
the program (it is not a party and must not need the parties' code or
control flow). The last party must receive its rows anyway, so its request
adds one small message per item; the others draw their rows locally and
never wait for the dealer, except an input's owner for its mask ``r``. The
cost is one loopback round trip per item, on the last party's path; the
dealer's own work per item (drawing and multiplying) is what the simulator
does in-process. Running ahead of the requests would need the sequence in
advance (a recorded plan, checked item by item against the requests): not
done yet. Every party's view counts what the dealer counts, so
:class:`~privet.mpc.dealer.DealerStats` agree across processes.

Run it as ``python -m privet.mpc.dealer_service`` (the launcher does, with the
setup on stdin: :func:`run_dealer`).
"""

from __future__ import annotations

import sys
from typing import IO, Final

from privet.errors import PrivacyError
from privet.mpc.dealer import Dealer, DealerStats, Method
from privet.mpc.messages import (
    NodeReport,
    decode_request,
    describe_error,
    encode_item,
    encode_mask,
    encode_seed,
    read_setup,
    write_report,
)
from privet.mpc.tcp import LOOPBACK, TcpTransport, connect_mesh
from privet.mpc.transport import (
    PeerFinished,
    ProtocolError,
    Transport,
    check_timeout,
    node_names,
)
from privet.wire import DEFAULT_LIMITS

__all__ = ["MAX_ITEM_BYTES", "main", "run_dealer", "serve"]

#: One item's rows must fit a wire message (the last party receives them in one).
MAX_ITEM_BYTES: Final = DEFAULT_LIMITS.max_message_bytes - (1 << 20)


def serve(
    dealer: Dealer,
    transport: Transport,
    *,
    timeout: float | None = 60.0,
    idle_timeout: float | None = None,
    max_item_bytes: int = MAX_ITEM_BYTES,
) -> DealerStats:
    """Serve the parties until the last one finishes; returns what the dealer produced.

    Parameters
    ----------
    dealer
        The full dealer (the simulator's, for the same seed, gives the same items).
    transport
        Node ``num_parties``'s, connected to every party.
    timeout
        Seconds a send may wait for a party to take the data.
    idle_timeout
        Seconds to wait for the next request. ``None`` (the default) waits as long as
        every connection is up: a party computes for as long as it needs between items,
        and a party that fails makes the others abort, which ends this wait at once.
    max_item_bytes
        Larger requests are refused before anything is drawn.
    """
    check_timeout(timeout)
    idle = check_timeout(idle_timeout, "idle_timeout")
    n = dealer.num_parties
    if transport.node != n:
        raise PrivacyError(f"transport must be the dealer's (node {n}), got node {transport.node}")
    last = n - 1
    for party in range(last):
        transport.send(party, encode_seed(dealer.stream_seed(party)))
    name = transport.name(last)
    index = 0
    while True:
        try:
            payload = transport.recv(last, idle)
        except PeerFinished:
            return dealer.stats
        request = decode_request(payload, index, name)
        if request.nbytes() > max_item_bytes:
            raise ProtocolError(
                f"{name} requested item {index} of {request.nbytes()} bytes, above "
                f"max_item_bytes={max_item_bytes}",
                name,
            )
        delivery = dealer.produce(request)
        owner = request.params[0] if request.method is Method.INPUT_MASK else None
        rows = [stack[last] for stack in delivery.stacks]
        transport.send(last, encode_item(index, rows, delivery.value if owner == last else None))
        if owner is not None and owner != last and delivery.value is not None:
            transport.send(owner, encode_mask(index, delivery.value))
        index += 1


def run_dealer(stdin: IO[bytes]) -> int:
    """The dealer process's body: the setup from ``stdin``, serve, report; exit status."""
    setup = read_setup(stdin)
    n = setup.num_parties
    transport: TcpTransport | None = None
    try:
        if setup.role != "dealer":
            raise PrivacyError(f"the dealer service needs a dealer setup, got {setup.role}")
        transport = connect_mesh(
            n,
            node_names(n),
            setup.key,
            dial_to={party: (LOOPBACK, port) for party, port in enumerate(setup.ports)},
            listener=None,
            accept_from=(),
            timeout=setup.timeout,
        )
        stats = serve(Dealer(n, setup.seed), transport, timeout=setup.timeout)
        transport.close()
        report = NodeReport(
            node=n,
            dealer_items=stats.items,
            dealer_bytes=stats.bytes_sent,
            wire_bytes=transport.bytes_sent,
        )
    except Exception as error:
        if transport is not None:
            transport.abort(describe_error(error))
        write_report(setup.result_path, NodeReport(node=n, error=describe_error(error)))
        print(f"privet.mpc dealer: {describe_error(error)}", file=sys.stderr)
        return 1
    write_report(setup.result_path, report)
    return 0


def main() -> int:
    """The dealer process: setup from stdin, serve, report; exit status 0 or 1."""
    return run_dealer(sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main())
