"""The dealer process: a full :class:`~privet.mpc.dealer.Dealer` serving the parties' views.

Message flow (node ``n`` is the dealer; :mod:`privet.mpc.messages`):

1. At setup it sends each party ``i < n - 1`` its share stream's seed
   (``mpc.seed``): from then on that party draws its own rows, and no share
   of it ever travels.
2. The last party sends each item's request (``mpc.request``: method and
   public shapes, numbered) at the moment its protocol needs the item; the
   dealer checks the number and the shapes, produces the item with the full
   dealer (drawing every party's stream, so the streams stay in step), and
   answers with the last party's rows (``mpc.item``, which names the item).
   Items of a plan are sent before they are asked for. For an input mask it
   also sends ``r`` to the input's owner (in the item if the owner is the
   last party, else ``mpc.mask``).
3. The run ends when the last party says goodbye.

Why the last party asks, item by item: the sequence of items is fixed by
public shapes, but only the program knows them, and the dealer does not run
the program (it is not a party and must not need the parties' code or
control flow). The last party must receive its rows anyway, so its request
adds one small message per item; the others draw their rows locally and
never wait for the dealer, except an input's owner for its mask ``r``.
Every party's view counts what the dealer counts, so
:class:`~privet.mpc.dealer.DealerStats` agree across processes.

Ahead of time: asked item by item, the dealer's work (drawing, multiplying)
and a loopback round trip sit on the last party's path for every item. Given
a :class:`~privet.mpc.dealer.DealerPlan` (the items a run of the same program
on inputs of the same shapes asked for, recorded by the dealer of that run),
the dealer makes and sends the planned items at once, while the parties
compute: each waits in the last party's socket buffers and inbox until its
turn. The last party still sends its requests, now without waiting for an
answer, and both sides check every item against them (:func:`~privet.mpc.messages.decode_item`
names the item the program asked for and the one the plan made), so a plan
that does not match the program stops the run with that error instead of
computing with the wrong randomness.

Run it as ``python -m privet.mpc.dealer_service`` (the launcher does, with the
setup on stdin: :func:`run_dealer`).
"""

from __future__ import annotations

import sys
from typing import IO, Final

from privet.errors import PrivacyError
from privet.mpc.dealer import Dealer, DealerPlan, DealerStats, ItemRequest, Method
from privet.mpc.messages import (
    NodeReport,
    decode_plan,
    decode_request,
    describe_error,
    encode_item,
    encode_mask,
    encode_seed,
    plan_array,
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

__all__ = ["MAX_ITEM_BYTES", "MAX_PLAN_BYTES", "main", "run_dealer", "serve"]

#: One item's rows must fit a wire message (the last party receives them in one).
MAX_ITEM_BYTES: Final = DEFAULT_LIMITS.max_message_bytes - (1 << 20)
#: A plan file is one wire message.
MAX_PLAN_BYTES: Final = DEFAULT_LIMITS.max_message_bytes


def serve(
    dealer: Dealer,
    transport: Transport,
    *,
    plan: DealerPlan | None = None,
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
    plan
        Items to make and send ahead, before they are asked for (the last party's
        requests for them are then checked against the plan); items beyond it are made
        on request. ``None``: every item on request.
    timeout
        Seconds a send may wait for a party to take the data.
    idle_timeout
        Seconds to wait for the next request. ``None`` (the default) waits as long as
        every connection is up: a party computes for as long as it needs between items,
        and a party that fails makes the others abort, which ends this wait at once.
    max_item_bytes
        Larger items are refused before anything is drawn.
    """
    check_timeout(timeout)
    idle = check_timeout(idle_timeout, "idle_timeout")
    n = dealer.num_parties
    if transport.node != n:
        raise PrivacyError(f"transport must be the dealer's (node {n}), got node {transport.node}")
    planned = _checked_plan(plan, n, max_item_bytes)
    last = n - 1
    for party in range(last):
        transport.send(party, encode_seed(dealer.stream_seed(party)))
    name = transport.name(last)
    for index, request in enumerate(planned):
        try:
            _deliver(dealer, transport, index, request)
        except PeerFinished:
            raise ProtocolError(
                f"{name} finished before taking the {len(planned)} items of the plan (it "
                f"left at item {index} or before): the plan does not match the program",
                name,
            ) from None
    index = 0
    while True:
        try:
            payload = transport.recv(last, idle)
        except PeerFinished:
            if index < len(planned):
                raise ProtocolError(
                    f"{name} finished before taking the {len(planned)} items of the plan (it "
                    f"took {index}): the plan does not match the program",
                    name,
                ) from None
            return dealer.stats
        request = decode_request(payload, index, name)
        if index < len(planned):
            if request != planned[index]:  # the party has refused the item already
                raise ProtocolError(
                    f"{name} asks for item {index} as {request.describe()}, but the plan has "
                    f"{planned[index].describe()}: the plan does not match the program",
                    name,
                )
        elif request.nbytes() > max_item_bytes:
            raise ProtocolError(
                f"{name} requested item {index} of {request.nbytes()} bytes, above "
                f"max_item_bytes={max_item_bytes}",
                name,
            )
        else:
            _deliver(dealer, transport, index, request)
        index += 1


def _checked_plan(
    plan: DealerPlan | None, num_parties: int, max_item_bytes: int
) -> tuple[ItemRequest, ...]:
    if plan is None:
        return ()
    if not isinstance(plan, DealerPlan) or plan.num_parties != num_parties:
        raise PrivacyError(f"plan must be a DealerPlan for {num_parties} parties, got {plan!r:.80}")
    for index, request in enumerate(plan.requests):
        if request.nbytes() > max_item_bytes:
            raise PrivacyError(
                f"plan item {index} must be at most max_item_bytes={max_item_bytes} bytes, "
                f"got {request.nbytes()}"
            )
    return plan.requests


def _deliver(dealer: Dealer, transport: Transport, index: int, request: ItemRequest) -> None:
    """Make item ``index``; send the last party its rows, and the input's owner its mask."""
    last = dealer.num_parties - 1
    delivery = dealer.produce(request)
    owner = request.params[0] if request.method is Method.INPUT_MASK else None
    rows = [stack[last] for stack in delivery.stacks]
    value = delivery.value if owner == last else None
    transport.send(last, encode_item(index, request, rows, value))
    if owner is not None and owner != last and delivery.value is not None:
        transport.send(owner, encode_mask(index, delivery.value))


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
        plan = _read_plan(setup.plan_path) if setup.plan_path else None
        dealer = Dealer(n, setup.seed)
        stats = serve(dealer, transport, plan=plan, timeout=setup.timeout)
        transport.close()
        report = NodeReport(
            node=n,
            dealer_items=stats.items,
            dealer_bytes=stats.bytes_sent,
            dealer_seconds=stats.seconds,
            wire_bytes=transport.bytes_sent,
            plan=plan_array(dealer.plan()),
        )
    except Exception as error:
        if transport is not None:
            transport.abort(describe_error(error))
        write_report(setup.result_path, NodeReport(node=n, error=describe_error(error)))
        print(f"privet.mpc dealer: {describe_error(error)}", file=sys.stderr)
        return 1
    write_report(setup.result_path, report)
    return 0


def _read_plan(path: str) -> DealerPlan:
    with open(path, "rb") as handle:
        data = handle.read(MAX_PLAN_BYTES + 1)
    if len(data) > MAX_PLAN_BYTES:
        raise PrivacyError(f"the plan at {path} must be at most {MAX_PLAN_BYTES} bytes")
    return decode_plan(data, "the launcher's plan")


def main() -> int:
    """The dealer process: setup from stdin, serve, report; exit status 0 or 1."""
    return run_dealer(sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main())
