"""Mask expansion and pairwise masks against a slow oracle, cancellation and uniformity.

References
----------
* AES-CTR is defined in NIST SP 800-38A §6.5: keystream block ``i`` is
  ``AES_K(T_i)`` with ``T_i`` the initial counter block plus ``i`` as a
  128-bit big-endian integer. The naive oracle below builds the keystream that
  way from single-block AES-ECB calls, independently of the CTR fast path.
* Known answer: the first 32 keystream bytes of AES-256-CTR with the all-zero
  key and all-zero counter block are
  ``dc95c078a2408989ad48a21492842087 530f8afbc74536b9a963b4f1c4cb738b``
  (OpenSSL 3: ``head -c32 /dev/zero | openssl enc -aes-256-ctr -K 00..00
  -iv 00..00 | xxd -p``; the first block is the well-known AES-256 encryption
  of the zero block under the zero key).
* Sign convention and cancellation: Bonawitz et al., CCS 2017, §4.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from scipy import stats

from privet.errors import PrivacyError
from privet.secagg.masking import apply_masks, expand_mask, pairwise_masks

MODULI = [1, 16, 32, 63, 64]
CHUNK_WORDS = 1 << 16  # the fast path's chunk size; lengths above it span chunks
ALPHA = 1e-3  # false-alarm rate of each chi-square test


def naive_keystream(seed: bytes, n_bytes: int) -> bytes:
    ecb = Cipher(algorithms.AES(seed), modes.ECB()).encryptor()
    blocks = [ecb.update(i.to_bytes(16, "big")) for i in range(math.ceil(n_bytes / 16))]
    return b"".join(blocks)[:n_bytes]


def naive_expand(seed: bytes, length: int, k: int) -> list[int]:
    stream = naive_keystream(seed, 8 * length)
    return [int.from_bytes(stream[8 * i : 8 * i + 8], "little") % 2**k for i in range(length)]


def naive_pairwise(own: int, seeds: dict[int, bytes], length: int, k: int) -> list[int]:
    total = [0] * length
    for peer, seed in seeds.items():
        mask = naive_expand(seed, length, k)
        sign = 1 if own < peer else -1
        for i in range(length):
            total[i] = (total[i] + sign * mask[i]) % 2**k
    return total


def symmetric_seeds(n: int, rng: np.random.Generator) -> dict[int, dict[int, bytes]]:
    seeds: dict[int, dict[int, bytes]] = {i: {} for i in range(n)}
    for i in range(n):
        for j in range(i + 1, n):
            seeds[i][j] = seeds[j][i] = rng.bytes(32)
    return seeds


def test_known_answer_aes256_ctr_zero_key() -> None:
    stream = bytes.fromhex("dc95c078a2408989ad48a21492842087530f8afbc74536b9a963b4f1c4cb738b")
    expected = [int.from_bytes(stream[i : i + 8], "little") for i in range(0, 32, 8)]
    assert expand_mask(bytes(32), 4, 64).tolist() == expected
    assert expand_mask(bytes(32), 4, 16).tolist() == [v % 2**16 for v in expected]


@pytest.mark.parametrize("k", MODULI)
@pytest.mark.parametrize("length", [0, 1, 7, 1007, CHUNK_WORDS + 3])
def test_expand_mask_matches_naive(k: int, length: int) -> None:
    seed = np.random.default_rng(length).bytes(32)
    mask = expand_mask(seed, length, k)
    assert mask.dtype == np.uint64
    assert mask.shape == (length,)
    assert mask.tolist() == naive_expand(seed, length, k)


def test_expand_mask_prefix_consistent_and_seed_sensitive() -> None:
    seed = bytes(range(32))
    long = expand_mask(seed, CHUNK_WORDS * 2 + 5, 64)
    np.testing.assert_array_equal(expand_mask(seed, 10, 64), long[:10])
    other = expand_mask(bytes(range(1, 33)), 10, 64)
    assert not np.array_equal(other, long[:10])


@pytest.mark.parametrize("k", MODULI)
def test_pairwise_masks_match_naive(k: int) -> None:
    rng = np.random.default_rng(7)
    seeds = {peer: rng.bytes(32) for peer in (0, 2, 5, 9)}  # own index 3: two below, two above
    fast = pairwise_masks(3, seeds, 257, k)
    assert fast.dtype == np.uint64
    assert fast.tolist() == naive_pairwise(3, seeds, 257, k)


@pytest.mark.parametrize("k", MODULI)
def test_pairwise_masks_cancel_in_the_sum(k: int) -> None:
    n, length = 6, 1000
    seeds = symmetric_seeds(n, np.random.default_rng(11))
    masks = [pairwise_masks(i, seeds[i], length, k) for i in range(n)]
    total = sum(int(m[0]) for m in masks) % 2**k  # Python-int check of one coordinate
    assert total == 0
    summed = np.zeros(length, dtype=np.uint64)
    for mask in masks:
        summed += mask
    if k < 64:
        summed &= np.uint64(2**k - 1)
    np.testing.assert_array_equal(summed, np.zeros(length, dtype=np.uint64))
    # Each single mask is far from zero: the cancellation is not vacuous.
    assert all(np.count_nonzero(m) > length // 4 for m in masks)


def test_sparse_graph_masks_cancel_and_asymmetric_seeds_do_not() -> None:
    n, length, k = 8, 500, 32
    rng = np.random.default_rng(12)
    # SecAgg+-style ring: each party shares seeds only with its two neighbours.
    seeds: dict[int, dict[int, bytes]] = {i: {} for i in range(n)}
    for i in range(n):
        j = (i + 1) % n
        seeds[i][j] = seeds[j][i] = rng.bytes(32)
    summed = sum(pairwise_masks(i, seeds[i], length, k) for i in range(n)) & np.uint64(2**k - 1)
    np.testing.assert_array_equal(summed, np.zeros(length, dtype=np.uint64))
    seeds[0][1] = rng.bytes(32)  # party 0 now disagrees with party 1
    broken = sum(pairwise_masks(i, seeds[i], length, k) for i in range(n)) & np.uint64(2**k - 1)
    assert np.count_nonzero(broken) > length // 2


def test_apply_masks_matches_naive_and_sums_to_inputs_plus_self_masks() -> None:
    n, length, k = 4, 300, 20
    rng = np.random.default_rng(13)
    seeds = symmetric_seeds(n, rng)
    self_seeds = [rng.bytes(32) for _ in range(n)]
    inputs = [rng.integers(0, 2**k, size=length, dtype=np.uint64) for _ in range(n)]
    masked = [apply_masks(inputs[i], i, self_seeds[i], seeds[i], k) for i in range(n)]
    naive_self = naive_expand(self_seeds[1], length, k)
    naive_pair = naive_pairwise(1, seeds[1], length, k)
    triples = zip(inputs[1], naive_self, naive_pair, strict=True)
    expected = [(int(x) + s + p) % 2**k for x, s, p in triples]
    assert masked[1].tolist() == expected
    total = [sum(int(m[i]) for m in masked) % 2**k for i in range(length)]
    unmasked = [
        (total[i] - sum(int(expand_mask(b, length, k)[i]) for b in self_seeds)) % 2**k
        for i in range(length)
    ]
    assert unmasked == [sum(int(x[i]) for x in inputs) % 2**k for i in range(length)]


def chi_square_pvalue(values: np.ndarray, bins: int) -> float:
    counts = np.bincount(values.astype(np.int64), minlength=bins)
    assert counts.size == bins
    return float(stats.chisquare(counts).pvalue)


@pytest.mark.parametrize("k", MODULI)
def test_expand_mask_low_and_top_bits_look_uniform(k: int) -> None:
    # Seed (AES key) fixed at bytes(range(32)) for reproducibility; the
    # keystream is cryptographic, so each test falsely fails with prob. 1e-3.
    mask = expand_mask(bytes(range(32)), 256 * 400, k)
    bits = min(k, 8)
    low = mask & np.uint64(2**bits - 1)
    top = mask >> np.uint64(k - bits)
    assert chi_square_pvalue(low, 2**bits) > ALPHA
    assert chi_square_pvalue(top, 2**bits) > ALPHA


@pytest.mark.parametrize("k", [16, 64])
def test_masked_constant_vector_looks_uniform(k: int) -> None:
    # A constant (maximally structured) input; seeds fixed via default_rng(14).
    rng = np.random.default_rng(14)
    seeds = {1: rng.bytes(32), 2: rng.bytes(32)}
    values = np.full(256 * 400, 12345, dtype=np.uint64)
    masked = apply_masks(values, 0, rng.bytes(32), seeds, k)
    assert chi_square_pvalue(masked & np.uint64(255), 256) > ALPHA
    assert chi_square_pvalue(masked >> np.uint64(k - 8), 256) > ALPHA
    # The test can fail: the unmasked input is far from uniform.
    assert chi_square_pvalue(values & np.uint64(255), 256) < ALPHA


def test_bad_seed() -> None:
    with pytest.raises(PrivacyError, match=r"^seed must be 32 bytes, got 31 bytes$"):
        expand_mask(bytes(31), 4, 32)
    with pytest.raises(PrivacyError, match=r"^seed must be 32 bytes, got str$"):
        expand_mask("x" * 32, 4, 32)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"^seed for peer 4 must be 32 bytes, got 16 bytes$"):
        pairwise_masks(0, {4: bytes(16)}, 4, 32)
    with pytest.raises(PrivacyError, match=r"^self_mask_seed must be 32 bytes, got 33 bytes$"):
        apply_masks(np.zeros(4, dtype=np.uint64), 0, bytes(33), {}, 32)


@pytest.mark.parametrize("k", [0, 65, -1, True, 3.0])
def test_bad_modulus_bits(k: object) -> None:
    message = rf"^modulus_bits must be an integer in \[1, 64\], got {k!r}$"
    with pytest.raises(PrivacyError, match=message):
        expand_mask(bytes(32), 4, k)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=message):
        pairwise_masks(0, {}, 4, k)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=message):
        apply_masks(np.zeros(4, dtype=np.uint64), 0, bytes(32), {}, k)  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [-1, 2.0, True])
def test_bad_length(length: object) -> None:
    message = rf"^length must be an integer >= 0, got {length!r}$"
    with pytest.raises(PrivacyError, match=message):
        expand_mask(bytes(32), length, 32)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=message):
        pairwise_masks(0, {}, length, 32)  # type: ignore[arg-type]


def test_bad_indices() -> None:
    with pytest.raises(PrivacyError, match=r"^own_index must be an integer >= 0, got -1$"):
        pairwise_masks(-1, {}, 4, 32)
    with pytest.raises(PrivacyError, match=r"^peer index must be an integer >= 0, got '2'$"):
        pairwise_masks(0, {"2": bytes(32)}, 4, 32)  # type: ignore[dict-item]
    with pytest.raises(PrivacyError, match=r"^peer index must differ from own_index 3, got 3$"):
        pairwise_masks(3, {1: bytes(32), 3: bytes(32)}, 4, 32)


def test_bad_values_for_apply_masks() -> None:
    with pytest.raises(
        PrivacyError, match=r"^values must be a 1-D uint64 numpy array, got 1-D float64 array$"
    ):
        apply_masks(np.zeros(4), 0, bytes(32), {}, 32)
    with pytest.raises(PrivacyError, match=r"^values must be a 1-D uint64 numpy array, got list$"):
        apply_masks([0, 1], 0, bytes(32), {}, 32)  # type: ignore[arg-type]
    with pytest.raises(
        PrivacyError, match=r"^values must be a 1-D uint64 numpy array, got 2-D uint64 array$"
    ):
        apply_masks(np.zeros((2, 2), dtype=np.uint64), 0, bytes(32), {}, 32)
    with pytest.raises(PrivacyError, match=r"^values must be in \[0, 2\*\*8\), got maximum 256$"):
        apply_masks(np.array([1, 256], dtype=np.uint64), 0, bytes(32), {}, 8)
