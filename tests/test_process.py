"""process_file / process_inbox against a real PostgreSQL: loads, duplicates, corrections,
rejections, drop-box accounts, and crashes at the dangerous moments."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from pathlib import Path

import psycopg2
import pytest
from lxml import etree

from cnss_edi import process as process_module
from cnss_edi.acknowledgement import MOROCCO
from cnss_edi.inbox import process_inbox
from cnss_edi.sample import write_samples
from cnss_edi.store import Store
from schemas import acknowledgement_xsd_path, field
from tests.boxes import box, deliver
from tests.db import NS, ack_of, acknowledgements, query


def outcomes_of(places, store, **options):
    return process_inbox(places, store=store, **options).outcomes


def test_batch_is_loaded_once_with_one_valid_acknowledgement_per_file(store, places):
    dropped = deliver(places, store, employees=40, employers=2)
    outcomes = outcomes_of(places, store)

    assert [o.status for o in outcomes] == ["accepted"] * 2
    assert [o.kind for o in outcomes] == ["declaration"] * 2
    assert [p for p in places.inbox.rglob("*") if p.is_file()] == []
    archived = sorted(p.name for p in places.archive.rglob("*") if p.is_file())
    assert archived == [
        f"{o.file_id:08d}_{p.stem}.txt" for o, p in zip(outcomes, dropped, strict=True)
    ]
    schema = etree.XMLSchema(etree.parse(str(acknowledgement_xsd_path())))
    for path in acknowledgements(places.outbox):
        assert schema.validate(etree.parse(str(path))), path
        assert path.stat().st_mode & 0o777 == 0o644  # the declarant's account can read it
    assert len(acknowledgements(places.outbox)) == 2
    for outcome in outcomes:
        ((lines, employer, employee),) = query(
            store,
            "SELECT count(*), sum(employer_contribution), sum(employee_contribution)"
            " FROM declaration_line l JOIN declaration d ON d.id = l.declaration_id"
            " WHERE d.edi_file_id = %s",
            outcome.file_id,
        )
        assert lines == outcome.employees + outcome.entrants
        assert (employer, employee) == (
            outcome.contributions.employer,
            outcome.contributions.employee,
        )
        total = ack_of(places.outbox, outcome.file_id).find("a:amounts/a:total", NS)
        assert int(total.get("due")) == outcome.contributions.due == employer + employee
        assert query(
            store,
            "SELECT count(*) FROM contribution c JOIN declaration d"
            " ON d.id = c.declaration_id WHERE d.edi_file_id = %s",
            outcome.file_id,
        ) == [(6,)]
    assert query(store, "SELECT count(*) FROM edi_file WHERE finished_at IS NULL") == [(0,)]


def test_byte_identical_redelivery_is_a_duplicate_and_changes_nothing(store, places):
    (declaration,) = deliver(places, store, employees=10)
    content = declaration.read_bytes()
    outcomes_of(places, store)
    before = query(store, "SELECT count(*) FROM declaration_line")
    declaration.write_bytes(content)

    (outcome,) = outcomes_of(places, store)

    assert outcome.status == "duplicate"
    assert query(store, "SELECT count(*) FROM declaration_line") == before
    assert query(store, "SELECT count(*) FROM declaration") == [(1,)]
    ack = ack_of(places.outbox, outcome.file_id)
    assert ack.findtext("a:status", namespaces=NS) == "duplicate"
    assert ack.find("a:duplicateOf", NS).get("status") == "accepted"
    assert "(heure du Maroc)" in ack.findtext("a:summary", namespaces=NS)
    assert len(acknowledgements(places.outbox)) == 2


def test_corrected_declaration_supersedes_and_keeps_history(store, places):
    (declaration,) = deliver(places, store, employees=10)
    corrected = bytearray(declaration.read_bytes())
    outcomes_of(places, store)
    name = field("B01", "L_Raison_Sociale")  # a text field: same figures, new content
    offset = 261 + name.start  # line 2 (B01), LF-terminated 260-character lines
    corrected[offset : offset + name.length] = b"SOCIETE CORRIGEE SARL".ljust(name.length)
    declaration.write_bytes(bytes(corrected))

    (outcome,) = outcomes_of(places, store)

    assert (outcome.status, outcome.version) == ("accepted", 2)
    rows = query(store, "SELECT version, superseded_by IS NULL FROM declaration ORDER BY version")
    assert rows == [(1, False), (2, True)]
    assert query(store, "SELECT count(DISTINCT declaration_id) FROM declaration_line") == [(2,)]


def test_rejected_file_stores_anomalies_and_no_declaration(store, places):
    (box(places, 1234567) / "DS_1234567_202610.txt").write_bytes(b"B00 not a declaration\n")

    (outcome,) = outcomes_of(places, store)

    assert outcome.status == "rejected"
    assert query(store, "SELECT count(*) FROM declaration") == [(0,)]
    stored = query(store, "SELECT count(*) FROM anomaly WHERE edi_file_id = %s", outcome.file_id)
    assert stored[0][0] == outcome.anomaly_count > 0
    ack = ack_of(places.outbox, outcome.file_id)
    assert ack.findtext("a:status", namespaces=NS) == "rejected"
    codes = {a.get("code") for a in ack.findall("a:anomalies/a:anomaly", NS)}
    assert {"LONGUEUR_LIGNE", "ENREGISTREMENT_MANQUANT"} <= codes


def test_drop_box_account_must_match_the_declared_affiliate(store, places, tmp_path):
    samples = tmp_path / "samples"
    write_samples(samples, affiliate=1234567, period="202610", employees=5, employers=2)
    own, other = places.inbox / "1234567" / "in", places.inbox / "1234575" / "in"
    own.mkdir(parents=True)
    other.mkdir(parents=True)
    shutil.copy(samples / "DS_1234567_202610.txt", own)
    shutil.copy(samples / "DS_1234575_202610.txt", own)  # dropped in the wrong box

    outcomes = {o.file_name: o for o in outcomes_of(places, store)}

    assert outcomes["DS_1234567_202610.txt"].status == "accepted"
    wrong = outcomes["DS_1234575_202610.txt"]
    assert wrong.status == "rejected"
    assert wrong.acknowledgement.parent == places.outbox / "1234567" / "out"
    ack = etree.parse(str(wrong.acknowledgement)).getroot()
    codes = [a.get("code") for a in ack.findall("a:anomalies/a:anomaly", NS)]
    assert "COMPTE_DEPOSANT" in codes


def test_crash_after_commit_is_finished_by_the_next_run(store, places, monkeypatch):
    (declaration,) = deliver(places, store, employees=12, entrants=0)  # one file, one crash

    def disk_full(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / f".{path.name}.k1ll3d").write_bytes(data[:10])  # half a temporary
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(process_module, "write_atomically", disk_full)
    with pytest.raises(OSError, match="No space left"):
        process_inbox(places, store=store)
    assert query(store, "SELECT count(*) FROM edi_file WHERE finished_at IS NULL") == [(1,)]
    out = places.outbox / "1234567" / "out"
    assert acknowledgements(places.outbox) == []
    assert len(list(out.glob(".*"))) == 1

    monkeypatch.undo()
    (outcome,) = outcomes_of(places, store)

    assert outcome.resumed  # finished by the recovery pass, not judged again, and reported
    assert query(store, "SELECT count(*), count(finished_at) FROM edi_file") == [(2, 2)]
    assert query(store, "SELECT count(*) FROM declaration_line") == [(12,)]
    assert len(acknowledgements(places.outbox)) == 1
    assert list(out.glob(".*")) == []  # the killed write's temporary is gone
    assert not declaration.exists()


def test_crash_inside_the_transaction_leaves_nothing(store, places, monkeypatch):
    deliver(places, store, employees=8)

    def broken(*args: object, **kwargs: object) -> None:
        raise psycopg2.OperationalError("server closed the connection")

    monkeypatch.setattr(Store, "insert_declaration", broken)
    with pytest.raises(psycopg2.OperationalError):
        process_inbox(places, store=store)
    assert query(store, "SELECT count(*) FROM edi_file WHERE receipt_id IS NOT NULL") == [(0,)]
    assert query(store, "SELECT count(*) FROM declaration_line") == [(0,)]

    monkeypatch.undo()
    outcomes = outcomes_of(places, store)

    assert [o.status for o in outcomes] == ["accepted"]
    assert query(store, "SELECT count(*) FROM declaration_line") == [(8,)]


def test_logs_carry_no_salary_name_or_cin(store, places, caplog):
    (declaration,) = deliver(places, store, employees=30)
    lines = declaration.read_bytes().split(b"\n")
    secrets = set()
    for line in lines:
        if line[:3] == b"B02":
            secrets |= {line[25:55].strip().decode(), str(int(line[113:126]))}
        elif line[:3] == b"B04" and line[16:25].strip():
            secrets |= {line[25:55].strip().decode(), line[85:93].strip().decode()}
    caplog.set_level(logging.DEBUG)

    process_inbox(places, store=store)

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records  # the run did log
    assert not [s for s in secrets if len(s) >= 4 and s in logged]  # not "0": too common


def test_an_accepted_declaration_keeps_its_warnings(store, places):
    this_month = dt.datetime.now(MOROCCO).strftime("%Y%m")
    deliver(places, store, period=this_month, employees=5)

    (outcome,) = outcomes_of(places, store)

    assert outcome.status == "accepted"
    assert [a.code for a in outcome.anomalies] == ["PERIODE_EN_COURS"]  # begun, not ended
    stored = query(store, "SELECT code FROM anomaly WHERE edi_file_id = %s", outcome.file_id)
    assert stored == [("PERIODE_EN_COURS",)]


def test_receipt_time_is_our_clock_not_the_clients(store, places):
    (dropped,) = deliver(places, store, employees=5)
    future = dt.datetime(2031, 1, 1, tzinfo=dt.UTC).timestamp()
    os.utime(dropped, (future, future))  # an SFTP client may set any modification time
    before = dt.datetime.now(dt.UTC)

    (outcome,) = outcomes_of(places, store, settle=0.1)

    assert outcome.status == "accepted"  # not skipped, not "future"
    ((received_at,),) = query(
        store, "SELECT received_at FROM edi_file WHERE id = %s", outcome.file_id
    )
    assert before <= received_at <= dt.datetime.now(dt.UTC)
