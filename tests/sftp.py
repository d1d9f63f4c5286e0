"""A real OpenSSH sshd for the tests, serving chrooted SFTP boxes on 127.0.0.1, and its clients.

sshd refuses a chroot with a group/world-writable component, and /tmp is 1777. So the files live
in a temporary folder, and sshd runs in a private mount namespace where that folder is
bind-mounted onto /mnt: sshd sees /mnt/boxes/<login> and /mnt/keys/<login>, the host is untouched.
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko
import pytest

from cnss_edi.accounts import Account, Kind
from cnss_edi.remote import ServerAddress
from cnss_edi.sshd import (
    MARKER,
    SERVICE_MARKER,
    SSHD,
    SshdSettings,
    deprovision,
    provision,
    provision_service,
    write_config,
)

MOUNT = Path("/mnt")  # exists everywhere; overlaid inside sshd's namespace only
START_TIMEOUT = 10.0


def unavailable() -> str | None:
    """Why a real chrooted sshd cannot run here, or None."""
    if os.geteuid() != 0:
        return "chrooted sshd needs root (euid != 0)"
    for program in (str(SSHD), "unshare", "ssh-keygen", "useradd"):
        if not shutil.which(program):
            return f"{program} is missing (make sshd-bin installs openssh-server)"
    return None


@dataclass(frozen=True)
class Declarant:
    account: Account
    keys: tuple[paramiko.PKey, ...]  # private keys, in the order of account.public_keys

    @property
    def login(self) -> str:
        return self.account.login


class SftpServer:
    """One sshd for the test session; accounts are added (and changed) as tests need them."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.suffix = secrets.token_hex(3)  # parallel sessions never share a login
        self.settings = SshdSettings(
            root=base / "boxes",
            keys_dir=base / "keys",
            config_path=base / "sshd_config",
            host_key=base / "host_key",
            pid_file=base / "sshd.pid",
            listen_address="127.0.0.1",
            port=free_port(),
            chroot_path=MOUNT / "boxes",
            keys_path=MOUNT / "keys",
            service=self.login("ingest"),
        )
        self.accounts: dict[str, Account] = {}  # what the config says now
        self.users: set[str] = {self.settings.service}  # every login made: deleted at close()
        self.process: subprocess.Popen[bytes] | None = None
        self._affiliates = itertools.count(7_000_001)
        self._keys = itertools.count()

    @classmethod
    def create(cls) -> SftpServer:
        base = Path(tempfile.mkdtemp(prefix="cnss-edi-sftp-"))
        base.chmod(0o755)  # it becomes /mnt: declarants' uids must traverse it to reach nothing
        server = cls(base)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(server.host_key)],
            check=True,
        )
        return server

    @property
    def host_key(self) -> Path:
        return self.settings.host_key

    def login(self, name: str) -> str:
        return f"t{self.suffix}-{name}"

    # -- the daemon ------------------------------------------------------------------------

    def start(self) -> None:
        self.service_key_file = self.new_key_file()
        self.service_key = paramiko.Ed25519Key.from_private_key_file(str(self.service_key_file))
        provision_service([public_line(self.service_key)], self.settings)
        write_config(list(self.accounts.values()), self.settings)
        script = 'mount --bind "$1" "$2" && exec "$3" -D -e -f "$4"'
        arguments = [self.base, MOUNT, SSHD, self.settings.config_path]
        with open(self.base / "sshd.log", "ab") as log:
            self.process = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
                + [str(a) for a in arguments],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Out of the terminal's process group: a Ctrl-C there is for the program that
                # owns sshd (make airflow), which stops it after whatever still uses it.
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.settings.pid_file.exists():  # written once sshd listens
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start:\n{self.log()}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        """Stop sshd, delete the users made for this session, remove every file."""
        self.stop()
        for login in sorted(self.users):
            delete_user(login)
        shutil.rmtree(self.base, ignore_errors=True)

    def log(self) -> str:
        path = self.base / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- accounts --------------------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        kind: Kind = "employer",
        allow_from: tuple[str, ...] = (),
        keys: int = 1,
        affiliates: tuple[int, ...] = (),
        reload: bool = True,
    ) -> Declarant:
        """A new account with `keys` fresh ed25519 keys, provisioned, sshd reloaded (unless
        not `reload`: many accounts at once, then configure())."""
        private = tuple(self.new_key() for _ in range(keys))
        count = 1 if kind == "employer" else 2
        affiliates = affiliates or tuple(next(self._affiliates) for _ in range(count))
        account = Account(
            self.login(name), kind, affiliates, allow_from, tuple(public_line(k) for k in private)
        )
        return Declarant(self.update(account, reload=reload), private)

    def update(self, account: Account, *, reload: bool = True) -> Account:
        """Provision the account as it now is, rewrite the config, reload sshd."""
        account = account.checked()
        self.users.add(account.login)
        provision(account, self.settings)
        self.accounts[account.login] = account
        if reload:
            self.configure()
        return account

    def configure(self) -> None:
        """Write sshd's config for every account and reload it."""
        write_config(list(self.accounts.values()), self.settings)

    def change(self, declarant: Declarant, **changes: object) -> Account:
        return self.update(replace(declarant.account, **changes))  # type: ignore[arg-type]

    def remove(self, login: str, *, remove_files: bool = False) -> None:
        """Deprovision, then rewrite the config without the account."""
        deprovision(login, self.settings, remove_files=remove_files)
        del self.accounts[login]
        write_config(list(self.accounts.values()), self.settings)

    def new_key(self) -> paramiko.PKey:
        """A fresh ed25519 key (paramiko cannot generate one: ssh-keygen does)."""
        return paramiko.Ed25519Key.from_private_key_file(str(self.new_key_file()))

    def new_key_file(self) -> Path:
        path = self.base / f"client_key_{next(self._keys)}"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True
        )
        return path

    # -- clients ---------------------------------------------------------------------------

    @contextmanager
    def transport(self) -> Iterator[paramiko.Transport]:
        """An SSH connection to our sshd (its host key checked), not yet authenticated."""
        transport = paramiko.Transport((self.settings.listen_address, self.settings.port))
        try:
            transport.start_client(timeout=10)
            expected = paramiko.Ed25519Key.from_private_key_file(str(self.host_key))
            assert transport.get_remote_server_key().asbytes() == expected.asbytes()
            yield transport
        finally:
            transport.close()

    @contextmanager
    def sftp(self, login: str, key: paramiko.PKey) -> Iterator[paramiko.SFTPClient]:
        """An SFTP session as login with key; AuthenticationException if sshd refuses."""
        with self.transport() as transport:
            transport.auth_publickey(login, key)
            client = paramiko.SFTPClient.from_transport(transport)
            assert client is not None
            with client:
                yield client

    @property
    def address(self) -> ServerAddress:
        """How the ingest pipeline reaches this server, as its service login."""
        host_key = paramiko.Ed25519Key.from_private_key_file(str(self.host_key))
        return ServerAddress(
            self.settings.listen_address,
            self.settings.port,
            self.settings.service,
            self.service_key_file,
            public_line(host_key),
        )

    def service(self) -> AbstractContextManager[paramiko.SFTPClient]:
        """An SFTP session as the ingest pipeline's service login."""
        return self.sftp(self.settings.service, self.service_key)

    def refused(self, login: str, key: paramiko.PKey) -> bool:
        """True if sshd refuses this login with this key."""
        with self.transport() as transport:
            try:
                transport.auth_publickey(login, key)
            except paramiko.AuthenticationException:
                return True
            return False


@contextmanager
def running_server() -> Iterator[SftpServer]:
    """A started sshd of its own, stopped and cleaned up (users, files) on the way out;
    pytest.skip when this machine cannot run one."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    server = SftpServer.create()
    try:
        server.start()
        yield server
    finally:
        server.close()


def public_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def free_port() -> int:
    """A port nobody listens on right now (sshd binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def delete_user(login: str) -> None:
    """userdel a user provision() made; never one it did not (the GECOS marker says)."""
    try:
        user = pwd.getpwnam(login)
    except KeyError:
        return
    if user.pw_gecos not in (MARKER, SERVICE_MARKER):
        return
    for _ in range(50):  # a session child may still be exiting
        if subprocess.run(["userdel", login], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["userdel", "-f", login], check=True, capture_output=True)
