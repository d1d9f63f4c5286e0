"""The calendar commands of `cnss-edi`, run as a clerk runs them: the last line, the JSON
contract, exit codes and messages."""

from __future__ import annotations

import datetime as dt
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


def penalty(*options: str, check_code: int = 0):
    return run("penalty", *options, check_code=check_code)


def test_penalty_json_contract_a_month_and_a_day_late() -> None:
    # 100,000 MAD due 10 Jul 2024, paid 11 Aug 2024: 3 % + 1 % = 4,000 MAD.
    out = json.loads(
        penalty(
            "--period", "202406", "--due", "10000000", "--paid-on", "2024-08-11", "--json"
        ).stdout
    )
    assert set(out) == {
        "period",
        "deadline",
        "months_late",
        "majoration",
        "astreinte",
        "total",
        "rules",
    }
    assert (out["deadline"], out["months_late"], out["majoration"], out["total"]) == (
        "2024-07-10",
        2,
        400_000,
        400_000,
    )
    assert out["astreinte"] == 0
    assert [r.split(":")[0] for r in out["rules"]] == ["MAJ_GEN_1972"]


def test_penalty_with_amo_and_a_late_declaration() -> None:
    # June 2025, extended to 21 Jul 2025 without penalties; paid and declared 1 Sep 2025
    # (months begin 22 Jul and 22 Aug). General 80,000 MAD: 3 % + 0.5 % = 2,800 MAD; AMO
    # 20,000 MAD: 1 % + 1 % = 400 MAD; astreinte 150 employees: capped, 5,000 MAD × 2.
    options = ["--period", "202506", "--due", "10000000", "--amo", "2000000"]
    result = penalty(*options, "--paid-on", "2025-09-01", "--employees", "150", "--json")
    out = json.loads(result.stdout)
    assert (out["months_late"], out["majoration"], out["astreinte"], out["total"]) == (
        2,
        320_000,
        1_000_000,
        1_320_000,
    )
    assert sorted(r.split(":")[0] for r in out["rules"]) == [
        "AST_DECL_17_02",
        "MAJ_AMO_65_00",
        "MAJ_GEN_LOI_02_24",
    ]


def test_penalty_within_the_extension_is_nothing_and_the_text_ends_with_the_total() -> None:
    result = penalty(
        "--period", "202506", "--due", "10000000", "--paid-on", "2025-07-21", "--employees", "9"
    )
    assert result.stdout.splitlines()[-1] == "total: 0,00 MAD"
    assert "deadline 2025-07-21" in result.stdout


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--period", "202506", "--due", "12.50", "--paid-on", "2025-07-21"], "centimes"),
        (["--period", "202506", "--due", "100", "--paid-on", "21/07/2025"], "YYYY-MM-DD"),
        (["--period", "2025-06", "--due", "100", "--paid-on", "2025-07-21"], "YYYYMM"),
        (["--period", "202506", "--due", "1", "--amo", "2", "--paid-on", "2025-07-21"], "--amo"),
    ],
)
def test_penalty_with_a_wrong_option_is_a_usage_error(options: list[str], message: str) -> None:
    result = penalty(*options, check_code=2)
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["deadline"], ["payments", "import"], ["penalty"]])
def test_every_calendar_command_has_help_with_an_example(command: list[str]) -> None:
    result = run(*command, "--help", check_code=0)
    assert result.stdout.startswith("usage: cnss-edi " + " ".join(command))
    assert "e.g." in result.stdout or "Example" in result.stdout
    assert "Exit codes" in result.stdout


def test_penalties_run_stores_and_writes_the_notices_once(store, places, pg_conn_dsn) -> None:
    from cnss_edi import accounts
    from cnss_edi.accounts import Account
    from tests.test_penalty_run import declare, dues, pay, percent, received_on
    from transforms.money import format_mad

    (affiliate,) = declare(places, store, "202509", 1)
    received_on(store, affiliate, "202509", dt.date(2025, 10, 9))
    pay(store, (affiliate, "202509", sum(dues(store, affiliate, "202509")), dt.date(2025, 10, 20)))
    accounts.save(store, Account("emp-a", "employer", (affiliate,)))
    arguments = ["penalties", "run", "--day", "2025-11-10", "--outbox", str(places.outbox)]
    arguments += ["--database-url", pg_conn_dsn]

    first = run(*arguments, check_code=0)
    again = run(*arguments, "--json", check_code=0)

    head, listed = first.stdout.splitlines()
    assert head.endswith("1 new amount(s) stored, 1 notice(s) written")
    general, amo = dues(store, affiliate, "202509")
    owed = format_mad(percent(general, 300) + percent(amo, 100))  # month 1: 3 %, AMO 1 %
    assert listed == (
        f"  {affiliate:07d} 202509: majoration {owed} (1 month(s)), astreinte 0,00 MAD"
        f" (0 month(s)), total {owed}: PEN_{affiliate:07d}_202509_20251110.xml"
    )
    assert json.loads(again.stdout) == {
        "day": "2025-11-10",
        "assessed": 1,  # 202510 is due that day: not yet
        "owing": 1,
        "written": 0,
        "published": 0,
    }
    notices = [p.relative_to(places.outbox).as_posix() for p in places.outbox.rglob("PEN_*")]
    assert notices == [f"emp-a/out/PEN_{affiliate:07d}_202509_20251110.xml"]


def test_penalties_run_of_a_malformed_day_is_a_usage_error(tmp_path) -> None:
    result = run("penalties", "run", "--day", "20251110", "--outbox", str(tmp_path), check_code=2)
    assert "is not a date YYYY-MM-DD" in result.stderr
