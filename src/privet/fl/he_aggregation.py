"""Encrypted federated aggregation: clients encrypt, the server adds, a key holder decrypts the sum.

:class:`PaillierAggregationEngine` is a fit stage beside
:class:`~privet.fl.secure_engine.SecAggEngine`: each round's fits end in a
:class:`~privet.fl.strategy.SecureSum` that :func:`privet.fl.run_federated`
hands to the strategy's ``aggregate_secure_sum``, so FedAvg, FedProx and the
DP wrappers that run over SecAgg run over it unchanged. A round:

1. The server asks the key holder for its public key (``fl.he_key_request`` ->
   ``he.paillier.public_key``) and sends every sampled client its task
   (``fl.he_fit``): the global parameters, the fit instructions, what to
   contribute, the encoding, and the public key.
2. Each client (:class:`~privet.fl.he_client.HeClient`) trains, forms the
   contribution a SecAgg client would
   (:func:`~privet.fl.secure_client.contribution_vector`: the clipped,
   weighted update, its weight and, if asked, its unclipped bit), encodes it
   in fixed point and encrypts it *packed* under the key holder's key
   (:func:`privet.he.encrypt_packed`; Bianchi, Piva and Barni, IEEE TIFS
   2010), and sends one ``he.paillier.packed_array`` back.
3. The server checks each contribution (right key, fresh, the round's layout),
   multiplies the ciphertexts (Paillier 1999: ``Enc(a) Enc(b) = Enc(a + b)``)
   and sends the encrypted sum to the key holder.
4. The :class:`~privet.fl.he_key_holder.KeyHolder` decrypts it (if it holds
   at least ``min_contributions`` contributions) and returns the sum
   (``fl.he_sum``).

Trust model. The key holder is a party apart from the server — an external
decryptor, or one of the clients — and holds the only copy of the secret key.
*The key holder must not collude with the server*: together they could
decrypt any single contribution. Both are honest-but-curious (they follow the
protocol): the server sees only ciphertexts and the decrypted sum the key
holder returns; the key holder sees the encrypted sums the server sends and
their decryptions, i.e. the sum, just as the server does. The key holder
decrypts nothing with fewer than ``min_contributions`` contributions (counted
from the ciphertext's public offset, not from the server's word), but it
cannot tell a sum of ``m`` clients from one client's ciphertext multiplied by
``m``, nor two overlapping sums of one round: a *malicious* server could
isolate an update that way; signed contributions would be needed against it.
Clients should pin the key holder's key fingerprint, obtained out of band
(``key_fingerprint``), so a server cannot substitute a key of its own. The
transport must authenticate its endpoints (Paillier ciphertexts are malleable).
Unlike SecAgg, a client's dropout costs nothing and needs no recovery round:
the sum is over the contributions that arrived.

Encoding. With an L2 clip ``C`` from the strategy every coordinate is within
``max(C, 1)`` (the weight and the bit are in ``[0, 1]``); without a clip the
config must declare ``bound`` and a client refuses a value beyond it (never
wraps). Fractional bits: 32 for unweighted sums; weighted ones add the bits of
``max_weight``, so the smallest weight ``1/max_weight`` keeps 32 significant
bits. Each encoded value is off by at most ``2^-(f+1)``, a sum of ``m`` by
``m 2^-(f+1)``. The packing headroom is ``ceil(log2 max_clients)`` bits: a round
of more than ``2^h`` clients is refused before anyone encrypts. Distributed
noise (Kairouz et al. 2021, :class:`~privet.fl.distributed_dp.DistributedDp`)
is supported: a client encodes with the mechanism and encrypts its values in
``Z_{2^k}`` read as signed integers; the decrypted integer sum is the modular
sum SecAgg would reveal (no wrap, which only costs accuracy), and a round with
fewer than ``min_honest_clients`` contributions is aborted before decryption.

Randomness. Clients use :class:`privet.he.DjnRandomness` by default (one
fixed-base table per key, kept across rounds; the extra short-exponent
assumption it rests on is stated in :mod:`privet.he.randomness`), or plain
``r^n`` (:attr:`~privet.fl.he_client.ClientRandomness.NAIVE`, DCRA only),
from the OS CSPRNG unless a seeded generator is passed (simulation and tests
only).

Cost. A client sends ``ceil(L / k)`` ciphertexts of ``2|n|`` bits for ``L``
values, ``k = (|n| - 1) // (bitlen(2 B 2^f) + h)`` per ciphertext (B the bound,
f the fractional bits, h the headroom); the server multiplies ``m - 1`` such
vectors modulo ``n^2``; the key holder decrypts one (two half-size
exponentiations per ciphertext). :attr:`PaillierAggregationEngine.last_round`
records the server's measured share of each round.

Modules. This one is the server's side: the round parameters
(:class:`PaillierAggregation`), the transports and the engine. The parties
apart from the server have their own: :mod:`privet.fl.he_client` (the client)
and :mod:`privet.fl.he_key_holder` (the key holder); the wire codecs are in
:mod:`privet.fl.he_messages`. Their public names are re-exported here.

This module needs gmpy2 (``pip install 'privet[he]'``): :mod:`privet.fl` does
not import it; import ``privet.fl.he_aggregation`` by name, like
:mod:`privet.fl.ray_engine`.
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from privet.errors import PrivacyError
from privet.fl.engine import Engine, SequentialEngine, SumOnlyEngine
from privet.fl.he_client import ClientRandomness, HeClient, contribution_values, signed_residues
from privet.fl.he_key_holder import KeyHolder
from privet.fl.he_messages import (
    HeFitTask,
    PackedEncoding,
    decode_decrypted_sum,
    encode_he_fit_task,
    encode_key_request,
    noise_encoding,
)
from privet.fl.parameters import Parameters
from privet.fl.strategy import SecureContribution, SecureSum
from privet.fl.types import (
    Client,
    FitInstructions,
    RoundAborted,
)
from privet.he import (
    PackedEncryptedArray,
    PackingLayout,
    PaillierPublicKey,
    decode_packed_array,
    decode_public_key,
    encode_packed_array,
)

__all__ = [
    "ClientRandomness",
    "Crossing",
    "HeClient",
    "HeRoundStats",
    "HeTransport",
    "InMemoryHeTransport",
    "InMemoryKeyHolderChannel",
    "KeyHolder",
    "KeyHolderChannel",
    "PaillierAggregation",
    "PaillierAggregationEngine",
    "contribution_values",
    "signed_residues",
]

logger = logging.getLogger("privet.fl")

SERVER = "server"
KEY_HOLDER = "key_holder"
#: Fractional bits that resolve an unweighted update (absolute resolution 2^-32).
RESOLUTION_BITS = 32
# An L2-clipped vector can exceed its clip by a few ulps of float rounding; the bound must
# not make such a client refuse its own update.
_CLIP_SLACK = 1.0 + 2.0**-40


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PrivacyError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


@dataclass(frozen=True)
class PaillierAggregation:
    """How rounds are aggregated under Paillier; public, the same for every party.

    Attributes
    ----------
    max_clients
        The most clients one round may sum, known up front: it sets the
        packing headroom ``h = ceil(log2 max_clients)`` (rounds of up to
        ``2^h`` clients; a larger one is refused before anyone encrypts).
    bound
        ``|x|`` bound on every update coordinate when the strategy does not
        clip (required then; a client refuses a value beyond it). Ignored
        when the strategy sets an L2 clip, which bounds every coordinate.
    frac_bits
        Fixed-point fractional bits; ``None`` picks 32, plus the bits of
        ``max_weight`` for weighted sums (see the module docstring).
    max_weight
        Example counts are capped here for weighted averaging.
    min_clients
        The server aborts a round with fewer contributions than this (a sum of
        one is that client's update).
    insecure_for_tests
        Accept a key holder key of 1024 to 2047 bits (tests only).
    """

    max_clients: int
    bound: float | None = None
    frac_bits: int | None = None
    max_weight: int = 100_000
    min_clients: int = 2
    insecure_for_tests: bool = False

    def __post_init__(self) -> None:
        _check_int("max_clients", self.max_clients, 2)
        bound = self.bound
        if bound is not None and (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not (math.isfinite(bound) and bound > 0)
        ):
            raise PrivacyError(f"bound must be None or a finite number > 0, got {bound!r}")
        if self.frac_bits is not None:
            PackedEncoding(1.0, self.frac_bits, 0)  # the encoding's own check and message
        _check_int("max_weight", self.max_weight, 1)
        minimum = self.min_clients
        if isinstance(minimum, bool) or not isinstance(minimum, int):
            raise PrivacyError(f"min_clients must be an integer >= 2, got {minimum!r}")
        if not 2 <= minimum <= self.max_clients:
            raise PrivacyError(
                f"min_clients must be in [2, max_clients={self.max_clients}], got {minimum}"
            )
        if not isinstance(self.insecure_for_tests, bool):
            raise PrivacyError(
                f"insecure_for_tests must be a bool, got {self.insecure_for_tests!r}"
            )

    @property
    def headroom_bits(self) -> int:
        """``ceil(log2 max_clients)``: the packing leaves room for ``2^h >= max_clients`` sums."""
        return (self.max_clients - 1).bit_length()

    def encoding(self, contribution: SecureContribution, size: int, clients: int) -> PackedEncoding:
        """The round's encoding; refuses a round the headroom or the bound cannot serve."""
        h = self.headroom_bits
        if clients > 1 << h:
            raise PrivacyError(
                f"a round must have at most 2^{h} = {1 << h} clients (the packing headroom for "
                f"max_clients={self.max_clients}), got {clients} clients; refused before any "
                "client encrypts"
            )
        noise = contribution.distributed_noise
        if noise is not None:
            if noise.dimension != size or noise.num_clients < clients:
                raise PrivacyError(
                    f"distributed noise must cover {size} parameters and >= {clients} clients, "
                    f"got dimension {noise.dimension} for {noise.num_clients} clients"
                )
            return noise_encoding(noise, h)
        if contribution.l2_clip is not None:
            bound = max(float(contribution.l2_clip) * _CLIP_SLACK, 1.0)
        elif self.bound is not None:
            bound = max(float(self.bound), 1.0)
        else:
            raise PrivacyError(
                "bound must be set in PaillierAggregation when the strategy does not clip "
                "updates (l2_clip is None), got None: fixed point needs a public bound, never "
                "one computed from the data"
            )
        frac_bits = self.frac_bits
        if frac_bits is None:
            extra = self.max_weight.bit_length() if contribution.weighted else 0
            frac_bits = RESOLUTION_BITS + extra
        return PackedEncoding(bound, frac_bits, h)


# -- transports --------------------------------------------------------------------------------


@runtime_checkable
class HeTransport(Protocol):
    """Carries one encrypted round between the server and named clients."""

    def collect(self, tasks: Mapping[str, bytes]) -> dict[str, bytes]:
        """Send each client its ``fl.he_fit`` task; collect the encrypted contributions.
        A client missing from the reply dropped out (it failed or timed out)."""
        ...


@runtime_checkable
class KeyHolderChannel(Protocol):
    """Carries requests from the server to the key holder and its replies."""

    def request(self, data: bytes) -> bytes:
        """One request as wire bytes; the reply. A refusal raises ``PrivacyError``."""
        ...


@dataclass(frozen=True)
class Crossing:
    """One message as it crossed an in-memory transport (tests inspect the server's view)."""

    sender: str
    recipient: str
    data: bytes


class InMemoryHeTransport:
    """Clients in this process behind :class:`HeClient`; every message still travels as bytes.

    ``log`` records every crossing, in order. A client that raises drops out
    of the round (logged as a warning), as a disconnected one would.
    """

    def __init__(
        self,
        clients: Mapping[str, Client],
        *,
        key_fingerprint: str | None = None,
        randomness: ClientRandomness = ClientRandomness.DJN,
        rng: np.random.Generator | None = None,
        insecure_for_tests: bool = False,
    ) -> None:
        self._clients = {
            name: HeClient(
                client,
                key_fingerprint=key_fingerprint,
                randomness=randomness,
                rng=rng,
                insecure_for_tests=insecure_for_tests,
            )
            for name, client in clients.items()
        }
        self.log: list[Crossing] = []

    def collect(self, tasks: Mapping[str, bytes]) -> dict[str, bytes]:
        replies: dict[str, bytes] = {}
        for name, data in tasks.items():
            client = self._clients.get(name)
            if client is None:
                raise PrivacyError(f"unknown client id {name!r}")
            self.log.append(Crossing(SERVER, name, data))
            try:
                reply = client.respond(data)
            except Exception as error:  # a failing client drops out of the round
                logger.warning("client %r failed its encrypted fit: %s", name, error)
                continue
            self.log.append(Crossing(name, SERVER, reply))
            replies[name] = reply
        return replies


class InMemoryKeyHolderChannel:
    """A :class:`KeyHolder` in this process; requests and replies still cross as bytes."""

    def __init__(self, key_holder: KeyHolder) -> None:
        if not isinstance(key_holder, KeyHolder):
            raise PrivacyError(f"key_holder must be a KeyHolder, got {type(key_holder).__name__}")
        self._key_holder = key_holder
        self.log: list[Crossing] = []

    def request(self, data: bytes) -> bytes:
        self.log.append(Crossing(SERVER, KEY_HOLDER, data))
        reply = self._key_holder.handle(data)
        self.log.append(Crossing(KEY_HOLDER, SERVER, reply))
        return reply


# -- the server's side -------------------------------------------------------------------------


@dataclass(frozen=True)
class HeRoundStats:
    """What the last encrypted round cost the server (measured, for benchmarks and logs)."""

    clients: int
    finished: int
    ciphertexts_per_client: int
    bytes_from_clients: int
    add_seconds: float
    decrypt_seconds: float  # the key holder's round trip, decryption included


class PaillierAggregationEngine(SumOnlyEngine):
    """Fits through Paillier-encrypted aggregation; evaluation as a plain engine would.

    The server side: it holds the public key, the clients' ciphertexts and the
    decrypted sum, never the secret key (it reaches the key holder through a
    :class:`KeyHolderChannel`).

    Parameters
    ----------
    transport
        Carries tasks to the clients and their ciphertexts back.
    key_holder
        The channel to the key holder.
    evaluation
        The engine that runs client-side evaluation (losses are not updates).
    config
        The round parameters (see :class:`PaillierAggregation`).
    """

    def __init__(
        self,
        transport: HeTransport,
        key_holder: KeyHolderChannel,
        evaluation: Engine,
        config: PaillierAggregation,
    ) -> None:
        if isinstance(key_holder, KeyHolder):
            raise PrivacyError(
                "key_holder must be a KeyHolderChannel, got the KeyHolder itself: the server "
                "must not hold the secret key (wrap it in InMemoryKeyHolderChannel to simulate)"
            )
        if not isinstance(transport, HeTransport):
            raise PrivacyError(f"transport must implement HeTransport, got {transport!r}")
        if not isinstance(key_holder, KeyHolderChannel):
            raise PrivacyError(f"key_holder must implement KeyHolderChannel, got {key_holder!r}")
        if not isinstance(config, PaillierAggregation):
            raise PrivacyError(f"config must be a PaillierAggregation, got {config!r}")
        self.transport = transport
        self.key_holder = key_holder
        self.evaluation = evaluation
        self.config = config
        self.last_round: HeRoundStats | None = None

    @classmethod
    def in_memory(
        cls,
        clients: Mapping[str, Client],
        key_holder: KeyHolder,
        config: PaillierAggregation | None = None,
        *,
        randomness: ClientRandomness = ClientRandomness.DJN,
        rng: np.random.Generator | None = None,
    ) -> PaillierAggregationEngine:
        """Clients and key holder in this process (clients pin the key holder's fingerprint);
        ``config`` defaults to ``max_clients = len(clients)``."""
        if config is None:
            config = PaillierAggregation(max_clients=max(2, len(clients)))
        transport = InMemoryHeTransport(
            clients,
            key_fingerprint=key_holder.public_key.fingerprint,
            randomness=randomness,
            rng=rng,
            insecure_for_tests=config.insecure_for_tests,
        )
        channel = InMemoryKeyHolderChannel(key_holder)
        return cls(transport, channel, SequentialEngine(clients), config)

    def fit_secure(
        self,
        parameters: Parameters,
        tasks: Sequence[tuple[str, FitInstructions]],
        contribution: SecureContribution,
        server_round: int,
    ) -> SecureSum:
        """Run one encrypted round: the sum of the contributions that arrived."""
        names = [name for name, _ in tasks]
        n = len(names)
        if len(set(names)) != n:
            raise PrivacyError(f"tasks must name each client once, got {names!r}")
        encoding = self.config.encoding(contribution, parameters.size, n)
        if n < self.config.min_clients:
            raise RoundAborted(
                f"encrypted aggregation needs at least {self.config.min_clients} clients, got {n}"
            )
        key = decode_public_key(
            self.key_holder.request(encode_key_request()),
            insecure_for_tests=self.config.insecure_for_tests,
        )
        layout = encoding.layout(key.bits)
        he_tasks = {
            name: HeFitTask(key, parameters, ins, contribution, encoding, self.config.max_weight)
            for name, ins in tasks
        }
        length = he_tasks[names[0]].vector_length
        replies = self.transport.collect(
            {name: encode_he_fit_task(task) for name, task in he_tasks.items()}
        )
        arrays = self._receive(replies, names, key, layout, encoding, length)
        finished = len(arrays)
        noise = contribution.distributed_noise
        needed = max(self.config.min_clients, noise.min_honest_clients if noise else 0)
        if finished < needed:
            raise RoundAborted(
                f"{finished} of {n} clients sent a valid encrypted contribution; the round "
                f"needs at least {needed}"
            )
        started = time.perf_counter()
        total = functools.reduce(operator.add, arrays)
        added = time.perf_counter()
        try:
            reply = self.key_holder.request(encode_packed_array(total))
        except PrivacyError as error:
            raise RoundAborted(f"the key holder refused to decrypt: {error}") from None
        values, count = decode_decrypted_sum(reply, length=length, fingerprint=key.fingerprint)
        self.last_round = HeRoundStats(
            clients=n,
            finished=finished,
            ciphertexts_per_client=layout.ciphertexts_for(length),
            bytes_from_clients=sum(len(replies[name]) for name in names if name in replies),
            add_seconds=added - started,
            decrypt_seconds=time.perf_counter() - added,
        )
        if count != finished:
            raise PrivacyError(
                f"the key holder must decrypt the sum of the {finished} contributions sent, "
                f"got a sum of {count}"
            )
        if noise is not None:
            return SecureSum(values / float(noise.scale), float(finished), finished, n - finished)
        size = parameters.size
        # Bits add up to an integer; the fixed-point error is far below 1/2.
        unclipped = round(float(values[size + 1])) if contribution.report_unclipped else None
        return SecureSum(values[:size], float(values[size]), finished, n - finished, unclipped)

    @staticmethod
    def _receive(
        replies: Mapping[str, bytes],
        names: Sequence[str],
        key: PaillierPublicKey,
        layout: PackingLayout,
        encoding: PackedEncoding,
        length: int,
    ) -> list[PackedEncryptedArray]:
        """The well-formed fresh contributions, in task order; a bad one drops its sender."""
        arrays: list[PackedEncryptedArray] = []
        for name in names:
            data = replies.get(name)
            if data is None:
                continue
            try:
                array = decode_packed_array(data, key)
                fresh = (array.shape, array.frac_bits, array.layout, array.offset, array.upper)
                expected = ((length,), encoding.frac_bits, layout, layout.value_bound)
                if fresh != (*expected, 2 * layout.value_bound):
                    raise PrivacyError(
                        f"a contribution must be one fresh packed array of shape ({length},) "
                        f"in the round's layout, got shape {array.shape} with "
                        f"{array.frac_bits} fractional bits"
                        + ("" if array.layout == layout else " in another layout")
                    )
            except PrivacyError as error:  # a bad message drops its sender, never the server
                logger.warning("dropping client %r: %s", name, error)
                continue
            arrays.append(array)
        return arrays
