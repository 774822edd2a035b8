"""Byzantine-robust strategies: FedMedian, FedTrimmedAvg, Krum and Multi-Krum.

Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
Rates", ICML 2018 (coordinate-wise median and trimmed mean); Blanchard et al.,
"Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent",
NeurIPS 2017 (Krum, Multi-Krum).

All of them need every client's update, so they cannot run over secure
aggregation (``needs_individual_updates = True``), and none weights by example
counts: a Byzantine client could report any count it likes. An update whose
layout differs from the global parameters, or that holds NaN or infinity, is
set aside as a failure rather than aborting the round, so one malformed client
cannot stop training; the ``rejected`` metric counts them.
"""

from __future__ import annotations

from privet.fl.aggregate import (
    check_krum_counts,
    check_trim_fraction,
    coordinate_median,
    multi_krum_select,
    trimmed_mean,
)
from privet.fl.parameters import Parameters
from privet.fl.strategy import Aggregate, ClientSampling, SampledStrategy
from privet.fl.types import FitResult, Metrics, RoundAborted, RoundResults

__all__ = ["FedMedian", "FedTrimmedAvg", "Krum", "MultiKrum"]


class _RobustStrategy(SampledStrategy):
    needs_individual_updates = True


class FedMedian(_RobustStrategy):
    """The coordinate-wise median of the clients' parameters (Yin et al. 2018).

    With an even number of clients each coordinate is the mean of its two middle values.
    """

    def __init__(self, sampling: ClientSampling | None = None) -> None:
        super().__init__(sampling)

    def aggregate_fit(
        self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
    ) -> Aggregate:
        updates = self.collect(parameters, results)
        median = coordinate_median(updates.matrix)
        return Aggregate(parameters.from_vector(median), updates.metrics())


class FedTrimmedAvg(_RobustStrategy):
    """The coordinate-wise trimmed mean of the clients' parameters (Yin et al. 2018).

    Parameters
    ----------
    beta
        Fraction cut from *each* end, in [0, 0.5): of ``n`` values per coordinate the
        ``floor(beta * n)`` smallest and as many largest are dropped — the cut of
        ``scipy.stats.trim_mean`` and Flower's ``FedTrimmedAvg``. ``beta = 0`` is the
        plain (unweighted) mean.
    sampling
        Which clients take part each round (default: all of them).
    """

    def __init__(self, beta: float = 0.2, sampling: ClientSampling | None = None) -> None:
        super().__init__(sampling)
        self.beta = check_trim_fraction(beta)

    def aggregate_fit(
        self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
    ) -> Aggregate:
        updates = self.collect(parameters, results)
        averaged = trimmed_mean(updates.matrix, self.beta)
        metrics = updates.metrics()
        metrics["trimmed_per_end"] = int(self.beta * len(updates.clients))
        return Aggregate(parameters.from_vector(averaged), metrics)


class MultiKrum(_RobustStrategy):
    """The plain mean of the ``m`` updates with the lowest Krum scores (Blanchard et al. 2017).

    Krum scores each of the ``n`` updates by the sum of its squared distances to its
    ``n - f - 2`` nearest others; the ``f`` Byzantine updates can only win by sitting
    close to the honest ones. A round needs ``n > 2f + 2`` and ``n >= m + f`` answers,
    or it is aborted (:class:`RoundAborted`) and the model left unchanged; choose
    ``ClientSampling.min_fit_clients`` accordingly.

    Parameters
    ----------
    num_byzantine
        ``f >= 0``, how many clients may be Byzantine.
    num_selected
        ``m >= 1`` updates to average; ``m = 1`` is Krum.
    sampling
        Which clients take part each round (default: all of them).

    The ``selected`` metric lists the chosen clients, best score first, comma-separated.
    """

    def __init__(
        self, num_byzantine: int, num_selected: int, sampling: ClientSampling | None = None
    ) -> None:
        super().__init__(sampling)
        self.num_byzantine, self.num_selected = check_krum_counts(num_byzantine, num_selected)

    def aggregate_fit(
        self, server_round: int, parameters: Parameters, results: RoundResults[FitResult]
    ) -> Aggregate:
        updates = self.collect(parameters, results)
        n, f, m = len(updates.clients), self.num_byzantine, self.num_selected
        if n <= 2 * f + 2 or n < m + f:
            raise RoundAborted(
                f"Krum needs n > 2f + 2 and n >= m + f answers; got n={n} well-formed "
                f"answers with f={f}, m={m} ({updates.failures} failed, "
                f"{updates.rejected} rejected)"
            )
        chosen = multi_krum_select(updates.matrix, f, m)
        averaged = updates.matrix[chosen].mean(axis=0)
        metrics: Metrics = {
            **updates.metrics(),
            "selected": ",".join(updates.clients[int(i)] for i in chosen),
            "selected_count": len(chosen),
        }
        return Aggregate(parameters.from_vector(averaged), metrics)


class Krum(MultiKrum):
    """The single update with the lowest Krum score (Blanchard et al. 2017): Multi-Krum
    with ``m = 1``, returned unchanged.

    Parameters
    ----------
    num_byzantine
        ``f >= 0``, how many clients may be Byzantine; a round needs ``n > 2f + 2``.
    sampling
        Which clients take part each round (default: all of them).
    """

    def __init__(self, num_byzantine: int, sampling: ClientSampling | None = None) -> None:
        super().__init__(num_byzantine, 1, sampling)
