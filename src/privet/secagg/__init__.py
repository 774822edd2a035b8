"""Secure aggregation building blocks (Bonawitz et al. 2017; Bell et al. 2020).

So far: Shamir t-of-n secret sharing over GF(2^521 − 1), X25519 key agreement
with HKDF-SHA256 and AES-256-GCM sealing, AES-CTR mask expansion with
pairwise-cancelling masks, quantization into Z_{2^k} with a stated
no-overflow guarantee, and the four-round protocol with dropout recovery as
sans-I/O client and server state machines (semi-honest server). SecAgg+
neighbourhoods, distributed discrete-Gaussian noise and the FL integration
come next (issue 6).

numpy and ``cryptography`` only — never torch (see DESIGN.md).
"""

from __future__ import annotations

from privet.secagg.crypto import (
    DecryptionError,
    KeyPair,
    KeyPurpose,
    agree,
    agreement_info,
    exchange,
    hkdf_sha256,
    open_sealed,
    seal,
)
from privet.secagg.masking import apply_masks, expand_mask, pairwise_masks
from privet.secagg.protocol import (
    AbortedRound,
    AdvertiseKeys,
    KeysBroadcast,
    MaskedInput,
    ProtocolViolation,
    SecAggClient,
    SecAggParams,
    SecAggServer,
    ShareKeys,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
    remove_masks,
    run_protocol,
    simulate,
)
from privet.secagg.quantize import Quantizer
from privet.secagg.shamir import decode_share, encode_share, recover_secret, split_secret

__all__ = [
    "AbortedRound",
    "AdvertiseKeys",
    "DecryptionError",
    "KeyPair",
    "KeyPurpose",
    "KeysBroadcast",
    "MaskedInput",
    "ProtocolViolation",
    "Quantizer",
    "SecAggClient",
    "SecAggParams",
    "SecAggServer",
    "ShareKeys",
    "SharesDelivery",
    "UnmaskRequest",
    "UnmaskResponse",
    "agree",
    "agreement_info",
    "apply_masks",
    "decode_share",
    "encode_share",
    "exchange",
    "expand_mask",
    "hkdf_sha256",
    "open_sealed",
    "pairwise_masks",
    "recover_secret",
    "remove_masks",
    "run_protocol",
    "seal",
    "simulate",
    "split_secret",
]
