"""The use case: one received file in, one terminal state and one acknowledgement out.

Life of a file (every step can be interrupted; the next run picks up where it stopped):
1. read, hash; a content seen before is a duplicate (or an unfinished file to resume);
2. parse, validate, price; then ONE transaction stores the outcome and its acknowledgement;
3. write the acknowledgement atomically, move the input to the archive, mark it finished.
Step 3 is idempotent, so a crash between the commit and its end only delays it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2.errors

from cnss_edi.acknowledgement import AckContent, Original, render, write_atomically
from cnss_edi.pricing import preetabli_lines, price
from cnss_edi.store import FileRow, Store
from transforms.contributions import ContributionSummary
from transforms.parse import ParsedFile, parse
from validators.anomaly import Anomaly, Findings
from validators.declaration import Validation, validate
from validators.preetabli import Roster
from validators.structure import file_kind, header

log = logging.getLogger(__name__)
ACCOUNT_DIR = re.compile(r"^\d{7}$")
NOTHING_FOUND = Findings((), 0, 0)


@dataclass(frozen=True)
class Locations:
    """Where files come from and go. Per-employer drop boxes are <inbox>/<affiliate>/in/;
    their acknowledgements then go to <outbox>/<affiliate>/out/."""

    inbox: Path
    outbox: Path
    archive: Path


def account_of(path: Path, inbox: Path) -> int | None:
    """The affiliate whose drop box holds the file, or None for a flat inbox."""
    parts = path.relative_to(inbox).parts
    if len(parts) == 3 and parts[1] == "in" and ACCOUNT_DIR.match(parts[0]):
        return int(parts[0])
    return None


@dataclass(frozen=True)
class Received:
    """A file as it arrived, before anyone judged it."""

    path: Path
    sha256: str
    size: int
    received_at: dt.datetime  # the upload's modification time
    account: int | None

    def columns(self) -> dict[str, object]:
        return {
            "file_name": self.path.name,
            "sha256": self.sha256,
            "size_bytes": self.size,
            "received_at": self.received_at,
            "source_path": str(self.path.resolve()),
            "account_affiliate": self.account,
        }


@dataclass(frozen=True)
class FileOutcome:
    file_id: int
    file_name: str
    kind: str
    status: str  # accepted, rejected, duplicate
    affiliate: int | None
    period: str | None
    anomaly_count: int
    acknowledgement: Path
    employees: int | None = None
    entrants: int | None = None
    version: int | None = None
    contributions: ContributionSummary | None = None
    resumed: bool = False  # finished after an interrupted run
    anomalies: tuple[Anomaly, ...] = ()  # as listed in the acknowledgement

    @classmethod
    def of(cls, ack: AckContent, path: str) -> FileOutcome:
        return cls(
            ack.file_id,
            ack.file_name,
            ack.kind,
            ack.status,
            ack.affiliate,
            ack.period,
            ack.findings.total,
            Path(path),
            ack.employees,
            ack.entrants,
            ack.version,
            ack.contributions,
            anomalies=ack.findings.anomalies,
        )

    @classmethod
    def resumed_from(cls, row: FileRow) -> FileOutcome:
        return cls(
            row.id,
            row.file_name,
            row.kind,
            row.status,
            row.affiliate,
            row.period,
            row.anomaly_count,
            Path(row.acknowledgement_path),
            resumed=True,
        )


def process_file(path: Path, *, store: Store, locations: Locations) -> FileOutcome | None:
    """Take one complete file from the inbox to its terminal state.

    Returns None when another worker has the file (it is locked, or already gone)."""
    with store.path_lock(str(path.resolve())) as mine:
        if not mine or not path.exists():
            return None
        return _process_locked(path, store=store, locations=locations)


def _process_locked(path: Path, *, store: Store, locations: Locations) -> FileOutcome:
    raw = path.read_bytes()
    received = Received(
        path,
        hashlib.sha256(raw).hexdigest(),
        len(raw),
        dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC),
        account_of(path, locations.inbox),
    )
    seen = store.files_with_sha(received.sha256)
    unfinished = [row for row in seen if not row.finished]
    if unfinished:
        return _resume(store, unfinished[0])
    if seen:
        return _duplicate(received, seen[0], store=store, locations=locations)
    parsed = parse(raw)
    kind = file_kind(parsed)
    affiliate, period = header(parsed, kind)
    roster = None
    if kind == "declaration" and affiliate is not None and period is not None:
        roster = store.roster(affiliate, period)
    validation = validate(
        parsed,
        file_name=path.name,
        preetabli=roster,
        account_affiliate=received.account,
        today=received.received_at.date(),
    )
    try:
        outcome = _judged(received, parsed, validation, store=store, locations=locations)
    except psycopg2.errors.UniqueViolation:
        # Another worker stored the same content between our lookup and our insert (our
        # transaction was rolled back): its row is the file's one terminal state.
        return _resume(store, store.files_with_sha(received.sha256)[0])
    log.info(
        "file %s (%s): %s, %d anomalies",
        outcome.file_id,
        kind,
        outcome.status,
        outcome.anomaly_count,
    )
    return outcome


def _judged(
    received: Received,
    parsed: ParsedFile,
    validation: Validation,
    *,
    store: Store,
    locations: Locations,
) -> FileOutcome:
    """Store a validated file: the declaration or préétabli when accepted, the anomalies."""
    accepted = validation.status == "accepted"
    lines = summary = None
    if accepted and validation.kind == "declaration":
        lines, summary = price(parsed, validation.period)

    def write(cursor: object, file_id: int) -> dict[str, object]:
        version = None
        if summary is not None:
            _, version = store.insert_declaration(
                cursor,
                file_id=file_id,
                affiliate=validation.affiliate,
                period=validation.period,
                employees=validation.employees,
                entrants=validation.entrants,
                lines=lines,
                summary=summary,
            )
        elif accepted:
            store.insert_preetabli(
                cursor,
                file_id=file_id,
                roster=Roster.from_parsed(parsed),
                lines=preetabli_lines(parsed),
            )
        store.insert_anomalies(cursor, file_id, validation.findings.anomalies)
        return {"version": version, "contributions": summary}

    return _commit(
        received,
        write,
        store=store,
        locations=locations,
        kind=validation.kind,
        status=validation.status,
        affiliate=validation.affiliate,
        period=validation.period,
        employees=validation.employees,
        entrants=validation.entrants,
        findings=validation.findings,
    )


def _duplicate(
    received: Received, original: FileRow, *, store: Store, locations: Locations
) -> FileOutcome:
    """The same bytes again: a new receipt that points at the original and changes nothing."""
    pointer = Original(original.id, original.file_name, original.received_at, original.status)
    return _commit(
        received,
        lambda cursor, file_id: {"original": pointer},
        store=store,
        locations=locations,
        kind=original.kind,
        status="duplicate",
        affiliate=original.affiliate,
        period=original.period,
        employees=None,
        entrants=None,
        findings=NOTHING_FOUND,
        duplicate_of=original.id,
    )


def _commit(
    received: Received,
    write: Callable[[object, int], dict[str, object]],
    *,
    store: Store,
    locations: Locations,
    duplicate_of: int | None = None,
    **verdict: object,
) -> FileOutcome:
    """One transaction: the file's row, what `write` adds, and its acknowledgement; then the
    acknowledgement goes out and the input to the archive."""
    findings: Findings = verdict["findings"]
    with store.transaction() as cursor:
        file_id = store.insert_file(
            cursor,
            **received.columns(),
            kind=verdict["kind"],
            status=verdict["status"],
            affiliate=verdict["affiliate"],
            period=verdict["period"],
            duplicate_of=duplicate_of,
            anomaly_count=findings.total,
            blocking_count=findings.blocking_total,
        )
        ack = AckContent(
            file_id=file_id,
            file_name=received.path.name,
            sha256=received.sha256,
            size=received.size,
            received_at=received.received_at,
            **verdict,
            **write(cursor, file_id),
        )
        row = _destinations(store, cursor, received, ack, locations)
    finish(store, row, source_checked=True)
    return FileOutcome.of(ack, row.acknowledgement_path)


def _destinations(
    store: Store, cursor: object, received: Received, ack: AckContent, locations: Locations
) -> FileRow:
    """Acknowledgement and archive paths, named by the file id so that they never collide."""
    path, file_id = received.path, ack.file_id
    out_dir = locations.outbox
    if received.account:
        out_dir = out_dir / f"{received.account:07d}" / "out"
    acknowledgement = (out_dir / f"{path.stem}_AR_{file_id:08d}.xml").resolve()
    archive = (
        locations.archive / path.parent.relative_to(locations.inbox) / f"{file_id:08d}_{path.name}"
    ).resolve()
    xml = render(ack)
    store.set_destinations(
        cursor, file_id, acknowledgement=str(acknowledgement), archive=str(archive), xml=xml
    )
    return FileRow(
        file_id,
        path.name,
        received.sha256,
        ack.status,
        ack.kind,
        received.received_at,
        str(path.resolve()),
        str(archive),
        str(acknowledgement),
        xml.decode("utf-8"),
        False,
        ack.affiliate,
        ack.period,
        ack.findings.total,
    )


def _resume(store: Store, row: FileRow) -> FileOutcome:
    """The file already has its terminal state in the store: make sure it is finished."""
    if not row.finished:
        finish(store, row)
    return FileOutcome.resumed_from(row)


def finish(store: Store, row: FileRow, *, source_checked: bool = False) -> None:
    """Write the acknowledgement, archive the input, mark the file finished. Idempotent.

    The input is archived only if it still holds the content that was processed: after a
    crash, a new file may have been dropped under the same name. The caller holds the file's
    path lock, so temporary files left by a run killed while writing this acknowledgement
    are its own and can go."""
    acknowledgement = Path(row.acknowledgement_path)
    for leftover in acknowledgement.parent.glob(f".{acknowledgement.name}.*"):
        leftover.unlink(missing_ok=True)
    write_atomically(acknowledgement, row.acknowledgement_xml.encode("utf-8"))
    source, archive = Path(row.source_path), Path(row.archive_path)
    if source.exists() and (source_checked or _sha256(source) == row.sha256):
        archive.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, archive)
    store.mark_finished(row.id)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
