"""### edi_preetablis: each EDI employer's préétabli for the month, at month end

Every day from the 25th to the end of the month (02:00): for every employer a declarant
account declares for, **write** its préétabli for the month (the employees of its latest
accepted declaration, leavers out, entrants in; children and family allowance from
`schemas/allowances.csv`; control totals), store it as the roster the month's declarations
are checked against, and publish it in the `out/` folder of every login that declares for
it (on the SFTP server of the connection `cnss_edi_sftp`, or in `CNSS_EDI_OUTBOX`).

Idempotent: an employer whose préétabli is stored is only published again where it is
missing, so the daily runs (and retries) write each préétabli once. Trigger it by hand with
the parameter `period` (AAAAMM) to write another month. Configuration: as edi_ingest
(`CNSS_EDI_DATABASE_URL`, `CNSS_EDI_OUTBOX`, `CNSS_EDI_ARCHIVE`, where the préétablis are
kept). XCom and logs carry counts only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

PERIOD = r"^(\d{4}(0[1-9]|1[0-2]))?$"  # AAAAMM, or empty


@dag(
    schedule="0 2 25-31 * *",
    start_date=datetime(2024, 1, 1),  # catchup=False: where runs may start, not a backfill
    catchup=False,
    max_active_runs=1,
    tags=["cnss-edi", "calendar"],
    doc_md=__doc__,
    params={
        "period": Param(
            "", type="string", pattern=PERIOD, description="AAAAMM; empty: the run's month"
        )
    },
    default_args={
        "owner": "cnss-edi-ops",
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
)
def edi_preetablis() -> None:
    @task
    def write() -> dict[str, int]:
        """Write, store and publish the month's préétablis; the counts by outcome."""
        from airflow.sdk import get_current_context

        from cnss_edi import runtime
        from cnss_edi.preetablis import month_end

        context = get_current_context()
        when = runtime.moment(context)
        period = context["params"].get("period") or f"{when.year}{when.month:02d}"
        with runtime.store() as store, runtime.locations() as where:
            return dict(month_end(store, period, where, today=when.date()))

    write()


edi_preetablis()
