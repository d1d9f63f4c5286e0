"""`make bench-ingest`: the SFTP ingest path under load; figures, not a test; one JSON line.

Starts its own PostgreSQL and sshd (as `make e2e` does), then:
1. one big file: a 10,000-employee declaration uploaded over SFTP, then one edi_ingest run
   (dag.test(): no scheduler in the way); upload → acknowledgement readable in out/;
2. a deadline-day peak: 1,000 declarations from 200 logins (accountants with 5 clients
   each), uploaded, then one edi_ingest run: wall time, files per minute (dag.test() runs
   every task in one process: one worker), mapped judge tasks used, the run's peak RSS, and
   nothing lost (one stored judgement and one acknowledgement per file, no box or
   .processing/ entry left).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from cnss_edi.store import Store
from tests.e2e import (
    airflow_environment,
    dag_test,
    enrol,
    own_stack,
    samples,
    upload,
    upload_all,
)
from tests.sftp import Declarant, SftpServer

PERIOD = "202610"


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Time the SFTP ingest path (sshd + edi_ingest) on this machine and print "
        "one JSON line of figures. Takes a few minutes; needs root (it runs its own sshd)."
    )
    parser.add_argument("--big", type=int, default=10_000, help="employees in the big file")
    parser.add_argument("--logins", type=int, default=200, help="declarants on deadline day")
    parser.add_argument("--clients", type=int, default=5, help="files per declarant")
    parser.add_argument("--employees", type=int, default=200, help="employees per peak file")
    options = parser.parse_args()
    with own_stack("cnss-edi-bench-ingest-") as (server, dsn, work):
        figures = {
            "big_file": big_file(server, dsn, work / "big", options.big),
            "deadline_day": deadline_day(server, dsn, work / "peak", options),
        }
    print(json.dumps(figures))
    return 0


def big_file(server: SftpServer, dsn: str, work: Path, employees: int) -> dict[str, object]:
    store = Store.open(dsn)
    try:
        (declaration,) = samples(work, store, employers=1, employees=employees, first=7001234)
        employer = enrol(server, store, "big", "employer", declaration)
        raw = declaration.read_bytes()
        started = time.perf_counter()
        upload(server, employer, declaration.name, raw)
        uploaded = time.perf_counter()
        run, _ = dag_test(airflow_environment(server, dsn, work), reset=True)
        answered = _acknowledgements(server, employer)
        done = time.perf_counter()
        _progress(f"big file: {run['state']}, {len(answered)} acknowledgement")
        return {
            "employees": employees,
            "bytes": len(raw),
            "upload_s": round(uploaded - started, 2),
            "run_s": run.get("seconds"),  # dag.test() itself, once Airflow is imported
            "upload_to_acknowledgement_s": round(done - started, 2),  # with Airflow's start
            "acknowledged": len(answered) == 1,
        }
    finally:
        store.close()


def deadline_day(
    server: SftpServer, dsn: str, work: Path, options: argparse.Namespace
) -> dict[str, object]:
    store = Store.open(dsn)
    try:
        files = options.logins * options.clients
        declarations = samples(work, store, employers=files, employees=options.employees)
        _progress(f"deadline day: {files} declarations, préétablis loaded")
        groups = [declarations[i :: options.logins] for i in range(options.logins)]
        logins = [
            enrol(server, store, f"c{i:03d}", "accountant", *g, reload=False)
            for i, g in enumerate(groups)
        ]
        server.configure()
        started = time.perf_counter()
        for login, group in zip(logins, groups, strict=True):
            upload_all(server, login, [(p.name, p.read_bytes()) for p in group])
        uploaded = time.perf_counter()
        _progress(f"deadline day: {files} files uploaded by {len(logins)} logins")
        env = airflow_environment(server, dsn, work)
        run, _ = dag_test(env, reset=True)
        seconds = float(run.get("seconds", 0) or 0)
        answers = sum(len(_acknowledgements(server, login)) for login in logins)
        statuses = _statuses(store, [login.login for login in logins])
        left = sum(len(os.listdir(server.settings.root / d.login / "in")) for d in logins)
        left += len(os.listdir(server.settings.root / ".processing"))
        return {
            "files": files,
            "logins": len(logins),
            "employees_per_file": options.employees,
            "upload_s": round(uploaded - started, 2),
            "run_s": seconds,
            "files_per_minute": round(files / seconds * 60) if seconds else None,
            "mapped_judge_tasks": _mapped(Path(env["AIRFLOW_HOME"])),
            "peak_rss_mb": run.get("peak_rss_mb"),
            "statuses": statuses,
            "acknowledgements": answers,
            "nothing_lost": sum(statuses.values()) == files == answers and left == 0,
        }
    finally:
        store.close()


def _acknowledgements(server: SftpServer, declarant: Declarant) -> list[str]:
    with server.sftp(declarant.login, declarant.keys[0]) as client:
        return [name for name in client.listdir("/out") if name.endswith(".xml")]


def _statuses(store: Store, logins: list[str]) -> dict[str, int]:
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT status, count(*) FROM edi_file WHERE depositor = ANY(%s) GROUP BY 1",
            (logins,),
        )
        return dict(cursor.fetchall())


def _mapped(airflow_home: Path) -> int:
    """Mapped judge task instances in the (fresh) Airflow database: the one run's."""
    with sqlite3.connect(airflow_home / "airflow.db") as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM task_instance WHERE task_id = 'judge'"
        ).fetchone()
    return int(count)


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
