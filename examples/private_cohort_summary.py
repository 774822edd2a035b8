"""Summarize a cohort under one privacy budget, ledger kept on disk.

A hospital analyst describes the Wisconsin breast-cancer cohort (569 patients,
bundled with scikit-learn) by diagnosis, spending from a ledger file that
survives restarts; running the script again continues the same budget until it
is exhausted.

Usage: python examples/private_cohort_summary.py [LEDGER_PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from privet import BudgetExceeded
from privet.data import load_breast_cancer
from privet.dp import Ledger, dp_count, dp_mean, dp_quantile


def summarize(ledger: Ledger) -> list[str]:
    cohort = load_breast_cancer()
    radius = cohort.column("mean radius")
    lines = []
    for code, diagnosis in ((0, "malignant"), (1, "benign")):
        group = radius[cohort.target == code]
        try:
            count = dp_count(group, 0.1, ledger=ledger, label=f"{diagnosis} count")
            mean = dp_mean(group, 5.0, 30.0, 0.2, ledger=ledger, label=f"{diagnosis} mean radius")
            median = dp_quantile(
                group, 0.5, 5.0, 30.0, 0.2, ledger=ledger, label=f"{diagnosis} median"
            )
        except BudgetExceeded as refused:
            lines.append(f"{diagnosis}: refused — {refused}")
            continue
        lines.append(
            f"{diagnosis}: ~{count} patients, mean radius {mean:.2f} (true {group.mean():.2f}), "
            f"median {median:.2f} (true {np.median(group):.2f})"
        )
    lines.append(f"spent ε={ledger.spent():.3f} of {ledger.epsilon_budget}")
    return lines


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path("cohort-ledger.sqlite")
    ledger = Ledger(epsilon=2.0, delta=1e-6, path=path)
    print("\n".join(summarize(ledger)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
