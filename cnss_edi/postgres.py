"""Embedded default PostgreSQL: a private cluster the project starts itself, in a local directory.

No Docker, no system service: initdb and pg_ctl from the distribution (Linux). The server listens
on a unix socket only, in a directory that only the server's account can enter, so ``trust``
authentication reaches nobody else (the tables hold salaries). As root, the server runs as
Debian's ``postgres`` account, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import make_dsn

DBNAME = "cnss_edi"
SUPERUSER = "postgres"  # role name given to initdb -U, whoever runs the server
PORT = 5432  # no TCP: the port only names the socket file, so clusters never clash on it
FALLBACK_ROOT = Path("/var/lib/cnss-edi")
_SOCKET_PATH_MAX = 100  # sun_path holds 107 bytes plus NUL; keep a margin
_INSTALL_HINT = "install them with `sudo apt-get install postgresql` (or `make postgres-bin`)"


class PostgresUnavailable(RuntimeError):
    """The local PostgreSQL cannot be found, created or started; the message says what to do."""


def find_bindir() -> Path:
    """Return the directory holding initdb and pg_ctl: the newest Debian major, else PATH."""
    found = [
        (tuple(int(n) for n in initdb.parts[-3].split(".")), initdb.parent)
        for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if re.fullmatch(r"\d+(\.\d+)?", initdb.parts[-3])
    ]
    if found:
        return max(found)[1]
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise PostgresUnavailable(f"PostgreSQL server programs not found: {_INSTALL_HINT}")


def default_data_dir() -> Path:
    """Return ``$CNSS_EDI_HOME/postgres``, else ``<repo root>/.cnss-edi/postgres``."""
    home = os.environ.get("CNSS_EDI_HOME")
    if home:
        return Path(home) / "postgres"
    return Path(__file__).resolve().parent.parent / ".cnss-edi" / "postgres"


def _short_hash(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:12]


def _c_utf8_locale() -> str:
    """C.UTF-8 when the system has it (sorts like C, but text is UTF-8 aware), else plain C."""
    names = shutil.which("locale") and subprocess.run(["locale", "-a"], capture_output=True).stdout
    return "C.UTF-8" if re.search(rb"^C\.utf-?8$", names or b"", re.I | re.M) else "C"


def _proc_state(pid: str) -> str:
    """State letter of a process from Linux /proc ("Z": zombie), or "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class LocalPostgres:
    """One local cluster: ``start()`` creates and starts it on demand, ``stop()`` stops it."""

    def __init__(self, data_dir: Path, *, durable: bool = True) -> None:
        # resolve(): no symlink in the path, so the ownership checks below see the real directory.
        self.requested_dir = Path(data_dir).resolve()
        self.durable = durable  # False: fsync and full-page writes off, for tests and benchmarks
        self._as_root = os.geteuid() == 0

    @functools.cached_property
    def _owner(self) -> pwd.struct_passwd:
        if not self._as_root:
            return pwd.getpwuid(os.geteuid())
        try:
            return pwd.getpwnam(SUPERUSER)
        except KeyError:
            raise PostgresUnavailable(f"no {SUPERUSER!r} account: {_INSTALL_HINT}") from None

    @functools.cached_property
    def data_dir(self) -> Path:
        """Where the cluster really lives: the requested path or, as root when the server account
        cannot reach it (a repo under 0700 /root), ``/var/lib/cnss-edi/<hash>``. Parent
        permissions are never widened: that would expose the user's home directory."""
        if not self._as_root:
            return self.requested_dir
        nearest = next(p for p in self.requested_dir.parents if p.exists())
        # One check covers every ancestor: path lookup needs search permission on each of them.
        # The data directory itself is not checked: start() hands it to the server account.
        if self._run("test", "-x", str(nearest)).returncode == 0:
            return self.requested_dir
        return FALLBACK_ROOT / _short_hash(self.requested_dir)

    @functools.cached_property
    def socket_dir(self) -> Path:
        """The data directory itself (0700, and PostgreSQL refuses to start if it is not), or a
        private directory in /tmp when the socket path would not fit in a unix socket address."""
        if len(f"{self.data_dir}/.s.PGSQL.{PORT}") <= _SOCKET_PATH_MAX:
            return self.data_dir
        return Path("/tmp") / f"cnss-edi-pg-{_short_hash(self.data_dir)}"

    def url(self) -> str:
        """The libpq DSN of database ``cnss_edi``, for ``psycopg2.connect``; starts nothing."""
        return make_dsn(host=str(self.socket_dir), port=PORT, dbname=DBNAME, user=SUPERUSER)

    def start(self) -> str:
        """Create the cluster if needed, start it unless running, create ``cnss_edi`` if missing.

        Returns the DSN. Safe to call again, also from another process, while the server runs.
        """
        self._prepare_dirs()
        with self._locked():
            if not self._running():
                if not (self.data_dir / "PG_VERSION").exists():
                    self._initdb()
                self._start_server()
            self._ensure_database()
        return self.url()

    def stop(self) -> None:
        """Stop the server, rolling back open transactions; do nothing if it is not running."""
        if not (self.data_dir / "postmaster.pid").exists() or not self._running():
            return  # never started, already stopped, or killed
        done = self._pg_ctl("stop", "-w", "-m", "fast")
        if done.returncode != 0:
            raise PostgresUnavailable(f"pg_ctl stop failed in {self.data_dir}: {done.stderr}")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a command as the server account, quietly. cwd=/ because the caller's directory may
        be closed to that account; PG* variables are dropped so they cannot redirect pg_ctl."""
        prefix = ["runuser", "-u", SUPERUSER, "--"] if self._as_root else []
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return subprocess.run(
            [*prefix, *args], cwd="/", env=env, capture_output=True, text=True, errors="replace"
        )

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run(str(find_bindir() / "pg_ctl"), "-D", str(self.data_dir), *args)

    def _running(self) -> bool:
        if self._pg_ctl("status").returncode != 0:
            return False  # 3: stopped, or a stale pid file that pg_ctl start clears; 4: no cluster
        # A killed postmaster stays a zombie until init reaps it (1-2 s measured here), and a
        # zombie passes pg_ctl's liveness test: wait for the reaping rather than trust the socket.
        try:
            pid = (self.data_dir / "postmaster.pid").read_text().split()[0]
        except (OSError, IndexError):
            return False
        deadline = time.monotonic() + 10
        while (state := _proc_state(pid)) == "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        return state not in ("", "Z")

    def _prepare_dirs(self) -> None:
        missing = [p for p in (self.data_dir.parent, *self.data_dir.parents) if not p.exists()]
        for parent in reversed(missing):
            parent.mkdir(exist_ok=True)
            os.chmod(parent, 0o755)  # a restrictive umask must not lock the server account out
        for private in dict.fromkeys([self.data_dir, self.socket_dir]):
            self._private_dir(private)

    def _private_dir(self, path: Path) -> None:
        """Create or check a 0700 directory owned by the server account. In /tmp anyone may have
        made it first, so a symlink or another user's directory is refused, never reused."""
        uid, gid = self._owner.pw_uid, self._owner.pw_gid
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        st = path.lstat()
        if not stat.S_ISDIR(st.st_mode):
            raise PostgresUnavailable(f"{path} is not a directory; remove it")
        if st.st_uid != uid:
            # Only an empty directory of root's is handed over; another user's could be a trap.
            if not (self._as_root and st.st_uid == 0) or any(path.iterdir()):
                raise PostgresUnavailable(f"{path} belongs to uid {st.st_uid}, not to {uid}")
            os.chown(path, uid, gid)
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(path, 0o700)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # The CLI and parallel Airflow tasks may call start() at once: one initdb/start at a time.
        # Python descriptors are not inherited, so the postmaster never holds this lock.
        fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _initdb(self) -> None:
        args = ["-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"]
        args += [f"--locale={_c_utf8_locale()}", "--no-instructions"]
        # --no-sync only when throwaway: a durable cluster must survive a power cut after initdb.
        args += [] if self.durable else ["--no-sync"]
        done = self._run(str(find_bindir() / "initdb"), *args)
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed for {self.data_dir}:\n{done.stderr.strip()}")

    def _start_server(self) -> None:
        opts = ["-c", "listen_addresses=", "-k", str(self.socket_dir), "-p", str(PORT)]
        for setting in [] if self.durable else ["fsync", "synchronous_commit", "full_page_writes"]:
            opts += ["-c", f"{setting}=off"]
        log = self.data_dir / "server.log"  # in the data dir: always writable by the server
        # pg_ctl hands -o to /bin/sh, hence shlex.join (a path may hold spaces).
        done = self._pg_ctl("start", "-w", "-l", str(log), "-o", shlex.join(opts))
        if done.returncode != 0:
            detail = _tail(log) or done.stderr
            raise PostgresUnavailable(f"PostgreSQL did not start; end of {log}:\n{detail}")

    def _ensure_database(self) -> None:
        try:
            conn = psycopg2.connect(make_dsn(self.url(), dbname="postgres"))
        except psycopg2.OperationalError as error:  # e.g. running, but started with another -k
            raise PostgresUnavailable(f"cannot reach the server: {error}") from error
        conn.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
        with contextlib.closing(conn), conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DBNAME,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DBNAME)))
