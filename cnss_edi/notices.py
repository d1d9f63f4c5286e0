"""Files CNSS sends its declarants (préétablis, reminders, penalty notices): who receives an
employer's files, and how one lands in a login's out/ folder."""

from __future__ import annotations

from cnss_edi import accounts
from cnss_edi.files import write_atomically
from cnss_edi.process import Locations
from cnss_edi.store import Store


def holders(store: Store) -> dict[int, list[accounts.Account]]:
    """Each affiliate and the accounts that declare for it (an employer's own login, its
    group's, its accountant's), by login."""
    found: dict[int, list[accounts.Account]] = {}
    for account in accounts.every(store):
        for affiliate in account.affiliates:
            found.setdefault(affiliate, []).append(account)
    return found


def publish(locations: Locations, login: str, name: str, raw: bytes) -> int:
    """One copy in the login's out/: on the SFTP server (.part, then renamed) or in the local
    outbox. 0 when the same bytes are already there, else 1."""
    if locations.server is not None:
        return locations.server.publish(f"{login}/out", name, raw)
    target = locations.outbox / login / "out" / name
    if target.exists() and target.read_bytes() == raw:
        return 0
    write_atomically(target, raw)
    return 1
