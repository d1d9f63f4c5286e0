"""PostgreSQL store: everything about one received file is written in one transaction.

Bulk rows go in with COPY from an Arrow-written CSV buffer (the C++ writer is several times
faster than pandas.to_csv). The caller drives the transaction with `with store.transaction():`
so that a crash at any moment leaves either all of a file or nothing of it.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg2
import psycopg2.extras
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from schemas import ddl
from transforms.contributions import ContributionSummary
from validators.anomaly import Anomaly
from validators.preetabli import AF_FIELDS, Roster

SCHEMA_LOCK = 7_340_001  # advisory lock id: one schema migration at a time


@dataclass(frozen=True)
class FileRow:
    """What the store remembers of one received file."""

    id: int
    file_name: str
    sha256: str
    status: str
    kind: str
    received_at: dt.datetime
    source_path: str
    archive_path: str
    acknowledgement_path: str
    acknowledgement_xml: str
    finished: bool
    affiliate: int | None
    period: str | None
    anomaly_count: int


_FILE_COLUMNS = (
    "id, file_name, sha256, status, kind, received_at, source_path, archive_path, "
    "acknowledgement_path, acknowledgement_xml, finished_at IS NOT NULL, affiliate, period, "
    "anomaly_count"
)


class Store:
    """The project's database, through one psycopg2 connection."""

    def __init__(self, connection: psycopg2.extensions.connection, dsn: str = "") -> None:
        self.connection = connection
        self.dsn = dsn

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
    def transaction(self) -> Iterator[psycopg2.extensions.cursor]:
        """Commit on success, roll back on any exception (then re-raise)."""
        with self.connection, self.connection.cursor() as cursor:
            yield cursor

    @contextmanager
    def path_lock(self, path: str) -> Iterator[bool]:
        """Hold a session advisory lock on a file path; yields False if another worker holds
        it. A crashed worker's session ends, and its locks with it."""
        with self.transaction() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (path,))
            acquired = cursor.fetchone()[0]
        try:
            yield acquired
        finally:
            if acquired:
                with self.transaction() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (path,))

    # -- reading ---------------------------------------------------------------------------

    def files_with_sha(self, sha256: str) -> list[FileRow]:
        return self._files("WHERE sha256 = %s ORDER BY id", (sha256,))

    def unfinished_files(self) -> list[FileRow]:
        return self._files("WHERE finished_at IS NULL ORDER BY id", ())

    def _files(self, where: str, parameters: tuple) -> list[FileRow]:
        with self.transaction() as cursor:
            cursor.execute(f"SELECT {_FILE_COLUMNS} FROM edi_file {where}", parameters)
            return [FileRow(*row) for row in cursor.fetchall()]

    def roster(self, affiliate: int, period: str) -> Roster | None:
        """The latest accepted préétabli of an affiliate for a period, if any."""
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
            buffer = io.BytesIO()
            cursor.copy_expert(  # COPY out and Arrow's CSV reader: no Python object per row
                "COPY (SELECT insured_number, children, af_to_pay, af_to_deduct, af_net"
                f" FROM preetabli_line WHERE preetabli_id = {int(found[0])} ORDER BY line_no)"
                " TO STDOUT WITH (FORMAT csv)",
                buffer,
            )
        buffer.seek(0)
        columns = ["N_Num_Assure", "N_Enfants", *AF_FIELDS]
        table = pacsv.read_csv(
            buffer,
            read_options=pacsv.ReadOptions(column_names=columns),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.int64())),
        )
        employees = table.to_pandas()
        return Roster(affiliate, period, found[1], employees)

    # -- writing (inside a transaction) ----------------------------------------------------

    def insert_file(self, cursor: psycopg2.extensions.cursor, **values: object) -> int:
        """A received file's row; the acknowledgement is set later with set_acknowledgement."""
        for column in ("acknowledgement_xml", "acknowledgement_path", "archive_path"):
            values.setdefault(column, "")
        columns = ", ".join(values)
        cursor.execute(
            f"INSERT INTO edi_file ({columns}) VALUES ({', '.join(['%s'] * len(values))})"
            " RETURNING id",
            tuple(values.values()),
        )
        return cursor.fetchone()[0]

    def set_destinations(
        self,
        cursor: psycopg2.extensions.cursor,
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

    def insert_anomalies(
        self, cursor: psycopg2.extensions.cursor, file_id: int, anomalies: Sequence[Anomaly]
    ) -> None:
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
        cursor: psycopg2.extensions.cursor,
        *,
        file_id: int,
        affiliate: int,
        period: str,
        employees: int,
        entrants: int,
        lines: pa.Table,
        summary: ContributionSummary,
    ) -> tuple[int, int]:
        """A new version of an affiliate's declaration for a period; returns (id, version).

        The advisory lock serialises two corrections of the same declaration arriving at
        once; the earlier current version is marked superseded, never deleted.
        """
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", (affiliate, int(period)))
        cursor.execute("SELECT nextval(pg_get_serial_sequence('declaration', 'id'))")
        declaration_id = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE declaration SET superseded_by = %s"
            " WHERE affiliate = %s AND period = %s AND superseded_by IS NULL",
            (declaration_id, affiliate, period),
        )
        cursor.execute(
            "SELECT coalesce(max(version), 0) + 1 FROM declaration"
            " WHERE affiliate = %s AND period = %s",
            (affiliate, period),
        )
        version = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO declaration (id, edi_file_id, affiliate, period, version, employees,"
            " entrants, total_gross, total_capped, employer_due, employee_due, total_due)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                declaration_id,
                file_id,
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
                "declaration_id", pa.array([declaration_id] * lines.num_rows, pa.int64())
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
        self, cursor: psycopg2.extensions.cursor, *, file_id: int, roster: Roster, lines: pa.Table
    ) -> int:
        cursor.execute(
            "INSERT INTO preetabli (edi_file_id, affiliate, period, transfer_id, employees)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (file_id, roster.affiliate, roster.period, roster.transfer_id, lines.num_rows),
        )
        preetabli_id = cursor.fetchone()[0]
        self.copy(
            cursor,
            "preetabli_line",
            lines.append_column(
                "preetabli_id", pa.array([preetabli_id] * lines.num_rows, pa.int64())
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
    def copy(cursor: psycopg2.extensions.cursor, table: str, rows: pa.Table) -> None:
        """COPY an Arrow table into `table`, columns matched by name."""
        buffer = io.BytesIO()
        pacsv.write_csv(rows, buffer, pacsv.WriteOptions(include_header=False))
        buffer.seek(0)
        columns = ", ".join(rows.column_names)
        cursor.copy_expert(
            f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer, size=1 << 20
        )
