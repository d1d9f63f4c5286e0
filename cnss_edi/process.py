"""The use case: one received file in, one terminal state and one acknowledgement out.

Life of a file (every step can be interrupted; the next run picks up where it stopped):
1. read, hash; a content seen before is a duplicate (or an unfinished file to resume);
2. parse, validate, price; then ONE transaction stores the outcome and its acknowledgement;
3. write the acknowledgement atomically, move the input to the archive, mark it finished.
Steps 3 are idempotent, so a crash between commit and finish only delays them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg2.errors

from cnss_edi.acknowledgement import AckContent, Original, render, write_atomically
from cnss_edi.pricing import preetabli_lines, price
from cnss_edi.store import FileRow, Store
from transforms.contributions import ContributionSummary
from transforms.parse import ParsedFile, parse
from validators.anomaly import Findings
from validators.declaration import Validation, validate
from validators.preetabli import Roster
from validators.structure import file_kind, header

log = logging.getLogger(__name__)
ACCOUNT_DIR = re.compile(r"^\d{7}$")


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


def process_file(path: Path, *, store: Store, locations: Locations) -> FileOutcome | None:
    """Take one complete file from the inbox to its terminal state.

    Returns None when another worker has the file (it is locked, or already gone)."""
    with store.path_lock(str(path.resolve())) as mine:
        if not mine or not path.exists():
            return None
        return _process_locked(path, store=store, locations=locations)


def _process_locked(path: Path, *, store: Store, locations: Locations) -> FileOutcome:
    raw = path.read_bytes()
    sha256 = hashlib.sha256(raw).hexdigest()
    received_at = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    seen = store.files_with_sha(sha256)
    unfinished = [row for row in seen if not row.finished]
    if unfinished:
        finish(store, unfinished[0])
        return _resumed(unfinished[0])
    account = account_of(path, locations.inbox)
    common = {
        "file_name": path.name,
        "sha256": sha256,
        "size_bytes": len(raw),
        "received_at": received_at,
        "source_path": str(path.resolve()),
        "account_affiliate": account,
    }
    if seen:
        return _store_duplicate(path, seen[0], common, store=store, locations=locations)
    parsed = parse(raw)
    kind = file_kind(parsed)
    affiliate, period = header(parsed, kind)
    roster = None
    if kind == "declaration" and affiliate is not None and period is not None:
        roster = store.roster(affiliate, period)
    validation = validate(parsed, file_name=path.name, preetabli=roster, account_affiliate=account)
    try:
        outcome = _store_outcome(path, parsed, validation, common, store=store, locations=locations)
    except psycopg2.errors.UniqueViolation:
        # Another worker stored the same content between our lookup and our insert (our
        # transaction was rolled back): its row is the file's one terminal state.
        first = store.files_with_sha(sha256)[0]
        if not first.finished:
            finish(store, first)
        return _resumed(first)
    log.info(
        "file %s (%s): %s, %d anomalies",
        outcome.file_id,
        kind,
        outcome.status,
        outcome.anomaly_count,
    )
    return outcome


def _store_outcome(
    path: Path,
    parsed: ParsedFile,
    validation: Validation,
    common: dict,
    *,
    store: Store,
    locations: Locations,
) -> FileOutcome:
    findings = validation.findings
    accepted = validation.status == "accepted"
    version = summary = None
    if accepted and validation.kind == "declaration":
        lines, summary = price(parsed, validation.period)
    with store.transaction() as cursor:
        file_id = store.insert_file(
            cursor,
            **common,
            kind=validation.kind,
            status=validation.status,
            affiliate=validation.affiliate,
            period=validation.period,
            anomaly_count=findings.total,
            blocking_count=findings.blocking_total,
        )
        if accepted and validation.kind == "declaration":
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
        store.insert_anomalies(cursor, file_id, findings.anomalies)
        ack = AckContent(
            file_id=file_id,
            file_name=path.name,
            sha256=common["sha256"],
            size=common["size_bytes"],
            received_at=common["received_at"],
            kind=validation.kind,
            status=validation.status,
            affiliate=validation.affiliate,
            period=validation.period,
            employees=validation.employees,
            entrants=validation.entrants,
            findings=findings,
            version=version,
            contributions=summary,
        )
        row = _destinations(
            store, cursor, file_id, path, validation.affiliate, common, locations, render(ack)
        )
    finish(store, row, source_checked=True)
    return FileOutcome(
        file_id,
        path.name,
        validation.kind,
        validation.status,
        validation.affiliate,
        validation.period,
        findings.total,
        Path(row.acknowledgement_path),
        validation.employees,
        validation.entrants,
        version,
        summary,
    )


def _store_duplicate(
    path: Path, original: FileRow, common: dict, *, store: Store, locations: Locations
) -> FileOutcome:
    with store.transaction() as cursor:
        file_id = store.insert_file(
            cursor,
            **common,
            kind=original.kind,
            status="duplicate",
            duplicate_of=original.id,
            affiliate=original.affiliate,
            period=original.period,
        )
        ack = AckContent(
            file_id=file_id,
            file_name=path.name,
            sha256=common["sha256"],
            size=common["size_bytes"],
            received_at=common["received_at"],
            kind=original.kind,
            status="duplicate",
            affiliate=original.affiliate,
            period=original.period,
            employees=None,
            entrants=None,
            findings=Findings((), 0, 0),
            original=Original(
                original.id, original.file_name, original.received_at, original.status
            ),
        )
        row = _destinations(
            store, cursor, file_id, path, original.affiliate, common, locations, render(ack)
        )
    finish(store, row, source_checked=True)
    return FileOutcome(
        file_id,
        path.name,
        original.kind,
        "duplicate",
        original.affiliate,
        original.period,
        0,
        Path(row.acknowledgement_path),
    )


def _destinations(
    store: Store,
    cursor: object,
    file_id: int,
    path: Path,
    affiliate: int | None,
    common: dict,
    locations: Locations,
    xml: bytes,
) -> FileRow:
    """Acknowledgement and archive paths, named by the file id so that they never collide."""
    account = common["account_affiliate"]
    out_dir = locations.outbox / f"{account:07d}" / "out" if account else locations.outbox
    relative = path.parent.relative_to(locations.inbox)
    acknowledgement = out_dir / f"{path.stem}_AR_{file_id:08d}.xml"
    archive = locations.archive / relative / f"{file_id:08d}_{path.name}"
    store.set_destinations(
        cursor,
        file_id,
        acknowledgement=str(acknowledgement.resolve()),
        archive=str(archive.resolve()),
        xml=xml,
    )
    return FileRow(
        file_id,
        path.name,
        common["sha256"],
        "",
        "",
        common["received_at"],
        common["source_path"],
        str(archive.resolve()),
        str(acknowledgement.resolve()),
        xml.decode("utf-8"),
        False,
        affiliate,
        None,
        0,
    )


def finish(store: Store, row: FileRow, *, source_checked: bool = False) -> None:
    """Write the acknowledgement, archive the input, mark the file finished. Idempotent.

    The input is archived only if it still holds the content that was processed: after a
    crash, a new file may have been dropped under the same name."""
    write_atomically(Path(row.acknowledgement_path), row.acknowledgement_xml.encode("utf-8"))
    source, archive = Path(row.source_path), Path(row.archive_path)
    if source.exists() and (source_checked or _sha256(source) == row.sha256):
        archive.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, archive)
    store.mark_finished(row.id)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resumed(row: FileRow) -> FileOutcome:
    return FileOutcome(
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
