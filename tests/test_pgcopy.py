"""cnss_edi.pgcopy against a real PostgreSQL: what binary COPY stores is what the table held."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnss_edi import pgcopy
from cnss_edi.pricing import price
from cnss_edi.sample import write_samples
from cnss_edi.store import NARROW_INTEGERS, Store
from tests.db import query
from transforms.parse import parse

SQL_TYPES = {2: "smallint", 4: "integer", 8: "bigint"}
COLUMNS = {"a": 8, "b": 2, "c": 4, "d": 8}  # integer columns and their widths
TEXTS = ("t", "u")


def _load(store: Store, table: pa.Table) -> list[tuple]:
    with store.transaction() as cursor:
        columns = [f"{name} {SQL_TYPES[width]}" for name, width in COLUMNS.items()]
        columns += [f"{name} text" for name in TEXTS]
        cursor.execute(
            f"CREATE TEMPORARY TABLE t_copy (n bigint, {', '.join(columns)}) ON COMMIT DROP"
        )
        Store.copy(cursor, "t_copy", table)
        cursor.execute(f"SELECT {', '.join(table.column_names)} FROM t_copy ORDER BY n")
        return cursor.fetchall()


integers = {
    name: st.one_of(st.none(), st.integers(-(2 ** (8 * w - 1)), 2 ** (8 * w - 1) - 1))
    for name, w in COLUMNS.items()
}
texts = st.one_of(st.none(), st.text(st.characters(codec="utf-8", exclude_characters="\0")))
rows = st.lists(st.fixed_dictionaries({**integers, **dict.fromkeys(TEXTS, texts)}), max_size=12)


# The store is one database for every example: each example's table is its transaction's own.
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows)
def test_rows_come_back_as_sent(store, data):
    # NULLs anywhere, the extremes of each width, texts of any UTF-8; slices of 5 rows.
    table = pa.table(
        {
            "n": pa.array(range(len(data)), pa.int64()),
            **{name: pa.array([r[name] for r in data], pa.int64()) for name in COLUMNS},
            # Columns in another order than the table's: COPY names them.
            **{name: pa.array([r[name] for r in data], pa.string()) for name in reversed(TEXTS)},
        }
    )
    with (
        mock.patch("cnss_edi.pgcopy.SLICE_ROWS", 5),
        mock.patch("cnss_edi.store.BINARY_COPY_ROWS", 0),
        mock.patch("cnss_edi.store.BINARY_TABLES", {"t_copy"}),
        mock.patch.dict(NARROW_INTEGERS, COLUMNS),
    ):
        got = _load(store, table)
    assert got == [tuple(row.values()) for row in table.to_pylist()]


def test_a_value_too_wide_for_its_column_is_refused_not_wrapped():
    table = pa.table({"b": pa.array([1, 2**15], pa.int64())})
    with pytest.raises(OverflowError, match="column b"):
        b"".join(iter(pgcopy.Rows(table, {"b": 2}).read, b""))


def test_only_integers_and_strings_are_written():
    with pytest.raises(pgcopy.UnsupportedColumn):
        pgcopy.Rows(pa.table({"x": pa.array([1.5])}), {})


def test_narrow_integers_are_the_ddl_widths(store):
    widths = query(
        store,
        "SELECT DISTINCT column_name, data_type FROM information_schema.columns"
        " WHERE table_name IN ('declaration_line', 'preetabli_line')"
        " AND data_type IN ('smallint', 'integer')",
    )
    assert {name: {"smallint": 2, "integer": 4}[kind] for name, kind in widths} == NARROW_INTEGERS


@pytest.mark.parametrize("binary_from", [0, 10**9])
def test_a_declaration_stores_the_same_rows_in_either_format(store, tmp_path, binary_from):
    (_, path) = write_samples(tmp_path, affiliate=1234567, period="202610", employees=30)
    parsed = parse(path.read_bytes())
    lines, _ = price(parsed, "202610")
    lines = lines.append_column("declaration_id", pa.array([7] * lines.num_rows, pa.int64()))
    with mock.patch("cnss_edi.store.BINARY_COPY_ROWS", binary_from), store.transaction() as cur:
        Store.copy(cur, "declaration_line", lines)
    got = query(store, f"SELECT {', '.join(lines.column_names)} FROM declaration_line")
    assert sorted(got) == sorted(tuple(row.values()) for row in lines.to_pylist())


def test_other_tables_go_as_csv_whatever_their_size(store):
    # A table the encoder knows nothing of (a date, a float): binary COPY would refuse it.
    table = pa.table({"d": pa.array([dt.date(2026, 12, 2)] * 3), "x": pa.array([1.5] * 3)})
    with mock.patch("cnss_edi.store.BINARY_COPY_ROWS", 0), store.transaction() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE t_other (d date, x float8) ON COMMIT DROP")
        Store.copy(cursor, "t_other", table)
        cursor.execute("SELECT count(*) FROM t_other")
        assert cursor.fetchone() == (3,)
