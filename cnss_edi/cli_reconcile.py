"""`cnss-edi reconcile`: the month's reconciliation for finance, on the terminal or as JSON.

Registered by cli.py (`add_command`); it shares its exit codes: 0 every employer balanced,
1 some employer to follow up (not balanced, employees or totals that differ), 2 wrong usage
(a malformed period), 3 the database or the disk failed, 4 an internal error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnss_edi.cli import OK, REJECTED, USAGE

if TYPE_CHECKING:
    import pandas as pd

    from cnss_edi.reconcile import Run

SHOWN = 20  # employers listed in the text output; --json and --out list them all
LISTS = ("missing_employees", "unexpected_employees", "declared_twice")


def cmd_reconcile(args: argparse.Namespace) -> int:
    from cnss_edi.cli import _database_url
    from cnss_edi.reconcile import export, reconcile_period
    from cnss_edi.store import Store
    from transforms.deadlines import PeriodError, parse_period

    try:
        period = parse_period(args.period)
    except PeriodError as error:
        print(f"cnss-edi {args.command}: {error}", file=sys.stderr)
        return USAGE
    store = Store.open(_database_url(args.database_url))
    try:
        run = reconcile_period(store, period)
    finally:
        store.close()
    written = export(run.result, Path(args.out)) if args.out else []
    deadline = _deadline(period)
    if args.json:
        for line in employer_json(run.result.employers, run.result.employees):
            print(json.dumps(line))
        summary = {"record": "summary", **run.result.summary, "run": run.id}
        print(json.dumps({**summary, "current": run.current, "deadline": deadline}))
    else:
        print(_text(run, deadline, written))
    return REJECTED if to_follow(run.result.employers).any() else OK


def to_follow(employers: pd.DataFrame) -> pd.Series:
    """Per employer: not balanced, or employees or totals that differ."""
    odd = (employers["status"] != "balanced") | (employers["totals_differing"] != "")
    return odd | (employers[list(LISTS)].sum(axis=1) > 0)


def _deadline(period: str) -> str | None:
    from schemas import NoRuleInForce
    from transforms.deadlines import deadline

    try:
        return deadline(period).deadline.isoformat()
    except NoRuleInForce:  # before the holiday tables start: no deadline to show
        return None


def employer_json(employers: pd.DataFrame, employees: pd.DataFrame) -> list[dict[str, Any]]:
    """One object per employer: the issue's fields, the insured numbers behind each count."""
    import pandas as pd

    names = dict(zip(("missing", "unexpected", "declared_twice"), LISTS, strict=True))
    grouped = employees.groupby(["affiliate", "issue"])["insured_number"].agg(list).to_dict()
    out = []
    for row in employers.to_dict("records"):
        who = {name: grouped.get((row["affiliate"], issue), []) for issue, name in names.items()}
        version = row["declaration_version"]
        out.append(
            {
                "record": "employer",
                "affiliate": int(row["affiliate"]),
                "period": row["period"],
                "status": row["status"],
                "due": int(row["due"]),
                "paid": int(row["paid"]),
                "difference": int(row["difference"]),
                **{name: [int(n) for n in numbers] for name, numbers in who.items()},
                "declaration_version": None if pd.isna(version) else int(version),
                "versions": int(row["versions"]),
                "expected": bool(row["expected"]),
                "totals_differing": [t for t in row["totals_differing"].split(";") if t],
            }
        )
    return out


def _text(run: Run, deadline: str | None, written: list[Path]) -> str:
    from transforms.money import format_mad

    s, employers = run.result.summary, run.result.employers
    lines = [
        f"period {s['period']}" + (f" (deadline {deadline})" if deadline else "") + ":"
        f" {s['employers']} employers, {s['employers_expected']} expected,"
        f" {s['employers_declared']} declared, {s['employers_paid']} paid",
        f"  balanced {s['balanced']}, underpaid {s['underpaid']}, overpaid {s['overpaid']},"
        f" not declared {s['not_declared']}",
        f"  due {format_mad(s['due'])}, paid {format_mad(s['paid'])}: still owed"
        f" {format_mad(s['shortfall'])}, paid beyond the dues or undeclared"
        f" {format_mad(s['excess'])}",
    ]
    if deadline and dt.date.fromisoformat(deadline) >= dt.date.today():
        lines.append(
            "  note: the deadline has not passed: declarations and payments may still come"
        )
    lines.append("  by branch (due / received):")
    for branch, money in s["branches"].items():
        lines.append(f"    {branch}: {format_mad(money['due'])} / {format_mad(money['received'])}")
    odd = employers[to_follow(employers)]
    if len(odd):
        lines.append("  to follow up (affiliate, status, difference):")
    for row in odd.head(SHOWN).to_dict("records"):  # at most SHOWN lines of text
        issues = [f"{row[n]} {n.replace('_', ' ')}" for n in LISTS if row[n]]
        issues += [f"totals differ: {row['totals_differing']}"] if row["totals_differing"] else []
        extra = f" ({'; '.join(issues)})" if issues else ""
        money = format_mad(int(row["difference"]))
        if row["status"] == "not declared":
            money = f"(paid {format_mad(int(row['paid']))})" if row["paid"] else "(nothing paid)"
        lines.append(f"    {int(row['affiliate']):07d} {row['status']} {money}{extra}")
    if len(odd) > SHOWN:
        lines.append(f"    … and {len(odd) - SHOWN} more: --json or --out DIR lists them all")
    state = "current" if run.current else "history: a later run is current"
    lines.append(f"stored as run {run.id} ({state})")
    if written:
        lines.append(f"written: {', '.join(str(p) for p in written)}")
    return "\n".join(lines)


def add_command(commands: argparse._SubParsersAction) -> None:
    """Register `reconcile` on cnss-edi's sub-command parser."""
    from cnss_edi.cli import _database_option

    command = commands.add_parser(
        "reconcile",
        help="the month's reconciliation: who declared and paid what they owe (finance)",
        description="For period AAAAMM, compare for every employer expected (it has a "
        "préétabli for the period, or a declarant account declares for it) and every "
        "employer that declared or paid: the employees of its préétabli with those it "
        "declared (missing, unexpected, declared twice), the totals it declared with its "
        "lines, and the contributions due (its current declaration, after corrections) with "
        "the payments received (`cnss-edi payments import`). Each employer gets a status: "
        "balanced, underpaid, overpaid or not declared. Amounts are in centimes and the "
        "difference is paid - due (negative: underpaid). The result is stored (running it "
        "again replaces it and keeps the earlier one as history).",
        epilog="Example: cnss-edi reconcile --period 202610 --out reports/. Exit codes: "
        "0 every employer balanced, 1 some employer to follow up, 2 not a period, "
        "3 database or disk failure, 4 internal error.",
    )
    command.add_argument(
        "--period", required=True, metavar="AAAAMM", help="the declared month, e.g. 202610"
    )
    command.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per employer (affiliate, period, status, due, paid, "
        "difference, missing_employees, unexpected_employees, declared_twice (insured "
        "numbers), declaration_version, …), then one summary object",
    )
    command.add_argument(
        "--out",
        metavar="DIR",
        help="also write reconciliation_AAAAMM.csv and .parquet (one line per employer), "
        "…_employees, …_branches and …_summary.json into DIR",
    )
    _database_option(command)
    command.set_defaults(handler=cmd_reconcile)
