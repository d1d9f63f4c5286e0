"""Declarant accounts: an SFTP login and the set of affiliates it may declare for.

An employer declares for itself (one affiliate), a group for its companies, a mandated
accountant for its client employers. The account lives in PostgreSQL; its login names its
drop box <root>/<login>/ (cnss_edi.sshd writes the OpenSSH side from the same record).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Literal, get_args

from cnss_edi.dropbox import LOGIN  # a Unix user name, never mistaken for an affiliate box
from cnss_edi.store import Store

Kind = Literal["employer", "group", "accountant"]
KINDS: tuple[str, ...] = get_args(Kind)
EMAIL = re.compile(r"[^@\s<>,;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}")
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-rsa")


class AccountError(ValueError):
    """An account that cannot be provisioned as asked; the message says what to change."""


@dataclass(frozen=True)
class Account:
    login: str
    kind: Kind
    affiliates: tuple[int, ...]
    allow_from: tuple[str, ...] = ()  # source networks (CIDR); empty: from anywhere
    public_keys: tuple[str, ...] = ()  # "type base64" lines, comments dropped
    emails: tuple[str, ...] = ()  # where reminders and notices are announced

    def checked(self) -> Account:
        """The account normalised (sorted, deduplicated, canonical networks), or AccountError."""
        if not LOGIN.match(self.login):
            raise AccountError(
                f"login {self.login!r}: 3 to 32 lowercase letters, digits, '_' or '-', "
                "starting with a letter"
            )
        if self.kind not in KINDS:
            raise AccountError(f"kind {self.kind!r}: one of {', '.join(KINDS)}")
        affiliates = tuple(sorted(set(self.affiliates)))
        if not affiliates or any(not 0 < a < 10_000_000 for a in affiliates):
            raise AccountError("affiliates: at least one 7-digit affiliate number")
        if self.kind == "employer" and len(affiliates) != 1:
            raise AccountError("an employer declares for exactly one affiliate")
        return replace(
            self,
            affiliates=affiliates,
            allow_from=tuple(sorted({_network(n) for n in self.allow_from})),
            public_keys=tuple(dict.fromkeys(public_key(k) for k in self.public_keys)),
            emails=tuple(sorted({_email(e) for e in self.emails})),
        )


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise AccountError(f"network {text!r}: expected a CIDR such as 192.0.2.0/24") from None


def _email(text: str) -> str:
    address = text.strip()
    if not EMAIL.fullmatch(address):
        raise AccountError(f"email {text!r}: expected an address such as paie@example.ma")
    return address


def public_key(line: str) -> str:
    """An OpenSSH public key line reduced to "type base64" (its comment dropped), checked."""
    parts = line.split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise AccountError(f"public key: expected one of {', '.join(KEY_TYPES)} followed by data")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise AccountError("public key: its data is not base64") from None
    if not blob.startswith(len(parts[0]).to_bytes(4, "big") + parts[0].encode()):
        raise AccountError("public key: its data does not match its type")
    return f"{parts[0]} {parts[1]}"


_COLUMNS = "login, kind, affiliates, allow_from::text[], public_keys, emails"


def _account(row: tuple) -> Account:
    login, kind, affiliates, allow_from, keys, emails = row
    return Account(login, kind, tuple(affiliates), tuple(allow_from), tuple(keys), tuple(emails))


def save(store: Store, account: Account) -> Account:
    """Create or replace an account (idempotent); returns it as stored."""
    account = account.checked()
    with store.transaction() as cursor:
        cursor.execute(
            "INSERT INTO declarant (login, kind, affiliates, allow_from, public_keys, emails)"
            " VALUES (%s, %s, %s, %s::cidr[], %s, %s)"
            " ON CONFLICT (login) DO UPDATE SET kind = excluded.kind,"
            " affiliates = excluded.affiliates, allow_from = excluded.allow_from,"
            " public_keys = excluded.public_keys, emails = excluded.emails, updated_at = now()",
            (
                account.login,
                account.kind,
                list(account.affiliates),
                list(account.allow_from),
                list(account.public_keys),
                list(account.emails),
            ),
        )
    return account


def find(store: Store, login: str) -> Account | None:
    with store.transaction() as cursor:
        cursor.execute(f"SELECT {_COLUMNS} FROM declarant WHERE login = %s", (login,))
        row = cursor.fetchone()
    return _account(row) if row else None


def every(store: Store) -> list[Account]:
    with store.transaction() as cursor:
        cursor.execute(f"SELECT {_COLUMNS} FROM declarant ORDER BY login")
        return [_account(row) for row in cursor.fetchall()]


def remove(store: Store, login: str) -> bool:
    """Forget an account (its files and their history stay); False if there was none."""
    with store.transaction() as cursor:
        cursor.execute("DELETE FROM declarant WHERE login = %s", (login,))
        return cursor.rowcount == 1


def with_key(account: Account, key: str, *, present: bool) -> Account:
    """The account with one key added or removed: two keys at once let a declarant rotate."""
    key = public_key(key)
    keys = [k for k in account.public_keys if k != key] + ([key] if present else [])
    return replace(account, public_keys=tuple(keys))
