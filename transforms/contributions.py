"""Contributions (cotisations) per employee and branch, employer and employee shares, in centimes.

Each employee's amount is rounded per branch and share (transforms.money.apply_rate); totals are
sums of those rounded amounts, so that a declaration total always equals the sum of its lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from schemas import BRANCHES, Rate
from transforms.money import apply_rate, exact_sum
from transforms.parse import Block

SHARES = ("employer", "employee")


def declared_salaries(b02: Block, b04: Block, entrants: np.ndarray) -> pd.DataFrame:
    """One row per declared person, B02 then the real entrants (`entrants` masks B04):
    line, insured_number, gross, capped."""
    return pd.DataFrame(
        {
            "line": np.concatenate([b02.line, b04.line[entrants]]),
            "insured_number": np.concatenate(
                [b02.number("N_Num_Assure"), b04.number("N_Num_Assure")[entrants]]
            ),
            "gross": np.concatenate(
                [b02.number("N_Salaire_Reel"), b04.number("N_Sal_Reel")[entrants]]
            ),
            "capped": np.concatenate(
                [b02.number("N_Salaire_Plaf"), b04.number("N_Sal_Plaf")[entrants]]
            ),
        }
    )


def per_employee(salaries: pd.DataFrame, rates: Sequence[Rate]) -> pd.DataFrame:
    """A column `<branch>_<share>` per rate, plus `employer` and `employee` line totals."""
    bases = {base: salaries[base].to_numpy(dtype=np.int64) for base in ("gross", "capped")}
    columns = {
        f"{rate.branch}_{rate.share}": apply_rate(bases[rate.base], rate.rate_millionths)
        for rate in rates
    }
    for share in SHARES:  # numpy sums, then one DataFrame: pandas column by column is slow
        parts = [v for k, v in columns.items() if k.endswith(f"_{share}")]
        columns[share] = (
            np.asarray(np.sum(parts, axis=0, dtype=np.int64))
            if parts
            else np.zeros(len(salaries), dtype=np.int64)
        )
    return pd.DataFrame(columns, index=salaries.index)


@dataclass(frozen=True)
class BranchAmounts:
    base: int
    employer: int
    employee: int


@dataclass(frozen=True)
class ContributionSummary:
    """What one declaration owes, per branch and in total (centimes)."""

    branches: dict[str, BranchAmounts]
    employer: int
    employee: int

    @property
    def due(self) -> int:
        return self.employer + self.employee

    def as_dict(self) -> dict[str, object]:
        return {
            "branches": {name: asdict(amounts) for name, amounts in self.branches.items()},
            "total": {"employer": self.employer, "employee": self.employee, "due": self.due},
        }


def summarise(
    salaries: pd.DataFrame, amounts: pd.DataFrame, rates: Sequence[Rate]
) -> ContributionSummary:
    """Per-branch totals of per_employee's output; a branch without a share shows 0 for it."""
    branches = {}
    for branch in BRANCHES:
        branch_rates = [r for r in rates if r.branch == branch]
        base = branch_rates[0].base if branch_rates else "gross"
        shares = {
            share: _total(amounts, f"{branch}_{share}") if f"{branch}_{share}" in amounts else 0
            for share in SHARES
        }
        branches[branch] = BranchAmounts(_total(salaries, base), **shares)
    return ContributionSummary(branches, _total(amounts, "employer"), _total(amounts, "employee"))


def _total(frame: pd.DataFrame, column: str) -> int:
    """A column's exact sum: the gross salaries of a full declaration can pass 2**63."""
    return exact_sum(frame[column].to_numpy(dtype=np.int64))
