"""`make bench`, the load phase: the store's real transaction against a bare COPY of the same
rows into the same cluster (see cnss_edi.bench)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

LOAD_ROUNDS = 3


def _declarations(folder: Path) -> list[Path]:
    return sorted(folder.glob("DS_*.txt"))


def _priced(folder: Path) -> list[tuple]:
    """(path, validation, lines table, summary) of every declaration of `folder`."""
    from cnss_edi.pricing import price
    from transforms.parse import parse
    from validators.declaration import validate

    priced = []
    for path in _declarations(folder):
        parsed = parse(path.read_bytes())
        validation = validate(parsed)
        assert validation.period is not None
        priced.append((path, validation, *price(parsed, validation.period)))
    return priced


def _on_connections(workers: int, items: int, load: Callable[[int, int], int]) -> float:
    """Seconds to run load(item, worker) for every item, worker w taking items w, w +
    workers, …, each worker on its own thread (and connection)."""
    from concurrent.futures import ThreadPoolExecutor

    def share(worker: int) -> int:
        return sum(load(item, worker) for item in range(worker, items, workers))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(share, range(workers)))
    return time.perf_counter() - started


def _store_load(priced: list[tuple], dsn: str, workers: int) -> float:
    """Seconds for the store's real load transaction of every priced declaration, with
    `workers` connections at once as `cnss-edi process` runs them."""
    from cnss_edi.store import Store

    stores = [Store.open(dsn) for _ in range(workers)]

    def load(number: int, worker: int) -> int:
        path, validation, table, summary = priced[number]
        store = stores[worker]
        with store.transaction() as cursor:
            file_id = store.insert_file(
                cursor,
                file_name=path.name,
                sha256=f"{number:064x}",
                size_bytes=0,
                kind="declaration",
                status="accepted",
                received_at="2026-11-10T00:00:00Z",
                source_path=str(path),
            )
            store.insert_declaration(
                cursor,
                file_id=file_id,
                affiliate=validation.affiliate or 0,
                period=validation.period or "",
                employees=validation.employees,
                entrants=validation.entrants,
                lines=table,
                summary=summary,
            )
        return table.num_rows

    seconds = _on_connections(workers, len(priced), load)
    for store in stores:
        store.close()
    return seconds


def _encoded(priced: list[tuple], data_format: str) -> list[tuple[str, bytes]]:
    """(COPY statement, data) per declaration: the rows the store loads, encoded beforehand
    in binary (as the store sends them) or CSV."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from cnss_edi import pgcopy
    from cnss_edi.store import NARROW_INTEGERS

    encoded = []
    for number, (_, _, table, _) in enumerate(priced):
        rows = table.append_column("declaration_id", pa.array(np.full(table.num_rows, number)))
        if data_format == "binary":
            stream = pgcopy.Rows(rows, NARROW_INTEGERS)
            columns, data = stream.order, b"".join(iter(stream.read, b""))
        else:
            buffer = io.BytesIO()
            pacsv.write_csv(rows, buffer, pacsv.WriteOptions(include_header=False))
            columns, data = rows.column_names, buffer.getvalue()
        names = ", ".join(columns)
        encoded.append((f"COPY declaration_line ({names}) FROM STDIN (FORMAT {data_format})", data))
    return encoded


def _bare_copy(encoded: list[tuple[str, bytes]], dsn: str, workers: int) -> float:
    """Seconds to COPY the encoded rows into the same table, one transaction per declaration
    and nothing else: the reference for the store's load."""
    import io

    import psycopg2

    from cnss_edi.store import Store

    Store.open(dsn).close()  # the tables
    connections = [psycopg2.connect(dsn) for _ in range(workers)]

    def load(number: int, worker: int) -> int:
        statement, data = encoded[number]
        with connections[worker] as connection, connection.cursor() as cursor:
            cursor.copy_expert(statement, io.BytesIO(data), size=1 << 20)
        return 1

    seconds = _on_connections(workers, len(encoded), load)
    for connection in connections:
        connection.close()
    return seconds


def phase_load(folder: Path, server_url: str) -> dict:
    """The store's load on one and two connections, and the bare COPY of the same rows on two
    (binary, as the store sends them, and CSV), interleaved over LOAD_ROUNDS rounds, each
    into a fresh database of the same cluster (this machine's speed drifts: the medians)."""
    from psycopg2.extensions import make_dsn

    priced = _priced(folder)
    encoded = {data_format: _encoded(priced, data_format) for data_format in ("binary", "csv")}
    rows = sum(table.num_rows for _, _, table, _ in priced)
    runs: dict[str, Callable[[str], float]] = {
        "store_1": lambda dsn: _store_load(priced, dsn, 1),
        "store_2": lambda dsn: _store_load(priced, dsn, 2),
        "bare_binary_2": lambda dsn: _bare_copy(encoded["binary"], dsn, 2),
        "bare_csv_2": lambda dsn: _bare_copy(encoded["csv"], dsn, 2),
    }
    rates: dict[str, list[int]] = {name: [] for name in runs}
    for _ in range(LOAD_ROUNDS):
        for name, run in runs.items():
            cli_sql(server_url, "DROP DATABASE IF EXISTS bench_load")
            cli_sql(server_url, "CREATE DATABASE bench_load")
            cli_sql(server_url, "CHECKPOINT")  # no checkpoint of the previous run inside this one
            rates[name].append(round(rows / run(make_dsn(server_url, dbname="bench_load"))))
    return {
        "rows": rows,
        **{name: sorted(passes)[len(passes) // 2] for name, passes in rates.items()},
        "passes_rows_per_s": rates,
    }


def cli_sql(dsn: str, statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(statement)
    connection.close()
