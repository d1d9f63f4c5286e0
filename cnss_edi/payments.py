"""Import a CSV file of payments: checked whole, then loaded in one transaction, at most once.

The file's SHA-256 makes a second import of the same bytes a no-op; a payment's bank reference
makes a row already loaded from another file (a cumulative export) a no-op too, while a
reference that comes back with other values refuses the whole file. Rows go in with COPY into a
temporary table, then one INSERT … ON CONFLICT DO NOTHING (the target-postgres habit).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
import pyarrow as pa

from cnss_edi.store import Cursor, Store
from validators.payments import RULES, RowError, check_payments

PAYMENT_LOCK = 7_340_002  # one import at a time: two files sharing a reference never race
MAX_BYTES = 64 << 20  # about a million payments; a larger export is split by month
_ARROW = pa.schema(
    [
        ("reference", pa.string()),
        ("affiliate", pa.int32()),
        ("period", pa.string()),
        ("amount", pa.int64()),
        ("paid_on", pa.date32()),
        ("payment_file_id", pa.int64()),
        ("line_no", pa.int32()),
    ]
)
Status = Literal["imported", "already_imported", "rejected"]


@dataclass(frozen=True)
class Imported:
    """What an import did. `rows` counts the file's payments, `new_rows` those not already
    loaded; a rejected file lists its first errors and counts them all."""

    status: Status
    sha256: str
    rows: int = 0
    new_rows: int = 0
    file_id: int | None = None
    imported_at: dt.datetime | None = None
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0


class _Refused(Exception):
    """Raised inside the transaction to roll it back: the file conflicts with the table."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} conflicting references")
        self.errors = errors


def import_payments(store: Store, raw: bytes, *, file_name: str, today: dt.date) -> Imported:
    """Check `raw` and load its payments, all or none; `today` bounds periods and dates."""
    sha256 = hashlib.sha256(raw).hexdigest()
    checked = check_payments(raw, today=today)
    if checked.error_count:
        return Imported("rejected", sha256, errors=checked.errors, error_count=checked.error_count)
    rows = checked.rows
    try:
        with store.transaction() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (PAYMENT_LOCK,))
            cursor.execute(
                "SELECT id, imported_at, rows, new_rows FROM payment_file WHERE sha256 = %s",
                (sha256,),
            )
            found = cursor.fetchone()
            if found is not None:
                file_id, imported_at, count, new = found
                return Imported("already_imported", sha256, count, new, file_id, imported_at)
            cursor.execute(
                "INSERT INTO payment_file (sha256, file_name, rows, new_rows)"
                " VALUES (%s, %s, %s, 0) RETURNING id, imported_at",
                (sha256, file_name, len(rows)),
            )
            file_id, imported_at = cursor.fetchone() or (None, None)
            new = _load(store, cursor, rows.assign(payment_file_id=file_id))
            cursor.execute("UPDATE payment_file SET new_rows = %s WHERE id = %s", (new, file_id))
    except _Refused as refused:
        return Imported("rejected", sha256, errors=refused.errors, error_count=len(refused.errors))
    return Imported("imported", sha256, len(rows), new, file_id, imported_at)


def _load(store: Store, cursor: Cursor, rows: pd.DataFrame) -> int:
    """COPY the rows into a temporary table, refuse references loaded with other values,
    insert the others; returns how many were new."""
    cursor.execute("CREATE TEMP TABLE payment_in (LIKE payment INCLUDING DEFAULTS) ON COMMIT DROP")
    table = pa.Table.from_pandas(
        rows.rename(columns={"line": "line_no"}),
        schema=_ARROW,
        preserve_index=False,
    )
    store.copy(cursor, "payment_in", table)
    cursor.execute(
        "SELECT i.line_no, p.payment_file_id FROM payment_in i JOIN payment p USING (reference)"
        " WHERE (i.affiliate, i.period, i.amount, i.paid_on)"
        " IS DISTINCT FROM (p.affiliate, p.period, p.amount, p.paid_on) ORDER BY i.line_no"
    )
    conflicts = cursor.fetchall()
    if conflicts:
        raise _Refused(
            [
                RowError(
                    line,
                    "reference",
                    "PAIEMENT_REFERENCE_CONNUE",
                    RULES["PAIEMENT_REFERENCE_CONNUE"].format(expected=other_file),
                )
                for line, other_file in conflicts
            ]
        )
    cursor.execute(
        "INSERT INTO payment SELECT * FROM payment_in ON CONFLICT (reference) DO NOTHING"
    )
    return cursor.rowcount
