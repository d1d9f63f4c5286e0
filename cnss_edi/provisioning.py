"""An account changed in the store: bring the SFTP server in line (box, user, keys, sshd)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cnss_edi import accounts, sshd
from cnss_edi.store import Store


def settings(
    sftp_root: Path,
    sshd_dir: Path,
    *,
    listen: str,
    port: int,
    service: str = sshd.SERVICE_LOGIN,
) -> sshd.SshdSettings:
    """One sshd instance kept in `sshd_dir` (config, host key, pid, keys/) for the boxes under
    `sftp_root`; its host key is made on first use."""
    sshd_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    host_key = sshd_dir / "host_key"
    if not host_key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(host_key)],
            check=True,
        )
    return sshd.SshdSettings(
        root=sftp_root,
        keys_dir=sshd_dir / "keys",
        config_path=sshd_dir / "sshd_config",
        host_key=host_key,
        pid_file=sshd_dir / "sshd.pid",
        listen_address=listen,
        port=port,
        service=service,
    )


def apply(store: Store, login: str, where: sshd.SshdSettings) -> None:
    """Provision `login` as the store now has it (or deprovision it, when it is gone), then
    rewrite sshd's config for every account and reload sshd. Idempotent."""
    account = accounts.find(store, login)
    if account is None:
        sshd.deprovision(login, where)
    else:
        sshd.provision(account, where)
    sshd.write_config(accounts.every(store), where)


def apply_service(store: Store, public_keys: list[str], where: sshd.SshdSettings) -> None:
    """Give the service login (the ingest pipeline's) these keys, then rewrite sshd's config
    and reload it. Idempotent; two keys at once let it rotate like a declarant."""
    sshd.provision_service([accounts.public_key(key) for key in public_keys], where)
    sshd.write_config(accounts.every(store), where)
