"""The calendar commands of `cnss-edi`: deadlines, payments, penalties (a quote, and the
run), reminders.

Kept beside cli.py (which registers them with `add_commands`) so that each stays readable; they
share its exit codes. A usage error is printed here and returned as exit 2, not raised: under
`python -m cnss_edi.cli` the module that catches is __main__, whose UsageError is another class.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from cnss_edi.cli import OK, REJECTED, USAGE

if TYPE_CHECKING:
    from cnss_edi.payments import Imported


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


def cmd_payments_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnss_edi.cli import _database_url
    from cnss_edi.dropbox import NotARegularFile, printable, read_regular
    from cnss_edi.payments import MAX_BYTES, import_payments
    from cnss_edi.store import Store

    shown = printable(args.file)
    try:
        raw, size = read_regular(Path(args.file), limit=MAX_BYTES, follow=True)
    except NotARegularFile as kind:
        return _usage(args, f"{shown}: {kind}, not a regular file")
    except OSError as error:
        return _usage(args, f"{shown}: {error.strerror}")
    if raw is None:
        return _usage(args, f"{shown}: {size:,} bytes, more than {MAX_BYTES:,}: split it by month")
    store = Store.open(_database_url(args.database_url))
    try:
        name = printable(Path(args.file).name)  # undecodable bytes escaped: storable as TEXT
        done = import_payments(store, raw, file_name=name, today=dt.date.today())
    finally:
        store.close()
    if args.json:
        print(json.dumps(_imported_json(shown, done), ensure_ascii=False))
    else:
        print(_imported_text(shown, done))
    return REJECTED if done.status == "rejected" else OK


def _imported_json(name: str, done: Imported) -> dict[str, object]:
    return {
        "file": name,
        "sha256": done.sha256,
        "status": done.status,
        "rows": done.rows,
        "new_rows": done.new_rows,
        "error_count": done.error_count,
        "errors": [asdict(error) for error in done.errors],
    }


def _imported_text(name: str, done: Imported) -> str:
    if done.status == "already_imported":
        when = f"{done.imported_at:%Y-%m-%d %H:%M}" if done.imported_at else "earlier"
        return f"{name}: already imported on {when} (file #{done.file_id}); nothing changed"
    if done.status == "imported":
        known = done.rows - done.new_rows
        return f"{name}: {done.new_rows} payment(s) imported, {known} already known"
    lines = [f"{name}: rejected, nothing imported ({done.error_count} error(s))"]
    for error in done.errors:
        where = f"line {error.line}" + (f", {error.field}" if error.field else "")
        lines.append(f"  {where}: {error.rule}: {error.message}")
    if done.error_count > len(done.errors):
        lines.append(f"  … and {done.error_count - len(done.errors)} more")
    return "\n".join(lines)


def cmd_penalty(args: argparse.Namespace) -> int:
    from schemas import NoRuleInForce
    from transforms.deadlines import PeriodError

    if args.amo > args.due:
        return _usage(args, "--amo is the AMO part of --due: it cannot be larger")
    try:
        quote = penalty_quote(args)
    except (PeriodError, NoRuleInForce) as error:
        return _usage(args, str(error))
    if args.json:
        print(json.dumps(quote, ensure_ascii=False))
        return OK
    from transforms.money import format_mad

    print(f"period {quote['period']}: deadline {quote['deadline']}")
    print(f"paid on {args.paid_on.isoformat()}: {quote['months_late']} month(s) late")
    print(f"majoration: {format_mad(quote['majoration'])}")
    if args.employees is None:
        print("astreinte: not computed (give --employees, the employees of the declaration)")
    else:
        print(f"astreinte: {format_mad(quote['astreinte'])}")
    for rule in quote["rules"]:
        print(f"  {rule}")
    print(f"total: {format_mad(quote['total'])}")
    return OK


def cmd_penalties_run(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from cnss_edi.acknowledgement import MOROCCO
    from cnss_edi.cli import _database_url
    from cnss_edi.penalty_run import notices_of, run
    from cnss_edi.process import NOWHERE
    from cnss_edi.store import Store
    from transforms.money import format_mad

    day = args.day or dt.datetime.now(MOROCCO).date()
    store = Store.open(_database_url(args.database_url))
    try:
        done = run(store, day, replace(NOWHERE, outbox=Path(args.outbox).resolve()))
        listed, count = notices_of(store, day)
    finally:
        store.close()
    if args.json:
        print(json.dumps({"day": day.isoformat(), **done}))
        return OK
    print(
        f"penalties as of {day.isoformat()}: {done['assessed']} period(s) of an employer past "
        f"their deadline, {done['owing']} owing; {done['written']} new amount(s) stored, "
        f"{done['published']} notice(s) written"
    )
    for owed in listed:
        print(
            f"  {owed.affiliate:07d} {owed.period}: majoration {format_mad(owed.majoration)} "
            f"({owed.months_late} month(s)), astreinte {format_mad(owed.astreinte)} "
            f"({owed.astreinte_months} month(s)), total {format_mad(owed.total)}: "
            f"{owed.notice_name}"
        )
    if count > len(listed):
        print(f"  … and {count - len(listed)} more notice(s) of that day")
    return OK


def penalty_quote(args: argparse.Namespace) -> dict[str, Any]:
    """What an employer owes in penalties if it pays (and declares) on the given days."""
    import pandas as pd

    from schemas.penalties import astreintes as astreinte_rules
    from schemas.penalties import majorations as majoration_rules
    from transforms.deadlines import deadline
    from transforms.penalties import astreintes, majorations, summarise

    due = deadline(args.period)
    keys = {"affiliate": [0], "period": [due.period]}
    dues = pd.DataFrame(keys | {"due_general": [args.due - args.amo], "due_amo": [args.amo]})
    paid = pd.DataFrame(keys | {"amount": [args.due], "paid_on": [args.paid_on]})
    late = summarise(majorations(dues, paid, as_of=args.paid_on), dues).iloc[0]
    applied = [r for r in str(late["rules"]).split(";") if r]
    fine = 0
    if args.employees is not None:
        declared_on = args.declared_on or args.paid_on
        declared = pd.DataFrame(
            keys | {"employees": [args.employees], "declared_on": [declared_on]}
        )
        row = astreintes(declared, as_of=max(declared_on, args.paid_on)).iloc[0]
        fine = int(row["astreinte"])
        applied += [r for r in str(row["astreinte_rule"]).split(";") if r]
    described = {r.rule: r.describe() for r in majoration_rules()}
    described |= {r.rule: r.describe() for r in astreinte_rules()}
    return {
        "period": due.period,
        "deadline": due.deadline.isoformat(),
        "months_late": int(late["months_late"]),
        "majoration": int(late["majoration"]),
        "astreinte": fine,
        "total": int(late["majoration"]) + fine,
        "rules": [described[rule] for rule in applied],
    }


def _centimes(text: str) -> int:
    """An amount in centimes: digits only (argparse type)."""
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in centimes (digits only)")
    return int(text)


def _count(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of employees")
    return int(text)


def _day(text: str) -> dt.date:
    """A date written YYYY-MM-DD (fromisoformat alone would also take 20250721)."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or len(text) != len("YYYY-MM-DD"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD")
    return day


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
    _payments_parser(commands)
    _penalty_parser(commands)
    _penalties_parser(commands)
    _reminders_parser(commands)


def _penalties_parser(commands: argparse._SubParsersAction) -> None:
    from cnss_edi.cli import _database_option

    penalties = commands.add_parser(
        "penalties",
        help="late penalties of every employer (database)",
        description="Late penalties of every employer with an accepted declaration.",
    )
    actions = penalties.add_subparsers(dest="action", required=True, metavar="ACTION")
    compute = actions.add_parser(
        "run",
        help="compute, store and notify the penalties as of a day (again: no change)",
        description="For every employer and every period whose deadline has passed by DAY, "
        "compute the majorations on what was unpaid and the astreinte for a late or missing "
        "declaration, from the declarations received and the payments made by DAY; store each "
        "amount that changed, and write its penalty notice (XML) into <outbox>/<login>/out/ "
        "for every login declaring for the employer. What the edi_penalties DAG does each "
        "day. Running a day again changes nothing.",
        epilog="Exit codes: 0 computed, 2 wrong option, 3 database failure.",
    )
    compute.add_argument(
        "--day", type=_day, metavar="YYYY-MM-DD", help="the day computed (default: today, Morocco)"
    )
    compute.add_argument("--outbox", required=True, help="folder of the declarants' out/ folders")
    compute.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    _database_option(compute)
    compute.set_defaults(handler=cmd_penalties_run)


def cmd_reminders(args: argparse.Namespace) -> int:
    from cnss_edi.cli import _database_url
    from cnss_edi.reminders import plan
    from cnss_edi.store import Store
    from schemas import NoRuleInForce
    from transforms.deadlines import PeriodError, parse_period

    try:
        period = parse_period(args.period)
    except PeriodError as error:
        return _usage(args, str(error))
    store = Store.open(_database_url(args.database_url))
    try:
        found = plan(store, period)
    except NoRuleInForce as error:
        return _usage(args, str(error))
    finally:
        store.close()
    days = ", ".join(f"J-{step} {day.isoformat()}" for step, day in found.days.items())
    if args.json:
        for affiliate in found.affiliates:
            row = {
                "affiliate": f"{affiliate:07d}",
                "period": period,
                "logins": found.logins[affiliate],
            }
            print(json.dumps({**row, "days": [d.isoformat() for d in found.days.values()]}))
        return OK
    print(f"period {period}, due {found.deadline.isoformat()}: reminders on {days}")
    for affiliate in found.affiliates:
        print(f"  {affiliate:07d} not declared yet: to {', '.join(found.logins[affiliate])}")
    if not found.affiliates:
        print("  every employer with an account has declared: no reminder")
    return OK


def _reminders_parser(commands: argparse._SubParsersAction) -> None:
    from cnss_edi.cli import _database_option

    reminders = commands.add_parser(
        "reminders",
        help="which employers would be reminded for a period, and on which days",
        description="List the employers that a declarant account holds and that have no "
        "accepted declaration for period AAAAMM yet, and the days their reminders go out "
        "(5 and 2 days before the deadline, and on the day; the edi_reminders DAG sends them, "
        "once each). Nothing is sent or recorded.",
        epilog="Example: cnss-edi reminders 202611. Exit codes: 0 listed, 2 not a period.",
    )
    reminders.add_argument("period", metavar="AAAAMM", help="the declared month, e.g. 202611")
    reminders.add_argument(
        "--json", action="store_true", help="one JSON object per employer to remind"
    )
    _database_option(reminders)
    reminders.set_defaults(handler=cmd_reminders)


def _penalty_parser(commands: argparse._SubParsersAction) -> None:
    quote = commands.add_parser(
        "penalty",
        help="what penalties are owed if a period is paid on a given day (no database)",
        description="Compute the late penalties of one period, paid in full on --paid-on: the "
        "majoration (3 %% for the first month late or fraction, then 1 %% per further month, "
        "0.5 %% under loi 02.24 from 20 Feb 2025; AMO 1 %% a month) and, with --employees, "
        "the astreinte for a late declaration (50 MAD per employee, at most 5,000 MAD, per "
        "month late). A deadline CNSS extended without penalties costs nothing until its new "
        "date. Amounts in centimes.",
        epilog="Example: cnss-edi penalty --period 202406 --due 10000000 --paid-on 2024-08-11 "
        "(100,000 MAD paid a month and a day late: 4,000 MAD). Exit codes: 0 printed, 2 wrong "
        "option.",
    )
    quote.add_argument("--period", required=True, metavar="AAAAMM", help="the declared month")
    quote.add_argument(
        "--due",
        type=_centimes,
        required=True,
        metavar="CENTIMES",
        help="the contributions due for the period, in centimes (10000000 = 100,000.00 MAD)",
    )
    quote.add_argument(
        "--amo",
        type=_centimes,
        default=0,
        metavar="CENTIMES",
        help="the part of --due that is AMO (AMO and solidarity), which bears AMO's own "
        "rate; default 0",
    )
    quote.add_argument(
        "--paid-on", type=_day, required=True, metavar="YYYY-MM-DD", help="the day it is paid"
    )
    quote.add_argument(
        "--declared-on",
        type=_day,
        metavar="YYYY-MM-DD",
        help="the day the declaration is sent (default: the day it is paid)",
    )
    quote.add_argument(
        "--employees",
        type=_count,
        metavar="N",
        help="employees of the declaration: also compute the astreinte for a late one",
    )
    quote.add_argument(
        "--json",
        action="store_true",
        help='print {"period", "deadline", "months_late", "majoration", "astreinte", '
        '"total", "rules"} (amounts in centimes)',
    )
    quote.set_defaults(handler=cmd_penalty)


def _payments_parser(commands: argparse._SubParsersAction) -> None:
    from cnss_edi.cli import _database_option

    payments = commands.add_parser(
        "payments",
        help="payments received (finance)",
        description="Payments received from employers, as the bank exports them.",
    )
    actions = payments.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = actions.add_parser(
        "import",
        help="load a CSV file of payments (all of it or nothing; again: no change)",
        description="Load FILE, a CSV file with the header "
        "affiliate,period,amount_centimes,paid_on,reference and one payment per line, e.g. "
        "1234567,202510,1250000,2025-11-07,VIR-2025-000123 for 12,500.00 MAD paid on "
        "7 November 2025 for October 2025. Amounts are in centimes (no comma, no space), "
        "periods YYYYMM, dates YYYY-MM-DD; the reference is the bank's, unique per payment. "
        "If any line is wrong, the wrong lines are listed (line, column, rule; the first "
        "1,000) and nothing "
        "is loaded: correct the file and import it again. Importing the same file twice, or a "
        "payment already loaded from another file, changes nothing.",
        epilog="Exit codes: 0 loaded (or already loaded), 1 refused, 2 no such file, "
        "3 database failure.",
    )
    load.add_argument("file", metavar="FILE", help="the CSV file (UTF-8, comma-separated)")
    load.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    _database_option(load)
    load.set_defaults(handler=cmd_payments_import)
