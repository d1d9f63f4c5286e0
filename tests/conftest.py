"""Shared fixtures: one throwaway PostgreSQL for the session, a fresh empty database per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest
from hypothesis import settings
from psycopg2 import sql
from psycopg2.extensions import make_dsn

from cnss_edi.postgres import LocalPostgres
from cnss_edi.process import Locations
from cnss_edi.reminders import Mailer
from cnss_edi.store import Store
from tests import mail, sftp

# In CI, Hypothesis draws the same examples every run: a submission lands or fails on its own
# merits, not on a lucky draw. Locally it keeps exploring (and remembers what it found).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """DSN of database ``cnss_edi`` on a non-durable server that lives for the whole session."""
    # Not tmp_path_factory: as root, its 0700 /tmp/pytest-of-root is closed to the `postgres`
    # account and the cluster would move to /var/lib/cnss-edi. Short path: socket fits too.
    base = Path(tempfile.mkdtemp(prefix="cnss-edi-test-"))
    base.chmod(0o711)  # traversable, not listable; the data directory itself is 0700
    server = LocalPostgres(base / "pg", durable=False)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(base)


@pytest.fixture
def pg_conn_dsn(pg_dsn: str) -> Iterator[str]:
    """DSN of a new empty database for one test, dropped afterwards."""
    name = sql.Identifier(f"test_{uuid.uuid4().hex}")
    _admin(pg_dsn, sql.SQL("CREATE DATABASE {}").format(name))
    try:
        yield make_dsn(pg_dsn, dbname=name.string)
    finally:
        # FORCE: a connection the test left open must not keep the database alive.
        _admin(pg_dsn, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))


def _admin(dsn: str, statement: sql.Composable) -> None:
    with closing(psycopg2.connect(dsn)) as conn:
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(statement)


@pytest.fixture
def store(pg_conn_dsn: str) -> Iterator[Store]:
    """The project's store on a fresh database."""
    store = Store.open(pg_conn_dsn)
    yield store
    store.close()


@pytest.fixture
def places(tmp_path: Path) -> Locations:
    """An empty inbox, and where acknowledgements and processed inputs go."""
    places = Locations(tmp_path / "inbox", tmp_path / "outbox", tmp_path / "archive")
    places.inbox.mkdir()
    return places


@pytest.fixture(scope="session")
def sftp_server() -> Iterator[sftp.SftpServer]:
    """A real OpenSSH sshd on 127.0.0.1 serving chrooted SFTP boxes (tests/sftp.py); its users
    and files are deleted at the end. Skipped when not root or sshd is missing."""
    with sftp.running_server() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[tuple[Mailer, mail.Inbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
    with mail.running_smtp() as (port, inbox):
        yield Mailer("127.0.0.1", port, "edi@cnss.example"), inbox
