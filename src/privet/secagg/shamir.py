"""Shamir t-of-n secret sharing over the prime field GF(2**521 - 1).

A secret ``s`` is the constant term of a random polynomial ``f`` of degree
``t - 1``; holder ``x`` receives ``f(x)``. Any ``t`` shares determine ``f`` by
Lagrange interpolation, while any ``t - 1`` shares are uniformly distributed
whatever the secret (Shamir 1979). Secure aggregation (Bonawitz et al. 2017,
"Practical Secure Aggregation for Privacy-Preserving Machine Learning", CCS;
Bell et al. 2020, SecAgg+) shares each client's mask seed and its X25519
mask-agreement private key this way, so the server can remove the masks of
clients that drop out, but never learns both secrets of one client.

The field is GF(p) with the Mersenne prime ``p = 2**521 - 1`` (the base field of
NIST P-521). It is chosen so that a whole 32-byte secret — a seed or an X25519
private key, both uniform over ``2**256`` values — is one field element: with
``2**255 - 19`` a quarter of such secrets would not fit, and splitting a secret
into several elements would multiply the shares. Any secret of at most
:data:`MAX_SECRET_BYTES` = 65 bytes (520 bits < 521) fits; a share is encoded in
:data:`SHARE_BYTES` = 66 bytes.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from privet.errors import PrivacyError

__all__ = [
    "MAX_SECRET_BYTES",
    "PRIME",
    "SHARE_BYTES",
    "decode_share",
    "encode_share",
    "recover_secret",
    "split_secret",
]

PRIME = 2**521 - 1
"""The field modulus: the Mersenne prime 2**521 - 1."""

MAX_SECRET_BYTES = 65
"""The longest secret that is one field element: 65 bytes = 520 bits < 521."""

SHARE_BYTES = 66
"""Bytes of an encoded share: ceil(521 / 8)."""

_SHARE_BITS = PRIME.bit_length()


def _check_int(name: str, value: object) -> int:
    # bool is an int subclass; True as a holder id or threshold is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise PrivacyError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _check_threshold(threshold: object, count: int) -> int:
    t = _check_int("threshold", threshold)
    if not 1 <= t <= count:
        raise PrivacyError(f"threshold must be in [1, {count}] (the number of holders), got {t}")
    return t


def _check_points(points: Sequence[object], name: str) -> list[int]:
    xs = [_check_int(name, x) for x in points]
    for x in xs:
        if not 1 <= x < PRIME:
            raise PrivacyError(
                f"{name} must be in [1, 2**521 - 2] (x = 0 is where the secret lies), got {x}"
            )
    if len(set(xs)) != len(xs):
        duplicates = sorted(x for x, count in Counter(xs).items() if count > 1)
        raise PrivacyError(f"{name} must be distinct, got duplicates {duplicates}")
    return xs


def _random_element(rng: np.random.Generator | None) -> int:
    if rng is None:
        return secrets.randbelow(PRIME)
    # Rejection sampling: a 521-bit draw is < p except for the single value p itself.
    while True:
        value = int.from_bytes(rng.bytes(SHARE_BYTES), "big") >> (8 * SHARE_BYTES - _SHARE_BITS)
        if value < PRIME:
            return value


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    result = 0
    for coefficient in reversed(coefficients):
        result = (result * x + coefficient) % PRIME
    return result


def _interpolate(points: Sequence[tuple[int, int]]) -> list[int]:
    """Coefficients (constant first) of the polynomial of degree < len(points) through them.

    Lagrange form, expanded in O(t**2): f = sum_i y_i / m_i'(x_i) * m(z) / (z - x_i) with
    m(z) = prod_j (z - x_j), each quotient by synthetic division.
    """
    master = [1]
    for xj, _ in points:
        # master *= (z - xj)
        master = [
            ((master[k - 1] if k > 0 else 0) - xj * (master[k] if k < len(master) else 0)) % PRIME
            for k in range(len(master) + 1)
        ]
    degree = len(points)
    coefficients = [0] * degree
    for i, (xi, yi) in enumerate(points):
        quotient = [0] * degree
        quotient[degree - 1] = master[degree]
        for k in range(degree - 1, 0, -1):
            quotient[k - 1] = (master[k] + xi * quotient[k]) % PRIME
        denominator = 1
        for j, (xj, _) in enumerate(points):
            if j != i:
                denominator = denominator * (xi - xj) % PRIME
        scale = yi * pow(denominator, -1, PRIME) % PRIME
        for k in range(degree):
            coefficients[k] = (coefficients[k] + scale * quotient[k]) % PRIME
    return coefficients


def split_secret(
    secret: bytes,
    threshold: int,
    holders: Sequence[int],
    rng: np.random.Generator | None = None,
) -> dict[int, int]:
    """Split ``secret`` into shares, any ``threshold`` of which recover it.

    Parameters
    ----------
    secret
        1 to :data:`MAX_SECRET_BYTES` bytes, read as a big-endian integer.
    threshold
        ``t``: the number of shares needed, ``1 <= t <= len(holders)``. Fewer
        shares reveal nothing about the secret (Shamir 1979).
    holders
        Distinct field points in ``[1, p - 1]``, one per holder (in secure
        aggregation, the clients' 1-based indices).
    rng
        ``None`` (default) draws the polynomial's coefficients from the OS
        CSPRNG (:func:`secrets.randbelow`); that is the only choice for real
        use. A seeded :class:`numpy.random.Generator` makes shares
        reproducible for simulation and tests — and recoverable by anyone who
        knows the seed.

    Returns
    -------
    dict[int, int]
        Holder point -> share value in ``[0, p)``, in the order of ``holders``.
    """
    if not isinstance(secret, bytes):
        raise PrivacyError(f"secret must be bytes, got {type(secret).__name__}")
    if not 1 <= len(secret) <= MAX_SECRET_BYTES:
        raise PrivacyError(
            f"secret must be 1 to {MAX_SECRET_BYTES} bytes long, got {len(secret)} bytes"
        )
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise PrivacyError(f"rng must be None or a numpy.random.Generator, got {rng!r}")
    xs = _check_points(list(holders), "holders")
    t = _check_threshold(threshold, len(xs))
    # The top coefficient may be 0: uniform over all polynomials of degree <= t - 1 is what
    # makes every (t - 1)-subset of shares uniform.
    coefficients = [int.from_bytes(secret, "big")] + [_random_element(rng) for _ in range(t - 1)]
    return {x: _evaluate(coefficients, x) for x in xs}


def recover_secret(shares: Mapping[int, int], threshold: int, length: int) -> bytes:
    """Recover a secret from at least ``threshold`` shares by Lagrange interpolation at 0.

    With more than ``threshold`` shares, the first ``threshold`` (by holder
    point) fix the polynomial and every other share is checked against it, so a
    corrupted share among them is detected rather than silently used. With
    exactly ``threshold`` shares a corrupted one cannot be detected and yields
    a wrong value; it is refused when it does not fit in ``length`` bytes,
    which a random corruption fails to do but with probability
    ``2**(8 * length - 521)`` (a small one, e.g. ``+1``, may shift the secret
    by a small amount and pass).

    Parameters
    ----------
    shares
        Holder point -> share value, as :func:`split_secret` returned them.
    threshold
        The ``t`` the secret was split with.
    length
        The secret's length in bytes (restores leading zero bytes).

    Returns
    -------
    bytes
        The secret, ``length`` bytes.

    Raises
    ------
    PrivacyError
        Fewer than ``threshold`` shares; a holder point that is 0, out of the
        field or repeated; a share value out of ``[0, p)``; inconsistent shares;
        or a recovered value that does not fit in ``length`` bytes.
    """
    if not isinstance(shares, Mapping):
        raise PrivacyError(f"shares must be a mapping of holder -> share, got {shares!r}")
    length = _check_int("length", length)
    if not 1 <= length <= MAX_SECRET_BYTES:
        raise PrivacyError(f"length must be in [1, {MAX_SECRET_BYTES}], got {length}")
    t = _check_int("threshold", threshold)
    if t < 1:
        raise PrivacyError(f"threshold must be >= 1, got {t}")
    if len(shares) < t:
        raise PrivacyError(
            f"shares must number at least the threshold {t} to recover the secret, "
            f"got {len(shares)}"
        )
    xs = _check_points(list(shares.keys()), "share holders")
    points = []
    for x, y in zip(xs, shares.values(), strict=True):
        value = _check_int(f"share of holder {x}", y)
        if not 0 <= value < PRIME:
            raise PrivacyError(f"share of holder {x} must be in [0, 2**521 - 1), got {value}")
        points.append((x, value))
    points.sort()
    polynomial = _interpolate(points[:t])
    for x, y in points[t:]:
        if _evaluate(polynomial, x) != y:
            raise PrivacyError(
                f"shares must lie on one polynomial of degree < {t}, got an inconsistent "
                f"share at holder {x}: a share is corrupted or the threshold is wrong"
            )
    value = polynomial[0]
    if value.bit_length() > 8 * length:
        raise PrivacyError(
            f"recovered value must fit in length = {length} bytes, got {value.bit_length()} "
            "bits: a share is corrupted or the threshold is wrong"
        )
    return value.to_bytes(length, "big")


def encode_share(value: int) -> bytes:
    """Encode a share value as :data:`SHARE_BYTES` big-endian bytes."""
    value = _check_int("share", value)
    if not 0 <= value < PRIME:
        raise PrivacyError(f"share must be in [0, 2**521 - 1), got {value}")
    return value.to_bytes(SHARE_BYTES, "big")


def decode_share(data: bytes) -> int:
    """Decode :func:`encode_share`'s bytes, refusing a wrong length or a value out of the field."""
    if not isinstance(data, bytes | bytearray):
        raise PrivacyError(f"share bytes must be bytes, got {type(data).__name__}")
    if len(data) != SHARE_BYTES:
        raise PrivacyError(f"share bytes must be {SHARE_BYTES} bytes long, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= PRIME:
        raise PrivacyError(f"share must be in [0, 2**521 - 1), got {value}")
    return value
