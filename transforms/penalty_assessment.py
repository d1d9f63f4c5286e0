"""Penalties of many employers at once: which employer and period is due, and what each owes
as of a day. Pure and vectorised: frames in, frames out, the day as a parameter.

A case is an employer and a period from the employer's first declared one whose deadline has
passed (transforms.deadlines). A declared case owes majorations on its contributions (due
general and AMO) unpaid when each month of delay began; a case with no declaration owes no
majoration (nothing is known to be due) but the astreinte, counted on the employees of the
employer's latest earlier declaration (transforms.penalties).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from schemas import NoRuleInForce
from transforms.deadlines import deadline
from transforms.penalties import add_months, astreintes, majorations, summarise

KEYS = ["affiliate", "period"]
# What makes a new row: the penalty itself, not the contributions or payments behind it.
COMPARED = [
    "months_late",
    "majoration_general",
    "majoration_amo",
    "astreinte_months",
    "astreinte",
    "rules",
]
COLUMNS = [
    "affiliate",
    "period",
    "computed_on",
    "deadline",
    "late_after",
    "declaration_id",
    "declared_on",
    "employees",
    "due",
    "paid",
    *COMPARED[:3],
    "majoration",
    *COMPARED[3:5],
    "total",
    "rules",
]


def due_periods(first: str, day: dt.date) -> list[str]:
    """The periods from `first` whose deadline has passed by `day` (their penalties run)."""
    periods, month = [], dt.date(int(first[:4]), int(first[4:]), 1)
    while month < day.replace(day=1):
        period = f"{month.year}{month.month:02d}"
        try:
            if deadline(period).late_after < day:
                periods.append(period)
        except NoRuleInForce:  # before the holiday tables: no deadline, no penalty
            pass
        month = add_months(month, 1)
    return periods


def cases(declarations: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """One row per employer and due period from its first declared one: its declaration's
    columns (NaN where missing), with `employees` of the latest earlier declaration for a
    missing one, and the deadline of the period."""
    if declarations.empty:
        return declarations.assign(deadline=pd.Series(dtype="object"), late_after=None)
    first = declarations.groupby("affiliate")["period"].min()
    periods = pd.DataFrame({"period": due_periods(first.min(), day)})
    grid = first.rename("first").reset_index().merge(periods, how="cross")
    grid = grid[grid["period"] >= grid["first"]].drop(columns="first")
    counts = dict.fromkeys(["declaration_id", "employees", "due", "due_amo"], "Int64")
    declarations = declarations.astype(counts)  # integers stay exact where a period is missing
    grid = grid.merge(declarations, on=KEYS, how="left").sort_values(KEYS)
    earlier = _latest_before(grid, declarations)
    grid["employees"] = grid["employees"].fillna(earlier).astype("int64")
    dates = {p: deadline(p) for p in grid["period"].unique()}
    grid["deadline"] = grid["period"].map({p: d.deadline for p, d in dates.items()})
    grid["late_after"] = grid["period"].map({p: d.late_after for p, d in dates.items()})
    return grid.reset_index(drop=True)


def _latest_before(grid: pd.DataFrame, declarations: pd.DataFrame) -> pd.Series:
    """For each row of `grid`, the employees of its employer's latest declaration for an
    earlier period (merge_asof on the period as a number)."""
    left = grid[KEYS].assign(row=np.arange(len(grid)), at=grid["period"].astype("int64"))
    right = declarations[["affiliate", "period", "employees"]].assign(
        at=declarations["period"].astype("int64")
    )
    found = pd.merge_asof(
        left.sort_values("at"),
        right.drop(columns="period").sort_values("at"),
        on="at",
        by="affiliate",
        allow_exact_matches=False,
    ).sort_values("row")
    return pd.Series(found["employees"].to_numpy(), index=grid.index)


def assess(
    grid: pd.DataFrame, payments: pd.DataFrame, *, as_of: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The penalty of every case of `grid` as of `as_of` (COLUMNS, amounts in centimes), and
    its months of majoration (transforms.penalties.majorations)."""
    declared = grid[grid["declaration_id"].notna()]
    dues = declared[KEYS].assign(
        due_general=(declared["due"] - declared["due_amo"]).astype("int64"),
        due_amo=declared["due_amo"].astype("int64"),
    )
    months = majorations(dues, payments, as_of=as_of)
    late = summarise(months, dues)
    fines = astreintes(grid[[*KEYS, "employees", "declared_on"]], as_of=as_of)
    paid = payments[payments["paid_on"] <= as_of].groupby(KEYS)["amount"].sum().rename("paid")
    out = (
        grid.merge(late, on=KEYS, how="left")
        .merge(fines.drop(columns=["employees", "declared_on"]), on=KEYS, how="left")
        .merge(paid.reset_index(), on=KEYS, how="left")
    )
    counts = [*COMPARED[:3], "majoration", "due", "paid"]
    out = out.fillna(dict.fromkeys(counts, 0) | {"rules": ""}).astype(
        dict.fromkeys(counts, "int64")
    )
    rules = out["rules"] + ";" + out["astreinte_rule"]
    combined = {text: ";".join(sorted(set(text.split(";")) - {""})) for text in rules.unique()}
    out["rules"] = rules.map(combined)  # a few distinct combinations, mapped at once
    out["total"] = out["majoration"] + out["astreinte"]
    out["computed_on"] = as_of
    return out[COLUMNS], months


def changed(assessed: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """The rows whose penalty differs from the latest row before (none: nothing owed)."""
    before = assessed[KEYS].merge(previous, on=KEYS, how="left")
    before = before.fillna(dict.fromkeys(COMPARED[:-1], 0) | {"rules": ""})
    differs = np.zeros(len(assessed), dtype=bool)
    for column in COMPARED:
        differs |= assessed[column].to_numpy() != before[column].to_numpy()
    return assessed[differs]
