"""cnss_edi.payments against a real PostgreSQL: all or nothing, at most once."""

from __future__ import annotations

import datetime as dt

from cnss_edi.payments import import_payments
from cnss_edi.store import Store
from tests.db import query

TODAY = dt.date(2026, 12, 2)
HEADER = "affiliate,period,amount_centimes,paid_on,reference\n"
ROWS = (
    "1234567,202510,1250000,2025-11-07,VIR-1\n"
    "1234567,202510,250000,2025-12-15,VIR-2\n"
    "7654321,202510,99,2025-11-10,VIR-3\n"
)


def load(store: Store, text: str):
    return import_payments(store, text.encode(), file_name="paiements.csv", today=TODAY)


def table(store: Store) -> list[tuple]:
    return query(
        store,
        "SELECT reference, affiliate, period, amount, paid_on, line_no FROM payment"
        " ORDER BY reference",
    )


def test_a_file_is_loaded_with_its_lines(store: Store) -> None:
    done = load(store, HEADER + ROWS)
    assert (done.status, done.rows, done.new_rows) == ("imported", 3, 3)
    assert table(store) == [
        ("VIR-1", 1234567, "202510", 1250000, dt.date(2025, 11, 7), 2),
        ("VIR-2", 1234567, "202510", 250000, dt.date(2025, 12, 15), 3),
        ("VIR-3", 7654321, "202510", 99, dt.date(2025, 11, 10), 4),
    ]
    assert query(store, "SELECT file_name, rows, new_rows FROM payment_file") == [
        ("paiements.csv", 3, 3)
    ]


def test_the_same_file_twice_changes_nothing(store: Store) -> None:
    first = load(store, HEADER + ROWS)
    before = table(store)
    again = load(store, HEADER + ROWS)
    assert again.status == "already_imported"
    assert (again.file_id, again.rows, again.new_rows) == (first.file_id, 3, 3)
    assert table(store) == before
    assert query(store, "SELECT count(*) FROM payment_file") == [(1,)]


def test_a_malformed_row_loads_nothing_of_the_file(store: Store) -> None:
    done = load(store, HEADER + ROWS + "1234567,202510,12.50,2025-11-07,VIR-4\n")
    assert done.status == "rejected"
    assert [(e.line, e.field, e.rule) for e in done.errors] == [
        (5, "amount_centimes", "PAIEMENT_MONTANT")
    ]
    assert table(store) == []
    assert query(store, "SELECT count(*) FROM payment_file") == [(0,)]


def test_a_cumulative_export_adds_only_the_new_payments(store: Store) -> None:
    load(store, HEADER + ROWS)
    done = load(store, HEADER + ROWS + "7654321,202511,500,2025-12-09,VIR-4\n")
    assert (done.status, done.rows, done.new_rows) == ("imported", 4, 1)
    rows = table(store)
    assert [r[0] for r in rows] == ["VIR-1", "VIR-2", "VIR-3", "VIR-4"]
    assert rows[0][-1] == 2  # VIR-1 keeps the line of the file it came from first


def test_a_known_reference_with_other_values_refuses_the_file(store: Store) -> None:
    first = load(store, HEADER + ROWS)
    changed = ROWS.replace("250000,2025-12-15", "250001,2025-12-15")
    done = load(store, HEADER + "7654321,202511,500,2025-12-09,VIR-4\n" + changed)
    assert done.status == "rejected"
    assert [(e.line, e.field, e.rule) for e in done.errors] == [
        (4, "reference", "PAIEMENT_REFERENCE_CONNUE")
    ]
    assert f"n° {first.file_id}" in done.errors[0].message
    assert [r[0] for r in table(store)] == ["VIR-1", "VIR-2", "VIR-3"]  # VIR-4 not loaded
    assert query(store, "SELECT count(*) FROM payment_file") == [(1,)]
