"""The calendar commands of `cnss-edi`: deadlines, payments, penalties.

Kept beside cli.py (which registers them with `add_commands`) so that each stays readable; they
share its exit codes. A usage error is printed here and returned as exit 2, not raised: under
`python -m cnss_edi.cli` the module that catches is __main__, whose UsageError is another class.
"""

from __future__ import annotations

import argparse
import json
import sys

from cnss_edi.cli import OK, USAGE


def _usage(args: argparse.Namespace, message: str) -> int:
    print(f"cnss-edi {args.command}: {message}", file=sys.stderr)
    return USAGE


def cmd_deadline(args: argparse.Namespace) -> int:
    from schemas import NoRuleInForce
    from transforms.deadlines import PeriodError, deadline

    try:
        due = deadline(args.period)
    except (PeriodError, NoRuleInForce) as error:
        return _usage(args, str(error))
    if args.json:
        print(json.dumps(due.as_json(), ensure_ascii=False))
        return OK
    print(f"period {due.period}: due on the 10th of the next month, {due.base.isoformat()}")
    for reason in due.reasons:
        print(f"  {reason}")
    if due.late_after != due.deadline:
        print(f"  late penalties still run after {due.late_after.isoformat()}")
    if due.estimated:
        print("  note: a nearby Islamic holiday is an estimate (not announced yet)")
    print(due.deadline.isoformat())
    return OK


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register the calendar commands on cnss-edi's sub-command parser."""
    due = commands.add_parser(
        "deadline",
        help="when a period's declaration and payment are due",
        description="Print the deadline of period AAAAMM: the 10th of the following month, "
        "moved to the next working day when it falls on a weekend or a Moroccan public holiday, "
        "or the date CNSS extended it to. The lines before the date say why it moved; the last "
        "line is the date itself (YYYY-MM-DD).",
        epilog="Example: cnss-edi deadline 202403 prints 2024-04-12 (10 and 11 April 2024 "
        "were Aïd Al Fitr). Exit codes: 0 printed, 2 not a period.",
    )
    due.add_argument("period", metavar="AAAAMM", help="the declared month, e.g. 202506")
    due.add_argument(
        "--json",
        action="store_true",
        help='print {"period", "deadline", "base", "reasons", "estimated"} instead; '
        "estimated is true when an Islamic holiday date it depends on is not announced yet",
    )
    due.set_defaults(handler=cmd_deadline)
