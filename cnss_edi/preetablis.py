"""Préétablis at month end: what CNSS sends each EDI employer before it declares period M.

An employer's préétabli for M lists the employees of its latest accepted declaration (the
current version of its latest period before M): its B02 lines except the leavers (a situation
whose allowance is paid back: SO, DE), plus its entrants (B04). Each gets its children and the
family allowance in force for M (schemas/allowances.csv); A03 carries the control totals. The
company's name and address come from that declaration's B01 line, read from the archive.

Each préétabli is written to the archive first, then stored like any préétabli CNSS issues
(cnss_edi.process.load_preetabli: parsed, validated, the roster M's declarations are checked
against), then published in the out/ folder of every login that declares for the employer
(.part, then renamed). A second run writes nothing new: an employer whose préétabli for M is
stored is only published again where it is missing (a run that stopped half way).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from psycopg2 import sql

from cnss_edi import accounts, notices
from cnss_edi.files import write_atomically
from cnss_edi.process import Locations, load_preetabli
from cnss_edi.records import encode, totals_of
from cnss_edi.store import Store, copy_out
from schemas import RECORD_LENGTH, allowance_per_child, field, situations
from transforms.parse import parse

log = logging.getLogger(__name__)
HEADER_FIELDS = (
    "L_Raison_Sociale",
    "L_Activite",
    "L_Adresse",
    "L_Ville",
    "C_Code_Postal",
    "C_Code_Agence",
)
LEAVERS = tuple(code for code, s in situations().items() if s.af_reversed)


@dataclass(frozen=True)
class Latest:
    """An employer's latest accepted declaration before the period."""

    declaration_id: int
    period: str
    archive_path: str


def name_of(affiliate: int, period: str) -> str:
    return f"AFFEBDS_{affiliate:07d}_{period}.txt"


def month_end(
    store: Store, period: str, locations: Locations, *, today: dt.date | None = None
) -> Counter[str]:
    """Write, store and publish the préétabli of period `period` for every employer that
    has a declarant account; counts by outcome (written, published, already, no declaration).
    `locations.archive` keeps the files; with `locations.server`, they go to each login's
    out/ on the SFTP server, else to <outbox>/<login>/out/."""
    logins = notices.holders(store)
    issued = _issued(store, period)
    done: Counter[str] = Counter()
    for affiliate in sorted(logins):
        path = locations.archive / "preetablis" / period / name_of(affiliate, period)
        if affiliate not in issued:
            raw = build(store, affiliate, period, locations.archive, today=today)
            if raw is None:
                done["no declaration"] += 1
                continue
            write_atomically(path, raw)
            outcome = load_preetabli(path, raw, store=store)
            if outcome.status != "accepted":  # a bug in this module, not the employer's doing
                raise RuntimeError(f"préétabli {outcome.file_id} refused by the validator")
            done["written"] += 1
        elif not path.exists():
            done["stored elsewhere"] += 1  # e.g. loaded by an operator: nothing to publish
            continue
        else:
            done["already"] += 1
        copies = _publish(path, logins[affiliate], locations)
        if copies:
            done["published"] += copies
    log.info("préétablis %s: %s", period, dict(sorted(done.items())))
    return done


def build(
    store: Store, affiliate: int, period: str, archive: Path, *, today: dt.date | None = None
) -> bytes | None:
    """The préétabli of `affiliate` for `period`, or None when it never declared before."""
    latest = _latest(store, affiliate, period)
    if latest is None:
        return None
    staff = _staff(store, latest.declaration_id)
    children = np.clip(staff.column("children").to_numpy(), 0, 6)
    allowance = np.concatenate([[0], np.cumsum(allowance_per_child(period))])[children]
    head = {"N_Num_Affilie": affiliate, "L_Periode": int(period)}
    lines = {
        **head,
        "N_Num_Assure": staff.column("insured_number").to_numpy(),
        "L_Nom_Prenom": _names(staff.column("full_name").to_pylist()),
        "N_Enfants": children,
        "N_AF_A_Payer": allowance,
        "N_AF_A_Deduire": np.zeros_like(allowance),
        "N_AF_Net_A_Payer": allowance,
    }
    year, month = int(period[:4]), int(period[4:])
    due = dt.date(year + month // 12, month % 12 + 1, 10)  # exigibility; a deadline may move
    issued = today or dt.date.today()
    top = {
        **head,
        **_company(archive / latest.archive_path),
        "D_Date_Emission": int(issued.strftime("%Y%m%d")),
        "D_Date_Exig": int(due.strftime("%Y%m%d")),
    }
    transfer = int(f"{affiliate:07d}{period[2:]}001")  # first issue of this period
    blocks = [
        encode("A00", 1, {"N_Identif_Transfert": transfer, "L_Cat": "A0"}, b"\r\n"),
        encode("A01", 1, top, b"\r\n"),
        encode("A02", len(staff), lines, b"\r\n"),
        encode("A03", 1, {**head, **totals_of("A03", lines, len(staff))}, b"\r\n"),
    ]
    return b"".join(block.tobytes() for block in blocks)


def _issued(store: Store, period: str) -> set[int]:
    """The employers that already have an accepted préétabli for the period."""
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT DISTINCT p.affiliate FROM preetabli p JOIN edi_file f ON f.id = p.edi_file_id"
            " WHERE p.period = %s AND f.status = 'accepted'",
            (period,),
        )
        return {row[0] for row in cursor.fetchall()}


def _latest(store: Store, affiliate: int, period: str) -> Latest | None:
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT d.id, d.period, f.archive_path FROM declaration d"
            " JOIN edi_file f ON f.id = d.edi_file_id"
            " WHERE d.affiliate = %s AND d.period < %s AND d.superseded_by IS NULL"
            " ORDER BY d.period DESC LIMIT 1",
            (affiliate, period),
        )
        found = cursor.fetchone()
    return Latest(int(found[0]), found[1], found[2] or "") if found else None


def _staff(store: Store, declaration_id: int) -> pa.Table:
    """Who stays: B02 lines but the leavers, and the entrants (B04), by insured number."""
    query = sql.SQL(
        "SELECT insured_number, full_name, coalesce(children, 0) AS children"
        " FROM declaration_line WHERE declaration_id = {} AND NOT"
        " (block = 'B02' AND situation = ANY({})) ORDER BY insured_number"
    ).format(sql.Literal(declaration_id), sql.Literal(list(LEAVERS)))
    columns = [("insured_number", pa.int64()), ("full_name", pa.string()), ("children", pa.int64())]
    with store.transaction() as cursor:
        return copy_out(cursor, query, columns)


def _names(names: list[str]) -> np.ndarray:
    """The 60-character name field, as the declaration had it (trailing spaces restored)."""
    width = field("A02", "L_Nom_Prenom").length
    encoded = [name.encode("latin-1", "replace")[:width] for name in names]
    matrix = np.array(encoded or [b""], dtype=f"S{width}").view(np.uint8).reshape(-1, width)
    return np.where(matrix == 0, ord(" "), matrix).astype(np.uint8)[: len(names)]


def _company(declaration: Path) -> dict[str, object]:
    """The company fields of the declaration's B01 line (blank when the archive lacks it)."""
    blank: dict[str, object] = dict.fromkeys(HEADER_FIELDS, "")
    try:
        with declaration.open("rb") as handle:
            head = handle.read(4 * (RECORD_LENGTH + 2))  # B00, B01 and a little more
    except OSError:
        log.warning("préétabli: archived declaration %s not found", declaration.name)
        return blank
    b01 = parse(head).block("B01")
    return {name: b01.raw(name)[:1] for name in HEADER_FIELDS} if len(b01) else blank


def _publish(path: Path, holders: list[accounts.Account], locations: Locations) -> int:
    """Put the file in each holder's out/ where it is not yet; how many copies were written."""
    raw = path.read_bytes()
    return sum(notices.publish(locations, a.login, path.name, raw) for a in holders)
