"""Gaussian noise for DP-SGD, from a cryptographic stream by default.

torch's CPU generator is a Mersenne Twister: its state can be recovered from
its outputs and it is meant for simulation. DP-SGD's noise is what protects
the training data, so by default it comes from AES-256 in counter mode keyed
by 32 bytes of the OS CSPRNG (a CTR-DRBG construction, NIST SP 800-90A),
turned into normals by the Box–Muller transform with a 53-bit uniform for the
radius: the largest draw is about 8.6 sigma, and the mass beyond it (below
1e-17 per coordinate) is far under any delta in use. ``secure=False`` uses a torch
``Generator`` instead — Opacus's default, reproducible when seeded, and
faster; choosing it warns.
"""

from __future__ import annotations

import math
import os
import warnings

import torch
from torch import Tensor

from privet.dp.randomness import SeededRandomnessWarning

__all__ = ["GaussianNoise"]

_106_LN_2 = 106.0 * math.log(2.0)
_TWO_PI_OVER_2_24 = 2.0 * math.pi / 2**24
_MASK_53 = (1 << 53) - 1
_MASK_24 = (1 << 24) - 1
_CHUNK_PAIRS = 1 << 16  # 64k pairs: 1 MiB of keystream, temporaries within a 2 MiB L2


class GaussianNoise:
    """Draws N(0, std^2) tensors shaped like parameters.

    Parameters
    ----------
    generator
        ``None`` for the AES-CTR stream keyed from the OS; a
        ``torch.Generator`` for reproducible simulation (warns: not for
        releases).
    """

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator
        if generator is not None:
            warnings.warn(
                "DP-SGD noise from a torch.Generator is reproducible by anyone who learns its "
                "seed; pass noise_generator=None for cryptographic noise",
                SeededRandomnessWarning,
                stacklevel=3,
            )
            self._encryptor = None
        else:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

            cipher = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(os.urandom(16)))
            self._encryptor = cipher.encryptor()
        self._buffer = bytearray()
        self._zeros = b""

    @property
    def secure(self) -> bool:
        return self.generator is None

    def _keystream_words(self, count: int) -> Tensor:
        """``count`` int64 words of the AES-CTR keystream, in a reused buffer."""
        needed = 8 * count
        if len(self._buffer) < needed:
            self._buffer = bytearray(needed)
            self._zeros = bytes(needed)
        encryptor = self._encryptor
        if encryptor is None:  # pragma: no cover - guarded by callers
            raise RuntimeError("no cryptographic stream")
        # Encrypting zeros in CTR mode writes the raw keystream.
        encryptor.update_into(memoryview(self._zeros)[:needed], memoryview(self._buffer)[:needed])
        return torch.frombuffer(self._buffer, dtype=torch.int64, count=count)

    def _standard_normals(self, out: Tensor) -> None:
        """Fill the float32 vector ``out`` with N(0, 1) draws, chunk by chunk.

        Box–Muller: ``r = sqrt(-2 ln u)`` from a 53-bit uniform ``u`` (in
        float64, so the tails reach about 8.6 sigma) and the angle from 24
        bits in float32; each pair of words gives ``r cos t`` and ``r sin t``.
        A chunk is a few hundred thousand draws: a step's noise for a small
        model is one pass of about a dozen vector ops, and temporaries stay
        a few MiB however large the model.
        """
        count = out.numel()
        for start in range(0, count, 2 * _CHUNK_PAIRS):
            pairs = min(_CHUNK_PAIRS, (count - start + 1) // 2)
            words = self._keystream_words(2 * pairs)
            # The low 53 bits of a keystream word are as uniform as any; with u = (bits + 1/2)
            # 2^-53 in (0, 1), -2 ln u = 106 ln 2 - 2 ln(bits + 1/2) in one rsub.
            log_bits = words[:pairs].bitwise_and(_MASK_53).to(torch.float64).add_(0.5).log_()
            radius = torch.rsub(log_bits, _106_LN_2, alpha=2.0).to(torch.float32).sqrt_()
            angle = words[pairs:].bitwise_and(_MASK_24).to(torch.float32).mul_(_TWO_PI_OVER_2_24)
            first = min(pairs, count - start)
            cosines = out[start : start + first]
            torch.cos(angle[:first], out=cosines)
            cosines.mul_(radius[:first])
            second = min(pairs, count - start - first)
            if second > 0:
                sines = out[start + first : start + first + second]
                torch.sin(angle[:second], out=sines)
                sines.mul_(radius[:second])

    def sample(self, shape: torch.Size, std: float, dtype: torch.dtype) -> Tensor:
        """A tensor of N(0, std^2) draws."""
        if self.generator is not None:
            return torch.normal(0.0, std, shape, generator=self.generator, dtype=dtype)
        out = torch.empty(math.prod(shape), dtype=torch.float32)
        self._standard_normals(out)
        return out.mul_(std).to(dtype).reshape(shape)
