"""Structure and identity: lengths, characters, record order, numeric fields, one employer
and one period throughout, the file name and the depositor's account."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

from schemas import RECORD_LENGTH, NoRuleInForce, ceiling_for, data_fields, limits
from transforms.keys import affiliate_key, affiliate_key_ok
from transforms.parse import TYPE_WIDTH, Lines, ParsedFile, type_code
from validators.anomaly import Hits, file_level, found, found_where

ORDER = {
    "declaration": ("B00", "B01", "B02", "B03", "B04", "B05", "B06"),
    "preetabli": ("A00", "A01", "A02", "A03"),
}
REPEATABLE = {"A02", "B02", "B04"}
# DS_<affiliate>_<period>.txt; the official document may use MMAAAA, so both orders are read.
FILE_NAME = re.compile(r"^(?:DS|AFFEBDS)_(\d{7})_(\d{6})\.txt$", re.IGNORECASE)


def file_kind(parsed: ParsedFile) -> str:
    """'preetabli' when the first line is an A record, else 'declaration'."""
    codes = parsed.lines.type_codes
    return "preetabli" if len(codes) and codes[0] & 0xFF == ord("A") else "declaration"


def check_lines(parsed: ParsedFile, kind: str) -> list[Hits]:
    """Byte-level checks on every line: BOM, length, characters, known record type, order.
    A final empty line is only a warning (edi_format.md §3: some writers add one)."""
    lines = parsed.lines
    if lines.count == 0:
        return [file_level("FICHIER_VIDE")]
    out = []
    if lines.has_bom:
        out.append(file_level("BOM", line=1))
    checked = lines.count - lines.ends_with_empty_line  # the lines held to be records
    # One array of line numbers serves every per-line rule below; each keeps only a mask.
    numbers = np.arange(1, checked + 1, dtype=lines.length.dtype)
    length = lines.length[:checked]
    out.append(found_where("LONGUEUR_LIGNE", length != RECORD_LENGTH, numbers, value=length))
    if lines.odd_column is not None:
        odd = lines.odd_column[:checked]
        out.append(found_where("CARACTERE_INTERDIT", odd > 0, numbers, value=odd))
    out.extend(_check_order(lines, ORDER[kind], numbers))
    if lines.ends_with_empty_line:
        out.append(file_level("LIGNE_VIDE_FINALE", line=lines.count))
    return out


def _check_order(lines: Lines, order: tuple[str, ...], numbers: np.ndarray) -> list[Hits]:
    """Known record types only, in the order of `order`; singletons once each."""
    codes = lines.type_codes[: len(numbers)]
    rank = np.full(len(codes), -1, np.int8)
    for position, record in enumerate(order):
        rank[codes == type_code(record)] = position
    known = rank >= 0
    out = []
    if not known.all():
        out.append(
            found_where(
                "TYPE_ENREGISTREMENT",
                ~known,
                numbers,
                value=lambda at: lines.text(np.array([at + 1]), 0, TYPE_WIDTH)[0],
            )
        )
    ranks, known_numbers = rank[known], numbers[known]
    # The highest rank seen before each line (a running maximum, shifted by one): a line
    # ranked below it comes after a record that should follow it.
    previous_max = np.maximum.accumulate(
        np.concatenate((np.array([-1], dtype=np.int8), ranks[:-1]))
    )
    misplaced = ranks < previous_max
    for position in np.unique(ranks[misplaced]).tolist():  # one Hits per record, for its label
        out.append(
            found_where(
                "ORDRE_ENREGISTREMENTS",
                misplaced & (ranks == position),
                known_numbers,
                record=order[position],
                value=order[position],
                expected=lambda at: order[previous_max[at]],
            )
        )
    for position, record in enumerate(order):
        if record in REPEATABLE:
            continue
        here = rank == position
        if not here.any():
            out.append(file_level("ENREGISTREMENT_MANQUANT", record=record))
            continue
        here[np.argmax(here)] = False  # the first one is the record; the others repeat it
        if here.any():
            out.append(found_where("ENREGISTREMENT_REPETE", here, numbers, record=record))
    return out


def check_numeric_fields(parsed: ParsedFile, kind: str) -> list[Hits]:
    """N fields must be all digits. The one exception, the blank insured number of the empty
    B04, is judged in validators.lines."""
    out = []
    for record in ORDER[kind]:
        block = parsed.block(record)
        for f in data_fields(record):
            if not f.numeric or (record, f.name) == ("B04", "N_Num_Assure"):
                continue
            if block.valid(f.name).all():
                continue
            out.append(
                found_where(
                    "CHAMP_NON_NUMERIQUE",
                    ~block.valid(f.name),
                    block.line,
                    record=record,
                    field=f.name,
                )
            )
    return out


def header(parsed: ParsedFile, kind: str) -> tuple[int | None, str | None]:
    """Affiliate number and period from the A01/B01 header, None when unreadable."""
    head = parsed.block("A01" if kind == "preetabli" else "B01")
    if len(head) == 0:
        return None, None
    affiliate = int(head.number("N_Num_Affilie")[0]) if head.valid("N_Num_Affilie")[0] else None
    period = f"{head.number('L_Periode')[0]:06d}" if head.valid("L_Periode")[0] else None
    return affiliate, period


def check_identity(
    parsed: ParsedFile,
    kind: str,
    *,
    file_name: str | None = None,
    depositor: Depositor | None = None,
    today: dt.date | None = None,
) -> list[Hits]:
    """One affiliate and one period throughout, matching the name and the depositor; the
    period real, begun by `today` (the day of receipt, given by the caller) and priced."""
    affiliate, period = header(parsed, kind)
    where = _Header.of(parsed, kind)
    return [
        *check_category(parsed, kind),
        *check_same_affiliate(parsed, kind, affiliate),
        *check_same_period(parsed, kind, period),
        *check_period(where, kind, period, today),
        *check_affiliate_key(where, affiliate),
        *_check_name(file_name, affiliate, period, where.record, where.line),
        *check_depositor(where, affiliate, depositor),
    ]


@dataclass(frozen=True)
class _Header:
    """Where file-level identity anomalies point: the A01/B01 header and its line."""

    record: str
    line: int | None

    @classmethod
    def of(cls, parsed: ParsedFile, kind: str) -> _Header:
        record = ORDER[kind][1]
        heading = parsed.block(record)
        return cls(record, int(heading.line[0]) if len(heading) else None)


def check_category(parsed: ParsedFile, kind: str) -> list[Hits]:
    """CATEGORIE: L_Cat of A00/B00 is 'A0'/'B0'."""
    first = ORDER[kind][0]
    category = first[0] + "0"
    opening = parsed.block(first)
    return [
        found_where(
            "CATEGORIE",
            ~opening.equals("L_Cat", category),
            opening.line,
            record=first,
            field="L_Cat",
            expected=category,
        )
    ]


def check_same_affiliate(parsed: ParsedFile, kind: str, affiliate: int | None) -> list[Hits]:
    """AFFILIE_INCOHERENT: every line after the opening one names the header's affiliate."""
    if affiliate is None:
        return []
    return _same_after_opening(
        parsed, kind, "AFFILIE_INCOHERENT", "N_Num_Affilie", affiliate, f"{affiliate:07d}"
    )


def check_same_period(parsed: ParsedFile, kind: str, period: str | None) -> list[Hits]:
    """PERIODE_INCOHERENTE: every line after the opening one names the header's period."""
    if period is None:
        return []
    return _same_after_opening(
        parsed, kind, "PERIODE_INCOHERENTE", "L_Periode", int(period), period
    )


def _same_after_opening(
    parsed: ParsedFile, kind: str, code: str, name: str, value: int, shown: str
) -> list[Hits]:
    """`code` on each line after the opening one whose readable field `name` is not `value`."""
    out = []
    for record in ORDER[kind][1:]:
        block = parsed.block(record)
        wrong = block.valid(name) & (block.number(name) != value)
        out.append(found_where(code, wrong, block.line, record=record, field=name, expected=shown))
    return out


def check_period(
    where: _Header, kind: str, period: str | None, today: dt.date | None
) -> list[Hits]:
    """The header's period, judged once: a real month, begun (and ended) by `today`, priced."""
    if period is None:
        return []
    if not period_exists(period):
        return [file_level("PERIODE_INVALIDE", record=where.record, value=period, line=where.line)]
    received = None if today is None else f"{today:%d/%m/%Y}"
    if today is not None and period_is_future(period, today):
        return [_period_hit("PERIODE_FUTURE", where, period, received)]
    out = []
    if today is not None and period_in_progress(period, today):
        out.append(_period_hit("PERIODE_EN_COURS", where, period, received))
    if kind == "declaration" and not period_is_priced(period):
        out.append(_period_hit("PERIODE_HORS_BAREME", where, period))
    return out


def _period_hit(code: str, where: _Header, period: str, received: str | None = None) -> Hits:
    return file_level(code, record=where.record, value=period, expected=received, line=where.line)


def period_exists(period: str) -> bool:
    """PERIODE_INVALIDE otherwise: month 01-12, not before the regime (schemas limits)."""
    return 1 <= int(period[4:]) <= 12 and period >= limits().first_period


def period_is_future(period: str, today: dt.date) -> bool:
    """PERIODE_FUTURE (blocking): the period has not begun on the day of receipt."""
    return period > f"{today:%Y%m}"


def period_in_progress(period: str, today: dt.date) -> bool:
    """PERIODE_EN_COURS (warning): received during the period itself, before its end. Only a
    warning: a last payroll run may close the month early, and no source says the portal
    refuses it."""
    return period == f"{today:%Y%m}"


def period_is_priced(period: str) -> bool:
    """PERIODE_HORS_BAREME otherwise: a ceiling (and rates) in force for the period."""
    try:
        ceiling_for(period)
    except NoRuleInForce:
        return False
    return True


def check_affiliate_key(where: _Header, affiliate: int | None) -> list[Hits]:
    """CLE_AFFILIE: the affiliate number's check key (a warning: the public rule is unsure)."""
    if affiliate is None or affiliate_key_ok(np.array([affiliate]))[0]:
        return []
    key = affiliate_key(np.array([affiliate // 10]))[0]
    return [
        file_level(
            "CLE_AFFILIE",
            record=where.record,
            value=f"{affiliate:07d}",
            expected=str(key),
            line=where.line,
        )
    ]


@dataclass(frozen=True)
class Depositor:
    """Who dropped a file: a login and the affiliates it may declare for (an employer: one;
    a group: its companies; a mandated accountant: its clients)."""

    login: str
    affiliates: frozenset[int]


def check_depositor(
    where: _Header, affiliate: int | None, depositor: Depositor | None
) -> list[Hits]:
    """COMPTE_DEPOSANT: the file declares an affiliate the depositor may declare for."""
    if depositor is None or affiliate is None or affiliate in depositor.affiliates:
        return []
    return [
        file_level(
            "COMPTE_DEPOSANT",
            record=where.record,
            value=f"{affiliate:07d}",
            expected=depositor.login,
            line=where.line,
        )
    ]


def check_dates(parsed: ParsedFile, kind: str) -> list[Hits]:
    """The header's dates (D_ fields, YYYYMMDD) must be real calendar dates."""
    record = ORDER[kind][1]
    head = parsed.block(record)
    out = []
    for f in data_fields(record):
        if not f.name.startswith("D_") or not len(head) or not head.valid(f.name)[0]:
            continue
        text = f"{head.number(f.name)[0]:08d}"
        try:
            dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            out.append(found("DATE_INVALIDE", head.line[:1], record=record, field=f.name))
    return out


def _check_name(
    file_name: str | None,
    affiliate: int | None,
    period: str | None,
    record: str,
    line: int | None,
) -> list[Hits]:
    match = FILE_NAME.match(file_name or "")
    if not match or affiliate is None or period is None:
        return []
    named_affiliate, named_period = match.groups()
    mmaaaa = period[4:] + period[:4]
    if int(named_affiliate) == affiliate and named_period in (period, mmaaaa):
        return []
    return [
        file_level(
            "NOM_FICHIER",
            record=record,
            line=line,
            value=f"{affiliate:07d}/{period}",
            expected=f"{named_affiliate}/{named_period}",
        )
    ]
