"""The Great Expectations checkpoint on a period's loaded declarations: a clean load passes,
a row corrupted in the database fails it with a readable summary that shows no salary."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnss_edi.inbox import process_inbox
from cnss_edi.quality import QualityResult, check_period
from cnss_edi.store import Store
from tests.boxes import deliver
from tests.db import query

pytest.importorskip("great_expectations")
PERIOD = "202610"


def _loaded(store: Store, places) -> None:
    deliver(places, store, period=PERIOD, employees=40, employers=2, entrants=3)
    statuses = {o.status for o in process_inbox(places, store=store).outcomes}
    assert statuses == {"accepted"}


def _failed(result: QualityResult) -> dict[str, int | None]:
    return {f"{f.table}.{f.rule}": f.unexpected for f in result.findings}


@pytest.fixture
def loaded(store, places) -> Store:
    _loaded(store, places)
    return store


def test_a_clean_load_passes_and_builds_the_data_docs(loaded, tmp_path):
    result = check_period(loaded, PERIOD, tmp_path / "docs")

    assert result.success, result.summary()
    assert result.rows == {"declaration_line": 86, "contribution": 12}
    assert result.docs_index is not None
    assert result.docs_index.is_file()
    pages = list((tmp_path / "docs").rglob("*.html"))
    assert len(pages) >= 5  # the index, two suites, two validation results
    assert "every expectation met" in result.summary()


def test_a_corrupted_row_fails_the_checkpoint_and_names_only_rule_and_count(loaded, tmp_path):
    (declaration_id, line_no, gross), *_ = query(
        loaded,
        "SELECT declaration_id, line_no, gross_salary FROM declaration_line"
        " WHERE block = 'B02' AND gross_salary > 0 ORDER BY 1, 2 LIMIT 1",
    )
    canary = 98_765_432  # a capped salary over the ceiling: no page nor summary may show it
    query(
        loaded,
        "UPDATE declaration_line SET days = 31, capped_salary = %s"
        " WHERE declaration_id = %s AND line_no = %s RETURNING 1",
        canary,
        declaration_id,
        line_no,
    )

    result = check_period(loaded, PERIOD, tmp_path / "docs")

    assert not result.success
    assert _failed(result) == {
        "declaration_line.days_in_range": 1,
        "declaration_line.employer_contribution_at_rates": 1,
        "declaration_line.employee_contribution_at_rates": 1,
        "declaration_line.capped_within_real": 1,
        "declaration_line.capped_within_ceiling": 1,
        "contribution.base_matches_lines": 2,  # short and long term: on the capped salary
        "contribution.employer_matches_lines": 2,
        "contribution.employee_matches_lines": 2,
    }
    summary = result.summary()
    assert "declaration_line.days_in_range failed on 1 of 86 rows" in summary
    shown = [summary, *(p.read_text() for p in (tmp_path / "docs").rglob("*.html"))]
    for value in (canary, gross):
        assert not [text for text in shown if f"{value}" in text.replace(",", "")]


def test_the_docs_folder_is_where_it_is_asked(loaded, tmp_path: Path):
    target = tmp_path / "elsewhere" / "data_docs"
    result = check_period(loaded, PERIOD, target)
    assert result.docs_index == target / "index.html"
    assert target.joinpath("index.html").read_text().count("declaration_line") >= 1


def test_the_checkpoint_opens_no_network_connection(loaded, tmp_path, monkeypatch):
    """Analytics off, nothing fetched: any connection attempt during the run fails the test."""
    import socket

    from cnss_edi.expectations import with_expected
    from cnss_edi.quality import read_period, run_checkpoint

    frames = with_expected(*read_period(loaded, PERIOD), PERIOD)
    attempts: list[object] = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)

    result = run_checkpoint(*frames, PERIOD, tmp_path / "docs")

    assert result.success
    assert attempts == []
