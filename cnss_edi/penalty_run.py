"""The daily penalty run: what every employer owes in penalties, as of a day, stored and notified.

For a day D it takes every employer with an accepted declaration and every period from its
first declared one whose deadline has passed by D, and prices them all at once
(transforms.penalty_assessment, over transforms.penalties):
- the contributions due are those of the declaration received last by the end of D (Morocco's
  day), split between the general and the AMO majoration regimes (schemas/penalty_regimes.csv);
- the declaration was made the day the first one was received; a period with none by D is
  missing: no majoration (nothing known to be due), an astreinte on the employees of the
  latest earlier declaration;
- the payments are those made by D.

Only what D knew counts, and nothing is read from earlier runs: computing a day again gives the
same amounts, and one run after months without any gives what a run each month would have
reached. A row goes into `penalty` only where the amounts or rules differ from the latest row
before D (schemas/ddl.sql); the row of a day is never rewritten. Each new row that owes
something carries its notice (cnss_edi.penalty_notice), published in the out/ folder of every
login declaring for the employer; `notified_at` marks it done, so a run that stopped half way
is finished by the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd
import psycopg2.extras

from cnss_edi import notices
from cnss_edi.acknowledgement import MOROCCO
from cnss_edi.penalty_notice import Month, Notice, render
from cnss_edi.process import Locations
from cnss_edi.store import Cursor, Store
from schemas.penalties import penalty_regimes
from transforms.penalty_assessment import COLUMNS, KEYS, assess, cases, changed

log = logging.getLogger(__name__)
RUN_LOCK = "penalty-run"  # one run at a time: two runs of one day would race on its rows


@dataclass(frozen=True)
class Inputs:
    """What the database knew at the end of a day."""

    declarations: pd.DataFrame  # affiliate, period, declaration_id, employees, declared_on,
    #                             due, due_amo: the latest received of each period
    payments: pd.DataFrame  # affiliate, period, amount, paid_on
    previous: pd.DataFrame  # affiliate, period and COMPARED of the latest row before the day


def run(store: Store, day: dt.date, locations: Locations) -> Counter[str]:
    """Compute, store and notify the penalties as of `day`; counts by outcome (employers and
    periods assessed, owing, rows written, notices published). Notices go to each login's out/
    on `locations.server`, or to <outbox>/<login>/out/ without one."""
    with store.lock(RUN_LOCK, wait=True):
        inputs = load(store, day)
        assessed, months = assess(cases(inputs.declarations, day), inputs.payments, as_of=day)
        written = _insert(store, changed(assessed, inputs.previous), months)
        published = publish_pending(store, day, locations)
    done = Counter(
        assessed=len(assessed),
        owing=int((assessed["total"] > 0).sum()),
        written=written,
        published=published,
    )
    log.info("penalties as of %s: %s", day.isoformat(), dict(sorted(done.items())))
    return done


def load(store: Store, day: dt.date) -> Inputs:
    """Declarations received and payments made by the end of `day`, and the latest rows before
    it."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), MOROCCO)
    amo = [branch for branch, regime in penalty_regimes().items() if regime == "amo"]
    with store.transaction() as cursor:  # one snapshot: an import in between is all or nothing
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        declarations = _frame(
            cursor,
            "SELECT DISTINCT ON (d.affiliate, d.period) d.affiliate, d.period,"
            " d.id AS declaration_id, d.employees,"
            " (min(f.received_at) OVER (PARTITION BY d.affiliate, d.period)"
            "  AT TIME ZONE %(zone)s)::date AS declared_on,"
            " d.total_due AS due, coalesce(c.amo, 0) AS due_amo"
            " FROM declaration d JOIN edi_file f ON f.id = d.edi_file_id"
            " LEFT JOIN LATERAL (SELECT sum(employer + employee) AS amo FROM contribution"
            "  WHERE declaration_id = d.id AND branch = ANY(%(amo)s)) c ON true"
            " WHERE f.status = 'accepted' AND f.received_at < %(end)s"
            " ORDER BY d.affiliate, d.period, f.received_at DESC, d.id DESC",
            {"zone": MOROCCO.key, "amo": amo, "end": end},
        )
        payments = _frame(
            cursor,
            "SELECT affiliate, period, amount, paid_on FROM payment WHERE paid_on <= %(day)s",
            {"day": day},
        )
        previous = _frame(
            cursor,
            "SELECT DISTINCT ON (affiliate, period) affiliate, period, months_late,"
            " majoration_general, majoration_amo, astreinte_months, astreinte,"
            " array_to_string(rules, ';') AS rules FROM penalty WHERE computed_on < %(day)s"
            " ORDER BY affiliate, period, computed_on DESC",
            {"day": day},
        )
    return Inputs(
        declarations.astype(
            {"affiliate": "int64", "period": "str", "employees": "int64", "due": "int64"}
            | {"due_amo": "int64", "declared_on": "object"}
        ),
        payments.astype({"affiliate": "int64", "period": "str", "amount": "int64"}),
        previous.astype({"affiliate": "int64", "period": "str", "rules": "str"}),
    )


def _frame(cursor: Cursor, query: str, parameters: dict[str, object]) -> pd.DataFrame:
    """A query's rows as a frame, columns named as selected (dates as datetime.date)."""
    cursor.execute(query, parameters)
    names = [column.name for column in cursor.description or ()]
    return pd.DataFrame(cursor.fetchall(), columns=names)


def _insert(store: Store, new: pd.DataFrame, months: pd.DataFrame) -> int:
    """Write the new rows, each owing one with its notice; a row of that day already written
    stays as it is. Returns how many were written."""
    if new.empty:
        return 0
    detail = dict(list(months.groupby(KEYS))) if len(months) else {}
    rows = []
    records: list[dict[str, Any]] = new.to_dict("records")  # type: ignore[assignment]
    for row in records:
        declaration = row["declaration_id"]
        row["declaration_id"] = None if pd.isna(declaration) else int(declaration)
        row["declared_on"] = None if pd.isna(row["declared_on"]) else row["declared_on"]
        name = xml = None
        if row["total"] > 0:
            notice = notice_of(row, detail.get((row["affiliate"], row["period"])))
            name, xml = notice.name, render(notice).decode("utf-8")
        rules = [rule for rule in row["rules"].split(";") if rule]
        rows.append((*(row[c] for c in COLUMNS if c != "rules"), rules, name, xml))
    names = [c for c in COLUMNS if c != "rules"] + ["rules", "notice_name", "notice_xml"]
    with store.transaction() as cursor:
        psycopg2.extras.execute_values(
            cursor,
            f"INSERT INTO penalty ({', '.join(names)}) VALUES %s"
            " ON CONFLICT (affiliate, period, computed_on) DO NOTHING",
            rows,
            page_size=1000,
        )
        return cursor.rowcount


def notice_of(row: dict[str, Any], months: pd.DataFrame | None) -> Notice:
    """The notice of an assessed row and its months of majoration."""
    records: list[dict[str, Any]] = (
        [] if months is None else months.sort_values("month").to_dict("records")  # type: ignore[assignment]
    )
    detail = tuple(
        Month(
            int(m["month"]),
            m["starts_on"].date(),
            int(m["unpaid_general"]),
            int(m["unpaid_amo"]),
            str(m["rule_general"]),
            int(m["rate_general"]),
            str(m["rule_amo"]),
            int(m["rate_amo"]),
            int(m["majoration_general"]),
            int(m["majoration_amo"]),
        )
        for m in records
    )
    return Notice(
        affiliate=int(row["affiliate"]),
        period=row["period"],
        computed_on=row["computed_on"],
        deadline=row["deadline"],
        late_after=row["late_after"],
        declared_on=row["declared_on"],
        employees=int(row["employees"]),
        due=int(row["due"]),
        paid=int(row["paid"]),
        months_late=int(row["months_late"]),
        majoration_general=int(row["majoration_general"]),
        majoration_amo=int(row["majoration_amo"]),
        astreinte_months=int(row["astreinte_months"]),
        astreinte=int(row["astreinte"]),
        rules=tuple(rule for rule in row["rules"].split(";") if rule),
        months=detail,
    )


@dataclass(frozen=True)
class Owed:
    """A penalty notice of a day, as the command line lists it (amounts in centimes)."""

    affiliate: int
    period: str
    months_late: int
    majoration: int
    astreinte_months: int
    astreinte: int
    total: int
    notice_name: str


def notices_of(store: Store, day: dt.date, *, limit: int = 20) -> tuple[list[Owed], int]:
    """The first `limit` notices computed for `day` (by employer and period), and how many
    there are in all."""
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT affiliate, period, months_late, majoration, astreinte_months, astreinte,"
            " total, notice_name, count(*) OVER () FROM penalty"
            " WHERE computed_on = %s AND notice_name IS NOT NULL"
            " ORDER BY affiliate, period LIMIT %s",
            (day, limit),
        )
        found = cursor.fetchall()
    return [Owed(*row[:-1]) for row in found], found[0][-1] if found else 0


def publish_pending(store: Store, day: dt.date, locations: Locations) -> int:
    """Publish every notice up to `day` not yet published, in the out/ folder of each login
    declaring for its employer (none: nobody to tell, marked done all the same); how many
    copies were written."""
    logins = notices.holders(store)
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT affiliate, period, computed_on, notice_name, notice_xml FROM penalty"
            " WHERE notified_at IS NULL AND notice_name IS NOT NULL AND computed_on <= %s"
            " ORDER BY computed_on, affiliate, period",
            (day,),
        )
        pending: list[tuple[int, str, dt.date, str, str]] = cursor.fetchall()
    written = 0
    for affiliate, period, computed_on, name, xml in pending:
        for account in logins.get(affiliate, []):
            written += notices.publish(locations, account.login, name, xml.encode("utf-8"))
        with store.transaction() as cursor:
            cursor.execute(
                "UPDATE penalty SET notified_at = now() WHERE affiliate = %s AND period = %s"
                " AND computed_on = %s",
                (affiliate, period, computed_on),
            )
    return written
