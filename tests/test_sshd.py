"""The OpenSSH side of declarant accounts: the rendered sshd_config, then a real sshd and real
SFTP clients (paramiko) proving that each login reaches its own box and nothing else."""

from __future__ import annotations

import base64
import io
import os
import pwd
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko
import pytest

from cnss_edi.accounts import Account, AccountError, with_key
from cnss_edi.sshd import SshdError, SshdSettings, deprovision, provision, render_config
from cnss_edi.sshd import write_config as install
from tests.sftp import Declarant, SftpServer, public_line

SETTINGS = SshdSettings(
    root=Path("/srv/cnss-edi/boxes"),
    keys_dir=Path("/etc/cnss-edi/keys"),
    config_path=Path("/etc/cnss-edi/sshd_config"),
    host_key=Path("/etc/cnss-edi/ssh_host_ed25519_key"),
    pid_file=Path("/run/cnss-edi-sshd.pid"),
    listen_address="192.0.2.10",
    port=2222,
)


def key(n: int) -> str:
    """A well-formed ed25519 public key line (not a usable key: render only reads it)."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes([n]) * 32
    return f"ssh-ed25519 {base64.b64encode(blob).decode()}"


def account(login: str, *, allow_from: tuple[str, ...] = (), affiliate: int = 1234567) -> Account:
    return Account(login, "employer", (affiliate,), allow_from, (key(1),))


def blocks(config: str) -> dict[str, list[str]]:
    """Each Match block's lines, by its first line."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in config.splitlines():
        if line.startswith("Match "):
            current = found.setdefault(line, [])
        elif line.startswith("    "):
            current.append(line.strip())
    return found


# -- render_config: pure --------------------------------------------------------------------


def test_render_is_sorted_and_deterministic() -> None:
    a, b = account("emp_a"), account("emp_b", affiliate=7654321)
    config = render_config([b, a], SETTINGS)
    assert config == render_config([a, b], SETTINGS) == render_config([b, a], SETTINGS)
    assert list(blocks(config)) == [
        "Match User cnss-ingest",
        "Match User emp_a",
        "Match User emp_b",
    ]
    assert "${" not in config
    assert "#%" not in config


def test_render_global_part() -> None:
    lines = render_config([account("emp_a")], SETTINGS).splitlines()
    for wanted in (
        "ListenAddress 192.0.2.10",
        "Port 2222",
        "HostKey /etc/cnss-edi/ssh_host_ed25519_key",
        "PidFile /run/cnss-edi-sshd.pid",
        "AuthorizedKeysFile /etc/cnss-edi/keys/%u",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "UsePAM no",
        "StrictModes yes",
        "Subsystem sftp internal-sftp",
        "AllowUsers emp_a",
    ):
        assert wanted in lines


def test_render_one_chrooted_sftp_only_block_per_account() -> None:
    config = render_config([account("emp_a"), account("emp_b", affiliate=2)], SETTINGS)
    for login in ("emp_a", "emp_b"):
        assert blocks(config)[f"Match User {login}"] == [
            "ChrootDirectory /srv/cnss-edi/boxes/%u",
            "ForceCommand internal-sftp -u 022 -P symlink,hardlink",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PermitTTY no",
        ]


def test_render_nothing_global_after_the_first_match() -> None:
    """A Match block runs to the next Match: a global line after one would apply to one login."""
    config = render_config([account("emp_a"), account("emp_b", affiliate=2)], SETTINGS)
    tail = config[config.index("\nMatch ") :].splitlines()
    assert all(line.startswith(("Match ", "    ", "#")) or not line for line in tail)


def test_render_allow_from_restricts_the_login_to_its_networks() -> None:
    restricted = account("emp_b", allow_from=("192.0.2.7/24", "10.0.0.0/8", "2001:db8::/32"))
    lines = render_config([account("emp_a"), restricted], SETTINGS).splitlines()
    assert "AllowUsers emp_a" in lines
    assert "AllowUsers emp_b@10.0.0.0/8 emp_b@192.0.2.0/24 emp_b@2001:db8::/32" in lines
    assert "AllowUsers emp_b" not in lines


def test_render_without_accounts_lets_only_the_service_in() -> None:
    config = render_config([], SETTINGS)
    directives = [line for line in config.splitlines() if not line.startswith("#")]
    assert [line for line in directives if line.startswith("AllowUsers")] == [
        "AllowUsers cnss-ingest"
    ]
    assert blocks(config) == {
        "Match User cnss-ingest": [
            "ChrootDirectory /srv/cnss-edi/boxes",  # the root: every box, and .processing/
            "ForceCommand internal-sftp -u 022 -P symlink,hardlink",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PermitTTY no",
        ]
    }


def test_render_refuses_a_declarant_named_like_the_service() -> None:
    with pytest.raises(SshdError, match="service login"):
        render_config([account("cnss-ingest")], SETTINGS)


def test_render_uses_what_sshd_sees() -> None:
    moved = replace(SETTINGS, chroot_path=Path("/mnt/boxes"), keys_path=Path("/mnt/keys"))
    config = render_config([account("emp_a")], moved)
    assert "ChrootDirectory /mnt/boxes/%u" in config
    assert "AuthorizedKeysFile /mnt/keys/%u" in config


@pytest.mark.parametrize(
    ("accounts", "settings", "error"),
    [
        ([account("emp_a"), account("emp_a", affiliate=2)], SETTINGS, SshdError),
        ([account("emp a")], SETTINGS, AccountError),
        ([account("emp_a,root")], SETTINGS, AccountError),
        ([], replace(SETTINGS, root=Path("/srv/my boxes")), SshdError),
        ([], replace(SETTINGS, keys_dir=Path("/etc/keys%h")), SshdError),
        ([], replace(SETTINGS, host_key=Path("relative/key")), SshdError),
        ([], replace(SETTINGS, port=0), SshdError),
        ([], replace(SETTINGS, listen_address="0.0.0.0\nPermitRootLogin yes"), SshdError),
    ],
)
def test_render_refuses(
    accounts: list[Account], settings: SshdSettings, error: type[Exception]
) -> None:
    with pytest.raises(error):
        render_config(accounts, settings)


# -- write_config, provision, deprovision (root, sshd installed) ----------------------------


def test_write_config_installs_only_what_sshd_accepts(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    settings = replace(
        sftp_server.settings, config_path=tmp_path / "sshd_config", pid_file=tmp_path / "no.pid"
    )
    accounts = [account("emp_a"), account("emp_b", allow_from=("192.0.2.0/24", "2001:db8::/32"))]
    install(accounts, settings)  # no sshd runs with that pid file: nothing reloaded
    assert settings.config_path.read_text() == render_config(accounts, settings)
    broken = replace(settings, host_key=tmp_path / "missing_host_key")
    with pytest.raises(SshdError, match=r"sshd refused the new configuration: .*host"):
        install([account("emp_b")], broken)
    assert "AllowUsers emp_a" in settings.config_path.read_text()  # the live one, unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sshd_config"]


def test_provision_sets_the_permission_recipe_idempotently(sftp_server: SftpServer) -> None:
    declarant = sftp_server.add("recipe")
    provision(declarant.account, sftp_server.settings)  # again: same result, no error
    root = sftp_server.settings.root
    box = root / declarant.login
    service = pwd.getpwnam(sftp_server.settings.service)
    assert [_owner_mode(p) for p in (root, box, box / "in", box / "out", root / ".processing")] == [
        (0, 0o755),
        (0, 0o755),
        (service.pw_uid, 0o770),
        (service.pw_uid, 0o755),
        (service.pw_uid, 0o700),
    ]
    assert (box / "in").stat().st_gid == pwd.getpwnam(declarant.login).pw_gid
    keys = sftp_server.settings.keys_dir / declarant.login
    assert _owner_mode(keys) == (0, 0o644)
    assert keys.read_text() == f"restrict {declarant.account.public_keys[0]}\n"
    assert _shadow_password(declarant.login) == "*"  # never a password; not locked either


@pytest.mark.skipif(os.geteuid() != 0, reason="provision needs root (euid != 0)")
def test_provision_refuses_a_box_that_is_a_link_or_a_file(tmp_path: Path) -> None:
    settings = replace(SETTINGS, root=tmp_path / "boxes", keys_dir=tmp_path / "keys")
    (tmp_path / "boxes").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "boxes" / "emp_link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "boxes" / "emp_file").write_text("")
    for login in ("emp_link", "emp_file"):
        with pytest.raises(SshdError, match="is not a directory"):
            provision(account(login), settings)
    assert not (tmp_path / "keys").exists()


def test_provision_refuses_a_linked_in_folder(sftp_server: SftpServer) -> None:
    declarant = sftp_server.add("linked")
    inbox = sftp_server.settings.root / declarant.login / "in"
    inbox.rmdir()
    inbox.symlink_to(sftp_server.settings.root)
    with pytest.raises(SshdError, match="is not a directory"):
        provision(declarant.account, sftp_server.settings)
    assert _owner_mode(sftp_server.settings.root)[0] == 0  # the link's target was not chowned


def test_provision_never_adopts_a_system_user(sftp_server: SftpServer, tmp_path: Path) -> None:
    settings = replace(sftp_server.settings, root=tmp_path / "boxes", keys_dir=tmp_path / "keys")
    before = _shadow_password("daemon")
    with pytest.raises(SshdError, match="did not create"):
        provision(account("daemon"), settings)
    assert _shadow_password("daemon") == before
    assert not (tmp_path / "keys").exists()


def _owner_mode(path: Path) -> tuple[int, int]:
    status = path.lstat()
    return status.st_uid, stat.S_IMODE(status.st_mode)


def _shadow_password(login: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == login:
            return fields[1]
    raise LookupError(login)


# -- a real sshd: who gets in, and what they reach ------------------------------------------


@dataclass(frozen=True)
class Trio:
    a: Declarant
    b: Declarant
    accountant: Declarant


@pytest.fixture(scope="module")
def trio(sftp_server: SftpServer) -> Trio:
    """Two employers and an accountant; B has a declaration in and an acknowledgement out."""
    trio = Trio(
        sftp_server.add("emp_a"),
        sftp_server.add("emp_b"),
        sftp_server.add("accountant", kind="accountant"),
    )
    root = sftp_server.settings.root
    (root / trio.a.login / "out" / "ACK_A.txt").write_bytes(b"acknowledgement for A\n")
    (root / trio.b.login / "in" / "DS_B.txt").write_bytes(b"B's declaration\n")
    (root / trio.b.login / "out" / "ACK_B.txt").write_bytes(b"acknowledgement for B\n")
    return trio


@pytest.mark.parametrize("who", ["a", "b", "accountant"])
def test_each_login_sees_only_its_box(sftp_server: SftpServer, trio: Trio, who: str) -> None:
    declarant: Declarant = getattr(trio, who)
    with sftp_server.sftp(declarant.login, declarant.keys[0]) as client:
        assert sorted(client.listdir("/")) == ["in", "out"]
        assert client.normalize(".") == "/"


def test_a_uploads_to_in_and_reads_out(sftp_server: SftpServer, trio: Trio) -> None:
    with sftp_server.sftp(trio.a.login, trio.a.keys[0]) as client:
        client.putfo(io.BytesIO(b"DS for A\n"), "/in/DS_A.txt.part")
        client.rename("/in/DS_A.txt.part", "/in/DS_A.txt")  # how clients finish an upload
        assert client.listdir("/in") == ["DS_A.txt"]
        with client.open("/out/ACK_A.txt") as ack:
            assert ack.read() == b"acknowledgement for A\n"
    uploaded = sftp_server.settings.root / trio.a.login / "in" / "DS_A.txt"
    assert uploaded.read_bytes() == b"DS for A\n"
    assert uploaded.stat().st_uid != 0  # the login's, as the dropbox expects


@pytest.mark.parametrize("form", ["relative", "above-root", "host-path", "sshd-path"])
def test_a_cannot_reach_b(sftp_server: SftpServer, trio: Trio, form: str) -> None:
    b_box = {
        "relative": f"../{trio.b.login}",
        "above-root": f"/../{trio.b.login}",
        "host-path": str(sftp_server.settings.root / trio.b.login),
        "sshd-path": str(sftp_server.settings.sshd_root / trio.b.login),
    }[form]
    mine = f"/in/mine-{form}.txt"
    with sftp_server.sftp(trio.a.login, trio.a.keys[0]) as client:
        for folder in (b_box, f"{b_box}/in", f"{b_box}/out"):
            with pytest.raises(FileNotFoundError):
                client.listdir(folder)
        for name in (f"{b_box}/in/DS_B.txt", f"{b_box}/out/ACK_B.txt"):
            with pytest.raises(FileNotFoundError):
                client.open(name).read()
        with pytest.raises(FileNotFoundError):
            client.putfo(io.BytesIO(b"planted\n"), f"{b_box}/in/planted.txt")
        client.putfo(io.BytesIO(b"A's\n"), mine)
        with pytest.raises(FileNotFoundError):
            client.rename(mine, f"{b_box}/in/moved.txt")
        # No link at all (internal-sftp -P): not to B's box, not in B's box.
        with pytest.raises(PermissionError):
            client.symlink(f"{b_box}/in", "/in/link")
        with pytest.raises(PermissionError):
            client.symlink("/in", f"{b_box}/in/link")
    b_root = sftp_server.settings.root / trio.b.login
    assert sorted(os.listdir(b_root / "in")) == ["DS_B.txt"]
    assert sorted(os.listdir(b_root / "out")) == ["ACK_B.txt"]
    assert (b_root / "in" / "DS_B.txt").read_bytes() == b"B's declaration\n"


def test_a_cannot_write_its_out_or_its_root_nor_climb(sftp_server: SftpServer, trio: Trio) -> None:
    with sftp_server.sftp(trio.a.login, trio.a.keys[0]) as client:
        for target in ("/out/forged.txt", "/forged.txt", "/../forged.txt"):
            with pytest.raises(PermissionError):
                client.putfo(io.BytesIO(b"forged\n"), target)
        with pytest.raises(PermissionError):
            client.remove("/out/ACK_A.txt")
        with pytest.raises(PermissionError):
            client.rename("/out/ACK_A.txt", "/in/ACK_A.txt")
        with pytest.raises(PermissionError):
            client.mkdir("/extra")
        with pytest.raises(PermissionError):
            client.rmdir("/in")
        assert client.normalize("..") == client.normalize("/in/../..") == "/"
        assert sorted(client.listdir("../..")) == ["in", "out"]
    box = sftp_server.settings.root / trio.a.login
    assert sorted(os.listdir(box)) == ["in", "out"]
    assert os.listdir(box / "out") == ["ACK_A.txt"]


def test_keys_only_no_password(sftp_server: SftpServer, trio: Trio) -> None:
    with (
        sftp_server.transport() as transport,
        pytest.raises(paramiko.BadAuthenticationType) as refused,
    ):
        transport.auth_password(trio.a.login, "any password")
    assert refused.value.allowed_types == ["publickey"]


def test_a_wrong_key_is_refused(sftp_server: SftpServer, trio: Trio) -> None:
    assert sftp_server.refused(trio.a.login, sftp_server.new_key())
    assert sftp_server.refused(trio.a.login, trio.b.keys[0])  # B's key is not A's
    assert not sftp_server.refused(trio.a.login, trio.a.keys[0])


def test_root_is_refused_even_with_a_key(sftp_server: SftpServer) -> None:
    planted = sftp_server.new_key()
    keys = sftp_server.settings.keys_dir / "root"
    keys.write_text(public_line(planted) + "\n")
    keys.chmod(0o644)
    try:
        assert sftp_server.refused("root", planted)
    finally:
        keys.unlink()


def test_only_sftp_no_command_no_tunnel(sftp_server: SftpServer, trio: Trio) -> None:
    with sftp_server.transport() as transport:
        transport.auth_publickey(trio.a.login, trio.a.keys[0])
        channel = transport.open_session()
        channel.exec_command("id")
        output = channel.makefile("rb").read() + channel.makefile_stderr("rb").read()
        assert channel.recv_exit_status() != 0
        with pytest.raises(paramiko.ChannelException):
            transport.open_channel("direct-tcpip", ("127.0.0.1", 22), ("127.0.0.1", 0))
    assert b"This service allows sftp connections only." in output
    assert b"uid=" not in output


def test_allow_from_refuses_other_networks(sftp_server: SftpServer) -> None:
    declarant = sftp_server.add("netlocked", allow_from=("192.0.2.0/24",))
    assert sftp_server.refused(declarant.login, declarant.keys[0])
    assert f"User {declarant.login} from 127.0.0.1 not allowed" in sftp_server.log()
    sftp_server.change(declarant, allow_from=("192.0.2.0/24", "127.0.0.0/8"))
    assert not sftp_server.refused(declarant.login, declarant.keys[0])


def test_key_rotation(sftp_server: SftpServer) -> None:
    declarant = sftp_server.add("rotating", keys=2)
    old, new = declarant.keys
    assert not sftp_server.refused(declarant.login, old)
    assert not sftp_server.refused(declarant.login, new)
    sftp_server.update(with_key(declarant.account, public_line(old), present=False))
    assert sftp_server.refused(declarant.login, old)
    assert not sftp_server.refused(declarant.login, new)


def test_deprovision_refuses_the_login_and_keeps_its_files(sftp_server: SftpServer) -> None:
    declarant = sftp_server.add("leaving")
    with sftp_server.sftp(declarant.login, declarant.keys[0]) as client:
        client.putfo(io.BytesIO(b"evidence\n"), "/in/DS.txt")
    deprovision(declarant.login, sftp_server.settings)
    assert sftp_server.refused(declarant.login, declarant.keys[0])  # at once: no key left
    sftp_server.remove(declarant.login)
    assert sftp_server.refused(declarant.login, declarant.keys[0])
    assert declarant.login not in sftp_server.settings.config_path.read_text()
    box = sftp_server.settings.root / declarant.login
    assert (box / "in" / "DS.txt").read_bytes() == b"evidence\n"


def test_deprovision_can_remove_files_and_user(sftp_server: SftpServer) -> None:
    declarant = sftp_server.add("erased")
    sftp_server.remove(declarant.login, remove_files=True)
    assert not (sftp_server.settings.root / declarant.login).exists()
    assert not (sftp_server.settings.keys_dir / declarant.login).exists()
    with pytest.raises(KeyError):
        pwd.getpwnam(declarant.login)
