"""Shared Paillier fixtures: 1024-bit test keys (insecure_for_tests) made once per session.

The properties tested here do not depend on the key size; one test makes a 2048-bit key.
"""

from __future__ import annotations

import pytest

from privet.he import DjnRandomness, PaillierPublicKey, PaillierSecretKey, generate_keypair

TEST_BITS = 1024


@pytest.fixture(scope="session")
def keypair() -> tuple[PaillierPublicKey, PaillierSecretKey]:
    return generate_keypair(TEST_BITS, insecure_for_tests=True)


@pytest.fixture(scope="session")
def other_keypair() -> tuple[PaillierPublicKey, PaillierSecretKey]:
    return generate_keypair(TEST_BITS, insecure_for_tests=True)


@pytest.fixture(scope="session")
def djn(keypair: tuple[PaillierPublicKey, PaillierSecretKey]) -> DjnRandomness:
    """DJN randomness with 2 kappa = 256-bit exponents (the fast setting)."""
    return DjnRandomness(keypair[0], exponent_bits=256)
