"""Durability and integrity: WAL crash recovery (kill -9), torn tails, snapshots/restore, tampering."""

from __future__ import annotations

import json
import re
import signal
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.vault._child import killed_child
from vault import DecryptionError, DurabilityConfig, IntegrityError, NewRecord, VaultConfig
from vault._private.wal import wal_generations, wal_path

NO_SNAPSHOT = VaultConfig(durability=DurabilityConfig(snapshot_on_close=False))

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from vault import Vault

    rng = np.random.default_rng(7)
    with Vault(sys.argv[1]) as v:
        print("ready", flush=True)
        for i in range(100_000):
            vec = rng.standard_normal(384).astype(np.float32)
            rid = v.put("acme", f"record number {i}", id=f"r{i}", metadata={"i": i}, embedding=vec)
            print(rid, flush=True)
    """
)


def current_wal(data_dir: Path) -> Path:
    return wal_path(data_dir, wal_generations(data_dir)[-1])


def test_kill_9_never_loses_an_acknowledged_write(make_vault, data_dir) -> None:
    acked: list[str] = []
    with killed_child(CHILD, str(data_dir)) as proc:  # killed -9 mid-write: no close(), no snapshot
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 30
        while len(acked) < 150 and time.monotonic() < deadline:
            acked.append(proc.stdout.readline().strip())
    assert len(acked) == 150 and proc.returncode == -signal.SIGKILL
    v = make_vault()
    assert v.count("acme") >= len(acked)
    for rid in acked:
        record = v.get("acme", rid)
        assert record.text == f"record number {rid[1:]}"
        assert record.metadata == {"i": int(rid[1:])}
    vec = v.get("acme", "r42").embedding
    assert v.search("acme", vec, k=1)[0].record.id == "r42"


def test_truncated_wal_tail_is_dropped_and_log_stays_usable(make_vault, data_dir, unit_vectors) -> None:
    v = make_vault(config=NO_SNAPSHOT)
    vectors = unit_vectors(5)
    for i in range(5):
        v.put("acme", f"entry {i}", id=f"e{i}", embedding=vectors[i])
    v.close()
    wal = current_wal(data_dir)
    size = wal.stat().st_size
    with open(wal, "r+b") as fh:
        fh.truncate(size - 30)  # cut the last entry in its middle
    v = make_vault(config=NO_SNAPSHOT)
    assert v.count("acme") == 4
    assert [v.get("acme", f"e{i}").text for i in range(4)] == [f"entry {i}" for i in range(4)]
    v.put("acme", "after recovery", id="e9", embedding=vectors[4])
    v.close()
    with open(current_wal(data_dir), "ab") as fh:
        fh.write(b"\x00" * 64)  # zero-filled end left by a crash
    v = make_vault(config=NO_SNAPSHOT)
    assert v.count("acme") == 5
    assert v.get("acme", "e9").text == "after recovery"


def test_flipped_byte_inside_the_wal_names_the_file(make_vault, data_dir, unit_vectors) -> None:
    v = make_vault(config=NO_SNAPSHOT)
    for i, vec in enumerate(unit_vectors(3)):
        v.put("acme", f"entry {i}", id=f"e{i}", embedding=vec)
    v.close()
    wal = current_wal(data_dir)
    data = bytearray(wal.read_bytes())
    data[40] ^= 0x01  # inside the first of three complete entries
    wal.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as info:
        make_vault(config=NO_SNAPSHOT)
    assert info.value.path == wal
    assert str(wal) in str(info.value) and "checksum" in str(info.value)


def test_flipped_byte_in_sealed_segment_names_the_file(make_vault, data_dir, unit_vectors) -> None:
    v = make_vault()
    for i, vec in enumerate(unit_vectors(3)):
        v.put("acme", f"entry {i}", id=f"e{i}", embedding=vec)
    v.close()
    segment = next(data_dir.rglob("records.*.seg"))
    data = bytearray(segment.read_bytes())
    data[-5] ^= 0x01  # inside the last record's ciphertext
    segment.write_bytes(bytes(data))
    v = make_vault()
    assert v.get("acme", "e0").text == "entry 0"
    with pytest.raises(DecryptionError) as info:
        v.get("acme", "e2")
    assert info.value.path == segment and info.value.tenant == "acme"
    assert str(segment) in str(info.value)


@pytest.mark.parametrize("kind", ["index", "state"])
def test_tampered_snapshot_file_fails_to_open_naming_it(make_vault, data_dir, unit_vectors, kind) -> None:
    v = make_vault()
    for i, vec in enumerate(unit_vectors(4)):
        v.put("acme", f"entry {i}", id=f"e{i}", embedding=vec)
    v.close()
    snap = next(data_dir.rglob(f"{kind}.*.snap"))
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0x80
    snap.write_bytes(bytes(data))
    with pytest.raises(DecryptionError, match=re.escape(str(snap))):
        make_vault()


def test_tampered_manifest_names_the_file(make_vault, data_dir, unit_vectors) -> None:
    v = make_vault()
    v.put("acme", "one record", embedding=unit_vectors(1)[0])
    v.close()
    manifest = data_dir / "MANIFEST.json"
    doc = json.loads(manifest.read_text())
    doc["body"]["generation"] += 1
    manifest.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="MANIFEST.json"):
        make_vault()


def test_snapshot_starts_a_new_wal_and_recovers_from_snapshot_plus_wal(
    make_vault, data_dir, unit_vectors
) -> None:
    vectors = unit_vectors(6)
    v = make_vault(config=NO_SNAPSHOT)
    v.put_many("acme", [NewRecord(text=f"before {i}", id=f"b{i}", embedding=vectors[i]) for i in range(3)])
    generation = v.snapshot()
    assert generation == 1 and v.stats().wal_entries == 0
    v.put_many("acme", [NewRecord(text=f"after {i}", id=f"a{i}", embedding=vectors[3 + i]) for i in range(3)])
    v.delete("acme", "b0")
    v.close()  # no snapshot on close: the next open needs snapshot + WAL
    v = make_vault(config=NO_SNAPSHOT)
    assert v.count("acme") == 5
    assert v.stats().snapshot_generation == 1
    assert v.get("acme", "a2").text == "after 2"
    np.testing.assert_allclose(v.search("acme", vectors[4], k=1)[0].score, 1.0, atol=1e-5)


def test_snapshot_to_dest_then_restore(make_vault, tmp_path, unit_vectors) -> None:
    vectors = unit_vectors(4)
    v = make_vault()
    v.put("acme", "kept in the backup", id="a", embedding=vectors[0])
    v.put("beta", "other tenant", id="b", embedding=vectors[1])
    v.snapshot(tmp_path / "backup")
    v.put("acme", "written after the backup", id="late", embedding=vectors[2])
    v.delete("acme", "a")
    v.delete_tenant("beta")
    v.restore(tmp_path / "backup")
    assert v.count("acme") == 1
    assert v.get("acme", "a").text == "kept in the backup"
    assert v.get("beta", "b").text == "other tenant"
    assert v.search("acme", vectors[2], k=5)[0].record.id == "a"
    v.put("acme", "written after restore", id="new", embedding=vectors[3])
    v.close()
    v = make_vault()
    assert sorted(r.record.id for r in v.search("acme", vectors[3], k=5)) == ["a", "new"]
    with pytest.raises(IntegrityError, match="MANIFEST.json"):
        v.restore(tmp_path / "missing")


def test_compaction_drops_tombstones_and_keeps_data(make_vault, data_dir, unit_vectors) -> None:
    vectors = unit_vectors(40)
    v = make_vault()
    v.put_many("acme", [NewRecord(text=f"r{i}", id=f"r{i}", embedding=vectors[i]) for i in range(40)])
    for i in range(0, 40, 2):
        v.delete("acme", f"r{i}")
    assert v.stats().tombstones == 20
    old_segment = next(data_dir.rglob("records.*.seg"))
    v.compact()
    stats = v.stats()
    assert stats.tombstones == 0 and stats.records == 20
    new_segment = next(data_dir.rglob("records.*.seg"))
    assert new_segment != old_segment and not old_segment.exists()
    assert v.search("acme", vectors[5], k=1)[0].record.id == "r5"
    assert all(
        h.record.id not in {f"r{i}" for i in range(0, 40, 2)} for h in v.search("acme", vectors[4], k=40)
    )
    v.close()
    v = make_vault()
    assert v.count("acme") == 20 and v.get("acme", "r39").text == "r39"


def test_tenant_recreated_after_a_shred_survives_a_replay(make_vault, unit_vectors) -> None:
    vectors = unit_vectors(2)
    v = make_vault(config=NO_SNAPSHOT)
    v.put("acme", "before the shred", id="old", embedding=vectors[0])
    v.delete_tenant("acme")
    v.put("acme", "after the shred", id="new", embedding=vectors[1])
    v.close()  # no snapshot: the next open replays put, shred, put
    reopened = make_vault(config=NO_SNAPSHOT)
    assert reopened.get("acme", "new").text == "after the shred"
    assert reopened.count("acme") == 1 and reopened.tenants() == ["acme"]
