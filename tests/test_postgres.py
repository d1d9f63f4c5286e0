"""The embedded PostgreSQL, against real servers: start, reuse, restart, crash, placement."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import psycopg2
import pytest

import cnss_edi
from cnss_edi.postgres import (
    FALLBACK_ROOT,
    LocalPostgres,
    PostgresUnavailable,
    default_data_dir,
    find_bindir,
)

AS_ROOT = os.geteuid() == 0
SERVER_UID = pwd.getpwnam("postgres").pw_uid if AS_ROOT else os.geteuid()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temporary directory the server account can traverse (as root, tmp_path is not)."""
    base = Path(tempfile.mkdtemp(prefix="cnss-edi-test-")).resolve()
    base.chmod(0o711)
    yield base
    shutil.rmtree(base)


@pytest.fixture
def make_pg(open_dir: Path) -> Iterator[Callable[..., LocalPostgres]]:
    """Build clusters that are stopped and deleted after the test, wherever they ended up."""
    made: list[LocalPostgres] = []

    def make(data_dir: Path, *, durable: bool = False) -> LocalPostgres:
        made.append(LocalPostgres(data_dir, durable=durable))
        return made[-1]

    yield make
    for pg in made:
        pg.stop()
        for path in (pg.data_dir, pg.socket_dir):  # may lie outside open_dir
            shutil.rmtree(path, ignore_errors=True)


def query(dsn: str, statement: str) -> list[tuple[Any, ...]]:
    with closing(psycopg2.connect(dsn)) as conn, conn, conn.cursor() as cur:
        cur.execute(statement)
        return cur.fetchall() if cur.description else []


def postmaster_pid(pg: LocalPostgres) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().split()[0])


def test_find_bindir_holds_the_server_programs() -> None:
    assert (find_bindir() / "initdb").is_file()
    assert (find_bindir() / "pg_ctl").is_file()


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CNSS_EDI_HOME", raising=False)
    repo = Path(cnss_edi.__file__).resolve().parent.parent
    assert default_data_dir() == repo / ".cnss-edi" / "postgres"
    monkeypatch.setenv("CNSS_EDI_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "postgres"


def test_url_starts_nothing(open_dir: Path) -> None:
    pg = LocalPostgres(open_dir / "pg")
    assert pg.url() == f"host={open_dir}/pg port=5432 dbname=cnss_edi user=postgres"
    assert not (open_dir / "pg").exists()


def test_start_is_idempotent_and_private(
    open_dir: Path, make_pg: Callable[..., LocalPostgres]
) -> None:
    pg = make_pg(open_dir / "pg")
    dsn = pg.start()
    pid = postmaster_pid(pg)
    assert query(dsn, "SELECT 1") == [(1,)]
    assert query(dsn, "SHOW listen_addresses") == [("",)]  # no TCP at all

    assert pg.start() == dsn
    assert postmaster_pid(pg) == pid  # reused, not restarted
    assert pg.data_dir == pg.socket_dir == open_dir / "pg"
    st = pg.socket_dir.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, SERVER_UID)
    assert (pg.socket_dir / ".s.PGSQL.5432").is_socket()


def test_data_survives_stop_and_kill(open_dir: Path, make_pg: Callable[..., LocalPostgres]) -> None:
    pg = make_pg(open_dir / "pg", durable=True)
    dsn = pg.start()
    query(dsn, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")

    pg.stop()
    pg.stop()  # idempotent
    with pytest.raises(psycopg2.OperationalError):
        query(dsn, "SELECT 1")
    assert pg.start() == dsn
    assert query(dsn, "SELECT n FROM kept") == [(42,)]

    # A killed server leaves postmaster.pid behind (and a zombie until init reaps it).
    os.kill(postmaster_pid(pg), signal.SIGKILL)
    assert pg.start() == dsn
    assert query(dsn, "SELECT n FROM kept") == [(42,)]


def test_start_failure_shows_the_server_log(
    open_dir: Path, make_pg: Callable[..., LocalPostgres]
) -> None:
    pg = make_pg(open_dir / "pg")
    pg.start()
    pg.stop()
    with (pg.data_dir / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = lots\n")
    with pytest.raises(PostgresUnavailable, match="shared_buffers"):
        pg.start()


def test_long_path_puts_the_socket_in_private_tmp_dir(
    open_dir: Path, make_pg: Callable[..., LocalPostgres]
) -> None:
    pg = make_pg(open_dir / ("d" * 60) / ("e" * 60) / "pg")
    dsn = pg.start()
    assert pg.data_dir == open_dir / ("d" * 60) / ("e" * 60) / "pg"
    assert pg.socket_dir.parent == Path("/tmp")
    assert pg.socket_dir.name.startswith("cnss-edi-pg-")
    st = pg.socket_dir.lstat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, SERVER_UID)
    assert query(dsn, "SELECT 1") == [(1,)]


@pytest.mark.skipif(not AS_ROOT, reason="the fallback only exists for root")
def test_root_falls_back_when_postgres_cannot_reach_the_path(
    tmp_path: Path, make_pg: Callable[..., LocalPostgres]
) -> None:
    closed = tmp_path.parent.parent  # /tmp/pytest-of-root: 0700, closed to `postgres`
    mode_before = stat.S_IMODE(closed.stat().st_mode)
    pg = make_pg(tmp_path / "pg")
    dsn = pg.start()
    assert pg.data_dir.parent == FALLBACK_ROOT
    assert query(dsn, "SELECT 1") == [(1,)]
    assert not (tmp_path / "pg").exists()
    assert stat.S_IMODE(closed.stat().st_mode) == mode_before == 0o700  # never widened
    st = FALLBACK_ROOT.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o755, 0)
    pg.stop()
    shutil.rmtree(pg.data_dir)
    with suppress(OSError):  # keep it if real clusters live there
        FALLBACK_ROOT.rmdir()


def test_non_directory_is_refused(open_dir: Path, make_pg: Callable[..., LocalPostgres]) -> None:
    (open_dir / "pg").write_text("not a cluster")
    pg = make_pg(open_dir / "pg")
    with pytest.raises(PostgresUnavailable, match="not a directory"):
        pg.start()
    assert pg.data_dir == open_dir / "pg"


@pytest.mark.parametrize("run", [1, 2])
def test_pg_conn_dsn_is_a_fresh_database(pg_conn_dsn: str, run: int) -> None:
    [(name,)] = query(pg_conn_dsn, "SELECT current_database()")
    assert name.startswith("test_")
    # Both runs create the same table: each gets its own empty database.
    query(pg_conn_dsn, f"CREATE TABLE t (run int); INSERT INTO t VALUES ({run})")
    assert query(pg_conn_dsn, "SELECT run FROM t") == [(run,)]
