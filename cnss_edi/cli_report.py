"""The monthly commands of `cnss-edi`: `quality` (the Great Expectations checkpoint) and
`report` (the campaign page). Registered by cli.py through `add_commands`; same exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from cnss_edi.cli import OK, REJECTED, USAGE


def _period(args: argparse.Namespace) -> str | None:
    """The period, checked; None after printing why it is not one (exit 2)."""
    from schemas import NoRuleInForce
    from transforms.deadlines import PeriodError, deadline

    try:
        return deadline(args.period).period
    except (PeriodError, NoRuleInForce) as error:
        print(f"cnss-edi {args.command}: {error}", file=sys.stderr)
        return None


def cmd_quality(args: argparse.Namespace) -> int:
    from cnss_edi.cli import _database_url
    from cnss_edi.monthly_report import DATA_DOCS
    from cnss_edi.quality import check_period
    from cnss_edi.store import Store

    period = _period(args)
    if period is None:
        return USAGE
    store = Store.open(_database_url(args.database_url))
    try:
        result = check_period(store, period, Path(args.out) / DATA_DOCS)
    finally:
        store.close()
    if args.json:
        print(
            json.dumps(
                {
                    "period": period,
                    "success": result.success,
                    "rows": result.rows,
                    "failed": [asdict(f) for f in result.findings],
                    "data_docs": str(result.docs_index),
                },
                ensure_ascii=False,
            )
        )
    else:
        print(result.summary())
        print(f"Data Docs: {result.docs_index}")
    return OK if result.success else REJECTED


def cmd_report(args: argparse.Namespace) -> int:
    from cnss_edi.cli import _database_url
    from cnss_edi.monthly_report import write_report
    from cnss_edi.store import Store

    period = _period(args)
    if period is None:
        return USAGE
    store = Store.open(_database_url(args.database_url))
    try:
        path = write_report(store, period, Path(args.out))
    finally:
        store.close()
    print(path)
    return OK


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `quality` and `report` on cnss-edi's sub-command parser."""
    from cnss_edi.cli import _database_option

    quality = commands.add_parser(
        "quality",
        help="check a period's loaded declarations with Great Expectations",
        description="Run the data-quality checkpoint on every loaded line and contribution of "
        "period AAAAMM: types, days 0–26, salaries ≥ 0, capped salary ≤ real and ≤ the "
        "period's ceiling, an insured number once per declaration, known situation codes, "
        "contributions equal to the salaries at the period's rates. Prints which expectations "
        "failed and on how many rows (never a value), and builds the Data Docs (HTML) in "
        "DIR/data_docs/.",
        epilog="Exit codes: 0 every expectation met, 1 some failed, 2 not a period, "
        "3 database failure.",
    )
    report = commands.add_parser(
        "report",
        help="write the period's campaign report: one HTML page that opens offline",
        description="Write DIR/report_AAAAMM.html: the share of expected employers declared "
        "day by day against the deadline (and its extension), amounts due and paid by branch, "
        "the most frequent anomaly codes, the employers late, not declared or underpaid, and "
        "a link to the Data Docs when `cnss-edi quality --out DIR` built them. No name, CIN or "
        "salary of anyone is on the page. Prints the page's path.",
        epilog="Example: cnss-edi report --period 202610 --out reports/. Exit codes: 0 written, "
        "2 not a period, 3 database or disk failure.",
    )
    for parser in (quality, report):
        parser.add_argument("--period", required=True, metavar="AAAAMM", help="e.g. 202610")
        parser.add_argument("--out", required=True, metavar="DIR", help="where to write")
        _database_option(parser)
    quality.add_argument("--json", action="store_true", help="print the outcome as JSON")
    quality.set_defaults(handler=cmd_quality)
    report.set_defaults(handler=cmd_report)
