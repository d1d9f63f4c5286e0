"""transforms.contributions: per-employee amounts per branch and share, and their summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from schemas import BRANCHES, Rate, rates_for
from tests.edi import declaration, get_int, line_numbers
from transforms.contributions import (
    BranchAmounts,
    declared_salaries,
    per_employee,
    summarise,
)
from transforms.money import apply_rate
from transforms.parse import parse

# The rates of cnss_rules.md §1 (in force since 2014-12-01), in millionths.
RATES = (
    Rate("family_allowances", "employer", "gross", 64_000, "S1"),
    Rate("short_term", "employer", "capped", 10_500, "S1"),
    Rate("short_term", "employee", "capped", 5_200, "S1"),
    Rate("long_term", "employer", "capped", 79_300, "S1"),
    Rate("long_term", "employee", "capped", 39_600, "S1"),
    Rate("amo", "employer", "gross", 22_600, "S1"),
    Rate("amo", "employee", "gross", 22_600, "S1"),
    Rate("amo_solidarity", "employer", "gross", 18_500, "S1"),
    Rate("professional_training", "employer", "gross", 16_000, "S1"),
)
COLUMNS = [f"{r.branch}_{r.share}" for r in RATES]


def salaries(rows: list[tuple[int, int]]) -> pd.DataFrame:
    """(gross, capped) pairs as declared_salaries() lays them out."""
    return pd.DataFrame(
        {
            "line": pd.array(range(3, 3 + len(rows)), dtype="Int64"),
            "block": "B02",
            "insured_number": pd.array(range(100_000_010, 100_000_010 + len(rows)), dtype="Int64"),
            "gross": pd.array([g for g, _ in rows], dtype="Int64"),
            "capped": pd.array([c for _, c in rows], dtype="Int64"),
        }
    )


def test_rates_in_force_are_the_documented_ones():
    table = {(r.branch, r.share, r.base, r.rate_millionths) for r in rates_for("202610")}
    assert table == {(r.branch, r.share, r.base, r.rate_millionths) for r in RATES}
    employer = sum(r.rate_millionths for r in RATES if r.share == "employer")
    employee = sum(r.rate_millionths for r in RATES if r.share == "employee")
    assert (employer, employee) == (210_900, 67_400)  # 21.09 % and 6.74 %


def test_per_employee_at_below_and_above_the_ceiling():
    frame = salaries([(600_000, 600_000), (1_000_000, 600_000), (1_250, 1_250)])
    # Row 1, 6,000 MAD: every base is the ceiling.
    # Row 2, 10,000 MAD: gross branches on 10,000, capped branches on 6,000.
    # Row 3, 12.50 MAD: each amount rounded half-up on its own (6.5 c -> 7, 49.5 c -> 50).
    expected = pd.DataFrame(
        [
            [38_400, 6_300, 3_120, 47_580, 23_760, 13_560, 13_560, 11_100, 9_600],
            [64_000, 6_300, 3_120, 47_580, 23_760, 22_600, 22_600, 18_500, 16_000],
            [80, 13, 7, 99, 50, 28, 28, 23, 20],
        ],
        columns=COLUMNS,
        dtype=np.int64,
    )
    expected["employer"] = np.array([126_540, 174_980, 263], dtype=np.int64)
    expected["employee"] = np.array([40_440, 49_480, 85], dtype=np.int64)
    assert_frame_equal(per_employee(frame, RATES), expected)


def test_check_values_at_the_ceiling():
    # cnss_rules.md: employee capped part 4.48 % -> 268.80 MAD; employer capped 8.98 % -> 538.80.
    for gross in (600_000, 1_000_000, 50_000_000):
        out = per_employee(salaries([(gross, 600_000)]), RATES).iloc[0]
        assert out["short_term_employee"] + out["long_term_employee"] == 26_880
        assert out["short_term_employee"] == 3_120
        assert out["long_term_employee"] == 23_760
        assert out["short_term_employer"] + out["long_term_employer"] == 53_880


def test_per_employee_keeps_the_index_and_handles_no_rows():
    frame = salaries([(600_000, 600_000), (1_250, 1_250)]).set_axis([7, 9])
    out = per_employee(frame, RATES)
    assert out.index.tolist() == [7, 9]
    empty = per_employee(salaries([]), RATES)
    assert list(empty.columns) == [*COLUMNS, "employer", "employee"]
    assert len(empty) == 0


def test_declared_salaries_stacks_b02_then_real_entrants():
    raw = declaration()
    b02_lines, b04_lines = line_numbers(raw, "B02"), line_numbers(raw, "B04")
    parsed = parse(raw)
    keep = np.array([False, True])  # the first B04 left out, as the empty B04 would be
    out = declared_salaries(parsed.block("B02"), parsed.block("B04"), keep)
    rows = [(n, "B02", "N_Salaire_Reel", "N_Salaire_Plaf") for n in b02_lines]
    rows.append((b04_lines[1], "B04", "N_Sal_Reel", "N_Sal_Plaf"))
    expected = pd.DataFrame(
        {
            "line": [n for n, *_ in rows],
            "insured_number": [get_int(raw, n, r, "N_Num_Assure") for n, r, *_ in rows],
            "gross": [get_int(raw, n, r, gross) for n, r, gross, _ in rows],
            "capped": [get_int(raw, n, r, capped) for n, r, _, capped in rows],
        },
        dtype=np.int64,
    )
    assert_frame_equal(out[list(expected.columns)], expected, check_dtype=False)
    for column in expected.columns:
        assert pd.api.types.is_integer_dtype(out[column].dtype), column


def test_summarise_branches_and_totals():
    frame = salaries([(600_000, 600_000), (1_000_000, 600_000), (1_250, 1_250)])
    amounts = per_employee(frame, RATES)
    summary = summarise(frame, amounts, RATES)
    gross, capped = 1_601_250, 1_201_250
    assert summary.branches == {
        "family_allowances": BranchAmounts(gross, 38_400 + 64_000 + 80, 0),
        "short_term": BranchAmounts(capped, 6_300 * 2 + 13, 3_120 * 2 + 7),
        "long_term": BranchAmounts(capped, 47_580 * 2 + 99, 23_760 * 2 + 50),
        "amo": BranchAmounts(gross, 13_560 + 22_600 + 28, 13_560 + 22_600 + 28),
        "amo_solidarity": BranchAmounts(gross, 11_100 + 18_500 + 23, 0),
        "professional_training": BranchAmounts(gross, 9_600 + 16_000 + 20, 0),
    }
    assert summary.employer == 126_540 + 174_980 + 263
    assert summary.employee == 40_440 + 49_480 + 85
    assert summary.due == summary.employer + summary.employee
    assert summary.employer == sum(b.employer for b in summary.branches.values())
    assert summary.employee == sum(b.employee for b in summary.branches.values())
    assert summary.as_dict()["total"] == {
        "employer": summary.employer,
        "employee": summary.employee,
        "due": summary.due,
    }
    assert summary.as_dict()["branches"]["amo"] == {
        "base": gross,
        "employer": 36_188,
        "employee": 36_188,
    }


def test_summarise_branch_without_rate_shows_zero():
    frame = salaries([(700_000, 600_000)])
    rates = RATES[:1]  # family allowances only
    summary = summarise(frame, per_employee(frame, rates), rates)
    assert set(summary.branches) == set(BRANCHES)
    assert summary.branches["family_allowances"] == BranchAmounts(700_000, 44_800, 0)
    assert summary.branches["long_term"].employer == summary.branches["long_term"].employee == 0
    assert (summary.employer, summary.employee) == (44_800, 0)


def test_summarise_of_no_employee_is_zero():
    frame = salaries([])
    summary = summarise(frame, per_employee(frame, RATES), RATES)
    assert summary.due == 0
    assert all(b == BranchAmounts(0, 0, 0) for b in summary.branches.values())


@pytest.mark.parametrize("period", ["201412", "202401", "202610"])
def test_rates_and_ceiling_give_the_check_values(period):
    frame = salaries([(600_000, 600_000)])
    out = per_employee(frame, rates_for(period)).iloc[0]
    assert out["short_term_employee"] + out["long_term_employee"] == 26_880
    assert out["short_term_employer"] + out["long_term_employer"] == 53_880


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10**11), min_size=1, max_size=8))
def test_summary_totals_are_sums_of_line_totals(gross):
    frame = salaries([(g, min(g, 600_000)) for g in gross])
    amounts = per_employee(frame, RATES)
    summary = summarise(frame, amounts, RATES)
    assert summary.employer == int(amounts["employer"].sum())
    assert summary.employee == int(amounts["employee"].sum())
    assert summary.employer == sum(b.employer for b in summary.branches.values())
    assert summary.employee == sum(b.employee for b in summary.branches.values())
    # Per-line rounding: each line is within half a centime per amount of the exact value.
    exact = sum(g * 121_100 + min(g, 600_000) * 89_800 for g in gross) / 10**6
    assert abs(summary.employer - exact) <= 6 * len(gross) * 0.5


def test_summary_of_a_full_declaration_at_the_top_salary_is_exact():
    # 999,999 lines (a 6-digit N_Nbr_Salaries) of the largest 13-digit salary: the gross base
    # alone is about 10**19, past int64. Such a file fails its totals, but a summary never wraps.
    count, top = 999_999, 10**13 - 1
    frame = pd.DataFrame(
        {
            "line": np.arange(count),
            "insured_number": np.arange(count),
            "gross": np.full(count, top),
            "capped": np.full(count, 600_000),
        }
    )
    summary = summarise(frame, per_employee(frame, RATES), RATES)
    assert summary.branches["family_allowances"].base == count * top
    assert summary.branches["short_term"].base == count * 600_000
    base_of = {"gross": top, "capped": 600_000}
    per_line = {r: int(apply_rate([base_of[r.base]], r.rate_millionths)[0]) for r in RATES}
    assert summary.employer == count * sum(v for r, v in per_line.items() if r.share == "employer")
    assert summary.due == count * sum(per_line.values())
