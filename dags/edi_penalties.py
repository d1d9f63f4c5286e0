"""### edi_penalties: late penalties, every day, as of the run's day

Every day (04:00 UTC): for every employer with an accepted declaration and every period whose
deadline has passed, **compute** as of the run's day (Morocco's date) the majorations de retard
on the contributions still unpaid (3 % the first month of delay or fraction, then 1 %, or
0.5 % under loi 02.24; AMO 1 % a month) and the astreinte for a late or missing declaration
(50 MAD per employee, at most 5,000 MAD, per month), with the dated rules of `schemas/`. A
deadline CNSS extended without penalties costs nothing to an employer that declared and paid
within it.

A row goes into the `penalty` table only where an employer's penalty changed; each new amount
owed gets a **penalty notice** (XML, `schemas/penalty_notice.xsd`: amounts in centimes, the
rules and their sources, no name, no salary) in the `out/` folder of every login declaring for
the employer (on the SFTP server of the connection `cnss_edi_sftp`, or in `CNSS_EDI_OUTBOX`).

Idempotent: a day computed again writes and publishes nothing new, and a notice a failed run
could not publish goes out with the next one. A run after days without one reaches the same
amounts as daily runs (nothing is read from earlier runs), so catchup is off. Trigger it by
hand with the parameter `day` (YYYY-MM-DD) to compute another day. Configuration: as
edi_ingest (`CNSS_EDI_DATABASE_URL`, `CNSS_EDI_OUTBOX`, `CNSS_EDI_INBOX`). XCom and logs
carry counts only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

DAY = r"^(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))?$"  # YYYY-MM-DD, or empty


@dag(
    schedule="0 4 * * *",
    start_date=datetime(2024, 1, 1),  # catchup=False: where runs may start, not a backfill
    catchup=False,
    max_active_runs=1,
    tags=["cnss-edi", "calendar"],
    doc_md=__doc__,
    params={
        "day": Param("", type="string", pattern=DAY, description="YYYY-MM-DD; empty: the run's day")
    },
    default_args={
        "owner": "cnss-edi-ops",
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
)
def edi_penalties() -> None:
    @task
    def compute() -> dict[str, int]:
        """Compute, store and publish the penalties as of the day; the counts by outcome."""
        from datetime import date

        from airflow.sdk import get_current_context

        from cnss_edi import runtime
        from cnss_edi.acknowledgement import MOROCCO
        from cnss_edi.penalty_run import run

        context = get_current_context()
        asked = context["params"].get("day")
        when = runtime.moment(context)
        day = date.fromisoformat(asked) if asked else when.astimezone(MOROCCO).date()
        with runtime.store() as store, runtime.locations() as where:
            return dict(run(store, day, where))

    compute()


edi_penalties()
