"""The key holder of Paillier-encrypted aggregation: it holds the secret key and decrypts sums.

:class:`KeyHolder` is sans-I/O (request bytes in, reply bytes out). It answers
a key request with its public key and an encrypted sum with its decryption
(Paillier 1999, CRT decryption in :mod:`privet.he`), but only a sum of at least
``min_contributions`` fresh contributions, counted from the ciphertext's public
offset. Why it must not collude with the server, and what it cannot detect, is
the trust model in :mod:`privet.fl.he_aggregation`.
"""

from __future__ import annotations

from privet.errors import PrivacyError
from privet.fl.he_messages import HE_KEY_REQUEST, decode_key_request, encode_decrypted_sum
from privet.he import (
    MIN_BITS,
    PackedEncryptedArray,
    PaillierPublicKey,
    PaillierSecretKey,
    decode_packed_array,
    decrypt_packed,
    encode_public_key,
    generate_keypair,
)
from privet.he.codec import PACKED_ARRAY_KIND
from privet.wire import decode_message

__all__ = ["KeyHolder"]


class KeyHolder:
    """The party that holds the Paillier secret key and decrypts sums, never single updates.

    Sans-I/O: :meth:`handle` takes one request as wire bytes and returns the
    reply. It answers a key request with its public key, and an encrypted sum
    under its key with the decrypted sum, if the sum holds at least
    ``min_contributions`` fresh contributions (counted from the ciphertext's
    public offset). See the trust model in :mod:`privet.fl.he_aggregation` for
    what it must not do (collude with the server).

    Parameters
    ----------
    secret_key
        The key pair's secret half; it never leaves this object.
    min_contributions
        Sums of fewer contributions are refused (default 2).
    """

    def __init__(self, secret_key: PaillierSecretKey, *, min_contributions: int = 2) -> None:
        if not isinstance(secret_key, PaillierSecretKey):
            raise PrivacyError(
                f"secret_key must be a PaillierSecretKey, got {type(secret_key).__name__}"
            )
        self._secret_key = secret_key
        minimum = min_contributions
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 2:
            raise PrivacyError(f"min_contributions must be an integer >= 2, got {minimum!r}")
        self.min_contributions = minimum

    @classmethod
    def generate(
        cls, bits: int = MIN_BITS, *, min_contributions: int = 2, insecure_for_tests: bool = False
    ) -> KeyHolder:
        """A key holder with a fresh key pair (``insecure_for_tests`` allows 1024-bit keys)."""
        _, secret = generate_keypair(bits, insecure_for_tests=insecure_for_tests)
        return cls(secret, min_contributions=min_contributions)

    @property
    def public_key(self) -> PaillierPublicKey:
        return self._secret_key.public_key

    def __repr__(self) -> str:
        return f"KeyHolder(key={self.public_key.fingerprint[:16]}..., secret key withheld)"

    def handle(self, request: bytes) -> bytes:
        """Answer one request (a key request or an encrypted sum).

        Raises
        ------
        WireError
            Malformed or corrupted bytes, or another message kind.
        PrivacyError
            A sum under another key, not a sum of fresh contributions, or of
            fewer than ``min_contributions``.
        """
        message = decode_message(request, expected_kind=(HE_KEY_REQUEST, PACKED_ARRAY_KIND))
        if message.kind == HE_KEY_REQUEST:
            decode_key_request(message)
            return encode_public_key(self.public_key)
        packed = decode_packed_array(request, self.public_key)
        count = self._contributions(packed)
        values = decrypt_packed(self._secret_key, packed)
        return encode_decrypted_sum(values.ravel(), count, self.public_key.fingerprint)

    def _contributions(self, packed: PackedEncryptedArray) -> int:
        # A fresh contribution carries offset B and bound 2B; sums add both.
        count, rest = divmod(packed.offset, packed.layout.value_bound)
        if rest or packed.upper != 2 * packed.offset:
            raise PrivacyError(
                "the encrypted sum must be a sum of fresh contributions (offset a multiple of "
                "the value bound, slot bound twice the offset), got one that is not"
            )
        if count < self.min_contributions:
            raise PrivacyError(
                f"the encrypted sum must hold at least {self.min_contributions} contributions, "
                f"got {count}: a smaller sum would reveal a single client's update"
            )
        return count
