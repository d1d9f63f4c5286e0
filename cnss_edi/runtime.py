"""What a DAG's task needs at run time, read from the worker's environment and Airflow's
connections when the task runs (never when a DAG file is parsed).

- `CNSS_EDI_DATABASE_URL`: the CNSS database;
- `CNSS_EDI_INBOX`, `CNSS_EDI_OUTBOX`, `CNSS_EDI_ARCHIVE` (default: archive/ beside the
  inbox): local boxes, or with an SFTP server the worker's own copies, and the archive;
- `CNSS_EDI_SETTLE`: seconds an upload must stay unchanged (default 2);
- `CNSS_EDI_REPORTS`: one folder per period for the reconciliation files, the monthly report
  and its Data Docs (default: <archive>/reconciliation);
- the Airflow connection `cnss_edi_sftp` (e.g. AIRFLOW_CONN_CNSS_EDI_SFTP): the SFTP server
  holding the boxes, reached as its service login; without it the boxes are local;
- the Airflow connection `cnss_edi_smtp` (e.g. AIRFLOW_CONN_CNSS_EDI_SMTP=
  smtp://user:password@mail.example:587?from=edi%40cnss.ma&starttls=true): where reminders
  are emailed; without it only the notice files go out.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from cnss_edi.process import Locations
from cnss_edi.reminders import Mailer
from cnss_edi.store import Store

SFTP_CONNECTION = "cnss_edi_sftp"
SMTP_CONNECTION = "cnss_edi_smtp"


def database_url() -> str:
    return os.environ["CNSS_EDI_DATABASE_URL"]


@contextmanager
def store() -> Iterator[Store]:
    """The CNSS database, closed on the way out."""
    opened = Store.open(database_url())
    try:
        yield opened
    finally:
        opened.close()


def moment(context: Mapping[str, Any]) -> dt.datetime:
    """When the running DAG run is for: its logical date, or for a run without one (triggered
    by hand) the time it was created for."""
    return context.get("logical_date") or context["dag_run"].run_after


def settle() -> float:
    return float(os.environ.get("CNSS_EDI_SETTLE", "2"))


def reports() -> Path:
    folder = os.environ.get("CNSS_EDI_REPORTS")
    return Path(folder) if folder else local_locations().archive / "reconciliation"


def local_locations() -> Locations:
    inbox = Path(os.environ["CNSS_EDI_INBOX"]).resolve()
    archive = os.environ.get("CNSS_EDI_ARCHIVE") or inbox.parent / "archive"
    return Locations(inbox, Path(os.environ["CNSS_EDI_OUTBOX"]).resolve(), Path(archive))


@contextmanager
def locations() -> Iterator[Locations]:
    """The locations, with a session on the SFTP server of `cnss_edi_sftp` when Airflow has
    that connection (closed on the way out)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    from cnss_edi.remote import ServerAddress, connect

    local = local_locations()
    try:
        found = Connection.get(SFTP_CONNECTION)
    except AirflowNotFoundException:
        yield local
        return
    address = ServerAddress.of(found.host, found.port, found.login, found.extra_dejson)
    with connect(address) as server:
        yield replace(local, server=server)


def mailer() -> Mailer | None:
    """The SMTP server of the connection `cnss_edi_smtp`, or None without one."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        found = Connection.get(SMTP_CONNECTION)
    except AirflowNotFoundException:
        return None
    extra = found.extra_dejson
    return Mailer(
        host=found.host,
        port=found.port or 25,
        sender=extra.get("from") or f"edi@{found.host}",
        login=found.login or "",
        password=found.password or "",
        starttls=str(extra.get("starttls", "")).lower() in ("1", "true", "yes"),
    )
