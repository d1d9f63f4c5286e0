"""Helpers for the unit tests: a cached valid sample and byte-level surgery on EDI lines.

The totals and control sums are recomputed here with plain Python ints straight from
edi_format.md §7-§8, not with the validators' own code, so that a mutation can break exactly
one rule and a test can say which.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnss_edi.sample import write_samples
from schemas import RECORD_LENGTH, record_layouts, record_type_field, situations
from schemas import field as layout_field
from transforms.parse import parse

if TYPE_CHECKING:  # the validators are imported when used, so that parse/keys tests stand alone
    from validators.declaration import Validation
    from validators.preetabli import Roster

AFFILIATE = 1234567  # prefix 123456: s = 2(2+4+6) + 1+3+5 = 33, key 10 - 3 = 7
PERIOD = "202610"
EMPLOYEES = 6
ENTRANTS = 2
CEILING = 600_000  # 6,000 MAD in centimes (cnss_rules.md §1, schemas/ceilings.csv)


# --- the sample -----------------------------------------------------------------------------


@cache
def sample(
    *,
    employees: int = EMPLOYEES,
    entrants: int = ENTRANTS,
    seed: int = 1,
    line_ending: bytes = b"\n",
) -> tuple[bytes, bytes]:
    """(préétabli, declaration) of one small valid employer, generated once per session."""
    with tempfile.TemporaryDirectory(prefix="cnss-edi-unit-") as tmp:
        pre, dec = write_samples(
            Path(tmp),
            affiliate=AFFILIATE,
            period=PERIOD,
            employees=employees,
            entrants=entrants,
            seed=seed,
            line_ending=line_ending,
        )
        return pre.read_bytes(), dec.read_bytes()


def preetabli() -> bytes:
    return sample()[0]


def declaration() -> bytes:
    return sample()[1]


@cache
def roster(raw: bytes | None = None) -> Roster:
    """The roster of a préétabli (default: the sample's)."""
    from validators.preetabli import Roster

    return Roster.from_parsed(parse(preetabli() if raw is None else raw))


# --- lines and fields -----------------------------------------------------------------------


def lines_of(raw: bytes) -> list[bytes]:
    """Lines without terminators (LF, CRLF or CR); the final terminator makes no empty line."""
    return raw.splitlines()


def join(lines: list[bytes], ending: bytes = b"\n") -> bytes:
    """Lines back to a file, each one terminated (the writers' convention)."""
    return b"".join(line + ending for line in lines)


def record_of(line: bytes) -> str:
    """A line's record type (L_Type_Enreg), non-ASCII bytes shown as U+FFFD."""
    f = record_type_field()
    return line[f.start : f.stop].decode("ascii", "replace")


def line_numbers(raw: bytes, record: str) -> list[int]:
    """1-based numbers of the lines of one record type, in file order."""
    return [i for i, line in enumerate(lines_of(raw), start=1) if record_of(line) == record]


def line_of(raw: bytes, record: str, nth: int = 0) -> int:
    """1-based number of the nth line of a record type."""
    return line_numbers(raw, record)[nth]


def encode_value(record: str, name: str, value: int | str | bytes) -> bytes:
    """A field's bytes: ints zero-padded to the width, text left-aligned and space-padded."""
    f = layout_field(record, name)
    if isinstance(value, int):
        if value < 0 or len(str(value)) > f.length:
            raise OverflowError(f"{value} does not fit {record}.{name} ({f.length} digits)")
        return str(value).zfill(f.length).encode()
    data = value.encode("ascii") if isinstance(value, str) else value
    if len(data) > f.length:
        raise ValueError(f"{data!r} is longer than {record}.{name} ({f.length})")
    return data.ljust(f.length, b" ")


def set_field(
    raw: bytes, line_no: int, record: str, field_name: str, value: int | str | bytes
) -> bytes:
    """Rewrite one field of one line (1-based), using the offsets of schemas.field()."""
    return set_fields(raw, line_no, record, {field_name: value})


def set_fields(
    raw: bytes, line_no: int, record: str, values: Mapping[str, int | str | bytes]
) -> bytes:
    """Rewrite several fields of one line; the line must be of that record type."""
    lines = lines_of(raw)
    line = lines[line_no - 1]
    if record_of(line) != record:
        raise AssertionError(f"line {line_no} is {record_of(line)!r}, not {record}")
    line = bytearray(line.ljust(RECORD_LENGTH, b" "))
    for name, value in values.items():
        f = layout_field(record, name)
        line[f.start : f.stop] = encode_value(record, name, value)
    lines[line_no - 1] = bytes(line)
    return join(lines)


def get_field(raw: bytes, line_no: int, record: str, field_name: str) -> str:
    f = layout_field(record, field_name)
    return lines_of(raw)[line_no - 1][f.start : f.stop].decode("ascii")


def get_int(raw: bytes, line_no: int, record: str, field_name: str) -> int:
    return int(get_field(raw, line_no, record, field_name))


def everywhere(raw: bytes, field_name: str, value: int | str | bytes) -> bytes:
    """Set one field on every line whose record type has it (affiliate, period...)."""
    layouts = record_layouts()
    for number, line in enumerate(lines_of(raw), start=1):
        record = record_of(line)
        if any(f.name == field_name for f in layouts.get(record, ())):
            raw = set_field(raw, number, record, field_name, value)
    return raw


def insert_lines(raw: bytes, before: int, new: list[bytes]) -> bytes:
    """Insert lines so that the first new one becomes line `before` (1-based)."""
    lines = lines_of(raw)
    return join(lines[: before - 1] + new + lines[before - 1 :])


def delete_line(raw: bytes, line_no: int) -> bytes:
    lines = lines_of(raw)
    return join(lines[: line_no - 1] + lines[line_no:])


def swap_lines(raw: bytes, first: int, second: int) -> bytes:
    lines = lines_of(raw)
    lines[first - 1], lines[second - 1] = lines[second - 1], lines[first - 1]
    return join(lines)


def replace_line(raw: bytes, line_no: int, new: bytes) -> bytes:
    lines = lines_of(raw)
    lines[line_no - 1] = new
    return join(lines)


def with_key(prefix: int, width: int) -> int:
    """A number with a valid check key (edi_format.md §13), computed here by hand.

    width 7: affiliate, s = 2(C2+C4+C6) + C1+C3+C5; width 9: insured, s = 2(C2+C4+C6+C8) +
    C3+C5+C7 (C1 unused). Key = (10 - s mod 10) mod 10.
    """
    digits = [int(c) for c in f"{prefix:0{width - 1}d}"]
    if width == 7:
        s = 2 * (digits[1] + digits[3] + digits[5]) + digits[0] + digits[2] + digits[4]
    else:
        s = 2 * (digits[1] + digits[3] + digits[5] + digits[7]) + digits[2] + digits[4] + digits[6]
    return prefix * 10 + (10 - s % 10) % 10


# --- totals and control sums, recomputed by hand ----------------------------------------------

# total record -> (detail record, {total field: detail field, or None for the line count})
TOTALS: dict[str, tuple[str, dict[str, str | None]]] = {
    "A03": (
        "A02",
        {
            "N_Nbr_Salaries": None,
            "N_T_Enfants": "N_Enfants",
            "N_T_AF_A_Payer": "N_AF_A_Payer",
            "N_T_AF_A_Deduire": "N_AF_A_Deduire",
            "N_T_AF_Net_A_Payer": "N_AF_Net_A_Payer",
            "N_T_Num_Imma": "N_Num_Assure",
        },
    ),
    "B03": (
        "B02",
        {
            "N_Nbr_Salaries": None,
            "N_T_Enfants": "N_Enfants",
            "N_T_AF_A_Payer": "N_AF_A_Payer",
            "N_T_AF_A_Deduire": "N_AF_A_Deduire",
            "N_T_AF_Net_A_Payer": "N_AF_Net_A_Payer",
            "N_T_Num_Imma": "N_Num_Assure",
            "N_T_AF_A_Reverser": "N_AF_A_Reverser",
            "N_T_Jours_Declares": "N_Jours_Declares",
            "N_T_Salaire_Reel": "N_Salaire_Reel",
            "N_T_Salaire_Plaf": "N_Salaire_Plaf",
            "N_T_Ctr": "S_Ctr",
        },
    ),
    "B05": (
        "B04",
        {
            "N_Nbr_Salaries": None,
            "N_T_Num_Imma": "N_Num_Assure",
            "N_T_Jours_Declares": "N_Nbr_Jours",
            "N_T_Salaire_Reel": "N_Sal_Reel",
            "N_T_Salaire_Plaf": "N_Sal_Plaf",
            "N_T_Ctr": "S_Ctr",
        },
    ),
}
GRAND_TOTAL = ("N_Nbr_Salaries", "N_T_Num_Imma", "N_T_Jours_Declares")
GRAND_TOTAL += ("N_T_Salaire_Reel", "N_T_Salaire_Plaf", "N_T_Ctr")


def _number(line: bytes, record: str, name: str) -> int | None:
    f = layout_field(record, name)
    text = line[f.start : f.stop]
    return int(text) if text.isdigit() else None


def _blank_entrant(line: bytes) -> bool:
    """The empty B04 of §6: blank insured number, name and CIN (amounts are then zero)."""
    names = ("N_Num_Assure", "L_Nom_Prenom", "L_Num_CIN")
    spans = [layout_field("B04", name) for name in names]
    return all(line[f.start : f.stop].strip() == b"" for f in spans)


def _blank_number(line: bytes) -> bool:
    f = layout_field("B04", "N_Num_Assure")
    return line[f.start : f.stop].strip() == b""


def control_sum(line: bytes) -> int | None:
    """S_Ctr of a B02 or B04 line (§8), None when a term is unreadable."""
    record = record_of(line)
    if record == "B02":
        names = ("N_Num_Assure", "N_AF_A_Reverser", "N_Jours_Declares")
        names += ("N_Salaire_Reel", "N_Salaire_Plaf")
        f = layout_field("B02", "L_Situation")
        code = line[f.start : f.stop].decode("ascii", "replace").strip()
        ranks = [situations()[code].rank] if code in situations() else [None]
    else:
        names = ("N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf")
        ranks = [0 if _blank_number(line) else _number(line, "B04", "N_Num_Assure")]
    terms = [_number(line, record, name) for name in names] + ranks
    return None if None in terms else sum(terms)


def recompute_totals(raw: bytes, *, control_sums: bool = True) -> bytes:
    """Rewrite S_Ctr of every B02/B04 line (unless told not to), then A03/B03/B05 and B06.

    Unreadable values are left out of the sums; the empty B04 (blank insured number, name and
    CIN) is not an entrant. A total that does not fit its field raises OverflowError.
    """
    lines = lines_of(raw)
    for i, line in enumerate(lines):
        if control_sums and record_of(line) in ("B02", "B04"):
            value = control_sum(line)
            if value is not None:
                lines[i] = _put(line, record_of(line), "S_Ctr", value)
    for total, (detail, fields) in TOTALS.items():
        rows = [line for line in lines if record_of(line) == detail]
        if detail == "B04":
            rows = [line for line in rows if not _blank_entrant(line)]
        values: dict[str, int] = {}
        for name, source in fields.items():
            if source is None:
                values[name] = len(rows)
            else:
                values[name] = sum(v for r in rows if (v := _number(r, detail, source)) is not None)
        lines = [
            _put_all(line, total, values) if record_of(line) == total else line for line in lines
        ]
    b03 = next((line for line in lines if record_of(line) == "B03"), None)
    b05 = next((line for line in lines if record_of(line) == "B05"), None)
    if b03 is not None and b05 is not None:
        grand = {}
        for name in GRAND_TOTAL:
            left, right = _number(b03, "B03", name), _number(b05, "B05", name)
            if left is not None and right is not None:
                grand[name] = left + right
        lines = [
            _put_all(line, "B06", grand) if record_of(line) == "B06" else line for line in lines
        ]
    return join(lines)


def _put(line: bytes, record: str, name: str, value: int | str) -> bytes:
    return _put_all(line, record, {name: value})


def _put_all(line: bytes, record: str, values: Mapping[str, int | str]) -> bytes:
    out = (
        bytearray(line.ljust(RECORD_LENGTH, b" ")) if len(line) < RECORD_LENGTH else bytearray(line)
    )
    for name, value in values.items():
        f = layout_field(record, name)
        out[f.start : f.stop] = encode_value(record, name, value)
    return bytes(out)


# --- running a mutation ---------------------------------------------------------------------


_RUNS: dict[tuple[object, ...], tuple[Validation, dict[str, Any]]] = {}


def run(raw: bytes, **options: Any) -> Validation:
    """validate(parse(raw)), once per distinct input and options (tests share mutations).

    A Roster holds a DataFrame and is not hashable: it is keyed by identity, and the cache
    keeps it alive so that its id cannot be reused by another object.
    """
    from validators.declaration import validate

    key = (raw, *sorted((k, v if k != "preetabli" else id(v)) for k, v in options.items()))
    if key not in _RUNS:
        _RUNS[key] = (validate(parse(raw), **options), options)
    return _RUNS[key][0]


@dataclass(frozen=True)
class Case:
    """One rule, one mutation of a valid file, and where the anomaly must point.

    `make` returns the bytes to validate and the keyword options of validate(). With
    `others` None the test only checks that the code is there; otherwise the set of codes found
    must be exactly {code} | others (so a rule is isolated when others is empty).
    """

    id: str
    code: str
    make: Callable[[], tuple[bytes, dict[str, Any]]]
    line: int | None
    record: str | None
    field: str | None
    value: str | None = None
    others: frozenset[str] | None = field(default=frozenset())


def check_case(case: Case) -> None:
    from validators.anomaly import RULES

    raw, options = case.make()
    result = run(raw, **options)
    codes = {a.code for a in result.findings.anomalies}
    hits = [a for a in result.findings.anomalies if a.code == case.code]
    assert hits, f"{case.code} not found; got {sorted(codes)}"
    where = {(a.line, a.record, a.field) for a in hits}
    assert (case.line, case.record, case.field) in where, where
    hit = next(
        a for a in hits if (a.line, a.record, a.field) == (case.line, case.record, case.field)
    )
    severity = RULES[case.code][0]
    assert hit.severity == severity
    if case.value is not None:
        assert hit.value == case.value
        if "{value}" in RULES[case.code][1]:
            assert case.value in hit.message
    if case.others is not None:
        assert codes == {case.code} | case.others
        blocking = {a.code for a in result.findings.anomalies if a.blocking}
        expected_status = "rejected" if blocking else "accepted"
        assert result.status == expected_status
        assert result.findings.total == len(result.findings.anomalies)
