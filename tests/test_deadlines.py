"""transforms.deadlines: the 10th of the next month, rolled past weekends and holidays, or the
extension's date; the calendar tables it reads checked against the `holidays` package."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from schemas import NoRuleInForce, SchemaError
from schemas import calendar as tables
from transforms import deadlines
from transforms.deadlines import PeriodError, deadline, holiday_on, parse_period

D = dt.date


@pytest.mark.parametrize(
    ("period", "expected", "why"),
    [
        ("202401", D(2024, 2, 12), ["2024-02-10 is a Saturday", "2024-02-11 is a Sunday"]),
        ("202402", D(2024, 3, 11), ["2024-03-10 is a Sunday"]),
        # Aïd Al Fitr 1445: Wednesday 10 April 2024 as announced, and its second day.
        ("202403", D(2024, 4, 12), ["2024-04-10 is a public holiday: Aïd Al Fitr (1er jour)"]),
        ("202404", D(2024, 5, 10), []),
        ("202407", D(2024, 8, 12), ["2024-08-10 is a Saturday"]),
        ("202410", D(2024, 11, 11), ["2024-11-10 is a Sunday"]),
        ("202504", D(2025, 5, 12), ["2025-05-10 is a Saturday"]),
        ("202505", D(2025, 6, 10), []),  # the bridge of Monday 9 June 2025 is the day before
        # June 2025: extended twice, to 17 then 21 July 2025, without penalties.
        ("202506", D(2025, 7, 21), ["extended by CNSS to 2025-07-17", "to 2025-07-21"]),
        ("202507", D(2025, 8, 11), ["2025-08-10 is a Sunday"]),
        # Saturday, then the Manifeste de l'Indépendance on a Sunday.
        ("202512", D(2026, 1, 12), ["2026-01-11 is a Sunday and a public holiday: Manifeste"]),
        ("202604", D(2026, 5, 11), ["2026-05-10 is a Sunday"]),
        ("202609", D(2026, 10, 12), ["2026-10-10 is a Saturday"]),
        ("202611", D(2026, 12, 10), []),
        # A year before the observed table: Aïd Al Adha 1426 from the package, flagged.
        ("200512", D(2006, 1, 12), ["2006-01-10 is a public holiday: Fête du sacrifice"]),
    ],
)
def test_deadlines_over_several_years(period: str, expected: dt.date, why: list[str]) -> None:
    due = deadline(period)
    assert due.deadline == expected
    assert due.base == D(expected.year, expected.month, 10)
    text = "\n".join(due.reasons)
    assert all(part in text for part in why), text
    assert bool(due.reasons) == (expected != due.base)
    assert due.estimated == (period == "200512")


def test_the_june_2025_extension_waives_penalties_until_its_deadline() -> None:
    due = deadline("202506")
    assert (due.ordinary, due.deadline, due.late_after) == (
        D(2025, 7, 10),
        D(2025, 7, 21),
        D(2025, 7, 21),
    )
    assert due.as_json() == {
        "period": "202506",
        "deadline": "2025-07-21",
        "base": "2025-07-10",
        "reasons": [
            "extended by CNSS to 2025-07-17 (penalties waived) [S21]",
            "extended by CNSS to 2025-07-21 (penalties waived) [S21]",
        ],
        "estimated": False,
    }


def _closed(day: dt.date) -> bool:
    return day.weekday() >= 5 or holiday_on(day) is not None


@given(year=st.integers(2001, 2099), month=st.integers(1, 12))
def test_a_deadline_is_a_working_day_on_or_after_the_10th(year: int, month: int) -> None:
    period = f"{year}{month:02d}"
    due = deadline(period)
    assert due.deadline >= due.base
    assert due.base.day == 10
    assert due.late_after in (due.ordinary, due.deadline)
    extended = period in tables.extensions()
    assert extended or not _closed(due.deadline)
    # Every day it rolled over was closed, and each has its reason.
    rolled = [due.base + dt.timedelta(days=n) for n in range((due.ordinary - due.base).days)]
    assert all(_closed(day) for day in rolled)
    assert len(due.reasons) == len(rolled) + len(tables.extensions().get(period, ()))


def test_every_month_of_the_observed_years_and_the_next_is_certain() -> None:
    # 2026's Islamic holidays are estimates, but none falls near the 10th of a month.
    for year in (2024, 2025, 2026):
        for month in range(1, 13):
            assert not deadline(f"{year}{month:02d}").estimated


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-06", "expected YYYYMM"),
        ("20256", "expected YYYYMM"),
        ("２０２５０６", "expected YYYYMM"),  # fullwidth digits are digits to \d: not to us
        ("202513", "month must be 01 to 12"),
        ("202500", "month must be 01 to 12"),
        ("195812", "out of range"),
        ("210001", "out of range"),
    ],
)
def test_a_malformed_period_says_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(PeriodError, match=message):
        parse_period(text)


def test_a_period_before_the_calendar_is_refused() -> None:
    assert deadline("200012").deadline == D(2001, 1, 10)
    with pytest.raises(NoRuleInForce, match="2001-01-01"):
        deadline("200011")


def test_the_fixed_holidays_match_the_holidays_package() -> None:
    for year in range(2001, 2031):
        package = holidays.country_holidays("MA", years=year, language="fr")
        civil = {d for d in package if any("(estimé)" not in n for n in package.get_list(d))}
        ours = {d for h in tables.fixed_holidays() if (d := h.on(year)) is not None}
        assert ours == civil, year


def test_each_observed_year_has_every_islamic_holiday_near_the_estimate() -> None:
    assert tables.observed_years() == {2024, 2025}
    for year in tables.observed_years():
        days = [h for h in tables.observed_holidays() if h.date.year == year]
        kinds = sorted(h.holiday for h in days if h.holiday in tables.ISLAMIC)
        assert kinds == sorted(
            ["eid_al_fitr"] * 2 + ["eid_al_adha"] * 2 + ["mawlid"] * 2 + ["islamic_new_year"]
        )
        estimates = deadlines._estimates(year)
        for day in days:  # a typo in a month or a year would land far from the estimate
            assert min(abs((day.date - e.date).days) for e in estimates) <= 3, day


@pytest.fixture
def calendar_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of schemas/ to rewrite, the cached tables reloaded from it, then restored."""
    for path in schemas.HERE.glob("*.csv"):
        shutil.copy(path, tmp_path)
    monkeypatch.setattr(schemas, "HERE", tmp_path)
    caches = (tables.extensions, tables.fixed_holidays, tables.observed_holidays)
    for cache in (*caches, deadlines.holidays_of):
        cache.cache_clear()
    yield tmp_path
    for cache in (*caches, deadlines.holidays_of):
        cache.cache_clear()


EXTENSIONS = "period,deadline,penalties_waived,source,confidence,note\n"


def test_an_extension_without_waiver_moves_the_filing_not_the_penalties(
    calendar_tables: Path,
) -> None:
    (calendar_tables / "extensions.csv").write_text(
        EXTENSIONS + "202403,2024-04-19,no,test,H,portal down\n"
    )
    due = deadline("202403")
    assert (due.ordinary, due.deadline, due.late_after) == (
        D(2024, 4, 12),
        D(2024, 4, 19),
        D(2024, 4, 12),
    )
    assert due.reasons[-1] == (
        "extended by CNSS to 2024-04-19 (penalties still run from 2024-04-12) [test]"
    )


def test_an_extension_before_the_ordinary_deadline_is_a_table_error(
    calendar_tables: Path,
) -> None:
    (calendar_tables / "extensions.csv").write_text(EXTENSIONS + "202403,2024-04-11,yes,test,H,\n")
    with pytest.raises(SchemaError, match="before 2024-04-12"):
        deadline("202403")


def test_an_unsourced_holiday_is_a_table_error(calendar_tables: Path) -> None:
    path = calendar_tables / "holidays_observed.csv"
    path.write_text(path.read_text() + "2025-12-25,exceptional,Jour sans source,,H\n")
    with pytest.raises(SchemaError, match="source"):
        tables.observed_holidays()
