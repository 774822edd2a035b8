"""Secure aggregation building blocks (Bonawitz et al. 2017; Bell et al. 2020).

So far: Shamir t-of-n secret sharing over GF(2^521 − 1), X25519 key agreement
with HKDF-SHA256 and AES-256-GCM sealing, AES-CTR mask expansion with
pairwise-cancelling masks, quantization into Z_{2^k} with a stated
no-overflow guarantee, and the four-round protocol with dropout recovery as
sans-I/O client and server state machines (semi-honest server), on the
complete graph (SecAgg) or a random k-regular graph (SecAgg+, with k chosen
by :func:`secagg_plus_settings`), and the distributed discrete Gaussian
mechanism (Kairouz, Liu & Steinke 2021) that makes the securely aggregated sum
differentially private without trusting the server.

numpy and ``cryptography`` only — never torch (see DESIGN.md).
"""

from __future__ import annotations

from privet.secagg.client import SecAggClient
from privet.secagg.codec import (
    decode_client_message,
    decode_server_message,
    encode_secagg_message,
    secagg_limits,
)
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
from privet.secagg.distributed_dp import (
    DistributedDiscreteGaussian,
    ddg_tau,
    ddg_zcdp_rho,
    rounded_l2_sensitivity_squared,
)
from privet.secagg.graph import MaskingGraph, SecAggPlusSettings, secagg_plus_settings
from privet.secagg.masking import apply_masks, expand_mask, pairwise_masks
from privet.secagg.messages import (
    AbortedRound,
    AdvertiseKeys,
    KeysBroadcast,
    MaskedInput,
    ProtocolViolation,
    SecAggParams,
    ShareKeys,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
)
from privet.secagg.quantize import Quantizer
from privet.secagg.server import SecAggServer, remove_masks
from privet.secagg.shamir import decode_share, encode_share, recover_secret, split_secret
from privet.secagg.simulation import run_protocol, simulate

__all__ = [
    "AbortedRound",
    "AdvertiseKeys",
    "DecryptionError",
    "DistributedDiscreteGaussian",
    "KeyPair",
    "KeyPurpose",
    "KeysBroadcast",
    "MaskedInput",
    "MaskingGraph",
    "ProtocolViolation",
    "Quantizer",
    "SecAggClient",
    "SecAggParams",
    "SecAggPlusSettings",
    "SecAggServer",
    "ShareKeys",
    "SharesDelivery",
    "UnmaskRequest",
    "UnmaskResponse",
    "agree",
    "agreement_info",
    "apply_masks",
    "ddg_tau",
    "ddg_zcdp_rho",
    "decode_client_message",
    "decode_server_message",
    "decode_share",
    "encode_secagg_message",
    "encode_share",
    "exchange",
    "expand_mask",
    "hkdf_sha256",
    "open_sealed",
    "pairwise_masks",
    "recover_secret",
    "remove_masks",
    "rounded_l2_sensitivity_squared",
    "run_protocol",
    "seal",
    "secagg_limits",
    "secagg_plus_settings",
    "simulate",
    "split_secret",
]
