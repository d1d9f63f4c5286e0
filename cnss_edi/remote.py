"""The drop boxes on the SFTP server, as the ingest pipeline's service login sees them.

The service login is chrooted at the boxes' root (cnss_edi.sshd): /<login>/in/ holds uploads,
/<login>/out/ acknowledgements, /.processing/ claimed files, which no declarant can see. The
rules of a local inbox (cnss_edi.dropbox) hold over the wire:
- entries are judged by the attributes the server reads with lstat: only regular files that
  the service may read are taken, anything else is refused and left where it is;
- names are read as bytes, so a name that is not UTF-8 is shown escaped and blocks nothing;
- a file is taken once its size and mtime stayed the same for `settle` seconds on our clock
  (SFTP shows no ctime, and a client can set mtime: only its changing counts);
- a claim is one rename on the server (posix-rename), so two runs never take the same file;
- the claimed file is fetched into the local inbox's .processing/ (bounded memory, written
  whole or not at all) and judged there by the foundation;
- its acknowledgement is written to /<login>/out/ as .part, then renamed, and only then is
  the claimed file deleted from the server (cnss_edi.process.finish).
A lost connection raises ServerLost: the run stops, and the next run resumes from the ledger.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import paramiko
from paramiko.sftp import CMD_CLOSE, CMD_NAME, CMD_OPENDIR, CMD_READDIR

from cnss_edi.dropbox import (
    AFFILIATE_BOX,
    LOGIN,
    PROCESSING,
    Candidate,
    NotARegularFile,
    Refused,
    Survey,
    is_uploading,
    kind_of,
    printable,
)

if TYPE_CHECKING:
    from cnss_edi.store import FileRow

T = TypeVar("T")
CHUNK = 1 << 20  # bytes per read while fetching: memory stays bounded whatever the size
PREFETCH = 64  # read requests in flight (32 KiB each): fast, and at most 2 MiB waiting
TIMEOUT = 30.0  # seconds for the connection, the key exchange and each request


class ServerLost(RuntimeError):
    """The SFTP connection is gone (or never came up): the run stops here."""


@dataclass(frozen=True)
class ServerAddress:
    """How the service reaches the SFTP server. `host_key` is the server's public host key
    ("type base64"): a server showing any other key is refused before we authenticate."""

    host: str
    port: int
    login: str
    key_file: Path
    host_key: str

    @classmethod
    def of(cls, host: str, port: int | None, login: str, extra: dict[str, str]) -> ServerAddress:
        """From an Airflow connection's fields: its extra has key_file, and host_key (or
        host_key_file, the server's .pub file, e.g. where a container stack shares it)."""
        host_key = extra.get("host_key") or ""
        if not host_key and extra.get("host_key_file"):
            host_key = Path(extra["host_key_file"]).read_text(encoding="ascii")
        if not host or not login or not extra.get("key_file") or not host_key:
            raise ValueError("SFTP connection: host, login, key_file and host_key are required")
        return cls(host, port or 22, login, Path(extra["key_file"]), host_key)


@contextmanager
def connect(address: ServerAddress) -> Iterator[RemoteBoxes]:
    """An authenticated SFTP session as the service login, closed on the way out."""
    transport = paramiko.Transport((address.host, address.port))
    try:
        transport.start_client(timeout=TIMEOUT)
        shown = transport.get_remote_server_key()
        if f"{shown.get_name()} {shown.get_base64()}" != " ".join(address.host_key.split()[:2]):
            raise ServerLost(f"{address.host}:{address.port}: unexpected host key")
        transport.auth_publickey(address.login, paramiko.PKey.from_path(address.key_file))
        client = paramiko.SFTPClient.from_transport(transport)
        if client is None:
            raise ServerLost(f"{address.host}:{address.port}: no SFTP subsystem")
        client.get_channel().settimeout(TIMEOUT)
        with client:
            yield RemoteBoxes(client)
    except (paramiko.SSHException, EOFError) as error:
        raise ServerLost(f"{address.host}:{address.port}: {type(error).__name__}") from None
    finally:
        transport.close()


class RemoteBoxes:
    """The boxes behind one SFTP session (see the module's rules)."""

    def __init__(self, client: paramiko.SFTPClient) -> None:
        self.client = client

    # -- look and claim ---------------------------------------------------------------------

    def survey(self, boxes: set[str] | None = None) -> Survey:
        """Files to take, entries refused and uploads waiting in every box's in/ (or in the
        boxes named). A box and its in/ are root's and the service's: no declarant can swap
        them for a link, so only in/'s entries are judged."""
        candidates: list[Candidate] = []
        refused: list[Refused] = []
        waiting = 0
        for name, attributes in self._listing("/"):
            if name.startswith(".") or (boxes is not None and name not in boxes):
                continue
            if not (stat.S_ISDIR(attributes.st_mode or 0) and _is_box(name)):
                refused.append(Refused(printable(name), "dossier qui n'est pas une boîte de dépôt"))
                continue
            try:
                found, lost, pending = _look(name, self._listing(f"/{name}/in"))
            except FileNotFoundError:
                continue  # a box without in/ yet: nothing dropped
            except PermissionError:
                refused.append(Refused(f"{name}/in", "dossier illisible pour le service"))
                continue
            candidates += found
            refused += lost
            waiting += pending
        return Survey(candidates, refused, waiting)

    def settled(self, settle: float) -> Survey:
        """Files whose size and mtime stayed the same for `settle` seconds on our clock: the
        boxes holding candidates are looked at twice, `settle` seconds apart."""
        first = self.survey()
        if settle <= 0 or not first.candidates:
            return first
        time.sleep(settle)
        second = self.survey({c.box.partition("/")[0] for c in first.candidates})
        before = {(c.box, c.name): c.signature for c in first.candidates}
        stable = [c for c in second.candidates if before.get((c.box, c.name)) == c.signature]
        unstable = len(second.candidates) - len(stable)
        return Survey(stable, first.refused, first.waiting + unstable)

    def claim(self, candidate: Candidate, receipt_id: int) -> bool:
        """Rename the file into /.processing/ under its receipt number; False if it is gone.
        The rename moves the entry itself, whatever it became since we looked."""
        source = _raw(f"/{candidate.box}/{candidate.name}")
        try:
            self._call(self.client.posix_rename, source, self._claimed(receipt_id))
        except FileNotFoundError:
            return False
        return True

    # -- fetch, answer, set aside -----------------------------------------------------------

    def fetch(self, receipt_id: int, target: Path) -> bool:
        """Copy the claimed file to `target`, whole or not at all; False if the server has no
        such claimed file (a claim cut short: the file is still in its box)."""
        remote = self._claimed(receipt_id)
        try:
            status = self._call(self.client.lstat, remote)
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(status.st_mode or 0):
            raise NotARegularFile(kind_of(status.st_mode or 0))
        partial = target.with_name(f".{target.name}.fetch")
        try:
            with self._call(self.client.open, remote, "rb") as source, open(partial, "wb") as out:
                source.prefetch(status.st_size, max_concurrent_requests=PREFETCH)
                for chunk in iter(lambda: source.read(CHUNK), b""):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except PermissionError:  # chmod'ed between our look and our claim
            raise NotARegularFile("fichier illisible") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, target)
        return True

    def answer(self, row: FileRow) -> None:
        """Put the file's acknowledgement in its declarant's out/, then delete the claimed
        file. Idempotent."""
        if row.acknowledgement_path:
            self._put(_raw(f"/{row.acknowledgement_path}"), row.acknowledgement_xml.encode())
        if row.receipt_id is not None:
            with contextlib.suppress(FileNotFoundError):  # deleted by an interrupted run
                self._call(self.client.remove, self._claimed(row.receipt_id))

    def publish(self, folder: str, name: str, raw: bytes) -> int:
        """Put a file CNSS sends (a préétabli, a notice) in `folder` (e.g. "<login>/out");
        0 if the same bytes are already there, else 1."""
        final = _raw(f"/{folder}/{name}")
        with contextlib.suppress(FileNotFoundError):
            if self._call(self.client.lstat, final).st_size == len(raw):
                with self._call(self.client.open, final, "rb") as there:
                    if there.read(len(raw) + 1) == raw:
                        return 0
        self._put(final, raw)
        return 1

    def _put(self, final: bytes, raw: bytes) -> None:
        """Write as <final>.part, then rename: the declarant never reads half a file."""
        with self._call(self.client.open, final + b".part", "wb") as out:
            out.write(raw)
        self._call(self.client.posix_rename, final + b".part", final)

    def set_aside(self, receipt_id: int) -> None:
        """A claimed entry that is not a readable regular file: kept aside for an operator."""
        claimed = self._claimed(receipt_id)
        self._call(self.client.posix_rename, claimed, f"{claimed}.refused")

    # -- the wire ---------------------------------------------------------------------------

    @staticmethod
    def _claimed(receipt_id: int) -> str:
        return f"/{PROCESSING}/{receipt_id:012d}"

    def _call(self, method: Callable[..., T], *arguments: object) -> T:
        """One request; a dropped connection becomes ServerLost (paramiko raises
        SSHException or OSError for it; a refused request is an OSError too). EOFError is
        SFTP's "end of listing", not a lost connection."""
        try:
            return method(*arguments)
        except (paramiko.SSHException, OSError) as error:
            if isinstance(error, OSError) and self._alive():
                raise  # the server refused this request: the caller decides
            raise ServerLost(f"SFTP connection lost ({type(error).__name__})") from None

    def _alive(self) -> bool:
        channel = self.client.get_channel()
        return channel is not None and not channel.closed and channel.get_transport().is_active()

    def _listing(self, path: str) -> list[tuple[str, paramiko.SFTPAttributes]]:
        """A folder's entries with their lstat attributes, names as raw bytes decoded with
        surrogateescape (paramiko's listdir would fail on a name that is not UTF-8)."""
        kind, message = self._call(self.client._request, CMD_OPENDIR, _raw(path))
        handle = message.get_binary()
        entries = []
        try:
            while True:
                try:
                    kind, message = self._call(self.client._request, CMD_READDIR, handle)
                except EOFError:  # the end of the listing (SSH_FX_EOF)
                    break
                if kind != CMD_NAME:
                    raise ServerLost("SFTP server: unexpected reply to READDIR")
                for _ in range(message.get_int()):
                    name = message.get_binary().decode("utf-8", "surrogateescape")
                    message.get_binary()  # the "ls -l" line: unused
                    attributes = paramiko.SFTPAttributes._from_msg(message)
                    if name not in (".", ".."):
                        entries.append((name, attributes))
        finally:
            self._call(self.client._request, CMD_CLOSE, handle)
        return sorted(entries, key=lambda entry: entry[0])


def _look(
    box: str, entries: list[tuple[str, paramiko.SFTPAttributes]]
) -> tuple[list[Candidate], list[Refused], int]:
    """One in/ folder's entries, judged by their lstat attributes."""
    candidates, refused, waiting = [], [], 0
    for name, status in entries:
        where, mode = printable(f"{box}/in/{name}"), status.st_mode or 0
        if is_uploading(name):
            waiting += 1
        elif not stat.S_ISREG(mode):
            refused.append(Refused(where, f"{kind_of(mode)} : seuls les fichiers sont pris"))
        elif not mode & stat.S_IROTH:  # chmod'ed by its declarant: the service cannot read it
            refused.append(Refused(where, "fichier illisible : rendez-le lisible (0644)"))
        else:
            size = status.st_size or 0
            signature = (size, status.st_mtime or 0, status.st_uid or 0, mode)
            candidates.append(Candidate(f"{box}/in", name, size, signature))
    return candidates, refused, waiting


def _is_box(name: str) -> bool:
    return bool(LOGIN.match(name) or AFFILIATE_BOX.match(name))


def _raw(path: str) -> bytes:
    """A path as the bytes the server knows it by (names may not be UTF-8)."""
    return path.encode("utf-8", "surrogateescape")
