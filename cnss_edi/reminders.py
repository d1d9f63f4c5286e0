"""Reminders before the deadline: an employer that has not declared hears about it in time.

On day D, the period reminded is the month before D, until its deadline (transforms.deadlines:
weekends, holidays and CNSS's extensions move it, and the reminders with it). A reminder is due
at each step, in days before the deadline (default 5, 2 and 0: on the day); a run that missed a
day sends the latest step reached, never the ones it skipped. Every employer that a declarant
account declares for and that has no accepted declaration for the period gets, once per step:
a notice file in the out/ folder of each of its logins, and an email to their addresses.

Once only: the reminder's row (affiliate, period, step) is inserted in the transaction that
decides to send it, and the transaction commits only after the notices and the emails went
out. A rerun, a retry or a backfill finds the row and sends nothing; a run that died before
its commit sends again, and both sends are idempotent (same notice file, same Message-ID).
No amount, name or CIN is in a reminder.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from cnss_edi import accounts, notices
from cnss_edi.process import Locations
from cnss_edi.store import Store
from transforms.deadlines import deadline

log = logging.getLogger(__name__)
STEPS = (5, 2, 0)  # days before the deadline


@dataclass(frozen=True)
class Mailer:
    """An SMTP server to hand reminders to (the Airflow connection cnss_edi_smtp)."""

    host: str
    port: int
    sender: str
    login: str = ""
    password: str = ""
    starttls: bool = False

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.login:
                smtp.login(self.login, self.password)
            smtp.send_message(message)


def campaign(day: dt.date) -> str:
    """The period whose declarations are due around `day`: the month before."""
    first = day.replace(day=1) - dt.timedelta(days=1)
    return f"{first.year}{first.month:02d}"


def step_due(day: dt.date, due: dt.date, steps: Sequence[int] = STEPS) -> int | None:
    """The latest step reached on `day` (the fewest days before `due`), or None."""
    reached = [step for step in steps if due - dt.timedelta(days=step) <= day <= due]
    return min(reached) if reached else None


@dataclass(frozen=True)
class Plan:
    """The reminders of a period: its deadline, the days of the steps, who would get them."""

    period: str
    deadline: dt.date
    days: dict[int, dt.date]  # step -> day it is sent
    affiliates: list[int]  # employers a declarant account holds, without a declaration
    logins: dict[int, list[str]]  # employer -> the logins that would receive it


def plan(store: Store, period: str, steps: Sequence[int] = STEPS) -> Plan:
    """Who would be reminded for `period`, and when, as things stand (nothing is sent)."""
    due = deadline(period).deadline
    holders = notices.holders(store)
    pending = _not_declared(store, period, sorted(holders))
    return Plan(
        period,
        due,
        {step: due - dt.timedelta(days=step) for step in sorted(steps, reverse=True)},
        pending,
        {a: [account.login for account in holders[a]] for a in pending},
    )


def remind(
    store: Store,
    day: dt.date,
    locations: Locations,
    mailer: Mailer | None,
    steps: Sequence[int] = STEPS,
) -> Counter[str]:
    """Send the reminders due on `day`; counts (reminded, already, notices, emails)."""
    period = campaign(day)
    due = deadline(period).deadline
    step = step_due(day, due, steps)
    done: Counter[str] = Counter()
    if step is None:
        return done
    logins = notices.holders(store)
    for affiliate in _not_declared(store, period, sorted(logins)):
        with store.transaction() as cursor:
            cursor.execute(
                "INSERT INTO reminder (affiliate, period, step, deadline, sent_on, logins, emails)"
                " VALUES (%s, %s, %s, %s, %s, %s, 0) ON CONFLICT DO NOTHING RETURNING 1",
                (affiliate, period, step, due, day, [a.login for a in logins[affiliate]]),
            )
            if cursor.fetchone() is None:
                done["already"] += 1
                continue
            notice = _notice(affiliate, period, due, step)
            for account in logins[affiliate]:
                done["notices"] += notices.publish(locations, account.login, *notice)
            emails = _email(mailer, logins[affiliate], affiliate, period, due, step)
            cursor.execute(
                "UPDATE reminder SET emails = %s WHERE (affiliate, period, step) = (%s, %s, %s)",
                (emails, affiliate, period, step),
            )
            done["reminded"] += 1
            if emails:
                done["emails"] += emails
    log.info("reminders %s, step J-%d: %s", period, step, dict(sorted(done.items())))
    return done


def _not_declared(store: Store, period: str, affiliates: list[int]) -> list[int]:
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT affiliate FROM declaration WHERE period = %s AND superseded_by IS NULL"
            " AND affiliate = ANY(%s)",
            (period, affiliates),
        )
        declared = {row[0] for row in cursor.fetchall()}
    return [a for a in affiliates if a not in declared]


def _notice(affiliate: int, period: str, due: dt.date, step: int) -> tuple[str, bytes]:
    """(file name, text) of the notice: what is missing and by when, nothing more."""
    when = "aujourd'hui" if step == 0 else f"dans {step} jour(s)"
    text = (
        f"CNSS - rappel de déclaration\r\n"
        f"Affilié : {affiliate:07d}\r\n"
        f"Période : {period}\r\n"
        f"Date limite : {due.isoformat()} ({when})\r\n"
        f"Aucune déclaration acceptée n'a été reçue pour cette période. Déposez-la dans votre\r\n"
        f"dossier in/ avant la date limite ; passé ce délai, des majorations s'appliquent.\r\n"
    )
    return f"RAPPEL_{affiliate:07d}_{period}_J-{step}.txt", text.encode("utf-8")


def _email(
    mailer: Mailer | None,
    to: list[accounts.Account],
    affiliate: int,
    period: str,
    due: dt.date,
    step: int,
) -> int:
    """One message to the accounts' addresses; its Message-ID names the reminder, so that a
    message sent again after a crash is recognised as the same one."""
    addresses = sorted({email for account in to for email in account.emails})
    if mailer is None or not addresses:
        return 0
    message = EmailMessage()
    message["From"] = mailer.sender
    message["To"] = ", ".join(addresses)
    message["Subject"] = f"CNSS : déclaration {period} de l'affilié {affiliate:07d} attendue"
    domain = mailer.sender.rpartition("@")[2] or "cnss-edi"
    message["Message-ID"] = f"<rappel.{affiliate:07d}.{period}.j{step}@{domain}>"
    message.set_content(_notice(affiliate, period, due, step)[1].decode("utf-8"))
    mailer.send(message)
    return 1
