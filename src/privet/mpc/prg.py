"""A seeded stream of uniform ring elements: AES-256 in counter mode.

The dealer and each party derive the same share stream from a 32-byte seed
they hold in common, so shares that are pure randomness never travel (the
seed-compression of SPDZ-style preprocessing, e.g. Keller, "MP-SPDZ", CCS
2020); only the last party's correcting shares are sent.
"""

from __future__ import annotations

import secrets
from typing import Final

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from privet.errors import PrivacyError
from privet.mpc.ring import RingArray

__all__ = ["SEED_BYTES", "Prg", "fresh_seed"]

SEED_BYTES: Final = 32


def fresh_seed() -> bytes:
    """32 bytes from the OS CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


class Prg:
    """Uniform ``uint64`` words from AES-256-CTR keyed by ``seed`` (counter from zero).

    Consecutive calls continue the keystream, so two holders of the same seed
    that ask for the same shapes in the same order get the same words.
    """

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise PrivacyError(f"seed must be {SEED_BYTES} bytes, got {seed!r:.80}")
        self._encryptor = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()

    def words(self, shape: tuple[int, ...]) -> RingArray:
        """A fresh array of uniform ``uint64`` of ``shape``."""
        count = int(np.prod(shape, dtype=np.int64))
        stream = self._encryptor.update(bytes(8 * count))
        words: RingArray = np.frombuffer(stream, dtype="<u8").astype(np.uint64).reshape(shape)
        return words
