"""CKKS parameters chosen from what the computation needs, at 128-bit security.

A CKKS context is a ring degree ``N`` and a chain of primes whose product is the
ciphertext modulus ``Q``. Each multiplication consumes one prime of the chain
(the rescale), so the chain needs one prime per level of multiplicative depth,
each about as large as the scale ``2^scale_bits``; the first prime must also hold
the integer part of the result, and a special prime as large as the first makes
key switching (relinearization, rotations) lose no precision. The total modulus
``log2 Q`` then fixes the smallest ``N`` that is still 128-bit secure.

Security bounds are those of the Homomorphic Encryption Standard (Albrecht et
al. 2018, Table 1: uniform ternary secret, classical 128-bit security), the same
table Microsoft SEAL enforces by default, so SEAL refuses a chain these
functions would not choose.

Precision follows a noise model measured on SEAL through TenSEAL (fresh encryption
plus one rescale per level, operands of magnitude at most 1): the error of a result
at depth ``d`` is below ``2^-(scale_bits - noise_bits(N, d))`` with
``noise_bits(N, d) = ceil(log2(N) / 2) + 15 + ceil(log2(d + 1))``; the tests
check the bound on every ring size. Errors grow in proportion to the magnitude of
the operands, so values are best scaled to about 1 before encryption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from privet.errors import PrivacyError

__all__ = [
    "MAX_MODULUS_BITS",
    "MAX_PRIME_BITS",
    "MAX_SLOTS",
    "CkksParameters",
    "choose_parameters",
    "noise_bits",
]

#: Largest ``log2 Q`` per ring degree for 128-bit classical security with a ternary secret
#: (HE Standard, Albrecht et al. 2018, Table 1; SEAL's ``CoeffModulus::MaxBitCount``).
MAX_MODULUS_BITS: Final[dict[int, int]] = {
    1024: 27,
    2048: 54,
    4096: 109,
    8192: 218,
    16384: 438,
    32768: 881,
}
#: SEAL's largest prime in a coefficient modulus chain.
MAX_PRIME_BITS: Final = 60
#: Below this, SEAL may not find enough primes congruent to 1 mod 2N of that size, and
#: rescaling noise leaves no precision worth having.
MIN_SCALE_BITS: Final = 20
#: A vector longer than the largest ring's slots is split over several ciphertexts
#: (TenSEAL does it), so length never asks for more than the largest ring.
MAX_SLOTS: Final = max(MAX_MODULUS_BITS) // 2


def noise_bits(poly_modulus_degree: int, depth: int) -> int:
    """Bits of the scale that CKKS noise eats by multiplicative depth ``depth`` (see module)."""
    return math.ceil(math.log2(poly_modulus_degree) / 2) + 15 + math.ceil(math.log2(depth + 1))


@dataclass(frozen=True)
class CkksParameters:
    """A CKKS parameter set and what it was chosen for.

    Attributes
    ----------
    poly_modulus_degree
        Ring degree ``N``; a ciphertext holds ``N / 2`` real slots.
    coeff_mod_bit_sizes
        Bit sizes of the prime chain: the first prime, one per level, the special prime.
    scale_bits
        ``log2`` of the encoding scale.
    depth
        Multiplications in sequence the chain allows.
    precision_bits
        Result error below ``2^-precision_bits`` for operands of magnitude at most 1.
    integer_bits
        Results are below ``2^integer_bits`` in magnitude.
    length
        Values per vector asked for (at most :attr:`slots`; longer vectors are split
        over several ciphertexts by TenSEAL).
    """

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int
    depth: int
    precision_bits: int
    integer_bits: int
    length: int

    @property
    def slots(self) -> int:
        """Real values per ciphertext, ``N / 2``."""
        return self.poly_modulus_degree // 2

    @property
    def modulus_bits(self) -> int:
        """``log2 Q`` including the special prime, the figure the security bound caps."""
        return sum(self.coeff_mod_bit_sizes)

    @property
    def security_bits(self) -> int:
        """The classical security level the chain satisfies (HE Standard table)."""
        return 128

    def explain(self) -> str:
        """Why each number is what it is, in plain sentences."""
        n = self.poly_modulus_degree
        first = self.coeff_mod_bit_sizes[0]
        lost = noise_bits(n, self.depth)
        return "\n".join(
            [
                f"scale 2^{self.scale_bits}: {self.precision_bits} bits of precision wanted plus "
                f"{lost} bits CKKS noise takes at N = {n} and depth {self.depth}.",
                f"chain {list(self.coeff_mod_bit_sizes)}: a first prime of {first} bits "
                f"(the scale plus {self.integer_bits} integer bits and a sign bit), "
                f"{self.depth} primes of {self.scale_bits} bits (one rescale per "
                f"multiplication), and a special prime of {self.coeff_mod_bit_sizes[-1]} bits "
                "for key switching.",
                f"N = {n}: the smallest ring degree whose 128-bit-secure modulus budget "
                f"({MAX_MODULUS_BITS[n]} bits, HE Standard) holds the chain's "
                f"{self.modulus_bits} bits and whose {self.slots} slots hold "
                f"{self.length} values per ciphertext.",
            ]
        )


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PrivacyError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return value


def choose_parameters(
    depth: int, *, precision_bits: int = 20, integer_bits: int = 8, length: int = 1
) -> CkksParameters:
    """The smallest 128-bit-secure CKKS parameters for a computation.

    Parameters
    ----------
    depth
        Multiplications in sequence (a plaintext weight times an encrypted value
        counts as one, as does an encrypted product).
    precision_bits
        Wanted bits after the binary point in the result (for operands of magnitude
        at most 1; see the module's noise model).
    integer_bits
        Results and intermediates stay below ``2^integer_bits`` in magnitude.
    length
        Values per vector; one ciphertext holds up to ``N / 2``.

    Returns
    -------
    CkksParameters
        The parameters; :meth:`CkksParameters.explain` says why.

    Raises
    ------
    PrivacyError
        If no ring degree up to 32768 holds the chain at 128-bit security, or a prime
        would exceed SEAL's 60 bits; the message names what was needed.
    """
    depth = _check_int("depth", depth, 0, 64)
    precision_bits = _check_int("precision_bits", precision_bits, 1, 50)
    integer_bits = _check_int("integer_bits", integer_bits, 0, 40)
    length = _check_int("length", length, 1, 2**40)
    needed_bits = 0
    for n, max_bits in MAX_MODULUS_BITS.items():
        scale_bits = max(MIN_SCALE_BITS, precision_bits + noise_bits(n, depth))
        first_bits = scale_bits + integer_bits + 1
        if first_bits > MAX_PRIME_BITS:
            raise PrivacyError(
                f"precision_bits + integer_bits must leave the first prime within "
                f"{MAX_PRIME_BITS} bits: {precision_bits} + {integer_bits} bits need a "
                f"{first_bits}-bit prime at N = {n}; lower the precision or the integer bits"
            )
        chain = (first_bits, *([scale_bits] * depth), first_bits)
        needed_bits = sum(chain)
        if needed_bits <= max_bits and n // 2 >= min(length, MAX_SLOTS):
            return CkksParameters(
                poly_modulus_degree=n,
                coeff_mod_bit_sizes=chain,
                scale_bits=scale_bits,
                depth=depth,
                precision_bits=precision_bits,
                integer_bits=integer_bits,
                length=length,
            )
    raise PrivacyError(
        f"depth {depth} at {precision_bits} bits of precision needs a {needed_bits}-bit "
        f"modulus, more than the {MAX_MODULUS_BITS[32768]} bits N = 32768 allows at 128-bit "
        "security; lower the depth (a lower-degree polynomial) or the precision"
    )
