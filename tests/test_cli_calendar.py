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
