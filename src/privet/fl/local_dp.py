"""Local differential privacy: each client noises its own update before it leaves.

The client clips its update ``Δ = w_local − w_global`` to L2 norm ``C`` and
adds ``N(0, σ² C² I)`` (the Gaussian mechanism on the update). Nothing about
the server is trusted. Neighbouring here means *any* change to this client's
data: two clipped updates differ by at most ``2C``, so each participation is
a Gaussian mechanism with noise multiplier ``σ / 2`` over the client's whole
data set — the event charged to the client's own :class:`privet.dp.Ledger`.
(Flower's ``LocalDpMod`` calibrates to sensitivity ``C``, i.e. against a
client that sends a zero update; privet uses the replace-one bound.) The
client's example count and training metrics are withheld: they describe its
data as much as the update does.

Evaluation is refused: a loss measured on the client's data is not
privatized. Evaluate centrally, on data the server may see.
"""

from __future__ import annotations

import logging

import dp_accounting
import numpy as np

from privet.dp._validation import check_positive
from privet.dp.ledger import Ledger
from privet.dp.randomness import RandomSource, RngLike, resolve_rng
from privet.errors import PrivacyError
from privet.fl.central_dp import clip_rows
from privet.fl.parameters import Parameters
from privet.fl.types import (
    Client,
    EvaluateInstructions,
    EvaluateResult,
    FitInstructions,
    FitResult,
)

__all__ = ["LocalDpClient", "local_dp_event"]

logger = logging.getLogger("privet.fl")


def local_dp_event(noise_multiplier: float) -> dp_accounting.DpEvent:
    """What one locally private fit spends: noise ``σ C`` on an update whose replace-one
    sensitivity is ``2C``, i.e. ``GaussianDpEvent(σ / 2)``."""
    return dp_accounting.GaussianDpEvent(check_positive("noise_multiplier", noise_multiplier) / 2)


class LocalDpClient:
    """Wrap a client so that every update it sends is clipped and noised.

    Parameters
    ----------
    client
        The client to wrap.
    clip_norm
        ``C``: L2 bound on the update (> 0).
    noise_multiplier
        ``σ``: noise standard deviation over ``C`` (> 0).
    ledger
        The client's own ledger: each fit charges
        ``GaussianDpEvent(σ / 2)`` before the noise is drawn; a refused
        charge raises :class:`privet.BudgetExceeded` and nothing is sent.
    rng
        ``None`` for the OS CSPRNG; a seeded generator for simulation (warns).
    """

    def __init__(
        self,
        client: Client,
        *,
        clip_norm: float,
        noise_multiplier: float,
        ledger: Ledger | None = None,
        rng: RngLike = None,
    ) -> None:
        if not isinstance(client, Client):
            raise PrivacyError(f"client must implement fit and evaluate, got {client!r}")
        self.client = client
        self.clip_norm = check_positive("clip_norm", clip_norm)
        self.noise_multiplier = check_positive("noise_multiplier", noise_multiplier)
        self.ledger = ledger
        self._source: RandomSource = resolve_rng(rng, release=True)
        self.events: list[dp_accounting.DpEvent] = []

    def participation_event(self) -> dp_accounting.DpEvent:
        """One fit: a Gaussian mechanism with sensitivity ``2C`` (replace-one)."""
        return local_dp_event(self.noise_multiplier)

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        """Charge, train, clip, noise. Whatever happens in local training — an exception,
        a diverged (non-finite) or malformed update — the client sends a noised zero update
        instead, so neither failure nor divergence leaks without noise."""
        event = self.participation_event()
        if self.ledger is not None:
            self.ledger.charge(event, label=f"fl round {instructions.server_round}: local DP")
        self.events.append(event)
        global_vector = parameters.to_vector()
        update = np.zeros_like(global_vector)
        try:
            result = self.client.fit(parameters, instructions)
            if parameters.same_layout(result.parameters):
                candidate = result.parameters.to_vector() - global_vector
                if np.isfinite(candidate).all():
                    update = candidate
        except Exception:  # the failure itself is private: send noise around zero
            logger.warning("local training failed; sending a noised zero update")
        clipped, _ = clip_rows(update[None, :], self.clip_norm)
        noise = self._source.standard_normal(update.size) * (self.noise_multiplier * self.clip_norm)
        noisy = parameters.from_vector(global_vector + clipped[0] + noise)
        # The example count and training metrics describe the private data too: neither is
        # sent (the count as 1, so a weighted FedAvg takes the plain mean of noisy updates).
        return FitResult(noisy, 1)

    def evaluate(
        self, parameters: Parameters, instructions: EvaluateInstructions
    ) -> EvaluateResult:
        raise PrivacyError(
            "a LocalDpClient does not evaluate: its loss on local data would leave the client "
            "without noise; set fraction_evaluate=0 and evaluate on the server's data"
        )
