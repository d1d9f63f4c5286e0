"""PostgreSQL store: everything about one received file is written in one transaction.

Bulk rows go in with COPY (binary, encoded a slice at a time while COPY reads them, see
cnss_edi.pgcopy; CSV for small tables), and préétabli lines come back as binary COPY. The
caller drives the transaction with `with store.transaction():` so that a crash at any moment
leaves either all of a file or nothing of it: a declaration's lines are never split over two
connections (two transactions cannot commit as one without two-phase commit and its recovery
duties).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import psycopg2
import psycopg2.extras
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg2 import sql

from cnss_edi import pgcopy
from schemas import ddl
from transforms.contributions import ContributionSummary
from validators.anomaly import Anomaly
from validators.preetabli import ROSTER_COLUMNS, Roster

# The line tables go in with binary COPY (when large, see BINARY_COPY_ROWS), any other table as
# CSV. Their integer columns narrower than BIGINT (schemas/ddl.sql): binary COPY sends each
# integer at its column's exact width.
BINARY_TABLES = frozenset({"declaration_line", "preetabli_line"})
NARROW_INTEGERS = {"line_no": 4, "children": 2, "days": 2}
# Préétabli lines kept in memory per connection, most recent first (40 bytes a line).
ROSTER_LINES_KEPT = 100_000
# From this many rows binary COPY loads faster (the server parses no integer as text); below,
# CSV does (its encoder's fixed cost is lower, and commits dominate). Measured: README.
BINARY_COPY_ROWS = 5_000
SCHEMA_LOCK = 7_340_001  # advisory lock id: one schema migration at a time


Cursor = psycopg2.extensions.cursor
Kind = Literal["declaration", "preetabli"]
Status = Literal["accepted", "rejected", "duplicate"]


@dataclass(frozen=True)
class FileRow:
    """What the store remembers of one received file (paths relative to their folders)."""

    id: int
    receipt_id: int | None
    file_name: str
    sha256: str
    status: Status
    kind: Kind
    received_at: dt.datetime
    source_path: str
    archive_path: str
    acknowledgement_path: str
    acknowledgement_xml: str
    finished: bool
    affiliate: int | None
    period: str | None
    anomaly_count: int


@dataclass(frozen=True)
class Receipt:
    """A file claimed from a drop box: its id is the order of receipt."""

    id: int
    box: str
    file_name: str
    usable_name: bool
    size_bytes: int
    claimed_at: dt.datetime

    @property
    def where(self) -> str:
        """box/name as dropped (just the name in a flat inbox)."""
        return f"{self.box}/{self.file_name}" if self.box else self.file_name


# Every FileRow field is a column of edi_file, except `finished`.
_FILE_COLUMNS = sql.SQL(", ").join(
    sql.SQL("finished_at IS NOT NULL AS finished")
    if f.name == "finished"
    else sql.Identifier(f.name)
    for f in fields(FileRow)
)
_RECEIPT_COLUMNS = sql.SQL(", ").join(sql.Identifier(f.name) for f in fields(Receipt))
# The unique index that makes a content's judgement single (schemas/ddl.sql).
ONE_JUDGEMENT = "edi_file_one_judgement"


def _one(cursor: Cursor) -> tuple[Any, ...]:
    """The row of a statement that always returns one (RETURNING, an aggregate, a lock)."""
    row = cursor.fetchone()
    assert row is not None
    return row


def copy_out(
    cursor: Cursor, query: sql.Composable, columns: Sequence[tuple[str, pa.DataType]]
) -> pa.Table:
    """A query's rows through COPY (CSV) into Arrow, typed by `columns` (name, type) in the
    order selected: no Python object per row; no row gives an empty table of that schema."""
    buffer = io.BytesIO()
    cursor.copy_expert(sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)").format(query), buffer)
    schema = pa.schema(list(columns))
    if not buffer.getbuffer().nbytes:
        return schema.empty_table()
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=schema.names),
        convert_options=pacsv.ConvertOptions(
            column_types=dict(zip(schema.names, schema.types, strict=True)),
            true_values=["t"],
            false_values=["f"],
            strings_can_be_null=False,
        ),
    )


def receipt_key(receipt_id: int) -> str:
    """The lock held while a receipt is claimed, judged or finished."""
    return f"receipt:{receipt_id}"


class Store:
    """The project's database, through one psycopg2 connection."""

    def __init__(self, connection: psycopg2.extensions.connection, dsn: str = "") -> None:
        self.connection = connection
        self.dsn = dsn
        self._rosters: dict[int, dict[str, np.ndarray]] = {}  # by préétabli id, oldest first

    @classmethod
    def open(cls, dsn: str) -> Store:
        """Connect and create the tables if they are missing (idempotent)."""
        connection = psycopg2.connect(dsn)
        store = cls(connection, dsn)
        with store.transaction() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            cursor.execute(ddl())
        return store

    def reopen(self) -> Store:
        """Another connection to the same database (one per worker thread)."""
        return Store(psycopg2.connect(self.dsn), self.dsn)

    def close(self) -> None:
        self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """Commit on success, roll back on any exception (then re-raise)."""
        with self.connection.cursor() as cursor:
            try:
                yield cursor
            except BaseException:
                self._roll_back()
                raise
        self.connection.commit()

    def _roll_back(self) -> None:
        try:
            self.connection.rollback()
        except psycopg2.Error:
            # The server went away (stopped, crashed, connection cut): the transaction went
            # with it and the rollback can only fail. Its error, raised while the one that
            # says what happened is handled, would replace it; the caller gets the original.
            if not self.connection.closed:
                raise

    @contextmanager
    def lock(self, key: str, *, wait: bool = False) -> Iterator[bool]:
        """Hold a session advisory lock named `key`; yields False if another session holds it
        (or waits for it with `wait`). A crashed worker's session ends, and its locks with it."""
        statement = (
            "SELECT pg_advisory_lock(hashtextextended(%s, 0))"
            if wait
            else "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
        )
        with self.transaction() as cursor:
            cursor.execute(statement, (key,))
            acquired = wait or _one(cursor)[0]  # pg_advisory_lock returns once it has it
        try:
            yield acquired
        finally:
            # A closed connection has ended its session, and the session's locks with it:
            # unlocking would only raise InterfaceError over the error that closed it.
            if acquired and not self.connection.closed:
                self.unlock(key)

    # -- receipts --------------------------------------------------------------------------

    def new_receipt(
        self, box: str, file_name: str, size_bytes: int, *, usable_name: bool = True
    ) -> Receipt:
        """Number a file about to be claimed (committed at once: the number is its order).

        The receipt's lock is taken in the same transaction, so no other run ever sees the
        receipt before its file is claimed; the caller releases it with `unlock`."""
        with self.transaction() as cursor:
            cursor.execute(
                sql.SQL(
                    "INSERT INTO receipt (box, file_name, usable_name, size_bytes)"
                    " VALUES (%s, %s, %s, %s) RETURNING {}"
                ).format(_RECEIPT_COLUMNS),
                (box, file_name, usable_name, size_bytes),
            )
            receipt = Receipt(*_one(cursor))
            cursor.execute(
                "SELECT pg_advisory_lock(hashtextextended(%s, 0))", (receipt_key(receipt.id),)
            )
            return receipt

    def unlock(self, key: str) -> None:
        with self.transaction() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))

    def drop_receipt(self, receipt_id: int) -> None:
        """Forget a claim that did not happen (the file was gone, or the claim was cut short)."""
        with self.transaction() as cursor:
            cursor.execute(
                "DELETE FROM receipt r WHERE id = %s"
                " AND NOT EXISTS (SELECT FROM edi_file f WHERE f.receipt_id = r.id)",
                (receipt_id,),
            )

    def pending_receipts(self, box: str | None = None) -> list[Receipt]:
        """Claimed files not judged yet (of one box, when given), in order of receipt."""
        with self.transaction() as cursor:
            cursor.execute(
                sql.SQL(
                    "SELECT {} FROM receipt r WHERE (%s IS NULL OR box = %s) AND NOT EXISTS"
                    " (SELECT FROM edi_file f WHERE f.receipt_id = r.id) ORDER BY id"
                ).format(_RECEIPT_COLUMNS),
                (box, box),
            )
            return [Receipt(*row) for row in cursor.fetchall()]

    # -- reading ---------------------------------------------------------------------------

    def judgement_of(self, sha256: str) -> FileRow | None:
        """The file whose content was judged (accepted, or rejected for its bytes), if any."""
        found = self._files(
            "WHERE sha256 = %s AND status <> 'duplicate' AND NOT rejected_for_context", (sha256,)
        )
        return found[0] if found else None

    def file_of_receipt(self, receipt_id: int) -> FileRow | None:
        found = self._files("WHERE receipt_id = %s", (receipt_id,))
        return found[0] if found else None

    def unfinished_files(self) -> list[FileRow]:
        return self._files("WHERE finished_at IS NULL ORDER BY id", ())

    def _files(self, where: str, parameters: tuple) -> list[FileRow]:
        with self.transaction() as cursor:
            query = sql.SQL("SELECT {} FROM edi_file ").format(_FILE_COLUMNS) + sql.SQL(where)
            cursor.execute(query, parameters)
            names = [column.name for column in cursor.description or ()]
            return [FileRow(**dict(zip(names, row, strict=True))) for row in cursor.fetchall()]

    def roster(self, affiliate: int, period: str) -> Roster | None:
        """The latest accepted préétabli of an affiliate for a period, if any; its lines are
        read back once per connection (préétablis are never changed once stored)."""
        with self.transaction() as cursor:
            cursor.execute(
                "SELECT p.id, p.transfer_id FROM preetabli p"
                " JOIN edi_file f ON f.id = p.edi_file_id"
                " WHERE p.affiliate = %s AND p.period = %s AND f.status = 'accepted'"
                " ORDER BY p.id DESC LIMIT 1",
                (affiliate, period),
            )
            found = cursor.fetchone()
            if found is None:
                return None
            preetabli_id, transfer_id = found
            employees = self._rosters.get(preetabli_id)
            if employees is None:
                employees = self._roster_lines(cursor, preetabli_id)
        self._remember(preetabli_id, employees)
        return Roster(affiliate, period, transfer_id, employees)

    def _roster_lines(self, cursor: Cursor, preetabli_id: int) -> dict[str, np.ndarray]:
        """A préétabli's lines in file order, by binary COPY out read as one numpy array (no
        Python object per row). Sorted here, not by the server: its sort took half the time,
        and the lines of one préétabli usually come in order already."""
        buffer = io.BytesIO()
        cursor.copy_expert(
            sql.SQL(
                "COPY (SELECT line_no, insured_number, children, af_to_pay, af_to_deduct, af_net"
                " FROM preetabli_line WHERE preetabli_id = {}) TO STDOUT WITH (FORMAT binary)"
            ).format(sql.Literal(int(preetabli_id))),
            buffer,
        )
        widths = {"line_no": 4, "insured_number": 8, "children": 2}
        widths |= {"af_to_pay": 8, "af_to_deduct": 8, "af_net": 8}
        columns = list(pgcopy.decode_integers(buffer.getvalue(), widths).values())
        line_no = columns.pop(0)
        if (line_no[1:] < line_no[:-1]).any():
            order = np.argsort(line_no, kind="stable")
            columns = [column[order] for column in columns]
        return dict(zip(ROSTER_COLUMNS, columns, strict=True))

    def _remember(self, preetabli_id: int, employees: dict[str, np.ndarray]) -> None:
        """Keep a préétabli's lines for the next declaration of the same employer and period
        (a correction, or a préétabli loaded in this run), the latest ROSTER_LINES_KEPT lines."""
        self._rosters.pop(preetabli_id, None)
        self._rosters[preetabli_id] = employees
        kept = sum(len(lines["N_Num_Assure"]) for lines in self._rosters.values())
        while kept > ROSTER_LINES_KEPT:
            oldest = self._rosters.pop(next(iter(self._rosters)))
            kept -= len(oldest["N_Num_Assure"])

    # -- writing (inside a transaction) ----------------------------------------------------

    def insert_file(self, cursor: Cursor, **values: object) -> int:
        """A received file's row, columns by name; the acknowledgement is set later with
        set_destinations."""
        for column in ("acknowledgement_xml", "acknowledgement_path", "archive_path"):
            values.setdefault(column, "")
        cursor.execute(
            sql.SQL("INSERT INTO edi_file ({}) VALUES ({}) RETURNING id").format(
                sql.SQL(", ").join(map(sql.Identifier, values)),
                sql.SQL(", ").join(sql.Placeholder() * len(values)),
            ),
            tuple(values.values()),
        )
        return _one(cursor)[0]

    def set_destinations(
        self,
        cursor: Cursor,
        file_id: int,
        *,
        acknowledgement: str,
        archive: str,
        xml: bytes,
    ) -> None:
        """Where the acknowledgement and the input go once committed, and the XML itself."""
        cursor.execute(
            "UPDATE edi_file SET acknowledgement_path = %s, archive_path = %s,"
            " acknowledgement_xml = %s WHERE id = %s",
            (acknowledgement, archive, xml.decode("utf-8"), file_id),
        )

    def insert_anomalies(self, cursor: Cursor, file_id: int, anomalies: Sequence[Anomaly]) -> None:
        psycopg2.extras.execute_values(
            cursor,
            "INSERT INTO anomaly (edi_file_id, seq, code, severity, line, record, field, value,"
            " message) VALUES %s",
            [
                (file_id, seq, a.code, a.severity, a.line, a.record, a.field, a.value, a.message)
                for seq, a in enumerate(anomalies, start=1)
            ],
        )

    def insert_declaration(
        self,
        cursor: Cursor,
        *,
        file_id: int,
        receipt_id: int | None = None,
        affiliate: int,
        period: str,
        employees: int,
        entrants: int,
        lines: pa.Table,
        summary: ContributionSummary,
    ) -> tuple[int, int]:
        """A new version of an affiliate's declaration for a period; returns (id, version).

        The advisory lock serialises two corrections of the same declaration arriving at
        once. The current version is the one received last (`receipt_id`, the claim order),
        whatever the order in which they are committed; the others are superseded, never
        deleted. Operator loads (no receipt) count as received now.
        """
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", (affiliate, int(period)))
        cursor.execute("SELECT nextval(pg_get_serial_sequence('declaration', 'id'))")
        declaration_id = _one(cursor)[0]
        cursor.execute(
            "SELECT id, receipt_id FROM declaration"
            " WHERE affiliate = %s AND period = %s AND superseded_by IS NULL",
            (affiliate, period),
        )
        current = cursor.fetchone()
        superseded_by = None
        if current is not None:
            current_id, current_receipt = current
            if receipt_id is not None and (current_receipt or 0) > receipt_id:
                superseded_by = current_id  # received before the current one: history
            else:
                cursor.execute(
                    "UPDATE declaration SET superseded_by = %s WHERE id = %s",
                    (declaration_id, current_id),
                )
        cursor.execute(
            "SELECT coalesce(max(version), 0) + 1 FROM declaration"
            " WHERE affiliate = %s AND period = %s",
            (affiliate, period),
        )
        version = _one(cursor)[0]
        cursor.execute(
            "INSERT INTO declaration (id, edi_file_id, receipt_id, superseded_by, affiliate,"
            " period, version, employees, entrants, total_gross, total_capped, employer_due,"
            " employee_due, total_due)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                declaration_id,
                file_id,
                receipt_id,
                superseded_by,
                affiliate,
                period,
                version,
                employees,
                entrants,
                pc.sum(lines["gross_salary"]).as_py() or 0,
                pc.sum(lines["capped_salary"]).as_py() or 0,
                summary.employer,
                summary.employee,
                summary.due,
            ),
        )
        self.copy(
            cursor,
            "declaration_line",
            lines.append_column(
                "declaration_id", pa.array(np.full(lines.num_rows, declaration_id, np.int64))
            ),
        )
        psycopg2.extras.execute_values(
            cursor,
            "INSERT INTO contribution (declaration_id, branch, base, employer, employee) VALUES %s",
            [
                (declaration_id, branch, a.base, a.employer, a.employee)
                for branch, a in summary.branches.items()
            ],
        )
        return declaration_id, version

    def insert_preetabli(
        self, cursor: Cursor, *, file_id: int, roster: Roster, lines: pa.Table
    ) -> int:
        cursor.execute(
            "INSERT INTO preetabli (edi_file_id, affiliate, period, transfer_id, employees)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (file_id, roster.affiliate, roster.period, roster.transfer_id, lines.num_rows),
        )
        preetabli_id = _one(cursor)[0]
        # An accepted préétabli's roster is its lines (all readable). Looked up only by an id
        # read from a committed row: if this transaction rolls back, the entry is never used.
        self._remember(preetabli_id, roster.employees)
        self.copy(
            cursor,
            "preetabli_line",
            lines.append_column(
                "preetabli_id", pa.array(np.full(lines.num_rows, preetabli_id, np.int64))
            ),
        )
        return preetabli_id

    def mark_finished(self, file_id: int) -> None:
        with self.transaction() as cursor:
            cursor.execute(
                "UPDATE edi_file SET finished_at = now() WHERE id = %s AND finished_at IS NULL",
                (file_id,),
            )

    @staticmethod
    def copy(cursor: Cursor, table: str, rows: pa.Table) -> None:
        """COPY an Arrow table into `table`, columns matched by name: a line table of at least
        BINARY_COPY_ROWS rows in binary format, encoded a slice at a time as COPY reads it
        (cnss_edi.pgcopy); anything else as CSV from Arrow's writer."""
        stream: pgcopy.Rows | io.BytesIO
        if table in BINARY_TABLES and rows.num_rows >= BINARY_COPY_ROWS:
            stream = pgcopy.Rows(rows, NARROW_INTEGERS)
            columns, data_format = stream.order, sql.SQL("binary")
        else:
            stream = io.BytesIO()
            pacsv.write_csv(rows, stream, pacsv.WriteOptions(include_header=False))
            stream.seek(0)
            columns, data_format = rows.column_names, sql.SQL("csv")
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT {})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)), data_format
        )
        cursor.copy_expert(statement, stream, size=1 << 20)
