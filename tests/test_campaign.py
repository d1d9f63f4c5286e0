"""The campaign's figures on 2–5 employers: statuses, the curve by day, due and paid by branch."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from transforms.campaign import UNALLOCATED, by_branch, curve, employers

D = dt.date


def _employers() -> pd.DataFrame:
    declarations = pd.DataFrame(
        {
            "affiliate": [1, 2, 3],
            "first_declared": [D(2026, 11, 3), D(2026, 11, 10), D(2026, 11, 12)],
            "due": [10_000, 20_000, 5_000],
        }
    )
    payments = pd.DataFrame({"affiliate": [1, 2, 5], "paid": [10_000, 15_000, 700]})
    return employers(np.array([1, 2, 3, 4]), declarations, payments, late_after=D(2026, 11, 10))


def test_each_employer_is_declared_late_or_underpaid_by_its_own_figures():
    out = _employers().set_index("affiliate")

    assert out["expected"].tolist() == [True, True, True, True, False]
    assert out["declared"].tolist() == [True, True, True, False, False]
    assert out["late"].tolist() == [False, False, True, False, False]  # the 10th is on time
    assert out["underpaid"].tolist() == [False, True, True, False, False]
    assert out.loc[2, "difference"] == -5_000
    assert out.loc[5, "paid"] == 700  # paid without a declaration: counted, not expected


def test_the_curve_counts_expected_employers_declared_by_the_end_of_each_day():
    out = curve(_employers(), D(2026, 11, 2), D(2026, 11, 12))

    assert out["declared"].tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3]
    assert out["share"].iloc[-1] == 3 / 4
    assert out["day"].iloc[0] == D(2026, 11, 2)


def test_the_curve_of_a_month_with_nobody_expected_is_flat():
    none = employers(
        np.array([], dtype="int64"),
        pd.DataFrame({"affiliate": [], "first_declared": [], "due": []}),
        pd.DataFrame({"affiliate": [], "paid": []}),
        late_after=D(2026, 11, 10),
    )
    assert curve(none, D(2026, 11, 1), D(2026, 11, 3))["share"].tolist() == [0.0] * 3


def test_payments_are_split_between_branches_and_add_up_to_what_was_received():
    contributions = pd.DataFrame(
        {
            "affiliate": [1, 1, 2, 2, 3],
            "branch": ["amo", "long_term", "amo", "long_term", "amo"],
            "due": [4_000, 6_000, 10_001, 9_999, 5_000],
        }
    )
    out = by_branch(contributions, _employers()).set_index("branch")

    assert out.loc["amo", "due"] == 4_000 + 10_001 + 5_000
    assert out.loc["long_term", "due"] == 6_000 + 9_999
    # employer 2 paid 15,000 of 20,000, 3/4 of each branch: amo first (in name order),
    # 7,501 (half-up of 7,500.75), then long term what brings the running total to 15,000
    assert out.loc["amo", "paid"] == 4_000 + 7_501
    assert out.loc["long_term", "paid"] == 6_000 + 7_499
    assert out.loc[UNALLOCATED, "paid"] == 700  # employer 5 declared nothing
    assert out["paid"].sum() == 10_000 + 15_000 + 700
    assert out.loc["family_allowances"].tolist() == [0, 0]


def test_a_split_never_leaves_a_negative_remainder():
    """Three branches of a third each, paid 10 centimes: rounding each part alone gives
    3 + 3 + 3 (one lost) or, on 20 centimes, 7 + 7 + 7 (one too many)."""
    contributions = pd.DataFrame(
        {"affiliate": [1] * 3, "branch": ["amo", "long_term", "short_term"], "due": [10, 10, 10]}
    )
    for paid in (10, 20, 29):
        frame = employers(
            np.array([1]),
            pd.DataFrame({"affiliate": [1], "first_declared": [D(2026, 11, 2)], "due": [30]}),
            pd.DataFrame({"affiliate": [1], "paid": [paid]}),
            late_after=D(2026, 11, 10),
        )
        out = by_branch(contributions, frame).set_index("branch")
        assert out.loc[UNALLOCATED, "paid"] == 0, paid
        assert out["paid"].sum() == paid
