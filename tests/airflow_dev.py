"""`make airflow`: Airflow on this machine, watching sample declarations arrive over SFTP.

Starts a throwaway PostgreSQL (the CNSS database) and a local OpenSSH sshd with chrooted
boxes, provisions three employers and an accountant with two client employers, loads their
préétablis, then runs `airflow standalone` with the project's DAGs (AIRFLOW_HOME=.airflow in
the repository). While it runs, a declarant uploads a declaration over SFTP every few seconds
(mostly valid new versions, some with errors, now and then the same bytes again), and the
edi_ingest DAG answers each one in that declarant's out/ folder.

Ctrl-C stops everything: Airflow, sshd (its sample logins are deleted), PostgreSQL; the boxes
and the sample database go with them. Airflow's own database and logs stay in .airflow/.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from cnss_edi.store import Store
from schemas import limits
from tests import e2e, edi, sftp
from tests.e2e import ROOT, enrol, own_stack, samples, upload, with_errors, with_salary
from tests.sftp import Declarant, SftpServer

AIRFLOW_HOME = ROOT / ".airflow"
PASSWORDS = AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"  # standalone writes it
READY_TIMEOUT = 600  # seconds; the first start also creates Airflow's database
STOP_TIMEOUT = 60  # seconds Airflow gets to stop its components before they are killed
LOG_SERVER_PORTS = (8793, 8794)  # where the scheduler and triggerer serve task logs: fixed
# The mix of uploads after the first declarations: (kind, weight).
MIX = (("valid", 60), ("errors", 25), ("duplicate", 15))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.airflow_dev",
        description=(
            "Airflow on this machine with sample declarations arriving over SFTP. Starts a "
            "local PostgreSQL and sshd, creates 3 sample employers and an accountant, then "
            "Airflow; prints the address of the Airflow page, how to log in and where each "
            "box is. Every few seconds a declarant uploads a file: most are valid, some have "
            "errors, some are sent twice. The edi_ingest DAG answers each one in the box's "
            "out/ folder (it runs every 5 minutes; the Trigger button runs it now). Press "
            "Ctrl-C to stop everything: the sample logins, boxes and database are deleted."
        ),
        epilog="Needs root (it creates the sample logins). Options through make: "
        "make airflow ARGS='--every 10'",
    )
    parser.add_argument(
        "--every",
        type=float,
        default=30,
        metavar="SECONDS",
        help="seconds between two uploads (default 30)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port of the Airflow page, on this machine only (default 8080)",
    )
    args = parser.parse_args(argv)
    if args.every <= 0:
        parser.error("--every must be more than 0 seconds")
    return args


# -- the sample declarants and their uploads ------------------------------------------------


@dataclass
class Box:
    """One declarant, the declarations it sends (its own, or its clients'), its last upload."""

    declarant: Declarant
    declarations: list[Path]
    last: tuple[Path, bytes] | None = None  # which declaration, and the bytes sent


def provision(server: SftpServer, work: Path, dsn: str) -> list[Box]:
    """Three employers and an accountant for two more: logins, accounts, préétablis loaded."""
    store = Store.open(dsn)
    try:
        declarations = samples(work, store, employers=5)
        boxes = [
            Box(enrol(server, store, name, "employer", path), [path])
            for name, path in zip(("atlas", "maghreb", "oasis"), declarations, strict=False)
        ]
        clients = declarations[3:]
        boxes.append(Box(enrol(server, store, "cabinet", "accountant", *clients), clients))
        return boxes
    finally:
        store.close()


class Flow(threading.Thread):
    """Uploads a declaration every `every` seconds until stop() (in the background)."""

    def __init__(self, server: SftpServer, boxes: list[Box], every: float, terminal: bool):
        super().__init__(name="sample-uploads", daemon=True)
        self.server, self.boxes, self.every, self.terminal = server, boxes, every, terminal
        self.counts: Counter[str] = Counter()
        self.stopping = threading.Event()
        self.numbers = itertools.count(1)  # every later upload gets a new file name
        self.random = random.Random()

    def first(self) -> None:
        """Each box's declarations as generated: valid, and named DS_<affiliate>_<period>.txt."""
        for box in self.boxes:
            for path in box.declarations:
                self.send(box, "valid", path, path.read_bytes(), first=True)

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            try:
                self.send_one()
            except (OSError, paramiko.SSHException) as error:  # sshd stopping, a full disk…
                print(f"upload failed: {type(error).__name__}", file=sys.stderr)
            self.show()

    def stop(self) -> None:
        self.stopping.set()
        self.join()

    def send_one(self) -> None:
        """A random box sends a new version of one of its declarations (salary changed, the
        totals follow), with errors or not, or the bytes it sent last time again."""
        box = self.random.choice(self.boxes)
        kinds = [kind for kind, _ in MIX]
        kind = self.random.choices(kinds, weights=[weight for _, weight in MIX])[0]
        if kind == "duplicate" and box.last is not None:
            self.send(box, kind, *box.last)
            return
        declaration = self.random.choice(box.declarations)
        raw = declaration.read_bytes()
        full_month = [  # whose pay may change without a plausibility warning
            nth
            for nth, line in enumerate(edi.line_numbers(raw, "B02"))
            if edi.get_int(raw, line, "B02", "N_Jours_Declares") == limits().max_days
        ]
        salary = self.random.randrange(400_000, 2_000_000)  # centimes: 4,000 to 20,000 MAD
        raw = with_salary(raw, salary, self.random.choice(full_month or [0]))
        if kind == "errors":
            self.send(box, kind, declaration, with_errors(raw))
        else:
            self.send(box, "valid", declaration, raw)

    def send(
        self, box: Box, kind: str, declaration: Path, raw: bytes, *, first: bool = False
    ) -> None:
        """Upload as DS_<affiliate>_<period>_<n>.txt, a new name each time: an upload never
        replaces one still waiting for the next run. The first ones keep the plain name."""
        name = declaration.name if first else f"{declaration.stem}_{next(self.numbers):04d}.txt"
        upload(self.server, box.declarant, name, raw)
        box.last = (declaration, raw)
        self.counts[kind] += 1

    def acknowledgements(self) -> int:
        """Acknowledgements in the boxes' out/ folders (read on this machine, as root)."""
        folders = [self.server.settings.root / box.declarant.login / "out" for box in self.boxes]
        return sum(1 for folder in folders for path in folder.iterdir() if path.suffix == ".xml")

    def summary(self) -> str:
        counts = self.counts
        return (
            f"{counts.total()} uploads ({counts['valid']} valid, {counts['errors']} with errors, "
            f"{counts['duplicate']} sent twice), {self.acknowledgements()} acknowledgements"
        )

    def show(self) -> None:
        """One line, rewritten in place, on a terminal only."""
        if self.terminal:
            print(f"\r\033[K{time.strftime('%H:%M:%S')}  {self.summary()}", end="", flush=True)


# -- Airflow standalone ---------------------------------------------------------------------


def airflow_environment(server: SftpServer, dsn: str, work: Path, port: int) -> dict[str, str]:
    """make e2e's environment (the DAGs, the database, the worker's folders, the SFTP
    connection), with Airflow's home in the repository and what standalone needs."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **e2e.airflow_environment(server, dsn, work),
        # standalone starts its components as `airflow …` from PATH: this venv's, not another.
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # The LocalExecutor forks this many workers up front (32 by default, over 100 MB
        # each); four boxes need no more than four judges at once.
        "AIRFLOW__CORE__PARALLELISM": "4",
        # The page holds (sample) salaries: this machine only. The tasks reach the API there.
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "NO_COLOR": "1",  # standalone.log stays plain text
    }


def start_airflow(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`airflow standalone` in its own session, so that a Ctrl-C reaches this script only and
    every process Airflow starts can be found (and stopped) by its process group."""
    AIRFLOW_HOME.mkdir(exist_ok=True)
    with open(AIRFLOW_HOME / "standalone.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def health(port: int) -> dict[str, Any] | None:
    """Airflow's health report (no login needed), or None while the API server is not up."""
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5
        ) as r:
            return dict(json.load(r))
    except (OSError, ValueError):  # refused, reset, timed out, not JSON yet
        return None


def wait_until_ready(airflow: subprocess.Popen[bytes], port: int, terminal: bool) -> None:
    """Until the metadata database, scheduler, DAG processor and triggerer are all healthy."""
    started = time.monotonic()
    while True:
        report = health(port) or {}
        states = {name: (part or {}).get("status") for name, part in report.items()}
        if states and all(state == "healthy" for state in states.values()):
            break
        if airflow.poll() is not None:
            raise RuntimeError(f"Airflow stopped while starting; see {AIRFLOW_HOME}/standalone.log")
        waited = time.monotonic() - started
        if waited > READY_TIMEOUT:
            raise RuntimeError(
                f"Airflow not ready in {READY_TIMEOUT} s; see {AIRFLOW_HOME}/standalone.log"
            )
        if terminal:
            print(f"\r\033[KStarting Airflow… {waited:.0f} s", end="", flush=True)
        time.sleep(2)
    if terminal:
        print(f"\r\033[KAirflow ready after {time.monotonic() - started:.0f} s")


def stop_airflow(airflow: subprocess.Popen[bytes]) -> None:
    """Standalone's own shutdown first (on Ctrl-C it stops each component and logs it); then
    whatever is left of its process group (a task still running, say) is terminated, and at
    last killed."""
    if airflow.poll() is None:
        airflow.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            airflow.wait(timeout=STOP_TIMEOUT)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _group_left(airflow):
            return
        os.killpg(airflow.pid, sig)
        deadline = time.monotonic() + 10
        while _group_left(airflow) and time.monotonic() < deadline:
            time.sleep(0.2)


def _group_left(airflow: subprocess.Popen[bytes]) -> bool:
    """True while a process of Airflow's process group (its id is standalone's) remains."""
    airflow.poll()  # standalone itself reaped, so that it does not count
    try:
        os.killpg(airflow.pid, 0)
    except ProcessLookupError:
        return False
    return True


def password() -> str:
    """The admin password standalone generated (kept in .airflow/ across restarts)."""
    try:
        return str(json.loads(PASSWORDS.read_text())["admin"])
    except (OSError, ValueError, KeyError):
        return f"(see {PASSWORDS})"


def banner(port: int, server: SftpServer, boxes: list[Box], every: float) -> str:
    """Where to look: the page and its login, the DAG, the logs, each declarant's box."""

    def shown(path: Path) -> Path:
        return path.relative_to(ROOT)

    lines = [
        "",
        f"Airflow:   http://localhost:{port}   user admin, password {password()}",
        f"           (the password is kept in {shown(PASSWORDS)})",
        f"DAG:       http://localhost:{port}/dags/edi_ingest   runs every 5 minutes; "
        "the Trigger button runs it now",
        f"Logs:      {shown(AIRFLOW_HOME / 'logs')}/ (task logs: counts and file ids only), "
        f"{shown(AIRFLOW_HOME / 'standalone.log')} (Airflow's own output)",
        f"Boxes:     uploads in in/, acknowledgements in out/ (SFTP on 127.0.0.1:"
        f"{server.settings.port}); one upload every {every:g} s",
    ]
    for box in boxes:
        affiliates = ", ".join(str(a) for a in box.declarant.account.affiliates)
        folder = server.settings.root / box.declarant.login
        lines.append(f"  {box.declarant.account.kind:<10} {affiliates:<17} {folder}/")
    lines += ["", "Ctrl-C stops Airflow, sshd and PostgreSQL and deletes the sample logins.", ""]
    return "\n".join(lines)


# -- make airflow ---------------------------------------------------------------------------


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = sftp.unavailable()
    taken = [port for port in LOG_SERVER_PORTS if port_taken(port)]
    if problem is None and port_taken(args.port):
        problem = f"port {args.port} is in use (another Airflow?): try --port {args.port + 1}"
    elif problem is None and taken:
        problem = f"port {taken[0]} is in use: is another Airflow running on this machine?"
    if problem:
        print(f"make airflow: {problem}", file=sys.stderr)
        return 2
    # Ctrl-C, a `kill` and a closed terminal all stop cleanly. SIGINT is handled even when the
    # caller ignored it (a background job): standalone, which inherits that, must not ignore
    # the Ctrl-C stop_airflow() sends it (a handled signal is reset to default in a child).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    terminal = sys.stdout.isatty()
    try:
        if terminal:
            print("Starting PostgreSQL and sshd, creating the sample declarants…")
        with own_stack("cnss-edi-airflow-") as (server, dsn, work):
            return serve(args, server, work, dsn, terminal)
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how it stops
    except RuntimeError as error:  # PostgreSQL, sshd or Airflow could not start
        print(f"make airflow: {error}", file=sys.stderr)
        return 1


def serve(
    args: argparse.Namespace, server: SftpServer, work: Path, dsn: str, terminal: bool
) -> int:
    """Declarants, Airflow and the uploads, until Ctrl-C; Airflow and the uploads stopped."""
    boxes = provision(server, work, dsn)
    flow = Flow(server, boxes, args.every, terminal)
    flow.first()  # the first run already has a declaration from every box
    airflow = start_airflow(airflow_environment(server, dsn, work, args.port))
    try:
        wait_until_ready(airflow, args.port, terminal)
        print(banner(args.port, server, boxes, args.every), flush=True)
        flow.start()
        airflow.wait()
        print(f"\nAirflow stopped on its own; see {AIRFLOW_HOME}/standalone.log", file=sys.stderr)
        return 1
    finally:
        # From here on the clean-up must finish (servers to stop, users to delete): a second
        # Ctrl-C is ignored. sshd and PostgreSQL stop after Airflow, which may still use them.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if terminal:
            print("\nStopping Airflow, sshd and PostgreSQL…", flush=True)
        if flow.is_alive():
            flow.stop()
        stop_airflow(airflow)
        print(f"Stopped: {flow.summary()}.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
