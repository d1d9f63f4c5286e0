"""The data-quality rules of a period's loaded declarations, as a table, and the frames they
read: pure, no Great Expectations import (cnss_edi.quality turns each rule into a GX
expectation and runs them).

Each rule names its GX expectation class, its arguments and what it means in words, so that a
failure reads « declaration_line.days_in_range failed on 1 of 250 rows ». The expected
contributions are recomputed with the dated rates of the period (schemas/rates.csv) through
transforms.money's one rounding function, per line and per declaration and branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from schemas import BRANCHES, ceiling_for, limits, rates_for, situations
from transforms.contributions import per_employee
from validators.lines import NO_NUMBER_YET, OCCASIONAL

LINE_COLUMNS = {
    "declaration_id": "int64",
    "line_no": "int64",
    "insured_number": "int64",
    "days": "int64",
    "gross_salary": "int64",
    "capped_salary": "int64",
    "employer_contribution": "int64",
    "employee_contribution": "int64",
}
CONTRIBUTION_COLUMNS = dict.fromkeys(("declaration_id", "base", "employer", "employee"), "int64")
# Occasional labour and not-yet-registered entrants share a placeholder number (validators.lines).
PLACEHOLDERS = (OCCASIONAL, NO_NUMBER_YET)


@dataclass(frozen=True)
class Rule:
    """One expectation: `kind` is a class of great_expectations.expectations."""

    name: str
    table: str  # "declaration_line" or "contribution"
    kind: str
    kwargs: dict[str, Any]
    meaning: str
    skip_numbers: tuple[int, ...] = ()  # lines with these insured numbers are not judged


def rules(period: str) -> list[Rule]:
    """The suite for a period: its ceiling, and the situation codes of schemas/."""
    line, contribution = "declaration_line", "contribution"
    types = [
        Rule(
            f"{c}_is_{t}",
            table,
            "ExpectColumnValuesToBeOfType",
            {"column": c, "type_": t},
            f"{c} is {t}",
        )
        for table, columns in ((line, LINE_COLUMNS), (contribution, CONTRIBUTION_COLUMNS))
        for c, t in columns.items()
    ]
    days = limits().max_days
    return [
        *types,
        Rule(
            "days_in_range",
            line,
            "ExpectColumnValuesToBeBetween",
            {"column": "days", "min_value": 0, "max_value": days},
            f"declared days between 0 and {days}",
        ),
        Rule(
            "gross_not_negative",
            line,
            "ExpectColumnValuesToBeBetween",
            {"column": "gross_salary", "min_value": 0},
            "real salary ≥ 0",
        ),
        Rule(
            "capped_not_negative",
            line,
            "ExpectColumnValuesToBeBetween",
            {"column": "capped_salary", "min_value": 0},
            "capped salary ≥ 0",
        ),
        Rule(
            "capped_within_real",
            line,
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {"column_A": "gross_salary", "column_B": "capped_salary", "or_equal": True},
            "capped salary ≤ real salary",
        ),
        Rule(
            "capped_within_ceiling",
            line,
            "ExpectColumnValuesToBeBetween",
            {"column": "capped_salary", "max_value": ceiling_for(period)},
            f"capped salary ≤ the period's ceiling ({ceiling_for(period)} centimes; "
            "occasional labour excepted)",
            (OCCASIONAL,),
        ),
        Rule(
            "insured_once_per_declaration",
            line,
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": ["declaration_id", "insured_number"]},
            "an insured number once per declaration (placeholders excepted)",
            PLACEHOLDERS,
        ),
        Rule(
            "situation_known",
            line,
            "ExpectColumnValuesToBeInSet",
            {"column": "situation", "value_set": sorted(situations())},
            "situation code from schemas/situations.csv (or blank)",
        ),
        *(
            Rule(
                f"{share}_contribution_at_rates",
                line,
                "ExpectColumnPairValuesToBeEqual",
                {"column_A": f"{share}_contribution", "column_B": f"expected_{share}"},
                f"the line's {share} contribution = its salaries at the period's rates",
            )
            for share in ("employer", "employee")
        ),
        Rule(
            "branch_known",
            contribution,
            "ExpectColumnValuesToBeInSet",
            {"column": "branch", "value_set": list(BRANCHES)},
            "a branch of schemas.BRANCHES",
        ),
        *(
            Rule(
                f"{amount}_matches_lines",
                contribution,
                "ExpectColumnPairValuesToBeEqual",
                {"column_A": amount, "column_B": f"expected_{amount}"},
                f"the branch's {amount} = the sum over its declaration's lines at the rates",
            )
            for amount in ("base", "employer", "employee")
        ),
    ]


def with_expected(
    lines: pd.DataFrame, contributions: pd.DataFrame, period: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frames with what the dated rates say they should hold: `expected_employer` and
    `expected_employee` on each line; `expected_base`, `expected_employer` and
    `expected_employee` on each declaration's branch (sums over its lines)."""
    rates = rates_for(period)
    salaries = pd.DataFrame(
        {
            "gross": lines["gross_salary"].astype("int64"),
            "capped": lines["capped_salary"].astype("int64"),
        }
    )
    amounts = per_employee(salaries, rates)
    lines = lines.assign(
        expected_employer=amounts["employer"], expected_employee=amounts["employee"]
    )
    parts = []
    for branch in BRANCHES:
        mine = [r for r in rates if r.branch == branch]
        base = mine[0].base if mine else "gross"  # as transforms.contributions.summarise
        zero = pd.Series(0, index=lines.index, dtype="int64")
        parts.append(
            pd.DataFrame(
                {
                    "declaration_id": lines["declaration_id"],
                    "branch": branch,
                    "expected_base": salaries[base],
                    "expected_employer": amounts.get(f"{branch}_employer", zero),
                    "expected_employee": amounts.get(f"{branch}_employee", zero),
                }
            )
        )
    expected = pd.concat(parts).groupby(["declaration_id", "branch"], as_index=False).sum()
    contributions = contributions.merge(expected, how="left", on=["declaration_id", "branch"])
    filled = [c for c in expected.columns if c.startswith("expected_")]
    contributions[filled] = contributions[filled].fillna(0).astype("int64")
    return lines, contributions
