"""GMP big integers through gmpy2, and the byte-level helpers the rest of privet.he shares.

gmpy2 ships no type stubs, so its integers are typed :data:`Mpz` (``Any``) here;
every value that leaves privet.he as a public attribute is a plain ``int``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final, TypeAlias

from privet.errors import PrivacyError

try:
    import gmpy2  # type: ignore[import-untyped]
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError("privet.he needs gmpy2: pip install 'privet[he]'") from error

__all__ = [
    "Mpz",
    "RandomBytes",
    "from_bytes",
    "gmpy2",
    "mpz",
    "random_below",
    "random_unit",
    "to_bytes",
]

#: A ``gmpy2.mpz`` (gmpy2 has no stubs).
Mpz: TypeAlias = Any
#: Where random bytes come from: ``os.urandom`` (the default everywhere), or a seeded
#: generator's ``bytes`` method in tests only.
RandomBytes: TypeAlias = Callable[[int], bytes]

mpz: Final = gmpy2.mpz
OS_RANDOM: Final[RandomBytes] = os.urandom


def to_bytes(value: int | Mpz, width: int) -> bytes:
    """``value`` as exactly ``width`` big-endian bytes (it must fit)."""
    return int(value).to_bytes(width, "big")


def from_bytes(data: bytes) -> Mpz:
    """The non-negative big-endian integer ``data`` spells."""
    return mpz(int.from_bytes(data, "big"))


def random_below(bound: int | Mpz, random_bytes: RandomBytes) -> Mpz:
    """A uniform integer in ``[0, bound)``, by rejection (fewer than 2 draws on average)."""
    bound = int(bound)
    if bound < 1:
        raise PrivacyError(f"bound must be >= 1, got {bound}")
    bits = bound.bit_length()
    size = (bits + 7) // 8
    excess = 8 * size - bits
    while True:
        candidate = int.from_bytes(random_bytes(size), "big") >> excess
        if candidate < bound:
            return mpz(candidate)


def random_unit(modulus: Mpz, random_bytes: RandomBytes) -> Mpz:
    """A uniform element of ``Z_modulus^*``: uniform in ``[1, modulus)`` and coprime to it."""
    while True:
        candidate = random_below(modulus, random_bytes)
        if candidate > 0 and gmpy2.gcd(candidate, modulus) == 1:
            return candidate
