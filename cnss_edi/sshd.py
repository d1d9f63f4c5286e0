"""The OpenSSH side of declarant accounts: one chrooted, SFTP-only login per account, and the
service login the ingest pipeline collects files with.

`provision` makes an account's Unix user, box (<root>/<login>/{in,out}) and authorized keys;
`provision_service` makes the service login, chrooted at <root> itself: it claims uploads by
renaming them into <root>/.processing/ (no declarant can see it) and writes acknowledgements
into each out/. `write_config` renders sftp_inbox/sshd_config.template for every account, has
`sshd -t` check it, installs it and reloads sshd. Runs as root: it creates users, chowns boxes
and signals sshd.

Ownership: each box is root's (sshd's chroot rule); its in/ is the service's with the
declarant's group, 0770 (the declarant uploads, the service takes; the declarant cannot chmod
it to lock the service out); its out/ is the service's, 0755 (read-only for the declarant).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

from cnss_edi.accounts import LOGIN, Account
from cnss_edi.dropbox import PROCESSING, SERVICE_LOGIN
from cnss_edi.files import write_atomically

TEMPLATE = Path(__file__).resolve().parent.parent / "sftp_inbox" / "sshd_config.template"
SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # sshd (even `sshd -t`) refuses to run without it
NOLOGIN = "/usr/sbin/nologin"
# The GECOS field of the users provision() creates: it never adopts a user someone else made
# (postgres, www-data, …), which would hand that account's files to a declarant.
MARKER = "cnss-edi declarant"
SERVICE_MARKER = "cnss-edi service"
BOX_MODE = 0o755  # sshd's chroot rule: root-owned, not group/world-writable
IN_MODE = 0o770  # the service (owner) and the declarant (group)
RELOAD_TIMEOUT = 10.0


class SshdError(RuntimeError):
    """sshd or the system refused a step; the message says which and why."""


@dataclass(frozen=True)
class SshdSettings:
    root: Path  # the boxes, as this process writes them: <root>/<login>/{in,out}
    keys_dir: Path  # authorized keys, one root-owned file per login
    config_path: Path  # the live sshd_config
    host_key: Path
    pid_file: Path
    listen_address: str = "0.0.0.0"
    port: int = 22
    chroot_path: Path | None = None  # where sshd sees `root`, when not there (a bind mount)
    keys_path: Path | None = None  # where sshd sees `keys_dir`, likewise
    sshd: Path = SSHD
    service: str = SERVICE_LOGIN  # the ingest pipeline's login, chrooted at the root

    @property
    def sshd_root(self) -> Path:
        return self.chroot_path or self.root

    @property
    def sshd_keys(self) -> Path:
        return self.keys_path or self.keys_dir


def render_config(accounts: Sequence[Account], settings: SshdSettings) -> str:
    """The whole sshd_config for these accounts: same accounts and settings, same text."""
    checked = sorted((account.checked() for account in accounts), key=lambda a: a.login)
    logins = [account.login for account in checked]
    if len(set(logins)) != len(logins):
        raise SshdError("two accounts share a login")
    if settings.service in logins:
        raise SshdError(f"login {settings.service!r} is the service login, not a declarant")
    fragments = _fragments(TEMPLATE.read_text(encoding="utf-8"))
    users = fragments["allow"].substitute(patterns=settings.service)
    users += "".join(fragments["allow"].substitute(patterns=_patterns(a)) for a in checked)
    text = fragments["global"].substitute(
        listen_address=_address(settings.listen_address),
        port=_port(settings.port),
        host_key=_config_path(settings.host_key),
        pid_file=_config_path(settings.pid_file),
        keys_dir=_config_path(settings.sshd_keys),
        allow_users=users.strip("\n"),
    )
    chroot = _config_path(settings.sshd_root)
    blocks = [fragments["service"].substitute(login=settings.service, chroot_path=chroot)]
    blocks += [
        fragments["account"].substitute(login=a.login, kind=a.kind, chroot_path=chroot)
        for a in checked
    ]
    return "\n\n".join(part.strip("\n") for part in [text, *blocks]) + "\n"


def _fragments(template: str) -> dict[str, Template]:
    """The template's "#%% name" fragments, without its "#%" notes."""
    fragments: dict[str, list[str]] = {}
    current: list[str] = []
    for line in template.splitlines(keepends=True):
        if line.startswith("#%% "):
            current = fragments.setdefault(line[4:].strip(), [])
        elif not line.startswith("#%"):
            current.append(line)
    return {name: Template("".join(lines)) for name, lines in fragments.items()}


def _patterns(account: Account) -> str:
    """AllowUsers patterns: the login alone, or login@network for each allowed network."""
    if not account.allow_from:
        return account.login
    return " ".join(f"{account.login}@{network}" for network in account.allow_from)


def _address(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise SshdError(f"listen address {address!r}: expected an IP address") from None


def _port(port: int) -> str:
    if not 0 < port < 65536:
        raise SshdError(f"port {port}: expected 1 to 65535")
    return str(port)


def _config_path(path: Path) -> str:
    """A path as sshd_config takes it: absolute, and nothing sshd would split or expand."""
    text = str(path)
    if not path.is_absolute() or any(c.isspace() or c in "\"'#%$\\" for c in text):
        raise SshdError(f"{text!r}: sshd_config paths: absolute, no spaces, quotes or %")
    return text


def provision(account: Account, settings: SshdSettings) -> None:
    """Make (or repair) the account's Unix user, box and authorized keys; idempotent."""
    account = account.checked()
    if account.login == settings.service:
        raise SshdError(f"login {account.login!r} is the service login, not a declarant")
    service = _service_base(settings)
    box = settings.root / account.login
    _directory(box, 0, 0)  # first: a box that is a link stops everything, before any user exists
    user = _user(account.login)
    _directory(box / "in", service.pw_uid, user.pw_gid, IN_MODE)  # the declarant uploads here
    _directory(box / "out", service.pw_uid, service.pw_gid)  # read-only for the declarant
    _write_keys(settings, account.login, account.public_keys)


def provision_service(public_keys: Sequence[str], settings: SshdSettings) -> None:
    """Make (or repair) the service login and give it these keys ("type base64"); idempotent.
    Its chroot is the boxes' root: every box's in/ and out/, and .processing/."""
    _service_base(settings)
    _write_keys(settings, settings.service, public_keys)


def _service_base(settings: SshdSettings) -> pwd.struct_passwd:
    """The boxes' root, the service user, and its .processing/ folder."""
    _base(settings.root)
    service = _user(settings.service, SERVICE_MARKER)
    _directory(settings.root / PROCESSING, service.pw_uid, service.pw_gid, 0o700)
    return service


def _write_keys(settings: SshdSettings, login: str, public_keys: Sequence[str]) -> None:
    settings.keys_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    # "restrict": no forwarding, pty or rc file for this key, whatever sshd_config says.
    keys = "".join(f"restrict {key}\n" for key in public_keys)
    write_atomically(settings.keys_dir / login, keys.encode("ascii"), mode=0o644)


def _user(login: str, marker: str = MARKER) -> pwd.struct_passwd:
    try:
        user = pwd.getpwnam(login)
    except KeyError:
        _run(["useradd", "-M", "-d", "/", "-s", NOLOGIN, "-c", marker, login])
        user = pwd.getpwnam(login)
    if user.pw_gecos != marker:
        raise SshdError(f"login {login!r} is a system user that cnss-edi did not create")
    # '*': no password can match, yet the account is not locked (useradd's '!' is, for sshd).
    _run(["usermod", "-p", "*", login])
    return user


def _base(root: Path) -> None:
    """The folder of boxes: made if missing, and as sshd's chroot rule wants it."""
    root.mkdir(mode=BOX_MODE, parents=True, exist_ok=True)
    status = root.lstat()
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != 0 or status.st_mode & 0o022:
        raise SshdError(f"{root}: the boxes' folder must be a root-owned directory, mode 0755")


def _directory(path: Path, uid: int, gid: int, mode: int = BOX_MODE) -> None:
    """A real directory (never a link followed) with this owner and mode."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=BOX_MODE)
    try:
        handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise SshdError(f"{path} exists and is not a directory (a symlink?)") from None
        raise
    try:
        os.fchown(handle, uid, gid)
        os.fchmod(handle, mode)
    finally:
        os.close(handle)


def deprovision(login: str, settings: SshdSettings, *, remove_files: bool = False) -> None:
    """Take the login's keys away: it can no longer authenticate, and its Match block goes at
    the next write_config. Its box and user stay (the files are evidence) unless remove_files."""
    if not LOGIN.match(login):
        raise SshdError(f"login {login!r}: not a declarant login")
    (settings.keys_dir / login).unlink(missing_ok=True)
    if remove_files:
        box = settings.root / login
        if box.is_dir() and not box.is_symlink():
            shutil.rmtree(box)
        _run(["userdel", login])


def write_config(accounts: Sequence[Account], settings: SshdSettings) -> None:
    """Render, check with `sshd -t`, install atomically, reload. A configuration sshd refuses
    is never installed: SshdError carries sshd's message and the live file is unchanged."""
    text = render_config(accounts, settings)
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    folder = settings.config_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    handle, candidate = tempfile.mkstemp(prefix=f".{settings.config_path.name}.", dir=folder)
    try:
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        check = subprocess.run(
            [str(settings.sshd), "-t", "-f", candidate], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise SshdError(f"sshd refused the new configuration: {check.stderr.strip()}")
        os.replace(candidate, settings.config_path)
    except BaseException:
        Path(candidate).unlink(missing_ok=True)
        raise
    reload(settings)


def reload(settings: SshdSettings) -> bool:
    """SIGHUP the sshd of pid_file, if it runs, and wait until it listens again with the new
    configuration (it rewrites its pid file then). False when no sshd was running."""
    pid = running_pid(settings)
    if pid is None:
        return False
    before = _identity(settings.pid_file)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while time.monotonic() < deadline:
        after = _identity(settings.pid_file)
        if after is not None and after != before:
            return True
        if not Path(f"/proc/{pid}").exists():
            raise SshdError(f"sshd (pid {pid}) exited on reload: see its log")
        time.sleep(0.005)
    raise SshdError(f"sshd (pid {pid}) did not restart within {RELOAD_TIMEOUT:.0f} s")


def running_pid(settings: SshdSettings) -> int | None:
    """The pid in pid_file if that process is an sshd, else None (no stale pid is signalled)."""
    try:
        pid = int(settings.pid_file.read_text().strip())
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if name == "sshd" else None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SshdError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()}")
