"""A month's declaration campaign in figures: who was expected, who declared when, who paid.

Pure pandas over small per-employer frames (one row per employer, never per employee); the
monthly report draws from these. Money is int64 centimes. An employer is *expected* when a
declarant account declares for it or CNSS issued it a préétabli for the period (as the
reconciliation counts them); one that declared without being expected is still counted.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from schemas import BRANCHES
from transforms.money import prorate

UNALLOCATED = "unallocated"  # paid beyond what was declared due, or with no declaration


def employers(
    expected: np.ndarray,
    declarations: pd.DataFrame,
    payments: pd.DataFrame,
    *,
    late_after: dt.date,
) -> pd.DataFrame:
    """One row per employer expected, declared or paying.

    declarations: affiliate, first_declared (date of the first accepted version), due (the
    current version's total_due); payments: affiliate, paid (sum for the period).
    Returns affiliate, expected, declared, first_declared, late, due, paid, difference
    (paid − due), underpaid — sorted by affiliate.
    """
    everyone = np.union1d(
        np.union1d(expected, declarations["affiliate"]), payments["affiliate"]
    ).astype("int64")
    out = (
        pd.DataFrame({"affiliate": everyone})
        .merge(declarations, how="left", on="affiliate")
        .merge(payments, how="left", on="affiliate")
    )
    out["expected"] = out["affiliate"].isin(expected)
    out["declared"] = out["first_declared"].notna()
    out["due"] = out["due"].fillna(0).astype("int64")
    out["paid"] = out["paid"].fillna(0).astype("int64")
    out["difference"] = out["paid"] - out["due"]
    out["late"] = out["declared"] & (out["first_declared"] > late_after)
    out["underpaid"] = out["declared"] & (out["difference"] < 0)
    columns = ["affiliate", "expected", "declared", "first_declared", "late"]
    return out.loc[:, [*columns, "due", "paid", "difference", "underpaid"]]


def curve(employers: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Share of the expected employers declared by the end of each day from start to end:
    day, declared (count), share (0–1)."""
    days = pd.date_range(start, end, freq="D").date
    expected = employers.loc[employers["expected"] & employers["declared"], "first_declared"]
    firsts = np.sort(np.array(list(expected), dtype="datetime64[D]"))
    counts = np.searchsorted(firsts, np.array(days, dtype="datetime64[D]"), side="right")
    total = int(employers["expected"].sum())
    return pd.DataFrame(
        {"day": days, "declared": counts, "share": counts / total if total else 0.0}
    )


def by_branch(contributions: pd.DataFrame, employers: pd.DataFrame) -> pd.DataFrame:
    """Due and paid per branch (centimes), plus an `unallocated` row.

    contributions: affiliate, branch, due — the current declarations'. An employer's payments,
    up to what it owes, are split between its branches in proportion to what each owes, by
    cumulative shares (transforms.money.prorate on running totals) so that its parts add up to
    the centime; anything beyond goes to `unallocated`, so the paid column adds up to every
    payment received.
    """
    owed = (
        contributions.sort_values(["affiliate", "branch"])
        .merge(employers[["affiliate", "due", "paid"]], on="affiliate", how="left")
        .rename(columns={"due_x": "due", "due_y": "owed"})
    )
    running = owed.groupby("affiliate")["due"].cumsum().to_numpy("int64")
    whole = owed["owed"].to_numpy("int64")
    covered = np.minimum(owed["paid"].to_numpy("int64"), whole)
    upto = pd.Series(prorate(covered, running, whole), index=owed.index)
    owed["paid"] = upto - upto.groupby(owed["affiliate"]).shift(fill_value=0)
    sums = owed.groupby("branch")[["due", "paid"]].sum().reindex(list(BRANCHES), fill_value=0)
    rest = int(employers["paid"].sum()) - int(sums["paid"].sum())
    sums.loc[UNALLOCATED] = [0, rest]
    return sums.astype("int64").rename_axis("branch").reset_index()
