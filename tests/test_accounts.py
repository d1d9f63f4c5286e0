"""Declarant accounts: the record's checks, the store, the `account` command, and a drop box
judged against the affiliates of the login that holds it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cnss_edi import accounts
from cnss_edi.accounts import Account, AccountError
from cnss_edi.inbox import process_inbox
from cnss_edi.process import load_preetabli
from cnss_edi.sample import write_samples
from tests.db import query
from tests.test_cli import CLI, run

# An ed25519 public key (ssh-keygen output), and another one.
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C7okWi0dh2l9GKJl"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuMY9p+Bnk4vXuXw3bT0Q7FZ1iR9YLR5e2DQSZgE0Ck"


def test_an_account_is_normalised_and_checked():
    group = Account(
        "groupe-x", "group", (1234575, 1234567, 1234567), ("10.1.2.3/16",), (KEY + " me@host",)
    )
    assert group.checked() == Account(
        "groupe-x", "group", (1234567, 1234575), ("10.1.0.0/16",), (KEY,)
    )


@pytest.mark.parametrize(
    ("account", "message"),
    [
        (Account("Bad Login", "employer", (1234567,)), "login"),
        (Account("1234567", "employer", (1234567,)), "login"),  # would pass for a box
        (Account("emp", "boss", (1234567,)), "kind"),
        (Account("emp", "employer", (1234567, 1234575)), "exactly one"),
        (Account("emp", "accountant", ()), "at least one"),
        (Account("emp", "employer", (12345678,)), "7-digit"),
        (Account("emp", "employer", (1234567,), ("not-a-net",)), "network"),
        (Account("emp", "employer", (1234567,), emails=("paie at example.ma",)), "email"),
        (Account("emp", "employer", (1234567,), emails=("a@b.ma>, x@evil.ma",)), "email"),
        (Account("emp", "employer", (1234567,), (), ("ssh-ed25519 !!!",)), "base64"),
        (Account("emp", "employer", (1234567,), (), ("ssh-dss AAAA",)), "expected one of"),
        (Account("emp", "employer", (1234567,), (), ("ssh-rsa " + KEY.split()[1],)), "type"),
    ],
)
def test_an_account_that_cannot_be_provisioned_says_why(account, message):
    with pytest.raises(AccountError, match=message):
        account.checked()


def test_saving_twice_changes_nothing_and_keys_rotate(store):
    account = Account("cabinet-y", "accountant", (1234567, 1234575), (), (KEY,))
    accounts.save(store, account)
    accounts.save(store, account)
    assert accounts.every(store) == [account]

    both = accounts.save(store, accounts.with_key(account, OTHER, present=True))
    assert both.public_keys == (KEY, OTHER)  # the old key still works while the new one comes
    rotated = accounts.save(store, accounts.with_key(both, KEY, present=False))
    assert accounts.find(store, "cabinet-y") == rotated
    assert rotated.public_keys == (OTHER,)
    assert accounts.remove(store, "cabinet-y")
    assert accounts.find(store, "cabinet-y") is None


def test_the_account_command(tmp_path: Path, pg_conn_dsn: str) -> None:
    key = tmp_path / "id.pub"
    key.write_text(KEY + " paie@example\n")
    db = ("--database-url", pg_conn_dsn)
    added = run(
        "account",
        "add",
        "groupe-z",
        "--kind",
        "group",
        "--affiliate",
        "1234567",
        "--affiliate",
        "1234575",
        "--key",
        str(key),
        "--allow-from",
        "192.0.2.0/24",
        "--email",
        "paie@groupe-z.ma",
        *db,
        check_code=0,
    )
    assert added.stdout.strip() == (
        "groupe-z (group): 1234567, 1234575; from 192.0.2.0/24; 1 key(s)"
    )
    listed = run("account", "list", "--json", *db, check_code=0)
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [
        {
            "login": "groupe-z",
            "kind": "group",
            "affiliates": ["1234567", "1234575"],
            "allow_from": ["192.0.2.0/24"],
            "keys": 1,
            "emails": ["paie@groupe-z.ma"],
        }
    ]
    wrong = run("account", "add", "emp", "--affiliate", "1234567", "--affiliate", "1234575", *db)
    assert (wrong.returncode, "exactly one" in wrong.stderr) == (2, True)
    missing = run("account", "remove-key", "nobody", "--key", str(key), *db)
    assert (missing.returncode, "no account 'nobody'" in missing.stderr) == (2, True)
    run("account", "remove-key", "groupe-z", "--key", str(key), *db, check_code=0)
    run("account", "remove", "groupe-z", *db, check_code=0)
    assert run("account", "list", *db, check_code=0).stdout == ""
    service = run("account", "service", "--key", str(key), *db)
    assert (service.returncode, "needs --sftp-root" in service.stderr) == (2, True)


def test_a_box_declares_for_its_logins_affiliates_only(store, places):
    samples = places.inbox.parent / "samples"
    paths = write_samples(samples, affiliate=1234567, period="202610", employees=5, employers=3)
    for path in paths:
        if path.name.startswith("AFFEBDS_"):
            load_preetabli(path, path.read_bytes(), store=store)
    accounts.save(store, Account("cabinet-y", "accountant", (1234567, 1234575)))
    box = places.inbox / "cabinet-y" / "in"
    box.mkdir(parents=True)
    for path in paths:
        if path.name.startswith("DS_"):
            shutil.copy(path, box)  # its two clients, and an employer it does not serve
    (places.inbox / "nobody" / "in").mkdir(parents=True)
    shutil.copy(samples / "DS_1234567_202610.txt", places.inbox / "nobody" / "in" / "x.txt")

    outcomes = {o.where: o for o in process_inbox(places, store=store).outcomes}

    assert {where: o.status for where, o in outcomes.items()} == {
        "cabinet-y/in/DS_1234567_202610.txt": "accepted",
        "cabinet-y/in/DS_1234575_202610.txt": "accepted",
        "cabinet-y/in/DS_1234583_202610.txt": "rejected",
        # A box nobody holds declares for no one; and bytes accepted from another login are
        # not called a duplicate there (its acknowledgement would name the other's file).
        "nobody/in/x.txt": "rejected",
    }
    refused = outcomes["cabinet-y/in/DS_1234583_202610.txt"]
    assert [a.code for a in refused.anomalies] == ["COMPTE_DEPOSANT"]
    assert "cabinet-y" in refused.anomalies[0].message
    assert refused.acknowledgement.parent == places.outbox / "cabinet-y" / "out"
    rows = query(
        store,
        "SELECT depositor, count(*) FROM edi_file WHERE depositor IS NOT NULL"
        " GROUP BY depositor ORDER BY depositor",
    )
    assert rows == [("cabinet-y", 3), ("nobody", 1)]


def test_account_help_is_there():
    result = subprocess.run([CLI, "account", "add", "--help"], capture_output=True, text=True)
    assert "--affiliate N" in result.stdout
