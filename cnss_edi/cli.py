"""`cnss-edi`: the command line of the CNSS EDI back office.

Exit codes: 0 all files accepted, 1 at least one file rejected (or an entry refused), 2 unusable
invocation (missing file, bad option), 3 the database or the file system failed, 4 an internal
error (a bug: the files it touched wait for the next run). Bad input never shows a Python
traceback; set CNSS_EDI_DEBUG=1 to see one for an internal error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import validators
from cnss_edi.dropbox import SERVICE_LOGIN

if TYPE_CHECKING:  # the commands import what they need when they run: --help stays instant
    from cnss_edi import sshd
    from cnss_edi.accounts import Account
    from cnss_edi.store import Store
    from transforms.parse import ParsedFile
    from validators.declaration import Validation
    from validators.preetabli import Roster

OK, REJECTED, USAGE, FAILURE, INTERNAL = 0, 1, 2, 3, 4
PIPE_CLOSED = 141  # what a shell reports for a command stopped by SIGPIPE


class UsageError(Exception):
    """The command cannot run as asked (exit 2); the message says what to change."""


def _progress(label: str) -> Callable[[int, int], None] | None:
    """A one-line progress counter on a terminal; nothing in CI, logs or pipes."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        print(f"\r{label}: {done:,}/{total:,}", end=end, file=sys.stderr, flush=True)

    return show


def _read(path: Path) -> bytes | None:
    """A file named on the command line (links followed: the user chose it), or None when it
    is larger than any valid declaration. Never blocks on a FIFO or a device."""
    from cnss_edi.dropbox import NotARegularFile, read_regular
    from schemas import MAX_FILE_BYTES

    try:
        raw, _ = read_regular(path, limit=MAX_FILE_BYTES, follow=True)
    except NotARegularFile as kind:
        raise UsageError(f"{path}: {kind}, not a regular file") from None
    except OSError as error:  # missing, a folder, no permission, a link loop, too long…
        raise UsageError(f"{_shown(path)}: {error.strerror}") from None
    return raw


def _shown(path: Path) -> str:
    from cnss_edi.dropbox import printable

    text = printable(str(path))
    return text if len(text) <= 200 else f"…{text[-199:]}"


def cmd_sample(args: argparse.Namespace) -> int:
    from cnss_edi.sample import SampleTooLarge, write_flawed_copy, write_samples

    if args.from_preetabli:
        return _answer(args)
    missing = [f"--{n}" for n in ("affiliate", "period", "employees") if getattr(args, n) is None]
    if missing:
        raise UsageError(f"sample needs {', '.join(missing)} (or --from-preetabli FILE)")
    try:
        paths = write_samples(
            Path(args.out),
            affiliate=args.affiliate,
            period=args.period,
            employees=args.employees,
            employers=args.employers,
            entrants=args.entrants,
            seed=args.seed,
            progress=_progress("employees written"),
        )
    except (SampleTooLarge, ValueError) as error:
        raise UsageError(str(error)) from None
    if args.with_errors:
        paths.append(write_flawed_copy(paths[1]))
    print(f"{len(paths)} files written to {args.out}")
    import numpy as np

    from transforms.keys import affiliate_key_ok

    if not affiliate_key_ok(np.array([args.affiliate]))[0]:
        print(
            f"note: {args.affiliate} fails the public check-key algorithm; its files will "
            "carry a CLE_AFFILIE warning (not a rejection)",
            file=sys.stderr,
        )
    return OK


def _answer(args: argparse.Namespace) -> int:
    """sample --from-preetabli: the declaration that answers a préétabli CNSS sent."""
    from cnss_edi.files import write_atomically
    from cnss_edi.sample import declaration_from_preetabli
    from transforms.parse import parse
    from validators.structure import file_kind, header

    source = Path(args.from_preetabli)
    raw = _read(source)
    if raw is None or file_kind(parse(raw[:1024])) != "preetabli":
        raise UsageError(f"{source}: not a préétabli (AFFEBDS_…, A00…A03 records)")
    affiliate, period = header(parse(raw), "preetabli")
    if affiliate is None or period is None:
        raise UsageError(f"{source}: its A01 line names no affiliate or period")
    answer = declaration_from_preetabli(raw, entrants=args.entrants or 0, seed=args.seed)
    target = Path(args.out) / f"DS_{affiliate:07d}_{period}.txt"
    write_atomically(target, answer)
    print(f"1 file written to {args.out}: {target.name}")
    return OK


def _validation(path: Path, roster: Roster | None = None) -> tuple[str, ParsedFile, Validation]:
    """The file's SHA-256, its parse and its validation (a file too large is hashed in
    chunks and judged on its size, never read whole)."""
    from cnss_edi.dropbox import sha256_of
    from transforms.parse import parse
    from validators.declaration import oversized, too_many_lines, validate

    raw = _read(path)
    if raw is None:
        return sha256_of(path, follow=True), parse(b""), oversized(path.stat().st_size)
    sha256 = hashlib.sha256(raw).hexdigest()
    refusal = too_many_lines(raw)
    if refusal is not None:
        return sha256, parse(b""), refusal
    parsed = parse(raw)
    validation = validate(parsed, file_name=path.name, preetabli=roster, today=dt.date.today())
    return sha256, parsed, validation


def _load_roster(path: str | None) -> Roster | None:
    if path is None:
        return None
    from validators.preetabli import Roster

    _, parsed, validation = _validation(Path(path))
    if validation.kind != "preetabli":
        raise UsageError(f"{path}: --preetabli expects a préétabli (A00…A03 records)")
    return Roster.from_parsed(parsed)


def _show_validation(name: str, sha256: str, validation: Validation, *, as_json: bool) -> None:
    from cnss_edi import report

    if as_json:
        print(json.dumps(report.validation_json(name, sha256, validation), ensure_ascii=False))
    else:
        print(report.validation_text(name, validation))


def cmd_validate(args: argparse.Namespace) -> int:
    roster = _load_roster(args.preetabli)
    worst = OK
    for name in args.files:
        sha256, _, validation = _validation(Path(name), roster)
        _show_validation(name, sha256, validation, as_json=args.json)
        if validation.status == "rejected":
            worst = REJECTED
    return worst


def cmd_contributions(args: argparse.Namespace) -> int:
    from cnss_edi import report
    from cnss_edi.pricing import contributions

    worst = OK
    for name in args.files:
        sha256, parsed, validation = _validation(Path(name))
        if validation.status == "rejected" or validation.kind != "declaration":
            worst = REJECTED
            _show_validation(name, sha256, validation, as_json=args.json)
            continue
        assert validation.period is not None  # an accepted declaration has its period
        _, summary = contributions(parsed, validation.period)
        if args.json:
            print(json.dumps(report.contributions_json(name, validation, summary)))
        else:
            print(report.contributions_text(name, validation, summary))
    return worst


def cmd_process(args: argparse.Namespace) -> int:
    from cnss_edi import report
    from cnss_edi.inbox import process_inbox
    from cnss_edi.process import Locations
    from cnss_edi.store import Store

    inbox = Path(args.inbox)
    if not inbox.is_dir():
        raise UsageError(f"{inbox}: the inbox folder does not exist")
    outbox = Path(args.outbox)
    archive = Path(args.archive) if args.archive else inbox.resolve().parent / "archive"
    store = Store.open(_database_url(args.database_url))
    try:
        run = process_inbox(
            Locations(inbox.resolve(), outbox.resolve(), archive.resolve()),
            store=store,
            workers=args.workers,
            settle=args.settle,
            progress=_progress("files processed"),
        )
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.process_json(run, outbox)))
    else:
        print(report.process_text(run, inbox, outbox, archive))
    if run.failed:
        return INTERNAL
    rejected = any(o.status == "rejected" for o in run.outcomes)
    return REJECTED if rejected or run.refused else OK


def _keys(paths: Sequence[str]) -> list[str]:
    """The public keys in the given files (one OpenSSH key per line, # comments ignored)."""
    keys = []
    for name in paths:
        raw = _read(Path(name)) or b""
        text = raw.decode("ascii", "replace")
        keys += [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return keys


def cmd_account(args: argparse.Namespace) -> int:
    from cnss_edi import accounts
    from cnss_edi.store import Store

    store = Store.open(_database_url(args.database_url))
    try:
        if args.action == "list":
            found = accounts.every(store)
            for account in found:
                if args.json:
                    print(json.dumps(_account_json(account)))
                else:
                    print(_account_text(account))
            return OK
        if args.action == "service":
            _sync_service(args, store)
            return OK
        current = accounts.find(store, args.login)
        if args.action == "add":
            account = accounts.Account(
                args.login,
                args.kind,
                tuple(args.affiliate or ()),
                tuple(args.allow_from or ()),
                tuple(_keys(args.key or ())),
                tuple(args.email or ()),
            )
        elif current is None:
            raise UsageError(f"no account {args.login!r} (see `cnss-edi account list`)")
        elif args.action == "remove":
            accounts.remove(store, args.login)
            _sync_sshd(args, store, args.login)
            print(f"{args.login}: removed (its files and their history stay)")
            return OK
        else:
            account = current
            for key in _keys(args.key):
                account = accounts.with_key(account, key, present=args.action == "add-key")
        saved = accounts.save(store, account)
        _sync_sshd(args, store, saved.login)
    except accounts.AccountError as error:
        raise UsageError(str(error)) from None
    finally:
        store.close()
    print(_account_text(saved))
    return OK


def _sync_sshd(args: argparse.Namespace, store: Store, login: str) -> None:
    """With --sftp-root, bring the SFTP server in line with the account (cnss_edi.provisioning)."""
    if not args.sftp_root:
        return
    from cnss_edi import provisioning
    from cnss_edi.sshd import SshdError

    try:
        provisioning.apply(store, login, _sshd_settings(args))
    except SshdError as error:
        raise UsageError(f"the account is stored, but sshd refused: {error}") from None


def _sync_service(args: argparse.Namespace, store: Store) -> None:
    """`account service`: the ingest pipeline's own login on the SFTP server."""
    from cnss_edi import provisioning
    from cnss_edi.sshd import SshdError

    if not args.sftp_root:
        raise UsageError("account service needs --sftp-root (or $CNSS_EDI_SFTP_ROOT)")
    where = _sshd_settings(args)
    keys = _keys(args.key)
    try:
        provisioning.apply_service(store, keys, where)
    except SshdError as error:
        raise UsageError(f"sshd refused: {error}") from None
    print(f"{where.service} (service): {len(keys)} key(s); sees every box under {where.root}")


def _sshd_settings(args: argparse.Namespace) -> sshd.SshdSettings:
    from cnss_edi import provisioning

    if not args.sshd_dir:
        raise UsageError("--sftp-root needs --sshd-dir (where sshd's config and keys live)")
    return provisioning.settings(
        Path(args.sftp_root),
        Path(args.sshd_dir),
        listen=args.listen,
        port=args.port,
        service=args.service_login,
    )


def _account_json(account: Account) -> dict[str, object]:
    return {
        "login": account.login,
        "kind": account.kind,
        "affiliates": [f"{a:07d}" for a in account.affiliates],
        "allow_from": list(account.allow_from),
        "keys": len(account.public_keys),
        "emails": list(account.emails),
    }


def _account_text(account: Account) -> str:
    affiliates = ", ".join(f"{a:07d}" for a in account.affiliates)
    networks = ", ".join(account.allow_from) or "any network"
    keys = len(account.public_keys)
    return f"{account.login} ({account.kind}): {affiliates}; from {networks}; {keys} key(s)"


def cmd_load_preetabli(args: argparse.Namespace) -> int:
    from cnss_edi import report
    from cnss_edi.process import load_preetabli
    from cnss_edi.store import Store
    from transforms.parse import parse
    from validators.structure import file_kind

    contents = []
    for name in args.files:
        raw = _read(Path(name))
        if raw is None or file_kind(parse(raw[:1024])) != "preetabli":  # its first record
            raise UsageError(f"{name}: not a préétabli (AFFEBDS_…, A00…A03 records)")
        contents.append((Path(name), raw))
    store = Store.open(_database_url(args.database_url))
    try:
        outcomes = [load_preetabli(path, raw, store=store) for path, raw in contents]
    finally:
        store.close()
    print(report.preetabli_text(outcomes))
    return REJECTED if any(o.status == "rejected" for o in outcomes) else OK


def _seconds(text: str) -> float:
    """A number of seconds, finite and not negative (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _database_url(option: str | None) -> str:
    url = option or os.environ.get("CNSS_EDI_DATABASE_URL")
    if url:
        return url
    from cnss_edi.postgres import LocalPostgres, default_data_dir

    return LocalPostgres(default_data_dir()).start()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnss-edi",
        description="CNSS (Morocco) EDI salary declarations: check a file before sending it, "
        "compute the contributions it owes, and process an inbox of received files.",
        epilog="Exit codes: 0 accepted, 1 rejected, 2 wrong usage, 3 database or disk failure, "
        "4 internal error.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step on stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sample = commands.add_parser(
        "sample",
        help="write realistic sample files (préétabli + matching declaration)",
        description="Write AFFEBDS_<affiliate>_<period>.txt (the préétabli) and "
        "DS_<affiliate>_<period>.txt (a valid declaration) for one or more employers "
        "(--affiliate, --period and --employees), or with --from-preetabli FILE the "
        "declaration that answers a préétabli received from CNSS.",
    )
    sample.add_argument(
        "--affiliate",
        type=int,
        help="7-digit affiliate number with a valid check key, e.g. 1234567",
    )
    sample.add_argument("--period", help="declared month as YYYYMM, e.g. 202610")
    sample.add_argument(
        "--employees",
        type=int,
        help="employees per employer (B02 lines); at most 38,461 at 26 days",
    )
    sample.add_argument(
        "--from-preetabli",
        metavar="FILE",
        help="instead: write the declaration answering this préétabli (its employees, "
        "names and allowances; days and pay drawn; --entrants new employees; --seed)",
    )
    sample.add_argument(
        "--employers",
        type=int,
        default=1,
        help="number of employers (the first one is --affiliate); default 1",
    )
    sample.add_argument(
        "--entrants",
        type=int,
        default=None,
        help="new employees (B04 lines) per employer; default about 2%% (fewer near the limit)",
    )
    sample.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files")
    sample.add_argument("--out", required=True, help="folder to write the files into")
    sample.add_argument(
        "--with-errors",
        action="store_true",
        help="also write DS_<affiliate>_<period>_ERREURS.txt, a copy of the first declaration "
        "with two mistakes, to see what a rejection looks like",
    )
    sample.set_defaults(handler=cmd_sample)

    check = commands.add_parser(
        "validate",
        help="check declaration files offline, with the same rules as CNSS",
        description="Check each FILE and list every anomaly: line, record, field, value, rule "
        "and a message in French. Blocking anomalies reject the file; warnings do not.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="declaration (DS_…) files")
    check.add_argument(
        "--preetabli",
        metavar="AFILE",
        help="the préétabli (AFFEBDS_…) to check the employee list against",
    )
    check.add_argument("--json", action="store_true", help="one JSON object per file and line")
    check.set_defaults(handler=cmd_validate)

    price = commands.add_parser(
        "contributions",
        help="compute the contributions a declaration owes, per branch",
        description="Validate each FILE, then compute employer and employee contributions per "
        "branch in centimes, with the rates and ceiling in force for its period.",
    )
    price.add_argument("files", nargs="+", metavar="FILE", help="declaration (DS_…) files")
    price.add_argument("--json", action="store_true", help="one JSON object per file and line")
    price.set_defaults(handler=cmd_contributions)

    run = commands.add_parser(
        "process",
        help="process every complete file of an inbox into the database",
        description="Validate, price and load every complete file of the drop boxes "
        "<inbox>/<affiliate>/in/ (or of a flat inbox), write one acknowledgement XML per file "
        "into <outbox>/<affiliate>/out/, move each input to the archive, and print a summary. "
        "Only regular files are taken: links, FIFOs, folders and the like are refused and "
        "listed, never followed. A préétabli dropped in a box is refused (operators load them "
        "with load-preetabli). Safe to re-run after a crash, and to run several at once.",
    )
    run.add_argument("--inbox", required=True, help="folder where files arrive")
    run.add_argument("--outbox", required=True, help="folder for acknowledgements")
    run.add_argument("--archive", help="folder for processed inputs (default: <inbox>/../archive)")
    _database_option(run)
    run.add_argument(
        "--settle",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="take a file only once it has stayed unchanged for SECONDS (default 2); "
        "uploads named *.part, *.filepart, … always wait",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="files processed at once, one database connection each (default: up to 2)",
    )
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(handler=cmd_process)

    load = commands.add_parser(
        "load-preetabli",
        help="load the préétablis CNSS issued (operators only)",
        description="Validate and store each préétabli FILE (AFFEBDS_…): declarations for "
        "its employer and period are then checked against it. Préétablis come from CNSS: "
        "one dropped in a declarant's box is refused.",
    )
    load.add_argument("files", nargs="+", metavar="FILE", help="préétabli (AFFEBDS_…) files")
    _database_option(load)
    load.set_defaults(handler=cmd_load_preetabli)
    _account_parser(commands)
    from cnss_edi import cli_calendar  # deadline, payments, penalty

    cli_calendar.add_commands(commands)
    from cnss_edi import cli_reconcile  # reconcile

    cli_reconcile.add_command(commands)
    from cnss_edi import cli_report  # quality, report

    cli_report.add_commands(commands)
    return parser


def _database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="PostgreSQL DSN/URL (default: $CNSS_EDI_DATABASE_URL,"
        " else the embedded local PostgreSQL in .cnss-edi/)",
    )


def _account_parser(commands: argparse._SubParsersAction) -> None:
    account = commands.add_parser(
        "account",
        help="declarant accounts: who may drop files, for which affiliates (operators)",
        description="A declarant is an SFTP login that declares for a set of affiliates: an "
        "employer (one), a group (its companies) or a mandated accountant (its clients). "
        "Its files go in <inbox>/<login>/in/; a file for any other affiliate is rejected.",
    )
    actions = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="create or update an account (running it again changes nothing)",
        description="Create the account LOGIN, or replace its affiliates, networks and keys.",
    )
    add.add_argument("login", metavar="LOGIN", help="3-32 lowercase letters, digits, _ or -")
    add.add_argument(
        "--kind",
        choices=["employer", "group", "accountant"],
        default="employer",
        help="employer (one affiliate, the default), group or accountant",
    )
    add.add_argument(
        "--affiliate",
        type=int,
        action="append",
        required=True,
        metavar="N",
        help="an affiliate number it declares for (repeat for a group or an accountant)",
    )
    add.add_argument(
        "--key",
        action="append",
        metavar="FILE",
        help="its SSH public key file (repeat: two keys let it rotate without downtime)",
    )
    add.add_argument(
        "--email",
        action="append",
        metavar="ADDRESS",
        help="where its reminders are announced, e.g. paie@example.ma (repeat for several)",
    )
    add.add_argument(
        "--allow-from",
        action="append",
        metavar="CIDR",
        help="a network it may connect from, e.g. 196.200.0.0/16 (repeat; default: any)",
    )
    listing = actions.add_parser("list", help="every account, one per line")
    listing.add_argument("--json", action="store_true", help="one JSON object per account")
    remove = actions.add_parser("remove", help="remove an account (its files stay)")
    remove.add_argument("login", metavar="LOGIN")
    for action, verb in (("add-key", "add"), ("remove-key", "remove")):
        key = actions.add_parser(action, help=f"{verb} one public key of an account")
        key.add_argument("login", metavar="LOGIN")
        key.add_argument("--key", action="append", required=True, metavar="FILE")
    service = actions.add_parser(
        "service",
        help="set the keys of the ingest pipeline's own SFTP login (needs --sftp-root)",
        description="The service login is the one the edi_ingest DAG connects with: it sees "
        "every box, takes the uploads and writes the acknowledgements. This sets its keys "
        "(all of them: repeat --key to rotate without downtime).",
    )
    service.add_argument("--key", action="append", required=True, metavar="FILE")
    for parser in actions.choices.values():
        _database_option(parser)
        parser.add_argument(
            "--sftp-root",
            default=os.environ.get("CNSS_EDI_SFTP_ROOT"),
            metavar="DIR",
            help="the SFTP server's boxes: also make the login's box, user and keys there and "
            "reload sshd (default: $CNSS_EDI_SFTP_ROOT; without it only the database changes)",
        )
        parser.add_argument(
            "--sshd-dir",
            default=os.environ.get("CNSS_EDI_SSHD_DIR"),
            metavar="DIR",
            help="where that sshd keeps its config, host key, pid file and keys/ "
            "(default: $CNSS_EDI_SSHD_DIR)",
        )
        parser.add_argument("--listen", default="0.0.0.0", help="sshd's address (0.0.0.0)")
        parser.add_argument("--port", type=int, default=2222, help="sshd's port (2222)")
        parser.add_argument(
            "--service-login",
            default=os.environ.get("CNSS_EDI_SERVICE_LOGIN", SERVICE_LOGIN),
            metavar="LOGIN",
            help=f"the ingest pipeline's login (default: $CNSS_EDI_SERVICE_LOGIN, "
            f"else {SERVICE_LOGIN})",
        )
    account.set_defaults(handler=cmd_account)


def _without_driver_dumps(hook: Callable[..., object]) -> Callable[..., object]:
    """`hook` (sys.excepthook), except for reports of psycopg2's own errors.

    When the server goes away during COPY, psycopg2 meets a second error while raising the
    first, prints that pair itself from C (PyErr_Print, which calls sys.excepthook, from
    whichever thread was copying) and raises a third. The dump is a chained exception on
    stderr that may quote a row (a name, a salary) from PostgreSQL's CONTEXT line; the error
    that stops the run still reaches main, which prints one line."""

    def excepthook(kind: type[BaseException], error: BaseException, tb: object) -> None:
        import psycopg2

        chain: BaseException | None = error
        seen: set[int] = set()
        while chain is not None and id(chain) not in seen:
            if isinstance(chain, psycopg2.Error):
                return
            seen.add(id(chain))
            chain = chain.__cause__ or chain.__context__
        hook(kind, error, tb)

    return excepthook


def main(argv: Sequence[str] | None = None) -> int:
    if not getattr(validators, "PROJECT_PACKAGE", False):  # PyPI's `validators` shadows ours
        print(
            "cnss-edi: the wrong 'validators' package is installed; "
            "run `pip uninstall validators` in this environment",
            file=sys.stderr,
        )
        return USAGE
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    previous_hook = sys.excepthook  # psycopg2 prints some errors itself: see the wrapper
    if not os.environ.get("CNSS_EDI_DEBUG"):
        sys.excepthook = _without_driver_dumps(previous_hook)
    try:
        return args.handler(args)
    except BrokenPipeError:  # `cnss-edi validate f | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED
    except UsageError as error:
        print(f"cnss-edi {args.command}: {error}", file=sys.stderr)
        return USAGE
    except Exception as error:
        if os.environ.get("CNSS_EDI_DEBUG"):
            raise
        from cnss_edi.report import describe_failure, is_environment_failure

        print(f"cnss-edi {args.command}: failed: {describe_failure(error)}", file=sys.stderr)
        return FAILURE if is_environment_failure(error) else INTERNAL
    finally:
        sys.excepthook = previous_hook


if __name__ == "__main__":
    sys.exit(main())
