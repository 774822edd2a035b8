"""A test client whose update is known exactly, shared by the secure-sum engine tests."""

from __future__ import annotations

import numpy as np

from privet.fl import EvaluateInstructions, EvaluateResult, FitInstructions, FitResult, Parameters


class ShiftClient:
    """Moves the model by a fixed per-client delta: the exact mean is known."""

    def __init__(self, delta: np.ndarray, examples: int, fail: bool = False) -> None:
        self.delta = delta
        self.examples = examples
        self.fail = fail

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        if self.fail:
            raise RuntimeError("battery died")
        return FitResult(parameters.from_vector(parameters.to_vector() + self.delta), self.examples)

    def evaluate(
        self, parameters: Parameters, instructions: EvaluateInstructions
    ) -> EvaluateResult:
        return EvaluateResult(float(np.sum(parameters.to_vector() ** 2)), self.examples)
