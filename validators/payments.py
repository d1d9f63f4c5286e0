"""Check a CSV file of payments received: every bad row named by line, field and rule.

The file is read with the csv module (its C reader numbers physical lines, quotes included),
then each rule is one vectorised test over a column. A file with any error is refused whole; the
caller loads nothing of it. Messages never quote an amount.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from schemas import limits

COLUMNS = ("affiliate", "period", "amount_centimes", "paid_on", "reference")
DEFAULT_CAP = 1000
# A rule's hits: the lines where it fires, its column (-1: the whole line), its code, and what
# its message says is expected.
Hit = tuple[np.ndarray, int, str, object]
MAX_AMOUNT_DIGITS = 15  # 10**15 centimes: 10 000 billion MAD, far below BIGINT and int64

# code: message (French, like the acknowledgement's). {expected} is filled in per rule.
RULES: dict[str, str] = {
    "PAIEMENT_ENCODAGE": "Le fichier n'est pas en UTF-8.",
    "PAIEMENT_ENTETE": "La première ligne doit être l'en-tête {expected}.",
    "PAIEMENT_CSV": "Ligne illisible en CSV (guillemet non fermé ou champ trop long) : "
    "rien n'a été lu après elle.",
    "PAIEMENT_COLONNES": "La ligne doit compter {expected} champs séparés par des virgules.",
    "PAIEMENT_AFFILIE": "Numéro d'affilié attendu : 1 à 7 chiffres, non nul.",
    "PAIEMENT_PERIODE": "Période attendue au format AAAAMM, de {expected} au mois en cours.",
    "PAIEMENT_MONTANT": "Montant attendu en centimes : un entier positif, sans virgule ni espace.",
    "PAIEMENT_DATE": "Date de paiement attendue au format AAAA-MM-JJ, au plus tard {expected}.",
    "PAIEMENT_REFERENCE": "Référence attendue : 1 à 64 caractères parmi A-Z a-z 0-9 . _ / -.",
    "PAIEMENT_REFERENCE_DOUBLE": "Référence déjà présente plus haut dans le fichier.",
    # Checked against the database by cnss_edi.payments, not here.
    "PAIEMENT_REFERENCE_CONNUE": "Référence déjà importée (fichier n° {expected}) avec un autre "
    "affilié, une autre période, un autre montant ou une autre date.",
}


@dataclass(frozen=True)
class RowError:
    """One broken rule: where (line 1 is the header), which field, which rule, and why."""

    line: int
    field: str
    rule: str
    message: str


@dataclass(frozen=True)
class CheckedPayments:
    """The rows (typed, with their line numbers) when `errors` is empty; else the errors."""

    rows: pd.DataFrame  # line, affiliate, period, amount, paid_on, reference
    errors: list[RowError]
    error_count: int  # all of them; only the first `cap` are in `errors`


def check_payments(raw: bytes, *, today: dt.date, cap: int = DEFAULT_CAP) -> CheckedPayments:
    """Parse and check a payments file; `today` bounds the periods and payment dates."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _refused(RowError(1, "", "PAIEMENT_ENCODAGE", RULES["PAIEMENT_ENCODAGE"]))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = next(reader, [])
    if tuple(h.strip() for h in header) != COLUMNS:
        message = RULES["PAIEMENT_ENTETE"].format(expected=",".join(COLUMNS))
        return _refused(RowError(1, "", "PAIEMENT_ENTETE", message))
    records, lines, broken, unreadable = [], [], [], []
    while True:
        start = reader.line_num + 1  # a quoted field may span lines: name the first
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error:
            unreadable.append(start)
            break
        if not any(cell.strip() for cell in record):
            continue  # a blank line, often the last one
        if len(record) != len(COLUMNS):
            broken.append(start)
            continue
        records.append([cell.strip() for cell in record])
        lines.append(start)
    cells = pd.DataFrame(records, columns=list(COLUMNS), dtype=object).astype(str)
    cells.insert(0, "line", np.asarray(lines, dtype=np.int64))
    hits: list[Hit] = [
        (np.asarray(broken, dtype=np.int64), -1, "PAIEMENT_COLONNES", len(COLUMNS)),
        (np.asarray(unreadable, dtype=np.int64), -1, "PAIEMENT_CSV", ""),
    ]
    hits += _field_hits(cells, today)
    count = sum(len(found) for found, *_ in hits)
    if count:
        return CheckedPayments(_typed(cells.iloc[:0]), _first(hits, cap), count)
    return CheckedPayments(_typed(cells), [], 0)


def _first(hits: list[Hit], cap: int) -> list[RowError]:
    """The first `cap` errors in file order (then column order): only those are formatted."""
    lines = np.concatenate([found for found, *_ in hits])
    which = np.concatenate([np.full(len(found), n) for n, (found, *_) in enumerate(hits)])
    columns = np.concatenate([np.full(len(found), column) for found, column, *_ in hits])
    order = np.lexsort((columns, lines))[:cap]
    errors = []
    for index in order:
        _, column, rule, expected = hits[which[index]]
        field = COLUMNS[column] if column >= 0 else ""
        message = RULES[rule].format(expected=expected)
        errors.append(RowError(int(lines[index]), field, rule, message))
    return errors


def _refused(error: RowError) -> CheckedPayments:
    empty = pd.DataFrame(columns=["line", *COLUMNS], dtype=str)
    return CheckedPayments(_typed(empty), [error], 1)


def _field_hits(cells: pd.DataFrame, today: dt.date) -> list[Hit]:
    """Each rule as a mask over the rows: (lines where it fires, column, rule, expected)."""
    first = limits().first_period
    current = f"{today.year}{today.month:02d}"
    period = cells["period"]
    month = pd.to_numeric(period.str[4:], errors="coerce")
    paid_on = pd.to_datetime(cells["paid_on"], format="%Y-%m-%d", errors="coerce")
    amount = cells["amount_centimes"]
    reference = cells["reference"]
    good_reference = reference.str.fullmatch(r"[A-Za-z0-9._/-]{1,64}")
    rules = [
        (
            "affiliate",
            "PAIEMENT_AFFILIE",
            "",
            ~cells["affiliate"].str.fullmatch(r"0*[1-9][0-9]{0,6}"),
        ),
        (
            "period",
            "PAIEMENT_PERIODE",
            first,
            ~period.str.fullmatch(r"[0-9]{6}")
            | ~month.between(1, 12)
            | (period < first)
            | (period > current),
        ),
        (
            "amount_centimes",
            "PAIEMENT_MONTANT",
            "",
            ~amount.str.fullmatch(rf"[0-9]{{1,{MAX_AMOUNT_DIGITS}}}") | amount.str.fullmatch("0+"),
        ),
        (
            "paid_on",
            "PAIEMENT_DATE",
            today.isoformat(),
            ~cells["paid_on"].str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
            | paid_on.isna()
            | (paid_on > pd.Timestamp(today)),
        ),
        ("reference", "PAIEMENT_REFERENCE", "", ~good_reference),
        (
            "reference",
            "PAIEMENT_REFERENCE_DOUBLE",
            "",
            good_reference & reference.duplicated(keep="first"),
        ),
    ]
    line = cells["line"].to_numpy()
    return [
        (line[mask.fillna(True).to_numpy(dtype=bool)], COLUMNS.index(field), rule, expected)
        for field, rule, expected, mask in rules
    ]


def _typed(cells: pd.DataFrame) -> pd.DataFrame:
    """The checked cells as typed columns: integers, a date, text."""
    return pd.DataFrame(
        {
            "line": cells["line"].astype(np.int64),
            "affiliate": cells["affiliate"].astype(np.int64),
            "period": cells["period"].astype(str),
            "amount": cells["amount_centimes"].astype(np.int64),
            "paid_on": pd.to_datetime(cells["paid_on"], format="%Y-%m-%d").dt.date,
            "reference": cells["reference"].astype(str),
        }
    )
