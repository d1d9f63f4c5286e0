"""Start the SFTP server of the docker compose stack.

A new container has none of the declarants' Unix users (they live in the container's
/etc/passwd), so every account in the CNSS database is provisioned again (idempotent: user, box,
keys), the sshd config is written for all of them (no account: nobody may log in), and sshd
then runs in the foreground with that config. Later changes go through
`cnss-edi account … --sftp-root --sshd-dir`, which rewrites the config and reloads this sshd.
"""

from __future__ import annotations

import os
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
    for account in every:
        sshd.provision(account, where)
    sshd.write_config(every, where)  # no sshd runs yet: nothing to reload
    print(f"sshd: {len(every)} declarant account(s)", flush=True)
    command = [str(where.sshd), "-D", "-e", "-f", str(where.config_path)]
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
