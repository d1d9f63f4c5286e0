"""### edi_quality: the data quality of the month's declarations, and the campaign report

Every morning (06:00), for the campaign's period (the month before the run's day, or the
parameter `period`, AAAAMM):

1. **check_quality** runs the Great Expectations checkpoint on every loaded declaration line
   and contribution of the period (types; days 0–26; salaries ≥ 0; capped ≤ real and ≤ the
   period's ceiling; an insured number once per declaration; known situation codes;
   contributions at the period's rates) and builds the Data Docs.
2. **write_report** (even when the checkpoint broke) writes the campaign page: the share of
   employers declared day by day against the deadline, due and paid by branch, the top
   anomalies, the employers late, not declared or underpaid, and a link to the Data Docs.
3. **quality_gate** **fails** when an expectation failed, and the run with it: its error
   says which expectations, on how many rows — never a value, a name or a CIN. Open the
   Data Docs for the detail.

Both go to `$CNSS_EDI_REPORTS/<period>/` (report_<period>.html, data_docs/index.html).
Configuration: `CNSS_EDI_DATABASE_URL`, `CNSS_EDI_REPORTS` (the folder edi_reconcile writes its
files into; default `<archive>/reconciliation`). XCom carries counts and a path.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

PERIOD = r"^(\d{4}(0[1-9]|1[0-2]))?$"  # AAAAMM, or empty


@dag(
    schedule="0 6 * * *",
    start_date=datetime(2024, 1, 1),  # catchup=False: where runs may start, not a backfill
    catchup=False,
    max_active_runs=1,
    tags=["cnss-edi", "quality", "report"],
    doc_md=__doc__,
    params={
        "period": Param(
            "", type="string", pattern=PERIOD, description="AAAAMM; empty: the month before"
        )
    },
    default_args={
        "owner": "cnss-edi-ops",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
    },
)
def edi_quality() -> None:
    @task
    def period() -> str:
        """The period checked: the parameter, or the campaign of the run's day."""
        from airflow.sdk import get_current_context

        from cnss_edi import runtime
        from cnss_edi.reminders import campaign

        context = get_current_context()
        when = runtime.moment(context)
        return context["params"].get("period") or campaign(when.date())

    @task
    def check_quality(period: str) -> dict[str, object]:
        """Run the checkpoint and build the Data Docs; its verdict, for quality_gate."""
        import logging

        from cnss_edi import runtime
        from cnss_edi.monthly_report import DATA_DOCS
        from cnss_edi.quality import check_period

        with runtime.store() as store:
            result = check_period(store, period, runtime.reports() / period / DATA_DOCS)
        logging.getLogger("cnss_edi.quality").info("%s", result.summary())
        return {"success": result.success, "summary": result.summary(), "rows": result.rows}

    @task(trigger_rule="all_done")
    def write_report(period: str) -> str:
        """Write the campaign page (even when the checkpoint broke); its path."""
        from cnss_edi import runtime
        from cnss_edi.monthly_report import write_report

        with runtime.store() as store:
            return str(write_report(store, period, runtime.reports() / period))

    @task(retries=0)  # bad data stays bad on a retry
    def quality_gate(verdict: dict[str, object]) -> None:
        """Fail, with the summary as the error, when an expectation failed."""
        from cnss_edi.quality import QualityFailed

        if not verdict["success"]:
            raise QualityFailed(str(verdict["summary"]))

    month = period()
    verdict = check_quality(month)
    report = write_report(month)
    verdict >> report >> quality_gate(verdict)


edi_quality()
