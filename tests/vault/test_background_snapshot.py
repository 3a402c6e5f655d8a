"""Snapshots in the background: writes go on during them, nothing acknowledged is lost if the process dies.

The snapshot writer is held at a chosen point with an event (in-process) or blocked forever there before
``kill -9`` (in a subprocess), so each case waits for the state it tests instead of for time to pass.
"""

from __future__ import annotations

import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.vault._child import child_line, killed_child
from vault import (
    DurabilityConfig,
    IndexConfig,
    NewRecord,
    RecordNotFoundError,
    Vault,
    VaultConfig,
    VaultDeadlineError,
)
from vault._private.background import FROZEN_ALLOWANCE
from vault._private.pending import PendingVectors
from vault._private.storage import SnapshotPlan, Storage

EVERY_50 = VaultConfig(durability=DurabilityConfig(snapshot_every_writes=50, snapshot_on_close=False))


@pytest.fixture
def held_snapshot(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """``(started, release)``: background snapshots stop before writing anything until ``release``."""
    started, release = threading.Event(), threading.Event()
    original = Storage.write_snapshot

    def held(self: Storage, plan: SnapshotPlan) -> None:
        started.set()
        assert release.wait(60)
        original(self, plan)

    monkeypatch.setattr(Storage, "write_snapshot", held)
    yield started, release
    release.set()


def records(vectors: np.ndarray, start: int, stop: int) -> list[NewRecord]:
    return [NewRecord(text=f"note {i}", id=f"r{i}", embedding=vectors[i]) for i in range(start, stop)]


def test_writes_and_searches_go_on_during_a_background_snapshot(
    make_vault, data_dir, unit_vectors, held_snapshot
) -> None:
    started, release = held_snapshot
    vectors = unit_vectors(200)
    v = make_vault(config=EVERY_50)
    v.put_many("acme", records(vectors, 0, 60))  # past 50 WAL entries: a snapshot is queued
    assert started.wait(30)
    # The snapshot is under way (its indexes frozen) and holds no lock: writes commit, reads see them.
    for start in range(60, 200, 20):
        v.put_many("acme", records(vectors, start, start + 20))
    assert v.stats().snapshot_generation == 0 and v.count("acme") == 200
    for i in (0, 59, 60, 199):  # from the frozen index, and waiting to enter it
        assert v.search("acme", vectors[i], k=1)[0].record.id == f"r{i}"
    v.delete("acme", "r150")
    assert "r150" not in {h.record.id for h in v.search("acme", vectors[150], k=5)}
    release.set()
    assert v.join_background(30)
    assert v.stats().snapshot_generation == 1
    v.close()  # no snapshot on close: the next open needs the snapshot plus the WAL written during it

    reopened = make_vault(config=EVERY_50)
    assert reopened.count("acme") == 199 and reopened.stats().snapshot_generation == 1
    for i in (0, 59, 60, 199):
        assert reopened.search("acme", vectors[i], k=1)[0].record.id == f"r{i}"
        assert reopened.get("acme", f"r{i}").text == f"note {i}"


CHILD = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    from vault import DurabilityConfig, Vault, VaultConfig
    from vault._private.snapshot import Manifest

    stop_at = sys.argv[2]  # "before_manifest" or "after_manifest"
    save = Manifest.save
    out = threading.Lock()

    def say(line):  # one write per line under a lock: print() from two threads can split lines
        with out:
            sys.stdout.write(line + "\\n")
            sys.stdout.flush()

    def blocked_save(self, directory):
        if stop_at == "after_manifest":
            save(self, directory)
        say("in-snapshot")
        threading.Event().wait()  # the snapshot never finishes: the parent kills the process

    Manifest.save = blocked_save
    config = VaultConfig(durability=DurabilityConfig(snapshot_every_writes=100))
    rng = np.random.default_rng(3)
    with Vault(sys.argv[1], config=config) as v:
        for i in range(100_000):
            vec = rng.standard_normal(384).astype(np.float32)
            say(v.put("acme", f"record number {i}", id=f"r{i}", embedding=vec))
    """
)


@pytest.mark.parametrize("stop_at", ["before_manifest", "after_manifest"])
def test_kill_9_mid_background_snapshot_loses_no_acknowledged_write(
    make_vault, data_dir: Path, stop_at: str
) -> None:
    acked: list[str] = []
    with killed_child(CHILD, str(data_dir), stop_at) as proc:
        deadline = time.monotonic() + 60
        after = None
        while time.monotonic() < deadline:
            # a failed child (its stuck snapshot thread may keep it alive) is killed, its stderr shown
            line = child_line(proc)
            if line == "in-snapshot":
                after = len(acked)
            else:
                acked.append(line)
            if after is not None and len(acked) >= after + 50:
                break  # 50 writes acknowledged while the snapshot was stuck
    assert after is not None and len(acked) >= after + 50 and proc.returncode == -signal.SIGKILL
    v = make_vault()
    assert v.stats().snapshot_generation == (1 if stop_at == "after_manifest" else 0)
    assert v.count("acme") >= len(acked)
    for rid in acked:
        assert v.get("acme", rid).text == f"record number {rid[1:]}"
    last = acked[-1]
    assert v.search("acme", v.get("acme", last).embedding, k=1)[0].record.id == last


def test_hnsw_swap_leaves_later_writes_waiting_then_drains_them(make_vault, unit_vectors) -> None:
    vectors = unit_vectors(700)
    config = VaultConfig(index=IndexConfig(hnsw_threshold=300))
    v = make_vault(config=config)
    for start in range(0, 700, 50):
        v.put_many("acme", records(vectors, start, start + 50))
    assert v.join_background(60)
    assert v.stats().index_kinds == {"acme": "hnsw"}
    with v._lock:
        assert len(v._storage.tenants["acme"].pending) == 0  # everything was moved into the index
        assert v._storage.tenants["acme"].index.ntotal == 700
    found = sum(v.search("acme", vectors[i], k=1)[0].record.id == f"r{i}" for i in range(0, 700, 7))
    assert found >= 95  # HNSW is approximate; exact duplicates of stored vectors are found


def test_pending_vectors_search_exactly_and_drain_in_order() -> None:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((900, 16)).astype(np.float32)
    pending = PendingVectors(16)
    for start in range(0, 900, 300):  # grows past its first buffer
        pending.add(np.arange(start, start + 300, dtype=np.int64), vectors[start : start + 300])
    query = rng.standard_normal(16).astype(np.float32)
    scores, labels = pending.search(query, 5)
    truth = np.argsort(-(vectors @ query), kind="stable")[:5]
    assert labels.tolist() == truth.tolist() and np.allclose(scores, (vectors @ query)[truth])
    taken, moved = pending.take(250)
    assert taken.tolist() == list(range(250)) and np.array_equal(moved, vectors[:250])
    assert len(pending) == 650
    assert np.array_equal(pending.vectors_of(np.array([899, 250])), vectors[[899, 250]])
    assert pending.vectors_of(np.array([3])) is None  # already taken
    pending.take(10_000)
    assert len(pending) == 0 and pending.search(query, 5)[1].size == 0


BOUNDED = VaultConfig(  # HNSW past 50 records: a snapshot freezes it (a flat index is never frozen)
    index=IndexConfig(hnsw_threshold=50, max_pending_vectors=100 // FROZEN_ALLOWANCE),  # 100 while frozen
    durability=DurabilityConfig(snapshot_every_writes=50, snapshot_on_close=False),
)


def fill_backlog(v: Vault, vectors: np.ndarray, started: threading.Event) -> None:
    """60 records, then (the snapshot holding the index frozen) 90 more waiting: 10 short of the bound (100
    while frozen)."""
    v.put_many("acme", records(vectors, 0, 60))  # past 50 WAL entries: an HNSW build, then a snapshot
    assert started.wait(30)
    assert v.stats().index_kinds == {"acme": "hnsw"}
    v.put_many("acme", records(vectors, 60, 150))
    assert v.stats().pending_vectors == 90


def test_a_write_past_the_pending_bound_waits_for_the_drain_then_commits(
    make_vault, unit_vectors, held_snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = held_snapshot
    vectors = unit_vectors(200)
    v = make_vault(config=BOUNDED)
    fill_backlog(v, vectors, started)
    waiting = threading.Event()
    wait_for_drain = v._wait_for_drain

    def observed(mark: int, operation: str, deadline: float | None) -> None:
        waiting.set()
        wait_for_drain(mark, operation, deadline)

    monkeypatch.setattr(v, "_wait_for_drain", observed)
    outcome: list[object] = []
    writer = threading.Thread(target=lambda: outcome.append(v.put_many("acme", records(vectors, 150, 200))))
    writer.start()
    assert waiting.wait(30)  # 90 + 50 > 100: the write waits, holding no lock
    assert v.count("acme") == 150 and v.search("acme", vectors[10], k=1)[0].record.id == "r10"
    v.put("acme", "small", id="s1", embedding=vectors[0])  # 91 waiting: a write that fits goes on
    release.set()  # the snapshot ends and drains: room for the waiting write
    writer.join(60)
    assert not writer.is_alive() and outcome == [[f"r{i}" for i in range(150, 200)]]
    assert v.join_background(60)
    assert v.stats().pending_vectors == 0
    assert v.count("acme") == 201
    assert v.search("acme", vectors[199], k=1)[0].record.id == "r199"


def test_a_write_whose_deadline_passes_waiting_for_room_fails_and_is_not_written(
    make_vault, unit_vectors, held_snapshot
) -> None:
    started, release = held_snapshot
    vectors = unit_vectors(200)
    v = make_vault(config=BOUNDED)
    fill_backlog(v, vectors, started)
    with pytest.raises(VaultDeadlineError, match="put_many"):  # no drain while the snapshot is held
        v.put_many("acme", records(vectors, 150, 200), deadline=time.time() + 0.2)
    release.set()
    assert v.join_background(60)
    assert v.count("acme") == 150
    v.close()

    reopened = make_vault(config=BOUNDED)  # the snapshot plus the WAL: every acknowledged write, no other
    assert reopened.count("acme") == 150
    assert reopened.get("acme", "r149").text == "note 149"
    with pytest.raises(RecordNotFoundError):
        reopened.get("acme", "r150")


def test_a_write_past_the_pending_bound_moves_its_excess_itself_when_the_worker_is_busy(
    make_vault, unit_vectors
) -> None:
    vectors = unit_vectors(300)
    config = VaultConfig(
        index=IndexConfig(hnsw_threshold=50, max_pending_vectors=100),
        durability=DurabilityConfig(snapshot_on_close=False),
    )
    v = make_vault(config=config)
    v.put_many("acme", records(vectors, 0, 60))
    assert v.join_background(60) and v.stats().index_kinds == {"acme": "hnsw"}
    gate = threading.Event()
    busy = v._builder.submit(gate.wait, 60)  # the one background worker: no drain runs until the gate opens
    try:
        v.put_many("acme", records(vectors, 60, 160))
        assert v.stats().pending_vectors == 100  # the bound, all waiting for a drain
        # 100 + 50 > 100: the write moves 50 waiting vectors into HNSW on its own thread and commits
        assert v.put_many("acme", records(vectors, 160, 210), deadline=time.time() + 30) == [
            f"r{i}" for i in range(160, 210)
        ]
        assert v.stats().pending_vectors == 100 and not busy.done()
        with v._lock:
            assert v._storage.tenants["acme"].index.ntotal == 110  # 60 built + the 50 moved by the writer
        assert v.count("acme") == 210
        found = [v.search("acme", vectors[i], k=1)[0].record.id for i in (5, 100, 209)]
        assert found == ["r5", "r100", "r209"]
    finally:
        gate.set()
    assert v.join_background(60)
    assert v.stats().pending_vectors == 0
    assert v.search("acme", vectors[200], k=1)[0].record.id == "r200"


def test_a_snapshot_never_holds_back_a_write_into_a_flat_index(
    make_vault, unit_vectors, held_snapshot
) -> None:
    started, release = held_snapshot
    vectors = unit_vectors(400)
    config = VaultConfig(  # as BOUNDED, but flat: 100 vectors could wait for a frozen index
        index=IndexConfig(max_pending_vectors=100 // FROZEN_ALLOWANCE),
        durability=DurabilityConfig(snapshot_every_writes=50, snapshot_on_close=False),
    )
    v = make_vault(config=config)
    v.put_many("acme", records(vectors, 0, 60))  # past 50 WAL entries: a snapshot begins and is held
    assert started.wait(30)
    for start in range(60, 400, 85):  # 340 records while it is held: far past what may wait
        ids = v.put_many("acme", records(vectors, start, start + 85), deadline=time.time() + 30)
        assert ids == [f"r{i}" for i in range(start, start + 85)]
    assert v.stats().pending_vectors == 0  # straight into the flat index: the snapshot writes a view
    assert v.stats().snapshot_generation == 0
    assert v.search("acme", vectors[399], k=1)[0].record.id == "r399"
    release.set()
    assert v.join_background(60) and v.stats().snapshot_generation == 1
    v.close()

    reopened = make_vault(config=config)  # the snapshot (60 records) plus the WAL written while it was held
    assert reopened.count("acme") == 400
    for i in (0, 59, 60, 399):
        assert reopened.search("acme", vectors[i], k=1)[0].record.id == f"r{i}"
    assert reopened.get("acme", "r399").text == "note 399"


def test_a_snapshot_writes_waiting_vectors_beside_hnsw_instead_of_adding_them_under_the_lock(
    make_vault, unit_vectors
) -> None:
    vectors = unit_vectors(200)
    config = VaultConfig(
        index=IndexConfig(hnsw_threshold=50), durability=DurabilityConfig(snapshot_on_close=False)
    )
    v = make_vault(config=config)
    v.put_many("acme", records(vectors, 0, 60))
    assert v.join_background(60) and v.stats().index_kinds == {"acme": "hnsw"}
    gate = threading.Event()
    busy = v._builder.submit(gate.wait, 60)  # no drain runs: the next 140 vectors wait
    try:
        v.put_many("acme", records(vectors, 60, 200))
        assert v.stats().pending_vectors == 140
        generation = v.snapshot()
        assert v.stats().pending_vectors == 140  # not moved into HNSW (1-3 ms each) holding the lock
        assert not busy.done()
    finally:
        gate.set()
    v.close()  # no snapshot on close: the WAL after the snapshot is empty, the 140 are in the snapshot

    reopened = make_vault(config=config)
    assert reopened.stats().snapshot_generation == generation and reopened.stats().wal_entries == 0
    assert reopened.count("acme") == 200
    for i in (0, 59, 60, 199):
        assert reopened.search("acme", vectors[i], k=1)[0].record.id == f"r{i}"
    assert reopened.join_background(60) and reopened.stats().pending_vectors == 0
    with reopened._lock:
        assert reopened._storage.tenants["acme"].index.ntotal == 200


def test_a_background_snapshot_creates_its_wal_and_deletes_old_files_without_the_lock(
    make_vault, unit_vectors, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault._private import background, wal

    v = make_vault(config=EVERY_50)
    seen: dict[str, list[bool]] = {"wal created": [], "old files deleted": []}

    def lock_free() -> bool:  # asked from another thread: the vault's lock is reentrant
        free: list[bool] = []

        def probe() -> None:
            # Another thread (the test's own, in join_background) may hold the lock for an instant: wait
            # for it. Held by the background thread, which waits here for this probe, it never comes free.
            if v._lock.acquire(timeout=30):
                v._lock.release()
                free.append(True)
            else:
                free.append(False)

        prober = threading.Thread(target=probe)
        prober.start()
        prober.join()
        return free[0]

    def observed(name: str, original):
        def call(*args, **kwargs):
            if threading.current_thread().name.startswith("vault-index"):
                seen[name].append(lock_free())
            return original(*args, **kwargs)

        return call

    monkeypatch.setattr(wal, "fsync_dir", observed("wal created", wal.fsync_dir))
    monkeypatch.setattr(background, "remove_files", observed("old files deleted", background.remove_files))
    vectors = unit_vectors(130)
    for start in (0, 60):  # two background snapshots: the second deletes the first's files and WAL
        v.put_many("acme", records(vectors, start, start + 60))
        assert v.join_background(60)
    assert v.stats().snapshot_generation == 2
    assert seen["wal created"] == [True, True] and seen["old files deleted"] == [True, True]
