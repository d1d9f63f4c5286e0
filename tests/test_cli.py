"""The `cnss-edi` console script, run as a user runs it: exit codes, JSON contracts, no
tracebacks, and a `process` killed at random moments that still ends with one acknowledgement
per file and every line loaded once."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import closing, suppress
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from psycopg2.extensions import make_dsn

from cnss_edi.postgres import LocalPostgres

CLI = str(Path(sys.executable).parent / "cnss-edi")
BRANCHES = {
    "family_allowances",
    "short_term",
    "long_term",
    "amo",
    "amo_solidarity",
    "professional_training",
}


def run(*args: str, check_code: int | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr
    if check_code is not None:
        assert result.returncode == check_code, result.stderr
    return result


def sample(out: Path, *options: str, check_code: int = 0) -> subprocess.CompletedProcess[str]:
    """`cnss-edi sample` for affiliate 1234567, period 202610, into `out`."""
    return run(
        "sample",
        "--affiliate",
        "1234567",
        "--period",
        "202610",
        *options,
        "--out",
        str(out),
        check_code=check_code,
    )


def process_arguments(inbox: Path, outbox: Path, dsn: str, *options: str) -> list[str]:
    """The arguments of `cnss-edi process` from `inbox` to `outbox` on the database `dsn`."""
    places = ["--inbox", str(inbox), "--outbox", str(outbox)]
    return ["process", *places, "--database-url", dsn, *options]


def process(
    inbox: Path, outbox: Path, dsn: str, *options: str, check_code: int = 0
) -> subprocess.CompletedProcess[str]:
    """`cnss-edi process` from `inbox` to `outbox` on the database `dsn`."""
    return run(*process_arguments(inbox, outbox, dsn, *options), check_code=check_code)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    sample(out, "--employees", "60", "--entrants", "3", "--employers", "2", "--seed", "5")
    return out


@pytest.mark.parametrize(
    "command",
    ["sample", "validate", "contributions", "process", "load-preetabli", "quality", "report"],
)
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help", check_code=0)
    assert "usage: cnss-edi" in result.stdout
    assert "--" in result.stdout


def test_sample_writes_both_files_per_employer(samples: Path) -> None:
    assert sorted(p.name for p in samples.iterdir()) == [
        "AFFEBDS_1234567_202610.txt",
        "AFFEBDS_1234575_202610.txt",
        "DS_1234567_202610.txt",
        "DS_1234575_202610.txt",
    ]


def test_sample_refuses_totals_that_cannot_fit(tmp_path: Path) -> None:
    result = sample(tmp_path, "--employees", "38462", check_code=2)
    assert "38" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_validate_json_contract_and_exit_codes(samples: Path, tmp_path: Path) -> None:
    good = samples / "DS_1234567_202610.txt"
    result = run(
        "validate",
        str(good),
        "--preetabli",
        str(samples / "AFFEBDS_1234567_202610.txt"),
        "--json",
        check_code=0,
    )
    (report,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert report["status"] == "accepted"
    assert (report["affiliate"], report["period"]) == ("1234567", "202610")
    assert (report["employees"], report["entrants"], report["anomaly_count"]) == (60, 3, 0)
    assert len(report["sha256"]) == 64
    assert report["anomalies"] == []

    bad = tmp_path / "DS_1234567_202610.txt"
    raw = bytearray(good.read_bytes())
    raw[261 * 2 + 111 : 261 * 2 + 113] = b"27"  # first B02 line: 27 days
    bad.write_bytes(bytes(raw))
    result = run("validate", str(good), str(bad), "--json", check_code=1)
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["status"] for r in reports] == ["accepted", "rejected"]
    days = [a for a in reports[1]["anomalies"] if a["code"] == "JOURS_HORS_LIMITES"]
    assert days == [
        {**days[0], "line": 3, "record": "B02", "field": "N_Jours_Declares", "value": "27"}
    ]
    assert set(days[0]) >= {"code", "line", "record", "field", "value", "message"}

    missing = run("validate", str(tmp_path / "nope.txt"), check_code=2)
    assert "nope.txt" in missing.stderr


def test_garbage_is_rejected_without_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_bytes(os.urandom(5000) + b"\x00\xff" * 100)
    result = run("validate", str(junk), "--json", check_code=1)
    assert json.loads(result.stdout)["status"] == "rejected"
    result = run("contributions", str(junk), "--json", check_code=1)
    assert json.loads(result.stdout)["anomaly_count"] > 0


def test_contributions_json_contract(samples: Path) -> None:
    result = run("contributions", str(samples / "DS_1234567_202610.txt"), "--json", check_code=0)
    report = json.loads(result.stdout)
    assert set(report["branches"]) == BRANCHES
    employer = sum(b["employer"] for b in report["branches"].values())
    employee = sum(b["employee"] for b in report["branches"].values())
    assert report["total"] == {
        "employer": employer,
        "employee": employee,
        "due": employer + employee,
    }
    assert report["branches"]["short_term"]["base"] <= report["branches"]["amo"]["base"]
    assert all(isinstance(v, int) for b in report["branches"].values() for v in b.values())


def drop_boxes(samples: Path, inbox: Path, dsn: str) -> None:
    """Load the samples' préétablis as an operator does; drop each declaration in its box."""
    run("load-preetabli", *map(str, samples.glob("AFFEBDS_*")), "--database-url", dsn, check_code=0)
    for path in samples.glob("DS_*"):
        box = inbox / path.name.split("_")[1] / "in"
        box.mkdir(parents=True, exist_ok=True)
        (box / path.name).write_bytes(path.read_bytes())


def test_process_json_summary(samples: Path, tmp_path: Path, pg_conn_dsn: str) -> None:
    inbox = tmp_path / "inbox"
    drop_boxes(samples, inbox, pg_conn_dsn)
    result = process(inbox, tmp_path / "out", pg_conn_dsn, "--json", check_code=0)
    summary = json.loads(result.stdout)
    assert (summary["files"], summary["accepted"], summary["rejected"]) == (2, 2, 0)
    assert all(r["anomalies"] == [] and r["anomaly_count"] == 0 for r in summary["results"])
    assert [r["entry"] for r in summary["results"]] == [
        "1234567/in/DS_1234567_202610.txt",
        "1234575/in/DS_1234575_202610.txt",
    ]
    assert (summary["refused"], summary["waiting"], summary["failed"]) == ([], 0, [])
    assert len(list((tmp_path / "out").rglob("*.xml"))) == 2
    assert [p for p in inbox.rglob("*") if p.is_file()] == []


def test_a_preetabli_in_a_box_is_refused_by_process(
    samples: Path, tmp_path: Path, pg_conn_dsn: str
) -> None:
    box = tmp_path / "inbox" / "1234567" / "in"
    box.mkdir(parents=True)
    (box / "AFFEBDS_1234567_202610.txt").write_bytes(
        (samples / "AFFEBDS_1234567_202610.txt").read_bytes()
    )
    result = process(tmp_path / "inbox", tmp_path / "out", pg_conn_dsn, "--json", check_code=1)
    (outcome,) = json.loads(result.stdout)["results"]
    assert [a["code"] for a in outcome["anomalies"]] == ["PREETABLI_DEPOSE"]


def test_load_preetabli_refuses_a_declaration(samples: Path, pg_conn_dsn: str) -> None:
    result = run(
        "load-preetabli",
        str(samples / "DS_1234567_202610.txt"),
        "--database-url",
        pg_conn_dsn,
        check_code=2,
    )
    assert "not a préétabli" in result.stderr


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "soon"])
def test_settle_must_be_a_number_of_seconds(tmp_path: Path, value: str) -> None:
    result = run("process", "--inbox", str(tmp_path), "--outbox", str(tmp_path), "--settle", value)
    assert result.returncode == 2
    assert "number of seconds" in result.stderr


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "loop", "long", "folder"])
def test_validate_refuses_what_is_not_a_file_quickly(tmp_path: Path, special: str) -> None:
    path = tmp_path / "x.txt"
    if special == "fifo":
        os.mkfifo(path)  # reading it would wait forever for a writer
    elif special == "loop":
        path.symlink_to(path)
    elif special == "long":
        path = tmp_path / ("x" * 5000)
    elif special == "folder":
        path.mkdir()
    else:
        path = Path(special)
    result = run("validate", str(path), check_code=2)
    assert result.stderr.startswith("cnss-edi validate: ")
    assert len(result.stderr) < 400


def test_validate_into_a_closed_pipe_stops_quietly(samples: Path) -> None:
    files = [str(samples / "DS_1234567_202610.txt")] * 200
    result = subprocess.run(
        f"{CLI} validate {' '.join(files)} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() != ""
    assert result.stderr == ""


def test_unreachable_database_is_a_clean_failure(samples: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    result = process(
        inbox, tmp_path / "out", "host=/nonexistent dbname=x user=secret_user", check_code=3
    )
    assert "database error" in result.stderr


@pytest.mark.slow
def test_process_killed_at_random_moments_still_ends_exactly_once(
    tmp_path: Path, pg_conn_dsn: str
) -> None:
    samples, inbox, outbox = tmp_path / "samples", tmp_path / "inbox", tmp_path / "outbox"
    sample(samples, "--employees", "3000", "--employers", "4")
    drop_boxes(samples, inbox, pg_conn_dsn)
    expected_lines = {}
    for path in samples.glob("DS_*.txt"):
        raw = path.read_bytes().split(b"\n")
        expected_lines[path.name] = sum(
            1 for line in raw if line[:3] == b"B02" or (line[:3] == b"B04" and line[16:25].strip())
        )
    arguments = [CLI, *process_arguments(inbox, outbox, pg_conn_dsn, "--settle", "0")]
    for delay in (0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4, 2.7):  # cover start-up, loads and finishing
        child = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
    process(inbox, outbox, pg_conn_dsn, "--settle", "0", check_code=0)

    with closing(psycopg2.connect(pg_conn_dsn)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id, file_name, status, finished_at IS NOT NULL FROM edi_file")
        files = cursor.fetchall()
        cursor.execute(
            "SELECT f.file_name, count(*) FROM declaration_line l"
            " JOIN declaration d ON d.id = l.declaration_id JOIN edi_file f ON f.id = d.edi_file_id"
            " GROUP BY f.file_name"
        )
        loaded = dict(cursor.fetchall())
    assert sorted(name for _, name, _, _ in files) == sorted(
        [f"AFFEBDS_{a}_202610.txt" for a in (1234567, 1234575, 1234583, 1234591)]
        + list(expected_lines)
    )
    assert all(status == "accepted" and finished for _, _, status, finished in files)
    assert loaded == expected_lines
    acks = list(outbox.rglob("*.xml"))
    declarations = sorted(i for i, name, *_ in files if name.startswith("DS_"))
    assert sorted(int(p.stem.rsplit("_", 1)[1]) for p in acks) == declarations
    assert [p for p in inbox.rglob("*") if p.is_file()] == []


def test_excepthook_keeps_only_psycopg2_own_reports_off_stderr() -> None:
    from cnss_edi.cli import _without_driver_dumps

    shown: list[BaseException] = []
    hook = _without_driver_dumps(lambda kind, error, tb: shown.append(error))
    decoding = SystemError("<function decode> returned a result with an exception set")
    decoding.__cause__ = psycopg2.errors.AdminShutdown("terminating connection")
    hook(SystemError, decoding, None)  # what psycopg2 prints from C during a broken COPY
    interrupted = KeyboardInterrupt()
    hook(KeyboardInterrupt, interrupted, None)
    assert shown == [interrupted]


def _copy_under_way(dsn: str, table: str) -> bool:
    """Whether a COPY into `table` is running on the database of `dsn` (seen from another
    session; False while the server cannot answer)."""
    try:
        with closing(psycopg2.connect(dsn)) as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state = 'active' AND query ILIKE %s",
                (f"COPY %{table}%FROM STDIN%",),
            )
            return cursor.fetchone()[0] > 0
    except psycopg2.Error:
        return False


@pytest.mark.slow
def test_database_stopped_mid_copy_is_one_line_and_exit_3(tmp_path: Path) -> None:
    """A server stopped (politely, or as by a crash) while `process` COPYs a large declaration:
    exit 3 and one line naming the database error, without the chained dump psycopg2 once
    printed from inside COPY, a log line blaming the file, or anything of a row."""
    samples, work = tmp_path / "samples", tmp_path / "work"
    sample(samples, "--employees", "20000", "--employers", "4")
    # Our own server, to stop it; not tmp_path (see conftest's pg_dsn): the server account
    # must reach it, and its socket path must stay short.
    base = Path(tempfile.mkdtemp(prefix="cnss-edi-test-"))
    base.chmod(0o711)
    server = LocalPostgres(base / "pg", durable=False)
    landed: set[str] = set()
    try:
        # How the server stops, and how long after a COPY is seen under way.
        stops = [("fast", 0), ("immediate", 0), ("fast", 0.05)]
        stops += [("immediate", 0.02), ("immediate", 0.05), ("immediate", 0.1)]
        for attempt, (how, delay) in enumerate(stops):
            admin = server.start()
            database = f"stopped_{attempt}"
            with closing(psycopg2.connect(admin)) as connection:
                connection.autocommit = True  # CREATE DATABASE refuses a transaction
                connection.cursor().execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
                )
            dsn = make_dsn(admin, dbname=database)
            inbox = work / database / "inbox"
            drop_boxes(samples, inbox, dsn)
            outbox = work / database / "out"
            child = subprocess.Popen(
                [CLI, *process_arguments(inbox, outbox, dsn, "--settle", "0")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 60
            while not _copy_under_way(dsn, "declaration_line"):
                if child.poll() is not None or time.monotonic() > deadline:
                    break
            else:
                landed.add(how)
                time.sleep(delay)
            if child.poll() is not None:  # done before any COPY was seen: nothing to stop
                assert child.wait() == 0
                continue
            if how == "fast":
                server.stop()  # pg_ctl stop -m fast: the server ends each session (57P01)
            else:  # SIGQUIT: immediate shutdown, sessions cut as by a crash
                pid_file = server.data_dir / "postmaster.pid"
                with suppress(ProcessLookupError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
                for _ in range(600):  # the file goes with the server; start() may follow
                    if not pid_file.exists():
                        break
                    time.sleep(0.05)
            _, stderr = child.communicate(timeout=120)
            assert child.returncode == 3, (how, delay, stderr)
            for dump in ("Traceback", "During handling", "above exception", "Exception ignored"):
                assert dump not in stderr, stderr
            assert re.fullmatch(
                r"cnss-edi process: failed: database error \w+ \(SQLSTATE (?:[0-9A-Z]{5}|n/a)\)\n",
                stderr,
            ), (how, delay, stderr)
        assert landed == {"fast", "immediate"}  # each kind fell in a COPY at least once
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_a_bug_on_one_file_is_exit_4_not_a_database_failure(
    samples: Path, tmp_path: Path, pg_conn_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from cnss_edi import cli, inbox

    drop_boxes(samples, tmp_path / "inbox", pg_conn_dsn)
    real = inbox.process_receipt

    def buggy(receipt, **kwargs):
        if receipt.id == 1:
            raise ZeroDivisionError  # a bug of ours, on this file only
        return real(receipt, **kwargs)

    monkeypatch.setattr(inbox, "process_receipt", buggy)
    arguments = ["--inbox", str(tmp_path / "inbox"), "--outbox", str(tmp_path / "out")]
    code = cli.main(["process", *arguments, "--database-url", pg_conn_dsn, "--settle", "0"])

    assert code == cli.INTERNAL
    summary = capsys.readouterr().out
    assert "FAILED    1234567/in/DS_1234567_202610.txt: internal error" in summary
    assert "accepted  1234575/in/DS_1234575_202610.txt" in summary
