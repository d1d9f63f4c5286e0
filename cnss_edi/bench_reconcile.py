"""`python -m cnss_edi.bench_reconcile`: how long a month's reconciliation takes, one JSON line.

The month is generated inside PostgreSQL (generate_series, no file, no Python row): 160,000
employers with a préétabli, 95 % of them declared (3,000,000 current lines, B02 and a few
B04 entrants, six branches of contributions each), 2 % with a superseded first version (its
lines kept), one roster in a hundred that differs from its declaration by one employee, 1,000
declarant accounts (a few hundred for employers without a préétabli), and payments: balanced,
underpaid, overpaid, paid in two parts, not declared but paid on account. Then it times each
step of `cnss_edi.reconcile`: read (COPY into Arrow), reconcile (pandas), save (COPY), export.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

EMPLOYERS, LINES, PERIOD = 160_000, 3_000_000, "202610"
# e % 20: 0 not declared (every other one pays on account), 1 underpaid, 2 overpaid, 3 paid
# in two parts, else balanced; e % 50 = 7: corrected once; e % 100 = 5: roster differs.
GENERATE = [
    (
        "files",
        "INSERT INTO edi_file (id, file_name, sha256, size_bytes, kind, status, affiliate,"
        " period, received_at, source_path, archive_path, acknowledgement_path,"
        " acknowledgement_xml) SELECT f, 'bench', md5(f::text) || md5('x' || f), 0,"
        " CASE WHEN f <= %(n)s THEN 'preetabli' ELSE 'declaration' END, 'accepted',"
        " 1000000 + (f - 1) %% %(n)s, %(period)s, now(), '', '', '', ''"
        " FROM generate_series(1, 3 * %(n)s) f",
    ),
    (
        "preetablis",
        "INSERT INTO preetabli (id, edi_file_id, affiliate, period, employees)"
        " SELECT e + 1, e + 1, 1000000 + e, %(period)s, 0 FROM generate_series(0, %(n)s - 1) e",
    ),
    # Line g belongs to the j-th declared employer, e = j + j / 19 + 1 (skipping e % 20 = 0).
    (
        "lines",
        "INSERT INTO declaration_line (declaration_id, line_no, block, insured_number,"
        " full_name, days, gross_salary, capped_salary, situation, control_sum,"
        " employer_contribution, employee_contribution)"
        " SELECT e + 1, g, CASE WHEN g %% 50 = 0 THEN 'B04' ELSE 'B02' END, 100000001 + g,"
        " 'SALARIE ' || g, 26, s, least(s, 600000), 'SO', 0,"
        " (s * 1626 + least(s, 600000) * 898) / 10000, (s * 226 + least(s, 600000) * 448) / 10000"
        " FROM (SELECT g, j + j / 19 + 1 AS e, 300000 + (g::bigint * 7919) %% 900000 AS s"
        " FROM (SELECT g, (g::bigint * %(declared)s / %(lines)s)::int AS j"
        " FROM generate_series(0, %(lines)s - 1) g) x) y",
    ),
    (
        "superseded lines",
        "INSERT INTO declaration_line SELECT %(n)s + declaration_id, line_no, block,"
        " insured_number, full_name, cin, children, af_to_pay, af_to_deduct, af_net,"
        " af_to_reverse, days, gross_salary - 100, capped_salary, situation, control_sum,"
        " employer_contribution, employee_contribution FROM declaration_line"
        " WHERE (declaration_id - 1) %% 50 = 7",
    ),
    (
        "roster",
        "INSERT INTO preetabli_line (preetabli_id, line_no, insured_number, full_name,"
        " children, af_to_pay, af_to_deduct, af_net)"
        " SELECT declaration_id, line_no, CASE WHEN (declaration_id - 1) %% 100 = 5"
        " AND line_no = min(line_no) OVER (PARTITION BY declaration_id) THEN 190000000 +"
        " declaration_id ELSE insured_number END, full_name, 0, 0, 0, 0"
        " FROM declaration_line WHERE block = 'B02' AND declaration_id <= %(n)s"
        " UNION ALL SELECT e + 1, k, 180000000 + e * 20 + k, 'ABSENT', 0, 0, 0, 0"
        " FROM generate_series(0, %(n)s - 1, 20) e, generate_series(1, 19) k",
    ),
    (
        "roster counts",
        "UPDATE preetabli p SET employees = c.n FROM (SELECT preetabli_id, count(*) AS n"
        " FROM preetabli_line GROUP BY 1) c WHERE c.preetabli_id = p.id",
    ),
    (
        "declarations",
        "INSERT INTO declaration (id, edi_file_id, affiliate, period, version, superseded_by,"
        " employees, entrants, total_gross, total_capped, employer_due, employee_due,"
        " total_due) SELECT declaration_id, %(n)s + declaration_id,"
        " 999999 + declaration_id - CASE WHEN declaration_id > %(n)s THEN %(n)s ELSE 0 END,"
        " %(period)s, CASE WHEN declaration_id > %(n)s THEN 1"
        " WHEN (declaration_id - 1) %% 50 = 7 THEN 2 ELSE 1 END,"
        " CASE WHEN declaration_id > %(n)s THEN declaration_id - %(n)s END,"
        " count(*) FILTER (WHERE block = 'B02'), count(*) FILTER (WHERE block = 'B04'),"
        " sum(gross_salary), sum(capped_salary), sum(employer_contribution),"
        " sum(employee_contribution), sum(employer_contribution + employee_contribution)"
        " FROM declaration_line GROUP BY declaration_id",
    ),
    (
        "contributions",
        "INSERT INTO contribution (declaration_id, branch, base, employer, employee)"
        " SELECT d.id, b.branch, 0, d.employer_due * b.upto / 100 - d.employer_due * b.since"
        " / 100, d.employee_due * b.upto / 100 - d.employee_due * b.since / 100"
        " FROM declaration d, (VALUES ('family_allowances', 0, 40), ('short_term', 40, 47),"
        " ('long_term', 47, 77), ('amo', 77, 86), ('amo_solidarity', 86, 93),"
        " ('professional_training', 93, 100)) b (branch, since, upto)",
    ),
    (
        "accounts",
        "INSERT INTO declarant (login, kind, affiliates) SELECT 'employer' || a, 'employer',"
        " ARRAY[CASE WHEN a <= 400 THEN 3000000 + a ELSE 1000000 + a * 97 END]"
        " FROM generate_series(1, 1000) a",
    ),
    (
        "payments",
        "INSERT INTO payment_file (id, sha256, file_name, rows, new_rows)"
        " VALUES (1, repeat('0', 64), 'bench.csv', 0, 0);"
        " INSERT INTO payment (reference, affiliate, period, amount, paid_on, payment_file_id,"
        " line_no) SELECT 'P' || affiliate || '-' || part, affiliate, period, CASE"
        " WHEN e %% 20 = 1 THEN total_due - 1000 WHEN e %% 20 = 2 THEN total_due + 500"
        " WHEN e %% 20 = 3 AND part = 1 THEN total_due / 2"
        " WHEN e %% 20 = 3 THEN total_due - total_due / 2 ELSE total_due END,"
        " DATE '2026-11-09', 1, 0 FROM (SELECT affiliate, period, total_due, affiliate - 1000000"
        " AS e FROM declaration WHERE superseded_by IS NULL) d,"
        " generate_series(1, 2) part WHERE part = 1 OR e %% 20 = 3"
        " UNION ALL SELECT 'A' || e, 1000000 + e, %(period)s, 100000, DATE '2026-11-09', 1, 0"
        " FROM generate_series(0, %(n)s - 1, 40) e",
    ),
]


def generate(dsn: str, employers: int, lines: int) -> float:
    """Fill an empty database with the month; seconds taken."""
    import psycopg2

    from cnss_edi.store import Store

    Store.open(dsn).close()  # the schema
    values = {"n": employers, "lines": lines, "declared": employers - (employers + 19) // 20}
    started = time.perf_counter()
    connection = psycopg2.connect(dsn)
    with connection, connection.cursor() as cursor:
        for _, statement in GENERATE:
            cursor.execute(statement, {**values, "period": PERIOD})
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    return time.perf_counter() - started


def measure(dsn: str, out: Path) -> dict[str, object]:
    """Each step of the reconciliation, timed."""
    from cnss_edi.reconcile import export, read_month, save
    from cnss_edi.store import Store
    from transforms.reconciliation import reconcile

    store = Store.open(dsn)
    steps: dict[str, float] = {}
    started = time.perf_counter()
    month, ran_at = read_month(store, PERIOD)
    steps["read_s"] = time.perf_counter() - started
    result = reconcile(month)
    steps["reconcile_s"] = time.perf_counter() - started - sum(steps.values())
    save(store, result, ran_at=ran_at)
    steps["save_s"] = time.perf_counter() - started - sum(steps.values())
    export(result, out)
    steps["export_s"] = time.perf_counter() - started - sum(steps.values())
    store.close()
    s = result.summary
    return {
        "employers": s["employers"],
        "current_lines": len(month.lines),
        "roster_lines": len(month.roster),
        "payments": len(month.payments),
        **{k: round(v, 2) for k, v in steps.items()},
        "total_s": round(sum(steps.values()), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "statuses": {k: s[k] for k in ("balanced", "underpaid", "overpaid", "not_declared")},
        "employee_issues": len(result.employees),
        "totals_differing": s["totals_differing"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cnss_edi.bench_reconcile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="a fraction of the month (0.25: 40,000 employers, 750,000 lines); default 1",
    )
    parser.add_argument(
        "--database-url",
        help="an empty database to fill (default: a throwaway local PostgreSQL)",
    )
    args = parser.parse_args()
    employers, lines = round(EMPLOYERS * args.scale), round(LINES * args.scale)
    work = Path(tempfile.mkdtemp(prefix="cnss-edi-bench-reconcile-"))
    try:
        if args.database_url:
            figures = _run(args.database_url, employers, lines, work)
        else:
            from cnss_edi.postgres import LocalPostgres

            work.chmod(0o755)  # as root, the postgres account must reach the cluster's folder
            with LocalPostgres(work / "pg", durable=False) as server:
                figures = _run(server.url(), employers, lines, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"scale": args.scale, **figures}))


def _run(dsn: str, employers: int, lines: int, work: Path) -> dict[str, object]:
    generate_s = generate(dsn, employers, lines)
    return {"generate_s": round(generate_s, 1), **measure(dsn, work / "out")}


if __name__ == "__main__":
    main()
