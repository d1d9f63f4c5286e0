"""The dated penalty tables: majoration rates per regime, the regime of each branch, astreintes.

Read and typed only; `transforms.penalties` applies them. Rates are held in millionths, as
contribution rates are (schemas.RATE_SCALE).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from schemas import BRANCHES, RATE_SCALE, NoRuleInForce, SchemaError, _read_csv
from schemas.calendar import CONFIDENCES

REGIMES = ("general", "amo")


@dataclass(frozen=True)
class Majoration:
    """A regime's late-payment surcharge from `valid_from`: a rate for the first month of delay
    (or fraction of it) and one for each further month (or fraction)."""

    valid_from: dt.date
    regime: str
    first_month_millionths: int
    further_month_millionths: int
    rule: str
    source: str
    confidence: str

    def describe(self) -> str:
        first, further = (
            f"{Decimal(m) * 100 / RATE_SCALE:g}%"
            for m in (self.first_month_millionths, self.further_month_millionths)
        )
        return (
            f"{self.rule}: {first} the first month, {further} each further month, in force "
            f"from {self.valid_from.isoformat()} [{self.source}, confidence {self.confidence}]"
        )


@dataclass(frozen=True)
class Astreinte:
    """The fine for a late or missing declaration, per month (or fraction) late."""

    valid_from: dt.date
    per_employee_centimes: int
    cap_centimes: int
    rule: str
    source: str
    confidence: str

    def describe(self) -> str:
        return (
            f"{self.rule}: {self.per_employee_centimes // 100} MAD per employee, at most "
            f"{self.cap_centimes // 100} MAD, per month late, in force from "
            f"{self.valid_from.isoformat()} [{self.source}, confidence {self.confidence}]"
        )


def _millionths(percent: str, where: str) -> int:
    value = Decimal(percent) * RATE_SCALE / 100
    if value != value.to_integral_value() or value < 0:
        raise SchemaError(f"{where}: {percent} % is not a whole number of millionths")
    return int(value)


def _checked(row: dict[str, str], where: str) -> None:
    if not row["source"] or row["confidence"] not in CONFIDENCES:
        raise SchemaError(f"{where}: every row needs a source and a confidence H, M or L")


@lru_cache(maxsize=1)
def majorations() -> tuple[Majoration, ...]:
    """Every majoration row (majorations.csv), oldest first."""
    out = []
    for row in _read_csv("majorations.csv"):
        where = f"majorations.csv {row['rule']}"
        _checked(row, where)
        if row["regime"] not in REGIMES:
            raise SchemaError(f"{where}: unknown regime {row['regime']!r}")
        out.append(
            Majoration(
                dt.date.fromisoformat(row["valid_from"]),
                row["regime"],
                _millionths(row["first_month_percent"], where),
                _millionths(row["further_month_percent"], where),
                row["rule"],
                row["source"],
                row["confidence"],
            )
        )
    return tuple(sorted(out, key=lambda m: m.valid_from))


def majoration_on(day: dt.date, regime: str) -> Majoration:
    """The majoration rule of a regime in force on a day."""
    found = [m for m in majorations() if m.regime == regime and m.valid_from <= day]
    if not found:
        raise NoRuleInForce(f"no {regime} majoration in force on {day.isoformat()}")
    return found[-1]


@lru_cache(maxsize=1)
def penalty_regimes() -> dict[str, str]:
    """The majoration regime ("general" or "amo") of each contribution branch."""
    out = {}
    for row in _read_csv("penalty_regimes.csv"):
        _checked(row, f"penalty_regimes.csv {row['branch']}")
        if row["branch"] not in BRANCHES or row["regime"] not in REGIMES:
            raise SchemaError(f"penalty_regimes.csv: unknown branch or regime in {row}")
        out[row["branch"]] = row["regime"]
    if set(out) != set(BRANCHES):
        raise SchemaError("penalty_regimes.csv must give every branch its regime")
    return out


@lru_cache(maxsize=1)
def astreintes() -> tuple[Astreinte, ...]:
    out = []
    for row in _read_csv("astreintes.csv"):
        _checked(row, f"astreintes.csv {row['rule']}")
        out.append(
            Astreinte(
                dt.date.fromisoformat(row["valid_from"]),
                int(row["per_employee_centimes"]),
                int(row["cap_centimes"]),
                row["rule"],
                row["source"],
                row["confidence"],
            )
        )
    return tuple(sorted(out, key=lambda a: a.valid_from))


def astreinte_on(day: dt.date) -> Astreinte:
    found = [a for a in astreintes() if a.valid_from <= day]
    if not found:
        raise NoRuleInForce(f"no astreinte in force on {day.isoformat()}")
    return found[-1]
