"""Masks for secure aggregation, expanded from seeds by a cryptographic PRG.

In the protocol of Bonawitz et al. ("Practical Secure Aggregation for
Privacy-Preserving Machine Learning", CCS 2017, §4) each client ``u`` sends

    y_u = x_u + PRG(b_u) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv)   (mod 2^k)

where ``b_u`` is its self-mask seed and ``s_uv = s_vu`` the seed it agreed with
peer ``v``. Each pairwise mask is added by one party of the pair and
subtracted by the other, so the pairwise masks cancel in the sum over all
clients; SecAgg+ (Bell et al., "Secure Single-Server Aggregation with
(Poly)Logarithmic Overhead", CCS 2020) keeps the same masks on a sparse graph
of peers.

The PRG is AES-256 in counter mode keyed by the whole 32-byte seed, so a mask
is as hard to guess as the seed itself (a PRG seeded from a 32-bit fold of the
key would have only 2^32 possible masks). Keystream bytes are read as
little-endian 64-bit words and reduced modulo ``2^k`` by keeping their low
``k`` bits; because ``2^k`` divides ``2^64`` this reduction is exactly uniform,
with no modulo bias.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from privet.errors import PrivacyError

__all__ = [
    "MAX_MODULUS_BITS",
    "SEED_BYTES",
    "apply_masks",
    "expand_mask",
    "pairwise_masks",
]

#: Length in bytes of a mask seed: an AES-256 key.
SEED_BYTES = 32

#: Largest supported modulus exponent; values live in uint64.
MAX_MODULUS_BITS = 64

# A zero counter block is safe because every seed keys exactly one mask: a
# (key, counter) pair is never reused, which is all CTR mode requires. Seeds
# must therefore never be reused across rounds or vectors (derive a fresh one).
_NONCE = bytes(16)
_BLOCK_BYTES = 16
_WORD_BYTES = 8
# Keystream is produced in chunks so that the zero plaintext buffer stays small.
_CHUNK_WORDS = 1 << 16
_ZEROS = bytes(_CHUNK_WORDS * _WORD_BYTES)


def expand_mask(seed: bytes, length: int, modulus_bits: int) -> np.ndarray:
    """Expand a seed into ``length`` values uniform on ``Z_{2^k}``.

    Parameters
    ----------
    seed
        32 uniformly random bytes, used as the AES-256 key. Each seed must key
        one mask only (see the module notes on the fixed counter block).
    length
        Number of values, ``>= 0``.
    modulus_bits
        ``k`` in ``1..64``; values are in ``[0, 2^k)``.

    Returns
    -------
    numpy.ndarray
        A uint64 vector: value ``i`` is the little-endian 64-bit word at
        keystream bytes ``8i .. 8i+7`` of AES-256-CTR (counter block starting
        at zero), keeping its low ``k`` bits (Bonawitz et al. 2017, §4).
    """
    _check_seed(seed, "seed")
    _check_length(length)
    _check_modulus_bits(modulus_bits)
    # Two spare words absorb the (len(data) + 15)-byte output room that
    # update_into demands; CTR itself writes exactly len(data) bytes.
    spare = _BLOCK_BYTES // _WORD_BYTES
    words = np.empty(length + spare, dtype=np.uint64)
    out = words.view(np.uint8).data
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(_NONCE)).encryptor()
    zeros = memoryview(_ZEROS)
    total = length * _WORD_BYTES
    for start in range(0, total, len(_ZEROS)):
        size = min(len(_ZEROS), total - start)
        written = encryptor.update_into(zeros[:size], out[start : start + size + _BLOCK_BYTES])
        if written != size:  # pragma: no cover - CTR is a stream mode
            raise RuntimeError(f"AES-CTR wrote {written} bytes, expected {size}")
    mask: np.ndarray = words[:length]
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        mask.byteswap(inplace=True)
    if modulus_bits < MAX_MODULUS_BITS:
        mask &= np.uint64((1 << modulus_bits) - 1)
    return mask


def pairwise_masks(
    own_index: int,
    seeds_by_peer: Mapping[int, bytes],
    length: int,
    modulus_bits: int,
) -> np.ndarray:
    """The sum of one party's signed pairwise masks, modulo ``2^k``.

    Parameters
    ----------
    own_index
        This party's index.
    seeds_by_peer
        Peer index -> the 32-byte seed agreed with that peer (the same seed on
        both sides of a pair). The peer set may be sparse (SecAgg+).
    length, modulus_bits
        As in :func:`expand_mask`.

    Returns
    -------
    numpy.ndarray
        ``sum_j (+PRG(s_ij) if own_index < j else -PRG(s_ij)) mod 2^k`` as a
        uint64 vector — the sign convention of Bonawitz et al. 2017 (§4), under
        which the masks of all parties sum to zero modulo ``2^k``.
    """
    _check_index(own_index, "own_index")
    _check_length(length)
    _check_modulus_bits(modulus_bits)
    for peer, seed in seeds_by_peer.items():
        _check_index(peer, "peer index")
        if peer == own_index:
            raise PrivacyError(f"peer index must differ from own_index {own_index}, got {peer}")
        _check_seed(seed, f"seed for peer {peer}")
    total = np.zeros(length, dtype=np.uint64)
    for peer in sorted(seeds_by_peer):
        mask = expand_mask(seeds_by_peer[peer], length, modulus_bits)
        # uint64 arithmetic wraps modulo 2^64, a multiple of 2^k.
        if own_index < peer:
            total += mask
        else:
            total -= mask
    return _reduce(total, modulus_bits)


def apply_masks(
    values: np.ndarray,
    own_index: int,
    self_mask_seed: bytes,
    seeds_by_peer: Mapping[int, bytes],
    modulus_bits: int,
) -> np.ndarray:
    """Mask a client's encoded vector: ``x + PRG(b) + pairwise masks (mod 2^k)``.

    Parameters
    ----------
    values
        The client's input, a 1-D uint64 vector with entries in ``[0, 2^k)``
        (e.g. from :meth:`privet.secagg.quantize.Quantizer.encode`).
    own_index
        This party's index.
    self_mask_seed
        The 32-byte self-mask seed ``b_u`` (Bonawitz et al. 2017, §4), which
        protects the input if the party's pairwise seeds are later revealed
        for a dropout.
    seeds_by_peer, modulus_bits
        As in :func:`pairwise_masks`.

    Returns
    -------
    numpy.ndarray
        The masked uint64 vector ``y_u``.
    """
    _check_modulus_bits(modulus_bits)
    _check_seed(self_mask_seed, "self_mask_seed")
    if not isinstance(values, np.ndarray) or values.dtype != np.uint64 or values.ndim != 1:
        raise PrivacyError(f"values must be a 1-D uint64 numpy array, got {_describe(values)}")
    if modulus_bits < MAX_MODULUS_BITS and values.size and int(values.max()) >> modulus_bits:
        raise PrivacyError(
            f"values must be in [0, 2**{modulus_bits}), got maximum {int(values.max())}"
        )
    masked = pairwise_masks(own_index, seeds_by_peer, values.size, modulus_bits)
    masked += values
    masked += expand_mask(self_mask_seed, values.size, modulus_bits)
    return _reduce(masked, modulus_bits)


def _reduce(values: np.ndarray, modulus_bits: int) -> np.ndarray:
    if modulus_bits < MAX_MODULUS_BITS:
        values &= np.uint64((1 << modulus_bits) - 1)
    return values


def _describe(values: object) -> str:
    if isinstance(values, np.ndarray):
        return f"{values.ndim}-D {values.dtype} array"
    return type(values).__name__


def _check_seed(seed: object, name: str) -> None:
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        got = f"{len(seed)} bytes" if isinstance(seed, bytes) else type(seed).__name__
        raise PrivacyError(f"{name} must be {SEED_BYTES} bytes, got {got}")


def _check_length(length: object) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise PrivacyError(f"length must be an integer >= 0, got {length!r}")


def _check_index(index: object, name: str) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise PrivacyError(f"{name} must be an integer >= 0, got {index!r}")


def _check_modulus_bits(modulus_bits: object) -> None:
    if (
        isinstance(modulus_bits, bool)
        or not isinstance(modulus_bits, int)
        or not 1 <= modulus_bits <= MAX_MODULUS_BITS
    ):
        raise PrivacyError(
            f"modulus_bits must be an integer in [1, {MAX_MODULUS_BITS}], got {modulus_bits!r}"
        )
