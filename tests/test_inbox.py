"""process_inbox on hostile and careless drop boxes, against a real PostgreSQL: links and
special files, préétablis from employers, files replaced or still uploading, poison names,
several runs and workers at once. Each test reproduces something that once went wrong."""

from __future__ import annotations

import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cnss_edi import inbox as inbox_module
from cnss_edi import process as process_module
from cnss_edi.inbox import process_inbox
from cnss_edi.process import Locations, load_preetabli
from cnss_edi.sample import write_samples
from cnss_edi.store import Store
from schemas import field
from tests.boxes import box, deliver
from tests.db import NS, ack_of, acknowledgements, query


def run(places: Locations, store: Store, **options):
    return process_inbox(places, store=store, **options)


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def renamed(content: bytes, name: str) -> bytes:
    """The declaration with another company name on its B01 line: new bytes, same figures."""
    raw = bytearray(content)
    company = field("B01", "L_Raison_Sociale")
    offset = 261 + company.start
    raw[offset : offset + company.length] = name.encode().ljust(company.length)
    return bytes(raw)


# -- what is taken, what is refused -------------------------------------------------------------


def test_symlink_to_a_file_outside_is_refused_and_its_target_untouched(store, places, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"B00" + b"x" * 257 + b"\n")
    (box(places, 1234567) / "link.txt").symlink_to(secret)

    result = run(places, store)

    assert result.outcomes == []
    assert [(r.where, r.reason.split(" :")[0]) for r in result.refused] == [
        ("1234567/in/link.txt", "lien symbolique")
    ]
    assert secret.read_bytes().startswith(b"B00")  # not moved, not archived
    assert query(store, "SELECT count(*) FROM edi_file") == [(0,)]
    assert acknowledgements(places.outbox) == []


def test_one_employer_cannot_swallow_anothers_upload_through_a_link(store, places):
    (victim,) = deliver(places, store, affiliate=1234575, employees=5)
    (box(places, 1234567) / "a.txt").symlink_to(Path("../../1234575/in") / victim.name)

    result = run(places, store)

    (outcome,) = result.outcomes
    assert (outcome.where, outcome.status) == (f"1234575/in/{victim.name}", "accepted")
    assert outcome.acknowledgement.parent == places.outbox / "1234575" / "out"
    assert [r.where for r in result.refused] == ["1234567/in/a.txt"]
    assert not (places.outbox / "1234567").exists()


@pytest.mark.parametrize("make", ["fifo", "folder", "socket", "hardlink", "loop"])
def test_special_entries_are_refused_without_blocking_the_others(store, places, make):
    (good,) = deliver(places, store, employees=5)
    odd = good.parent / "odd.txt"
    if make == "fifo":
        os.mkfifo(odd)  # opening it would block the run forever
    elif make == "folder":
        odd.mkdir()
    elif make == "socket":
        import socket

        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(odd))
    elif make == "hardlink":
        os.link(good, odd)  # both names refused: the employer could rewrite our claimed bytes
    else:
        odd.symlink_to("odd.txt")

    result = run(places, store)

    refused = {r.where for r in result.refused}
    assert "1234567/in/odd.txt" in refused
    assert os.path.lexists(odd)  # left where it is, for its owner to see and remove
    if make == "hardlink":
        assert result.outcomes == []
    else:
        assert [o.status for o in result.outcomes] == ["accepted"]


@pytest.mark.parametrize("swap", ["symlink", "hardlink", "fifo"])
def test_an_entry_swapped_between_the_look_and_the_claim_is_refused(
    store, places, tmp_path, monkeypatch, swap
):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not the employer's")
    (dropped,) = deliver(places, store, employees=5)
    real = inbox_module.dropbox.claim

    def swapped(inbox, candidate, receipt_id):
        replacement = dropped.with_name("swap")
        if swap == "symlink":
            replacement.symlink_to(secret)
        elif swap == "hardlink":
            os.link(dropped, replacement)  # the employer keeps a second name for the bytes
        else:
            os.mkfifo(replacement)
        if swap != "hardlink":
            replacement.rename(dropped)
        return real(inbox, candidate, receipt_id)

    monkeypatch.setattr(inbox_module.dropbox, "claim", swapped)
    result = run(places, store)

    assert result.outcomes == []
    assert [r.where for r in result.refused] == ["1234567/in/DS_1234567_202610.txt"]
    assert secret.read_bytes() == b"not the employer's"
    assert query(store, "SELECT count(*) FROM receipt") == [(0,)]
    assert run(places, store).outcomes == []  # the next run is not stuck on it


def test_a_box_whose_in_folder_is_a_link_is_refused(store, places, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    write_samples(elsewhere, affiliate=1234567, period="202610", employees=5)
    (places.inbox / "1234567").mkdir()
    (places.inbox / "1234567" / "in").symlink_to(elsewhere)

    result = run(places, store)

    assert result.outcomes == []
    assert [r.where for r in result.refused] == ["1234567/in"]
    assert len(list(elsewhere.iterdir())) == 2


def test_a_file_beside_in_is_reported_not_ignored(store, places):
    (dropped,) = deliver(places, store, employees=5)
    dropped.rename(dropped.parent.parent / dropped.name)

    result = run(places, store)

    assert result.outcomes == []
    assert [(r.where, r.reason) for r in result.refused] == [
        (f"1234567/{dropped.name}", "à déposer dans 1234567/in/")
    ]


def test_a_preetabli_from_an_employer_is_refused_and_the_roster_stays_cnss(store, places):
    samples = places.inbox.parent / "samples"
    preetabli, declaration = write_samples(
        samples, affiliate=1234567, period="202610", employees=6, entrants=0
    )
    load_preetabli(preetabli, preetabli.read_bytes(), store=store)
    # The employer's own préétabli leaves out the last employee, and so does its declaration.
    forged = preetabli.read_bytes().split(b"\n")
    shorter = declaration.read_bytes().split(b"\n")
    a02 = [i for i, line in enumerate(forged) if line[:3] == b"A02"]
    b02 = [i for i, line in enumerate(shorter) if line[:3] == b"B02"]
    (box(places, 1234567) / preetabli.name).write_bytes(
        b"\n".join(forged[: a02[-1]] + forged[a02[-1] + 1 :])
    )

    (refusal,) = run(places, store).outcomes
    assert refusal.status == "rejected"
    assert "PREETABLI_DEPOSE" in {a.code for a in refusal.anomalies}
    (box(places, 1234567) / declaration.name).write_bytes(
        b"\n".join(shorter[: b02[-1]] + shorter[b02[-1] + 1 :])
    )
    (judged,) = run(places, store).outcomes

    assert judged.status == "rejected"  # still checked against CNSS's roster
    assert "PREETABLI_NON_DECLARE" in {a.code for a in judged.anomalies}
    assert query(store, "SELECT count(*) FROM preetabli") == [(1,)]


# -- complete files only, exactly the bytes claimed ---------------------------------------------


def test_uploads_in_progress_wait_by_name_and_by_change(store, places):
    (dropped,) = deliver(places, store, employees=200)
    content = dropped.read_bytes()
    dropped.unlink()
    (dropped.parent / (dropped.name + ".part")).write_bytes(content[:1000])
    growing = dropped.parent / "DS_1234567_202610_bis.txt"
    growing.write_bytes(b"")
    stop = threading.Event()

    def writer() -> None:  # an upload under its final name, still being appended to
        with growing.open("ab") as out:
            for start in range(0, len(content), len(content) // 40):
                if stop.is_set():
                    return
                out.write(content[start : start + len(content) // 40])
                out.flush()
                time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = run(places, store, settle=0.5)
    finally:
        stop.set()
        thread.join()
    assert result.outcomes == []
    assert result.waiting == 2
    assert growing.exists()


def test_a_file_replaced_during_processing_is_a_new_file(store, places, monkeypatch):
    (dropped,) = deliver(places, store, employees=20)
    first = dropped.read_bytes()
    second = renamed(first, "SOCIETE REMPLACEE")
    real = inbox_module.process_receipt

    def replaced_meanwhile(receipt, **kwargs):
        dropped.with_suffix(".new").write_bytes(second)
        dropped.with_suffix(".new").rename(dropped)  # the employer's write-then-mv
        return real(receipt, **kwargs)

    monkeypatch.setattr(inbox_module, "process_receipt", replaced_meanwhile)
    (outcome,) = run(places, store).outcomes
    monkeypatch.undo()

    archived = places.archive / "1234567" / "in" / f"{outcome.file_id:08d}_DS_1234567_202610.txt"
    assert archived.read_bytes() == first  # the bytes judged, not the replacement
    assert dropped.read_bytes() == second  # the new upload waits in the box
    (again,) = run(places, store).outcomes
    assert (again.status, again.version) == ("accepted", 2)


def test_archive_keeps_only_the_bytes_judged(store, places, monkeypatch):
    """A writer that kept the file open after the claim: its new bytes are not archived as if
    they had been judged."""
    deliver(places, store, employees=5)
    real = process_module.finish

    def rewritten_before_finish(store_, row, locations):
        (places.inbox / ".processing" / f"{row.receipt_id:012d}").write_bytes(b"rewritten")
        real(store_, row, locations)

    monkeypatch.setattr(process_module, "finish", rewritten_before_finish)
    (outcome,) = run(places, store).outcomes

    assert outcome.status == "accepted"
    assert files_in(places.archive) == []
    assert (places.inbox / ".processing" / "000000000001.changed").read_bytes() == b"rewritten"


# -- one entry never stops the others -----------------------------------------------------------


def test_poison_names_each_get_an_answer_and_the_rest_goes_on(store, places):
    (dropped,) = deliver(places, store, employees=5)
    content = dropped.read_bytes()
    folder = os.fsencode(dropped.parent)
    for number, name in enumerate((b"bad\x1bname.txt", b"latin1-\xe9.txt", b"x" * 241 + b".txt")):
        with open(os.path.join(folder, name), "wb") as out:
            out.write(renamed(content, f"COPIE {number}"))

    result = run(places, store)

    by_status = sorted((o.status, o.file_name[:12]) for o in result.outcomes)
    assert [status for status, _ in by_status] == ["accepted"] + ["rejected"] * 3
    for outcome in result.outcomes:
        if outcome.status == "rejected":
            assert {a.code for a in outcome.anomalies} == {"NOM_FICHIER_INVALIDE"}
        assert outcome.acknowledgement.exists()
        assert len(outcome.acknowledgement.name) < 100
    assert r"bad\x1bname.txt" in {o.file_name for o in result.outcomes}
    assert files_in(places.inbox) == []


def test_an_internal_error_on_one_file_leaves_it_for_the_next_run(store, places, monkeypatch):
    deliver(places, store, employees=5, employers=2)
    real = inbox_module.process_receipt

    def fails_once(receipt, **kwargs):
        if receipt.id == 1:
            raise ZeroDivisionError  # a bug, not a database or disk failure
        return real(receipt, **kwargs)

    monkeypatch.setattr(inbox_module, "process_receipt", fails_once)
    first = run(places, store)
    monkeypatch.undo()
    second = run(places, store)

    assert first.failed == ["1234567/in/DS_1234567_202610.txt"]
    assert [o.status for o in first.outcomes] == ["accepted"]
    assert [(o.where, o.status) for o in second.outcomes] == [
        ("1234567/in/DS_1234567_202610.txt", "accepted")
    ]


def test_an_oversized_file_is_refused_before_it_is_read(store, places):
    from schemas import MAX_FILE_BYTES

    huge = box(places, 1234567) / "DS_1234567_202610.txt"
    with huge.open("wb") as out:  # sparse: costs no disk
        out.truncate(MAX_FILE_BYTES + 1)

    (outcome,) = run(places, store).outcomes

    assert outcome.status == "rejected"
    assert [a.code for a in outcome.anomalies] == ["FICHIER_TROP_GRAND"]


# -- exactly once, in the order received --------------------------------------------------------


def test_bytes_rejected_for_their_box_are_judged_again_when_sent_right(store, places):
    samples = places.inbox.parent / "samples"
    paths = write_samples(samples, affiliate=1234567, period="202610", employees=5, employers=2)
    for path in paths[::2]:  # préétablis
        load_preetabli(path, path.read_bytes(), store=store)
    other = paths[3]  # DS_1234575_202610.txt
    shutil.copy(other, box(places, 1234567))  # the wrong box
    shutil.copy(other, box(places, 1234567) / "DS_1234567_202610.txt")  # and a wrong name

    wrong = {o.where: o for o in run(places, store).outcomes}
    shutil.copy(other, box(places, 1234575))
    (right,) = run(places, store).outcomes

    assert {o.status for o in wrong.values()} == {"rejected"}
    assert right.status == "accepted"
    assert query(store, "SELECT count(*) FROM declaration") == [(1,)]


def test_byte_identical_copies_in_one_run_are_each_answered_once(pg_conn_dsn, places):
    stores = [Store.open(pg_conn_dsn) for _ in range(2)]
    (dropped,) = deliver(places, stores[0], employees=50)
    for copy in range(3):
        shutil.copy(dropped, dropped.with_name(f"copie{copy}.txt"))

    result = process_inbox(places, store=stores[0], workers=2)

    assert sorted(o.status for o in result.outcomes) == ["accepted"] + ["duplicate"] * 3
    assert len({o.where for o in result.outcomes}) == 4
    assert len(acknowledgements(places.outbox)) == 4
    assert files_in(places.inbox) == []
    for store in stores:
        store.close()


def test_bytes_judged_meanwhile_by_another_worker_make_a_duplicate(store, places, monkeypatch):
    (dropped,) = deliver(places, store, employees=5)
    content = dropped.read_bytes()
    run(places, store)
    dropped.write_bytes(content)
    real = Store.judgement_of

    def not_yet(self: Store, sha256: str) -> None:
        """The first lookup misses, as if another worker committed the same bytes between
        our lookup and our insert."""
        monkeypatch.setattr(Store, "judgement_of", real)

    monkeypatch.setattr(Store, "judgement_of", not_yet)
    (outcome,) = run(places, store).outcomes

    assert outcome.status == "duplicate"
    assert query(store, "SELECT count(*) FROM declaration") == [(1,)]


def test_current_version_is_the_last_received_with_concurrent_runs(pg_conn_dsn, places):
    stores = [Store.open(pg_conn_dsn) for _ in range(2)]
    versions = 4
    (dropped,) = deliver(places, stores[0], employees=300)
    content = dropped.read_bytes()
    for number in range(1, versions + 1):  # received in this order, under unrelated names
        (dropped.parent / f"paie-{9 - number}.txt").write_bytes(renamed(content, f"V{number}"))
        time.sleep(0.01)
    dropped.unlink()

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda s: process_inbox(places, store=s, workers=2), stores))

    assert sorted(o.version for r in runs for o in r.outcomes) == list(range(1, versions + 1))
    (current,) = query(
        stores[0],
        "SELECT f.file_name, d.version FROM declaration d JOIN edi_file f ON f.id = d.edi_file_id"
        " WHERE d.superseded_by IS NULL",
    )
    assert current == ("paie-5.txt", versions)
    for store in stores:
        store.close()


def test_acknowledgement_folder_is_chosen_by_the_run_that_finishes(store, places, tmp_path):
    deliver(places, store, employees=5)
    wrong = Locations(places.inbox, tmp_path / "not-a-folder", places.archive)
    wrong.outbox.write_bytes(b"")  # an --outbox that cannot be written

    with pytest.raises(NotADirectoryError):
        run(wrong, store)
    (outcome,) = run(places, store).outcomes

    assert outcome.resumed
    assert [p.parent for p in acknowledgements(places.outbox)] == [
        places.outbox / "1234567" / "out"
    ]
    ack = ack_of(places.outbox, outcome.file_id)
    assert ack.findtext("a:status", namespaces=NS) == "accepted"


def test_acknowledgements_are_readable_whatever_the_umask(store, places):
    deliver(places, store, employees=5)
    previous = os.umask(0o077)
    try:
        run(places, store)
    finally:
        os.umask(previous)
    (ack,) = acknowledgements(places.outbox)
    assert ack.stat().st_mode & 0o777 == 0o644
