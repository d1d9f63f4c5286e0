"""The dated calendar tables: fixed public holidays, Islamic holidays as observed, extensions.

Read and typed only; `transforms.deadlines` decides what they mean for a deadline. Every row
carries its source key (shared/spec/cnss_rules.md) and a confidence (H, M or L).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from schemas import SchemaError, _read_csv, _yes

CONFIDENCES = ("H", "M", "L")
# The kinds of holidays_observed.csv rows: the four Islamic holidays, and a day off the
# government grants once (a public-sector bridge such as Monday 9 June 2025).
ISLAMIC = ("eid_al_fitr", "eid_al_adha", "islamic_new_year", "mawlid")
OBSERVED_KINDS = (*ISLAMIC, "exceptional")


@dataclass(frozen=True)
class FixedHoliday:
    """A civil holiday on the same day every year, from `valid_from` (until `valid_to`)."""

    month: int
    day: int
    name_fr: str
    valid_from: dt.date
    valid_to: dt.date | None
    source: str
    confidence: str

    def on(self, year: int) -> dt.date | None:
        """Its date in `year`, or None when it was not (or no longer) a holiday then."""
        date = dt.date(year, self.month, self.day)
        if date < self.valid_from or (self.valid_to is not None and date > self.valid_to):
            return None
        return date


@dataclass(frozen=True)
class ObservedHoliday:
    """A day off as announced (Islamic holidays: by the Ministère des Habous after the moon
    sighting; exceptional days: by the Head of Government)."""

    date: dt.date
    holiday: str  # one of OBSERVED_KINDS
    name_fr: str
    source: str
    confidence: str


@dataclass(frozen=True)
class Extension:
    """A deadline CNSS moved for one period. With `penalties_waived`, nothing paid or
    declared by the new deadline is late; without it, only the filing window moves and late
    penalties still run from the ordinary deadline."""

    period: str
    deadline: dt.date
    penalties_waived: bool
    source: str
    confidence: str
    note: str


def _date(text: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise SchemaError(f"{where}: {text!r} is not a YYYY-MM-DD date") from None


def _sourced(row: dict[str, str], where: str) -> tuple[str, str]:
    if not row["source"] or row["confidence"] not in CONFIDENCES:
        raise SchemaError(f"{where}: every row needs a source and a confidence H, M or L")
    return row["source"], row["confidence"]


@lru_cache(maxsize=1)
def fixed_holidays() -> tuple[FixedHoliday, ...]:
    """The civil holidays (holidays_fixed.csv)."""
    out = []
    for row in _read_csv("holidays_fixed.csv"):
        where = f"holidays_fixed.csv {row['month_day']}"
        month, day = (int(part) for part in row["month_day"].split("-"))
        valid_to = _date(row["valid_to"], where) if row["valid_to"] else None
        holiday = FixedHoliday(
            month,
            day,
            row["name_fr"],
            _date(row["valid_from"], where),
            valid_to,
            *_sourced(row, where),
        )
        holiday.on(2000)  # ValueError: a day the month does not have
        out.append(holiday)
    return tuple(out)


def calendar_start() -> dt.date:
    """The first day the holiday tables describe: no deadline can be computed before it."""
    return min(h.valid_from for h in fixed_holidays())


@lru_cache(maxsize=1)
def observed_holidays() -> tuple[ObservedHoliday, ...]:
    """The Islamic and exceptional days off as announced (holidays_observed.csv)."""
    out = []
    for row in _read_csv("holidays_observed.csv"):
        where = f"holidays_observed.csv {row['date']}"
        if row["holiday"] not in OBSERVED_KINDS:
            raise SchemaError(f"{where}: unknown holiday {row['holiday']!r}")
        out.append(
            ObservedHoliday(
                _date(row["date"], where), row["holiday"], row["name_fr"], *_sourced(row, where)
            )
        )
    return tuple(out)


def observed_years() -> frozenset[int]:
    """The years whose Islamic holidays are all in holidays_observed.csv: for the others,
    the dates are estimates."""
    return frozenset(h.date.year for h in observed_holidays() if h.holiday in ISLAMIC)


@lru_cache(maxsize=1)
def extensions() -> dict[str, tuple[Extension, ...]]:
    """Deadline extensions by period, in the order of their deadlines (extensions.csv)."""
    out: dict[str, list[Extension]] = {}
    for row in _read_csv("extensions.csv"):
        where = f"extensions.csv {row['period']}"
        extension = Extension(
            row["period"],
            _date(row["deadline"], where),
            _yes(row["penalties_waived"]),
            *_sourced(row, where),
            row["note"],
        )
        out.setdefault(extension.period, []).append(extension)
    return {p: tuple(sorted(rows, key=lambda e: e.deadline)) for p, rows in out.items()}
