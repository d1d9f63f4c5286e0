"""`cnss-edi reconcile` as finance runs it: the JSON contract, the text, the files, exit codes."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.month import NEWCOMER, PERIOD, build
from tests.test_cli import run

KEYS = {
    "affiliate",
    "period",
    "status",
    "due",
    "paid",
    "difference",
    "missing_employees",
    "unexpected_employees",
    "declaration_version",
}


def test_json_prints_one_object_per_employer_then_the_summary(store, places, pg_conn_dsn):
    month = build(store, places)

    result = run("reconcile", "--period", PERIOD, "--json", "--database-url", pg_conn_dsn)

    assert result.returncode == 1, result.stderr  # some employers are to follow up
    *employers, summary = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(line) >= KEYS and line["record"] == "employer" for line in employers)
    by_affiliate = {line["affiliate"]: line for line in employers}
    assert sorted(by_affiliate) == month.affiliates
    underpaid = by_affiliate[month.underpaid]
    assert (underpaid["status"], underpaid["difference"]) == ("underpaid", -12_345)
    assert underpaid["due"] - underpaid["paid"] == 12_345
    assert by_affiliate[month.corrected]["declaration_version"] == 2
    newcomer = by_affiliate[NEWCOMER]
    assert (newcomer["status"], newcomer["declaration_version"]) == ("not declared", None)
    assert newcomer["missing_employees"] == []
    assert summary["record"] == "summary"
    assert (summary["period"], summary["underpaid"], summary["not_declared"]) == (PERIOD, 1, 2)
    assert summary["deadline"] == "2026-11-10"


def test_text_names_what_to_follow_up_and_out_writes_the_files(
    store, places, pg_conn_dsn, tmp_path
):
    month = build(store, places)
    out = tmp_path / "reports"

    result = run("reconcile", "--period", PERIOD, "--out", str(out), "--database-url", pg_conn_dsn)

    assert result.returncode == 1, result.stderr
    text = result.stdout
    assert "balanced 2, underpaid 1, overpaid 1, not declared 2" in text
    assert f"    {month.underpaid:07d} underpaid -123,45 MAD" in text
    assert f"    {month.absent:07d} not declared (paid 1\u202f000,00 MAD)" in text
    assert "still owed 123,45 MAD, paid beyond the dues or undeclared 1\u202f005,00 MAD" in text
    assert f"{month.balanced:07d}" not in text.split("to follow up")[1]
    assert "stored as run 1 (current)" in text
    table = pq.read_table(out / f"reconciliation_{PERIOD}.parquet")
    assert table.num_rows == len(month.affiliates)
    assert (out / f"reconciliation_{PERIOD}.csv").read_text().startswith('"affiliate",')


def test_a_month_with_nothing_to_follow_up_exits_0(pg_conn_dsn):
    result = run("reconcile", "--period", "202501", "--json", "--database-url", pg_conn_dsn)

    assert result.returncode == 0, result.stderr
    (summary,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (summary["employers"], summary["run"], summary["current"]) == (0, 1, True)


@pytest.mark.parametrize(
    ("period", "message"), [("2026-10", "expected YYYYMM"), ("202613", "01 to 12"), ("", "")]
)
def test_a_malformed_period_is_a_usage_error(period, message):
    result = run("reconcile", "--period", period, "--database-url", "postgresql:///nowhere")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("cnss-edi reconcile: ")
    assert message in result.stderr


def test_an_unreachable_database_is_exit_3():
    result = run("reconcile", "--period", PERIOD, "--database-url", "postgresql://127.0.0.1:1/x")

    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith("cnss-edi reconcile: failed: database error OperationalError")
