"""### edi_reconcile: the month's reconciliation, once its deadline has passed

On the 25th of each month (05:00), for the month before: for every employer expected (a
préétabli for the period, or a declarant account) and every employer that declared or paid,
**reconcile** the préétabli roster with the declared employees (missing, unexpected, declared
twice), the declared totals with the stored lines, and the contributions due (the current
declaration, after corrections) with the payments received: balanced, underpaid, overpaid or
not declared, and the month by branch. The result is stored (tables `reconciliation*`, view
`reconciliation_current`) and written as CSV, Parquet and a JSON summary into
`CNSS_EDI_REPORTS/<period>/` (default: `<archive>/reconciliation`).

A period whose deadline (extensions included) has not passed is skipped. Re-runnable: each run
replaces the current result and keeps the earlier ones as history, so clear and re-run it when
late payments come in. Trigger it by hand with the parameter `period` (AAAAMM).
Configuration: `CNSS_EDI_DATABASE_URL`. XCom and logs carry counts and totals only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

PERIOD = r"^(\d{4}(0[1-9]|1[0-2]))?$"  # AAAAMM, or empty


@dag(
    schedule="0 5 25 * *",
    start_date=datetime(2024, 1, 1),  # catchup=False: where runs may start, not a backfill
    catchup=False,
    max_active_runs=1,
    tags=["cnss-edi", "calendar", "finance"],
    doc_md=__doc__,
    params={
        "period": Param(
            "", type="string", pattern=PERIOD, description="AAAAMM; empty: the month before"
        )
    },
    default_args={
        "owner": "cnss-edi-finance",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
    },
)
def edi_reconcile() -> None:
    @task
    def choose_period() -> str:
        """The period to reconcile; skipped while its deadline has not passed."""
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowSkipException

        from cnss_edi import runtime
        from cnss_edi.reminders import campaign
        from transforms.deadlines import deadline

        context = get_current_context()
        when = runtime.moment(context)
        period = context["params"].get("period") or campaign(when.date())  # the month before
        due = deadline(period).deadline
        if when.date() <= due:
            raise AirflowSkipException(f"period {period}: its deadline {due} has not passed")
        return period

    @task
    def reconcile(period: str) -> dict[str, int]:
        """Reconcile, store, export; the month's counts and totals."""
        from cnss_edi import runtime
        from cnss_edi.reconcile import export, reconcile_period

        with runtime.store() as store:
            run = reconcile_period(store, period)
        export(run.result, runtime.reports() / period)
        figures = {k: v for k, v in run.result.summary.items() if isinstance(v, int)}
        return {"run": run.id, "current": int(run.current), **figures}

    reconcile(choose_period())


edi_reconcile()
