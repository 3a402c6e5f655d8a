"""The API key store and ``neurectomy keys create|revoke|list``."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neurectomy.cli import app
from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore, KeyStoreError, parse_scopes


def test_create_verify_revoke(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / KEYS_FILE_NAME)
    created = store.create("acme", "write,read")
    assert created.token.startswith(f"nrk_{created.key.id}_")
    assert created.key.scopes == ("read", "write")
    assert store.verify(created.token) == created.key
    assert store.verify(created.token + "x") is None
    assert store.verify(created.token[:-1]) is None
    assert store.verify("nrk_00000000_whatever") is None

    other_process = KeyStore(tmp_path / KEYS_FILE_NAME)  # e.g. the running server
    assert other_process.verify(created.token) is not None
    store.revoke(created.key.id)
    assert other_process.verify(created.token) is None
    assert [k.revoked for k in other_process.list_keys()] == [True]
    with pytest.raises(KeyStoreError):
        store.revoke("nope")


def test_keys_file_is_0600_and_stores_only_digests(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "state" / KEYS_FILE_NAME)
    tokens = [store.create(f"t{i}", "read").token for i in range(3)]
    path = tmp_path / "state" / KEYS_FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    stored = json.loads(text)["keys"]
    for token, row in zip(tokens, stored, strict=True):
        assert token not in text
        assert token.split("_", 2)[2] not in text  # the secret (it may contain "_" itself)
        assert row["digest"] == hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize("bad", ["", "root", "read,sudo"])
def test_bad_scopes_are_refused(bad: str) -> None:
    with pytest.raises(KeyStoreError):
        parse_scopes(bad)


def test_bad_tenant_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError):
        KeyStore(tmp_path / KEYS_FILE_NAME).create("../etc", "read")


def test_cli_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURECTOMY_STATE_DIR", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--scope", "read,admin"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    key = KeyStore(tmp_path / KEYS_FILE_NAME).verify(token)
    assert key is not None and key.tenant == "acme" and key.scopes == ("read", "admin")

    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0
    assert key.id in listed.stdout and "acme" in listed.stdout and token not in listed.stdout

    revoked = runner.invoke(app, ["keys", "revoke", key.id])
    assert revoked.exit_code == 0
    assert KeyStore(tmp_path / KEYS_FILE_NAME).verify(token) is None
    assert runner.invoke(app, ["keys", "revoke", "missing"]).exit_code == 1
    bad = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--scope", "root"])
    assert bad.exit_code == 2
