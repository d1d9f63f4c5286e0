"""`cnss-edi report`: a period's campaign, money and anomalies as one self-contained HTML page.

What the store holds is read per employer (never per employee: the page has no name, CIN or
salary of anyone), turned into figures by transforms.campaign, and drawn by
cnss_edi.report_page. The page links to the Data Docs that `cnss-edi quality` builds beside it.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow.csv as pacsv

from cnss_edi.store import Store
from transforms import campaign
from transforms.deadlines import Deadline, base_date, deadline

LOCAL = ZoneInfo("Africa/Casablanca")  # a day of the campaign is a day in Morocco
DATA_DOCS = Path("data_docs")  # beside the page, where `cnss-edi quality --out DIR` builds them
TOP_ANOMALIES = 10
TEXT_COLUMNS = ("first_declared", "branch", "code", "severity")


@dataclass(frozen=True)
class MonthFigures:
    """Everything the page shows for a period (money in centimes)."""

    period: str
    due: Deadline
    employers: pd.DataFrame  # transforms.campaign.employers
    curve: pd.DataFrame  # transforms.campaign.curve
    branches: pd.DataFrame  # transforms.campaign.by_branch
    anomalies: pd.DataFrame  # code, severity, count, files
    # The summary of the period's current reconciliation, if it ran (reconciliation_summary).
    reconciliation: Mapping[str, object] | None = None


def gather(store: Store, period: str) -> MonthFigures:
    """Read the period's employers, declarations, payments and anomalies; compute the figures."""
    due = deadline(period)
    expected = _frame(
        store,
        "SELECT DISTINCT unnest(affiliates)::bigint AS affiliate FROM declarant UNION"
        " SELECT p.affiliate FROM preetabli p JOIN edi_file f ON f.id = p.edi_file_id"
        " WHERE p.period = %s AND f.status = 'accepted'",
        period,
    )
    declared = _frame(
        store,
        "SELECT d.affiliate, min(f.received_at) AS first_declared,"
        " coalesce(sum(d.total_due) FILTER (WHERE d.superseded_by IS NULL), 0) AS due"
        " FROM declaration d JOIN edi_file f ON f.id = d.edi_file_id"
        " WHERE d.period = %s GROUP BY d.affiliate",
        period,
    )
    declared["first_declared"] = _local_days(declared["first_declared"])
    payments = _frame(
        store,
        "SELECT affiliate, sum(amount) AS paid FROM payment WHERE period = %s GROUP BY 1",
        period,
    )
    contributions = _frame(
        store,
        "SELECT d.affiliate, c.branch, c.employer + c.employee AS due FROM contribution c"
        " JOIN declaration d ON d.id = c.declaration_id"
        " WHERE d.period = %s AND d.superseded_by IS NULL",
        period,
    )
    anomalies = _frame(
        store,
        "SELECT a.code, a.severity, count(*) AS count, count(DISTINCT a.edi_file_id) AS files"
        " FROM anomaly a JOIN edi_file f ON f.id = a.edi_file_id"
        " WHERE f.period = %s AND f.kind = 'declaration'"
        " GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT %s",
        period,
        TOP_ANOMALIES,
    )
    employers = campaign.employers(
        expected["affiliate"].to_numpy("int64"), declared, payments, late_after=due.late_after
    )
    return MonthFigures(
        period,
        due,
        employers,
        campaign.curve(employers, *_campaign_days(employers, due)),
        campaign.by_branch(contributions, employers),
        anomalies,
        reconciliation_summary(store, period),
    )


def reconciliation_summary(store: Store, period: str) -> Mapping[str, object] | None:
    """The summary of the period's current reconciliation (cnss_edi.reconcile stores one per
    run) with `ran_at`, when it was read; None while the period is not reconciled."""
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT summary, ran_at FROM reconciliation_run"
            " WHERE period = %s AND superseded_by IS NULL",
            (period,),
        )
        found = cursor.fetchone()
    return None if found is None else {**found[0], "ran_at": found[1]}


def write_report(store: Store, period: str, out_dir: Path) -> Path:
    """Write `report_<period>.html` into out_dir and return its path."""
    from cnss_edi.report_page import render

    figures = gather(store, period)
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = DATA_DOCS / "index.html"
    page = render(figures, data_docs=docs.as_posix() if (out_dir / docs).is_file() else None)
    path = out_dir / f"report_{period}.html"
    path.write_text(page, encoding="utf-8")
    return path


def _campaign_days(employers: pd.DataFrame, due: Deadline) -> tuple[dt.date, dt.date]:
    """From the 1st of the month after the period (or the first declaration, if earlier) to
    a few days past the deadline (or the last declaration, if later)."""
    start = base_date(due.period).replace(day=1)
    end = max(due.deadline, due.late_after) + dt.timedelta(days=5)
    firsts = employers["first_declared"].dropna()
    if len(firsts):
        start, end = min(start, firsts.min()), max(end, firsts.max() + dt.timedelta(days=1))
    return start, end


def _local_days(moments: pd.Series) -> pd.Series:
    """Timestamps (UTC) as the dates they were in Morocco."""
    if moments.empty:
        return pd.Series([], dtype="object")
    return pd.to_datetime(moments, utc=True).dt.tz_convert(LOCAL).dt.date


def _frame(store: Store, query: str, *parameters: object) -> pd.DataFrame:
    """A query's rows through COPY and Arrow's CSV reader (typed by inference; a query with
    no row gives its columns, empty)."""
    buffer = io.BytesIO()
    with store.transaction() as cursor:
        bound = cursor.mogrify(query, parameters).decode("utf-8")
        cursor.copy_expert(f"COPY ({bound}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    header, _, rest = buffer.getvalue().partition(b"\n")
    if not rest:
        names = header.decode("utf-8").split(",")
        return pd.DataFrame(
            {n: pd.Series(dtype="object" if n in TEXT_COLUMNS else "int64") for n in names}
        )
    buffer.seek(0)
    return pacsv.read_csv(buffer).to_pandas()
