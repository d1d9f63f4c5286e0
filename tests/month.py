"""A month to reconcile, built the way it really arrives: préétablis loaded by CNSS, declarations
judged from the employers' boxes (one of them corrected), an account for an employer that never
had a préétabli, and a bank export of payments imported through cnss_edi.payments."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cnss_edi import accounts
from cnss_edi.inbox import process_inbox
from cnss_edi.payments import import_payments
from cnss_edi.process import Locations
from cnss_edi.sample import declaration_from_preetabli
from cnss_edi.store import Store
from tests.boxes import box, deliver
from tests.db import query

PERIOD = "202610"
NEWCOMER = 7654321  # an account, no préétabli, no declaration: expected, not declared


@dataclass(frozen=True)
class Scenario:
    """The affiliate of each case, and what the current declarations owe (centimes)."""

    balanced: int
    underpaid: int
    overpaid: int
    corrected: int  # declared twice: the correction is current, and paid in full
    absent: int  # a préétabli, no declaration, a partial payment on account
    due: dict[int, int]
    first_due: int  # what the corrected employer's first, superseded version owed

    @property
    def affiliates(self) -> list[int]:
        return sorted([*self.due, self.absent, NEWCOMER])


def build(store: Store, places: Locations) -> Scenario:
    dropped = deliver(places, store, period=PERIOD, employees=4, employers=5, entrants=1)
    balanced, underpaid, overpaid, corrected, absent = (
        int(path.name.split("_")[1]) for path in dropped
    )
    dropped[4].unlink()  # `absent` never declares
    accounts.save(store, accounts.Account("newcomer", "employer", (NEWCOMER,)))
    assert not process_inbox(places, store=store).failed
    first_due = _due(store)[corrected]
    preetabli = places.inbox.parent / "cnss" / f"AFFEBDS_{corrected:07d}_{PERIOD}.txt"
    correction = declaration_from_preetabli(preetabli.read_bytes(), entrants=1, seed=99)
    (box(places, corrected) / f"DS_{corrected:07d}_{PERIOD}.txt").write_bytes(correction)
    assert [o.status for o in process_inbox(places, store=store).outcomes] == ["accepted"]
    due = _due(store)
    assert due[corrected] != first_due
    paid = [
        (balanced, due[balanced]),
        (underpaid, due[underpaid] - 12_345),
        (overpaid, due[overpaid] + 500),
        (corrected, due[corrected]),
        (absent, 100_000),
    ]
    import_payments_of(store, paid, first_reference=1)
    return Scenario(balanced, underpaid, overpaid, corrected, absent, due, first_due)


def import_payments_of(store: Store, paid: list[tuple[int, int]], *, first_reference: int) -> None:
    lines = ["affiliate,period,amount_centimes,paid_on,reference"]
    lines += [
        f"{affiliate},{PERIOD},{amount},2026-11-09,VIR-{first_reference + n}"
        for n, (affiliate, amount) in enumerate(paid)
    ]
    raw = ("\n".join(lines) + "\n").encode()
    done = import_payments(store, raw, file_name="banque.csv", today=dt.date(2026, 11, 30))
    assert done.status == "imported", done.errors


def _due(store: Store) -> dict[int, int]:
    rows = query(
        store,
        "SELECT affiliate, total_due FROM declaration WHERE period = %s AND superseded_by IS NULL",
        PERIOD,
    )
    return dict(rows)
