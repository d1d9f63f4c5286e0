"""`cnss-edi quality` and `cnss-edi report` as a user runs them: exit codes, where they write."""

from __future__ import annotations

import json

from cnss_edi.inbox import process_inbox
from tests.boxes import deliver
from tests.db import query
from tests.test_cli import run


def test_quality_then_report_write_the_docs_and_a_page_that_links_them(
    store, places, pg_conn_dsn, tmp_path
):
    deliver(places, store, period="202610", employees=8, employers=2)
    process_inbox(places, store=store)
    out = tmp_path / "reports"
    database = ["--database-url", pg_conn_dsn]

    checked = run("quality", "--period", "202610", "--out", str(out), *database, "--json")
    written = run("report", "--period", "202610", "--out", str(out), *database, check_code=0)

    assert checked.returncode == 0, checked.stdout
    outcome = json.loads(checked.stdout)
    assert (outcome["success"], outcome["failed"]) == (True, [])
    assert (out / "data_docs" / "index.html").is_file()
    page = out / "report_202610.html"
    assert written.stdout.strip() == str(page)
    assert 'href="data_docs/index.html"' in page.read_text()


def test_quality_exits_1_on_a_failed_expectation_and_says_which(
    store, places, pg_conn_dsn, tmp_path
):
    deliver(places, store, period="202610", employees=8)
    process_inbox(places, store=store)
    query(store, "UPDATE declaration_line SET situation = 'ZZ' WHERE line_no = 3 RETURNING 1")

    checked = run(
        "quality", "--period", "202610", "--out", str(tmp_path), "--database-url", pg_conn_dsn
    )

    assert checked.returncode == 1
    assert "declaration_line.situation_known failed on 1 of" in checked.stdout


def test_a_wrong_period_is_a_usage_error(tmp_path):
    for command in ("quality", "report"):
        result = run(command, "--period", "202613", "--out", str(tmp_path), check_code=2)
        assert "01 to 12" in result.stderr
