"""The errors privet raises for privacy-domain problems.

``PrivacyError`` subclasses ``ValueError`` so that code written against plain
argument checking keeps working; ``BudgetExceeded`` is what a ledger raises
when a charge would overspend, *before* anything is sampled or recorded.
"""

from __future__ import annotations

__all__ = ["BudgetExceeded", "PrivacyError"]


class PrivacyError(ValueError):
    """A privacy parameter, event or release request is invalid."""


class BudgetExceeded(PrivacyError):
    """A charge would exceed the ledger's (epsilon, delta) budget.

    Raised before any noise is drawn; nothing is recorded or released.

    Attributes
    ----------
    label
        The label of the refused charge.
    epsilon_after
        The epsilon the ledger would have spent had the charge been accepted.
    epsilon_budget
        The ledger's epsilon budget.
    """

    def __init__(self, label: str, epsilon_after: float, epsilon_budget: float) -> None:
        self.label = label
        self.epsilon_after = epsilon_after
        self.epsilon_budget = epsilon_budget
        super().__init__(
            f"charge {label!r} refused: epsilon would reach {epsilon_after:.6g}, "
            f"over the budget of {epsilon_budget:.6g}; nothing was released"
        )
