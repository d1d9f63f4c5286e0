"""### edi_ingest: judge the declarations employers dropped in their boxes

Every five minutes: **claim** finishes files an interrupted run left unanswered, takes every
complete upload from `<inbox>/<login>/in/` (one receipt each) and splits the queues (one per
drop box) into at most 100 batches; **judge** (one mapped task per batch) judges each queue in
order of receipt under its lock, writes the acknowledgements to `<outbox>/<login>/out/` and
archives the inputs; **summarise** logs the totals.

**Where the boxes are.** With the Airflow connection `cnss_edi_sftp` (for instance
`AIRFLOW_CONN_CNSS_EDI_SFTP=sftp://cnss-ingest@sftp:22?key_file=/keys/id&host_key=ssh-ed25519+AAAA…`)
the boxes are on that SFTP server, reached as its service login: claim renames each upload
into the server's `.processing/`, judge fetches it into `CNSS_EDI_INBOX/.processing/` and puts
the acknowledgement in the declarant's `out/` on the server (a copy stays in `CNSS_EDI_OUTBOX`).
Without it, `CNSS_EDI_INBOX` is a local inbox of boxes (`<login>/in/`).

Configuration is read when a task runs, from the worker's environment: `CNSS_EDI_DATABASE_URL`,
`CNSS_EDI_INBOX`, `CNSS_EDI_OUTBOX`, `CNSS_EDI_ARCHIVE` (default: `archive/` beside the inbox)
and `CNSS_EDI_SETTLE` (seconds an upload must stay unchanged, default 2).

**Alerts.** A run not finished 30 minutes after it was queued means uploads are waiting that
long: Airflow's deadline alert calls `cnss_edi.alerts.ingest_late` (an ERROR in the triggerer's
log, and an email to `CNSS_EDI_OPS_EMAIL` through `cnss_edi_smtp`). The claim task also warns
about receipts claimed more than 30 minutes ago and still not judged.

A rejected declaration is a normal outcome (its acknowledgement says why). An internal error
fails the judge task, so that operators see it: the file stays claimed and the retry (or the
next run) judges it again. XCom carries counts and file ids only; logs never name a person.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, dag, task

MAX_BATCHES = 100  # mapped judge tasks per run
LATE = timedelta(minutes=30)  # a run this late means uploads wait that long for an answer


@dag(
    schedule=timedelta(minutes=5),
    start_date=datetime(2026, 12, 1),
    catchup=False,
    max_active_runs=1,
    tags=["cnss-edi", "ingest"],
    doc_md=__doc__,
    # Airflow 3's deadline alert (SLAs are gone): the triggerer calls cnss_edi.alerts.
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=LATE,
        callback=AsyncCallback(
            "cnss_edi.alerts.ingest_late", kwargs={"minutes": int(LATE.total_seconds() // 60)}
        ),
    ),
    default_args={
        "owner": "cnss-edi-ops",
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
    },
)
def edi_ingest() -> None:
    @task
    def claim() -> list[list[str]]:
        """Claim the complete uploads; the queues to judge, in at most MAX_BATCHES batches (the
        counts go to the XCom "counts": a mapped task can only expand a task's return value)."""
        import logging

        from airflow.sdk import get_current_context

        from cnss_edi import runtime
        from cnss_edi.inbox import claim_uploads

        with runtime.store() as store:
            with runtime.locations() as where:
                claimed = claim_uploads(where, store=store, settle=runtime.settle())
            oldest = min((r.claimed_at for r in store.pending_receipts()), default=None)
        if oldest is not None and datetime.now(UTC) - oldest > LATE:
            logging.getLogger(__name__).error(
                "receipts claimed since %s are still not judged", oldest.isoformat()
            )
        queues = claimed.queues
        size = -(-len(queues) // MAX_BATCHES)  # ceiling
        counts = {"resumed": len(claimed.resumed), "refused": len(claimed.refused)}
        get_current_context()["ti"].xcom_push("counts", {**counts, "waiting": claimed.waiting})
        return [queues[i : i + size] for i in range(0, len(queues), size or 1)]

    @task
    def judge(batch: list[str]) -> dict[str, Any]:
        """Judge a batch of queues: counts per status and the ids of the files judged."""
        from collections import Counter

        from cnss_edi import runtime
        from cnss_edi.inbox import judge_queues

        with runtime.store() as store, runtime.locations() as where:
            run = judge_queues(batch, where, store=store)
        if run.failed:
            raise RuntimeError(f"{len(run.failed)} file(s) left claimed by an internal error")
        return {
            "statuses": dict(Counter(outcome.status for outcome in run.outcomes)),
            "file_ids": [outcome.file_id for outcome in run.outcomes],
            "refused": len(run.refused),
        }

    @task(trigger_rule="none_failed")
    def summarise(claimed: dict[str, int], results: list[dict[str, Any]]) -> dict[str, int]:
        """Log the totals of the run (counts only)."""
        import logging
        from collections import Counter

        totals: Counter[str] = Counter()
        for index in range(len(results)):  # iterating would ask for one XCom past the end
            result = results[index]
            totals.update(result["statuses"])
            totals["refused"] += result["refused"]
        for key in ("resumed", "refused", "waiting"):
            totals[key] += claimed[key]
        logging.getLogger(__name__).info("edi_ingest totals: %s", dict(sorted(totals.items())))
        return dict(totals)

    claimed = claim()
    summarise(claimed["counts"], judge.expand(batch=claimed))


edi_ingest()
