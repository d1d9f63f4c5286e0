"""Drop boxes are hostile ground: what an employer leaves there is looked at, never trusted.

Layout: <inbox>/<box>/in/ holds a declarant's uploads (<box> is its login, or an affiliate);
regular files directly in <inbox> form a flat inbox (an operator's). <inbox>/.processing/ is
ours: a complete upload is claimed by renaming it there under its receipt number, out of the
depositor's reach, and only then read. So the bytes judged are the bytes claimed, and a new
upload under the same name is a new file.

Rules: entries are looked at with lstat and opened with O_NOFOLLOW, so no link is followed;
only a regular file with one link is taken (a symlink, FIFO, socket, device, folder or hard
link is refused and reported); a name is only ever used as one path component under a folder
opened by us; a file is taken once it has not changed for `settle` seconds on our clock, and
never while its name says it is still uploading.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROCESSING = ".processing"
# The ingest pipeline's own SFTP login (cnss_edi.sshd): it sees every box, and .processing/.
SERVICE_LOGIN = "cnss-ingest"
# A box is named after its declarant's login, or (before accounts, and for a local inbox) after
# the one affiliate it declares for.
LOGIN = re.compile(r"^[a-z][a-z0-9_-]{2,31}$")
AFFILIATE_BOX = re.compile(r"^\d{7}$")
# Names that SFTP clients give a file while it is still being written (WinSCP, FileZilla, …).
UPLOADING = (".part", ".filepart", ".partial", ".tmp", ".crdownload", ".upload")
NAME_SHOWN = 120  # characters of a file name kept in acknowledgements, logs and summaries
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO must not block the open


@dataclass(frozen=True)
class Candidate:
    """A regular file seen in a box: `name` is the raw name (surrogate-escaped str)."""

    box: str  # "1234567/in", or "" for the flat inbox
    name: str
    size: int
    signature: tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode

    @property
    def where(self) -> str:
        return printable(f"{self.box}/{self.name}" if self.box else self.name)


@dataclass(frozen=True)
class Refused:
    """An entry that is not taken, and why (shown to the operations team)."""

    where: str
    reason: str


@dataclass(frozen=True)
class Survey:
    candidates: list[Candidate]
    refused: list[Refused]
    waiting: int  # uploads in progress


def printable(name: str) -> str:
    r"""A name as it can be shown, logged and put in XML: undecodable bytes and control
    characters become \xNN escapes, and a long name is cut."""
    raw = name.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    text = "".join(
        f"\\x{ord(c):02x}" if unicodedata.category(c) in ("Cc", "Cf", "Cs") else c for c in text
    )
    return text if len(text) <= NAME_SHOWN else text[: NAME_SHOWN - 1] + "…"


def name_is_usable(name: str) -> bool:
    """A name a payroll system can write and read back: valid UTF-8, no control character,
    not longer than a file name may be once the receipt number is added."""
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes: the name was not UTF-8
        return False
    return len(encoded) <= 200 and printable(name) == name


def safe_stem(name: str) -> str:
    """A short ASCII stem to build our own file names from an employer's one."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", printable(Path(name).stem))[:60].strip("_")
    return stem or "fichier"


def is_uploading(name: str) -> bool:
    return name.lower().endswith(UPLOADING) or name.startswith((".", "~"))


@contextmanager
def opened_dir(path: Path | str, *, parent: int | None = None) -> Iterator[int]:
    """A folder opened without following a link (ELOOP/ENOTDIR if it is one)."""
    fd = os.open(path, _OPEN_DIR, dir_fd=parent)
    try:
        yield fd
    finally:
        os.close(fd)


def kind_of(mode: int) -> str:
    for test, label in (
        (stat.S_ISLNK, "lien symbolique"),
        (stat.S_ISDIR, "dossier"),
        (stat.S_ISFIFO, "tube nommé (FIFO)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "périphérique"),
        (stat.S_ISBLK, "périphérique"),
    ):
        if test(mode):
            return label
    return "entrée spéciale"


def _look(fd: int, box: str) -> tuple[list[Candidate], list[Refused], int]:
    """One folder's entries, judged by lstat only: nothing is opened or followed."""
    candidates, refused, waiting = [], [], 0
    for entry in os.scandir(fd):
        name = entry.name
        where = printable(f"{box}/{name}" if box else name)
        if name == PROCESSING and not box:
            continue
        try:
            status = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # taken by another run while we listed
            continue
        if not box and stat.S_ISDIR(status.st_mode):
            continue  # a drop box, surveyed on its own
        if is_uploading(name):
            waiting += 1
        elif not stat.S_ISREG(status.st_mode):
            refused.append(
                Refused(where, f"{kind_of(status.st_mode)} : seuls les fichiers sont pris")
            )
        elif status.st_nlink != 1:
            refused.append(Refused(where, "fichier à liens multiples : déposez une copie"))
        else:
            signature = (status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)
            candidates.append(Candidate(box, name, status.st_size, signature))
    return candidates, refused, waiting


def survey(inbox: Path) -> Survey:
    """Everything in the inbox and its boxes: files to take, entries refused, uploads waiting.

    A box whose folder, or whose `in/`, is not a plain folder is refused whole; a file left
    in <box>/ instead of <box>/in/ is refused with where to put it."""
    candidates: list[Candidate] = []
    refused: list[Refused] = []
    waiting = 0
    with opened_dir(inbox) as root:
        found, lost, pending = _look(root, "")
        candidates += found
        refused += lost
        waiting += pending
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            box = printable(entry.name)
            if not (LOGIN.match(entry.name) or AFFILIATE_BOX.match(entry.name)):
                refused.append(Refused(box, "dossier qui n'est pas une boîte de dépôt"))
                continue
            try:
                with opened_dir(entry.name, parent=root) as box_fd:
                    for misplaced in os.scandir(box_fd):
                        if misplaced.name not in ("in", "out"):
                            refused.append(
                                Refused(
                                    f"{box}/{printable(misplaced.name)}",
                                    f"à déposer dans {box}/in/",
                                )
                            )
                    with opened_dir("in", parent=box_fd) as in_fd:
                        found, lost, pending = _look(in_fd, f"{entry.name}/in")
            except FileNotFoundError:
                continue  # a box without in/ yet: nothing dropped
            except OSError as error:  # ELOOP, ENOTDIR: in/ is a link or a file
                reason = "un lien" if error.errno == errno.ELOOP else error.strerror
                refused.append(Refused(f"{box}/in", f"dossier inutilisable ({reason})"))
                continue
            candidates += found
            refused += lost
            waiting += pending
    return Survey(candidates, refused, waiting)


def settled(inbox: Path, settle: float) -> Survey:
    """Files that stayed unchanged for `settle` seconds on our clock: an upload still being
    written (same name, growing) waits for a later run.

    The inode's change time (ctime) is set by our kernel at every write, rename or attribute
    change, and no client can set it: a file whose ctime is older than `settle` is stable
    now. Only fresher files are looked at twice, `settle` seconds apart."""
    first = survey(inbox)
    now = time.time_ns()
    if settle <= 0 or all(now - c.signature[2] >= settle * 1e9 for c in first.candidates):
        return first
    time.sleep(settle)
    second = survey(inbox)
    before = {(c.box, c.name): c.signature for c in first.candidates}
    stable = [c for c in second.candidates if before.get((c.box, c.name)) == c.signature]
    return Survey(stable, second.refused, second.waiting + len(second.candidates) - len(stable))


def processing_dir(inbox: Path) -> Path:
    path = inbox / PROCESSING
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def claimed_path(inbox: Path, receipt_id: int) -> Path:
    return inbox / PROCESSING / f"{receipt_id:012d}"


def claim(inbox: Path, candidate: Candidate, receipt_id: int) -> bool:
    """Rename the file into .processing/ under its receipt number; False if it is gone.

    The rename is relative to folders opened without following links, and renaming moves
    the entry itself: whatever it became meanwhile, nothing outside the box is touched."""
    processing_dir(inbox)
    with opened_dir(inbox) as root, opened_dir(PROCESSING, parent=root) as target:
        source_dir = Path(candidate.box) if candidate.box else Path(".")
        try:
            with _box_dir(root, source_dir) as source:
                os.rename(
                    candidate.name, f"{receipt_id:012d}", src_dir_fd=source, dst_dir_fd=target
                )
        except FileNotFoundError:
            return False
    return True


@contextmanager
def _box_dir(root: int, relative: Path) -> Iterator[int]:
    if relative == Path("."):
        yield root
        return
    box, inner = relative.parts
    with opened_dir(box, parent=root) as box_fd, opened_dir(inner, parent=box_fd) as fd:
        yield fd


class NotARegularFile(Exception):
    """What was claimed, or named on the command line, is not a regular file."""


def read_regular(path: Path, *, limit: int, follow: bool = False) -> tuple[bytes | None, int]:
    """A regular file's bytes, or (None, size) when it is larger than `limit`: nothing larger
    than a valid declaration is ever read into memory. Never blocks on a FIFO or a device.
    Without `follow` (a claimed file), a link of either kind is refused as well."""
    flags = _OPEN_FILE & ~(os.O_NOFOLLOW if follow else 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP and not follow:  # a link swapped in before the claim
            raise NotARegularFile("lien symbolique") from None
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise NotARegularFile(kind_of(status.st_mode))
        if status.st_nlink != 1 and not follow:  # another name could still rewrite it
            raise NotARegularFile("fichier à liens multiples")
        if status.st_size > limit:
            return None, status.st_size
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as handle:
            raw = handle.read(limit + 1)  # bounded even if the file grows meanwhile
        if len(raw) > limit:
            return None, len(raw)
        return raw, len(raw)
    finally:
        os.close(fd)


def sha256_of(path: Path, *, follow: bool = False) -> str:
    """Hash a file in chunks (memory stays bounded whatever its size); without `follow` (a
    claimed file), never through a link."""
    digest = hashlib.sha256()
    fd = os.open(path, _OPEN_FILE & ~(os.O_NOFOLLOW if follow else 0))
    with os.fdopen(fd, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
