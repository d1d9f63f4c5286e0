"""Declarative tables of the EDI format and of the CNSS rules, loaded once from this folder.

Everything the code needs to know about the file layout, rates, ceilings and situation codes
lives in the CSV files beside this module; nothing here is computed, only read and typed.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORD_LENGTH = 260
# Rates are held as integers in millionths (6.40 % -> 64_000) so that every computation on
# money stays in integers; see transforms.money.
RATE_SCALE = 1_000_000
BRANCHES = (
    "family_allowances",
    "short_term",
    "long_term",
    "amo",
    "amo_solidarity",
    "professional_training",
)
BRANCH_LABELS_FR = {
    "family_allowances": "Allocations familiales",
    "short_term": "Prestations sociales à court terme",
    "long_term": "Prestations sociales à long terme",
    "amo": "Assurance maladie obligatoire (AMO)",
    "amo_solidarity": "Participation solidarité AMO",
    "professional_training": "Taxe de formation professionnelle",
}


class SchemaError(Exception):
    """A table in schemas/ is inconsistent (a bug in the data, not in a declaration)."""


class NoRuleInForce(LookupError):
    """No dated row covers the requested period."""


@dataclass(frozen=True)
class Field:
    """One field of a fixed-width record; `start` is 0-based, as Python slices are."""

    record: str
    name: str
    start: int
    length: int
    numeric: bool

    @property
    def stop(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class Rate:
    """One contribution rate: a branch, a share (employer/employee), its base and its rate."""

    branch: str
    share: str
    base: str  # "gross" or "capped"
    rate_millionths: int
    source: str


@dataclass(frozen=True)
class Situation:
    code: str  # "" for normal work (two spaces in the file)
    rank: int
    label_fr: str
    zero_days_and_salary: str  # "none", "warning" or "blocking"
    af_reversed: bool  # the AF paid in advance comes back: N_AF_A_Reverser = N_AF_Net_A_Payer


@dataclass(frozen=True)
class Limits:
    """Single-valued rules of the format (limits.csv, each with its source)."""

    max_days: int  # declared days per person and month
    first_period: str  # YYYYMM: no declaration can be for an earlier month


@dataclass(frozen=True)
class Total:
    """One control-total field: the sum (or count) of a field over other records' lines."""

    record: str  # the total record: A03, B03, B05 or B06
    field: str
    over: tuple[str, ...]  # the records summed: the detail lines, or B03 and B05 for B06
    summed: str | None  # the field summed over them; None: their number of lines


def _read_csv(name: str) -> list[dict[str, str]]:
    with (HERE / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@lru_cache(maxsize=1)
def record_layouts() -> dict[str, tuple[Field, ...]]:
    """Fields of every record type, in file order, checked to cover exactly 260 characters."""
    layouts: dict[str, list[Field]] = {}
    for row in _read_csv("layout.csv"):
        field = Field(
            record=row["record"],
            name=row["field"],
            start=int(row["start"]) - 1,
            length=int(row["length"]),
            numeric=row["type"] == "N",
        )
        layouts.setdefault(field.record, []).append(field)
    for record, fields in layouts.items():
        head = fields[0]
        if (head.name, head.start, head.length) != ("L_Type_Enreg", 0, len(record)):
            raise SchemaError(f"{record} does not open with its {len(record)}-character type")
        position = 0
        for field in fields:
            if field.start != position:
                raise SchemaError(f"{record}.{field.name} starts at {field.start + 1}")
            position = field.stop
        if position != RECORD_LENGTH:
            raise SchemaError(f"{record} covers {position} characters, not {RECORD_LENGTH}")
    return {record: tuple(fields) for record, fields in layouts.items()}


def record_type_field() -> Field:
    """L_Type_Enreg: the same leading field in every record (checked when the layout loads)."""
    return record_layouts()["B00"][0]


def data_fields(record: str) -> tuple[Field, ...]:
    """The fields that carry data: everything but the record type and the filler."""
    return tuple(f for f in record_layouts()[record] if f.name not in ("L_Type_Enreg", "L_filler"))


def field(record: str, name: str) -> Field:
    for candidate in record_layouts()[record]:
        if candidate.name == name:
            return candidate
    raise KeyError(f"{record}.{name}")


def period_start(period: str) -> dt.date:
    """First day of a YYYYMM period."""
    return dt.date(int(period[:4]), int(period[4:6]), 1)


def _in_force(rows: list[dict[str, str]], period: str) -> list[dict[str, str]]:
    """The rows of the latest `valid_from` that is not after the period's first day."""
    day = period_start(period).isoformat()
    dates = sorted({r["valid_from"] for r in rows if r["valid_from"] <= day})
    if not dates:
        raise NoRuleInForce(period)
    return [r for r in rows if r["valid_from"] == dates[-1]]


@lru_cache(maxsize=64)
def rates_for(period: str) -> tuple[Rate, ...]:
    """Contribution rates in force for a YYYYMM period."""
    rates = []
    for row in _in_force(_read_csv("rates.csv"), period):
        millionths = Decimal(row["rate_percent"]) * RATE_SCALE / 100
        if millionths != millionths.to_integral_value():
            raise SchemaError(f"rate {row['rate_percent']} % is finer than a millionth")
        if int(millionths) * _largest_salary() >= 2**63:
            raise SchemaError(f"rate {row['rate_percent']} % overflows int64 on a top salary")
        if row["branch"] not in BRANCHES or row["base"] not in ("gross", "capped"):
            raise SchemaError(f"unknown branch or base in rates.csv: {row}")
        rates.append(Rate(row["branch"], row["share"], row["base"], int(millionths), row["source"]))
    return tuple(rates)


def _largest_salary() -> int:
    """One more than the largest salary a line can carry, in centimes: transforms.money
    multiplies it by a rate in millionths in int64, so a rate must keep that below 2**63."""
    widths = (field("B02", "N_Salaire_Reel").length, field("B04", "N_Sal_Reel").length)
    return 10 ** max(widths)


@lru_cache(maxsize=64)
def ceiling_for(period: str) -> int:
    """The monthly salary ceiling, in centimes, in force for a YYYYMM period."""
    (row,) = _in_force(_read_csv("ceilings.csv"), period)
    return int(row["ceiling_centimes"])


@lru_cache(maxsize=64)
def allowance_per_child(period: str) -> tuple[int, ...]:
    """Monthly family allowance in centimes for the 1st, 2nd, … child (at most 6 count), in
    force for a YYYYMM period (allowances.csv)."""
    amounts: dict[int, int] = {}
    for row in _in_force(_read_csv("allowances.csv"), period):
        for rank in range(int(row["children_from"]), int(row["children_to"]) + 1):
            amounts[rank] = int(row["per_child_centimes"])
    if sorted(amounts) != list(range(1, len(amounts) + 1)):
        raise SchemaError(f"allowances.csv: child ranks with gaps for {period}")
    return tuple(amounts[rank] for rank in sorted(amounts))


@lru_cache(maxsize=1)
def situations() -> dict[str, Situation]:
    """Situation codes by code ("" for normal work)."""
    return {
        row["code"]: Situation(
            row["code"],
            int(row["rank"]),
            row["label_fr"],
            row["zero_days_and_salary"],
            _yes(row["af_reversed"]),
        )
        for row in _read_csv("situations.csv")
    }


def _yes(text: str) -> bool:
    if text not in ("yes", "no"):
        raise SchemaError(f"expected yes or no, not {text!r}")
    return text == "yes"


@lru_cache(maxsize=1)
def limits() -> Limits:
    values = {row["name"]: row["value"] for row in _read_csv("limits.csv")}
    return Limits(max_days=int(values["max_days"]), first_period=values["first_period"])


@lru_cache(maxsize=1)
def _totals() -> dict[str, tuple[Total, ...]]:
    out: dict[str, list[Total]] = {}
    for row in _read_csv("totals.csv"):
        total = Total(
            row["total"], row["field"], tuple(row["over"].split(";")), row["summed"] or None
        )
        field(total.record, total.field)  # KeyError: a field the layout does not have
        for record in total.over:
            if total.summed is not None:
                field(record, total.summed)
        out.setdefault(total.record, []).append(total)
    return {record: tuple(fields) for record, fields in out.items()}


def totals(record: str) -> tuple[Total, ...]:
    """The control totals a total record carries, in layout order (edi_format.md §7)."""
    return _totals()[record]


def _max_lines() -> int:
    """The most lines a valid declaration can have, from the layout: B06 N_Nbr_Salaries counts
    every B02 and B04 line in 6 digits, so at most 999,999 of them, plus the empty B04 (when
    none is an entrant), the five single records B00, B01, B03, B05 and B06, and one tolerated
    final empty line. A préétabli (A00-A03) has fewer."""
    employees = 10 ** field("B06", "N_Nbr_Salaries").length - 1
    details = ("B02", "B04")  # the only records that repeat, one line per employee
    singles = sum(1 for record in record_layouts() if record[0] == "B" and record not in details)
    return singles + employees + 1 + 1


def _max_file_bytes() -> int:
    """The largest a valid declaration can be: its most lines, each 260 characters and a CRLF,
    the tolerated final empty line being a CRLF alone. About 262 MB. A file past this is
    refused unread."""
    crlf = len(b"\r\n")
    return (_max_lines() - 1) * (RECORD_LENGTH + crlf) + crlf


MAX_FILE_BYTES = _max_file_bytes()
# A file of more lines is refused before its lines are split: memory then never follows a
# count of lines that no valid file can reach (20 MB of empty lines are 20 million of them).
MAX_LINES = _max_lines()


def ddl() -> str:
    return (HERE / "ddl.sql").read_text(encoding="utf-8")


def acknowledgement_xsd_path() -> Path:
    return HERE / "acknowledgement.xsd"


def penalty_notice_xsd_path() -> Path:
    return HERE / "penalty_notice.xsd"
