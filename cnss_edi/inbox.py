"""The inbox as a batch: finish what was interrupted, claim what is complete, judge every
claimed file in order of receipt, by as many workers as asked.

Order: each drop box is one queue, judged in receipt order by whichever worker (of any run)
holds its lock, so a box's corrections supersede one another in the order they arrived. A
flat inbox is split by the affiliate its file names announce (a name that announces none
goes to one shared queue). One entry never stops the others: an internal error on one file
is reported and leaves it claimed for the next run; only a database or disk failure stops
the run.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from cnss_edi import dropbox
from cnss_edi.dropbox import Refused
from cnss_edi.process import FileOutcome, Locations, finish, process_receipt
from cnss_edi.remote import ServerLost
from cnss_edi.store import Receipt, Store, receipt_key
from validators.structure import FILE_NAME

log = logging.getLogger(__name__)
FLAT = "flat:"  # the queues of a flat inbox, named by the affiliate their file names announce
# Failures that mean the run cannot go on: the database, the disk or the SFTP server is gone.
FATAL = (psycopg2.OperationalError, psycopg2.InterfaceError, OSError, ServerLost)


@dataclass
class InboxRun:
    """What one run did: outcomes (in order of receipt), entries refused, uploads left waiting,
    and files an internal error left claimed for the next run."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    waiting: int = 0
    failed: list[str] = field(default_factory=list)


@dataclass
class Claimed:
    """What claiming did: outcomes of interrupted files it finished, entries refused, uploads
    left waiting, and the queues (see queue_of) holding receipts to judge."""

    resumed: list[FileOutcome] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    waiting: int = 0
    queues: list[str] = field(default_factory=list)


def process_inbox(
    locations: Locations,
    *,
    store: Store,
    workers: int = 1,
    settle: float = 0,
    progress: Callable[[int, int], None] | None = None,
) -> InboxRun:
    """Finish interrupted files, claim complete uploads, judge every claimed file.

    `settle`: seconds a file must have stayed unchanged (on our clock) to be taken."""
    claimed = claim_uploads(locations, store=store, settle=settle)
    run = judge_queues(claimed.queues, locations, store=store, workers=workers, progress=progress)
    run.outcomes = claimed.resumed + run.outcomes
    run.refused = claimed.refused + run.refused
    run.waiting = claimed.waiting
    return run


def claim_uploads(locations: Locations, *, store: Store, settle: float = 0) -> Claimed:
    """The first half of a run: finish interrupted files, claim every complete upload (each
    gets a receipt), and name the queues that now hold receipts to judge."""
    resumed = _finish_interrupted(store, locations)
    if locations.server is not None:
        seen = locations.server.settled(settle)
    else:
        seen = dropbox.settled(locations.inbox, settle)
    claimed = Claimed(resumed, list(seen.refused), seen.waiting)
    for candidate in sorted(seen.candidates, key=lambda c: (c.box, c.signature[2], c.name)):
        refusal = _claim(store, locations, candidate)
        if refusal is not None:
            claimed.refused.append(refusal)
    claimed.queues = list(dict.fromkeys(queue_of(r) for r in store.pending_receipts()))
    _log_refused(claimed.refused)
    return claimed


def judge_queues(
    names: list[str],
    locations: Locations,
    *,
    store: Store,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> InboxRun:
    """The second half: judge the pending receipts of the queues named, each queue in order
    of receipt under its lock, on up to `workers` threads (outcomes in order of receipt)."""
    run = InboxRun()
    wanted = set(names)
    total = sum(1 for r in store.pending_receipts() if queue_of(r) in wanted)
    judged = _in_parallel(list(names), store, workers, locations, _Tally(total, progress), run)
    run.outcomes = sorted(judged, key=lambda outcome: outcome.receipt_id or 0)
    _log_refused(run.refused)
    return run


def _log_refused(refused: list[Refused]) -> None:
    """Each entry left in its box, for the operations team (where and why; no content)."""
    for entry in refused:
        log.warning("%s refused: %s", entry.where, entry.reason)


def queue_of(receipt: Receipt) -> str:
    """The queue a receipt waits in: its drop box, or in a flat inbox its name's affiliate."""
    if receipt.box:
        return receipt.box
    match = FILE_NAME.match(receipt.file_name)
    return f"{FLAT}{match.group(1) if match else '*'}"


def _finish_interrupted(store: Store, locations: Locations) -> list[FileOutcome]:
    """Files committed by a run that stopped before answering them."""
    done = []
    for row in store.unfinished_files():
        key = receipt_key(row.receipt_id) if row.receipt_id is not None else f"file:{row.id}"
        with store.lock(key) as mine:
            if mine:  # else a live worker is finishing it right now
                finish(store, row, locations)
                done.append(FileOutcome.resumed_from(row, locations))
    return done


def _claim(store: Store, locations: Locations, candidate: dropbox.Candidate) -> Refused | None:
    """Give the file a receipt and rename it out of its box; its refusal if the box changed."""
    receipt = store.new_receipt(
        candidate.box,
        dropbox.printable(candidate.name),
        candidate.size,
        usable_name=dropbox.name_is_usable(candidate.name),
    )
    refusal = None
    try:
        if locations.server is not None:
            taken = locations.server.claim(candidate, receipt.id)
        else:
            taken = dropbox.claim(locations.inbox, candidate, receipt.id)
    except OSError as error:  # the box changed under us (a folder swapped for a link…)
        taken, refusal = False, Refused(candidate.where, f"inaccessible ({error.strerror})")
    except BaseException:  # the rename may have happened: the receipt stays, and the
        store.unlock(receipt_key(receipt.id))  # next run looks for the file in .processing/
        raise
    if not taken:
        store.drop_receipt(receipt.id)
    store.unlock(receipt_key(receipt.id))
    return refusal


def _judge_queue(
    name: str, store: Store, locations: Locations, tally: _Tally, run: InboxRun
) -> list[FileOutcome]:
    """Judge a queue's pending receipts in order, holding the queue's lock (waiting for it if
    another run has it: that run may be judging earlier receipts of the same box)."""
    outcomes = []
    box = "" if name.startswith(FLAT) else name  # a flat inbox's queues share box ""
    with store.lock(f"queue:{name}", wait=True):
        for receipt in [r for r in store.pending_receipts(box) if queue_of(r) == name]:
            with store.lock(receipt_key(receipt.id)) as mine:
                if not mine:  # being claimed right now: its claimer's run will judge it next
                    break
                outcome = _judge_one(receipt, store, locations, run)
            if outcome is not None:
                outcomes.append(outcome)
            tally.count()
    return outcomes


def _judge_one(
    receipt: Receipt, store: Store, locations: Locations, run: InboxRun
) -> FileOutcome | None:
    if store.file_of_receipt(receipt.id) is not None:
        return None  # judged by another run since we listed
    claimed = dropbox.claimed_path(locations.inbox, receipt.id)
    where = receipt.where
    try:
        if not _at_hand(claimed, receipt.id, locations):  # a claim cut short: still in its box
            store.drop_receipt(receipt.id)
            return None
        return process_receipt(receipt, store=store, locations=locations)
    except dropbox.NotARegularFile as kind:  # swapped between our look and our claim
        if locations.server is not None:
            locations.server.set_aside(receipt.id)
        if os.path.lexists(claimed):
            os.replace(claimed, claimed.with_name(f"{claimed.name}.refused"))
        store.drop_receipt(receipt.id)
        run.refused.append(Refused(where, f"{kind} : seuls les fichiers sont pris"))
    except FATAL:
        raise
    except Exception as error:  # a bug: this file waits, the others go on
        if _database_gone(error, store):
            raise
        log.error("receipt %s: internal error %s", receipt.id, type(error).__name__)
        run.failed.append(where)
    return None


def _at_hand(claimed: Path, receipt_id: int, locations: Locations) -> bool:
    """The claimed file is in <inbox>/.processing/: claimed there, or fetched from the SFTP
    server (again, if the run that fetched it stopped, or ran on another worker)."""
    if os.path.lexists(claimed):
        return True
    if locations.server is None:
        return False
    claimed.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the worker's own folder
    return locations.server.fetch(receipt_id, claimed)


def _database_gone(error: Exception, store: Store) -> bool:
    """A lost server that psycopg2 does not call an OperationalError: libpq reports a server
    gone during a statement or a COPY as a bare DatabaseError without SQLSTATE (every error
    from the server has one), and the connection is not always marked closed yet."""
    bare = type(error) is psycopg2.DatabaseError and error.pgcode is None
    return bare or bool(store.connection.closed)


def _in_parallel(
    names: list[str],
    store: Store,
    workers: int,
    locations: Locations,
    tally: _Tally,
    run: InboxRun,
) -> list[FileOutcome]:
    """Judge queues on up to `workers` threads, each with its own connection: while one
    waits for PostgreSQL to swallow a COPY, another parses the next file."""
    pending: queue.SimpleQueue[str] = queue.SimpleQueue()
    for name in names:
        pending.put(name)

    def worker(own: Store) -> list[FileOutcome]:
        done: list[FileOutcome] = []
        while True:
            try:
                name = pending.get_nowait()
            except queue.Empty:
                return done
            done += _judge_queue(name, own, locations, tally, run)

    if workers <= 1 or len(names) <= 1:
        return worker(store)
    stores = [store] + [store.reopen() for _ in range(min(workers, len(names)) - 1)]
    try:
        with ThreadPoolExecutor(max_workers=len(stores)) as pool:
            return [outcome for part in pool.map(worker, stores) for outcome in part]
    finally:
        for extra in stores[1:]:
            extra.close()


class _Tally:
    """Progress, shared by the worker threads."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.progress = total, 0, progress
        self.lock = threading.Lock()

    def count(self) -> None:
        with self.lock:
            self.done += 1
            if self.progress:
                self.progress(self.done, self.total)
