"""The DAGs in dags/: they import cleanly and cheaply, and edi_ingest judges a real inbox
against a real PostgreSQL through dag.test() (in-process: no scheduler, no API server)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from lxml import etree

from cnss_edi.inbox import process_inbox
from schemas import field, penalty_notice_xsd_path
from tests.boxes import box, deliver
from tests.db import acknowledgements, query
from tests.e2e import (
    Scenario,
    ingest_dag,
    ingest_environment,
    run_edi_ingest,
    task_logs,
    xcoms,
)
from tests.sftp import running_server

DAGS = Path(__file__).resolve().parent.parent / "dags"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("airflow") is None, reason="apache-airflow is not installed"
)


def _airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    }


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A private AIRFLOW_HOME with a fresh SQLite metadata DB, set before airflow is imported
    (airflow reads its configuration once, at import)."""
    env = _airflow_env(tmp_path_factory.mktemp("airflow-home"))
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    pytest.importorskip("airflow")
    from airflow.utils import db

    db.resetdb()
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_every_dag_file_imports_and_is_documented_and_owned(airflow):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))

    assert bag.import_errors == {}
    assert len(bag.dags) == len(list(DAGS.glob("*.py")))
    for dag_id, dag in bag.dags.items():
        assert dag.doc_md, dag_id
        assert dag.tags, dag_id
        assert dag.default_args.get("owner") not in (None, "", "airflow"), dag_id
        assert dag.default_args.get("retries", 0) >= 1, dag_id


def test_parsing_a_dag_file_opens_no_socket_and_imports_no_cnss_edi(tmp_path):
    """What the scheduler pays on every parse: airflow.sdk, nothing of ours (but the alert
    callback), no network."""
    probe = f"""
import socket, sys, runpy
import airflow.sdk
def refuse(*args, **kwargs):
    raise AssertionError("a socket at parse time")
socket.socket = refuse
socket.create_connection = refuse
before = set(sys.modules)
for path in {sorted(str(p) for p in DAGS.glob("*.py"))!r}:
    runpy.run_path(path)
# cnss_edi.alerts is the one exception: Airflow imports a deadline callback's path to check
# it, and that module needs only the standard library.
ours = sorted(m for m in set(sys.modules) - before - {{"cnss_edi", "cnss_edi.alerts"}}
              if m.split(".")[0] in
              ("cnss_edi", "validators", "transforms", "schemas", "pandas", "pyarrow", "psycopg2"))
assert not ours, ours[:8]
"""
    env = {**os.environ, **_airflow_env(tmp_path / "airflow-home")}
    subprocess.run([sys.executable, "-c", probe], check=True, env=env, timeout=120)


def personal(declaration: Path) -> set[str]:
    """Names and salaries of a declaration (B02 lines), as they appear in the file."""
    name, salary = field("B02", "L_Nom_Prenom"), field("B02", "N_Salaire_Reel")
    found = set()
    for line in declaration.read_bytes().splitlines():
        if line.startswith(b"B02"):
            found.add(line[name.start : name.stop].decode("latin-1").strip())
            found.add(line[salary.start : salary.stop].decode("ascii").lstrip("0"))
    return {value for value in found if len(value) >= 4}


def without_clock(logs: str) -> str:
    """Logs less their timestamps: a 6-digit salary once matched the microseconds of one."""
    return re.sub(r"\d{4}-\d\d-\d\d[T ][\d:.,]+Z?", "", logs)


@pytest.mark.slow
def test_edi_ingest_judges_every_box_and_logs_no_person(
    airflow, store, places, pg_conn_dsn, monkeypatch, caplog, capsys
):
    first, second = deliver(places, store, employees=30, employers=2)
    (first.parent / "copie.txt").write_bytes(first.read_bytes())
    (box(places, 1234567) / "DS_1234567_202611.txt").write_bytes(b"B00 garbage\n")
    monkeypatch.setenv("CNSS_EDI_DATABASE_URL", pg_conn_dsn)
    monkeypatch.setenv("CNSS_EDI_INBOX", str(places.inbox))
    monkeypatch.setenv("CNSS_EDI_OUTBOX", str(places.outbox))
    monkeypatch.setenv("CNSS_EDI_ARCHIVE", str(places.archive))
    monkeypatch.setenv("CNSS_EDI_SETTLE", "0")
    secrets = personal(first) | personal(second)
    assert secrets

    dag = ingest_dag()

    run = dag.test()

    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    statuses = query(
        store,
        "SELECT status, count(*) FROM edi_file WHERE receipt_id IS NOT NULL GROUP BY 1 ORDER BY 1",
    )
    assert statuses == [("accepted", 2), ("duplicate", 1), ("rejected", 1)]
    acks = acknowledgements(places.outbox)
    assert sorted(p.parent.relative_to(places.outbox).as_posix() for p in acks) == [
        "1234567/out"
    ] * 3 + [f"{second.parent.parent.name}/out"]
    logs = without_clock(caplog.text + "".join(capsys.readouterr()))
    assert "edi_ingest totals" in logs
    assert [secret for secret in secrets if secret in logs] == []


@pytest.mark.slow
def test_an_internal_error_fails_the_judge_task_and_leaves_the_file_claimed(
    airflow, store, places, pg_conn_dsn, monkeypatch
):
    deliver(places, store, employees=5)
    for name, value in (("DATABASE_URL", pg_conn_dsn), ("SETTLE", "0")):
        monkeypatch.setenv(f"CNSS_EDI_{name}", value)
    for name in ("inbox", "outbox", "archive"):
        monkeypatch.setenv(f"CNSS_EDI_{name.upper()}", str(getattr(places, name)))

    def bug(*args, **kwargs):
        raise ZeroDivisionError

    monkeypatch.setattr("cnss_edi.inbox.process_receipt", bug)

    dag = ingest_dag()
    for each in dag.tasks:
        each.retries = 0  # a retry would meet the same bug, 30 s later

    run = dag.test()

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert (run.state, states["claim"], states["judge"]) == ("failed", "success", "failed")
    assert query(store, "SELECT count(*) FROM edi_file WHERE receipt_id IS NOT NULL") == [(0,)]
    assert len(store.pending_receipts()) == 1  # judged again by the next run


@pytest.mark.slow
def test_edi_ingest_over_sftp_answers_every_declarant_and_logs_no_person(
    airflow, store, pg_conn_dsn, tmp_path, monkeypatch, caplog, capfd
):
    """The issue's scenario through a real sshd: A valid, B with errors, A a file for B's
    affiliate, the accountant one file for each client; a run later, A the same bytes again."""
    with running_server() as server:
        scenario = Scenario.prepare(server, store, tmp_path)
        for name, value in ingest_environment(server, pg_conn_dsn, tmp_path).items():
            monkeypatch.setenv(name, value)
        for number in range(len(scenario.rounds)):
            scenario.upload(number)
            assert run_edi_ingest() == "success"

        rows = query(
            store,
            "SELECT depositor, file_name, status, finished_at IS NOT NULL FROM edi_file"
            " WHERE receipt_id IS NOT NULL ORDER BY receipt_id",
        )
        assert sorted(rows) == sorted((*expected, True) for expected in scenario.expected)
        assert rows[-1][2] == "duplicate"  # judged a run later
        assert query(store, "SELECT count(*) FROM declaration") == [(3,)]
        answers = scenario.acknowledgements()
        statuses = {
            login: sorted(re.findall(rb"<status>(\w+)</status>", b"".join(acks)))
            for login, acks in answers.items()
        }
        assert statuses == {
            scenario.a.login: [b"accepted", b"duplicate", b"rejected"],
            scenario.b.login: [b"rejected"],
            scenario.accountant.login: [b"accepted", b"accepted"],
        }
        assert b"COMPTE_DEPOSANT" in b"".join(answers[scenario.a.login])
        home = Path(os.environ["AIRFLOW_HOME"])
        logs = caplog.text + "".join(capfd.readouterr()) + xcoms(home) + task_logs(home)
        assert "edi_ingest totals" in logs  # the scan reads the runs' logs
        assert scenario.report(store, logs, scenario.isolation()) == {
            "files": 6,
            "accepted": 3,
            "rejected": 2,
            "duplicates": 1,
            "acknowledgements": 6,
            "isolation": "denied",
            "pii_in_logs": 0,
        }


@pytest.mark.slow
def test_edi_preetablis_publishes_each_employers_next_month_over_sftp(
    airflow, store, pg_conn_dsn, tmp_path, monkeypatch
):
    """After a first edi_ingest run (A, the accountant's two clients accepted; B rejected),
    the month-end DAG writes the three préétablis of 202611, in the right out/ folders."""
    from airflow.dag_processing.dagbag import DagBag

    with running_server() as server:
        scenario = Scenario.prepare(server, store, tmp_path)
        for name, value in ingest_environment(server, pg_conn_dsn, tmp_path).items():
            monkeypatch.setenv(name, value)
        scenario.upload(0)
        assert run_edi_ingest() == "success"
        dag = DagBag(dag_folder=str(DAGS / "edi_preetablis.py")).dags["edi_preetablis"]

        runs = [dag.test(run_conf={"period": "202611"}) for _ in range(2)]

        assert [run.state for run in runs] == ["success"] * 2
        preetablis = {
            login: sorted(name for name in folder if name.startswith("AFFEBDS_"))
            for login, folder in _out_names(scenario).items()
        }
        assert {login: len(names) for login, names in preetablis.items()} == {
            scenario.a.login: 1,
            scenario.b.login: 0,  # its declaration was rejected: nothing to build on
            scenario.accountant.login: 2,
        }
        assert query(store, "SELECT count(*) FROM preetabli WHERE period = '202611'") == [(3,)]


def _out_names(scenario: Scenario) -> dict[str, list[str]]:
    found = {}
    for declarant in (scenario.a, scenario.b, scenario.accountant):
        with scenario.server.sftp(declarant.login, declarant.keys[0]) as client:
            found[declarant.login] = client.listdir("/out")
    return found


@pytest.mark.slow
def test_edi_reconcile_stores_the_month_twice_keeping_history_and_logs_no_person(
    airflow, store, places, pg_conn_dsn, tmp_path, monkeypatch, caplog, capsys
):
    """No SFTP: the month is judged from local boxes, payments imported, then the DAG runs
    twice for it (a re-run after late payments); a month whose deadline is ahead is skipped."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.month import PERIOD, build

    month = build(store, places)
    reports = tmp_path / "reports"
    monkeypatch.setenv("CNSS_EDI_DATABASE_URL", pg_conn_dsn)
    monkeypatch.setenv("CNSS_EDI_REPORTS", str(reports))
    secrets = set().union(*(personal(path) for path in places.archive.rglob("*_DS_*.txt")))
    assert secrets
    dag = DagBag(dag_folder=str(DAGS / "edi_reconcile.py")).dags["edi_reconcile"]

    runs = [dag.test(run_conf={"period": PERIOD}) for _ in range(2)]

    assert [run.state for run in runs] == ["success"] * 2
    assert query(
        store,
        "SELECT count(*), count(*) FILTER (WHERE superseded_by IS NULL) FROM reconciliation_run",
    ) == [(2, 1)]
    current = dict(query(store, "SELECT affiliate, status FROM reconciliation_current"))
    assert current[month.underpaid] == "underpaid"
    assert current[month.corrected] == "balanced"
    assert (reports / PERIOD / f"reconciliation_{PERIOD}.parquet").exists()
    logs = caplog.text + "".join(capsys.readouterr())
    assert f"reconciliation {PERIOD}: run 2," in logs
    assert [secret for secret in secrets if secret in logs] == []

    today = dt.date.today()
    ahead = f"{today.year + today.month // 12}{today.month % 12 + 1:02d}"
    skipped = dag.test(run_conf={"period": ahead})
    states = {ti.task_id: ti.state for ti in skipped.get_task_instances()}
    assert states == {"choose_period": "skipped", "reconcile": "skipped"}
    assert query(store, "SELECT count(*) FROM reconciliation_run") == [(2,)]


@pytest.mark.slow
def test_edi_reminders_reminds_over_sftp_and_smtp_once(
    airflow, store, pg_conn_dsn, tmp_path, monkeypatch, smtp
):
    """After a first edi_ingest run, B (its declaration rejected) is the one employer of
    202610 without a declaration: two days before the deadline it gets a notice in its out/
    and an email, once, however often the DAG runs that day."""
    from dataclasses import replace
    from datetime import datetime

    from airflow.dag_processing.dagbag import DagBag

    from cnss_edi import accounts

    mailer, inbox = smtp
    with running_server() as server:
        scenario = Scenario.prepare(server, store, tmp_path)
        accounts.save(store, replace(scenario.b.account, emails=("paie@b.example",)))
        for name, value in ingest_environment(server, pg_conn_dsn, tmp_path).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv(
            "AIRFLOW_CONN_CNSS_EDI_SMTP", f"smtp://{mailer.host}:{mailer.port}?from=edi%40cnss.ma"
        )
        scenario.upload(0)
        assert run_edi_ingest() == "success"
        dag = DagBag(dag_folder=str(DAGS / "edi_reminders.py")).dags["edi_reminders"]

        day = datetime(2026, 11, 8, 8, tzinfo=UTC)  # 202610 is due on 2026-11-10
        runs = [dag.test(logical_date=day), dag.test(logical_date=day + timedelta(hours=1))]

        assert [run.state for run in runs] == ["success"] * 2
        notices = {
            login: [n for n in names if n.startswith("RAPPEL_")]
            for login, names in _out_names(scenario).items()
        }
        assert notices == {
            scenario.a.login: [],
            scenario.b.login: [f"RAPPEL_{scenario.b.account.affiliates[0]:07d}_202610_J-2.txt"],
            scenario.accountant.login: [],
        }
        assert [(m["To"], m["From"]) for m in inbox.messages] == [("paie@b.example", "edi@cnss.ma")]


def test_a_late_ingest_run_raises_an_alert_the_operations_team_sees(caplog, smtp, monkeypatch):
    import asyncio
    from types import SimpleNamespace

    from airflow.dag_processing.dagbag import DagBag

    from cnss_edi import alerts

    dag = DagBag(dag_folder=str(DAGS / "edi_ingest.py")).dags["edi_ingest"]
    (deadline,) = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert deadline.interval == timedelta(minutes=30)
    assert deadline.callback.path == "cnss_edi.alerts.ingest_late"
    mailer, inbox = smtp
    monkeypatch.setenv("CNSS_EDI_OPS_EMAIL", "ops@cnss.example")
    monkeypatch.setenv("AIRFLOW_CONN_CNSS_EDI_SMTP", f"smtp://{mailer.host}:{mailer.port}")

    context = {"dag_run": SimpleNamespace(run_id="scheduled__2026-12-10T09:00")}
    text = asyncio.run(alerts.ingest_late(context, **deadline.callback.kwargs))

    assert "scheduled__2026-12-10T09:00 not finished 30 minutes" in text
    assert text in caplog.text
    assert [(m["To"], m.get_content().strip()) for m in inbox.messages] == [
        ("ops@cnss.example", text)
    ]


@pytest.mark.slow
def test_edi_penalties_notifies_the_late_payer_alone_over_sftp(
    airflow, store, pg_conn_dsn, tmp_path, monkeypatch, caplog, capfd
):
    """After a first edi_ingest run (A and the accountant's two clients accepted for 202610,
    due Tuesday 10 November 2026), as if received on 5 November: A pays on 20 November (month
    1 of delay), the clients on time; edi_penalties run twice for 2 December 2026."""
    from airflow.dag_processing.dagbag import DagBag

    from cnss_edi.payments import import_payments

    with running_server() as server:
        scenario = Scenario.prepare(server, store, tmp_path)
        for name, value in ingest_environment(server, pg_conn_dsn, tmp_path).items():
            monkeypatch.setenv(name, value)
        scenario.upload(0)
        assert run_edi_ingest() == "success"
        query(store, "UPDATE edi_file SET received_at = '2026-11-05 10:00+01' RETURNING id")
        dues = query(
            store,
            "SELECT d.affiliate, d.total_due, sum(c.employer + c.employee) FILTER"
            " (WHERE c.branch IN ('amo', 'amo_solidarity')) FROM declaration d"
            " JOIN contribution c ON c.declaration_id = d.id GROUP BY 1, 2 ORDER BY 1",
        )
        assert dues[0][0] == scenario.a.account.affiliates[0]
        paid_on = ["2026-11-20", "2026-11-09", "2026-11-10"]  # A late, the clients on time
        csv = "affiliate,period,amount_centimes,paid_on,reference\n" + "".join(
            f"{affiliate},202610,{due},{day},VIR-{affiliate}\n"
            for (affiliate, due, _), day in zip(dues, paid_on, strict=True)
        )
        today = dt.date(2026, 12, 2)
        assert import_payments(store, csv.encode(), file_name="b.csv", today=today).new_rows == 3
        dag = DagBag(dag_folder=str(DAGS / "edi_penalties.py")).dags["edi_penalties"]

        runs = [dag.test(run_conf={"day": "2026-12-02"}) for _ in range(2)]

        assert [run.state for run in runs] == ["success"] * 2
        a, due, amo = dues[0]
        general = due - amo
        total = (general * 3 + 50) // 100 + (amo + 50) // 100  # month 1: 3 %, AMO 1 %
        assert query(store, "SELECT affiliate, total, notified_at IS NOT NULL FROM penalty") == [
            (a, total, True)
        ]
        name = f"PEN_{a:07d}_202610_20261202.xml"
        notices = {
            login: [n for n in names if n.startswith("PEN_")]
            for login, names in _out_names(scenario).items()
        }
        assert notices == {
            scenario.a.login: [name],
            scenario.b.login: [],  # its declaration was rejected
            scenario.accountant.login: [],  # its clients paid on time
        }
        with server.sftp(scenario.a.login, scenario.a.keys[0]) as client:
            raw = client.open(f"/out/{name}").read()
        schema = etree.XMLSchema(etree.parse(str(penalty_notice_xsd_path())))
        assert schema.validate(etree.fromstring(raw))
        assert f'<total unit="centimes">{total}</total>'.encode() in raw
        home = Path(os.environ["AIRFLOW_HOME"])
        logs = caplog.text + "".join(capfd.readouterr()) + xcoms(home) + task_logs(home)
        assert "penalties as of 2026-12-02" in logs
        assert [c for c in scenario.canaries if c in logs or c.encode() in raw] == []


# -- edi_quality: the Great Expectations checkpoint and the campaign report -------------------


def _edi_quality():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / "edi_quality.py")).dags["edi_quality"]


@pytest.fixture
def loaded_month(airflow, store, places, pg_conn_dsn, tmp_path, monkeypatch):
    """Two employers' declarations judged; the task environment points at them."""
    deliver(places, store, period="202610", employees=10, employers=2)
    process_inbox(places, store=store)
    monkeypatch.setenv("CNSS_EDI_DATABASE_URL", pg_conn_dsn)
    monkeypatch.setenv("CNSS_EDI_REPORTS", str(tmp_path / "reports"))
    return store


@pytest.mark.slow
def test_edi_quality_passes_a_clean_month_and_writes_the_report_and_the_docs(
    loaded_month, tmp_path
):
    run = _edi_quality().test(run_conf={"period": "202610"})

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert (run.state, set(states.values())) == ("success", {"success"})
    folder = tmp_path / "reports" / "202610"
    assert (folder / "data_docs" / "index.html").is_file()
    assert 'href="data_docs/index.html"' in (folder / "report_202610.html").read_text()


@pytest.mark.slow
def test_edi_quality_fails_at_the_gate_on_a_corrupted_row_with_a_readable_error(
    loaded_month, tmp_path, caplog, capsys
):
    (salary,) = query(
        loaded_month,
        "UPDATE declaration_line SET days = 31 WHERE line_no = 3 RETURNING gross_salary",
    )[0]

    run = _edi_quality().test(run_conf={"period": "202610"})

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "failed"
    assert (states["check_quality"], states["write_report"]) == ("success", "success")
    assert states["quality_gate"] == "failed"
    logs = caplog.text + "".join(capsys.readouterr())
    assert "QualityFailed" in logs
    assert "declaration_line.days_in_range failed on 2 of 22 rows" in logs  # line 3 of each
    assert str(salary) not in logs
