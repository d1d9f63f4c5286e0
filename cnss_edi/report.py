"""What the commands print: JSON objects for programs, short tables for people."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from schemas import BRANCH_LABELS_FR, BRANCHES
from transforms.contributions import ContributionSummary
from transforms.money import format_mad
from validators.declaration import Validation

if TYPE_CHECKING:
    from cnss_edi.inbox import InboxRun
    from cnss_edi.process import FileOutcome


def _affiliate(value: int | None) -> str | None:
    return None if value is None else f"{value:07d}"


def validation_json(name: str, sha256: str, validation: Validation) -> dict[str, object]:
    findings = validation.findings
    return {
        "status": validation.status,
        "file": name,
        "sha256": sha256,
        "kind": validation.kind,
        "affiliate": _affiliate(validation.affiliate),
        "period": validation.period,
        "employees": validation.employees,
        "entrants": validation.entrants,
        "anomaly_count": findings.total,
        "blocking_count": findings.blocking_total,
        "anomalies": [a.as_dict() for a in findings.anomalies],
    }


def validation_text(name: str, validation: Validation) -> str:
    findings = validation.findings
    head = (
        f"{name}: {validation.status.upper()} ({validation.kind}, affiliate "
        f"{_affiliate(validation.affiliate) or '?'}, period {validation.period or '?'}, "
        f"{validation.employees} employees, {validation.entrants} entrants, "
        f"{findings.blocking_total} blocking, {findings.total - findings.blocking_total} "
        "warnings)"
    )
    rows = [
        f"  line {a.line or '-':>7}  {a.record or '':3}  {a.field or '':20}  {a.code}: {a.message}"
        for a in findings.anomalies
    ]
    if findings.total > len(findings.anomalies):
        rows.append(f"  … and {findings.total - len(findings.anomalies)} more anomalies")
    return "\n".join([head, *rows])


def contributions_json(name: str, validation: Validation, summary: ContributionSummary) -> dict:
    return {
        "file": name,
        "affiliate": _affiliate(validation.affiliate),
        "period": validation.period,
        "employees": validation.employees,
        "entrants": validation.entrants,
        **summary.as_dict(),
    }


def branch_table(summary: ContributionSummary) -> list[str]:
    rows = [f"  {'branch':38} {'base':>20} {'employer':>18} {'employee':>18}"]
    for code in BRANCHES:
        b = summary.branches[code]
        rows.append(
            f"  {BRANCH_LABELS_FR[code]:38} {format_mad(b.base):>20} "
            f"{format_mad(b.employer):>18} {format_mad(b.employee):>18}"
        )
    rows.append(
        f"  {'total':38} {'':>20} {format_mad(summary.employer):>18} "
        f"{format_mad(summary.employee):>18}"
    )
    rows.append(f"  amount due: {format_mad(summary.due)}")
    return rows


def contributions_text(name: str, validation: Validation, summary: ContributionSummary) -> str:
    head = (
        f"{name}: affiliate {_affiliate(validation.affiliate)}, period {validation.period}, "
        f"{validation.employees} employees + {validation.entrants} entrants"
    )
    return "\n".join([head, *branch_table(summary)])


def process_json(run: InboxRun, outbox: Path) -> dict[str, object]:
    outcomes = run.outcomes
    counts = Counter(o.status for o in outcomes)
    return {
        "files": len(outcomes),
        "accepted": counts["accepted"],
        "rejected": counts["rejected"],
        "duplicate": counts["duplicate"],
        "refused": [{"entry": r.where, "reason": r.reason} for r in run.refused],
        "waiting": run.waiting,
        "failed": run.failed,
        "outbox": str(outbox),
        "results": [
            {
                "file": o.file_name,
                "entry": o.where,
                "id": o.file_id,
                "kind": o.kind,
                "status": o.status,
                "affiliate": _affiliate(o.affiliate),
                "period": o.period,
                "employees": o.employees,
                "entrants": o.entrants,
                "version": o.version,
                "anomaly_count": o.anomaly_count,
                "acknowledgement": str(o.acknowledgement) if o.acknowledgement else None,
                "due": o.contributions.due if o.contributions else None,
                "resumed": o.resumed,
                # Places and rules only (no value, no message): see process_text.
                "anomalies": [
                    {
                        "code": a.code,
                        "severity": a.severity,
                        "line": a.line,
                        "record": a.record,
                        "field": a.field,
                    }
                    for a in o.anomalies
                ],
            }
            for o in outcomes
        ],
    }


def process_text(run: InboxRun, inbox: Path, outbox: Path, archive: Path) -> str:
    outcomes = run.outcomes
    counts = Counter(o.status for o in outcomes)
    rows = [f"{len(outcomes)} files processed from {inbox}"]
    rows += _outcome_rows(outcomes)
    rows += [f"  refused   {r.where}: {r.reason}" for r in run.refused]
    rows += [f"  FAILED    {where}: internal error, left for the next run" for where in run.failed]
    if run.waiting:
        rows.append(f"{run.waiting} upload(s) in progress left for a later run")
    declarations = [o for o in outcomes if o.contributions is not None]
    rows.append(
        f"accepted {counts['accepted']}, rejected {counts['rejected']}, "
        f"duplicate {counts['duplicate']}, refused {len(run.refused)}"
    )
    if declarations:
        total = _sum_summaries([o.contributions for o in declarations if o.contributions])
        employees = sum((o.employees or 0) + (o.entrants or 0) for o in declarations)
        rows.append(
            f"{len(declarations)} declarations loaded, {employees:,} employees; "
            "amounts due per branch:"
        )
        rows += branch_table(total)
    rows.append(f"acknowledgements: {outbox}   processed inputs: {archive}")
    return "\n".join(rows)


def preetabli_text(outcomes: Sequence[FileOutcome]) -> str:
    """What `load-preetabli` stored."""
    return "\n".join(_outcome_rows(outcomes))


def _outcome_rows(outcomes: Sequence[FileOutcome]) -> list[str]:
    rows = []
    for o in outcomes:
        detail = f"{o.anomaly_count} anomalies"
        if o.contributions is not None:
            detail = (
                f"{o.employees} employees, {o.entrants} entrants, version {o.version}, "
                f"due {format_mad(o.contributions.due)}"
            )
        elif o.kind == "preetabli" and o.status == "accepted":
            detail = f"préétabli, {o.employees} employees expected"
        if o.resumed:
            detail = "finished after an interrupted run"
        rows.append(f"  {o.status:9} {o.where or o.file_name:32} {detail}")
        # Where, and which rule, but no value or message: this summary may end up in a task
        # log, and a value can be a salary or a name. The acknowledgement has everything.
        blocking = [a for a in o.anomalies if a.blocking] if o.status == "rejected" else []
        rows += [
            f"{'':13}line {a.line or '-'} {a.record or ''}.{a.field or ''}: {a.code}"
            for a in blocking[:3]
        ]
    return rows


def _sum_summaries(summaries: Sequence[ContributionSummary]) -> ContributionSummary:
    from transforms.contributions import BranchAmounts

    branches = {
        code: BranchAmounts(
            *(
                sum(getattr(s.branches[code], f) for s in summaries)
                for f in ("base", "employer", "employee")
            )
        )
        for code in BRANCHES
    }
    return ContributionSummary(
        branches, sum(s.employer for s in summaries), sum(s.employee for s in summaries)
    )


def is_environment_failure(error: BaseException) -> bool:
    """The database or the disk failed (exit 3), as opposed to a bug of ours (exit 4)."""
    import psycopg2

    from cnss_edi.postgres import PostgresUnavailable

    return isinstance(error, psycopg2.Error | PostgresUnavailable | OSError)


def describe_failure(error: BaseException) -> str:
    """A failure in words that can be shown and logged: database errors carry row contents
    (salaries, names) in their text, so only their class and SQLSTATE are shown."""
    import psycopg2

    from cnss_edi.postgres import PostgresUnavailable

    if isinstance(error, PostgresUnavailable):
        return str(error)
    if isinstance(error, psycopg2.Error):
        return f"database error {type(error).__name__} (SQLSTATE {error.pgcode or 'n/a'})"
    if isinstance(error, OSError):
        return f"{error.strerror or type(error).__name__}: {error.filename or ''}".strip()
    return f"internal error {type(error).__name__} (set CNSS_EDI_DEBUG=1 for details)"
