"""cnss_edi.provisioning: an account stored, then made real on a running sshd, and undone."""

from __future__ import annotations

import dataclasses
import io

import paramiko
import pytest

from cnss_edi import accounts, provisioning
from cnss_edi.accounts import Account
from tests import sftp


@pytest.fixture
def own_sshd():
    """A sshd of this test's own: provisioning rewrites the config for the store's accounts
    only, which would drop the accounts of the session's shared server."""
    with sftp.running_server() as server:
        yield server


def test_an_account_is_stored_then_made_real_then_undone(store, own_sshd):
    key = own_sshd.new_key()
    login = own_sshd.login("cabinet")
    own_sshd.users.add(login)  # deleted at the end, whatever happens
    account = Account(login, "accountant", (1234567, 1234575), (), (sftp.public_line(key),))
    accounts.save(store, account)

    provisioning.apply(store, login, own_sshd.settings)
    provisioning.apply(store, login, own_sshd.settings)  # idempotent

    with own_sshd.sftp(login, key) as client:
        assert sorted(client.listdir("/")) == ["in", "out"]
    rotated = own_sshd.new_key()
    accounts.save(store, dataclasses.replace(account, public_keys=(sftp.public_line(rotated),)))
    provisioning.apply(store, login, own_sshd.settings)
    assert own_sshd.refused(login, key)
    with own_sshd.sftp(login, rotated) as client:
        client.putfo(io.BytesIO(b"x"), "/in/a.txt")

    accounts.remove(store, login)
    provisioning.apply(store, login, own_sshd.settings)
    assert own_sshd.refused(login, rotated)
    assert (own_sshd.settings.root / login / "in" / "a.txt").exists()  # its files stay


def test_the_service_login_gets_new_keys_and_keeps_the_declarants(store, own_sshd):
    employer = own_sshd.add("emp_a")
    accounts.save(store, employer.account)
    old, new = own_sshd.service_key, own_sshd.new_key()

    provisioning.apply_service(store, [sftp.public_line(new)], own_sshd.settings)

    assert own_sshd.refused(own_sshd.settings.service, old)
    with own_sshd.sftp(own_sshd.settings.service, new) as client:
        assert sorted(client.listdir("/")) == [".processing", employer.login]
    with own_sshd.sftp(employer.login, employer.keys[0]) as client:
        assert sorted(client.listdir("/")) == ["in", "out"]


def test_settings_make_the_host_key_once(tmp_path):
    first = provisioning.settings(tmp_path / "boxes", tmp_path / "sshd", listen="127.0.0.1", port=2)
    key = first.host_key.read_bytes()
    again = provisioning.settings(tmp_path / "boxes", tmp_path / "sshd", listen="127.0.0.1", port=2)
    assert again.host_key.read_bytes() == key
    assert again.config_path == tmp_path / "sshd" / "sshd_config"
    assert paramiko.Ed25519Key.from_private_key_file(str(again.host_key)) is not None
