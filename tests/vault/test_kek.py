"""Where the key-encryption key lives, and KEK rotation that keeps every earlier snapshot restorable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from vault import KeyConfig, KeyEncryptionKeyError, VaultConfig
from vault._private.keywrap import mac_key as _mac_key


def test_snapshot_rotate_kek_restore(make_vault, data_dir, tmp_path, unit_vectors) -> None:
    vectors = unit_vectors(6)
    v = make_vault()
    v.put("acme", "written before the first rotation", id="a", embedding=vectors[0])
    v.snapshot(tmp_path / "copy1")
    first = v.rotate_kek()
    v.put("acme", "written between the rotations", id="b", embedding=vectors[1])
    v.put("globex", "another tenant", id="g", embedding=vectors[2])
    v.snapshot(tmp_path / "copy2")
    v.rotate_kek()
    v.put("acme", "written after both rotations", id="c", embedding=vectors[3])

    v.restore(tmp_path / "copy1")  # wrapped under the KEK of two rotations ago
    assert v.get("acme", "a").text == "written before the first rotation"
    assert v.count("acme") == 1 and v.tenants() == ["acme"]
    v.restore(tmp_path / "copy2")  # wrapped under the KEK of one rotation ago
    assert v.count("acme") == 2 and v.get("globex", "g").text == "another tenant"
    assert first in v._storage.keys.previous_kek_ids()
    v.put("acme", "written after the restore", id="d", embedding=vectors[4])
    v.close()

    reopened = make_vault()  # the restored keyring is saved under the current KEK
    assert reopened.get("acme", "b").text == "written between the rotations"
    assert reopened.get("acme", "d").text == "written after the restore"
    reopened.restore(tmp_path / "copy1")
    assert reopened.get("acme", "a").text == "written before the first rotation"


def test_a_copy_from_a_kek_this_vault_never_had_is_refused(make_vault, tmp_path, unit_vectors) -> None:
    other = make_vault(tmp_path / "other")
    other.put("acme", "someone else's data", id="x", embedding=unit_vectors(1)[0])
    other.snapshot(tmp_path / "foreign")
    v = make_vault()
    v.put("acme", "mine", id="m", embedding=unit_vectors(1)[0])
    with pytest.raises(KeyEncryptionKeyError, match="never had"):
        v.restore(tmp_path / "foreign")
    assert v.get("acme", "m").text == "mine"


def test_kek_inside_the_data_dir_is_refused_unless_allowed(make_vault, data_dir) -> None:
    inside = KeyConfig(kek_file=data_dir / "secret.key")
    with pytest.raises(KeyEncryptionKeyError, match="inside the vault's data directory"):
        make_vault(config=VaultConfig(keys=inside))
    assert not (data_dir / "secret.key").exists()
    allowed = VaultConfig(keys=inside.model_copy(update={"allow_kek_in_data_dir": True}))
    v = make_vault(config=allowed)
    assert v.kek_file == data_dir / "secret.key"


def test_legacy_kek_in_the_data_dir_is_refused_with_the_move_command(
    make_vault, data_dir, unit_vectors
) -> None:
    legacy = VaultConfig(keys=KeyConfig(kek_file=data_dir / "kek.key", allow_kek_in_data_dir=True))
    old = make_vault(config=legacy)  # the layout of earlier versions: the KEK beside the data
    old.put("acme", "written by an earlier version", id="a", embedding=unit_vectors(1)[0])
    old.close()
    path = data_dir / "keyring.json"  # and a keyring from before vault ids
    doc = json.loads(path.read_text())
    del doc["body"]["vault_id"]
    kek = base64.b64decode((data_dir / "kek.key").read_text())
    canonical = json.dumps(doc["body"], sort_keys=True, separators=(",", ":")).encode()
    doc["mac"] = hmac.new(_mac_key(kek), canonical, hashlib.sha256).hexdigest()
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyEncryptionKeyError, match=r"kek\.key.*mv ") as info:
        make_vault()
    assert "inside the vault's data directory" in str(info.value)
    move = re.search(r"`mkdir -p -m 700 (\S+) && mv (\S+) (\S+)`", str(info.value))
    assert move is not None and Path(move.group(2)) == data_dir / "kek.key"
    Path(move.group(1)).mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.move(move.group(2), move.group(3))  # what the message says to run
    moved = make_vault()
    assert moved.get("acme", "a").text == "written by an earlier version"
    assert moved.kek_file == Path(move.group(3))


def test_a_missing_kek_file_is_an_error_never_a_new_key(make_vault, data_dir, unit_vectors) -> None:
    v = make_vault()
    v.put("acme", "needs the original key", id="a", embedding=unit_vectors(1)[0])
    kek = v.kek_file
    assert kek is not None
    v.close()
    backup = kek.with_name("backup.key")
    shutil.move(kek, backup)
    with pytest.raises(KeyEncryptionKeyError, match="restore the key file from your backup"):
        make_vault()
    assert not kek.exists()
    shutil.move(backup, kek)  # the documented recovery: put the backed-up file back
    assert make_vault().get("acme", "a").text == "needs the original key"


def test_mounted_secret_file_is_read_and_never_rewritten(make_vault, tmp_path, unit_vectors) -> None:
    secret = tmp_path / "run" / "secrets" / "vault-kek"
    secret.parent.mkdir(parents=True)
    secret.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    secret.chmod(0o400)
    before = secret.read_bytes()
    v = make_vault(config=VaultConfig(keys=KeyConfig(kek_file=secret)))
    v.put("acme", "sealed under the mounted key", id="a", embedding=unit_vectors(1)[0])
    v.close()
    assert secret.read_bytes() == before and stat.S_IMODE(secret.stat().st_mode) == 0o400
    assert not list((tmp_path / "config").rglob("*.key"))
    again = make_vault(config=VaultConfig(keys=KeyConfig(kek_file=secret)))
    assert again.get("acme", "a").text == "sealed under the mounted key"
