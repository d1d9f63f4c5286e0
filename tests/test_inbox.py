"""process_inbox as a batch: which files count, and several workers on one inbox."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cnss_edi.inbox import process_inbox
from cnss_edi.sample import write_samples
from cnss_edi.store import Store
from tests.db import acknowledgements, query


def test_two_workers_on_one_inbox_process_each_file_once(pg_conn_dsn, places):
    write_samples(places.inbox, affiliate=1234567, period="202610", employees=300, employers=3)
    stores = [Store.open(pg_conn_dsn) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda s: process_inbox(places, store=s), stores))

    names = sorted(o.file_name for run in runs for o in run)
    assert len(names) == 6
    assert all(o.status == "accepted" for run in runs for o in run)
    rows = query(stores[0], "SELECT status, count(*) FROM edi_file GROUP BY status")
    assert rows == [("accepted", 6)]
    assert len(acknowledgements(places.outbox)) == 6
    assert query(stores[0], "SELECT count(*) FROM declaration") == [(3,)]
    for store in stores:
        store.close()


def test_folder_named_like_a_file_is_ignored(store, places):
    write_samples(places.inbox, affiliate=1234567, period="202610", employees=5)
    (places.inbox / "folder.txt").mkdir()  # a name that looks like a file but cannot be read
    unreadable: list[Path] = []

    outcomes = process_inbox(places, store=store, unreadable=unreadable)

    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert unreadable == []  # not a file: never a candidate


def test_any_complete_file_gets_an_answer_but_uploads_in_progress_wait(store, places):
    write_samples(places.inbox, affiliate=1234567, period="202610", employees=5)
    (places.inbox / "DS_1234567_202610.txt").rename(places.inbox / "declaration-octobre.dat")
    (places.inbox / "DS_1234567_202611.txt.filepart").write_bytes(b"B00 half uploaded")
    (places.inbox / ".DS_1234567_202611.txt").write_bytes(b"B00 hidden")

    outcomes = process_inbox(places, store=store)

    assert sorted((o.file_name, o.status) for o in outcomes) == [
        ("AFFEBDS_1234567_202610.txt", "accepted"),
        ("declaration-octobre.dat", "accepted"),
    ]
    assert sorted(p.name for p in places.inbox.iterdir()) == [
        ".DS_1234567_202611.txt",
        "DS_1234567_202611.txt.filepart",
    ]
