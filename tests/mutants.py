"""`make mutants`: break each safety net on purpose and check that a test notices.

Each mutant replaces one piece of source text, runs the tests that should catch it, and puts
the source back. A mutant that survives (all its tests pass) is a safety net nobody tests.
Not collected by pytest (no test_ prefix); run it by hand or with `make mutants`.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    original: str
    broken: str
    tests: tuple[str, ...]
    slow: bool = False  # its tests are marked slow (they run anyway)


MUTANTS = (
    Mutant(
        "the stored préétabli is never found",
        "cnss_edi/store.py",
        "            found = cursor.fetchone()\n            if found is None:",
        "            found = None\n            if found is None:",
        ("tests/test_inbox.py",),
    ),
    Mutant(
        "the rate table takes the earliest rows in force",
        "schemas/__init__.py",
        "dates[-1]",
        "dates[0]",
        ("tests/test_schemas.py",),
    ),
    Mutant(
        "interrupted files are not finished",
        "cnss_edi/inbox.py",
        "                finish(store, row, locations)\n",
        "                pass\n",
        ("tests/test_process.py",),
    ),
    Mutant(
        "the archive step trusts the claimed file",
        "cnss_edi/process.py",
        "if dropbox.sha256_of(claimed) == row.sha256:",
        "if True:",
        ("tests/test_inbox.py",),
    ),
    Mutant(
        "the drop box follows links",
        "cnss_edi/dropbox.py",
        "status = entry.stat(follow_symlinks=False)",
        "status = entry.stat(follow_symlinks=True)",
        ("tests/test_inbox.py",),
    ),
    Mutant(
        "hard links are taken",
        "cnss_edi/dropbox.py",
        "elif status.st_nlink != 1:",
        "elif False:",
        ("tests/test_inbox.py",),
    ),
    Mutant(
        "a file still changing is taken",
        "cnss_edi/dropbox.py",
        "    if settle <= 0 or all(",
        "    if True or all(",
        ("tests/test_inbox.py",),
    ),
    Mutant(
        "the current version is the last committed",
        "cnss_edi/store.py",
        "if receipt_id is not None and (current_receipt or 0) > receipt_id:",
        "if False:",
        ("tests/test_store.py", "tests/test_inbox.py"),
    ),
    Mutant(
        "a rejection for the context blocks the same bytes sent right",
        "validators/declaration.py",
        "return self.findings.rejected and any(",
        "return False and any(",
        ("tests/test_inbox.py", "tests/test_declaration.py"),
    ),
    Mutant(
        "acknowledgements keep mkstemp's 0600",
        "cnss_edi/files.py",
        "        os.fchmod(handle, mode)\n",
        "",
        ("tests/test_inbox.py",),
    ),
    Mutant(
        "a content judged meanwhile by another worker is an error",
        "cnss_edi/process.py",
        "        if error.diag.constraint_name != ONE_JUDGEMENT:",
        "        if True:",
        ("tests/test_inbox.py",),
    ),
    Mutant(
        "a préétabli from a declarant is accepted",
        "validators/declaration.py",
        'if kind == "preetabli" and from_declarant:',
        'if kind == "preetabli" and from_declarant and False:',
        ("tests/test_inbox.py",),
    ),
    Mutant(
        "a link swapped in before the claim stops every run",
        "cnss_edi/dropbox.py",
        "if error.errno == errno.ELOOP and not follow:",
        "if False:",
        ("tests/test_inbox.py",),
    ),
    Mutant(
        "a second name for the claimed bytes goes unnoticed",
        "cnss_edi/dropbox.py",
        "if status.st_nlink != 1 and not follow:",
        "if False:",
        ("tests/test_inbox.py",),
    ),
    Mutant(
        "a group declares for its first company only",
        "validators/structure.py",
        "affiliate in depositor.affiliates",
        "affiliate == min(depositor.affiliates, default=None)",
        ("tests/test_accounts.py", "tests/test_structure.py"),
    ),
    Mutant(
        "another login's copy is told of the original",
        "cnss_edi/process.py",
        "return depositor is None or original.affiliate in depositor.affiliates",
        "return True",
        ("tests/test_accounts.py",),
    ),
    Mutant(
        "the Celery worker cannot be scaled",
        "docker-compose.yml",
        "  airflow-worker:\n    <<: *airflow-common\n",
        "  airflow-worker:\n    <<: *airflow-common\n    container_name: airflow-worker\n",
        ("tests/test_compose.py",),
    ),
    Mutant(
        "the Airflow UI listens on every interface",
        "docker-compose.yml",
        '["127.0.0.1:8080:8080"]',
        '["8080:8080"]',
        ("tests/test_compose.py",),
    ),
    Mutant(
        "a password is written in docker-compose.yml",
        "docker-compose.yml",
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in .env (see README)}",
        "POSTGRES_PASSWORD: change-me",
        ("tests/test_compose.py",),
    ),
    Mutant(
        "the workers reach the CNSS database as Airflow's role",
        "docker-compose.yml",
        "postgresql://cnss_edi:${CNSS_EDI_DB_PASSWORD:?set it in .env (see README)}"
        "@postgres:5432/cnss_edi\n      # The worker's own copies",
        "postgresql://airflow:${AIRFLOW_DB_PASSWORD:?set it in .env (see README)}"
        "@postgres:5432/airflow\n      # The worker's own copies",
        ("tests/test_compose.py",),
    ),
    Mutant(
        "Airflow starts before its database is migrated",
        "docker-compose.yml",
        "condition: service_completed_successfully",
        "condition: service_started",
        ("tests/test_compose.py",),
    ),
    Mutant(
        "the stack's secrets can be committed",
        ".gitignore",
        ".secrets/\n",
        "",
        ("tests/test_compose.py",),
    ),
    Mutant(
        "préétabli lines read back in table order",
        "cnss_edi/store.py",
        "        if (line_no[1:] < line_no[:-1]).any():",
        "        if False:",
        ("tests/test_store.py",),
    ),
    Mutant(
        "binary COPY wraps an integer too wide for its column",
        "cnss_edi/pgcopy.py",
        "    if width < 8 and len(values) and (values.min() < -limit or values.max() >= limit):",
        "    if False:",
        ("tests/test_pgcopy.py",),
    ),
    Mutant(
        "a 19-digit field past int64's maximum decodes as valid",
        "transforms/parse.py",
        "        valid[layout.wide] &= values[layout.wide] <= np.uint64(INT64_MAX)",
        "        pass",
        ("tests/test_parse.py",),
    ),
    Mutant(
        "a log line carries the file's bytes (names, salaries, CINs)",
        "cnss_edi/process.py",
        '        "file %s (%s): %s, %d anomalies",\n        outcome.file_id,',
        '        "file %s (%s): %s, %d anomalies",\n        raw,',
        (
            "tests/test_dags.py::test_edi_ingest_over_sftp_answers_every_declarant_and_logs_no_person",
        ),
        slow=True,
    ),
    Mutant(
        "a claim lost with the connection forgets its receipt",
        "cnss_edi/inbox.py",
        "    except BaseException:  # the rename may have happened",
        "    except ServerLost:\n        store.drop_receipt(receipt.id)\n        raise\n"
        "    except BaseException:  # the rename may have happened",
        ("tests/test_remote.py",),
    ),
    Mutant(
        "the service takes files the declarant made unreadable",
        "cnss_edi/remote.py",
        "elif not mode & stat.S_IROTH:",
        "elif False:",
        ("tests/test_remote.py",),
    ),
    Mutant(
        "the service trusts any SFTP server",
        "cnss_edi/remote.py",
        '!= " ".join(address.host_key.split()[:2]):',
        '!= shown.get_name() + " " + shown.get_base64() and False:',
        ("tests/test_remote.py",),
    ),
    Mutant(
        "the month-end préétabli keeps the leavers",
        "cnss_edi/preetablis.py",
        "LEAVERS = tuple(code for code, s in situations().items() if s.af_reversed)",
        "LEAVERS = ('none',)",
        ("tests/test_month_end.py",),
    ),
    Mutant(
        "the reconciliation adds a correction's lines to the earlier version's",
        "cnss_edi/reconcile.py",
        '_CURRENT = "d.period = {period} AND d.superseded_by IS NULL"',
        '_CURRENT = "d.period = {period}"',
        ("tests/test_reconcile.py",),
    ),
    Mutant(
        "a reconciliation of an older snapshot, saved last, becomes current",
        "cnss_edi/reconcile.py",
        "if found is not None and found[1] > ran_at:",
        "if False:",
        ("tests/test_reconcile.py",),
    ),
    Mutant(
        "a payment on account makes an employer declared",
        "transforms/reconciliation.py",
        "[~declared, difference == 0, difference < 0],",
        "[~declared & (difference == 0), difference == 0, difference < 0],",
        ("tests/test_reconciliation.py",),
    ),
    Mutant(
        "a reminder already sent is sent again",
        "cnss_edi/reminders.py",
        "            if cursor.fetchone() is None:",
        "            if cursor.fetchone() is None and False:",
        ("tests/test_reminders.py",),
    ),
    Mutant(
        "the quality checkpoint lists offending values (salaries) in its results",
        "cnss_edi/quality.py",
        '"partial_unexpected_count": 0}',
        '"partial_unexpected_count": 20}',
        ("tests/test_quality.py",),
    ),
    Mutant(
        "the quality suite forgets the ceiling",
        "cnss_edi/expectations.py",
        '{"column": "capped_salary", "max_value": ceiling_for(period)}',
        '{"column": "capped_salary", "max_value": 10**12}',
        ("tests/test_expectations.py", "tests/test_quality.py"),
    ),
    Mutant(
        "the report splits payments by branch without running totals",
        "transforms/campaign.py",
        "prorate(covered, running, whole)",
        'prorate(covered, owed["due"].to_numpy("int64"), whole).cumsum()',
        ("tests/test_campaign.py",),
    ),
    Mutant(
        "the report page loads a remote script",
        "cnss_edi/report_page.py",
        "<style>{STYLE}</style></head>",
        '<style>{STYLE}</style><script src="https://cdn.example/x.js"></script></head>',
        ("tests/test_monthly_report.py",),
    ),
    Mutant(
        "penalties: a declaration received after the day computed counts",
        "cnss_edi/penalty_run.py",
        "AND f.received_at < %(end)s",
        "AND %(end)s IS NOT NULL",
        ("tests/test_penalty_run.py",),
    ),
    Mutant(
        "penalties: every case is written, owing or not",
        "transforms/penalty_assessment.py",
        "    return assessed[differs]",
        "    return assessed",
        ("tests/test_penalty_run.py", "tests/test_penalty_assessment.py"),
    ),
    Mutant(
        "penalties: a notice goes to every login",
        "cnss_edi/penalty_run.py",
        "for account in logins.get(affiliate, []):",
        "for account in {x.login: x for found in logins.values() for x in found}.values():",
        ("tests/test_penalty_run.py",),
    ),
    Mutant(
        "penalties: an extension never waives them",
        "transforms/deadlines.py",
        "late_after = last.deadline if last.penalties_waived else ordinary",
        "late_after = ordinary",
        ("tests/test_penalty_run.py",),
    ),
    Mutant(
        "penalties: the notice prices the salaries, not the contributions",
        "cnss_edi/penalty_run.py",
        "d.total_due AS due",
        "d.total_gross AS due",
        ("tests/test_penalty_run.py::test_a_notice_names_no_one_and_shows_no_salary",),
    ),
    Mutant(
        "the month-end run forgets the préétablis it already wrote",
        "cnss_edi/preetablis.py",
        "        return {row[0] for row in cursor.fetchall()}",
        "        return set()",
        ("tests/test_month_end.py",),
    ),
)


def survives(mutant: Mutant) -> bool:
    path = ROOT / mutant.path
    source = path.read_text()
    if source.count(mutant.original) != 1:
        raise SystemExit(f"{mutant.name}: the text to break is not found once in {mutant.path}")
    path.write_text(source.replace(mutant.original, mutant.broken))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", *_markers(mutant), *mutant.tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    finally:
        path.write_text(source)
    return result.returncode in (0, 5)  # 5: no test ran, so none noticed


def _markers(mutant: Mutant) -> list[str]:
    return [] if mutant.slow else ["-m", "not slow"]


def main(names: list[str]) -> int:
    """Run every mutant, or those whose name contains one of `names`."""
    chosen = [m for m in MUTANTS if not names or any(n in m.name for n in names)]
    survivors = 0
    for mutant in chosen:
        alive = survives(mutant)
        survivors += alive
        print(f"{'SURVIVED' if alive else 'killed  '}  {mutant.name}", flush=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} mutants killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
