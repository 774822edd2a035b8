"""Shamir secret sharing (Shamir 1979) over GF(2**521 - 1), checked against a slow oracle."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pytest
from scipy import stats

from privet.errors import PrivacyError
from privet.secagg.shamir import (
    MAX_SECRET_BYTES,
    PRIME,
    SHARE_BYTES,
    decode_share,
    encode_share,
    recover_secret,
    split_secret,
)


def oracle_coefficients(points: Sequence[tuple[int, int]]) -> list[int]:
    """Slow reference: solve the Vandermonde system V c = y over GF(p) by Gauss-Jordan elimination.

    A different algorithm from the library's Lagrange expansion; returns the
    coefficients, constant first, of the polynomial of degree < len(points).
    """
    k = len(points)
    rows = [[pow(x, j, PRIME) for j in range(k)] + [y % PRIME] for x, y in points]
    for col in range(k):
        pivot = next(r for r in range(col, k) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inverse = pow(rows[col][col], -1, PRIME)
        rows[col] = [value * inverse % PRIME for value in rows[col]]
        for r in range(k):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [
                    (a - factor * b) % PRIME for a, b in zip(rows[r], rows[col], strict=True)
                ]
    return [rows[r][k] for r in range(k)]


def evaluate(coefficients: Sequence[int], x: int) -> int:
    return sum(c * pow(x, j, PRIME) for j, c in enumerate(coefficients)) % PRIME


def random_secret(rng: np.random.Generator, length: int) -> bytes:
    return rng.bytes(length)


THRESHOLDS = [(1, 1), (1, 5), (2, 2), (2, 3), (3, 5), (5, 5), (7, 10), (10, 20), (20, 20)]


@pytest.mark.parametrize(("t", "n"), THRESHOLDS)
@pytest.mark.parametrize("length", [1, 16, 32, MAX_SECRET_BYTES])
def test_round_trip(t: int, n: int, length: int) -> None:
    rng = np.random.default_rng(1000 * t + n + length)
    for trial in range(5):
        secret = random_secret(rng, length)
        holders = [int(x) for x in rng.choice(np.arange(1, 10_000), size=n, replace=False)]
        # Alternate the OS CSPRNG (the real path) with a seeded Generator (simulation path).
        shares = split_secret(secret, t, holders, rng=None if trial % 2 else rng)
        assert list(shares) == holders
        assert all(0 <= y < PRIME for y in shares.values())
        assert recover_secret(shares, t, length) == secret


def test_leading_zero_bytes_survive() -> None:
    secret = bytes(31) + b"\x01"
    shares = split_secret(secret, 3, [1, 2, 3, 4])
    assert recover_secret(shares, 3, 32) == secret


def test_every_t_subset_recovers() -> None:
    rng = np.random.default_rng(1)
    secret = random_secret(rng, 32)
    holders = [1, 2, 3, 4, 5, 6]
    shares = split_secret(secret, 3, holders, rng=rng)
    for subset in itertools.combinations(holders, 3):
        assert recover_secret({x: shares[x] for x in subset}, 3, 32) == secret
    for size in (4, 5, 6):
        for larger in itertools.combinations(holders, size):
            assert recover_secret({x: shares[x] for x in larger}, 3, 32) == secret


@pytest.mark.parametrize(("t", "n"), [(1, 3), (2, 4), (4, 9), (12, 15)])
def test_shares_lie_on_one_polynomial_of_degree_t_minus_1_through_the_secret(
    t: int, n: int
) -> None:
    rng = np.random.default_rng(t * n)
    secret = random_secret(rng, 32)
    holders = list(range(3, 3 + 7 * n, 7))
    shares = split_secret(secret, t, holders, rng=rng)
    coefficients = oracle_coefficients([(x, shares[x]) for x in holders[:t]])
    assert coefficients[0] == int.from_bytes(secret, "big")
    assert all(evaluate(coefficients, x) == shares[x] for x in holders[t:])
    # Degree exactly t - 1 (the top coefficient is uniform, so 0 only with probability 1/p):
    # a degree-(t - 2) bug would let t - 1 shares recover the secret.
    assert coefficients[-1] != 0


@pytest.mark.parametrize("t", [1, 2, 3, 8, 25])
def test_recover_matches_the_oracle_on_random_polynomials(t: int) -> None:
    rng = np.random.default_rng(7 + t)
    for _ in range(5):
        secret = int.from_bytes(random_secret(rng, 32), "big")
        coefficients = [secret] + [
            int.from_bytes(rng.bytes(66), "big") % PRIME for _ in range(t - 1)
        ]
        # Holder points anywhere in the field, not only small client indices.
        xs = list({1 + int.from_bytes(rng.bytes(66), "big") % (PRIME - 1) for _ in range(t)})
        points = {x: evaluate(coefficients, x) for x in xs}
        expected = oracle_coefficients(list(points.items()))[0]
        assert expected == secret
        assert recover_secret(points, t, 32) == secret.to_bytes(32, "big")


@pytest.mark.parametrize("t", [2, 3, 6])
def test_t_minus_1_shares_are_consistent_with_any_other_secret(t: int) -> None:
    """Given t - 1 shares of secret A, a polynomial of degree t - 1 through them and (0, B) exists.

    Built with the oracle, its value at a new holder completes a t-subset from
    which the library recovers B: the t - 1 real shares do not rule B out.
    Interpolating the t - 1 shares alone (degree t - 2) does not give A either.
    """
    rng = np.random.default_rng(40 + t)
    secret_a, secret_b = random_secret(rng, 32), random_secret(rng, 32)
    holders = list(range(1, t + 2))
    shares = split_secret(secret_a, t, holders, rng=rng)
    known = [(x, shares[x]) for x in holders[: t - 1]]
    fake = oracle_coefficients([(0, int.from_bytes(secret_b, "big")), *known])
    new_holder = holders[-1]
    forged = dict(known) | {new_holder: evaluate(fake, new_holder)}
    assert recover_secret(forged, t, 32) == secret_b
    assert recover_secret({x: shares[x] for x in holders[:t]}, t, 32) == secret_a
    assert oracle_coefficients(known)[0] != int.from_bytes(secret_a, "big")


def _chi_square_top_bits(samples: np.ndarray, bins: int) -> float:
    counts = np.bincount(samples, minlength=bins)
    return float(stats.chisquare(counts).pvalue)


@pytest.mark.parametrize("secret", [bytes(32), b"\xff" * 32])
def test_t_minus_1_shares_are_jointly_uniform_seeded(secret: bytes) -> None:
    """Two shares of a 3-of-3 sharing: the top 2 bits of each, 16 joint cells, are uniform.

    A fixed seed makes this deterministic; the threshold p-value 1e-3 is the
    false-alarm rate for a correct implementation and a fresh seed. Fails if
    the coefficients come from too small a range or depend on the secret.
    """
    rng = np.random.default_rng(2024)
    cells = []
    for _ in range(3000):
        shares = split_secret(secret, 3, [1, 2, 3], rng=rng)
        cells.append(4 * (shares[1] >> 519) + (shares[2] >> 519))
    assert _chi_square_top_bits(np.array(cells), 16) > 1e-3


def test_one_share_is_uniform_with_the_os_csprng() -> None:
    """The real path (rng=None) cannot be seeded; a false-alarm rate of 1e-6 keeps it from flaking.

    Top 3 bits of one share of a 2-of-2 sharing of the all-zero secret, 8 cells.
    """
    cells = [split_secret(bytes(32), 2, [5, 9])[5] >> 518 for _ in range(3000)]
    assert _chi_square_top_bits(np.array(cells), 8) > 1e-6


def test_a_corrupted_share_does_not_return_the_secret() -> None:
    rng = np.random.default_rng(3)
    long_secret = random_secret(rng, MAX_SECRET_BYTES)
    shares = split_secret(long_secret, 3, [1, 2, 3, 4], rng=rng)
    for bad in (1, 2, 3):
        corrupted = {x: shares[x] for x in (1, 2, 3)} | {bad: (shares[bad] + 1) % PRIME}
        # With exactly t shares nothing can detect it; a 65-byte secret leaves no range check.
        assert recover_secret(corrupted, 3, MAX_SECRET_BYTES) != long_secret
    secret = random_secret(rng, 32)
    shares = split_secret(secret, 3, [1, 2, 3, 4], rng=rng)
    # A random corruption moves the recovered value uniformly over the field, out of 32 bytes
    # but for probability 2**-265. (A small one need not: shares[2] + 1 recovers secret - 3.)
    noise = int.from_bytes(rng.bytes(66), "big") % PRIME
    corrupted = {x: shares[x] for x in (1, 2, 3)} | {2: (shares[2] + noise) % PRIME}
    with pytest.raises(PrivacyError, match=r"recovered value must fit in length = 32 bytes"):
        recover_secret(corrupted, 3, 32)
    for bad in (1, 2, 3, 4):
        corrupted = dict(shares) | {bad: (shares[bad] + 1) % PRIME}
        with pytest.raises(PrivacyError, match=r"shares must lie on one polynomial of degree < 3"):
            recover_secret(corrupted, 3, 32)


def test_wrong_threshold_is_detected_with_extra_shares() -> None:
    shares = split_secret(b"k" * 32, 4, [1, 2, 3, 4, 5])
    with pytest.raises(PrivacyError, match=r"inconsistent share"):
        recover_secret(shares, 3, 32)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": 0}, r"threshold must be in \[1, 3\] \(the number of holders\), got 0"),
        ({"threshold": 4}, r"threshold must be in \[1, 3\] \(the number of holders\), got 4"),
        ({"threshold": True}, r"threshold must be an integer, got True"),
        ({"threshold": 2.0}, r"threshold must be an integer, got 2.0"),
        ({"holders": [1, 2, 2]}, r"holders must be distinct, got duplicates \[2\]"),
        ({"holders": [0, 1, 2]}, r"holders must be in \[1, 2\*\*521 - 2\] .*got 0"),
        ({"holders": [-1, 1, 2]}, r"holders must be in \[1, 2\*\*521 - 2\] .*got -1"),
        ({"holders": [PRIME, 1, 2]}, r"holders must be in \[1, 2\*\*521 - 2\]"),
        ({"holders": ["a", 1, 2]}, r"holders must be an integer, got 'a'"),
        ({"holders": []}, r"threshold must be in \[1, 0\]"),
        ({"secret": b""}, r"secret must be 1 to 65 bytes long, got 0 bytes"),
        ({"secret": bytes(66)}, r"secret must be 1 to 65 bytes long, got 66 bytes"),
        ({"secret": "abc"}, r"secret must be bytes, got str"),
        ({"rng": 7}, r"rng must be None or a numpy.random.Generator, got 7"),
    ],
)
def test_split_rejects_bad_input(kwargs: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {"secret": b"s" * 32, "threshold": 2, "holders": [1, 2, 3]}
    with pytest.raises(PrivacyError, match=match):
        split_secret(**(arguments | kwargs))  # type: ignore[arg-type]


def test_split_accepts_numpy_integers() -> None:
    shares = split_secret(b"s" * 32, np.int64(2), list(np.arange(1, 4)))  # type: ignore[arg-type]
    assert recover_secret(shares, 2, 32) == b"s" * 32


class DuplicateKeys(Mapping[int, int]):
    """A (broken) mapping that lists a key twice, as a hand-written peer message decoder might."""

    def __init__(self, items: list[tuple[int, int]]) -> None:
        self._items = items

    def __getitem__(self, key: int) -> int:
        return dict(self._items)[key]

    def __iter__(self) -> Iterator[int]:
        return iter(x for x, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)


def test_recover_rejects_bad_input() -> None:
    shares = split_secret(b"s" * 32, 3, [1, 2, 3, 4])
    two = {1: shares[1], 2: shares[2]}
    with pytest.raises(
        PrivacyError, match=r"at least the threshold 3 to recover the secret, got 2"
    ):
        recover_secret(two, 3, 32)
    with pytest.raises(PrivacyError, match=r"share holders must be in \[1, 2\*\*521 - 2\].*got 0"):
        recover_secret({0: 5, 1: shares[1], 2: shares[2]}, 3, 32)
    with pytest.raises(PrivacyError, match=r"share holders must be distinct, got duplicates \[1\]"):
        recover_secret(DuplicateKeys([(1, shares[1]), (1, 3), (2, shares[2])]), 3, 32)
    with pytest.raises(PrivacyError, match=r"share of holder 3 must be in \[0, 2\*\*521 - 1\)"):
        recover_secret(two | {3: PRIME}, 3, 32)
    with pytest.raises(
        PrivacyError, match=r"share of holder 3 must be in \[0, 2\*\*521 - 1\), got -1"
    ):
        recover_secret(two | {3: -1}, 3, 32)
    with pytest.raises(PrivacyError, match=r"share of holder 3 must be an integer, got '7'"):
        recover_secret(two | {3: "7"}, 3, 32)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"threshold must be >= 1, got 0"):
        recover_secret(shares, 0, 32)
    with pytest.raises(PrivacyError, match=r"length must be in \[1, 65\], got 0"):
        recover_secret(shares, 3, 0)
    with pytest.raises(PrivacyError, match=r"length must be in \[1, 65\], got 66"):
        recover_secret(shares, 3, 66)
    with pytest.raises(PrivacyError, match=r"shares must be a mapping of holder -> share"):
        recover_secret([(1, 2)], 1, 32)  # type: ignore[arg-type]


def test_share_encoding_round_trips() -> None:
    rng = np.random.default_rng(5)
    values = [0, 1, PRIME - 1] + [int.from_bytes(rng.bytes(66), "big") % PRIME for _ in range(50)]
    for value in values:
        data = encode_share(value)
        assert len(data) == SHARE_BYTES == 66
        assert decode_share(data) == value
    shares = split_secret(b"x" * 32, 2, [1, 2, 3])
    wire = {x: encode_share(y) for x, y in shares.items()}
    assert recover_secret({x: decode_share(b) for x, b in wire.items()}, 2, 32) == b"x" * 32


def test_share_encoding_rejects_bad_input() -> None:
    with pytest.raises(PrivacyError, match=r"share must be in \[0, 2\*\*521 - 1\)"):
        encode_share(PRIME)
    with pytest.raises(PrivacyError, match=r"share must be in \[0, 2\*\*521 - 1\), got -1"):
        encode_share(-1)
    with pytest.raises(PrivacyError, match=r"share must be an integer, got 1.5"):
        encode_share(1.5)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"share bytes must be 66 bytes long, got 65"):
        decode_share(bytes(65))
    with pytest.raises(PrivacyError, match=r"share bytes must be bytes, got str"):
        decode_share("00")  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"share must be in \[0, 2\*\*521 - 1\)"):
        decode_share(PRIME.to_bytes(66, "big"))
    with pytest.raises(PrivacyError, match=r"share must be in \[0, 2\*\*521 - 1\)"):
        decode_share(b"\xff" * 66)


def test_prime_is_the_mersenne_prime_2_521_minus_1() -> None:
    """Miller-Rabin with the first 20 primes as bases (deterministic far beyond, probabilistic
    here with error < 4**-20); guards an accidental edit of the constant."""
    assert PRIME == 2**521 - 1
    d, s = PRIME - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71):
        x = pow(a, d, PRIME)
        if x in (1, PRIME - 1):
            continue
        for _ in range(s - 1):
            x = x * x % PRIME
            if x == PRIME - 1:
                break
        else:
            pytest.fail(f"{a} witnesses that PRIME is composite")
