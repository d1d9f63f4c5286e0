"""The reconciliation benchmark's month, generated small: it holds every case it claims to."""

from __future__ import annotations

from cnss_edi.bench_reconcile import generate, measure
from cnss_edi.store import Store
from tests.db import query


def test_a_small_generated_month_has_each_status_in_its_share(pg_conn_dsn, tmp_path):
    generate(pg_conn_dsn, 200, 3_000)  # 190 declared; 1,000 accounts, 400 without préétabli

    figures = measure(pg_conn_dsn, tmp_path)

    assert figures["current_lines"] == 3_000  # the superseded versions' lines are not read
    assert figures["statuses"] == {
        "balanced": 190 - 20,
        "underpaid": 10,
        "overpaid": 10,
        "not_declared": 10 + 1_000,  # every account's affiliate is beyond the 200 here
    }
    assert figures["employee_issues"] == 2 * 2  # employers 5 and 105: one missing, one unexpected
    assert figures["totals_differing"] == 0
    assert (tmp_path / "reconciliation_202610.parquet").exists()
    store = Store.open(pg_conn_dsn)
    superseded = query(store, "SELECT count(*) FROM declaration WHERE superseded_by IS NOT NULL")
    store.close()
    assert superseded == [(4,)]  # employers 7, 57, 107 and 157 corrected their declaration
