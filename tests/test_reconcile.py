"""cnss_edi.reconcile against a real PostgreSQL: a month judged from the boxes, reconciled,
stored (re-runs keep history), exported as CSV and Parquet."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from cnss_edi.reconcile import EMPLOYERS, export, read_month, reconcile_period, save
from tests.db import query
from tests.month import NEWCOMER, PERIOD, Scenario, build, import_payments_of
from transforms.deadlines import PeriodError
from transforms.reconciliation import reconcile


@pytest.fixture
def month(store, places) -> Scenario:
    return build(store, places)


def test_each_employer_gets_its_status_from_its_current_declaration(store, month):
    run = reconcile_period(store, PERIOD)

    rows = run.result.employers.set_index("affiliate")
    assert list(rows.index) == month.affiliates
    assert rows["status"].to_dict() == {
        month.balanced: "balanced",
        month.underpaid: "underpaid",
        month.overpaid: "overpaid",
        month.corrected: "balanced",  # against the first version it would not be
        month.absent: "not declared",
        NEWCOMER: "not declared",
    }
    assert rows.loc[month.underpaid, "difference"] == -12_345
    assert rows.loc[month.overpaid, "difference"] == 500
    corrected = rows.loc[month.corrected]
    assert (corrected["declaration_version"], corrected["versions"]) == (2, 2)
    assert corrected["due"] == month.due[month.corrected] != month.first_due
    absent = rows.loc[month.absent]
    assert (absent["due"], absent["paid"], absent["roster_employees"]) == (0, 100_000, 4)
    assert pd.isna(rows.loc[NEWCOMER, "roster_employees"])
    assert rows["expected"].all()
    assert (rows["totals_differing"] == "").all()
    assert rows[["missing_employees", "unexpected_employees", "declared_twice"]].sum().sum() == 0
    assert rows.loc[month.balanced, "declared_employees"] == 5  # 4 on the roster + 1 entrant


def test_the_month_summary_adds_up(store, month):
    summary = reconcile_period(store, PERIOD).result.summary

    assert {k: summary[k] for k in ("balanced", "underpaid", "overpaid", "not_declared")} == {
        "balanced": 2,
        "underpaid": 1,
        "overpaid": 1,
        "not_declared": 2,
    }
    assert (summary["employers_expected"], summary["employers_declared"]) == (6, 4)
    assert summary["employers_paid"] == 5
    assert summary["due"] == sum(month.due.values())
    paid = query(store, "SELECT sum(amount) FROM payment WHERE period = %s", PERIOD)[0][0]
    assert summary["paid"] == paid
    branches = summary["branches"]
    assert sum(b["received"] for b in branches.values()) == paid
    assert branches["unallocated"]["received"] == 100_000 + 500  # absent's, the overpayment
    stored_due = query(store, "SELECT sum(total_due) FROM declaration WHERE superseded_by IS NULL")
    assert sum(b["due"] for b in branches.values()) == stored_due[0][0]


def test_roster_and_totals_are_read_from_what_is_stored(store, month):
    """The roster as it stands now (an employee added, one taken off) and a declared total
    that no longer matches its lines: both show, for that employer alone."""
    (preetabli_id,) = query(
        store, "SELECT id FROM preetabli WHERE affiliate = %s", month.underpaid
    )[0]
    (gone,) = query(
        store,
        "DELETE FROM preetabli_line WHERE preetabli_id = %s AND line_no ="
        " (SELECT min(line_no) FROM preetabli_line WHERE preetabli_id = %s)"
        " RETURNING insured_number",
        preetabli_id,
        preetabli_id,
    )[0]
    query(
        store,
        "INSERT INTO preetabli_line SELECT preetabli_id, 99, 111111118, full_name, children,"
        " af_to_pay, af_to_deduct, af_net FROM preetabli_line WHERE preetabli_id = %s LIMIT 1"
        " RETURNING 1",
        preetabli_id,
    )
    query(
        store,
        "UPDATE declaration SET total_gross = total_gross + 1 WHERE affiliate = %s RETURNING 1",
        month.overpaid,
    )

    result = reconcile_period(store, PERIOD).result

    assert result.employees.to_dict("records") == [
        {"affiliate": month.underpaid, "insured_number": 111111118, "issue": "missing"},
        {"affiliate": month.underpaid, "insured_number": gone, "issue": "unexpected"},
    ]
    differing = result.employers.set_index("affiliate")["totals_differing"]
    assert differing[differing != ""].to_dict() == {month.overpaid: "total_gross"}


def test_a_rerun_replaces_the_current_result_and_keeps_the_earlier_one(store, month):
    first = reconcile_period(store, PERIOD)
    import_payments_of(store, [(month.underpaid, 12_345)], first_reference=100)

    second = reconcile_period(store, PERIOD)

    assert (first.current, second.current) == (True, True)
    current = query(
        store,
        "SELECT affiliate, status, run_id FROM reconciliation_current WHERE period = %s",
        PERIOD,
    )
    assert len(current) == len(month.affiliates)  # one row per employer and period
    assert {run for _, _, run in current} == {second.id}
    assert {a: s for a, s, _ in current}[month.underpaid] == "balanced"
    history = query(
        store,
        "SELECT r.status FROM reconciliation r JOIN reconciliation_run u ON u.id = r.run_id"
        " WHERE u.superseded_by = %s AND r.affiliate = %s",
        second.id,
        month.underpaid,
    )
    assert history == [("underpaid",)]


def test_an_older_snapshot_saved_late_goes_to_history(store, month):
    """Two runs at once: the one that read first and saves last does not become current."""
    early, early_at = read_month(store, PERIOD)
    late = reconcile_period(store, PERIOD)
    stale = save(store, reconcile(early), ran_at=early_at)

    assert (late.current, stale.current) == (True, False)
    (current,) = query(
        store,
        "SELECT id FROM reconciliation_run WHERE superseded_by IS NULL AND period = %s",
        PERIOD,
    )
    assert current == (late.id,)


def test_export_writes_csv_and_parquet_that_read_back(store, month, tmp_path):
    result = reconcile_period(store, PERIOD).result

    paths = export(result, tmp_path / "out")

    assert sorted(p.name for p in paths) == sorted(
        [f"reconciliation_{PERIOD}{s}.{e}" for s in ("", "_employees", "_branches") for e in
         ("csv", "parquet")] + [f"reconciliation_{PERIOD}_summary.json"]
    )  # fmt: skip
    parquet = pq.read_table(tmp_path / "out" / f"reconciliation_{PERIOD}.parquet")
    assert parquet.equals(
        pa.Table.from_pandas(result.employers, schema=EMPLOYERS, preserve_index=False)
    )
    csv = pacsv.read_csv(tmp_path / "out" / f"reconciliation_{PERIOD}.csv").to_pandas()
    assert csv["difference"].tolist() == result.employers["difference"].tolist()


def test_an_empty_month_reconciles_to_nothing(store):
    run = reconcile_period(store, "202501")
    assert run.result.employers.empty
    assert run.result.summary["employers"] == 0
    assert query(store, "SELECT count(*) FROM reconciliation_run") == [(1,)]


def test_a_malformed_period_is_refused_before_any_read(store):
    with pytest.raises(PeriodError, match="expected YYYYMM"):
        reconcile_period(store, "2026-10")
