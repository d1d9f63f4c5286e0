"""Structure and identity: lengths, characters, record order, numeric fields, one employer
and one period throughout, the file name and the depositor's account."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from schemas import RECORD_LENGTH, NoRuleInForce, ceiling_for, data_fields, field
from transforms.keys import affiliate_key, affiliate_key_ok
from transforms.parse import SPACE, ParsedFile
from validators.anomaly import file_level, found

ORDER = {
    "declaration": ("B00", "B01", "B02", "B03", "B04", "B05", "B06"),
    "preetabli": ("A00", "A01", "A02", "A03"),
}
REPEATABLE = {"A02", "B02", "B04"}
# DS_<affiliate>_<period>.txt; the official document may use MMAAAA, so both orders are read.
FILE_NAME = re.compile(r"^(?:DS|AFFEBDS)_(\d{7})_(\d{6})\.txt$", re.IGNORECASE)


def file_kind(parsed: ParsedFile) -> str:
    """'preetabli' when the first line is an A record, else 'declaration'."""
    types = parsed.lines.record_types
    return "preetabli" if len(types) and types[0].startswith("A") else "declaration"


def check_lines(parsed: ParsedFile, kind: str) -> list[pd.DataFrame]:
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
    bad_bytes = (lines.data < SPACE) | (lines.data > 126)
    rows = np.flatnonzero(bad_bytes.any(axis=1))
    out.append(found("CARACTERE_INTERDIT", rows + 1, value=bad_bytes[rows].argmax(axis=1) + 1))
    out.extend(_check_order(parsed, ORDER[kind]))
    return out


def _check_order(parsed: ParsedFile, order: tuple[str, ...]) -> list[pd.DataFrame]:
    types = parsed.lines.record_types
    numbers = np.arange(1, len(types) + 1)
    rank = np.full(len(types), -1)
    for position, record in enumerate(order):
        rank[types == record] = position
    known = rank >= 0
    out = [found("TYPE_ENREGISTREMENT", numbers[~known], value=types[~known])]
    ranks, known_numbers = rank[known], numbers[known]
    previous_max = np.maximum.accumulate(np.concatenate(([-1], ranks[:-1])))
    misplaced = ranks < previous_max
    expected = np.asarray(order)[previous_max[misplaced]]
    out.append(
        found(
            "ORDRE_ENREGISTREMENTS",
            known_numbers[misplaced],
            value=types[known][misplaced],
            expected=expected,
        ).assign(record=types[known][misplaced])
    )
    for record in order:
        at = numbers[types == record]
        if at.size == 0 and record not in REPEATABLE:
            out.append(file_level("ENREGISTREMENT_MANQUANT", record=record))
        elif at.size > 1 and record not in REPEATABLE:
            out.append(found("ENREGISTREMENT_REPETE", at[1:], record=record))
    return out


def check_numeric_fields(parsed: ParsedFile, kind: str) -> list[pd.DataFrame]:
    """N fields must be all digits. The one exception, the blank insured number of the empty
    B04, is judged in validators.lines."""
    out = []
    for record in ORDER[kind]:
        table = parsed.tables[record]
        for f in data_fields(record):
            if not f.numeric or table.column(f.name).null_count == 0:
                continue
            if (record, f.name) == ("B04", "N_Num_Assure"):
                continue
            bad = table.column("line").to_numpy()[table.column(f.name).is_null().to_numpy()]
            out.append(found("CHAMP_NON_NUMERIQUE", bad, record=record, field=f.name))
    return out


def header(parsed: ParsedFile, kind: str) -> tuple[int | None, str | None]:
    """Affiliate number and period from the A01/B01 header, None when unreadable."""
    head = parsed.frame("A01" if kind == "preetabli" else "B01")
    if head.empty:
        return None, None
    affiliate, period = head["N_Num_Affilie"].iloc[0], head["L_Periode"].iloc[0]
    affiliate = None if pd.isna(affiliate) else int(affiliate)
    period = None if pd.isna(period) else f"{int(period):06d}"
    return affiliate, period


def check_identity(
    parsed: ParsedFile,
    kind: str,
    *,
    file_name: str | None = None,
    account_affiliate: int | None = None,
) -> list[pd.DataFrame]:
    """One affiliate and one period throughout, matching the name and the depositor."""
    affiliate, period = header(parsed, kind)
    first, header_record = ORDER[kind][0], ORDER[kind][1]
    out = []
    category = parsed.frame(first)["L_Cat"]
    wrong = category != first[0] + "0"
    out.append(
        found(
            "CATEGORIE",
            parsed.frame(first)["line"][wrong],
            record=first,
            field="L_Cat",
            expected=first[0] + "0",
        )
    )
    for record in ORDER[kind][1:]:
        frame = parsed.frame(record)
        if affiliate is not None:
            bad = frame["N_Num_Affilie"].notna() & (frame["N_Num_Affilie"] != affiliate)
            out.append(
                found(
                    "AFFILIE_INCOHERENT",
                    frame["line"][bad],
                    record=record,
                    field="N_Num_Affilie",
                    expected=f"{affiliate:07d}",
                )
            )
        if period is not None:
            bad = frame["L_Periode"].notna() & (frame["L_Periode"] != int(period))
            out.append(
                found(
                    "PERIODE_INCOHERENTE",
                    frame["line"][bad],
                    record=record,
                    field="L_Periode",
                    expected=period,
                )
            )
    line = int(parsed.frame(header_record)["line"].iloc[0]) if affiliate or period else None
    if period is not None:
        if not (1 <= int(period[4:]) <= 12 and period >= "195901"):
            out.append(
                file_level("PERIODE_INVALIDE", record=header_record, value=period, line=line)
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


def _check_name(
    file_name: str | None, affiliate: int | None, period: str | None, record: str, line: int | None
) -> list[pd.DataFrame]:
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


def blank_field(parsed: ParsedFile, record: str, name: str) -> np.ndarray:
    """Per line of `record`: is the field all spaces in the raw bytes?"""
    f = field(record, name)
    rows = parsed.tables[record].column("line").to_numpy() - 1
    return (parsed.lines.data[rows, f.start : f.stop] == SPACE).all(axis=1)
