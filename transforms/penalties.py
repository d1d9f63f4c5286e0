"""Late penalties: majorations on contributions unpaid after the deadline, astreintes on late
declarations. Pure and vectorised over employers; `as_of` (the day computed for) comes in as a
parameter, the deadline from transforms.deadlines, the rates from schemas/.

Month k of delay begins the day after the deadline plus k - 1 months (deadline 10 March: month 1
is 11 March to 10 April, month 2 begins on 11 April). Each month begun is charged in full ("the
first month or fraction", then "each further month or fraction"), on what was still unpaid
when it began: a payment made during a month counts from the next one. A partial payment is
split between the general and the AMO branches in proportion to what each owes. The rates are
those in force on the day each month begins, so a debt late across loi 02.24 pays 1 % for its
months before it and 0.5 % after. A period whose extension waives penalties is late only after
the extended deadline: paid and declared by then, it owes nothing.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd

from schemas.penalties import astreinte_on, majoration_on
from transforms.deadlines import deadline
from transforms.money import apply_rate, prorate

MONTH_COLUMNS = [
    "period",
    "month",
    "starts_on",
    "rule_general",
    "rate_general",
    "rule_amo",
    "rate_amo",
    "astreinte_rule",
    "per_employee",
    "cap",
]
_KEYS = ["affiliate", "period"]


class PenaltyOverflow(ArithmeticError):
    """An amount so large that amount × rate would pass int64: a data error upstream."""


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, or the last day of that month when it is shorter."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def delay_months(periods: Iterable[str], *, as_of: dt.date) -> pd.DataFrame:
    """Every month of delay begun by `as_of` for each period, with the rules in force when it
    began (MONTH_COLUMNS; rates in millionths, astreinte amounts in centimes)."""
    rows = []
    for period in sorted(set(periods)):
        late_after = deadline(period).late_after
        month = 1
        while (starts_on := add_months(late_after, month - 1) + dt.timedelta(days=1)) <= as_of:
            general, amo = majoration_on(starts_on, "general"), majoration_on(starts_on, "amo")
            fine = astreinte_on(starts_on)
            rows.append(
                (
                    period,
                    month,
                    pd.Timestamp(starts_on),
                    general.rule,
                    general.first_month_millionths
                    if month == 1
                    else general.further_month_millionths,
                    amo.rule,
                    amo.first_month_millionths if month == 1 else amo.further_month_millionths,
                    fine.rule,
                    fine.per_employee_centimes,
                    fine.cap_centimes,
                )
            )
            month += 1
    months = pd.DataFrame(rows, columns=MONTH_COLUMNS)
    return months.astype({"month": "int64", "starts_on": "datetime64[ns]"})


def majorations(dues: pd.DataFrame, payments: pd.DataFrame, *, as_of: dt.date) -> pd.DataFrame:
    """The majoration of each month of delay, per employer and period.

    :param dues: affiliate, period, due_general, due_amo: contributions owed, in centimes.
    :param payments: affiliate, period, amount (centimes), paid_on (date).
    :returns: one row per employer, period and month begun with something unpaid: the dues'
        keys, month, starts_on, unpaid_general, unpaid_amo, the rules and rates, and
        majoration_general, majoration_amo (centimes).
    """
    months = delay_months(dues["period"], as_of=as_of)
    grid = dues[[*_KEYS, "due_general", "due_amo"]].merge(months, on="period")
    owed = (grid["due_general"] + grid["due_amo"]).to_numpy(np.int64)
    paid = np.minimum(_paid_before(grid, payments), owed)
    paid_amo = prorate(paid, grid["due_amo"].to_numpy(np.int64), owed)
    grid["unpaid_amo"] = grid["due_amo"].to_numpy(np.int64) - paid_amo
    grid["unpaid_general"] = grid["due_general"].to_numpy(np.int64) - (paid - paid_amo)
    grid = grid[(grid["unpaid_general"] > 0) | (grid["unpaid_amo"] > 0)]
    for regime in ("general", "amo"):
        unpaid, rate = grid[f"unpaid_{regime}"].to_numpy(), grid[f"rate_{regime}"].to_numpy()
        if unpaid.size and int(unpaid.max()) * int(rate.max()) >= 2**63:
            raise PenaltyOverflow(f"an unpaid {regime} amount too large to price")
        grid[f"majoration_{regime}"] = apply_rate(unpaid, rate)
    return grid.drop(columns=["astreinte_rule", "per_employee", "cap"]).reset_index(drop=True)


def _paid_before(grid: pd.DataFrame, payments: pd.DataFrame) -> np.ndarray:
    """What each employer had paid for the period before each month of delay began."""
    keys = {"affiliate": "int64", "period": "str"}  # merge_asof wants equal key dtypes
    daily = (
        payments.astype(keys)
        .assign(paid_on=pd.to_datetime(payments["paid_on"]).astype("datetime64[ns]"))
        .groupby([*_KEYS, "paid_on"])["amount"]
        .sum()
        .reset_index()
        .sort_values("paid_on")
    )
    daily["paid"] = daily.groupby(_KEYS)["amount"].cumsum()
    left = grid[[*_KEYS, "starts_on"]].astype(keys).assign(row=np.arange(len(grid)))
    left = left.sort_values("starts_on")
    found = pd.merge_asof(
        left,
        daily[[*_KEYS, "paid_on", "paid"]],
        left_on="starts_on",
        right_on="paid_on",
        by=_KEYS,
        allow_exact_matches=False,  # paid on the day a month begins: that month is begun
    )
    paid = np.zeros(len(grid), dtype=np.int64)
    paid[found["row"].to_numpy()] = found["paid"].fillna(0).to_numpy(np.int64)
    return paid


def astreintes(declarations: pd.DataFrame, *, as_of: dt.date) -> pd.DataFrame:
    """The astreinte of each employer and period for a late or missing declaration.

    :param declarations: affiliate, period, employees (of the last declaration), declared_on
        (a date, or None/NaT when not declared by `as_of`).
    :returns: the same rows with astreinte_months, astreinte (centimes) and astreinte_rule.
    """
    months = delay_months(declarations["period"], as_of=as_of)
    declared = pd.to_datetime(declarations["declared_on"]).astype("datetime64[ns]")
    last = pd.Timestamp(as_of)
    cutoff = declared.fillna(last)
    cutoff = cutoff.where(cutoff <= last, last)  # declared after `as_of`: not yet, then
    grid = declarations[[*_KEYS, "employees"]].assign(cutoff=cutoff).merge(months, on="period")
    grid = grid[grid["starts_on"] <= grid["cutoff"]]
    grid = grid.assign(astreinte=np.minimum(grid["employees"] * grid["per_employee"], grid["cap"]))
    charged = grid.groupby(_KEYS, as_index=False).agg(
        astreinte_months=("month", "count"), astreinte=("astreinte", "sum")
    )
    charged = charged.merge(_joined(grid, "astreinte_rule"), on=_KEYS)
    out = declarations.merge(charged, on=_KEYS, how="left")
    return out.fillna({"astreinte_months": 0, "astreinte": 0, "astreinte_rule": ""}).astype(
        {"astreinte_months": "int64", "astreinte": "int64"}
    )


def summarise(monthly: pd.DataFrame, dues: pd.DataFrame) -> pd.DataFrame:
    """Per employer and period of `dues`: months_late, majoration_general, majoration_amo,
    majoration and the rules applied (ids joined by ';'), 0 and '' when nothing is late."""
    totals = monthly.groupby(_KEYS, as_index=False).agg(
        months_late=("month", "count"),
        majoration_general=("majoration_general", "sum"),
        majoration_amo=("majoration_amo", "sum"),
    )
    applied = pd.concat(
        monthly.loc[monthly[f"unpaid_{regime}"] > 0, [*_KEYS, f"rule_{regime}"]].set_axis(
            [*_KEYS, "rule"], axis=1
        )
        for regime in ("general", "amo")
    )
    rules = _joined(applied, "rule").rename(columns={"rule": "rules"})
    out = dues[_KEYS].merge(totals, on=_KEYS, how="left").merge(rules, on=_KEYS, how="left")
    counts = ["months_late", "majoration_general", "majoration_amo"]
    out = out.fillna(dict.fromkeys(counts, 0) | {"rules": ""}).astype(
        dict.fromkeys(counts, "int64")
    )
    return out.assign(majoration=out["majoration_general"] + out["majoration_amo"])


def _joined(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The distinct values of `column` per employer and period, sorted and joined by ';'."""
    distinct = frame[[*_KEYS, column]].drop_duplicates().sort_values(column)
    return distinct.groupby(_KEYS)[column].agg(";".join).reset_index()
