"""Structure and identity: lengths, characters, record order, numeric fields, one employer
and one period throughout, the file name and the depositor's account."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np

from schemas import RECORD_LENGTH, NoRuleInForce, ceiling_for, data_fields, limits
from transforms.keys import affiliate_key, affiliate_key_ok
from transforms.parse import SPACE, ParsedFile, type_code
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
    data = parsed.lines.data
    return "preetabli" if len(data) and data[0, 0] == ord("A") else "declaration"


def check_lines(parsed: ParsedFile, kind: str) -> list[Hits]:
    """Byte-level checks on every line: BOM, length, characters, known record type, order."""
    lines = parsed.lines
    if lines.count == 0:
        return [file_level("FICHIER_VIDE")]
    out = []
    if lines.has_bom:
        out.append(file_level("BOM", line=1))
    numbers = np.arange(1, lines.count + 1)
    wrong_length = lines.length != RECORD_LENGTH
    out.append(found("LONGUEUR_LIGNE", numbers[wrong_length], value=lines.length[wrong_length]))
    if not lines.printable_only:
        bad_bytes = (lines.data < SPACE) | (lines.data > 126)
        rows = np.flatnonzero(bad_bytes.any(axis=1))
        out.append(found("CARACTERE_INTERDIT", rows + 1, value=bad_bytes[rows].argmax(axis=1) + 1))
    out.extend(_check_order(parsed, ORDER[kind]))
    return out


def _check_order(parsed: ParsedFile, order: tuple[str, ...]) -> list[Hits]:
    codes = parsed.lines.type_codes
    numbers = np.arange(1, len(codes) + 1)
    rank = np.full(len(codes), -1)
    at = {}
    for position, record in enumerate(order):
        at[record] = codes == type_code(record)
        rank[at[record]] = position
    known = rank >= 0
    out = []
    if not known.all():
        types = parsed.lines.record_types[~known].astype("U3")
        out.append(found("TYPE_ENREGISTREMENT", numbers[~known], value=types))
    ranks, known_numbers = rank[known], numbers[known]
    previous_max = np.maximum.accumulate(np.concatenate(([-1], ranks[:-1])))
    misplaced = np.flatnonzero(ranks < previous_max)
    for position in np.unique(ranks[misplaced]):  # one Hits per record, for its label
        here = misplaced[ranks[misplaced] == position]
        out.append(
            found(
                "ORDRE_ENREGISTREMENTS",
                known_numbers[here],
                record=order[position],
                value=order[position],
                expected=np.asarray(order)[previous_max[here]],
            )
        )
    for record in order:
        where = numbers[at[record]]
        if where.size == 0 and record not in REPEATABLE:
            out.append(file_level("ENREGISTREMENT_MANQUANT", record=record))
        elif where.size > 1 and record not in REPEATABLE:
            out.append(found("ENREGISTREMENT_REPETE", where[1:], record=record))
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
    account_affiliate: int | None = None,
    today: dt.date | None = None,
) -> list[Hits]:
    """One affiliate and one period throughout, matching the name and the depositor. A period
    that has not begun by `today` (the day of receipt, given by the caller) is flagged; only
    flagged, since no source says the portal refuses an early filing."""
    affiliate, period = header(parsed, kind)
    first, header_record = ORDER[kind][0], ORDER[kind][1]
    category = first[0] + "0"
    opening = parsed.block(first)
    out = [
        found_where(
            "CATEGORIE",
            ~opening.equals("L_Cat", category),
            opening.line,
            record=first,
            field="L_Cat",
            expected=category,
        )
    ]
    for record in ORDER[kind][1:]:
        block = parsed.block(record)
        if affiliate is not None:
            wrong = block.valid("N_Num_Affilie") & (block.number("N_Num_Affilie") != affiliate)
            out.append(
                found_where(
                    "AFFILIE_INCOHERENT",
                    wrong,
                    block.line,
                    record=record,
                    field="N_Num_Affilie",
                    expected=f"{affiliate:07d}",
                )
            )
        if period is not None:
            wrong = block.valid("L_Periode") & (block.number("L_Periode") != int(period))
            out.append(
                found_where(
                    "PERIODE_INCOHERENTE",
                    wrong,
                    block.line,
                    record=record,
                    field="L_Periode",
                    expected=period,
                )
            )
    heading = parsed.block(header_record)
    line = int(heading.line[0]) if len(heading) else None
    if period is not None:
        if not (1 <= int(period[4:]) <= 12 and period >= limits().first_period):
            out.append(
                file_level("PERIODE_INVALIDE", record=header_record, value=period, line=line)
            )
        elif today is not None and period > f"{today:%Y%m}":
            out.append(
                file_level(
                    "PERIODE_FUTURE",
                    record=header_record,
                    value=period,
                    expected=f"{today:%d/%m/%Y}",
                    line=line,
                )
            )
        elif kind == "declaration":
            try:
                ceiling_for(period)
            except NoRuleInForce:
                out.append(
                    file_level("PERIODE_HORS_BAREME", record=header_record, value=period, line=line)
                )
    if affiliate is not None and not affiliate_key_ok(np.array([affiliate]))[0]:
        key = affiliate_key(np.array([affiliate // 10]))[0]
        out.append(
            file_level(
                "CLE_AFFILIE",
                record=header_record,
                value=f"{affiliate:07d}",
                expected=str(key),
                line=line,
            )
        )
    out.extend(_check_name(file_name, affiliate, period, header_record, line))
    if account_affiliate is not None and affiliate is not None and affiliate != account_affiliate:
        out.append(
            file_level(
                "COMPTE_DEPOSANT",
                record=header_record,
                value=f"{affiliate:07d}",
                expected=f"{account_affiliate:07d}",
                line=line,
            )
        )
    return out


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
