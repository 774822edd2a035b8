"""Homomorphic encryption: Paillier on GMP integers (gmpy2), vectorized over numpy arrays.

Key pairs come from vetted RSA primes (``cryptography``), with ``g = n + 1`` so
ciphertexts interoperate with python-paillier (phe) for the same key pair;
decryption is by CRT. Reals are encoded in fixed point with a public magnitude
bound tracked through every operation, so an overflow is refused before it
happens and never wraps (:mod:`privet.he.encoding`). Arrays encrypt one value
per ciphertext (:class:`EncryptedArray`: ``+``, ``-``, ``*`` by public scalars,
``sum``) or many per ciphertext (:class:`PackedEncryptedArray`: sums with
counted headroom). Fresh randomness is plain Paillier by default; a
:class:`CrtRandomness` (secret key, exact) or :class:`DjnRandomness` (public key,
an extra short-exponent assumption, stated in :mod:`privet.he.randomness`) is
much faster. Keys and arrays travel as :mod:`privet.wire` messages; a secret
key has its own message kind and is never accepted as a public one.

Example::

    public, secret = generate_keypair(2048)
    djn = DjnRandomness(public)
    total = encrypt(public, x, bound=100.0, randomness=djn).sum()
    decrypt(secret, total)

gmpy2 is needed: ``pip install 'privet[he]'``. CKKS (on TenSEAL, for real-valued vectors
and encrypted inference) is :mod:`privet.he.ckks`, imported by name.
"""

from __future__ import annotations

from privet.he.arrays import EncryptedArray, decrypt, encrypt
from privet.he.codec import (
    decode_encrypted_array,
    decode_packed_array,
    decode_public_key,
    decode_secret_key,
    encode_encrypted_array,
    encode_packed_array,
    encode_public_key,
    encode_secret_key,
)
from privet.he.encoding import DEFAULT_FRAC_BITS
from privet.he.packed import PackedEncryptedArray, decrypt_packed, encrypt_packed
from privet.he.packing import DEFAULT_HEADROOM_BITS, PackingLayout
from privet.he.paillier import (
    MIN_BITS,
    MIN_TEST_BITS,
    PaillierPublicKey,
    PaillierSecretKey,
    generate_keypair,
)
from privet.he.randomness import CrtRandomness, DjnRandomness, NaiveRandomness, Randomness

__all__ = [
    "DEFAULT_FRAC_BITS",
    "DEFAULT_HEADROOM_BITS",
    "MIN_BITS",
    "MIN_TEST_BITS",
    "CrtRandomness",
    "DjnRandomness",
    "EncryptedArray",
    "NaiveRandomness",
    "PackedEncryptedArray",
    "PackingLayout",
    "PaillierPublicKey",
    "PaillierSecretKey",
    "Randomness",
    "decode_encrypted_array",
    "decode_packed_array",
    "decode_public_key",
    "decode_secret_key",
    "decrypt",
    "decrypt_packed",
    "encode_encrypted_array",
    "encode_packed_array",
    "encode_public_key",
    "encode_secret_key",
    "encrypt",
    "encrypt_packed",
    "generate_keypair",
]
