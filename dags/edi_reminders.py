"""### edi_reminders: employers that have not declared hear about it before the deadline

Every morning (08:00): for the month before the run's day, until its deadline (weekends,
holidays and CNSS's extensions move it, and the reminders with it), every employer a
declarant account declares for and that has no accepted declaration gets a reminder at each
step (5 and 2 days before the deadline, and on the day): a notice file `RAPPEL_…` in each of
its logins' `out/` (SFTP connection `cnss_edi_sftp`, or `CNSS_EDI_OUTBOX`), and an email to
their addresses through the SMTP connection `cnss_edi_smtp`.

Never twice: each reminder is recorded in the transaction that decides to send it, so reruns,
retries and backfills send nothing new. A reminder carries no amount, name or CIN; XCom and
logs carry counts only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(
    schedule="0 8 * * *",
    start_date=datetime(2024, 1, 1),  # catchup=False: where runs may start, not a backfill
    catchup=False,
    max_active_runs=1,
    tags=["cnss-edi", "calendar"],
    doc_md=__doc__,
    default_args={
        "owner": "cnss-edi-ops",
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
)
def edi_reminders() -> None:
    @task
    def remind() -> dict[str, int]:
        """Send the reminders due on the run's day; the counts."""
        from airflow.sdk import get_current_context

        from cnss_edi import reminders, runtime

        context = get_current_context()
        day = runtime.moment(context).date()
        with runtime.store() as store, runtime.locations() as where:
            return dict(reminders.remind(store, day, where, runtime.mailer()))

    remind()


edi_reminders()
