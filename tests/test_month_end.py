"""Préétablis at month end (cnss_edi.preetablis): written from each employer's latest accepted
declaration, accepted by the foundation's validator, published once, answerable."""

from __future__ import annotations

import datetime as dt

import numpy as np

from cnss_edi import accounts
from cnss_edi.accounts import Account
from cnss_edi.inbox import process_inbox
from cnss_edi.preetablis import month_end, name_of
from cnss_edi.process import Locations
from cnss_edi.sample import declaration_from_preetabli
from cnss_edi.store import Store
from schemas import allowance_per_child
from tests.boxes import box, deliver
from tests.db import query
from transforms.parse import parse

NEXT = "202611"


def _who_stays(declaration: bytes) -> list[int]:
    """B02 employees but the leavers (SO, DE), and the entrants (B04), by insured number."""
    parsed = parse(declaration)
    b02, b04 = parsed.block("B02"), parsed.block("B04")
    situation = np.array(b02.strings("L_Situation").to_pylist())
    staying = b02.number("N_Num_Assure")[~np.isin(situation, ["SO", "DE"])]
    entrants = b04.number("N_Num_Assure")[b04.valid("N_Num_Assure")]
    return sorted([*staying.tolist(), *entrants.tolist()])


def test_month_end_writes_publishes_once_and_the_answer_is_accepted(
    store: Store, places: Locations
) -> None:
    first, second = deliver(places, store, employees=400, entrants=3, employers=2, seed=4)
    one, two = (int(p.name.split("_")[1]) for p in (first, second))
    accounts.save(store, Account("emp-a", "employer", (one,)))
    accounts.save(store, Account("cabinet", "accountant", (one, two)))
    declared = {one: first.read_bytes(), two: second.read_bytes()}
    assert [o.status for o in process_inbox(places, store=store).outcomes] == ["accepted"] * 2
    assert b"SO" in b"".join(line[135:137] for line in declared[one].splitlines())  # a leaver

    done = month_end(store, NEXT, places, today=dt.date(2026, 11, 27))

    assert done == {"written": 2, "published": 3}
    for affiliate, declaration in declared.items():
        roster = store.roster(affiliate, NEXT)
        assert roster is not None
        employees = roster.employees
        assert employees["N_Num_Assure"].tolist() == _who_stays(declaration)
        allowance = np.concatenate([[0], np.cumsum(allowance_per_child(NEXT))])
        assert (employees["N_AF_A_Payer"] == allowance[employees["N_Enfants"]]).all()
    published = {p.relative_to(places.outbox).as_posix() for p in places.outbox.rglob("AFFEBDS_*")}
    assert published == {
        f"emp-a/out/{name_of(one, NEXT)}",
        f"cabinet/out/{name_of(one, NEXT)}",
        f"cabinet/out/{name_of(two, NEXT)}",
    }

    assert month_end(store, NEXT, places, today=dt.date(2026, 11, 28)) == {"already": 2}
    assert query(store, "SELECT count(*) FROM preetabli WHERE period = %s", NEXT) == [(2,)]

    preetabli = (places.outbox / "emp-a" / "out" / name_of(one, NEXT)).read_bytes()
    answer = declaration_from_preetabli(preetabli, entrants=2, seed=9)
    (box(places, one) / f"DS_{one:07d}_{NEXT}.txt").write_bytes(answer)
    (outcome,) = process_inbox(places, store=store).outcomes
    assert (outcome.period, outcome.status, outcome.anomaly_count) == (NEXT, "accepted", 0)


def test_an_employer_that_never_declared_gets_no_preetabli(store: Store, places: Locations) -> None:
    accounts.save(store, Account("nouveau", "employer", (1234567,)))
    assert month_end(store, NEXT, places) == {"no declaration": 1}
    assert not places.outbox.exists() or not any(places.outbox.rglob("AFFEBDS_*"))


def test_the_sample_command_answers_a_preetabli(tmp_path) -> None:
    import subprocess

    from tests import edi
    from tests.test_cli import CLI

    preetabli = tmp_path / "AFFEBDS_1234567_202610.txt"
    preetabli.write_bytes(edi.preetabli())
    done = subprocess.run(
        [
            CLI,
            "sample",
            "--from-preetabli",
            str(preetabli),
            "--entrants",
            "2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    answer = (tmp_path / "DS_1234567_202610.txt").read_bytes()
    validation = edi.run(answer, preetabli=edi.roster())
    assert (validation.status, validation.findings.total, validation.entrants) == ("accepted", 0, 2)
    missing = subprocess.run(
        [CLI, "sample", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert "--affiliate, --period, --employees" in missing.stderr
