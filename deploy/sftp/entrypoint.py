"""Start the SFTP server of the docker compose stack.

A new container has none of the declarants' Unix users (they live in the container's
/etc/passwd), so every account in the CNSS database is provisioned again (idempotent: user, box,
keys), the sshd config is written for all of them, and sshd then runs in the foreground with
that config. Later changes go through `cnss-edi account … --sftp-root --sshd-dir`, which
rewrites the config and reloads this sshd.

The ingest pipeline's service login gets a key pair made on the first start, in
<sshd-dir>/service/ (the Airflow workers mount that volume read-only and connect with it; the
private key belongs to their user, AIRFLOW_UID). `cnss-edi account service --key` replaces it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cnss_edi import accounts, provisioning, sshd
from cnss_edi.store import Store


def main() -> None:
    where = provisioning.settings(
        Path(os.environ["CNSS_EDI_SFTP_ROOT"]),
        Path(os.environ["CNSS_EDI_SSHD_DIR"]),
        listen="0.0.0.0",
        port=int(os.environ.get("CNSS_EDI_SFTP_PORT", "2222")),
    )
    where.root.mkdir(mode=0o755, parents=True, exist_ok=True)
    store = Store.open(os.environ["CNSS_EDI_DATABASE_URL"])
    try:
        every = accounts.every(store)
    finally:
        store.close()
    sshd.provision_service([_service_key(where)], where)
    for account in every:
        sshd.provision(account, where)
    sshd.write_config(every, where)  # no sshd runs yet: nothing to reload
    print(f"sshd: {len(every)} declarant account(s)", flush=True)
    command = [str(where.sshd), "-D", "-e", "-f", str(where.config_path)]
    os.execv(command[0], command)


def _service_key(where: sshd.SshdSettings) -> str:
    """The service login's public key; its pair is made on the first start."""
    folder = where.config_path.parent / "service"
    folder.mkdir(mode=0o755, exist_ok=True)
    private = folder / "id_ed25519"
    if not private.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(private)],
            check=True,
        )
    os.chown(private, int(os.environ.get("AIRFLOW_UID", "50000")), 0)
    private.chmod(0o600)
    return private.with_suffix(".pub").read_text(encoding="ascii").strip()


if __name__ == "__main__":
    main()
