"""Encryption at rest: no plaintext on disk, KEK handling, key rotation, crypto-shredding."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from vault import KeyConfig, KeyEncryptionKeyError, NewRecord, TenantNotFoundError, VaultConfig
from vault._private.sealing import InvalidTag, blob_key_version, open_blob, record_aad
from vault._private.wal import read_wal, wal_generations, wal_path

MARKER = "ZEBRA-MARKER-7Q4X"


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_no_plaintext(root: Path) -> None:
    needles = [MARKER.encode(), MARKER.encode("utf-16-le"), b"meta-" + MARKER.encode()]
    checked = files_under(root)
    assert checked
    for path in checked:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"plaintext found in {path}"


def store_marked(v, tenant: str = "acme", n: int = 12) -> list[str]:
    records = [
        NewRecord(text=f"Secret note {i}: {MARKER} lives here.", metadata={"tag": f"meta-{MARKER}", "i": i})
        for i in range(n)
    ]
    return v.put_many(tenant, records)


def test_no_plaintext_in_any_file_wal_snapshot_and_backup(make_vault, data_dir, tmp_path) -> None:
    v = make_vault()
    store_marked(v)
    assert_no_plaintext(data_dir)  # WAL + segment
    v.snapshot(tmp_path / "backup")
    store_marked(v, n=3)
    assert_no_plaintext(data_dir)  # index snapshot, state snapshot, manifest, keyring, new WAL
    assert_no_plaintext(tmp_path / "backup")
    assert any(p.name.startswith("index.") for p in files_under(data_dir))
    v.close()
    assert_no_plaintext(data_dir)


def test_kek_file_is_created_private_outside_the_data_dir(make_vault, data_dir, tmp_path) -> None:
    v = make_vault()
    kek = v.kek_file
    assert kek is not None and kek.parent == tmp_path / "config" / "neurectomy" / "vault-keys"
    assert not kek.resolve().is_relative_to(data_dir.resolve())
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600
    assert stat.S_IMODE(kek.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert len(base64.b64decode(kek.read_text().strip())) == 32
    assert not any(p.name.endswith(".key") for p in data_dir.rglob("*"))


def test_kek_from_env_and_wrong_kek_is_refused(make_vault, data_dir, monkeypatch) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("NEURECTOMY_VAULT_KEK", key)
    v = make_vault()
    v.put("acme", "hello", id="a")
    v.close()
    assert not (data_dir / "kek.key").exists()
    monkeypatch.setenv("NEURECTOMY_VAULT_KEK", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(KeyEncryptionKeyError, match="keyring.json") as info:
        make_vault()
    assert key not in str(info.value)
    monkeypatch.setenv("NEURECTOMY_VAULT_KEK", "not base64!")
    with pytest.raises(KeyEncryptionKeyError, match="env:NEURECTOMY_VAULT_KEK"):
        make_vault()
    monkeypatch.setenv("NEURECTOMY_VAULT_KEK", key)
    assert make_vault().get("acme", "a").text == "hello"


def test_kek_rotation_rewraps_keys_without_rewriting_records(make_vault, data_dir) -> None:
    v = make_vault()
    ids = store_marked(v)
    v.snapshot()
    before = v._storage.keys.wrapped_keys()
    segment = next(data_dir.rglob("records.*.seg"))
    seg_bytes, seg_mtime = segment.read_bytes(), segment.stat().st_mtime_ns
    kek_file = v.kek_file
    assert kek_file is not None
    old_kek = kek_file.read_bytes()
    v.rotate_kek()
    after = v._storage.keys.wrapped_keys()
    assert after.keys() == before.keys()
    assert all(after["acme"][ver] != wrapped for ver, wrapped in before["acme"].items())
    assert kek_file.read_bytes() != old_kek
    assert segment.read_bytes() == seg_bytes and segment.stat().st_mtime_ns == seg_mtime
    v.close()
    reopened = make_vault()
    assert reopened.get("acme", ids[4]).text.startswith("Secret note 4")
    assert segment.read_bytes() == seg_bytes


def test_data_key_rotation_keeps_old_records_readable(make_vault) -> None:
    v = make_vault()
    old = v.put("acme", "written under key one", id="old")
    version = v.rotate_data_key("acme")
    v.put("acme", "written under key two", id="new")
    blobs = {
        rid: v._storage.tenants["acme"].read_blob(v._storage.tenants["acme"].slots[rid])
        for rid in ("old", "new")
    }
    assert blob_key_version(blobs["new"]) == version != blob_key_version(blobs["old"])
    v.close()
    reopened = make_vault()
    assert reopened.get("acme", old).text == "written under key one"
    assert reopened.get("acme", "new").text == "written under key two"
    with pytest.raises(TenantNotFoundError):
        reopened.rotate_data_key("nobody")


def test_associated_data_binds_record_id(make_vault) -> None:
    v = make_vault()
    v.put("acme", "first", id="a")
    state = v._storage.tenants["acme"]
    blob = state.read_blob(state.slots["a"])
    key = v._storage.keys.key("acme", blob_key_version(blob))
    assert key is not None
    assert open_blob(key, blob, record_aad("acme", "a", blob_key_version(blob)))
    with pytest.raises(InvalidTag):
        open_blob(key, blob, record_aad("acme", "b", blob_key_version(blob)))
    with pytest.raises(InvalidTag):
        open_blob(key, blob, record_aad("other", "a", blob_key_version(blob)))


def test_delete_tenant_crypto_shreds(make_vault, data_dir, tmp_path) -> None:
    v = make_vault()
    store_marked(v, tenant="doomed")
    v.put("keep", "unrelated record", id="k")
    v.snapshot()
    store_marked(v, tenant="doomed", n=3)  # some only in the WAL
    attacker_copy = tmp_path / "copy"
    shutil.copytree(data_dir, attacker_copy)  # every file as it was before the deletion
    v.delete_tenant("doomed")

    assert v.tenants() == ["keep"]
    with pytest.raises(TenantNotFoundError):
        v.get("doomed", "anything")
    with pytest.raises(TenantNotFoundError):
        v.search("doomed", "secret note", k=3)
    with pytest.raises(TenantNotFoundError):
        v.delete_tenant("doomed")
    assert "doomed" not in (data_dir / "keyring.json").read_text()
    assert "doomed" not in (data_dir / "MANIFEST.json").read_text()
    keys = v._storage.keys
    # None of the old sealed records decrypts with any key the vault still has.
    old_wals = [wal_path(attacker_copy, g) for g in wal_generations(attacker_copy)]
    entries = [e for p in old_wals for e in read_wal(p) if e.tenant == "doomed" and e.blob]
    assert entries
    for entry in entries:
        version = blob_key_version(entry.blob)
        assert keys.key("doomed", version) is None and keys.is_destroyed(version)
        for tenant in keys.tenants():
            for candidate in keys.wrapped_keys()[tenant]:
                key = keys.key(tenant, candidate)
                assert key is not None
                with pytest.raises(InvalidTag):
                    open_blob(key, entry.blob, record_aad("doomed", entry.record_id, version))
    v.close()
    assert_no_plaintext(data_dir)
    assert not [p for p in files_under(data_dir) if MARKER.encode() in p.read_bytes()]

    # Replay the old WAL entries (as if restored from a disk image): the shredded records are skipped.
    (current,) = wal_generations(data_dir)
    with open(wal_path(data_dir, current), "ab") as fh:
        for p in old_wals:
            fh.write(p.read_bytes())
    reopened = make_vault()
    assert reopened.tenants() == ["keep"]
    assert reopened.count("doomed") == 0
    assert reopened.get("keep", "k").text == "unrelated record"


def test_recreated_tenant_gets_a_fresh_key(make_vault) -> None:
    v = make_vault()
    v.put("t", "first life", id="x")
    first = set(v._storage.keys.wrapped_keys()["t"])
    v.delete_tenant("t")
    v.put("t", "second life", id="y")
    assert set(v._storage.keys.wrapped_keys()["t"]).isdisjoint(first)
    v.close()
    reopened = make_vault()
    assert reopened.count("t") == 1
    assert reopened.get("t", "y").text == "second life"


def test_keyring_tampering_is_detected(make_vault, data_dir) -> None:
    v = make_vault()
    v.put("acme", "hello", id="a")
    v.close()
    path = data_dir / "keyring.json"
    doc = json.loads(path.read_text())
    doc["body"]["tenants"]["acme"]["active"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(Exception, match="keyring.json") as info:
        make_vault()
    assert "HMAC" in str(info.value)


def test_custom_kek_file_location(make_vault, tmp_path) -> None:
    kek_file = tmp_path / "secrets" / "vault.kek"
    config = VaultConfig(keys=KeyConfig(kek_file=kek_file))
    v = make_vault(config=config)
    v.put("acme", "hello", id="a")
    assert kek_file.exists() and not (v.data_dir / "kek.key").exists()
