"""``PrivacyEngine``: make an Opacus training script private by changing its import.

    from privet.train import PrivacyEngine          # was: from opacus import PrivacyEngine
    engine = PrivacyEngine()
    model, optimizer, loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader,
        noise_multiplier=1.1, max_grad_norm=1.0)
    ...                                              # the training loop is unchanged
    engine.get_epsilon(delta=1e-5)

Each optimizer step is a Poisson-subsampled Gaussian event (Abadi et al.
2016); the engine keeps their history and accounts for it with
:func:`privet.dp.epsilon`. Given a :class:`privet.dp.Ledger`, every step is
charged to it *before* the noise is drawn and the parameters change, and a
step that would exceed the budget raises :class:`privet.BudgetExceeded`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import dp_accounting
import torch
from torch import nn
from torch.optim import Optimizer
from torch.utils.data import DataLoader

from privet.dp import AccountantName, DpEvent, Ledger, epsilon, noise_multiplier_for
from privet.dp._validation import check_choice, check_delta, check_epsilon, check_positive_int
from privet.dp.randomness import RngLike
from privet.errors import PrivacyError
from privet.train.data_loader import DPDataLoader
from privet.train.grad_sample_module import GradSampleModule, LossReduction
from privet.train.optimizer import DPOptimizer
from privet.train.validator import ModuleValidator

__all__ = ["PrivacyEngine"]


class PrivacyEngine:
    """Wires model, optimizer and data loader for DP-SGD, and accounts for the steps.

    Parameters
    ----------
    accountant
        ``"pld"`` (default) or ``"rdp"``: how :meth:`get_epsilon` and
        :meth:`make_private_with_epsilon` turn steps into epsilon. (Opacus's
        ``"prv"`` is not offered; PLD is tight in the same way.)
    ledger
        Optional budget ledger charged at every step, before it happens.
    """

    def __init__(self, accountant: AccountantName = "pld", *, ledger: Ledger | None = None) -> None:
        check_choice("accountant", accountant, ("pld", "rdp"))
        if ledger is not None and not isinstance(ledger, Ledger):
            raise PrivacyError(f"ledger must be a privet.dp.Ledger or None, got {ledger!r}")
        self.accountant: AccountantName = accountant
        self.ledger = ledger
        # (noise_multiplier, sample_rate) -> steps taken with them.
        self._history: Counter[tuple[float, float]] = Counter()

    # -- accounting ------------------------------------------------------------------------------

    def step_event(self, noise_multiplier: float, sample_rate: float) -> DpEvent:
        """One DP-SGD step: a Poisson-subsampled Gaussian."""
        return dp_accounting.PoissonSampledDpEvent(
            sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier)
        )

    def events(self) -> list[DpEvent]:
        """Every step taken so far, grouped: one ``SelfComposedDpEvent`` per setting."""
        return [
            dp_accounting.SelfComposedDpEvent(self.step_event(sigma, q), count)
            for (sigma, q), count in self._history.items()
        ]

    def get_epsilon(self, delta: float) -> float:
        """Epsilon spent by the steps taken so far, at ``delta``."""
        events = self.events()
        if not events:
            return 0.0
        return epsilon(events, check_delta(delta, allow_zero=False), self.accountant)

    @property
    def steps(self) -> int:
        return sum(self._history.values())

    # -- wiring ----------------------------------------------------------------------------------

    def make_private(
        self,
        *,
        module: nn.Module,
        optimizer: Optimizer,
        data_loader: DataLoader[Any],
        noise_multiplier: float,
        max_grad_norm: float | Sequence[float],
        poisson_sampling: bool = True,
        loss_reduction: LossReduction = "mean",
        clipping: str = "flat",
        noise_generator: torch.Generator | None = None,
        sampler_rng: RngLike = None,
        batch_first: bool = True,
        secure_mode: bool | None = None,
        grad_sample_mode: str | None = None,
    ) -> tuple[GradSampleModule, DPOptimizer, DataLoader[Any]]:
        """Return the private ``(module, optimizer, data_loader)`` for the training loop.

        ``poisson_sampling=False`` is refused: this engine's accounting assumes
        Poisson sampling, and accounting for a different sampling scheme would
        state a false epsilon. ``clipping`` is ``"flat"`` (one ``max_grad_norm``)
        or ``"per_layer"`` (one bound per parameter tensor).

        Opacus's options: ``grad_sample_mode`` is accepted and ignored (privet
        picks the fastest correct kernel per layer); ``batch_first`` must be
        True (dimension 0 is the batch everywhere); ``secure_mode=False`` with
        no ``noise_generator`` still uses cryptographic noise (privet's
        default), and ``secure_mode=True`` with a seeded generator is refused.
        """
        del grad_sample_mode
        if not batch_first:
            raise PrivacyError(
                "batch_first must be True: privet clips along dimension 0, and clipping along "
                "another dimension would not bound one example's influence"
            )
        if secure_mode and noise_generator is not None:
            raise PrivacyError("secure_mode=True cannot use a seeded noise_generator")
        if not poisson_sampling:
            raise PrivacyError(
                "poisson_sampling must be True: privet accounts for Poisson-subsampled steps, "
                "and a shuffled fixed-size loader would make that accounting false"
            )
        check_choice("clipping", clipping, ("flat", "per_layer"))
        if (clipping == "per_layer") == isinstance(max_grad_norm, int | float):
            raise PrivacyError(
                f"clipping={clipping!r} needs max_grad_norm to be "
                f"{'a list (one per parameter)' if clipping == 'per_layer' else 'one number'}, "
                f"got {max_grad_norm!r}"
            )
        ModuleValidator.validate(module, strict=True)
        dp_loader = (
            data_loader
            if isinstance(data_loader, DPDataLoader)
            else DPDataLoader.from_data_loader(data_loader, rng=sampler_rng, release=True)
        )
        wrapped = (
            module
            if isinstance(module, GradSampleModule)
            else GradSampleModule(module, loss_reduction=loss_reduction)
        )
        dp_optimizer = DPOptimizer(
            optimizer,
            module=wrapped,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            expected_batch_size=dp_loader.expected_batch_size,
            noise_generator=noise_generator,
        )
        sample_rate = dp_loader.sample_rate
        self._attach(dp_optimizer, sample_rate)
        return wrapped, dp_optimizer, dp_loader

    def _attach(self, optimizer: DPOptimizer, sample_rate: float) -> None:
        # Each step is accounted with the noise multiplier it used: a schedule that
        # changes optimizer.noise_multiplier mid-training is charged what it spends.
        used: list[float] = []

        def charge(opt: DPOptimizer) -> None:
            used[:] = [opt.noise_multiplier]
            if self.ledger is not None:
                event = self.step_event(opt.noise_multiplier, sample_rate)
                self.ledger.charge(event, label="dp-sgd step")

        def record(opt: DPOptimizer) -> None:
            self._history[(used[0], sample_rate)] += 1

        optimizer.before_noise.append(charge)
        optimizer.after_step.append(record)

    def make_private_with_epsilon(
        self,
        *,
        module: nn.Module,
        optimizer: Optimizer,
        data_loader: DataLoader[Any],
        target_epsilon: float,
        target_delta: float,
        epochs: int,
        max_grad_norm: float | Sequence[float],
        **kwargs: Any,
    ) -> tuple[GradSampleModule, DPOptimizer, DataLoader[Any]]:
        """:meth:`make_private` with the smallest noise that keeps ``epochs`` within the target."""
        eps = check_epsilon(target_epsilon, "target_epsilon")
        delta = check_delta(target_delta, "target_delta", allow_zero=False)
        n_epochs = check_positive_int("epochs", epochs)
        dp_loader = (
            data_loader
            if isinstance(data_loader, DPDataLoader)
            else DPDataLoader.from_data_loader(
                data_loader, rng=kwargs.pop("sampler_rng", None), release=True
            )
        )
        steps = n_epochs * len(dp_loader)
        sigma = noise_multiplier_for(eps, delta, dp_loader.sample_rate, steps, self.accountant)
        return self.make_private(
            module=module,
            optimizer=optimizer,
            data_loader=dp_loader,
            noise_multiplier=sigma,
            max_grad_norm=max_grad_norm,
            **kwargs,
        )
