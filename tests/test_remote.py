"""Drop boxes over SFTP: a real sshd, the service login, the foundation's inbox run.

Each test has its own sshd (tests/sftp.py): the service login sees every box on its server,
so a shared server would hand one test's uploads to another's run."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest

from cnss_edi import accounts, remote
from cnss_edi.inbox import InboxRun, claim_uploads, process_inbox
from cnss_edi.process import Locations
from cnss_edi.remote import RemoteBoxes, ServerLost
from cnss_edi.store import Store
from tests import sftp
from tests.e2e import samples, upload
from tests.sftp import Declarant, SftpServer

PERIOD = "202610"


@pytest.fixture
def server() -> Iterator[SftpServer]:
    with sftp.running_server() as server:
        yield server


@pytest.fixture
def staging(tmp_path: Path) -> Locations:
    """The worker's side: where claimed files are fetched, acknowledgements kept, inputs
    archived."""
    return Locations(tmp_path / "staging", tmp_path / "outbox", tmp_path / "archive")


def declarations(tmp_path: Path, store: Store, count: int) -> list[bytes]:
    """Valid declarations of `count` employers, their préétablis loaded."""
    return [p.read_bytes() for p in samples(tmp_path, store, employers=count, employees=20)]


def enrol(server: SftpServer, store: Store, name: str, *affiliates: int) -> Declarant:
    """An account, on the SFTP server and in the store (where the pipeline reads it)."""
    declarant = server.add(name, affiliates=affiliates)
    accounts.save(store, declarant.account)
    return declarant


def affiliate_of(raw: bytes) -> int:
    return int(raw[3:10])


def run(server: SftpServer, store: Store, places: Locations, settle: float = 0) -> InboxRun:
    with remote.connect(server.address) as boxes:
        return process_inbox(replace(places, server=boxes), store=store, settle=settle)


def out_folder(server: SftpServer, declarant: Declarant) -> dict[str, bytes]:
    """The declarant's out/, read as the declarant reads it."""
    with server.sftp(declarant.login, declarant.keys[0]) as client:
        return {name: client.open(f"/out/{name}").read() for name in client.listdir("/out")}


def in_folder(server: SftpServer, declarant: Declarant) -> list[str]:
    return sorted(os.listdir(server.settings.root / declarant.login / "in"))


def processing(server: SftpServer) -> list[str]:
    return sorted(os.listdir(server.settings.root / ".processing"))


def rows(store: Store) -> list[tuple]:
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT depositor, file_name, status, finished_at IS NOT NULL FROM edi_file"
            " WHERE receipt_id IS NOT NULL ORDER BY id"
        )
        return cursor.fetchall()


def declaration_count(store: Store) -> int:
    with store.transaction() as cursor:
        cursor.execute("SELECT count(*) FROM declaration")
        return int(cursor.fetchone()[0])


def test_an_upload_is_claimed_judged_and_answered_in_its_out(
    server: SftpServer, store: Store, staging: Locations, tmp_path: Path
) -> None:
    (raw,) = declarations(tmp_path, store, 1)
    employer = enrol(server, store, "emp_a", affiliate_of(raw))
    upload(server, employer, "DS_A.txt", raw)

    outcome = run(server, store, staging).outcomes

    assert [(o.where, o.status) for o in outcome] == [(f"{employer.login}/in/DS_A.txt", "accepted")]
    answers = out_folder(server, employer)
    assert list(answers) == [outcome[0].acknowledgement.name]  # type: ignore[union-attr]
    assert b"<status>accepted</status>" in answers[outcome[0].acknowledgement.name]  # type: ignore[union-attr]
    assert in_folder(server, employer) == processing(server) == []
    archived = list(staging.archive.rglob("*_DS_A.txt"))
    assert [p.read_bytes() for p in archived] == [raw]
    assert rows(store) == [(employer.login, "DS_A.txt", "accepted", True)]


def test_a_claimed_file_leaves_the_declarants_sight(
    server: SftpServer, store: Store, staging: Locations, tmp_path: Path
) -> None:
    (raw,) = declarations(tmp_path, store, 1)
    employer = enrol(server, store, "emp_a", affiliate_of(raw))
    upload(server, employer, "DS_A.txt", raw)
    with remote.connect(server.address) as boxes:
        claimed = claim_uploads(replace(staging, server=boxes), store=store)
    assert claimed.queues == [f"{employer.login}/in"]
    assert processing(server) == ["000000000001"]
    with server.sftp(employer.login, employer.keys[0]) as client:
        assert client.listdir("/in") == []
        assert sorted(client.listdir("/")) == ["in", "out"]
        with pytest.raises(FileNotFoundError):
            client.stat("/../.processing/000000000001")


def test_two_sessions_never_claim_the_same_file(
    server: SftpServer, store: Store, tmp_path: Path
) -> None:
    employer = server.add("emp_a")
    upload(server, employer, "DS_A.txt", b"x" * 100)
    with remote.connect(server.address) as first, remote.connect(server.address) as second:
        (candidate,) = first.survey().candidates
        assert second.survey().candidates == [candidate]
        assert [first.claim(candidate, 1), second.claim(candidate, 2)] == [True, False]
    assert processing(server) == ["000000000001"]


def test_entries_that_are_not_readable_files_are_refused_and_block_nothing(
    server: SftpServer, store: Store, staging: Locations, tmp_path: Path
) -> None:
    (raw,) = declarations(tmp_path, store, 1)
    employer = enrol(server, store, "emp_a", affiliate_of(raw))
    upload(server, employer, "DS_A.txt", raw)
    with server.sftp(employer.login, employer.keys[0]) as client:
        client.mkdir("/in/folder")
        client.putfo(io.BytesIO(raw), "/in/private.txt")
        client.chmod("/in/private.txt", 0o600)
        client.putfo(io.BytesIO(b"x" * 50), "/in/bad\xff-name.txt".encode("latin-1"))

    outcome = run(server, store, staging)

    assert sorted((r.where, r.reason.split(" :")[0]) for r in outcome.refused) == [
        (f"{employer.login}/in/folder", "dossier"),
        (f"{employer.login}/in/private.txt", "fichier illisible"),
    ]
    assert sorted((o.where, o.status) for o in outcome.outcomes) == [
        (f"{employer.login}/in/DS_A.txt", "accepted"),
        (f"{employer.login}/in/bad\\xff-name.txt", "rejected"),
    ]
    assert in_folder(server, employer) == ["folder", "private.txt"]  # left where they were
    assert len(out_folder(server, employer)) == 2


def test_an_upload_in_progress_waits_for_the_next_run(
    server: SftpServer,
    store: Store,
    staging: Locations,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (raw,) = declarations(tmp_path, store, 1)
    employer = enrol(server, store, "emp_a", affiliate_of(raw))
    with server.sftp(employer.login, employer.keys[0]) as client:
        client.putfo(io.BytesIO(raw[:1000]), "/in/DS_A.txt.part")  # still uploading
        client.putfo(io.BytesIO(raw[:1000]), "/in/DS_B.txt")  # written without .part
    growing = server.settings.root / employer.login / "in" / "DS_B.txt"

    def still_writing(seconds: float) -> None:  # the client writes on while we wait
        with growing.open("ab") as handle:
            handle.write(raw[1000:2000])

    monkeypatch.setattr(remote.time, "sleep", still_writing)
    first = run(server, store, staging, settle=1)
    assert (first.outcomes, first.waiting) == ([], 2)

    monkeypatch.undo()
    growing.write_bytes(raw)
    with server.sftp(employer.login, employer.keys[0]) as client:
        client.remove("/in/DS_B.txt")
        client.putfo(io.BytesIO(raw), "/in/DS_A.txt.part")
        client.posix_rename("/in/DS_A.txt.part", "/in/DS_A.txt")
    second = run(server, store, staging, settle=0.2)
    assert [(o.where.rsplit("/", 1)[1], o.status) for o in second.outcomes] == [
        ("DS_A.txt", "accepted")
    ]


def _after(method: str, *, drop: bool = False) -> Callable[..., object]:
    """RemoteBoxes.<method>, failing once it has done its work (drop: the connection itself
    drops just before it, a real failure on the wire)."""
    original = getattr(RemoteBoxes, method)

    def failing(self: RemoteBoxes, *arguments: object) -> object:
        if drop:
            self.client.get_channel().get_transport().close()
            return original(self, *arguments)
        original(self, *arguments)
        raise ServerLost(f"the run dies after {method}")

    return failing


@pytest.mark.parametrize(
    ("step", "fault"),
    [
        ("after the claim", _after("claim")),
        ("connection dropped mid-fetch", _after("fetch", drop=True)),
        ("after the fetch", _after("fetch")),
        ("after the commit", _after("answer", drop=True)),
        ("after the acknowledgement upload", _after("answer")),
    ],
)
def test_a_run_that_dies_at_any_step_is_finished_by_the_next_exactly_once(
    server: SftpServer,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    fault: Callable[..., object],
) -> None:
    raws = declarations(tmp_path, store, 2)
    employers = [enrol(server, store, f"emp_{i}", affiliate_of(r)) for i, r in enumerate(raws)]
    for employer, raw in zip(employers, raws, strict=True):
        upload(server, employer, "DS.txt", raw)
    first_worker = Locations(tmp_path / "w1", tmp_path / "w1-out", tmp_path / "archive")
    monkeypatch.setattr(RemoteBoxes, step_method(step), fault)
    with pytest.raises(ServerLost):
        run(server, store, first_worker)
    monkeypatch.undo()

    # Another worker, with nothing of the first one's local files but the shared archive.
    second_worker = Locations(tmp_path / "w2", tmp_path / "w2-out", tmp_path / "archive")
    run(server, store, second_worker)
    third = run(server, store, second_worker)

    assert third.outcomes == []
    assert sorted(r[1:] for r in rows(store)) == [("DS.txt", "accepted", True)] * 2
    assert declaration_count(store) == 2
    for employer in employers:
        (answer,) = out_folder(server, employer).values()  # one, and never a .part
        assert b"<status>accepted</status>" in answer
        assert in_folder(server, employer) == []
    assert processing(server) == []


def step_method(step: str) -> str:
    return {
        "after the claim": "claim",
        "connection dropped mid-fetch": "fetch",
        "after the fetch": "fetch",
        "after the commit": "answer",
        "after the acknowledgement upload": "answer",
    }[step]


def test_the_service_refuses_a_server_with_another_host_key(
    server: SftpServer, tmp_path: Path
) -> None:
    impostor = paramiko.Ed25519Key.from_private_key_file(str(server.new_key_file()))
    address = replace(server.address, host_key=sftp.public_line(impostor))
    with pytest.raises(ServerLost, match="unexpected host key"), remote.connect(address):
        pass


def test_a_declarant_cannot_lock_the_service_out_of_its_box(server: SftpServer) -> None:
    employer = server.add("emp_a")
    with server.sftp(employer.login, employer.keys[0]) as client:
        with pytest.raises(PermissionError):
            client.chmod("/in", 0o700)
        mode = client.stat("/in").st_mode
    assert stat.S_IMODE(mode or 0) == 0o770


def test_a_notice_is_published_once_and_read_by_its_declarant(server: SftpServer) -> None:
    employer = server.add("emp_a")
    with remote.connect(server.address) as boxes:
        sent = [boxes.publish(f"{employer.login}/out", "AFFEBDS.txt", b"A00\r\n") for _ in "ab"]
        changed = boxes.publish(f"{employer.login}/out", "AFFEBDS.txt", b"A00 v2\r\n")
    assert (sent, changed) == ([1, 0], 1)
    assert out_folder(server, employer) == {"AFFEBDS.txt": b"A00 v2\r\n"}
