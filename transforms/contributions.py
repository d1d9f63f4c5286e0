"""Contributions (cotisations) per employee and branch, employer and employee shares, in centimes.

Each employee's amount is rounded per branch and share (transforms.money.apply_rate); totals are
sums of those rounded amounts, so that a declaration total always equals the sum of its lines.

The work is done on numpy columns, every rate at once as one (rates, employees) matrix: a file
costs a handful of numpy calls whatever its size. The pandas functions (declared_salaries,
per_employee, summarise) are the same computations for callers that hold frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from schemas import BRANCHES, Rate
from transforms.money import apply_rate, exact_row_sums
from transforms.parse import Block

SHARES = ("employer", "employee")
Columns = dict[str, np.ndarray]


def salary_columns(b02: Block, b04: Block, entrants: np.ndarray) -> Columns:
    """One entry per declared person, B02 then the real entrants (`entrants` masks B04):
    line, insured_number, gross, capped (numpy int64)."""
    return {
        "line": np.concatenate([b02.line, b04.line[entrants]]),
        "insured_number": np.concatenate(
            [b02.number("N_Num_Assure"), b04.number("N_Num_Assure")[entrants]]
        ),
        "gross": np.concatenate([b02.number("N_Salaire_Reel"), b04.number("N_Sal_Reel")[entrants]]),
        "capped": np.concatenate(
            [b02.number("N_Salaire_Plaf"), b04.number("N_Sal_Plaf")[entrants]]
        ),
    }


def rate_matrix(salaries: Mapping[str, np.ndarray], rates: Sequence[Rate]) -> np.ndarray:
    """(len(rates), employees) int64: row i is rates[i] applied to each employee's base."""
    gross = np.asarray(salaries["gross"], dtype=np.int64)
    bases = np.stack([gross, np.asarray(salaries["capped"], dtype=np.int64)])
    which = [0 if rate.base == "gross" else 1 for rate in rates]
    millionths = np.array([rate.rate_millionths for rate in rates], dtype=np.int64)
    return apply_rate(bases[which], millionths[:, None])


def amount_columns(salaries: Mapping[str, np.ndarray], rates: Sequence[Rate]) -> Columns:
    """A column `<branch>_<share>` per rate, plus `employer` and `employee` line totals."""
    matrix = rate_matrix(salaries, rates)
    columns = {f"{rate.branch}_{rate.share}": row for rate, row in zip(rates, matrix, strict=True)}
    for share in SHARES:
        of_share = [i for i, rate in enumerate(rates) if rate.share == share]
        columns[share] = matrix[of_share].sum(axis=0)  # an empty share sums to zeros
    return columns


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


def summary_of(
    salaries: Mapping[str, np.ndarray], amounts: Mapping[str, np.ndarray], rates: Sequence[Rate]
) -> ContributionSummary:
    """Per-branch totals of amount_columns' output; a branch without a share shows 0 for it.
    Sums are exact (the gross salaries of a full declaration can pass 2**63)."""
    names = ["gross", "capped", *(f"{rate.branch}_{rate.share}" for rate in rates)]
    sources = (salaries, salaries, *([amounts] * len(rates)))
    rows = np.stack(
        [np.asarray(source[name], np.int64) for source, name in zip(sources, names, strict=True)]
    )
    totals = dict(zip(names, exact_row_sums(rows), strict=True))
    branches = {}
    for branch in BRANCHES:
        base = next((rate.base for rate in rates if rate.branch == branch), "gross")
        shares = {share: totals.get(f"{branch}_{share}", 0) for share in SHARES}
        branches[branch] = BranchAmounts(totals[base], **shares)
    employer, employee = (
        sum(totals[f"{rate.branch}_{share}"] for rate in rates if rate.share == share)
        for share in SHARES
    )
    return ContributionSummary(branches, employer, employee)


def declared_salaries(b02: Block, b04: Block, entrants: np.ndarray) -> pd.DataFrame:
    """salary_columns as a frame."""
    return pd.DataFrame(salary_columns(b02, b04, entrants))


def per_employee(salaries: pd.DataFrame, rates: Sequence[Rate]) -> pd.DataFrame:
    """amount_columns as a frame, on the salaries' index."""
    return pd.DataFrame(amount_columns(_bases(salaries), rates), index=salaries.index)


def summarise(
    salaries: pd.DataFrame, amounts: pd.DataFrame, rates: Sequence[Rate]
) -> ContributionSummary:
    """summary_of on frames."""
    columns = {str(name): amounts[name].to_numpy(np.int64) for name in amounts.columns}
    return summary_of(_bases(salaries), columns, rates)


def _bases(salaries: pd.DataFrame) -> Columns:
    return {name: salaries[name].to_numpy(np.int64) for name in ("gross", "capped")}
