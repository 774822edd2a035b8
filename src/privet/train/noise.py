"""Gaussian noise for DP-SGD, from a cryptographic stream by default.

torch's CPU generator is a Mersenne Twister: its state can be recovered from
its outputs and it is meant for simulation. DP-SGD's noise is what protects
the training data, so by default it comes from AES-256 in counter mode keyed
by 32 bytes of the OS CSPRNG (a CTR-DRBG construction, NIST SP 800-90A),
turned into normals by the Box–Muller transform on 53-bit uniforms: the
largest draw is about 8.6 sigma, and the mass beyond it (below 1e-17 per
coordinate) is far under any delta in use. ``secure=False`` uses a torch
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

_TWO_POW_MINUS_53 = 2.0**-53


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

    @property
    def secure(self) -> bool:
        return self.generator is None

    def _uniform53(self, count: int) -> Tensor:
        """``count`` float64 uniforms on the open interval (0, 1) from the AES-CTR stream."""
        needed = 8 * count
        if len(self._buffer) < needed:
            self._buffer = bytearray(needed)
        view = memoryview(self._buffer)[:needed]
        # Encrypting zeros in CTR mode writes the raw keystream.
        encryptor = self._encryptor
        if encryptor is None:  # pragma: no cover - guarded by callers
            raise RuntimeError("no cryptographic stream")
        encryptor.update_into(bytes(needed), view)
        words = torch.frombuffer(self._buffer, dtype=torch.int64, count=count)
        bits = torch.bitwise_and(torch.bitwise_right_shift(words, 11), (1 << 53) - 1)
        return (bits.to(torch.float64) + 0.5) * _TWO_POW_MINUS_53

    def sample(self, shape: torch.Size, std: float, dtype: torch.dtype) -> Tensor:
        """A tensor of N(0, std^2) draws."""
        if self.generator is not None:
            return torch.normal(0.0, std, shape, generator=self.generator, dtype=dtype)
        count = math.prod(shape)
        pairs = (count + 1) // 2
        uniforms = self._uniform53(2 * pairs)
        radius = torch.sqrt(-2.0 * torch.log(uniforms[:pairs]))
        angle = (2.0 * math.pi) * uniforms[pairs:]
        normals = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)])[:count]
        return (normals * std).to(dtype).reshape(shape)
