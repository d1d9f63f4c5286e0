"""cnss_edi.store against a real PostgreSQL: receipts, locks, and versions in receipt order."""

from __future__ import annotations

import datetime as dt

from cnss_edi.pricing import price
from cnss_edi.sample import write_samples
from cnss_edi.store import Store, receipt_key
from tests.db import query
from transforms.parse import parse
from validators.declaration import validate


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
