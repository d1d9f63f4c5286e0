"""The inbox as a batch: which files are complete, in which order, by how many workers.

Drop boxes are <inbox>/<affiliate>/in/ (their acknowledgements go to
<outbox>/<affiliate>/out/); a flat inbox works too.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import queue
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cnss_edi.process import FileOutcome, Locations, account_of, finish, process_file
from cnss_edi.store import Store
from validators.structure import FILE_NAME

log = logging.getLogger(__name__)
# Names that SFTP clients give a file while it is still being written (WinSCP, FileZilla, …).
UPLOADING = {".part", ".filepart", ".partial", ".tmp", ".crdownload", ".upload"}


def complete_files(
    inbox: Path, *, min_age_seconds: float = 0, now: float | None = None
) -> list[Path]:
    """Files ready to process, in the inbox or in <affiliate>/in/.

    Every file counts, whatever its name (a wrongly named file still deserves an answer),
    except what an upload in progress looks like: hidden names, the temporary suffixes of
    SFTP clients, and files modified in the last `min_age_seconds`. Préétablis come first so
    that declarations are checked against them."""
    now = now if now is not None else dt.datetime.now().timestamp()
    ready = []
    for path in [*inbox.glob("*"), *inbox.glob("*/in/*")]:
        if path.suffix.lower() in UPLOADING or path.name.startswith((".", "~")):
            continue
        try:
            status = path.stat()
        except FileNotFoundError:  # taken by another run while we listed
            continue
        if stat.S_ISREG(status.st_mode) and now - status.st_mtime >= min_age_seconds:
            ready.append((not _is_preetabli(path), status.st_mtime, str(path), path))
    return [path for *_, path in sorted(ready)]


def _is_preetabli(path: Path) -> bool:
    return path.name.upper().startswith("AFFEBDS")


def process_inbox(
    locations: Locations,
    *,
    store: Store,
    workers: int = 1,
    min_age_seconds: float = 0,
    progress: Callable[[int, int], None] | None = None,
    unreadable: list[Path] | None = None,
) -> list[FileOutcome]:
    """Finish what an interrupted run left, then process every complete file.

    Préétablis go first, then declarations, by up to `workers` threads with a database
    connection each: while one thread waits for PostgreSQL to swallow a COPY, another parses
    the next file. One employer's files stay in one thread, in arrival order, so that their
    versions follow it. A file that cannot be read is left in the inbox and appended to
    `unreadable`.
    """
    for row in store.unfinished_files():  # an earlier run stopped between commit and finish
        with store.path_lock(row.source_path) as mine:
            if mine:  # else a live worker is finishing it right now
                finish(store, row)
    files = complete_files(locations.inbox, min_age_seconds=min_age_seconds)
    tally = _Tally(len(files), progress, unreadable)
    run = functools.partial(_process_all, locations=locations, tally=tally)
    preetablis = [p for p in files if _is_preetabli(p)]
    declarations = [p for p in files if not _is_preetabli(p)]
    outcomes = []
    for batch in (preetablis, declarations):  # declarations are checked against préétablis
        by_employer: dict[object, list[Path]] = {}
        for path in batch:
            by_employer.setdefault(_employer_of(path, locations.inbox), []).append(path)
        done = _in_parallel(list(by_employer.values()), run, store, workers)
        outcomes += sorted(done, key=lambda outcome: outcome.file_id)
    return outcomes


def _in_parallel(
    groups: list[list[Path]],
    run: Callable[[list[Path], Store], list[FileOutcome]],
    store: Store,
    workers: int,
) -> list[FileOutcome]:
    """Run groups of files on up to `workers` threads, each with its own connection."""
    if workers <= 1 or len(groups) <= 1:
        return [outcome for group in groups for outcome in run(group, store)]
    pending: queue.SimpleQueue[list[Path]] = queue.SimpleQueue()
    for group in groups:
        pending.put(group)

    def worker(own: Store) -> list[FileOutcome]:
        done = []
        while True:
            try:
                done += run(pending.get_nowait(), own)
            except queue.Empty:
                return done

    stores = [store] + [store.reopen() for _ in range(min(workers, len(groups)) - 1)]
    try:
        with ThreadPoolExecutor(max_workers=len(stores)) as pool:
            return [outcome for part in pool.map(worker, stores) for outcome in part]
    finally:
        for extra in stores[1:]:
            extra.close()


def _employer_of(path: Path, inbox: Path) -> object:
    """The drop box's affiliate, else the one in the file name, else the file itself."""
    account = account_of(path, inbox)
    match = FILE_NAME.match(path.name)
    return account or (match and int(match.group(1))) or path


class _Tally:
    """Progress and unreadable files, shared by the worker threads."""

    def __init__(self, total: int, progress: Callable | None, unreadable: list | None) -> None:
        self.total, self.done, self.progress, self.unreadable = total, 0, progress, unreadable
        self.lock = threading.Lock()

    def count(self, path: Path, *, readable: bool = True) -> None:
        with self.lock:
            self.done += 1
            if not readable and self.unreadable is not None:
                self.unreadable.append(path)
            if self.progress:
                self.progress(self.done, self.total)


def _process_all(
    paths: list[Path], store: Store, *, locations: Locations, tally: _Tally
) -> list[FileOutcome]:
    outcomes = []
    for path in paths:
        try:
            outcome = process_file(path, store=store, locations=locations)
        except FileNotFoundError:
            outcome = None
        except (PermissionError, IsADirectoryError) as error:
            # Left in place, to be retried: the drop box's permissions need fixing.
            log.warning("%s cannot be read: %s", path.name, error.strerror)
            tally.count(path, readable=False)
            continue
        if outcome is None:
            log.info("%s was taken by another run", path.name)
        else:
            outcomes.append(outcome)
        tally.count(path)
    return outcomes
