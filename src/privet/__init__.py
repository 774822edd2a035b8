"""privet: privacy-preserving machine learning that composes and accounts for every epsilon."""

from __future__ import annotations

from privet.errors import BudgetExceeded, PrivacyError

__all__ = ["BudgetExceeded", "PrivacyError", "__version__"]
__version__ = "0.1.0"
