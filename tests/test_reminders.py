"""Reminders before the deadline (cnss_edi.reminders): the right employers, the right steps,
once each, through a real SMTP server (aiosmtpd) started by the tests."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from cnss_edi import accounts
from cnss_edi.accounts import Account
from cnss_edi.inbox import process_inbox
from cnss_edi.process import Locations
from cnss_edi.reminders import Mailer, campaign, remind, step_due
from cnss_edi.store import Store
from tests.boxes import deliver
from tests.db import query
from tests.mail import Inbox

DUE = dt.date(2026, 12, 10)  # deadline of 202611 (a Thursday, no holiday)


@pytest.mark.parametrize(
    ("day", "step"),
    [
        (dt.date(2026, 12, 4), None),
        (dt.date(2026, 12, 5), 5),
        (dt.date(2026, 12, 7), 5),
        (dt.date(2026, 12, 8), 2),
        (dt.date(2026, 12, 10), 0),
        (dt.date(2026, 12, 11), None),
    ],
)
def test_the_latest_step_reached_is_due(day: dt.date, step: int | None) -> None:
    assert step_due(day, DUE) == step


def test_the_campaign_is_the_month_before() -> None:
    assert [campaign(dt.date(2026, 12, 3)), campaign(dt.date(2027, 1, 31))] == ["202611", "202612"]


@pytest.fixture
def employers(store: Store, places: Locations) -> tuple[int, int, int]:
    """Three employers of 202611: the third declared (accepted), the first two did not; the
    first has its own login and an accountant, who also holds the second."""
    first, second, third = (1234567, 1234575, 1234583)
    deliver(places, store, affiliate=third, period="202611", employees=10)
    assert [o.status for o in process_inbox(places, store=store).outcomes] == ["accepted"]
    accounts.save(store, Account("emp-a", "employer", (first,), emails=("paie@a.ma",)))
    accounts.save(store, Account("cabinet", "accountant", (first, second), emails=("c@k.ma",)))
    accounts.save(store, Account("emp-c", "employer", (third,), emails=("paie@c.ma",)))
    return first, second, third


def test_each_employer_that_did_not_declare_is_reminded_once_per_step(
    store: Store, places: Locations, smtp: tuple[Mailer, Inbox], employers: tuple[int, int, int]
) -> None:
    mailer, inbox = smtp
    first, second, _ = employers

    done = remind(store, dt.date(2026, 12, 5), places, mailer)
    again = remind(store, dt.date(2026, 12, 6), places, mailer)  # same step: a rerun, a day later

    assert done == {"reminded": 2, "notices": 3, "emails": 2}
    assert again == {"already": 2}
    assert sorted((m["To"], m["Subject"]) for m in inbox.messages) == [
        ("c@k.ma", f"CNSS : déclaration 202611 de l'affilié {second:07d} attendue"),
        ("c@k.ma, paie@a.ma", f"CNSS : déclaration 202611 de l'affilié {first:07d} attendue"),
    ]
    notices = sorted(
        p.relative_to(places.outbox).as_posix() for p in places.outbox.rglob("RAPPEL_*")
    )
    assert notices == [
        f"cabinet/out/RAPPEL_{first:07d}_202611_J-5.txt",
        f"cabinet/out/RAPPEL_{second:07d}_202611_J-5.txt",
        f"emp-a/out/RAPPEL_{first:07d}_202611_J-5.txt",
    ]
    body = inbox.messages[0].get_content()
    assert "2026-12-10" in body
    assert "majorations" in body

    assert remind(store, dt.date(2026, 12, 8), places, mailer)["reminded"] == 2  # the J-2 step
    assert remind(store, dt.date(2026, 12, 11), places, mailer) == {}  # the deadline passed
    assert query(store, "SELECT step, count(*) FROM reminder GROUP BY 1 ORDER BY 1") == [
        (2, 2),
        (5, 2),
    ]


def test_a_reminder_that_could_not_be_sent_is_not_recorded(
    store: Store, places: Locations, smtp: tuple[Mailer, Inbox], employers: tuple[int, int, int]
) -> None:
    mailer, inbox = smtp
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = Mailer("127.0.0.1", probe.getsockname()[1], "edi@cnss.example")
    with pytest.raises(ConnectionRefusedError):
        remind(store, dt.date(2026, 12, 5), places, nobody)
    assert query(store, "SELECT count(*) FROM reminder") == [(0,)]

    assert remind(store, dt.date(2026, 12, 5), places, mailer)["reminded"] == 2
    assert len(inbox.messages) == 2


def test_an_extension_moves_the_reminders(store: Store, places: Locations) -> None:
    accounts.save(store, Account("emp-a", "employer", (1234567,)))
    # June 2025: due 10 July, extended to 21 July 2025 (schemas/extensions.csv).
    assert remind(store, dt.date(2025, 7, 8), places, None) == {}
    assert remind(store, dt.date(2025, 7, 16), places, None) == {"reminded": 1, "notices": 1}
    assert remind(store, dt.date(2025, 7, 21), places, None)["reminded"] == 1


def test_the_reminders_command_lists_who_and_when_without_sending(
    pg_conn_dsn: str, store: Store, places: Locations, employers: tuple[int, int, int]
) -> None:
    import json
    import subprocess

    from tests.test_cli import CLI

    first, second, _ = employers
    listed = subprocess.run(
        [CLI, "reminders", "202611", "--json", "--database-url", pg_conn_dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    days = ["2026-12-05", "2026-12-08", "2026-12-10"]
    assert rows == [
        {
            "affiliate": f"{first:07d}",
            "period": "202611",
            "logins": ["cabinet", "emp-a"],
            "days": days,
        },
        {"affiliate": f"{second:07d}", "period": "202611", "logins": ["cabinet"], "days": days},
    ]
    assert query(store, "SELECT count(*) FROM reminder") == [(0,)]
    wrong = subprocess.run([CLI, "reminders", "2026-11"], capture_output=True, text=True)
    assert wrong.returncode == 2
