"""Transports of real MPC parties: one contract for the in-memory and TCP ones; the TCP
handshake and frames against forged, replayed, reordered and foreign input; frames are
encrypted (AES-256-GCM, counter nonces) on the wire."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privet.errors import PrivacyError
from privet.mpc.handshake import Link, accept, dial
from privet.mpc.tcp import (
    ABORT,
    DATA,
    GOODBYE,
    LOOPBACK,
    MAX_FRAMES,
    TcpTransport,
    connect_mesh,
    encode_frame,
)
from privet.mpc.transport import (
    AuthenticationError,
    FrameError,
    MemoryHub,
    MpcNetworkError,
    PeerAborted,
    PeerFinished,
    PeerLost,
    PeerTimeout,
    Transport,
    node_names,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NAMES = node_names(2)  # party 0, party 1, dealer: a mesh of k nodes is the first k


def run_threads(*targets: Callable[[], Any]) -> list[Any]:
    """Run callables in threads; their results, or re-raise the first error."""
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def wrap(index: int, target: Callable[[], Any]) -> None:
        try:
            results[index] = target()
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=wrap, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if errors:
        raise errors[0]
    return results


def tcp_mesh(nodes: int, timeout: float = 10.0) -> list[TcpTransport]:
    """``nodes`` TCP transports on loopback, connected as the launcher connects them."""
    listeners = [socket.create_server((LOOPBACK, 0)) for _ in range(nodes)]
    ports = [sock.getsockname()[1] for sock in listeners]
    names = NAMES[:nodes]

    def node(i: int) -> Callable[[], TcpTransport]:
        return lambda: connect_mesh(
            i,
            names,
            KEY,
            dial_to={j: (LOOPBACK, ports[j]) for j in range(i)},
            listener=listeners[i],
            accept_from=range(i + 1, nodes),
            timeout=timeout,
        )

    try:
        return run_threads(*(node(i) for i in range(nodes)))
    finally:
        for sock in listeners:
            sock.close()


def memory_mesh(nodes: int) -> list[Transport]:
    hub = MemoryHub(NAMES[:nodes])
    return [hub.endpoint(i) for i in range(nodes)]


@pytest.fixture(params=["memory", "tcp"])
def mesh(request: pytest.FixtureRequest) -> Iterator[Callable[[int], list[Transport]]]:
    made: list[Transport] = []

    def make(nodes: int) -> list[Transport]:
        transports: list[Transport] = [
            *(memory_mesh(nodes) if request.param == "memory" else tcp_mesh(nodes))
        ]
        made.extend(transports)
        return transports

    yield make
    for transport in made:
        transport.abort("test over")


# -- the contract, for both transports ---------------------------------------------------------


def test_payloads_arrive_in_order_and_are_counted(mesh: Callable[[int], list[Transport]]) -> None:
    zero, one, dealer = mesh(3)
    for payload in (b"first", b"second", b"x" * 100_000):
        zero.send(1, payload)
    received = [one.recv(0, 5) for _ in range(3)]
    assert received == [b"first", b"second", b"x" * 100_000]
    assert {type(payload) for payload in received} == {bytes}  # not a bytearray or a view
    assert zero.bytes_sent >= 100_011
    assert (zero.node, dealer.node, one.name(0), one.name(2)) == (0, 2, "party 0", "dealer")


def test_large_payloads_both_ways_at_once_do_not_deadlock(
    mesh: Callable[[int], list[Transport]],
) -> None:
    """Each side sends 16 MB before reading: far beyond the socket buffers, so blocking
    writes would wait for each other forever; the transport reads while it writes."""
    zero, one = mesh(2)
    big = bytes(range(256)) * (1 << 16)

    def exchange(me: Transport, peer: int) -> bytes:
        me.send(peer, big)
        return me.recv(peer, 20)

    assert run_threads(lambda: exchange(zero, 1), lambda: exchange(one, 0)) == [big, big]


def test_a_clean_close_delivers_everything_then_says_finished(
    mesh: Callable[[int], list[Transport]],
) -> None:
    zero, one = mesh(2)
    one.send(0, b"last words")
    closing = threading.Thread(target=one.close)  # TCP's close waits for the peer's end
    closing.start()
    assert zero.recv(1, 5) == b"last words"
    with pytest.raises(PeerFinished, match="party 1 has finished and closed the connection"):
        zero.recv(1, 5)
    with pytest.raises(PeerFinished, match="party 1 has finished"):
        zero.send(1, b"late")
    zero.close()
    closing.join(5)
    assert not closing.is_alive()


def test_an_abort_is_noticed_by_a_wait_for_another_peer(
    mesh: Callable[[int], list[Transport]],
) -> None:
    zero, _one, dealer = mesh(3)
    dealer.abort("boom")
    started = time.monotonic()
    with pytest.raises(PeerAborted, match="dealer aborted the run: boom") as caught:
        zero.recv(1, 10)  # waiting for party 1, not for the dealer
    assert caught.value.peer == "dealer"
    assert time.monotonic() - started < 5  # at once, not at the 10 s timeout


def test_a_silent_peer_times_out(mesh: Callable[[int], list[Transport]]) -> None:
    zero, _one = mesh(2)
    started = time.monotonic()
    with pytest.raises(PeerTimeout, match=r"no message from party 1 within 0.3 s") as caught:
        zero.recv(1, 0.3)
    assert 0.3 <= time.monotonic() - started < 3
    assert caught.value.peer == "party 1"


def test_bad_arguments_are_refused(mesh: Callable[[int], list[Transport]]) -> None:
    zero, _one, _dealer = mesh(3)
    with pytest.raises(PrivacyError, match=r"peer must be one of the nodes \[1, 2\], got 5"):
        zero.send(5, b"x")
    with pytest.raises(PrivacyError, match=r"peer must be one of the nodes \[1, 2\], got 0"):
        zero.recv(0, 1)
    with pytest.raises(PrivacyError, match="payload must be non-empty bytes"):
        zero.send(1, b"")
    with pytest.raises(PrivacyError, match="timeout must be a number of seconds > 0 or None"):
        zero.recv(1, -1)


# -- crashes -----------------------------------------------------------------------------------


def test_a_crashed_peer_is_lost_at_once() -> None:
    zero, one, dealer = tcp_mesh(3)
    one.send(0, b"hello")
    for link in one._links.values():  # what the kernel does to a SIGKILLed process
        link.sock.close()
    started = time.monotonic()
    assert zero.recv(1, 10) == b"hello"  # what was sent still arrives
    with pytest.raises(PeerLost, match="party 1 closed the connection without a goodbye"):
        zero.recv(1, 10)
    with pytest.raises(PeerLost, match=r"party 1 .* before frame 0"):
        dealer.recv(0, 10)  # the dealer waits for party 0, and learns of party 1's end
    assert time.monotonic() - started < 5
    zero.abort("over")
    dealer.abort("over")


def test_a_crash_in_memory_is_lost_too() -> None:
    hub = MemoryHub(node_names(2))
    zero = hub.endpoint(0)
    hub.post(1, 0, "lost")
    with pytest.raises(PeerLost, match="party 1 closed the connection without a goodbye"):
        zero.recv(2, 5)
    with pytest.raises(PrivacyError, match="kind must be data, bye, abort or lost"):
        hub.post(1, 0, "poke")


# -- handshake ---------------------------------------------------------------------------------


def listen_for(
    expected: list[int], key: bytes = KEY, timeout: float = 5.0
) -> tuple[int, Callable[[], dict[int, Link]]]:
    listener = socket.create_server((LOOPBACK, 0))
    port = listener.getsockname()[1]

    def serve() -> dict[int, Link]:
        try:
            return accept(listener, 0, expected, key, NAMES, timeout)
        finally:
            listener.close()

    return port, serve


def test_a_wrong_key_fails_on_both_sides_and_the_right_peer_still_gets_in() -> None:
    port, serve = listen_for([1], timeout=5)
    intruder: list[BaseException] = []

    def connect_twice() -> Link:
        try:
            dial(1, 0, (LOOPBACK, port), OTHER_KEY, NAMES, 5)
        except AuthenticationError as error:
            intruder.append(error)
        return dial(1, 0, (LOOPBACK, port), KEY, NAMES, 5)

    accepted, dialled = run_threads(serve, connect_twice)
    assert "party 0 failed authentication: it does not hold this run's key" in str(intruder[0])
    assert list(accepted) == [1]
    for sock, _, _ in (accepted[1], dialled):
        sock.close()


def test_a_listener_that_never_sees_the_peer_names_every_refusal() -> None:
    port, serve = listen_for([1], timeout=1.5)

    def intrude() -> None:
        with pytest.raises(AuthenticationError, match="failed authentication"):
            dial(1, 0, (LOOPBACK, port), OTHER_KEY, NAMES, 5)
        with socket.create_connection((LOOPBACK, port)) as raw:
            raw.sendall(struct.pack(">I", 10) + b"not a wire")

    with pytest.raises(
        PeerTimeout,
        match=r"party 1 did not connect within 1.5 s; refused: .*party 1 closed the connection "
        r"during the handshake; .*bad handshake message",
    ):
        run_threads(serve, intrude)


def test_an_unknown_node_is_refused_by_name() -> None:
    port, serve = listen_for([1], timeout=1.0)
    told: list[str] = []

    def intrude() -> None:
        with pytest.raises(AuthenticationError) as caught:
            dial(7, 0, (LOOPBACK, port), KEY, node_names(9), 5)
        told.append(str(caught.value))

    with pytest.raises(PeerTimeout, match="refused: refused a connection: node 7 is not a peer"):
        run_threads(serve, intrude)
    assert told == [
        "party 0 refused the connection: node 7 is not a peer party 0 expects (expected nodes [1])"
    ]


# -- frames ------------------------------------------------------------------------------------


@pytest.fixture
def forged() -> Iterator[tuple[TcpTransport, socket.socket, bytes, bytes]]:
    """Party 0's transport, and a raw connection from party 1 with its frame keys."""
    port, serve = listen_for([1])
    accepted, (sock, send_key, recv_key) = run_threads(
        serve, lambda: dial(1, 0, (LOOPBACK, port), KEY, NAMES, 5)
    )
    zero = TcpTransport(0, NAMES, accepted, timeout=5)
    yield zero, sock, send_key, recv_key
    sock.close()
    zero.abort("test over")


def test_a_forged_frame_fails_authentication(forged: Any) -> None:
    zero, sock, key, _ = forged
    sock.sendall(encode_frame(key, DATA, 0, b"genuine"))
    assert zero.recv(1, 5) == b"genuine"
    frame = bytearray(encode_frame(key, DATA, 1, b"tampered"))
    frame[4 + 9 + 3] ^= 1  # one ciphertext bit (after the length and the header)
    sock.sendall(bytes(frame))
    with pytest.raises(
        FrameError, match=r"party 1 failed authentication \(bad AES-GCM tag\) at sequence 1"
    ):
        zero.recv(1, 5)


@pytest.mark.parametrize(
    ("byte", "expected"),
    [
        (4, "at sequence 1; expected sequence 0"),  # the type: DATA read as GOODBYE
        (4 + 8, "at sequence 0; expected sequence 0"),  # the sequence's last byte: 1 -> 0
        (4 + 9, "at sequence 1; expected sequence 0"),  # the first ciphertext byte
        (-1, "at sequence 1; expected sequence 0"),  # the tag
    ],
    ids=["type", "sequence", "ciphertext", "tag"],
)
def test_one_flipped_bit_anywhere_fails_authentication(
    forged: Any, byte: int, expected: str
) -> None:
    """The header is associated data: a flipped sequence bit turns frame 1 into a clear
    "sequence 0", which must fail authentication, not pass as the expected frame."""
    zero, sock, key, _ = forged
    frame = bytearray(encode_frame(key, DATA, 1, b"pay 10"))
    frame[byte] ^= 1
    sock.sendall(bytes(frame))
    with pytest.raises(FrameError, match=rf"failed authentication \(bad AES-GCM tag\) {expected}"):
        zero.recv(1, 5)


def test_a_frame_under_another_key_fails_authentication(forged: Any) -> None:
    zero, sock, _key, receive_key = forged
    sock.sendall(encode_frame(receive_key, DATA, 0, b"reflected"))  # the other direction's key
    with pytest.raises(FrameError, match=r"bad AES-GCM tag\) at sequence 0") as caught:
        zero.recv(1, 5)
    assert (caught.value.peer, caught.value.sequence) == ("party 1", 0)


def test_a_replayed_frame_is_refused(forged: Any) -> None:
    zero, sock, key, _ = forged
    frame = encode_frame(key, DATA, 0, b"pay 10")
    sock.sendall(frame + frame)
    assert zero.recv(1, 5) == b"pay 10"
    with pytest.raises(
        FrameError, match="party 1 is out of order or replayed: sequence 0, expected 1"
    ):
        zero.recv(1, 5)


def test_a_reordered_frame_is_refused(forged: Any) -> None:
    zero, sock, key, _ = forged
    sock.sendall(encode_frame(key, DATA, 1, b"second") + encode_frame(key, DATA, 0, b"first"))
    with pytest.raises(FrameError, match="sequence 1, expected 0") as caught:
        zero.recv(1, 5)
    assert caught.value.sequence == 1


def test_an_oversized_frame_is_refused_before_allocation(forged: Any) -> None:
    zero, sock, _, _ = forged
    sock.sendall(struct.pack(">I", 2**32 - 1))
    with pytest.raises(FrameError, match=r"frame 0 from party 1 must be 25 to \d+ bytes, got 4294"):
        zero.recv(1, 5)


def test_unknown_frame_types_and_frames_after_goodbye_are_refused(forged: Any) -> None:
    zero, sock, key, _ = forged
    sock.sendall(encode_frame(key, 7, 0, b"?"))
    with pytest.raises(FrameError, match=r"party 1 has an unknown type 7 \(sequence 0\)"):
        zero.recv(1, 5)


def test_data_after_a_goodbye_is_refused(forged: Any) -> None:
    zero, sock, key, _ = forged
    sock.sendall(encode_frame(key, GOODBYE, 0, b"") + encode_frame(key, DATA, 1, b"zombie"))
    with pytest.raises(FrameError, match=r"frame from party 1 after its goodbye \(sequence 1\)"):
        zero.recv(1, 5)


def test_an_abort_frame_carries_the_reason(forged: Any) -> None:
    zero, sock, key, _ = forged
    sock.sendall(encode_frame(key, ABORT, 0, b"PeerTimeout: party 2 is silent"))
    with pytest.raises(PeerAborted, match="party 1 aborted the run: PeerTimeout: party 2 is"):
        zero.recv(1, 5)


# -- encryption on the wire --------------------------------------------------------------------


def read_frame(sock: socket.socket) -> tuple[int, int, bytes, bytes]:
    """One raw frame from ``sock``: ``(type, sequence, header, ciphertext and tag)``."""

    def exactly(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            assert chunk, "the connection ended inside a frame"
            data += chunk
        return data

    (length,) = struct.unpack(">I", exactly(4))
    body = exactly(length)
    kind, sequence = struct.unpack(">BQ", body[:9])
    return kind, sequence, body[:9], body[9:]


def open_frame(key: bytes, sequence: int, header: bytes, sealed: bytes) -> bytes:
    """Decrypts a frame by the layout the tcp module documents, independently of its code:
    nonce = 4 zero bytes | sequence (NIST SP 800-38D §8.2.1), associated data = header."""
    return AESGCM(key).decrypt(bytes(4) + sequence.to_bytes(8, "big"), sealed, header)


def test_a_payload_never_crosses_the_socket_in_the_clear(forged: Any) -> None:
    """What party 0's transport writes, read raw by party 1's plain socket: the payload is
    not there, yet the frame opens under party 1's receive key to exactly the payload."""
    zero, sock, _, receive_key = forged
    payload = b"secret share 0x5EC12E7 " * 50
    zero.send(1, payload)
    kind, sequence, header, sealed = read_frame(sock)
    assert (kind, sequence, len(sealed)) == (DATA, 0, len(payload) + 16)
    assert b"secret share" not in header + sealed
    assert open_frame(receive_key, sequence, header, sealed) == payload


def test_goodbye_and_abort_frames_are_encrypted_too(forged: Any) -> None:
    zero, sock, _, receive_key = forged
    zero.abort("PeerTimeout: the dealer is silent")
    kind, sequence, header, sealed = read_frame(sock)
    assert (kind, sequence) == (ABORT, 0)
    assert b"dealer" not in sealed
    assert open_frame(receive_key, sequence, header, sealed) == b"PeerTimeout: the dealer is silent"


def test_equal_payloads_never_give_equal_frames(forged: Any) -> None:
    """Under one key, equal plaintexts give equal ciphertexts exactly when the nonce repeats:
    40 frames of one payload must be 40 different ciphertexts, numbered 0 .. 39."""
    zero, sock, _, receive_key = forged
    payload = b"the same payload"
    for _ in range(40):
        zero.send(1, payload)
    frames = [read_frame(sock) for _ in range(40)]
    assert [sequence for _, sequence, _, _ in frames] == list(range(40))
    assert len({sealed for _, _, _, sealed in frames}) == 40
    assert all(open_frame(receive_key, s, h, c) == payload for _, s, h, c in frames)
    # The helper the tests forge with shares the sealing: same key, same nonce rule.
    assert encode_frame(receive_key, DATA, 5, payload)[4:] == frames[5][2] + frames[5][3]


def test_a_link_refuses_to_reuse_a_nonce_after_2_to_the_64_frames(forged: Any) -> None:
    zero, sock, _, receive_key = forged
    zero._links[1].send_sequence = MAX_FRAMES - 1  # 2**64 - 1 frames already sent
    zero.send(1, b"the last frame this key may seal")
    _, sequence, header, sealed = read_frame(sock)
    assert sequence == 2**64 - 1
    assert open_frame(receive_key, sequence, header, sealed) == b"the last frame this key may seal"
    with pytest.raises(
        MpcNetworkError,
        match=r"frame sequence must be below 2\*\*64 per key .*got 18446744073709551616",
    ):
        zero.send(1, b"one too many")


def test_frame_keys_must_be_32_bytes() -> None:
    with pytest.raises(PrivacyError, match="key must be 32 bytes, got b'"):
        encode_frame(bytes(16), DATA, 0, b"AES-128 is not what was derived")
    left, right = socket.socketpair()
    try:
        with pytest.raises(PrivacyError, match="receive key must be 32 bytes, got b'"):
            TcpTransport(0, NAMES, {1: (left, KEY, KEY[:16])})
    finally:
        left.close()
        right.close()
