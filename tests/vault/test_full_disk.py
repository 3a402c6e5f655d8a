"""A full disk: the vault on a small real tmpfs, filled to the brim.

Writes answer ``InsufficientStorageError`` naming the file (HTTP 507 through the service) and keep
nothing; reads keep working; once space returns, writes resume; after a restart every acknowledged
record is there. A new tenant whose data key cannot be saved is rolled back. Needs ``mount -t tmpfs``
(root); skipped with the reason otherwise.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from vault import DurabilityConfig, InsufficientStorageError, NewRecord, TenantNotFoundError, VaultConfig
from vault._private.wal import scan_wal, wal_generations, wal_path

DISK_BYTES = 2 * 1024 * 1024
CONFIG = VaultConfig(durability=DurabilityConfig(snapshot_every_writes=10_000_000))


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for this test (unmounted at teardown)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the file system refuses another byte (pages, then single bytes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\xff" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)


def record(i: int, vectors: np.ndarray) -> NewRecord:
    text = f"record {i}: " + os.urandom(700).hex()  # incompressible, ~1.4 KB
    return NewRecord(text=text, metadata={"i": i}, id=f"r{i}", embedding=vectors[i])


def test_full_disk_refuses_writes_keeps_reads_and_resumes(disk, make_vault, unit_vectors) -> None:
    data_dir = disk / "vault"
    ballast = disk / "ballast"
    ballast.write_bytes(b"\x01" * 256 * 1024)
    v = make_vault(data_dir, config=CONFIG)
    vectors = unit_vectors(2000)
    acked: dict[str, str] = {}
    refused: InsufficientStorageError | None = None
    for i in range(2000):
        rec = record(i, vectors)
        try:
            v.put_many("acme", [rec])
        except InsufficientStorageError as exc:
            refused = exc
            break
        acked[rec.id or ""] = rec.text
    assert refused is not None and len(acked) > 50, "the disk never filled"
    assert refused.errno == errno.ENOSPC and str(data_dir) in str(refused)
    fill(disk / "plug")  # the last free bytes too: nothing at all fits now

    wal = wal_path(data_dir, wal_generations(data_dir)[-1])
    wal_size = wal.stat().st_size
    for i in range(len(acked), len(acked) + 3):  # still full: every write refused, nothing kept
        with pytest.raises(InsufficientStorageError, match=str(data_dir)):
            v.put_many("acme", [record(i, vectors)])
    with pytest.raises(InsufficientStorageError, match="keyring.json"):
        v.put("newcomer", "a new tenant needs a data key first", embedding=vectors[0])
    assert "newcomer" not in v.tenants()
    with pytest.raises(InsufficientStorageError):
        v.snapshot()
    assert not list(data_dir.rglob("*.tmp")) and v.stats().snapshot_generation == 0
    scan = scan_wal(wal)
    assert wal.stat().st_size == wal_size and not scan.damaged and scan.torn_at is None
    assert sum(e.op == 1 for e in scan.entries) == len(acked)

    assert v.count("acme") == len(acked)  # reads keep working
    for rid in list(acked)[:: max(1, len(acked) // 20)]:
        assert v.get("acme", rid).text == acked[rid]
    assert v.search("acme", vectors[3], k=1)[0].record.id == "r3"

    ballast.unlink()  # space returns: writes resume without a restart
    (disk / "plug").unlink()
    extra = record(1999, vectors)
    assert v.put_many("acme", [extra]) == ["r1999"]
    acked["r1999"] = extra.text
    with pytest.raises(TenantNotFoundError):
        v.rotate_data_key("newcomer")  # its key was never saved, so it was never used
    v.close()

    reopened = make_vault(data_dir, config=CONFIG)
    assert reopened.count("acme") == len(acked)
    for rid, text in acked.items():
        assert reopened.get("acme", rid).text == text
    assert reopened.tenants() == ["acme"]
    keyring = json.loads((data_dir / "keyring.json").read_text())
    assert list(keyring["body"]["tenants"]) == ["acme"]
