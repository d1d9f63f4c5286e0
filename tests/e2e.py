"""`make e2e`: the SFTP ingest path end to end on this machine, as declarants and operators
live it.

Starts its own PostgreSQL and OpenSSH sshd, provisions two employers and one accountant,
uploads files with paramiko as a declarant's SFTP client would, runs edi_ingest with
dag.test() twice (the second run meets the re-upload of a file already judged), tries the
walls between boxes, scans every log line, XCom and stdout of the runs for the people in the
files, tears everything down, prints a short summary and, as its last line, one JSON object:

    {"files": n, "accepted": n, "rejected": n, "duplicates": n, "acknowledgements": n,
     "isolation": "denied"|"breached", "pii_in_logs": n}

tests/test_dags.py runs the same scenario under pytest, against its fixtures.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from cnss_edi import accounts
from cnss_edi.process import load_preetabli
from cnss_edi.sample import write_samples
from cnss_edi.store import Store
from tests import edi
from tests.sftp import Declarant, SftpServer, running_server

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"
PERIOD = "202610"
FIRST_AFFILIATE = 1234567
# Planted in the files: none of them may appear in any log, XCom or output of a run.
CANARY_NAME, CANARY_CIN, CANARY_SALARY = "CANARI ZOUHAIR", "ZZ998877", 987654321


@dataclass
class Scenario:
    """Who uploads what, in which round, and what each upload must become."""

    server: SftpServer
    a: Declarant
    b: Declarant
    accountant: Declarant
    rounds: list[list[tuple[Declarant, str, bytes]]]
    expected: list[tuple[str, str, str]]  # (login, file name, status), in upload order
    canaries: set[str] = field(default_factory=set)

    @classmethod
    def prepare(cls, server: SftpServer, store: Store, work: Path) -> Scenario:
        """Accounts on the server and in the store, préétablis loaded, the files to upload."""
        one, two, three, four = samples(work, store, employers=4)
        a = enrol(server, store, "emp_a", "employer", one)
        b = enrol(server, store, "emp_b", "employer", two)
        accountant = enrol(server, store, "cabinet", "accountant", three, four)
        valid = with_salary(one.read_bytes(), CANARY_SALARY)
        broken = with_errors(two.read_bytes())
        rounds = [
            [
                (a, one.name, valid),
                (b, two.name, broken),
                (a, f"POUR_B_{two.name}", two.read_bytes()),
                (accountant, three.name, three.read_bytes()),
                (accountant, four.name, four.read_bytes()),
            ],
            [(a, f"RENVOI_{one.name}", valid)],  # the same bytes again, a run later
        ]
        expected = [
            (a.login, one.name, "accepted"),
            (b.login, two.name, "rejected"),
            (a.login, f"POUR_B_{two.name}", "rejected"),
            (accountant.login, three.name, "accepted"),
            (accountant.login, four.name, "accepted"),
            (a.login, f"RENVOI_{one.name}", "duplicate"),
        ]
        canaries = {CANARY_NAME, CANARY_CIN, str(CANARY_SALARY)}
        for path in (one, three, four):
            canaries |= _people(path.read_bytes())
        return cls(server, a, b, accountant, rounds, expected, canaries)

    def upload(self, round_number: int) -> None:
        for declarant, name, raw in self.rounds[round_number]:
            upload(self.server, declarant, name, raw)

    def acknowledgements(self) -> dict[str, list[bytes]]:
        """Each login's out/, as the declarant reads it over SFTP."""
        found = {}
        for declarant in (self.a, self.b, self.accountant):
            with self.server.sftp(declarant.login, declarant.keys[0]) as client:
                names = sorted(client.listdir("/out"))
                found[declarant.login] = [client.open(f"/out/{n}").read() for n in names]
        return found

    def isolation(self) -> list[str]:
        """The walls between boxes, tried through real SFTP calls: the attempts that got
        through (an empty list: every wall held)."""
        server, a, b = self.server, self.a, self.b
        attempts: dict[str, Callable[[paramiko.SFTPClient], object]] = {
            "list B's in/": lambda c: c.listdir(f"/../{b.login}/in"),
            "read B's out/": lambda c: c.open(f"/../{b.login}/out/x").read(),
            "write into B's in/": lambda c: c.putfo(io.BytesIO(b"x"), f"/../{b.login}/in/x"),
            "write its own out/": lambda c: c.putfo(io.BytesIO(b"x"), "/out/forged.xml"),
            "rename into out/": lambda c: c.posix_rename("/in/probe", "/out/probe"),
            "symlink to B": lambda c: c.symlink(f"/../{b.login}/in", "/in/link"),
            "climb with ..": lambda c: _climbed(c),
            "see .processing": lambda c: c.listdir("/../.processing"),
        }
        breached = []
        with server.sftp(a.login, a.keys[0]) as client:
            client.putfo(io.BytesIO(b"probe"), "/in/probe")
            for what, attempt in attempts.items():
                try:
                    attempt(client)
                except OSError:
                    continue
                breached.append(what)
            client.remove("/in/probe")
        far = server.add("far", allow_from=("192.0.2.0/24",))
        refusals = {
            "a password": _password_refused(server, a.login),
            "B's key for A": server.refused(a.login, b.keys[0]),
            "another network": server.refused(far.login, far.keys[0]),
        }
        return breached + [what for what, refused in refusals.items() if not refused]

    def report(self, store: Store, logs: str, isolation: list[str]) -> dict[str, object]:
        statuses = Counter(status for _, _, status in _rows(store))
        return {
            "files": sum(statuses.values()),
            "accepted": statuses["accepted"],
            "rejected": statuses["rejected"],
            "duplicates": statuses["duplicate"],
            "acknowledgements": sum(len(v) for v in self.acknowledgements().values()),
            "isolation": "breached" if isolation else "denied",
            "pii_in_logs": sum(logs.count(canary) for canary in self.canaries),
        }


def ingest_environment(server: SftpServer, dsn: str, work: Path) -> dict[str, str]:
    """What edi_ingest's tasks read: the database, the worker's folders under `work`, the
    SFTP connection (an Airflow connection given as an environment variable)."""
    address = server.address
    key = {"key_file": str(address.key_file), "host_key": address.host_key}
    uri = f"sftp://{address.login}@{address.host}:{address.port}?{urllib.parse.urlencode(key)}"
    return {
        "CNSS_EDI_DATABASE_URL": dsn,
        "CNSS_EDI_INBOX": str(work / "worker" / "inbox"),
        "CNSS_EDI_OUTBOX": str(work / "worker" / "outbox"),
        "CNSS_EDI_ARCHIVE": str(work / "archive"),
        "CNSS_EDI_SETTLE": "0",
        "AIRFLOW_CONN_CNSS_EDI_SFTP": uri,
    }


def samples(
    work: Path,
    store: Store,
    *,
    employers: int,
    employees: int = 40,
    first: int = FIRST_AFFILIATE,
) -> list[Path]:
    """One valid declaration per employer (affiliates from `first` on, PERIOD), written in
    work/cnss/; their préétablis loaded, as CNSS's operators do."""
    paths = write_samples(
        work / "cnss", affiliate=first, period=PERIOD, employees=employees, employers=employers
    )
    for path in paths:
        if path.name.startswith("AFFEBDS_"):
            load_preetabli(path, path.read_bytes(), store=store)
    return [path for path in paths if path.name.startswith("DS_")]


def enrol(
    server: SftpServer, store: Store, name: str, kind: str, *files: Path, reload: bool = True
) -> Declarant:
    """A declarant for the affiliates of these declarations: its login on sshd, its account
    (without `reload`, sshd learns of it at the next server.configure())."""
    affiliates = tuple(int(path.name.split("_")[1]) for path in files)
    declarant = server.add(name, kind=kind, affiliates=affiliates, reload=reload)  # type: ignore[arg-type]
    accounts.save(store, declarant.account)
    return declarant


def upload(server: SftpServer, declarant: Declarant, name: str, raw: bytes) -> None:
    """As a declarant's client does: NAME.part, then renamed to NAME (never half a file)."""
    upload_all(server, declarant, [(name, raw)])


def upload_all(server: SftpServer, declarant: Declarant, files: list[tuple[str, bytes]]) -> None:
    """Several files in one SFTP session, each as upload() sends it."""
    with server.sftp(declarant.login, declarant.keys[0]) as client:
        for name, raw in files:
            client.putfo(io.BytesIO(raw), f"/in/{name}.part")
            client.posix_rename(f"/in/{name}.part", f"/in/{name}")


def with_salary(raw: bytes, salary: int, nth: int = 0) -> bytes:
    """A valid declaration whose nth employee earns `salary` centimes (capped at the ceiling),
    totals and control sums recomputed: a new version an employer might send."""
    line = edi.line_of(raw, "B02", nth)
    fields = {"N_Salaire_Reel": salary, "N_Salaire_Plaf": min(salary, edi.CEILING)}
    return edi.recompute_totals(edi.set_fields(raw, line, "B02", fields))


def with_errors(raw: bytes) -> bytes:
    """A declaration with errors, carrying a planted name and CIN."""
    raw = edi.set_field(raw, edi.line_of(raw, "B02"), "B02", "L_Nom_Prenom", CANARY_NAME)
    raw = edi.set_field(raw, edi.line_of(raw, "B02", 1), "B02", "N_Jours_Declares", 31)
    return edi.set_field(raw, edi.line_of(raw, "B04"), "B04", "L_Num_CIN", CANARY_CIN)


def _people(raw: bytes) -> set[str]:
    """The names and CINs in a declaration (long enough not to match by chance)."""
    found = set()
    for number, line in enumerate(edi.lines_of(raw), start=1):
        record = edi.record_of(line)
        if record in ("B02", "B04"):
            found.add(edi.get_field(raw, number, record, "L_Nom_Prenom").strip())
        if record == "B04":
            found.add(edi.get_field(raw, number, record, "L_Num_CIN").strip())
    return {value for value in found if len(value) >= 6}


def _climbed(client: paramiko.SFTPClient) -> None:
    if client.normalize("/in/../../..") != "/" or sorted(client.listdir("/../..")) != [
        "in",
        "out",
    ]:
        return  # got somewhere it should not have: reported as a breach by the caller
    raise PermissionError("the chroot held")


def _password_refused(server: SftpServer, login: str) -> bool:
    with server.transport() as transport:
        try:
            transport.auth_password(login, "a guess")
        except paramiko.AuthenticationException:  # BadAuthenticationType included
            return True
    return False


def _rows(store: Store) -> list[tuple[str, str, str]]:
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT depositor, file_name, status FROM edi_file"
            " WHERE receipt_id IS NOT NULL ORDER BY receipt_id"
        )
        return cursor.fetchall()


def xcoms(airflow_home: Path) -> str:
    """Every XCom value the runs stored in Airflow's metadata database, as text."""
    with sqlite3.connect(airflow_home / "airflow.db") as connection:
        return "\n".join(str(value) for (value,) in connection.execute("SELECT value FROM xcom"))


def task_logs(airflow_home: Path) -> str:
    folder = airflow_home / "logs"
    files = sorted(folder.rglob("*")) if folder.exists() else []
    return "\n".join(p.read_text(errors="replace") for p in files if p.is_file())


def ingest_dag() -> Any:
    """edi_ingest as dag.test() can run it: without its deadline alert. Airflow 3.3.2's
    dag.test() fails every run of a DAG that has one (DagRun.update_state looks the alerts up
    by id, and dag.test() hands it the alerts themselves); tests/test_dags.py checks the alert
    and its callback on their own."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "edi_ingest.py")).dags["edi_ingest"]
    dag.deadline = None
    return dag


def run_edi_ingest() -> str:
    """One edi_ingest run in this process (dag.test()); its final state."""
    return str(ingest_dag().test().state)


# -- make e2e -----------------------------------------------------------------------------


def dag_test_child() -> int:
    """One edi_ingest run in a process of its own (its output and peak memory are the run's);
    its last line: {"state", "seconds", "peak_rss_mb"}. CNSS_EDI_E2E_RESET=1: a fresh Airflow
    metadata database first."""
    import resource
    import time

    if os.environ.get("CNSS_EDI_E2E_RESET"):
        from airflow.utils import db

        db.resetdb()
    started = time.perf_counter()
    state = run_edi_ingest()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"state": state, "seconds": round(seconds, 2), "peak_rss_mb": round(peak)}))
    return 0 if state == "success" else 1


def dag_test(env: dict[str, str], *, reset: bool) -> tuple[dict[str, object], str]:
    """Run dag_test_child with this environment: (its last line, everything it printed)."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.e2e", "--dag-test"],
        env={**env, "CNSS_EDI_E2E_RESET": "1" if reset else ""},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    lines = child.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"state": f"crashed ({child.returncode})"}
    return result, child.stdout + child.stderr


def airflow_environment(server: SftpServer, dsn: str, work: Path) -> dict[str, str]:
    """The environment of a dag.test() child: a private AIRFLOW_HOME under `work`."""
    return {
        **os.environ,
        **ingest_environment(server, dsn, work),
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "PYTHONPATH": str(ROOT),
    }


@contextmanager
def own_stack(prefix: str) -> Iterator[tuple[SftpServer, str, Path]]:
    """(sshd, database DSN, work folder) of this process's own, removed on the way out."""
    from cnss_edi.postgres import LocalPostgres

    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o711)  # the postgres account must reach its data directory
    database = LocalPostgres(work / "pg", durable=False)
    try:
        dsn = database.start()
        with running_server() as server:
            yield server, dsn, work
    finally:
        database.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    if sys.argv[1:] == ["--dag-test"]:  # the child process: one run, its output captured
        return dag_test_child()
    with own_stack("cnss-edi-e2e-") as (server, dsn, work):
        return _main(server, dsn, work)


def _main(server: SftpServer, dsn: str, work: Path) -> int:
    store = Store.open(dsn)
    try:
        scenario = Scenario.prepare(server, store, work)
        env = airflow_environment(server, dsn, work)
        logs = []
        for number in range(len(scenario.rounds)):
            scenario.upload(number)
            result, output = dag_test(env, reset=number == 0)
            logs.append(output)
            print(f"run {number + 1}: {result['state']}", file=sys.stderr)
        airflow_home = Path(env["AIRFLOW_HOME"])
        logs += [xcoms(airflow_home), task_logs(airflow_home)]
        report = scenario.report(store, "\n".join(logs), scenario.isolation())
        for login, status_of in _by_login(_rows(store)).items():
            print(f"{login}: {', '.join(status_of)}")
        print(
            f"{report['files']} files, {report['acknowledgements']} acknowledgements; "
            f"isolation {report['isolation']}; {report['pii_in_logs']} personal data in logs"
        )
        print(json.dumps(report))
        return 0 if sorted(_rows(store)) == sorted(scenario.expected) else 1
    finally:
        store.close()


def _by_login(rows: list[tuple[str, str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for login, name, status in rows:
        grouped.setdefault(login, []).append(f"{name} {status}")
    return grouped


if __name__ == "__main__":
    sys.exit(main())
