"""The calendar commands of `cnss-edi`, run as a clerk runs them: the last line, the JSON
contract, exit codes and messages."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import run


def test_deadline_prints_the_date_last_and_why_it_moved_before() -> None:
    result = run("deadline", "202403", check_code=0)
    lines = result.stdout.splitlines()
    assert lines[-1] == "2024-04-12"
    assert "2024-04-10 is a public holiday: Aïd Al Fitr (1er jour)" in result.stdout


def test_deadline_json_contract() -> None:
    result = run("deadline", "202506", "--json", check_code=0)
    out = json.loads(result.stdout)
    assert set(out) == {"period", "deadline", "base", "reasons", "estimated"}
    assert (out["period"], out["deadline"], out["base"]) == ("202506", "2025-07-21", "2025-07-10")
    assert len(out["reasons"]) == 2
    assert out["estimated"] is False


@pytest.mark.parametrize(
    ("period", "message"),
    [("2025-06", "expected YYYYMM"), ("202513", "01 to 12"), ("199001", "calendar starts")],
)
def test_deadline_of_a_malformed_period_is_a_usage_error(period: str, message: str) -> None:
    result = run("deadline", period, check_code=2)
    assert result.stdout == ""
    assert result.stderr.startswith("cnss-edi deadline: ")
    assert message in result.stderr


PAYMENTS = (
    "affiliate,period,amount_centimes,paid_on,reference\n"
    "1234567,202510,1250000,2025-11-07,VIR-1\n"
    "1234567,202510,250000,2025-12-15,VIR-2\n"
)


def test_payments_import_once_then_nothing_changes(tmp_path, pg_conn_dsn: str) -> None:
    path = tmp_path / "paiements.csv"
    path.write_text(PAYMENTS)
    first = run("payments", "import", str(path), "--database-url", pg_conn_dsn, check_code=0)
    assert first.stdout.strip().endswith("2 payment(s) imported, 0 already known")
    again = run(
        "payments", "import", str(path), "--database-url", pg_conn_dsn, "--json", check_code=0
    )
    out = json.loads(again.stdout)
    assert (out["status"], out["rows"], out["new_rows"], out["errors"]) == (
        "already_imported",
        2,
        2,
        [],
    )


def test_payments_import_lists_each_bad_line_and_loads_nothing(tmp_path, pg_conn_dsn) -> None:
    path = tmp_path / "paiements.csv"
    path.write_text(PAYMENTS + "1234567,202513,100,2025-11-07,VIR-3\n1234567,202510,1,2\n")
    bad = run("payments", "import", str(path), "--database-url", pg_conn_dsn, check_code=1)
    assert "rejected, nothing imported (2 error(s))" in bad.stdout
    assert "line 4, period: PAIEMENT_PERIODE" in bad.stdout
    assert "line 5: PAIEMENT_COLONNES" in bad.stdout
    path.write_text(PAYMENTS)  # corrected: now it loads, all of it
    good = run("payments", "import", str(path), "--database-url", pg_conn_dsn, check_code=0)
    assert "2 payment(s) imported" in good.stdout


def test_payments_import_of_a_missing_file_is_a_usage_error(tmp_path) -> None:
    result = run("payments", "import", str(tmp_path / "absent.csv"), check_code=2)
    assert "No such file or directory" in result.stderr
