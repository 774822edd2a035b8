"""The client's side of Paillier-encrypted aggregation: task bytes in, one ciphertext out.

:class:`HeClient` decodes an ``fl.he_fit`` task, refuses a key other than the
key holder's pinned one, trains, forms the contribution a SecAgg client would
(:func:`contribution_values`), and encrypts it packed under the key holder's key
(:func:`privet.he.encrypt_packed`; Bianchi, Piva and Barni, IEEE TIFS 2010).
The protocol, the encoding and the trust model are in
:mod:`privet.fl.he_aggregation`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.fl.he_messages import HeFitTask, decode_he_fit_task
from privet.fl.secure_client import contribution_vector
from privet.fl.types import Client, FitResult
from privet.he import (
    DjnRandomness,
    NaiveRandomness,
    PaillierPublicKey,
    Randomness,
    encode_packed_array,
    encrypt_packed,
)

__all__ = ["ClientRandomness", "HeClient", "contribution_values", "signed_residues"]


class ClientRandomness(Enum):
    """Where a client's fresh Paillier randomness comes from (:mod:`privet.he.randomness`)."""

    DJN = "djn"  # h_s^a, short a (DJN 2010): fast, one table per key; an extra assumption
    NAIVE = "naive"  # r^n (Paillier 1999): DCRA only; one full exponentiation per ciphertext


def signed_residues(encoded: NDArray[np.uint64], modulus_bits: int) -> NDArray[np.int64]:
    """Values of ``Z_{2^k}`` as signed integers in ``[-2^(k-1), 2^(k-1))``."""
    shift = np.uint64(64 - modulus_bits)
    # Move bit k-1 to the sign bit, then shift back arithmetically: sign extension.
    signed: NDArray[np.int64] = (encoded << shift).view(np.int64) >> shift.astype(np.int64)
    return signed


def contribution_values(
    result: FitResult, task: HeFitTask, rng: np.random.Generator | None = None
) -> NDArray[Any]:
    """What a client encrypts: its contribution vector, checked against the bound, or with
    distributed noise the mechanism's noised integers (signed)."""
    contribution = task.contribution
    vector = contribution_vector(
        result.parameters, task.parameters, result.num_examples, contribution, task.max_weight
    )
    noise = contribution.distributed_noise
    if noise is not None:
        return signed_residues(noise.encode(vector, rng), noise.modulus_bits)
    bound = task.encoding.bound
    largest = float(np.max(np.abs(vector))) if vector.size else 0.0
    if largest > bound:
        raise PrivacyError(
            f"contribution values must be within the declared bound |x| <= {bound!r}, got "
            f"|x| = {largest!r}: refused, never wrapped (clip the update or declare a larger "
            "bound)"
        )
    return vector


class HeClient:
    """A federated client's side of an encrypted round: task bytes in, ciphertext bytes out.

    Parameters
    ----------
    client
        The federated client that trains.
    key_fingerprint
        The key holder's key fingerprint, obtained out of band: a task under
        any other key is refused (the server could otherwise substitute its
        own key and read the update). ``None`` trusts the task's key.
    randomness
        Source of Paillier randomness (DJN by default).
    rng
        ``None`` (real use): randomness and noise from the OS CSPRNG. A seeded
        generator is for simulation and tests only.
    insecure_for_tests
        Accept a 1024- to 2047-bit key (tests only).
    """

    def __init__(
        self,
        client: Client,
        *,
        key_fingerprint: str | None = None,
        randomness: ClientRandomness = ClientRandomness.DJN,
        rng: np.random.Generator | None = None,
        insecure_for_tests: bool = False,
    ) -> None:
        if not isinstance(randomness, ClientRandomness):
            raise PrivacyError(f"randomness must be a ClientRandomness, got {randomness!r}")
        self._client = client
        self._fingerprint = key_fingerprint
        self._kind = randomness
        self._rng = rng
        self._insecure = insecure_for_tests
        self._randomness: Randomness | None = None  # kept across rounds: DJN's table is costly

    def _source(self, key: PaillierPublicKey) -> Randomness:
        if self._randomness is None or self._randomness.public_key != key:
            draw: Callable[[int], bytes] = os.urandom if self._rng is None else self._rng.bytes
            if self._kind is ClientRandomness.DJN:
                self._randomness = DjnRandomness(key, random_bytes=draw)
            else:
                self._randomness = NaiveRandomness(key, random_bytes=draw)
        return self._randomness

    def respond(self, data: bytes) -> bytes:
        """Decode the task, train, encrypt the contribution packed, encode it."""
        task = decode_he_fit_task(data, insecure_for_tests=self._insecure)
        key = task.public_key
        if self._fingerprint is not None and key.fingerprint != self._fingerprint:
            raise PrivacyError(
                f"the task's public key must be the key holder's ({self._fingerprint[:16]}...), "
                f"got {key.fingerprint[:16]}...: refused, nothing was encrypted under it"
            )
        result = self._client.fit(task.parameters, task.instructions)
        values = contribution_values(result, task, self._rng)
        encoding = task.encoding
        encrypted = encrypt_packed(
            key,
            values,
            bound=encoding.bound,
            frac_bits=encoding.frac_bits,
            headroom_bits=encoding.headroom_bits,
            randomness=self._source(key),
        )
        return encode_packed_array(encrypted)
