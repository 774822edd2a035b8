"""Encrypted federated aggregation on the wire: the round's task, the key request, the sum.

Three :mod:`privet.wire` message kinds, besides the :mod:`privet.he.codec` kinds
they ride with (``he.paillier.public_key``, ``he.paillier.packed_array``)::

    kind                 from -> to               arrays               meta
    fl.he_fit            server -> client         global parameters    the encoded public key (hex
                                                                       of its he.paillier.public_key
                                                                       bytes), fit instructions,
                                                                       contribution, encoding,
                                                                       max_weight
    fl.he_key_request    server -> key holder     none                 protocol
    fl.he_sum            key holder -> server     sum float64 (L,)     protocol, key fingerprint,
                                                                       contributions, digest

A client answers ``fl.he_fit`` with its contribution as one
``he.paillier.packed_array`` under the task's key; the server sends the key
holder the encrypted sum in that same kind and gets ``fl.he_sum`` back.

Decoding checks the exact field set and types, rebuilds every record through
its own validation, and checks that the pieces agree (the packing layout fits
the key, a distributed-noise encoding is the integer one its mechanism
needs), so a client never starts work it could not finish. The public key in
a task is checked by :func:`privet.he.decode_public_key` (size floor, SHA-256
fingerprint); whether it is *the key holder's* key is the client's check
against a fingerprint it got out of band (:class:`privet.fl.he_client.HeClient`).
The distributed-noise fields are :mod:`privet.fl.secure_messages`' own codec
(:func:`~privet.fl.secure_messages.distributed_noise_meta`), plus ``modulus_bits``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.fl.messages import fit_instructions_from, fit_instructions_meta, parameters_from
from privet.fl.parameters import Parameters
from privet.fl.secure_messages import (
    DISTRIBUTED_NOISE_FIELDS,
    checked_fields,
    distributed_noise_meta,
)
from privet.fl.strategy import SecureContribution
from privet.fl.types import FitInstructions
from privet.he import PackingLayout, PaillierPublicKey, decode_public_key, encode_public_key
from privet.he.encoding import check_frac_bits, encode_bound
from privet.he.packing import MAX_HEADROOM_BITS
from privet.secagg.distributed_dp import DistributedDiscreteGaussian
from privet.wire import Limits, Message, WireError, decode_message, encode_message
from privet.wire.codec import DEFAULT_LIMITS

__all__ = [
    "HE_FIT",
    "HE_KEY_REQUEST",
    "HE_SUM",
    "HeFitTask",
    "PackedEncoding",
    "check_task",
    "decode_decrypted_sum",
    "decode_he_fit_task",
    "decode_key_request",
    "encode_decrypted_sum",
    "encode_he_fit_task",
    "encode_key_request",
    "noise_encoding",
]

HE_FIT: Final = "fl.he_fit"
HE_KEY_REQUEST: Final = "fl.he_key_request"
HE_SUM: Final = "fl.he_sum"
_PROTOCOL: Final = "privet-he-aggregation/v1"
_HEX: Final = re.compile(r"(?:[0-9a-f]{2})+", re.ASCII)
# A 16384-bit key's public-key message is about 2.3 kB: far below this cap on its hex.
_MAX_KEY_HEX: Final = 1 << 14

_NUMBER: Final = (int, float)
_OPTIONAL_NUMBER: Final = (int, float, type(None))
_TASK_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    "protocol": (str,),
    "public_key": (str,),
    "bound": _NUMBER,
    "frac_bits": (int,),
    "headroom_bits": (int,),
    "l2_clip": _OPTIONAL_NUMBER,
    "weighted": (bool,),
    "report_unclipped": (bool,),
    "max_weight": (int,),
    "noise": (dict, Mapping, type(None)),
    # The fit instructions' own fields (privet.fl.messages checks their types).
    "server_round": (int,),
    "proximal_mu": _NUMBER,
    "local_epochs": (int, type(None)),
    "learning_rate": _OPTIONAL_NUMBER,
    "extra": (dict, Mapping),
}
# SecAgg's fields plus the ring: no other field of fl.he_fit states it.
_NOISE_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    **DISTRIBUTED_NOISE_FIELDS,
    "modulus_bits": (int,),
}
_SUM_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    "protocol": (str,),
    "fingerprint": (str,),
    "contributions": (int,),
    "digest": (str,),
}


@dataclass(frozen=True)
class PackedEncoding:
    """How every client of a round encodes its contribution before encrypting it packed.

    Attributes
    ----------
    bound
        Every coordinate must satisfy ``|x| <= bound``; a value beyond it is
        refused by the client, never wrapped.
    frac_bits
        Fixed-point fractional bits: ``x`` is sent as ``round(x 2^frac_bits)``.
    headroom_bits
        ``h``: the packing layout leaves room for sums of up to ``2^h``
        contributions (:class:`privet.he.PackingLayout`).
    """

    bound: float
    frac_bits: int
    headroom_bits: int

    def __post_init__(self) -> None:
        bound = self.bound
        if (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not (math.isfinite(bound) and bound > 0)
        ):
            raise PrivacyError(f"bound must be a finite number > 0, got {bound!r}")
        check_frac_bits(self.frac_bits)
        h = self.headroom_bits
        if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h <= MAX_HEADROOM_BITS:
            raise PrivacyError(
                f"headroom_bits must be an integer in [0, {MAX_HEADROOM_BITS}], got {h!r}"
            )

    @property
    def max_contributions(self) -> int:
        """``2^h``: the most contributions one encrypted sum may hold without a carry."""
        return 1 << self.headroom_bits

    def layout(self, key_bits: int) -> PackingLayout:
        """The packing layout under a ``key_bits``-bit key (refused if a slot does not fit)."""
        return PackingLayout.for_key(
            key_bits, encode_bound(self.bound, self.frac_bits), self.headroom_bits
        )


@dataclass(frozen=True)
class HeFitTask:
    """What the server tells one client at the start of an encrypted round.

    Attributes
    ----------
    public_key
        The key holder's Paillier public key: the contribution is encrypted under it.
    parameters, instructions
        The global model and the fit instructions, as in a plain round.
    contribution
        What to add to the sum (:class:`~privet.fl.strategy.SecureContribution`).
    encoding
        The fixed-point bound, fractional bits and packing headroom.
    max_weight
        Example counts are capped here and divided by it (weights in ``[0, 1]``).
    """

    public_key: PaillierPublicKey
    parameters: Parameters
    instructions: FitInstructions
    contribution: SecureContribution
    encoding: PackedEncoding
    max_weight: int

    @property
    def vector_length(self) -> int:
        """Values each client encrypts: the update alone with distributed noise, else the
        update, its weight and (if asked) its unclipped bit."""
        size = self.parameters.size
        if self.contribution.distributed_noise is not None:
            return size
        return size + 1 + int(self.contribution.report_unclipped)


def noise_encoding(noise: DistributedDiscreteGaussian, headroom_bits: int) -> PackedEncoding:
    """The integer encoding a distributed-noise contribution needs: the mechanism's
    ``Z_{2^k}`` values read as signed integers, so ``|x| <= 2^(k-1)`` and no fraction."""
    return PackedEncoding(float(1 << (noise.modulus_bits - 1)), 0, headroom_bits)


def check_task(task: HeFitTask) -> None:
    """Refuse a task whose parts disagree (the module docstring lists the checks)."""
    if isinstance(task.max_weight, bool) or not isinstance(task.max_weight, int):
        raise PrivacyError(f"max_weight must be an integer >= 1, got {task.max_weight!r}")
    if task.max_weight < 1:
        raise PrivacyError(f"max_weight must be an integer >= 1, got {task.max_weight}")
    task.encoding.layout(task.public_key.bits)
    noise = task.contribution.distributed_noise
    if noise is None:
        return
    size = task.parameters.size
    if noise.dimension != size:
        raise PrivacyError(
            f"distributed noise must cover {size} parameters, got dimension {noise.dimension}"
        )
    expected = noise_encoding(noise, task.encoding.headroom_bits)
    if task.encoding != expected:
        raise PrivacyError(
            f"a distributed-noise encoding must be integers within 2^{noise.modulus_bits - 1} "
            f"(bound {expected.bound!r}, frac_bits 0), got bound {task.encoding.bound!r} and "
            f"frac_bits {task.encoding.frac_bits}"
        )


def _noise_meta(noise: DistributedDiscreteGaussian | None) -> dict[str, Any] | None:
    if noise is None:
        return None
    return {**distributed_noise_meta(noise), "modulus_bits": noise.modulus_bits}


def encode_he_fit_task(task: HeFitTask) -> bytes:
    """One client's task as ``fl.he_fit`` wire bytes (see the module docstring)."""
    if not isinstance(task, HeFitTask):
        raise PrivacyError(f"task must be a HeFitTask, got {type(task).__name__}")
    check_task(task)
    contribution, encoding = task.contribution, task.encoding
    l2_clip = contribution.l2_clip
    meta = {
        "protocol": _PROTOCOL,
        "public_key": encode_public_key(task.public_key).hex(),
        "bound": float(encoding.bound),
        "frac_bits": encoding.frac_bits,
        "headroom_bits": encoding.headroom_bits,
        "l2_clip": None if l2_clip is None else float(l2_clip),
        "weighted": contribution.weighted,
        "report_unclipped": contribution.report_unclipped,
        "max_weight": task.max_weight,
        "noise": _noise_meta(contribution.distributed_noise),
        **fit_instructions_meta(task.instructions),
    }
    return encode_message(HE_FIT, meta, dict(task.parameters))


def _protocol(kind: str, meta: Mapping[str, Any]) -> None:
    if meta["protocol"] != _PROTOCOL:
        raise WireError(f"{kind} protocol must be {_PROTOCOL!r}, got {meta['protocol'][:80]!r}")


def _public_key(text: str, insecure_for_tests: bool) -> PaillierPublicKey:
    # One spelling only: lower-case hex of whole bytes, checked before it is converted.
    if len(text) > _MAX_KEY_HEX or _HEX.fullmatch(text) is None:
        raise WireError(
            f"{HE_FIT} public_key must be lower-case hex of at most {_MAX_KEY_HEX // 2} bytes, "
            f"got {text[:40]!r}"
        )
    return decode_public_key(bytes.fromhex(text), insecure_for_tests=insecure_for_tests)


def _task(message: Message, insecure_for_tests: bool) -> HeFitTask:
    meta = checked_fields(HE_FIT, message.meta, _TASK_FIELDS)
    _protocol(HE_FIT, meta)
    public_key = _public_key(meta["public_key"], insecure_for_tests)
    noise = None
    if meta["noise"] is not None:
        noise = DistributedDiscreteGaussian(
            **checked_fields(f"{HE_FIT} noise", meta["noise"], _NOISE_FIELDS)
        )
    contribution = SecureContribution(
        meta["l2_clip"], meta["weighted"], noise, meta["report_unclipped"]
    )
    task = HeFitTask(
        public_key,
        parameters_from(message),
        fit_instructions_from(message),
        contribution,
        PackedEncoding(meta["bound"], meta["frac_bits"], meta["headroom_bits"]),
        meta["max_weight"],
    )
    check_task(task)
    return task


def decode_he_fit_task(
    data: bytes, *, insecure_for_tests: bool = False, limits: Limits = DEFAULT_LIMITS
) -> HeFitTask:
    """Decode and check an ``fl.he_fit`` message.

    Parameters
    ----------
    insecure_for_tests
        Accept a public key of 1024 to 2047 bits (tests only).

    Raises
    ------
    WireError
        Not the declared bytes, fields or types; a record's own validation
        failed; or the parts disagree (see the module docstring).
    """
    message = decode_message(data, expected_kind=HE_FIT, limits=limits)
    try:
        return _task(message, insecure_for_tests)
    except WireError:
        raise
    except PrivacyError as error:
        raise WireError(f"{HE_FIT} message: {error}") from error


def encode_key_request() -> bytes:
    """The server's request for the key holder's public key."""
    return encode_message(HE_KEY_REQUEST, {"protocol": _PROTOCOL})


def decode_key_request(message: Message) -> None:
    """Check a decoded ``fl.he_key_request`` (it carries nothing but its protocol)."""
    if message.kind != HE_KEY_REQUEST:
        raise WireError(f"message kind must be {HE_KEY_REQUEST!r}, got {message.kind!r}")
    _protocol(HE_KEY_REQUEST, checked_fields(HE_KEY_REQUEST, message.meta, {"protocol": (str,)}))
    if message.arrays:
        raise WireError(f"{HE_KEY_REQUEST} must carry no arrays, got {list(message.arrays)}")


def encode_decrypted_sum(
    values: NDArray[np.float64], contributions: int, fingerprint: str
) -> bytes:
    """The key holder's answer: the decrypted sum of ``contributions`` contributions."""
    array = np.ascontiguousarray(values, dtype="<f8")
    meta: dict[str, Any] = {
        "protocol": _PROTOCOL,
        "fingerprint": fingerprint,
        "contributions": contributions,
    }
    meta["digest"] = _digest(meta, array.tobytes())
    return encode_message(HE_SUM, meta, {"sum": array})


def _digest(meta: Mapping[str, Any], raw: bytes) -> str:
    # Detects accidental corruption only (anyone can recompute it), as privet.he.codec's
    # digests do: authenticity is the transport's job.
    header = json.dumps(dict(meta), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(len(header).to_bytes(8, "big") + header + raw).hexdigest()


def decode_decrypted_sum(
    data: bytes, *, length: int, fingerprint: str, limits: Limits = DEFAULT_LIMITS
) -> tuple[NDArray[np.float64], int]:
    """The decrypted sum (``length`` finite floats) and how many contributions it holds.

    Raises
    ------
    WireError
        Malformed or corrupted bytes (a digest mismatch), another key's
        fingerprint, or a sum of the wrong length, dtype or with NaN.
    """
    message = decode_message(data, expected_kind=HE_SUM, limits=limits)
    meta = checked_fields(HE_SUM, message.meta, _SUM_FIELDS)
    _protocol(HE_SUM, meta)
    if meta["fingerprint"] != fingerprint:
        raise WireError(
            f"{HE_SUM} must be decrypted with the key {fingerprint[:16]}..., got one for "
            f"{meta['fingerprint'][:16]}..."
        )
    if list(message.arrays) != ["sum"]:
        raise WireError(f"{HE_SUM} arrays must be exactly ['sum'], got {list(message.arrays)}")
    values = message.arrays["sum"]
    if values.dtype != np.float64 or values.shape != (length,):
        raise WireError(
            f"{HE_SUM} sum must be float64 of shape ({length},), got {values.dtype} {values.shape}"
        )
    rest = {name: value for name, value in meta.items() if name != "digest"}
    if meta["digest"] != _digest(rest, values.astype("<f8").tobytes()):
        raise WireError(
            f"{HE_SUM} digest must be SHA-256 of its meta and sum bytes, got a mismatch: the "
            "message is corrupted"
        )
    if not np.isfinite(values).all():
        raise WireError(f"{HE_SUM} sum must be finite, got NaN or infinity")
    return np.array(values, dtype=np.float64), meta["contributions"]
