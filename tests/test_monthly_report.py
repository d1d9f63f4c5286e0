"""`cnss-edi report` on a real month: one employer not declared, one late and underpaid, one
corrected and paid; the page opens offline in Chromium, shows the campaign, and no person."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from cnss_edi.inbox import process_inbox
from cnss_edi.monthly_report import DATA_DOCS, gather, write_report
from cnss_edi.payments import import_payments
from cnss_edi.store import Store
from tests.boxes import deliver
from tests.browser import chromium, open_page
from tests.db import query
from transforms.money import format_mad

PERIOD = "202610"  # due on 10 November 2026
ON_TIME, LATE = "2026-11-06 10:00+01", "2026-11-13 09:00+01"


@pytest.fixture
def month(store: Store, places) -> dict[str, int]:
    """Three employers expected (their préétablis are loaded): A declares on time and pays,
    B declares late and pays half, C never declares. A sends a correction (same figures)."""
    a_file, b_file, c_file = deliver(places, store, period=PERIOD, employees=12, employers=3)
    c_file.unlink()
    raw = bytearray(a_file.read_bytes())
    assert {o.status for o in process_inbox(places, store=store).outcomes} == {"accepted"}
    a, b, c = (int(p.name.split("_")[1]) for p in (a_file, b_file, c_file))
    raw[261 + 20 : 261 + 30] = b"CORRECTION"  # B01 company name: same figures, new bytes
    (a_file.parent / f"DS_{a}_{PERIOD}_V2.txt").write_bytes(bytes(raw))
    assert [o.version for o in process_inbox(places, store=store).outcomes] == [2]
    for affiliate, moment in ((a, ON_TIME), (b, LATE)):
        query(
            store,
            "UPDATE edi_file SET received_at = %s WHERE affiliate = %s AND kind = 'declaration'"
            " RETURNING 1",
            moment,
            affiliate,
        )
    dues = dict(
        query(store, "SELECT affiliate, total_due FROM declaration WHERE superseded_by IS NULL")
    )
    csv = "affiliate,period,amount_centimes,paid_on,reference\n"
    csv += (
        f"{a},{PERIOD},{dues[a]},2026-11-06,VIR-A\n{b},{PERIOD},{dues[b] // 2},2026-11-13,VIR-B\n"
    )
    done = import_payments(store, csv.encode(), file_name="p.csv", today=dt.date(2026, 12, 1))
    assert done.status == "imported", done.errors
    return {"a": a, "b": b, "c": c, "due_a": dues[a], "due_b": dues[b]}


def test_the_figures_count_each_employer_once_by_its_current_declaration(store, month):
    figures = gather(store, PERIOD)
    rows = figures.employers.set_index("affiliate")

    assert rows["expected"].sum() == 3
    assert rows.loc[month["c"], "declared"] == False  # noqa: E712 (numpy bool)
    assert rows["late"].tolist() == [False, True, False]
    assert rows.loc[month["b"], "underpaid"]
    assert rows.loc[month["a"], "due"] == month["due_a"]  # version 2 only, not 1 + 2
    assert figures.curve["share"].iloc[-1] == pytest.approx(2 / 3)
    assert figures.branches["due"].sum() == month["due_a"] + month["due_b"]
    assert figures.branches["paid"].sum() == month["due_a"] + month["due_b"] // 2


def test_the_page_shows_the_month_and_no_person(store, month, tmp_path):
    page = write_report(store, PERIOD, tmp_path).read_text()

    assert page.count("<svg") == 2
    assert "10/11/2026" in page
    late, not_declared, underpaid = (
        _section(page, title) for title in ("En retard", "Non déclarés", "Sous-payés")
    )
    assert f"{month['b']:07d}" in late
    assert f"{month['c']:07d}" in not_declared
    assert f"{month['b']:07d}" in underpaid
    assert f"{month['a']:07d}" not in late + not_declared + underpaid
    assert format_mad(month["due_b"] - month["due_b"] // 2) in page.replace("-", "")
    people = query(store, "SELECT full_name, coalesce(cin, ''), gross_salary FROM declaration_line")
    shown = [
        value
        for name, cin, gross in people
        for value in (name.strip(), cin.strip(), format_mad(gross))
        if value and value in page
    ]
    assert shown == []
    assert "Data Docs non générées" in page


def test_the_page_shows_the_reconciliation_once_it_ran(store, month, tmp_path):
    from cnss_edi.reconcile import reconcile_period

    before = write_report(store, PERIOD, tmp_path).read_text()
    summary = reconcile_period(store, PERIOD).result.summary
    after = write_report(store, PERIOD, tmp_path).read_text()

    assert "pas encore rapprochée" in before
    assert "pas encore rapprochée" not in after
    section = after[after.index("<h2>Rapprochement") : after.index("<h2>Qualité")]
    assert (summary["underpaid"], summary["not_declared"]) == (1, 1)
    assert "<td>Sous-payés</td><td class=n>1</td>" in section
    assert f"<td class=n>{format_mad(summary['shortfall'])}</td>" in section
    assert format_mad(month["due_b"] - month["due_b"] // 2) == format_mad(summary["shortfall"])


def test_the_page_fetches_nothing_remote(store, month, tmp_path):
    (tmp_path / DATA_DOCS).mkdir()
    (tmp_path / DATA_DOCS / "index.html").write_text("<html></html>")
    page = write_report(store, PERIOD, tmp_path).read_text()

    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page, flags=re.IGNORECASE)
    assert [link for link in links if not link.startswith("#")] == ["data_docs/index.html"]
    # Namespace names in the SVG are identifiers, never fetched: everything else is remote.
    names = re.sub(r'xmlns(:\w+)?="[^"]*"', "", page)
    assert re.findall(r"(?:https?:)?//[\w.-]+", names) == []
    assert "<script" not in page
    assert "@import" not in page
    assert {ref[0] for ref in re.findall(r"url\(\s*['\"]?([^)'\"]*)", page)} <= {"#"}


def test_an_extended_month_with_nothing_loaded_shows_both_dates(store, tmp_path):
    """June 2025: due on 10 July, extended to 21 July without penalties (schemas/extensions.csv)."""
    figures = gather(store, "202506")
    page = write_report(store, "202506", tmp_path).read_text()

    assert figures.employers.empty
    assert figures.curve["day"].iloc[-1] == dt.date(2025, 7, 26)  # 5 days past the extension
    assert "Échéance : 10/07/2025, prorogée au 21/07/2025 ; en retard après le 21/07/2025" in page
    assert "prorogation 21/07" in page  # the chart's legend: text kept as SVG text
    assert "Aucune anomalie" in page


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (make chromium-bin)")
def test_the_page_renders_in_chromium_without_console_errors(store, month, tmp_path):
    page = write_report(store, PERIOD, tmp_path)

    opened = open_page(page, tmp_path / "report.png")

    assert opened.returncode == 0
    assert opened.console == []
    png = opened.screenshot.read_bytes()
    assert png.startswith(b"\x89PNG")
    assert len(png) > 20_000  # charts and tables, not a blank page


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (make chromium-bin)")
def test_the_console_check_sees_a_script_error(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>throw new Error('boom')</script></body></html>")

    opened = open_page(broken, tmp_path / "broken.png", size="400,300")

    assert any("Uncaught Error: boom" in line for line in opened.console)


def _section(page: str, title: str) -> str:
    """The HTML from an employer table's heading to the next heading."""
    start = page.index(f"<h3>{title}")
    end = re.compile(r"<h[23][ >]").search(page, start + 4)
    return page[start : end.start() if end else len(page)]
