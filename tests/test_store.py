"""cnss_edi.store against a real PostgreSQL: receipts, locks, and versions in receipt order."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest

from cnss_edi import pgcopy
from cnss_edi.pricing import price
from cnss_edi.process import load_preetabli
from cnss_edi.sample import write_samples
from cnss_edi.store import Store, receipt_key
from tests.db import query
from transforms.parse import parse
from validators.declaration import validate
from validators.preetabli import Roster


def _store_declaration(store: Store, tmp_path, receipt_id: int, sha: str) -> int:
    (_, path) = write_samples(tmp_path, affiliate=1234567, period="202610", employees=3)
    parsed = parse(path.read_bytes())
    validation = validate(parsed)
    lines, summary = price(parsed, validation.period)
    with store.transaction() as cursor:
        file_id = store.insert_file(
            cursor,
            receipt_id=receipt_id,
            file_name=path.name,
            sha256=sha,
            size_bytes=1,
            kind="declaration",
            status="accepted",
            received_at=dt.datetime.now(dt.UTC),
            source_path=path.name,
        )
        _, version = store.insert_declaration(
            cursor,
            file_id=file_id,
            receipt_id=receipt_id,
            affiliate=validation.affiliate,
            period=validation.period,
            employees=validation.employees,
            entrants=validation.entrants,
            lines=lines,
            summary=summary,
        )
    return version


def test_a_later_receipt_stays_current_when_an_earlier_one_commits_after_it(store, tmp_path):
    first, second = (store.new_receipt("1234567/in", f"v{n}.txt", 1) for n in (1, 2))
    _store_declaration(store, tmp_path, second.id, "b" * 64)
    _store_declaration(store, tmp_path, first.id, "a" * 64)  # committed last, received first

    rows = query(
        store,
        "SELECT receipt_id, superseded_by IS NULL FROM declaration ORDER BY receipt_id",
    )
    assert rows == [(first.id, False), (second.id, True)]


def test_a_new_receipt_is_locked_until_released(store, pg_conn_dsn):
    receipt = store.new_receipt("1234567/in", "DS.txt", 10)
    other = Store.open(pg_conn_dsn)
    try:
        with other.lock(receipt_key(receipt.id)) as mine:
            assert not mine  # no other run may judge it before its claim ends
        store.unlock(receipt_key(receipt.id))
        with other.lock(receipt_key(receipt.id)) as mine:
            assert mine
    finally:
        other.close()
    assert [r.id for r in store.pending_receipts()] == [receipt.id]
    store.drop_receipt(receipt.id)
    assert store.pending_receipts() == []


def test_a_preetabli_reads_back_as_parsed_and_once_per_connection(store, pg_conn_dsn, tmp_path):
    (preetabli, _) = write_samples(tmp_path, affiliate=1234567, period="202610", employees=40)
    raw = preetabli.read_bytes()
    load_preetabli(preetabli, raw, store=store)
    # The first employee written again, at the end of the table: read back in table order,
    # it would come last.
    query(
        store,
        "WITH gone AS (DELETE FROM preetabli_line WHERE line_no = 3 RETURNING *)"
        " INSERT INTO preetabli_line SELECT * FROM gone RETURNING 1",
    )
    expected = Roster.from_parsed(parse(raw))
    fresh = Store.open(pg_conn_dsn)  # nothing in memory: read back with binary COPY
    try:
        for roster in (fresh.roster(1234567, "202610"), store.roster(1234567, "202610")):
            assert roster is not None
            assert (roster.affiliate, roster.period, roster.transfer_id) == (
                expected.affiliate,
                expected.period,
                expected.transfer_id,
            )
            for name, column in expected.employees.items():
                assert roster.employees[name].tolist() == column.tolist(), name
        with mock.patch.object(Store, "_roster_lines") as read_back:
            assert fresh.roster(1234567, "202610") is not None
            assert store.roster(1234567, "202610") is not None
        read_back.assert_not_called()  # loaded by `store`, read once by `fresh`
        assert fresh.roster(7654321, "202610") is None
    finally:
        fresh.close()


def test_binary_copy_out_with_a_null_is_refused():
    stream = pgcopy.HEADER + b"\x00\x01" + b"\xff\xff\xff\xff" + pgcopy.TRAILER
    with pytest.raises(ValueError, match="NULL"):
        pgcopy.decode_integers(stream, {"a": 8})
