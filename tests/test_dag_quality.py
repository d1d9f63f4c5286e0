"""The edi_quality DAG through dag.test(): a corrupted row fails the run at quality_gate, with
the rule and the count in its error and no value; the report is written all the same."""

from __future__ import annotations

import importlib.util

import pytest

from cnss_edi.inbox import process_inbox
from tests.boxes import deliver
from tests.db import query
from tests.test_dags import DAGS, airflow  # noqa: F401 (the module's Airflow home, a fixture)

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("airflow") is None, reason="apache-airflow is not installed"
    ),
    pytest.mark.usefixtures("airflow"),
    pytest.mark.slow,
]


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / "edi_quality.py")).dags["edi_quality"]


@pytest.fixture
def loaded(store, places, pg_conn_dsn, tmp_path, monkeypatch):
    deliver(places, store, period="202610", employees=10, employers=2)
    process_inbox(places, store=store)
    monkeypatch.setenv("CNSS_EDI_DATABASE_URL", pg_conn_dsn)
    monkeypatch.setenv("CNSS_EDI_REPORTS", str(tmp_path / "reports"))
    return store


def test_a_clean_month_passes_and_writes_the_report_and_the_docs(loaded, tmp_path):
    run = _dag().test(run_conf={"period": "202610"})

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert (run.state, set(states.values())) == ("success", {"success"})
    folder = tmp_path / "reports" / "202610"
    assert (folder / "data_docs" / "index.html").is_file()
    assert 'href="data_docs/index.html"' in (folder / "report_202610.html").read_text()


def test_a_corrupted_row_fails_the_quality_task_with_a_readable_error(
    loaded, tmp_path, caplog, capsys
):
    (salary,) = query(
        loaded,
        "UPDATE declaration_line SET days = 31 WHERE line_no = 3 RETURNING gross_salary",
    )[0]

    run = _dag().test(run_conf={"period": "202610"})

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "failed"
    assert (states["check_quality"], states["write_report"]) == ("success", "success")
    assert states["quality_gate"] == "failed"
    logs = caplog.text + "".join(capsys.readouterr())
    assert "QualityFailed" in logs
    assert "declaration_line.days_in_range failed on 2 of 22 rows" in logs  # line 3 of each
    assert str(salary) not in logs
