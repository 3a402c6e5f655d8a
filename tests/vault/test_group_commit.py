"""Group commit: concurrent writers share one fsync, taken without the vault's lock; nothing is acknowledged
before its frames are on disk, and a failed fsync fails every write it was to cover and keeps none of them.

The first fsync is held until the other writers have written their frames (a state, not a time), so the
sharing is deterministic.
"""

from __future__ import annotations

import errno
import os
import signal
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.vault._child import child_line, killed_child
from vault import DurabilityConfig, RecordNotFoundError, Vault, VaultConfig, VaultStorageError
from vault._private import wal

NO_SNAPSHOTS = VaultConfig(
    durability=DurabilityConfig(snapshot_every_writes=10_000_000, snapshot_on_close=False)
)


class _Os(ModuleType):
    """``os`` for the WAL module, with ``fsync`` replaced."""

    def __init__(self, fsync: Callable[[int], None]) -> None:
        super().__init__("os")
        self.fsync = fsync

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30) -> bool:
    """Poll a state (not a duration): True once ``predicate()`` holds, False after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True


def held_first_fsync(
    v: Vault, writers: int, monkeypatch: pytest.MonkeyPatch, fail: bool = False
) -> list[int]:
    """Hold the WAL's first fsync until ``writers`` puts are written (then run it, or fail it with EIO).

    Returns the list that counts the WAL's fsyncs.
    """
    calls: list[int] = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            wait_until(lambda: len(v._storage.inflight) >= writers, timeout_s=10)  # old code: never
            if fail:
                raise OSError(errno.EIO, "Input/output error")
        os.fsync(fd)

    monkeypatch.setattr(wal, "os", _Os(fsync))
    return calls


def run_writers(v: Vault, vectors: np.ndarray, writers: int) -> list[object]:
    outcome: list[object] = [None] * writers

    def write(i: int) -> None:
        try:
            outcome[i] = v.put("acme", f"note {i}", id=f"r{i}", embedding=vectors[i])
        except Exception as exc:  # reported to the test
            outcome[i] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcome


def test_concurrent_writers_share_an_fsync_taken_without_the_lock(
    make_vault, unit_vectors, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = make_vault(config=NO_SNAPSHOTS)
    v.put("acme", "first", id="first", embedding=unit_vectors(1, seed=9)[0])  # the tenant and its key exist
    vectors = unit_vectors(8)
    fsyncs = held_first_fsync(v, 8, monkeypatch)
    outcome = run_writers(v, vectors, 8)
    assert outcome == [f"r{i}" for i in range(8)]
    assert len(fsyncs) < 8  # eight writes, one fsync each before: now the first covers the others
    assert v.count("acme") == 9
    v.close()
    reopened = make_vault(config=NO_SNAPSHOTS)  # no snapshot: the WAL alone holds them
    assert reopened.count("acme") == 9
    assert all(reopened.get("acme", f"r{i}").text == f"note {i}" for i in range(8))


def test_a_failed_shared_fsync_fails_every_write_it_covered_and_keeps_none(
    make_vault, unit_vectors, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = make_vault(config=NO_SNAPSHOTS)
    v.put("acme", "first", id="first", embedding=unit_vectors(1, seed=9)[0])
    vectors = unit_vectors(4)
    held_first_fsync(v, 3, monkeypatch, fail=True)
    outcome = run_writers(v, vectors, 3)
    assert all(isinstance(o, VaultStorageError) for o in outcome), outcome
    assert v.count("acme") == 1 and not v._storage.inflight
    with pytest.raises(RecordNotFoundError):
        v.get("acme", "r0")
    assert v.put("acme", "after", id="r3", embedding=vectors[3]) == "r3"  # writes work again
    assert v.search("acme", vectors[3], k=1)[0].record.id == "r3"
    v.close()
    reopened = make_vault(config=NO_SNAPSHOTS)  # the WAL was cut back: none of the three comes back
    assert reopened.count("acme") == 2
    assert reopened.get("acme", "r3").text == "after"
    with pytest.raises(RecordNotFoundError):
        reopened.get("acme", "r1")


CHILD = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    from vault import DurabilityConfig, Vault, VaultConfig

    out = threading.Lock()
    config = VaultConfig(durability=DurabilityConfig(snapshot_every_writes=500))
    v = Vault(sys.argv[1], config=config)

    def writer(w):
        rng = np.random.default_rng(w)
        for i in range(100_000):
            rid = f"w{w}-{i}"
            v.put("acme", f"record {rid}", id=rid, embedding=rng.standard_normal(384).astype(np.float32))
            with out:  # printed only once acknowledged
                sys.stdout.write(rid + "\\n")
                sys.stdout.flush()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:  # the parent kills the process while they write
        t.join()
    """
)


def test_kill_9_with_concurrent_writers_loses_no_acknowledged_write(make_vault, data_dir: Path) -> None:
    acked: list[str] = []
    with killed_child(CHILD, str(data_dir)) as proc:  # killed -9 while its writers write
        while len(acked) < 1200:  # past two background snapshots
            acked.append(child_line(proc))
    assert proc.returncode == -signal.SIGKILL
    v = make_vault()
    assert v.count("acme") >= len(acked)
    for rid in acked:
        assert v.get("acme", rid).text == f"record {rid}"
