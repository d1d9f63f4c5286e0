"""The monthly reconciliation against the store: read a period in one snapshot, reconcile it
(transforms.reconciliation), keep the result, export it as CSV and Parquet.

Reading: one REPEATABLE READ transaction, so that files accepted meanwhile are either wholly
in or wholly out; each input is a COPY into Arrow's CSV reader (no Python object per row),
and PostgreSQL only filters (the period, the current versions): the joins happen in pandas.
Keeping: every run is stored; the latest snapshot of a period is current (superseded_by NULL,
the view reconciliation_current), the earlier runs stay as history. Logs carry counts only.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg2 import sql

from cnss_edi.files import write_atomically
from cnss_edi.store import Store, copy_out
from transforms.deadlines import parse_period
from transforms.reconciliation import EMPLOYER_COLUMNS, Month, Reconciliation, reconcile

log = logging.getLogger(__name__)
I64, BOOL, STR = pa.int64(), pa.bool_(), pa.string()
_TYPES = {"period": STR, "status": STR, "expected": BOOL, "totals_differing": STR}
EMPLOYERS = pa.schema([(name, _TYPES.get(name, I64)) for name in EMPLOYER_COLUMNS])
EMPLOYEES = pa.schema([("affiliate", I64), ("insured_number", I64), ("issue", STR)])
BRANCHES = pa.schema([("branch", STR), ("due", I64), ("received", I64)])

_LATEST_PREETABLI = (
    "SELECT DISTINCT ON (p.affiliate) p.affiliate, p.id, p.employees FROM preetabli p"
    " JOIN edi_file f ON f.id = p.edi_file_id WHERE p.period = {period}"
    " AND f.status = 'accepted' ORDER BY p.affiliate, p.id DESC"
)
_CURRENT = "d.period = {period} AND d.superseded_by IS NULL"
# Each Month frame: the query that reads it, and its columns' Arrow types.
QUERIES: dict[str, tuple[str, list[tuple[str, pa.DataType]]]] = {
    "accounts": (
        "SELECT DISTINCT unnest(affiliates) FROM declarant",
        [("affiliate", I64)],
    ),
    "preetablis": (
        f"SELECT affiliate, employees FROM ({_LATEST_PREETABLI}) p",
        [("affiliate", I64), ("employees", I64)],
    ),
    "roster": (
        f"SELECT p.affiliate, l.insured_number FROM ({_LATEST_PREETABLI}) p"
        " JOIN preetabli_line l ON l.preetabli_id = p.id",
        [("affiliate", I64), ("insured_number", I64)],
    ),
    "declarations": (
        "SELECT affiliate, id, version, versions, employees, entrants, total_gross,"
        " total_capped, employer_due, employee_due, total_due FROM (SELECT d.*, count(*)"
        " OVER (PARTITION BY d.affiliate) AS versions FROM declaration d"
        " WHERE d.period = {period}) d WHERE d.superseded_by IS NULL",
        [
            (name, I64)
            for name in (
                "affiliate",
                "declaration_id",
                "version",
                "versions",
                "employees",
                "entrants",
                "total_gross",
                "total_capped",
                "employer_due",
                "employee_due",
                "total_due",
            )
        ],
    ),
    # The id range lets the BRIN index skip the other months' lines.
    "lines": (
        "SELECT d.affiliate, l.block = 'B04', l.insured_number, l.gross_salary,"
        " l.capped_salary, l.employer_contribution, l.employee_contribution"
        " FROM declaration d JOIN declaration_line l ON l.declaration_id = d.id"
        f" WHERE {_CURRENT} AND l.declaration_id BETWEEN {{low}} AND {{high}}",
        [
            ("affiliate", I64),
            ("entrant", BOOL),
            ("insured_number", I64),
            ("gross_salary", I64),
            ("capped_salary", I64),
            ("employer_contribution", I64),
            ("employee_contribution", I64),
        ],
    ),
    "contributions": (
        "SELECT d.affiliate, c.branch, c.employer, c.employee FROM declaration d"
        f" JOIN contribution c ON c.declaration_id = d.id WHERE {_CURRENT}",
        [("affiliate", I64), ("branch", STR), ("employer", I64), ("employee", I64)],
    ),
    "payments": (
        "SELECT affiliate, amount FROM payment WHERE period = {period}",
        [("affiliate", I64), ("amount", I64)],
    ),
}


@dataclass(frozen=True)
class Run:
    """A stored reconciliation: its id, when its figures were read, whether it is current
    (a run that read an older snapshot than the current one goes straight to history)."""

    id: int
    ran_at: dt.datetime
    current: bool
    result: Reconciliation


def read_month(store: Store, period: str) -> tuple[Month, dt.datetime]:
    """The period's inputs, all from one snapshot, and the time of that snapshot."""
    with store.transaction() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute(
            "SELECT now(), min(id), max(id) FROM declaration"
            " WHERE period = %s AND superseded_by IS NULL",
            (period,),
        )
        ran_at, low, high = cursor.fetchone() or (None, None, None)
        values: dict[str, sql.Composable] = {
            "period": sql.Literal(period),
            "low": sql.Literal(low or 0),
            "high": sql.Literal(high or 0),
        }
        frames = {
            name: copy_out(cursor, sql.SQL(query).format(**values), columns).to_pandas()
            for name, (query, columns) in QUERIES.items()
        }
    return Month(period, *(frames[name] for name in QUERIES)), ran_at


def reconcile_period(store: Store, period: str) -> Run:
    """Reconcile `period` (YYYYMM; PeriodError otherwise) and keep the result."""
    period = parse_period(period)
    month, ran_at = read_month(store, period)
    result = reconcile(month)
    run = save(store, result, ran_at=ran_at)
    counts = {s: result.summary[s] for s in ("balanced", "underpaid", "overpaid", "not_declared")}
    log.info(
        "reconciliation %s: run %d%s, %d employers: %s",
        period,
        run.id,
        "" if run.current else " (history: a later snapshot is current)",
        len(result.employers),
        counts,
    )
    return run


def save(store: Store, result: Reconciliation, *, ran_at: dt.datetime) -> Run:
    """Store a run and make it current, unless the current one read a later snapshot."""
    with store.transaction() as cursor:
        key = f"reconcile:{result.period}"
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
        cursor.execute("SELECT nextval(pg_get_serial_sequence('reconciliation_run', 'id'))")
        run_id = int((cursor.fetchone() or (0,))[0])
        cursor.execute(
            "SELECT id, ran_at FROM reconciliation_run WHERE period = %s AND superseded_by IS NULL",
            (result.period,),
        )
        found = cursor.fetchone()
        superseded_by = None
        if found is not None and found[1] > ran_at:
            superseded_by = found[0]
        elif found is not None:
            cursor.execute(
                "UPDATE reconciliation_run SET superseded_by = %s WHERE id = %s", (run_id, found[0])
            )
        cursor.execute(
            "INSERT INTO reconciliation_run (id, period, ran_at, superseded_by, summary)"
            " VALUES (%s, %s, %s, %s, %s)",
            (run_id, result.period, ran_at, superseded_by, json.dumps(result.summary)),
        )
        for table, frame, schema in (
            ("reconciliation", result.employers, EMPLOYERS),
            ("reconciliation_employee", result.employees, EMPLOYEES),
            ("reconciliation_branch", result.branches, BRANCHES),
        ):
            rows = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            run_ids = pa.array([run_id] * rows.num_rows, I64)
            store.copy(cursor, table, rows.append_column("run_id", run_ids))
    return Run(run_id, ran_at, superseded_by is None, result)


def export(result: Reconciliation, folder: Path) -> list[Path]:
    """Write reconciliation_<period>[_employees|_branches].{csv,parquet} and
    reconciliation_<period>_summary.json into `folder`; returns the paths written."""
    written = []
    for suffix, frame, schema in (
        ("", result.employers, EMPLOYERS),
        ("_employees", result.employees, EMPLOYEES),
        ("_branches", result.branches, BRANCHES),
    ):
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        stem = folder / f"reconciliation_{result.period}{suffix}"
        csv, parquet = io.BytesIO(), io.BytesIO()
        pacsv.write_csv(table, csv)
        pq.write_table(table, parquet)
        for path, buffer in (
            (stem.with_suffix(".csv"), csv),
            (stem.with_suffix(".parquet"), parquet),
        ):
            write_atomically(path, buffer.getvalue())
            written.append(path)
    summary = folder / f"reconciliation_{result.period}_summary.json"
    write_atomically(summary, json.dumps(result.summary, indent=2).encode())
    return [*written, summary]
