"""Deadlines: the 10th of the month after the period, moved past weekends and public holidays,
unless CNSS extended it. A pure function of the period and the tables in schemas/.

Holidays are the public-administration calendar (CNSS's own offices): Monday to Friday, the civil
holidays of holidays_fixed.csv, and the Islamic holidays as the Ministère des Habous announced
them (holidays_observed.csv, two days for both Aïds and the Mawlid, one for 1 Moharram). For a
year the observed table does not cover, the Islamic dates are the `holidays` package's
estimates, and a deadline that one of them could move is flagged `estimated`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

from schemas import NoRuleInForce, SchemaError, limits
from schemas.calendar import (
    calendar_start,
    extensions,
    fixed_holidays,
    observed_holidays,
    observed_years,
)

DUE_DAY = 10  # "dans les 10 premiers jours" of the next month (cnss_rules.md §2, S14 S36)
WEEKEND = {5: "Saturday", 6: "Sunday"}
# The package's Islamic dates were a day early in 6 of 8 cases in 2024-2025 (cnss_rules.md §4):
# an estimated holiday this close to the days a deadline rolls over could really fall on them.
ESTIMATE_MARGIN = dt.timedelta(days=2)
LAST_YEAR = 2099  # the `holidays` package computes Islamic dates up to 2100
_PERIOD = re.compile(r"([0-9]{4})([0-9]{2})")  # \d would take any Unicode digit
_ONE_DAY = dt.timedelta(days=1)


class PeriodError(ValueError):
    """Not a period a deadline can be computed for; the message says what is expected."""


@dataclass(frozen=True)
class Holiday:
    date: dt.date
    name_fr: str
    source: str
    estimated: bool  # an Islamic date not (yet) in holidays_observed.csv


@dataclass(frozen=True)
class Deadline:
    """When a period's declaration and payment are due, and why on that day."""

    period: str
    base: dt.date  # the 10th of the following month
    ordinary: dt.date  # the base moved past weekends and holidays
    deadline: dt.date  # the ordinary deadline, or the latest extension's
    late_after: dt.date  # paid or declared after this day is late (penalties run)
    reasons: tuple[str, ...]  # why the deadline is not the base, in order
    estimated: bool  # an estimated Islamic holiday could move it

    def as_json(self) -> dict[str, object]:
        return {
            "period": self.period,
            "deadline": self.deadline.isoformat(),
            "base": self.base.isoformat(),
            "reasons": list(self.reasons),
            "estimated": self.estimated,
        }


def parse_period(text: str) -> str:
    """`text` as a YYYYMM period, or PeriodError saying what is wrong with it."""
    match = _PERIOD.fullmatch(text)
    if match is None:
        raise PeriodError(f"{text!r} is not a period: expected YYYYMM, e.g. 202506 for June 2025")
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise PeriodError(f"{text!r} is not a period: the month must be 01 to 12")
    first = limits().first_period
    if text < first or year > LAST_YEAR:
        raise PeriodError(f"{text!r} is out of range: periods run from {first} to {LAST_YEAR}12")
    return text


def base_date(period: str) -> dt.date:
    """The 10th of the month after the period."""
    year, month = int(period[:4]), int(period[4:])
    return dt.date(year + month // 12, month % 12 + 1, DUE_DAY)


@lru_cache(maxsize=256)
def holidays_of(year: int) -> dict[dt.date, Holiday]:
    """Every public holiday of a year, by date (two on one day share one entry)."""
    found: list[Holiday] = []
    for fixed in fixed_holidays():
        date = fixed.on(year)
        if date is not None:
            found.append(Holiday(date, fixed.name_fr, fixed.source, estimated=False))
    covered = year in observed_years()
    for observed in observed_holidays():
        if observed.date.year == year and (covered or observed.holiday == "exceptional"):
            found.append(Holiday(observed.date, observed.name_fr, observed.source, False))
    if not covered:
        found += _estimates(year)
    days: dict[dt.date, Holiday] = {}
    for holiday in sorted(found, key=lambda h: h.date):
        same = days.get(holiday.date)
        if same is not None:
            holiday = Holiday(
                holiday.date,
                f"{same.name_fr}; {holiday.name_fr}",
                ";".join(dict.fromkeys([*same.source.split(";"), *holiday.source.split(";")])),
                same.estimated or holiday.estimated,
            )
        days[holiday.date] = holiday
    return days


def _estimates(year: int) -> list[Holiday]:
    """The `holidays` package's Islamic dates for Morocco (its entries marked « estimé »)."""
    import holidays  # the package builds its tables at import: only when a year needs it

    package = holidays.country_holidays("MA", years=year, language="fr")
    return [
        Holiday(date, name, "S32", estimated=True)
        for date in sorted(package)
        for name in package.get_list(date)
        if "(estimé)" in name
    ]


def holiday_on(date: dt.date) -> Holiday | None:
    return holidays_of(date.year).get(date)


def _closed(day: dt.date) -> str | None:
    """Why no one can pay or declare at a CNSS counter that day, or None on a working day."""
    holiday = holiday_on(day)
    why = [f"a {WEEKEND[day.weekday()]}"] if day.weekday() in WEEKEND else []
    if holiday is not None:
        estimate = ", estimated" if holiday.estimated else ""
        why.append(f"a public holiday: {holiday.name_fr} [{holiday.source}{estimate}]")
    return f"{day.isoformat()} is " + " and ".join(why) if why else None


def deadline(period: str) -> Deadline:
    """The deadline of a YYYYMM period, with the reasons it moved from the 10th.

    Raises PeriodError for a malformed period, NoRuleInForce before the holiday tables start.
    """
    period = parse_period(period)
    base = base_date(period)
    if base < calendar_start():
        start = calendar_start().isoformat()
        raise NoRuleInForce(f"period {period}: the holiday calendar starts on {start}")
    day, reasons = base, []
    while (why := _closed(day)) is not None:
        reasons.append(why)
        day += _ONE_DAY
    ordinary = day
    estimated = any(
        h.estimated
        for year in {base.year, ordinary.year}
        for h in holidays_of(year).values()
        if base - ESTIMATE_MARGIN <= h.date <= ordinary + ESTIMATE_MARGIN
    )
    moved = extensions().get(period, ())
    if not moved:
        return Deadline(period, base, ordinary, ordinary, ordinary, tuple(reasons), estimated)
    last = moved[-1]
    if last.deadline < ordinary:
        raise SchemaError(f"extensions.csv {period}: {last.deadline} is before {ordinary}")
    for extension in moved:
        waived = (
            "penalties waived"
            if extension.penalties_waived
            else f"penalties still run from {ordinary.isoformat()}"
        )
        reasons.append(
            f"extended by CNSS to {extension.deadline.isoformat()} ({waived}) [{extension.source}]"
        )
    late_after = last.deadline if last.penalties_waived else ordinary
    return Deadline(period, base, ordinary, last.deadline, late_after, tuple(reasons), False)
