"""FedAdagrad, FedAdam and FedYogi: adaptive optimizers on the server.

Reddi et al., "Adaptive Federated Optimization", ICLR 2021 (arXiv:2003.00295),
Algorithm 2. Clients train as in FedAvg; the server treats the averaged change
``Δ_t = Σ_k w_k (x_k - x_t) / Σ_k w_k`` as a pseudo-gradient and feeds it to
Adagrad, Adam or Yogi, keeping the moments ``m`` and ``v`` between rounds.

Defaults follow Flower's ``FedAdagrad``/``FedAdam`` (``eta=0.1``, ``beta_1=0.9``,
``beta_2=0.99``, ``tau=1e-9``) and ``FedYogi`` (``eta=0.01``, ``tau=1e-3``), in
``flwr/server/strategy/fedadam.py`` etc. One difference: Flower starts ``v`` at
zero, privet at ``τ²``, the smallest start Algorithm 2 allows (``v_{-1} ≥ τ²``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.fl.aggregate import FedOptKind, ServerOptimizer, fedopt_step, weighted_mean
from privet.fl.parameters import Parameters
from privet.fl.strategy import Aggregate, ClientSampling, SampledStrategy
from privet.fl.types import FitInstructions, FitResult, RoundResults

__all__ = ["FedAdagrad", "FedAdam", "FedOpt", "FedYogi"]

#: What :meth:`FedOpt.state_dict` returns: arrays for safetensors, the rest for JSON.
StateDict = dict[str, Any]

#: ``(name, shape, dtype)`` of each global array, in order.
Layout = tuple[tuple[str, tuple[int, ...], str], ...]


def _layout_of(parameters: Parameters) -> Layout:
    return tuple((name, tuple(a.shape), a.dtype.str) for name, a in parameters.items())


def _describe(layout: Layout) -> str:
    return ", ".join(f"{name}: {np.dtype(dtype)}{list(shape)}" for name, shape, dtype in layout)


class FedOpt(SampledStrategy):
    """Base of the three adaptive strategies: FedAvg's pseudo-gradient, then one step of a
    :class:`~privet.fl.aggregate.ServerOptimizer`.

    The moments live in this object as float64 vectors; :meth:`state_dict` and
    :meth:`load_state_dict` carry them through a checkpoint. The global parameters must
    keep their names, shapes and dtypes from round to round.

    Parameters
    ----------
    optimizer
        The second-moment rule and its hyperparameters.
    sampling
        Which clients take part each round (default: all of them).
    eta_l
        Client learning rate, sent in every :class:`FitInstructions`; ``None`` leaves the
        clients' own (the server step never uses it).
    weighted
        ``True`` averages the client changes by example counts (McMahan et al. 2017),
        ``False`` takes the plain mean.
    """

    def __init__(
        self,
        optimizer: ServerOptimizer,
        sampling: ClientSampling | None = None,
        *,
        eta_l: float | None = None,
        weighted: bool = True,
    ) -> None:
        super().__init__(sampling)
        if not isinstance(optimizer, ServerOptimizer):
            raise PrivacyError(f"optimizer must be a ServerOptimizer, got {optimizer!r}")
        if eta_l is not None and (
            isinstance(eta_l, bool)
            or not isinstance(eta_l, int | float)
            or not math.isfinite(eta_l)
            or eta_l <= 0
        ):
            raise PrivacyError(f"eta_l must be > 0 or None, got {eta_l!r}")
        self.eta_l = None if eta_l is None else float(eta_l)
        self.optimizer = optimizer
        self.weighted = weighted
        self._layout: Layout | None = None
        self._m: NDArray[np.float64] = np.zeros(0)
        self._v: NDArray[np.float64] = np.zeros(0)
        self._steps = 0

    @property
    def steps(self) -> int:
        """Server steps taken so far (rounds that were not aborted)."""
        return self._steps

    def fit_instructions(self, server_round: int) -> FitInstructions:
        return FitInstructions(server_round=server_round, learning_rate=self.eta_l)

    def aggregate_fit(
        self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
    ) -> Aggregate:
        self.check_enough(results)
        layout = _layout_of(parameters)
        if self._layout is not None and layout != self._layout:
            raise PrivacyError(
                f"global parameters must keep the layout of earlier rounds "
                f"({_describe(self._layout)}), got ({_describe(layout)})"
            )
        fits = [result for _, result in results.results]
        matrix = Parameters.stack_vectors((r.parameters for r in fits), like=parameters)
        counts = np.array([r.num_examples for r in fits], dtype=np.float64)
        if self.weighted and counts.sum() == 0:
            raise PrivacyError("every client reported num_examples = 0; nothing to average")
        weights = counts if self.weighted else np.ones(len(fits))
        x = parameters.to_vector()
        delta = weighted_mean(matrix - x, weights)
        if self._layout is None:
            m, v = np.zeros_like(x), np.full_like(x, self.optimizer.tau**2)
        else:
            m, v = self._m, self._v
        # fedopt_step refuses non-finite input, so state is committed only after a good step.
        x_new, m_new, v_new = fedopt_step(self.optimizer, x, delta, m, v)
        self._layout, self._m, self._v = layout, m_new, v_new
        self._steps += 1
        return Aggregate(
            parameters.from_vector(x_new),
            {
                "clients": len(fits),
                "failures": len(results.failures),
                "examples": int(counts.sum()),
                "pseudo_gradient_norm": float(np.linalg.norm(delta)),
                "server_steps": self._steps,
            },
        )

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> StateDict:
        """The optimizer state as plain values: ``m`` and ``v`` (float64 vectors, copies),
        ``kind`` (str), ``steps`` (int) and ``layout`` (JSON text listing each global
        array's name, shape and dtype, the order of ``m`` and ``v``; ``"null"`` before the
        first step). Arrays go to safetensors, the rest to JSON; nothing needs pickle.
        """
        layout = None if self._layout is None else [list(item) for item in self._layout]
        return {
            "kind": self.optimizer.kind.value,
            "steps": self._steps,
            "layout": json.dumps(layout),
            "m": self._m.copy(),
            "v": self._v.copy(),
        }

    def load_state_dict(self, state: StateDict) -> None:
        """Restore what :meth:`state_dict` returned; everything is checked before anything
        changes, and a refused state leaves this strategy as it was."""
        expected = {"kind", "steps", "layout", "m", "v"}
        if not isinstance(state, dict) or set(state) != expected:
            keys = sorted(state) if isinstance(state, dict) else state
            raise PrivacyError(f"state must have the keys {sorted(expected)}, got {keys!r}")
        if state["kind"] != self.optimizer.kind.value:
            raise PrivacyError(
                f"state kind must be {self.optimizer.kind.value!r}, got {state['kind']!r}"
            )
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
            raise PrivacyError(f"state steps must be an integer >= 0, got {steps!r}")
        layout = _parse_layout(state["layout"])
        size = 0 if layout is None else sum(int(np.prod(shape)) for _, shape, _ in layout)
        vectors = {}
        for name in ("m", "v"):
            array = np.asarray(state[name])
            if array.ndim != 1 or array.shape[0] != size or array.dtype.kind != "f":
                raise PrivacyError(
                    f"state {name} must be a float vector of length {size}, "
                    f"got {array.dtype}{list(array.shape)}"
                )
            if not np.isfinite(array).all():
                raise PrivacyError(f"state {name} must be finite, got NaN or infinity")
            vectors[name] = array.astype(np.float64, copy=True)
        if (vectors["v"] < 0).any():
            raise PrivacyError("state v must be >= 0, got a negative entry")
        if (layout is None) != (steps == 0):
            raise PrivacyError(
                f"state layout must be null exactly when steps = 0, got steps={steps} "
                f"with layout {state['layout']!r}"
            )
        self._layout, self._m, self._v = layout, vectors["m"], vectors["v"]
        self._steps = int(steps)


def _parse_layout(text: Any) -> Layout | None:
    error = PrivacyError(
        f"state layout must be JSON null or a list of [name, shape, dtype], got {text!r}"
    )
    if not isinstance(text, str):
        raise error
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error from exc
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise error
    layout = []
    for item in raw:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and isinstance(item[1], list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in item[1])
            and isinstance(item[2], str)
        ):
            raise error
        try:
            dtype = np.dtype(item[2])
        except TypeError as exc:
            raise error from exc
        layout.append((item[0], tuple(item[1]), dtype.str))
    return tuple(layout)


class FedAdagrad(FedOpt):
    """Adagrad on the server: ``v += Δ²`` (Reddi et al. 2021, Algorithm 2).

    Parameters
    ----------
    sampling, eta_l, weighted
        As for :class:`FedOpt`.
    eta, beta_1, tau
        Server learning rate, momentum and adaptivity (see
        :class:`~privet.fl.aggregate.ServerOptimizer`); Flower's defaults.
    """

    def __init__(
        self,
        sampling: ClientSampling | None = None,
        *,
        eta: float = 0.1,
        beta_1: float = 0.9,
        tau: float = 1e-9,
        eta_l: float | None = None,
        weighted: bool = True,
    ) -> None:
        optimizer = ServerOptimizer(FedOptKind.ADAGRAD, eta=eta, beta_1=beta_1, tau=tau)
        super().__init__(optimizer, sampling, eta_l=eta_l, weighted=weighted)


class FedAdam(FedOpt):
    """Adam on the server, without bias correction: ``v = β2 v + (1 - β2) Δ²``
    (Reddi et al. 2021, Algorithm 2).

    Parameters
    ----------
    sampling, eta_l, weighted
        As for :class:`FedOpt`.
    eta, beta_1, beta_2, tau
        See :class:`~privet.fl.aggregate.ServerOptimizer`; Flower's defaults.
    """

    def __init__(
        self,
        sampling: ClientSampling | None = None,
        *,
        eta: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        tau: float = 1e-9,
        eta_l: float | None = None,
        weighted: bool = True,
    ) -> None:
        optimizer = ServerOptimizer(FedOptKind.ADAM, eta=eta, beta_1=beta_1, beta_2=beta_2, tau=tau)
        super().__init__(optimizer, sampling, eta_l=eta_l, weighted=weighted)


class FedYogi(FedOpt):
    """Yogi on the server: ``v -= (1 - β2) Δ² sign(v - Δ²)`` (Reddi et al. 2021,
    Algorithm 2; Zaheer et al., NeurIPS 2018), which grows ``v`` no faster than Adagrad.

    Parameters
    ----------
    sampling, eta_l, weighted
        As for :class:`FedOpt`.
    eta, beta_1, beta_2, tau
        See :class:`~privet.fl.aggregate.ServerOptimizer`; Flower's ``FedYogi`` defaults.
    """

    def __init__(
        self,
        sampling: ClientSampling | None = None,
        *,
        eta: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        tau: float = 1e-3,
        eta_l: float | None = None,
        weighted: bool = True,
    ) -> None:
        optimizer = ServerOptimizer(FedOptKind.YOGI, eta=eta, beta_1=beta_1, beta_2=beta_2, tau=tau)
        super().__init__(optimizer, sampling, eta_l=eta_l, weighted=weighted)
