"""The use case: one received file in, one terminal state and one acknowledgement out.

Life of a file (every step can be interrupted; the next run picks up where it stopped):
1. claimed: renamed out of the drop box under its receipt number (cnss_edi.dropbox);
2. read (bounded), hashed; bytes already judged make a duplicate; else parsed, validated,
   priced; then ONE transaction stores the outcome and its acknowledgement;
3. the acknowledgement is written atomically, the claimed bytes go to the archive (after
   checking they are still the ones judged), and the file is marked finished.
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
from typing import TYPE_CHECKING

import psycopg2.errors

from cnss_edi import accounts, dropbox
from cnss_edi.acknowledgement import MOROCCO, AckContent, Original, render
from cnss_edi.files import write_atomically
from cnss_edi.pricing import preetabli_lines, price
from cnss_edi.store import ONE_JUDGEMENT, Cursor, FileRow, Kind, Receipt, Status, Store
from schemas import MAX_FILE_BYTES
from transforms.contributions import ContributionSummary
from transforms.parse import ParsedFile, parse
from validators.anomaly import Anomaly, Findings
from validators.declaration import Validation, oversized, too_many_lines, validate
from validators.preetabli import Roster
from validators.structure import Depositor, file_kind, header

if TYPE_CHECKING:
    from cnss_edi.remote import RemoteBoxes

log = logging.getLogger(__name__)

NOTHING_FOUND = Findings((), 0, 0)


@dataclass(frozen=True)
class Locations:
    """Where files come from and go: drop boxes <inbox>/<login>/in/ (or a flat inbox),
    acknowledgements in <outbox>/<login>/out/, processed inputs in <archive>/.

    With a `server`, the boxes are on that SFTP server: claimed files are fetched into
    <inbox>/.processing/ and acknowledgements go back to the server's out/ folders too."""

    inbox: Path
    outbox: Path
    archive: Path
    server: RemoteBoxes | None = None


# An operator's load: no acknowledgement to write, no input to move.
NOWHERE = Locations(Path(), Path(), Path())


@dataclass(frozen=True)
class Received:
    """A file as it arrived, before anyone judged it."""

    name: str  # printable (dropbox.printable)
    box: str  # the drop box's folder, e.g. 1234567/in; "" for a flat inbox or an operator
    where: str  # box/name, printable
    sha256: str
    size: int
    received_at: dt.datetime  # our clock, at the claim
    receipt_id: int | None  # None: loaded by an operator
    depositor: Depositor | None  # who dropped it; None for a flat inbox or an operator
    usable_name: bool = True


@dataclass(frozen=True)
class Verdict:
    """What was decided about a file, before it is stored."""

    kind: Kind
    status: Status
    affiliate: int | None
    period: str | None
    employees: int | None  # None for a duplicate: nothing was counted
    entrants: int | None
    findings: Findings
    rejected_for_context: bool = False
    original: Original | None = None  # for a duplicate

    @classmethod
    def of(cls, validation: Validation) -> Verdict:
        return cls(
            validation.kind,  # type: ignore[arg-type]
            validation.status,  # type: ignore[arg-type]
            validation.affiliate,
            validation.period,
            validation.employees,
            validation.entrants,
            validation.findings,
            validation.rejected_for_context,
        )

    @classmethod
    def duplicate(cls, original: FileRow) -> Verdict:
        pointer = Original(original.id, original.file_name, original.received_at, original.status)
        return cls(
            original.kind,
            "duplicate",
            original.affiliate,
            original.period,
            None,
            None,
            NOTHING_FOUND,
            original=pointer,
        )


@dataclass(frozen=True)
class Stored:
    """What the transaction added beyond the file's row."""

    version: int | None = None
    contributions: ContributionSummary | None = None


@dataclass(frozen=True)
class FileOutcome:
    file_id: int
    file_name: str
    kind: Kind
    status: Status
    affiliate: int | None
    period: str | None
    anomaly_count: int
    acknowledgement: Path | None
    employees: int | None = None
    entrants: int | None = None
    version: int | None = None
    contributions: ContributionSummary | None = None
    resumed: bool = False  # finished after an interrupted run
    anomalies: tuple[Anomaly, ...] = ()  # as listed in the acknowledgement
    where: str = ""  # box/name as dropped
    receipt_id: int | None = None  # order of receipt; None: loaded by an operator

    @classmethod
    def of(cls, ack: AckContent, row: FileRow, locations: Locations) -> FileOutcome:
        return cls(
            ack.file_id,
            ack.file_name,
            ack.kind,  # type: ignore[arg-type]
            ack.status,  # type: ignore[arg-type]
            ack.affiliate,
            ack.period,
            ack.findings.total,
            _acknowledgement_file(row, locations),
            ack.employees,
            ack.entrants,
            ack.version,
            ack.contributions,
            anomalies=ack.findings.anomalies,
            where=row.source_path,
            receipt_id=row.receipt_id,
        )

    @classmethod
    def resumed_from(cls, row: FileRow, locations: Locations) -> FileOutcome:
        return cls(
            row.id,
            row.file_name,
            row.kind,
            row.status,
            row.affiliate,
            row.period,
            row.anomaly_count,
            _acknowledgement_file(row, locations),
            resumed=True,
            where=row.source_path,
            receipt_id=row.receipt_id,
        )


def _acknowledgement_file(row: FileRow, locations: Locations) -> Path | None:
    return locations.outbox / row.acknowledgement_path if row.acknowledgement_path else None


def depositor_of(box: str, store: Store) -> Depositor | None:
    """Who drops files in `box` ("<login>/in") and may declare for which affiliates: its
    account; for a box named after an affiliate and no account, that affiliate alone; for a
    box nobody holds, no affiliate at all. None for the flat inbox (an operator's)."""
    if not box:
        return None
    login = box.partition("/")[0]
    account = accounts.find(store, login)
    if account is not None:
        return Depositor(login, frozenset(account.affiliates))
    if dropbox.AFFILIATE_BOX.match(login):
        return Depositor(login, frozenset({int(login)}))
    return Depositor(login, frozenset())


def process_receipt(receipt: Receipt, *, store: Store, locations: Locations) -> FileOutcome:
    """Judge a claimed file, store its outcome, answer it. The caller holds its receipt lock."""
    path = dropbox.claimed_path(locations.inbox, receipt.id)
    raw, size = dropbox.read_regular(path, limit=MAX_FILE_BYTES)
    received = Received(
        name=receipt.file_name,
        box=receipt.box,
        where=receipt.where,
        sha256=hashlib.sha256(raw).hexdigest() if raw is not None else dropbox.sha256_of(path),
        size=size,
        received_at=receipt.claimed_at,
        receipt_id=receipt.id,
        depositor=depositor_of(receipt.box, store),
        usable_name=receipt.usable_name,
    )
    return _judge_and_store(received, raw, store=store, locations=locations)


def load_preetabli(path: Path, raw: bytes, *, store: Store) -> FileOutcome:
    """An operator loads a préétabli CNSS issued (never from a drop box): stored and checked
    like any file, but no acknowledgement is written and the operator's file stays put."""
    received = Received(
        name=dropbox.printable(path.name),
        box="",
        where=dropbox.printable(str(path)),
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        received_at=dt.datetime.now(dt.UTC),
        receipt_id=None,
        depositor=None,
    )
    return _judge_and_store(received, raw, store=store, locations=NOWHERE)


def _judge_and_store(
    received: Received, raw: bytes | None, *, store: Store, locations: Locations
) -> FileOutcome:
    original = store.judgement_of(received.sha256)
    if original is not None and _may_know_of(received.depositor, original):
        return _commit(received, Verdict.duplicate(original), store=store, locations=locations)
    try:
        outcome = _judged(received, raw, store=store, locations=locations)
    except psycopg2.errors.UniqueViolation as error:
        if error.diag.constraint_name != ONE_JUDGEMENT:
            raise
        # Another worker judged the same bytes between our lookup and our insert (ours was
        # rolled back): this file is a duplicate of that one.
        original = store.judgement_of(received.sha256)
        assert original is not None  # the violation says it exists
        return _commit(received, Verdict.duplicate(original), store=store, locations=locations)
    log.info(
        "file %s (%s): %s, %d anomalies",
        outcome.file_id,
        outcome.kind,
        outcome.status,
        outcome.anomaly_count,
    )
    return outcome


def _may_know_of(depositor: Depositor | None, original: FileRow) -> bool:
    """A duplicate's acknowledgement names the original (its file, its time of receipt): only
    a depositor who may declare for that affiliate is told; anyone else's copy is judged, and
    rejected for its depositor."""
    return depositor is None or original.affiliate in depositor.affiliates


def _judged(
    received: Received, raw: bytes | None, *, store: Store, locations: Locations
) -> FileOutcome:
    """Parse, validate, price, store: the declaration or préétabli when accepted, and every
    anomaly (warnings of an accepted file too)."""
    # Larger, or more lines, than any valid declaration: judged on that alone, never parsed.
    refusal = oversized(received.size) if raw is None else too_many_lines(raw)
    if refusal is not None:
        validation = refusal
        return _commit(
            received,
            Verdict.of(validation),
            _anomalies(store, validation),
            store=store,
            locations=locations,
        )
    assert raw is not None
    parsed = parse(raw)
    validation = _validate(parsed, received, store)
    verdict = Verdict.of(validation)
    store_anomalies = _anomalies(store, validation)
    if verdict.status == "rejected":
        return _commit(received, verdict, store_anomalies, store=store, locations=locations)
    if verdict.kind == "preetabli":

        def write(cursor: Cursor, file_id: int) -> Stored:
            roster, lines = Roster.from_parsed(parsed), preetabli_lines(parsed)
            store.insert_preetabli(cursor, file_id=file_id, roster=roster, lines=lines)
            return store_anomalies(cursor, file_id)

        return _commit(received, verdict, write, store=store, locations=locations)
    affiliate, period = validation.affiliate, validation.period
    assert affiliate is not None  # an accepted declaration's header has both
    assert period is not None
    lines, summary = price(parsed, period)

    def write_declaration(cursor: Cursor, file_id: int) -> Stored:
        _, version = store.insert_declaration(
            cursor,
            file_id=file_id,
            receipt_id=received.receipt_id,
            affiliate=affiliate,
            period=period,
            employees=validation.employees,
            entrants=validation.entrants,
            lines=lines,
            summary=summary,
        )
        store_anomalies(cursor, file_id)
        return Stored(version, summary)

    return _commit(received, verdict, write_declaration, store=store, locations=locations)


def _anomalies(store: Store, validation: Validation) -> Callable[[Cursor, int], Stored]:
    def write(cursor: Cursor, file_id: int) -> Stored:
        store.insert_anomalies(cursor, file_id, validation.findings.anomalies)
        return Stored()

    return write


def _validate(parsed: ParsedFile, received: Received, store: Store) -> Validation:
    kind = file_kind(parsed)
    affiliate, period = header(parsed, kind)
    roster = None
    if kind == "declaration" and affiliate is not None and period is not None:
        roster = store.roster(affiliate, period)
    return validate(
        parsed,
        file_name=received.name,
        preetabli=roster,
        depositor=received.depositor,
        today=received.received_at.astimezone(MOROCCO).date(),
        from_declarant=received.receipt_id is not None,
        usable_name=received.usable_name,
    )


def _commit(
    received: Received,
    verdict: Verdict,
    write: Callable[[Cursor, int], Stored] | None = None,
    *,
    store: Store,
    locations: Locations,
) -> FileOutcome:
    """One transaction: the file's row, what `write` adds, and its acknowledgement; then the
    acknowledgement goes out and the input to the archive."""
    with store.transaction() as cursor:
        file_id = store.insert_file(
            cursor,
            receipt_id=received.receipt_id,
            file_name=received.name,
            sha256=received.sha256,
            size_bytes=received.size,
            received_at=received.received_at,
            source_path=received.where,
            depositor=received.depositor.login if received.depositor else None,
            kind=verdict.kind,
            status=verdict.status,
            affiliate=verdict.affiliate,
            period=verdict.period,
            duplicate_of=verdict.original.file_id if verdict.original else None,
            anomaly_count=verdict.findings.total,
            blocking_count=verdict.findings.blocking_total,
            rejected_for_context=verdict.rejected_for_context,
        )
        stored = write(cursor, file_id) if write else Stored()
        ack = AckContent(
            file_id=file_id,
            file_name=received.name,
            sha256=received.sha256,
            size=received.size,
            received_at=received.received_at,
            kind=verdict.kind,
            status=verdict.status,
            affiliate=verdict.affiliate,
            period=verdict.period,
            employees=verdict.employees,
            entrants=verdict.entrants,
            findings=verdict.findings,
            version=stored.version,
            contributions=stored.contributions,
            original=verdict.original,
        )
        row = _destinations(store, cursor, received, ack)
    finish(store, row, locations)
    return FileOutcome.of(ack, row, locations)


def _destinations(store: Store, cursor: Cursor, received: Received, ack: AckContent) -> FileRow:
    """Acknowledgement and archive paths, relative to the outbox and the archive, named by
    the file id and a short sanitised stem: they never collide and always fit."""
    stem, file_id = dropbox.safe_stem(received.name), ack.file_id
    acknowledgement = archive = ""
    if received.receipt_id is not None:
        out_dir = re.sub(r"/in$", "/out", received.box)
        acknowledgement = _join(out_dir, f"{stem}_AR_{file_id:08d}.xml")
        archive = _join(received.box, f"{file_id:08d}_{stem}{_suffix(received.name)}")
    xml = render(ack)
    store.set_destinations(
        cursor, file_id, acknowledgement=acknowledgement, archive=archive, xml=xml
    )
    return FileRow(
        id=file_id,
        receipt_id=received.receipt_id,
        file_name=received.name,
        sha256=received.sha256,
        status=ack.status,  # type: ignore[arg-type]
        kind=ack.kind,  # type: ignore[arg-type]
        received_at=received.received_at,
        source_path=received.where,
        archive_path=archive,
        acknowledgement_path=acknowledgement,
        acknowledgement_xml=xml.decode("utf-8"),
        finished=False,
        affiliate=ack.affiliate,
        period=ack.period,
        anomaly_count=ack.findings.total,
    )


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _suffix(name: str) -> str:
    suffix = Path(name).suffix
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""


def finish(store: Store, row: FileRow, locations: Locations) -> None:
    """Write the acknowledgement, archive the claimed input, answer on the SFTP server (if
    the file came from one), mark the file finished. Idempotent; the caller holds the file's
    receipt lock.

    The input is archived only if it still holds the bytes that were judged. Temporary files
    left by a run killed while writing this acknowledgement are ours and can go."""
    if row.acknowledgement_path:
        acknowledgement = locations.outbox / row.acknowledgement_path
        for leftover in acknowledgement.parent.glob(f".{acknowledgement.name}.*"):
            leftover.unlink(missing_ok=True)
        write_atomically(acknowledgement, row.acknowledgement_xml.encode("utf-8"))
    if row.receipt_id is not None:
        claimed = dropbox.claimed_path(locations.inbox, row.receipt_id)
        if os.path.lexists(claimed):
            if dropbox.sha256_of(claimed) == row.sha256:
                archive = locations.archive / row.archive_path
                archive.parent.mkdir(parents=True, exist_ok=True)
                os.replace(claimed, archive)
            else:  # a writer kept the file open after the claim: keep it aside, not archived
                log.warning("file %s: its bytes changed after judgement; left in place", row.id)
                os.replace(claimed, claimed.with_name(f"{claimed.name}.changed"))
    if locations.server is not None:
        locations.server.answer(row)
    store.mark_finished(row.id)
