"""transforms.penalties, with examples worked by hand from cnss_rules.md §3: 3 % for the first
month or fraction, then 1 % (0.5 % under loi 02.24 from 20 Feb 2025) per further month or
fraction, AMO at 1 % a month; 50 MAD per employee (at most 5,000 MAD) per month of a late
declaration; nothing within an extension that waives penalties."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

import schemas
from schemas import calendar as tables
from schemas.penalties import majoration_on, penalty_regimes
from transforms import deadlines
from transforms.penalties import add_months, astreintes, majorations, summarise

D = dt.date
MAD = 100  # centimes


def owed(
    period: str, due: int, paid: list[tuple[int, dt.date]], *, amo: int = 0, as_of: dt.date
) -> tuple[int, int, int]:
    """(months_late, majoration_general, majoration_amo) of one employer."""
    dues = pd.DataFrame(
        {"affiliate": [1], "period": [period], "due_general": [due - amo], "due_amo": [amo]}
    )
    payments = pd.DataFrame(
        {
            "affiliate": [1] * len(paid),
            "period": [period] * len(paid),
            "amount": [amount for amount, _ in paid],
            "paid_on": [day for _, day in paid],
        }
    ).astype({"affiliate": "int64", "period": "str", "amount": "int64"})
    (row,) = summarise(majorations(dues, payments, as_of=as_of), dues).itertuples()
    return row.months_late, row.majoration_general, row.majoration_amo


# 202406 is due on Wednesday 10 July 2024; 202509 on Friday 10 October 2025.
@pytest.mark.parametrize(
    ("period", "paid_on", "expected"),
    [
        ("202406", D(2024, 7, 10), (0, 0, 0)),  # on the deadline: on time
        ("202406", D(2024, 7, 11), (1, 3_000 * MAD, 0)),  # a day late: 3 %
        ("202406", D(2024, 8, 10), (1, 3_000 * MAD, 0)),  # the whole first month: still 3 %
        ("202406", D(2024, 8, 11), (2, 4_000 * MAD, 0)),  # a month and a day: 3 % + 1 %
        # Months begin on the 11th: Jul 2024 at 3 %, Aug 2024 to Feb 2025 at 1 % (7), then
        # from Mar 2025 at 0.5 % (loi 02.24, in force from 20 Feb 2025) to Jul 2025 (5).
        ("202406", D(2025, 7, 11), (13, 12_500 * MAD, 0)),
        ("202509", D(2025, 10, 11), (1, 3_000 * MAD, 0)),
        ("202509", D(2025, 11, 11), (2, 3_500 * MAD, 0)),  # loi 02.24: 3 % + 0.5 %
        ("202509", D(2026, 10, 11), (13, 9_000 * MAD, 0)),  # 3 % + 12 × 0.5 %
    ],
)
def test_majoration_of_100_000_mad_paid_at_once(
    period: str, paid_on: dt.date, expected: tuple[int, int, int]
) -> None:
    due = 100_000 * MAD
    assert owed(period, due, [(due, paid_on)], as_of=paid_on) == expected


def test_amo_has_its_own_rate_from_the_first_month() -> None:
    # 10,000 MAD due of which 2,000 MAD AMO, paid a month and a day late (pre loi 02.24):
    # general 8,000 × (3 % + 1 %) = 320 MAD; AMO 2,000 × (1 % + 1 %) = 40 MAD.
    paid = [(10_000 * MAD, D(2024, 8, 11))]
    got = owed("202406", 10_000 * MAD, paid, amo=2_000 * MAD, as_of=D(2024, 8, 11))
    assert got == (2, 320 * MAD, 40 * MAD)


def test_partial_payments_reduce_what_each_later_month_is_charged_on() -> None:
    # 202501, due Monday 10 Feb 2025: 12,000 MAD of which 2,000 AMO. 6,000 paid on time, the rest
    # on 20 Apr 2025 (in month 3). Unpaid from month 1: 5,000 general and 1,000 AMO (split in
    # proportion). Month 1 (11 Feb): 3 % × 5,000 = 150, AMO 10. Months 2-3 (11 Mar, 11 Apr):
    # 0.5 % × 5,000 = 25 each, AMO 10 each. Total general 200 MAD, AMO 30 MAD.
    paid = [(6_000 * MAD, D(2025, 2, 10)), (6_000 * MAD, D(2025, 4, 20))]
    got = owed("202501", 12_000 * MAD, paid, amo=2_000 * MAD, as_of=D(2025, 8, 1))
    assert got == (3, 200 * MAD, 30 * MAD)


def test_payments_on_the_same_day_add_up_and_an_overpayment_owes_nothing() -> None:
    paid = [(400 * MAD, D(2024, 7, 10)), (700 * MAD, D(2024, 7, 10))]
    assert owed("202406", 1_000 * MAD, paid, as_of=D(2025, 1, 1)) == (0, 0, 0)


def test_unpaid_at_the_day_computed_for_counts_every_month_begun() -> None:
    # Nothing paid; computed on 11 Sep 2024: months begun 11 Jul, 11 Aug, 11 Sep.
    assert owed("202406", 1_000 * MAD, [], as_of=D(2024, 9, 11)) == (3, 50 * MAD, 0)
    assert owed("202406", 1_000 * MAD, [], as_of=D(2024, 9, 10)) == (2, 40 * MAD, 0)


def test_a_majoration_is_rounded_half_up_to_the_centime() -> None:
    # 3 % of 50 centimes is 1.5 centimes: 2. 3 % of 49 is 1.47: 1.
    assert owed("202406", 50, [], as_of=D(2024, 7, 11)) == (1, 2, 0)
    assert owed("202406", 49, [], as_of=D(2024, 7, 11)) == (1, 1, 0)


def test_the_june_2025_extension_never_produces_a_penalty_within_it() -> None:
    due = 100_000 * MAD
    # Due ordinarily on 10 Jul 2025, extended to 21 Jul 2025 with penalties waived.
    assert owed("202506", due, [(due, D(2025, 7, 21))], as_of=D(2025, 12, 1)) == (0, 0, 0)
    # A day after the extension: the first month, from 22 Jul 2025.
    assert owed("202506", due, [(due, D(2025, 7, 22))], as_of=D(2025, 12, 1)) == (
        1,
        3_000 * MAD,
        0,
    )


def test_summary_of_several_employers_at_once() -> None:
    dues = pd.DataFrame(
        {
            "affiliate": [1, 2, 3],
            "period": ["202406", "202406", "202506"],
            "due_general": [1_000 * MAD, 2_000 * MAD, 500 * MAD],
            "due_amo": [0, 500 * MAD, 0],
        }
    )
    payments = pd.DataFrame(
        {
            "affiliate": [1, 2, 3],
            "period": ["202406", "202406", "202506"],
            "amount": [1_000 * MAD, 2_500 * MAD, 500 * MAD],
            "paid_on": [D(2024, 7, 10), D(2024, 7, 11), D(2025, 7, 18)],
        }
    )
    got = summarise(majorations(dues, payments, as_of=D(2025, 1, 1)), dues)
    expected = pd.DataFrame(
        {
            "affiliate": [1, 2, 3],
            "period": ["202406", "202406", "202506"],
            "months_late": [0, 1, 0],
            "majoration_general": [0, 60 * MAD, 0],
            "majoration_amo": [0, 5 * MAD, 0],
            "rules": ["", "MAJ_AMO_65_00;MAJ_GEN_1972", ""],
            "majoration": [0, 65 * MAD, 0],
        }
    )
    assert_frame_equal(got, expected, check_dtype=False)
    assert (got.dtypes[["months_late", "majoration"]] == "int64").all()


def declared(period: str, employees: int, on: dt.date | None, *, as_of: dt.date):
    frame = pd.DataFrame(
        {"affiliate": [1], "period": [period], "employees": [employees], "declared_on": [on]}
    )
    (row,) = astreintes(frame, as_of=as_of).itertuples()
    return row.astreinte_months, row.astreinte, row.astreinte_rule


@pytest.mark.parametrize(
    ("employees", "on", "as_of", "expected"),
    [
        (10, D(2024, 7, 10), D(2025, 1, 1), (0, 0, "")),  # on time
        (10, D(2024, 7, 11), D(2025, 1, 1), (1, 500 * MAD, "AST_DECL_17_02")),  # 10 × 50
        (10, D(2024, 8, 11), D(2025, 1, 1), (2, 1_000 * MAD, "AST_DECL_17_02")),  # again
        (150, D(2024, 7, 11), D(2025, 1, 1), (1, 5_000 * MAD, "AST_DECL_17_02")),  # the cap
        (100, None, D(2024, 9, 11), (3, 15_000 * MAD, "AST_DECL_17_02")),  # still missing
        (100, D(2025, 1, 5), D(2024, 9, 11), (3, 15_000 * MAD, "AST_DECL_17_02")),  # later
    ],
)
def test_astreinte_for_a_late_or_missing_declaration(
    employees: int, on: dt.date | None, as_of: dt.date, expected: tuple[int, int, str]
) -> None:
    assert declared("202406", employees, on, as_of=as_of) == expected


def test_no_astreinte_within_the_june_2025_extension() -> None:
    assert declared("202506", 10, D(2025, 7, 21), as_of=D(2025, 12, 1)) == (0, 0, "")


def test_months_end_on_the_same_day_or_the_last_of_a_shorter_month() -> None:
    assert add_months(D(2024, 1, 31), 1) == D(2024, 2, 29)
    assert add_months(D(2025, 11, 21), 2) == D(2026, 1, 21)
    assert add_months(D(2025, 7, 21), 0) == D(2025, 7, 21)


def test_the_rules_in_force_change_on_the_dates_of_the_table() -> None:
    assert majoration_on(D(2025, 2, 19), "general").further_month_millionths == 10_000
    assert majoration_on(D(2025, 2, 20), "general").further_month_millionths == 5_000
    assert majoration_on(D(2025, 2, 20), "general").first_month_millionths == 30_000
    assert majoration_on(D(2025, 2, 20), "amo").first_month_millionths == 10_000
    assert set(penalty_regimes()) == set(schemas.BRANCHES)
    assert penalty_regimes()["amo"] == "amo"


@pytest.fixture
def without_waiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The June 2025 extension, as if CNSS had not waived the penalties."""
    for path in schemas.HERE.glob("*.csv"):
        shutil.copy(path, tmp_path)
    text = (tmp_path / "extensions.csv").read_text().replace(",yes,", ",no,")
    (tmp_path / "extensions.csv").write_text(text)
    monkeypatch.setattr(schemas, "HERE", tmp_path)
    tables.extensions.cache_clear()
    deadlines.holidays_of.cache_clear()
    yield
    tables.extensions.cache_clear()


def test_an_extension_without_waiver_leaves_penalties_running(without_waiver: None) -> None:
    due = 100_000 * MAD
    assert owed("202506", due, [(due, D(2025, 7, 21))], as_of=D(2025, 12, 1)) == (
        1,
        3_000 * MAD,
        0,
    )


def test_a_rate_finer_than_a_millionth_or_unsourced_is_a_table_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schemas import SchemaError
    from schemas import penalties as rules

    header = (
        "valid_from,regime,first_month_percent,further_month_percent,rule,source,confidence,note\n"
    )
    monkeypatch.setattr(schemas, "HERE", tmp_path)
    for row, message in [
        ("2025-01-01,general,3.0000001,1,X,S8,H,", "millionths"),
        ("2025-01-01,general,3,1,X,,H,", "source"),
        ("2025-01-01,cnops,3,1,X,S8,H,", "regime"),
    ]:
        (tmp_path / "majorations.csv").write_text(header + row + "\n")
        rules.majorations.cache_clear()
        with pytest.raises(SchemaError, match=message):
            rules.majorations()
    rules.majorations.cache_clear()


PERIODS = ["202406", "202412", "202501", "202506", "202509"]
employer = st.tuples(
    st.sampled_from(PERIODS),
    st.integers(0, 10**9),  # general due
    st.integers(0, 10**8),  # AMO due
    st.lists(st.tuples(st.integers(1, 10**9), st.integers(-40, 500)), max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(employer, min_size=1, max_size=6))
def test_many_employers_at_once_match_each_one_alone(employers) -> None:
    as_of = D(2026, 12, 1)
    dues = pd.DataFrame(
        [(n, p, g, a) for n, (p, g, a, _) in enumerate(employers)],
        columns=["affiliate", "period", "due_general", "due_amo"],
    )
    payments = pd.DataFrame(
        [
            (n, p, amount, deadlines.deadline(p).late_after + dt.timedelta(days=offset))
            for n, (p, _, _, paid) in enumerate(employers)
            for amount, offset in paid
        ],
        columns=["affiliate", "period", "amount", "paid_on"],
    ).astype({"affiliate": "int64", "period": "str", "amount": "int64"})
    together = summarise(majorations(dues, payments, as_of=as_of), dues)
    for n in range(len(employers)):
        one_due = dues[dues["affiliate"] == n]
        one_paid = payments[payments["affiliate"] == n]
        alone = summarise(majorations(one_due, one_paid, as_of=as_of), one_due)
        assert_frame_equal(
            together[together["affiliate"] == n].reset_index(drop=True), alone, check_dtype=False
        )
    assert (together["majoration"] >= 0).all()


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(PERIODS),
    st.integers(1, 10**10),
    st.integers(0, 400),
    st.integers(1, 60),
)
def test_paying_later_never_costs_less(period: str, due: int, late: int, more: int) -> None:
    late_after = deadlines.deadline(period).late_after
    day = late_after + dt.timedelta(days=late)
    later = day + dt.timedelta(days=more)
    now = owed(period, due, [(due, day)], amo=due // 5, as_of=later)
    then = owed(period, due, [(due, later)], amo=due // 5, as_of=later)
    assert sum(then[1:]) >= sum(now[1:])
    assert (late == 0) == (now == (0, 0, 0))  # on the deadline: nothing; a day after: a month


def test_no_dues_and_no_payments_give_empty_frames() -> None:
    dues = pd.DataFrame(
        {c: pd.Series([], dtype=t) for c, t in [("affiliate", "int64"), ("period", "str")]}
        | {"due_general": pd.Series([], dtype="int64"), "due_amo": pd.Series([], dtype="int64")}
    )
    payments = pd.DataFrame({"affiliate": [], "period": [], "amount": [], "paid_on": []}).astype(
        {"affiliate": "int64", "amount": "int64"}
    )
    assert summarise(majorations(dues, payments, as_of=D(2025, 8, 1)), dues).empty
    # Dues without a single payment: the empty payments still line up with them.
    dues = pd.DataFrame(
        {"affiliate": [1], "period": ["202501"], "due_general": [100], "due_amo": [0]}
    )
    (row,) = summarise(majorations(dues, payments, as_of=D(2025, 2, 11)), dues).itertuples()
    assert (row.months_late, row.majoration) == (1, 3)
