"""cnss_edi.penalty_run against a real PostgreSQL: declarations received through the inbox,
payments through `payments import`, penalties as of a day, stored once, notified once.

June 2025 (202506) was extended to 21 July 2025 without penalties: month 1 of delay is
22 July to 21 August, month 2 begins on 22 August. 202509 is due on Friday 10 October 2025.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree

from cnss_edi import accounts
from cnss_edi.accounts import Account
from cnss_edi.inbox import process_inbox
from cnss_edi.payments import import_payments
from cnss_edi.penalty_notice import NAMESPACE
from cnss_edi.penalty_run import run
from cnss_edi.process import Locations
from cnss_edi.store import Store
from schemas import field, penalty_notice_xsd_path
from tests.boxes import deliver
from tests.db import query

D = dt.date
NS = {"n": NAMESPACE}
JUNE = "202506"


def declare(places: Locations, store: Store, period: str, employers: int, **options) -> list[int]:
    """Accepted declarations of `period` for `employers` employers; their affiliates."""
    dropped = deliver(places, store, period=period, employers=employers, employees=6, **options)
    assert {o.status for o in process_inbox(places, store=store).outcomes} == {"accepted"}
    return [int(path.name.split("_")[1]) for path in dropped]


def received_on(store: Store, affiliate: int, period: str, day: dt.date) -> None:
    """As if the declaration had arrived that day (10:00, Morocco)."""
    with store.transaction() as cursor:
        cursor.execute(
            "UPDATE edi_file SET received_at = %s WHERE affiliate = %s AND period = %s",
            (f"{day.isoformat()} 10:00+01", affiliate, period),
        )


def pay(store: Store, *payments: tuple[int, str, int, dt.date]) -> None:
    lines = ["affiliate,period,amount_centimes,paid_on,reference"] + [
        f"{affiliate},{period},{amount},{day.isoformat()},VIR-{affiliate}-{period}-{day:%Y%m%d}"
        for affiliate, period, amount, day in payments
    ]
    raw = ("\n".join(lines) + "\n").encode()
    done = import_payments(store, raw, file_name="banque.csv", today=D(2026, 12, 2))
    assert done.status == "imported", done.errors


def dues(store: Store, affiliate: int, period: str) -> tuple[int, int]:
    """(general, AMO) contributions of the current declaration, read back from the store."""
    ((total, amo),) = query(
        store,
        "SELECT d.total_due, sum(c.employer + c.employee) FILTER (WHERE c.branch IN"
        " ('amo', 'amo_solidarity')) FROM declaration d JOIN contribution c"
        " ON c.declaration_id = d.id WHERE d.affiliate = %s AND d.period = %s"
        " AND d.superseded_by IS NULL GROUP BY d.total_due",
        affiliate,
        period,
    )
    return total - amo, amo


def percent(amount: int, hundredths: int) -> int:
    """amount × hundredths / 10,000, half up: 300 is 3 %."""
    return (amount * hundredths + 5_000) // 10_000


def rows(store: Store) -> list[tuple]:
    return query(
        store,
        "SELECT affiliate, period, computed_on, months_late, majoration, astreinte_months,"
        " astreinte, total, rules, notice_name, notified_at IS NOT NULL FROM penalty"
        " ORDER BY affiliate, period, computed_on",
    )


def notices(outbox: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(outbox.rglob("PEN_*.xml")):
        found.setdefault(path.parent.parent.name, []).append(path.name)
    return found


@pytest.fixture
def june(store: Store, places: Locations) -> dict[str, int]:
    """Three employers declaring June 2025: one paid late, one on time, one within the
    extension; a login each, and an accountant declaring for the first two."""
    late, on_time, extended = declare(places, store, JUNE, 3)
    for affiliate, day in ((late, D(2025, 7, 8)), (on_time, D(2025, 7, 8))):
        received_on(store, affiliate, JUNE, day)
    received_on(store, extended, JUNE, D(2025, 7, 18))  # after the 10th, within the extension
    general, amo = dues(store, late, JUNE)
    pay(
        store,
        (late, JUNE, general + amo, D(2025, 8, 5)),  # in month 1 of delay
        (on_time, JUNE, sum(dues(store, on_time, JUNE)), D(2025, 7, 9)),
        (extended, JUNE, sum(dues(store, extended, JUNE)), D(2025, 7, 21)),  # the last day
    )
    for login, affiliate in (("emp-late", late), ("emp-ok", on_time), ("emp-ext", extended)):
        accounts.save(store, Account(login, "employer", (affiliate,)))
    accounts.save(store, Account("cabinet", "accountant", (late, on_time)))
    return {"late": late, "on_time": on_time, "extended": extended}


def test_a_late_payer_gets_a_notice_with_its_majoration_the_others_none(
    store: Store, places: Locations, june: dict[str, int]
) -> None:
    late = june["late"]
    general, amo = dues(store, late, JUNE)
    assert min(general, amo) > 0

    done = run(store, D(2025, 8, 11), places)  # 202507 is due that day: not counted yet

    majoration = percent(general, 300) + percent(amo, 100)  # month 1: 3 %, AMO 1 %
    assert done == {"assessed": 3, "owing": 1, "written": 1, "published": 2}
    assert rows(store) == [
        (
            late,
            JUNE,
            D(2025, 8, 11),
            1,
            majoration,
            0,
            0,
            majoration,
            ["MAJ_AMO_65_00", "MAJ_GEN_LOI_02_24"],
            f"PEN_{late:07d}_{JUNE}_20250811.xml",
            True,
        )
    ]
    name = f"PEN_{late:07d}_{JUNE}_20250811.xml"
    assert notices(places.outbox) == {"cabinet": [name], "emp-late": [name]}
    xml = etree.parse(str(places.outbox / "emp-late" / "out" / name))
    assert etree.XMLSchema(etree.parse(str(penalty_notice_xsd_path()))).validate(xml)
    assert xml.findtext("n:total", namespaces=NS) == str(majoration)
    (month,) = xml.findall("n:majorations/n:month", NS)
    assert month.attrib["startsOn"] == "2025-07-22"
    assert (month.attrib["general"], month.attrib["amo"]) == (
        str(percent(general, 300)),
        str(percent(amo, 100)),
    )
    assert xml.find("n:period", NS).attrib == {
        "code": JUNE,
        "deadline": "2025-07-21",
        "lateAfter": "2025-07-21",
    }
    assert xml.find("n:declaration", NS).attrib["status"] == "on_time"
    sources = {r.attrib["id"]: r.attrib["sources"] for r in xml.findall("n:rules/n:rule", NS)}
    assert sources == {"MAJ_AMO_65_00": "S8 S16", "MAJ_GEN_LOI_02_24": "S9 S10 S11"}


def test_a_notice_names_no_one_and_shows_no_salary(
    store: Store, places: Locations, june: dict[str, int]
) -> None:
    run(store, D(2025, 8, 11), places)
    (path,) = (places.outbox / "emp-late" / "out").glob("PEN_*.xml")
    text = path.read_text(encoding="utf-8")
    ((archive_path,),) = query(
        store,
        "SELECT archive_path FROM edi_file WHERE affiliate = %s AND kind = %s",
        june["late"],
        "declaration",
    )
    archived = places.archive / archive_path
    name, salary = field("B02", "L_Nom_Prenom"), field("B02", "N_Salaire_Reel")
    people = set()
    for line in archived.read_bytes().splitlines():
        if line.startswith(b"B02"):
            people.add(line[name.start : name.stop].decode("latin-1").strip())
            people.add(line[salary.start : salary.stop].decode("ascii").lstrip("0"))
    people |= {str(gross) for (gross,) in query(store, "SELECT total_gross FROM declaration")}
    people = {value for value in people if len(value) >= 4}
    assert people
    assert [value for value in people if value in text] == []


def test_running_the_same_day_again_changes_nothing(
    store: Store, places: Locations, june: dict[str, int]
) -> None:
    run(store, D(2025, 8, 11), places)
    before = rows(store), query(store, "SELECT notified_at FROM penalty")
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in places.outbox.rglob("PEN_*")}

    again = run(store, D(2025, 8, 11), places)

    assert again == {"assessed": 3, "owing": 1, "written": 0, "published": 0}
    assert (rows(store), query(store, "SELECT notified_at FROM penalty")) == before
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in places.outbox.rglob("PEN_*")} == (
        files
    )


def test_a_missing_declaration_costs_an_astreinte_on_the_last_ones_employees(
    store: Store, places: Locations
) -> None:
    (affiliate,) = declare(places, store, "202508", 1)
    received_on(store, affiliate, "202508", D(2025, 9, 5))
    pay(store, (affiliate, "202508", sum(dues(store, affiliate, "202508")), D(2025, 9, 5)))
    (employees,) = query(store, "SELECT employees FROM declaration")[0]
    declare(places, store, "202510", 1)
    received_on(store, affiliate, "202510", D(2025, 11, 20))  # after the day computed

    # 202509 is due on 10 October 2025 and never declared: months begin 11 Oct and 11 Nov.
    # 202510, due on 10 November, is not declared yet on the 11th either.
    run(store, D(2025, 11, 11), places)

    fine = min(employees * 50_00, 5_000_00)
    assert [r[:8] for r in rows(store)] == [
        (affiliate, "202509", D(2025, 11, 11), 0, 0, 2, 2 * fine, 2 * fine),
        (affiliate, "202510", D(2025, 11, 11), 0, 0, 1, fine, fine),  # due Monday 10 Nov
    ]
    assert notices(places.outbox) == {}  # no login declares for it: stored, sent to no one


def test_catching_up_over_months_gives_what_running_each_month_gives(
    store: Store, places: Locations
) -> None:
    """Paid in two parts, one of them late; the next period declared and paid late; the
    ones after never: run on the 12th of each month, then only on the last day."""
    (affiliate,) = declare(places, store, "202508", 1)
    received_on(store, affiliate, "202508", D(2025, 9, 5))
    declare(places, store, "202509", 1)
    received_on(store, affiliate, "202509", D(2025, 11, 20))
    general, amo = dues(store, affiliate, "202508")
    pay(
        store,
        (affiliate, "202508", (general + amo) // 2, D(2025, 9, 9)),
        (affiliate, "202508", general + amo - (general + amo) // 2, D(2025, 11, 3)),
        (affiliate, "202509", sum(dues(store, affiliate, "202509")), D(2025, 11, 20)),
    )
    days = [D(2025, month, 12) for month in range(9, 13)] + [D(2026, 1, 12), D(2026, 2, 12)]
    for day in days:
        run(store, day, places)
    latest = _latest(store)
    assert latest["period"].tolist() == ["202508", "202509", "202510", "202511", "202512", "202601"]
    assert latest["total"].gt(0).all()
    assert latest["months"].tolist()[:2] == [2, 2]  # 202508: half unpaid from 11 Sep to 3 Nov
    # 202509, due 10 Oct, declared and paid on 20 Nov: months 1 and 2 begun (11 Oct, 11 Nov).
    general, amo = dues(store, affiliate, "202509")
    majoration = percent(general, 300) + percent(general, 50) + 2 * percent(amo, 100)
    fine = 2 * 6 * 50_00  # 6 employees, 50 MAD each, two months
    assert latest.iloc[1][["maj", "ast_m", "ast", "total"]].tolist() == [
        majoration,
        2,
        fine,
        majoration + fine,
    ]

    with store.transaction() as cursor:
        cursor.execute("DELETE FROM penalty")
    run(store, days[-1], places)

    pd.testing.assert_frame_equal(_latest(store), latest)


def _latest(store: Store) -> pd.DataFrame:
    found = query(
        store,
        "SELECT DISTINCT ON (affiliate, period) affiliate, period, months_late, majoration,"
        " astreinte_months, astreinte, total, array_to_string(rules, ';') FROM penalty"
        " ORDER BY affiliate, period, computed_on DESC",
    )
    return pd.DataFrame(
        found, columns=["affiliate", "period", "months", "maj", "ast_m", "ast", "total", "rules"]
    )


def test_a_run_with_nothing_declared_writes_nothing(store: Store, places: Locations) -> None:
    assert run(store, D(2026, 12, 2), places) == {
        "assessed": 0,
        "owing": 0,
        "written": 0,
        "published": 0,
    }
    assert rows(store) == []


def test_a_notice_that_could_not_be_published_goes_out_with_the_retry(
    store: Store, places: Locations, june: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def server_gone(*args: object) -> int:
        raise ConnectionError("the SFTP server went away")

    monkeypatch.setattr("cnss_edi.notices.publish", server_gone)
    with pytest.raises(ConnectionError):
        run(store, D(2025, 8, 11), places)
    assert [r[-1] for r in rows(store)] == [False]  # stored, not yet notified
    monkeypatch.undo()

    done = run(store, D(2025, 8, 11), places)  # the task's retry, or the next day's run

    assert (done["written"], done["published"]) == (0, 2)
    assert [r[-1] for r in rows(store)] == [True]
    assert notices(places.outbox) == {
        "cabinet": [f"PEN_{june['late']:07d}_{JUNE}_20250811.xml"],
        "emp-late": [f"PEN_{june['late']:07d}_{JUNE}_20250811.xml"],
    }
