"""transforms.penalty_assessment on literal frames: which cases are due, and which changed."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from transforms.penalty_assessment import assess, cases, changed, due_periods

D = dt.date
JUNE = "202506"
GENERAL, AMO = "MAJ_GEN_LOI_02_24", "MAJ_AMO_65_00"


def test_due_periods_start_at_the_first_and_stop_at_the_last_deadline_passed() -> None:
    assert due_periods("202504", D(2025, 7, 21)) == ["202504", "202505"]  # June: extended
    assert due_periods("202504", D(2025, 7, 22)) == ["202504", "202505", JUNE]
    assert due_periods("202506", D(2025, 8, 12)) == [JUNE, "202507"]  # due Monday 11 Aug


def test_cases_fill_a_missing_period_with_the_last_declarations_employees() -> None:
    declared = pd.DataFrame(
        {
            "affiliate": [1, 1, 2],
            "period": ["202508", "202510", "202510"],
            "declaration_id": [10, 11, 12],
            "employees": [4, 7, 9],
            "declared_on": [D(2025, 9, 1), D(2025, 11, 1), D(2025, 11, 1)],
            "due": [100, 200, 300],
            "due_amo": [10, 20, 30],
        }
    )

    grid = cases(declared, D(2025, 12, 12))

    assert grid[["affiliate", "period", "employees"]].values.tolist() == [
        [1, "202508", 4],
        [1, "202509", 4],  # missing: the employees of 202508
        [1, "202510", 7],
        [1, "202511", 7],
        [2, "202510", 9],  # nothing before its first declaration
        [2, "202511", 9],
    ]
    assert grid["declaration_id"].isna().tolist() == [False, True, False, True, False, True]


def test_a_row_is_new_only_where_the_penalty_changed() -> None:
    keys = {"affiliate": [1, 2, 3], "period": ["202509"] * 3}
    now = pd.DataFrame(
        keys
        | {
            "months_late": [2, 1, 0],
            "majoration_general": [400, 300, 0],
            "majoration_amo": [20, 10, 0],
            "astreinte_months": [0, 0, 0],
            "astreinte": [0, 0, 0],
            "rules": ["MAJ_GEN_1972", "MAJ_GEN_1972", ""],
        }
    )
    before = now.iloc[:2].assign(months_late=[1, 1], majoration_general=[300, 300])

    assert changed(now, before)["affiliate"].tolist() == [1]  # 3 owes nothing: no row


def test_assess_prices_a_late_payment_and_a_missing_declaration() -> None:
    declared = pd.DataFrame(
        {
            "affiliate": [1, 2],
            "period": ["202509", "202508"],
            "declaration_id": [10, 20],
            "employees": [9, 4],
            "declared_on": [D(2025, 10, 8), D(2025, 9, 5)],
            "due": [100_000, 50_000],
            "due_amo": [20_000, 10_000],
        }
    )
    payments = pd.DataFrame(
        {
            "affiliate": [1, 2],
            "period": ["202509", "202508"],
            "amount": [100_000, 50_000],
            "paid_on": [D(2025, 10, 20), D(2025, 9, 9)],
        }
    )

    out, months = assess(cases(declared, D(2025, 10, 12)), payments, as_of=D(2025, 10, 12))

    columns = ["affiliate", "period", "due", "paid", "months_late", "majoration_general"]
    columns += ["majoration_amo", "astreinte_months", "astreinte", "total", "rules"]
    expected = pd.DataFrame(
        [
            [
                1,
                "202509",
                100_000,
                0,
                1,
                2_400,
                200,
                0,
                0,
                2_600,
                "MAJ_AMO_65_00;MAJ_GEN_LOI_02_24",
            ],
            [2, "202508", 50_000, 50_000, 0, 0, 0, 0, 0, 0, ""],
            [2, "202509", 0, 0, 0, 0, 0, 1, 20_000, 20_000, "AST_DECL_17_02"],  # missing
        ],
        columns=columns,
    ).astype({"period": out["period"].dtype, "rules": out["rules"].dtype})
    pd.testing.assert_frame_equal(out[columns], expected)
    assert months[["affiliate", "period", "month"]].values.tolist() == [[1, "202509", 1]]
