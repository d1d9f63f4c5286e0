"""Alerts the operations team sees: called by Airflow when a run of edi_ingest is late.

Imported when the DAG file is parsed (Airflow checks a deadline callback's path then), so this
module needs the standard library only. The alert is an ERROR line in the triggerer's log and,
when `CNSS_EDI_OPS_EMAIL` names an address and the connection `cnss_edi_smtp` exists, an email.
It names the run and how long files have been waiting; never a file's content.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)


async def ingest_late(context: dict[str, Any], *, minutes: int) -> str:
    """An edi_ingest run is still not finished `minutes` after it was queued: uploads are
    waiting longer than that for their acknowledgement. Returns the alert's text."""
    run = context.get("dag_run")
    run_id = getattr(run, "run_id", None) or "?"
    text = (
        f"edi_ingest: run {run_id} not finished {minutes} minutes after it was queued; "
        "declarations are waiting for their acknowledgement (check the claim and judge tasks)"
    )
    log.error("%s", text)
    address = os.environ.get("CNSS_EDI_OPS_EMAIL")
    if address:
        _email(address, text)
    return text


def _email(address: str, text: str) -> None:
    from email.message import EmailMessage

    from cnss_edi import runtime

    mailer = runtime.mailer()
    if mailer is None:
        log.warning("alert not emailed: no connection %s", runtime.SMTP_CONNECTION)
        return
    message = EmailMessage()
    message["From"], message["To"] = mailer.sender, address
    message["Subject"] = "CNSS EDI : traitement des dépôts en retard"
    message.set_content(text)
    mailer.send(message)
