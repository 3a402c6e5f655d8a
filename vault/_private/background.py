"""The :class:`~vault.store.Vault`'s background work: HNSW index builds, drains and snapshots.

A mixin, so that the facade (:mod:`vault.store`) keeps the public methods and this module the work that
runs on the vault's one background thread (lowered CPU priority), outside or briefly under its lock.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np
import structlog

from vault._private.index import new_index, one_thread
from vault._private.recovery import remove_files
from vault._private.storage import Storage
from vault._private.tenant import TenantState
from vault._private.validate import check_deadline
from vault.config import VaultConfig
from vault.errors import VaultDeadlineError, VaultStorageError

__all__ = ("FROZEN_ALLOWANCE", "BackgroundWork", "background_priority")

log = structlog.get_logger("vault")
_CATCH_UP_SLICE = 4096
"""Most records written during a background index build copied per hold of the lock (count)."""
_SWAP_BACKLOG = 1024
"""Records written during a build still to add at which the swap happens (count; they wait as pending)."""
FROZEN_ALLOWANCE = 4
"""While a snapshot freezes a tenant's index, up to this many times ``index.max_pending_vectors`` may wait
(nothing can be moved into a frozen index: a write past that waits for the snapshot to end)."""
_SLICE_S = 0.004
"""Time one slice of a drain aims to hold an index's lock for (seconds; a search may wait that long)."""
_MAX_SLICE = 64
"""Most waiting vectors added to an index in one slice (count)."""


def background_priority() -> None:
    """Lower the calling thread's CPU priority (Linux: nice +10 for this thread only).

    Index builds, drains and snapshots then yield the CPU to the threads that serve writes and searches.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except OSError:  # not permitted or not supported: run at the normal priority
        pass


class BackgroundWork:
    """Background index builds, drains and snapshots of a vault (mixed into :class:`~vault.store.Vault`).

    The vault sets these attributes in its ``__init__``; every method here keeps its locking rules.
    """

    _config: VaultConfig
    _dim: int
    _lock: threading.RLock
    _snapshot_lock: threading.RLock
    _storage: Storage
    _closed: bool
    _builder: ThreadPoolExecutor
    _builds: dict[str, Future[None]]
    _snapshot_job: Future[None] | None
    _drain_job: Future[None] | None
    _drained: threading.Condition
    _drain_steps: int
    _add_cost_s: float

    # ----------------------------------------------------------------- background index builds
    def _schedule_builds(self, storage: Storage) -> None:
        """Start an HNSW build for every tenant whose flat index passed the threshold (caller holds the lock).

        A write never waits for such a build: searches use the flat index until the HNSW index is ready,
        then it is swapped in with the records stored meanwhile. Also queues a drain when vectors wait.
        """
        for tenant, state in storage.tenants.items():
            running = self._builds.get(tenant)
            if state.wants_hnsw and (running is None or running.done()):
                self._builds[tenant] = self._builder.submit(self._build, tenant, state)
            if len(state.pending) and not state.frozen:  # e.g. written into HNSW, or replayed on open
                self._schedule_drain()

    def _build(self, tenant: str, state: TenantState) -> None:
        with self._snapshot_lock, self._lock:  # no drain slice is moving vectors while they are flushed
            if self._closed or self._storage.tenants.get(tenant) is not state or not state.wants_hnsw:
                return
            parts, next_label, version = state.build_input()
        try:
            built = new_index(self._dim, self._config.index, "hnsw")
            for part_labels, part_vectors in parts:  # views of the flat index's blocks: no copy
                if self._closed:  # close() waits for this thread: a build it drops ends at the next part
                    return
                built.add(part_labels, part_vectors)
            labels = np.concatenate([part_labels for part_labels, _ in parts] or [np.empty(0, np.int64)])
            backlog = None
            while True:  # add what was written meanwhile outside the lock, a bounded slice per round
                with self._lock:
                    if self._closed or self._storage.tenants.get(tenant) is not state:
                        return
                    behind = state.next_label - next_label
                    if behind <= _SWAP_BACKLOG or (
                        backlog is not None and backlog <= behind <= self._config.index.max_pending_vectors
                    ):  # caught up, or writes outpace the adds: swap, the rest waits as pending vectors
                        break
                    backlog = behind
                    newer, newer_vectors, next_label = state.added_since(next_label, limit=_CATCH_UP_SLICE)
                if newer.size:
                    built.add(newer, newer_vectors)
                    labels = np.concatenate([labels, newer])
        except Exception as exc:  # a failed build leaves the flat index serving; the next write retries
            log.warning("vault index build failed", tenant=tenant, error=str(exc))
            return
        with self._lock:
            if (
                self._closed
                or self._storage.tenants.get(tenant) is not state
                or state.index_version != version
            ):
                return  # dropped, restored or rebuilt meanwhile
            state.swap_index(built, labels, next_label)
        self._drain()

    def _schedule_drain(self) -> None:
        """Queue a drain of waiting vectors unless one is queued (caller holds the lock)."""
        if self._drain_job is None or self._drain_job.done():
            self._drain_job = self._builder.submit(self._drain)

    # ----------------------------------------------------------------- backpressure on waiting vectors
    def _excess(self, storage: Storage, tenant: str, count: int, paid: int = 0) -> int:
        """Waiting vectors a write of ``count`` must move into the index first (caller holds the lock).

        0 means room: the backlog is empty or stays within ``index.max_pending_vectors`` (within
        ``FROZEN_ALLOWANCE`` times it while a snapshot freezes the index). Otherwise the vectors it
        would bring past the bound, but never more than ``count``: each write pays for its own vectors,
        not for a backlog that grew while the index was frozen: a write that already moved ``paid >=
        count`` vectors has room. A drain is queued as well.
        """
        state = storage.tenants.get(tenant)
        waiting = 0 if state is None else len(state.pending)
        bound = self._config.index.max_pending_vectors
        if state is not None and state.frozen:
            bound *= FROZEN_ALLOWANCE
        excess = waiting + count - bound
        if waiting == 0 or excess <= 0:
            return 0
        if state is not None and not state.frozen:
            self._schedule_drain()
            if paid >= count:
                return 0
        return min(excess, count - paid)

    def _drain_mark(self) -> int:
        """The count of drain steps so far; read before :meth:`_excess` and passed to the wait."""
        with self._drained:
            return self._drain_steps

    def _wake_writers(self) -> None:
        """Count a drain step (or the close) and wake the writers waiting for room (not under the lock)."""
        with self._drained:
            self._drain_steps += 1
            self._drained.notify_all()

    def _make_room(self, tenant: str, excess: int, mark: int, operation: str, deadline: float | None) -> int:
        """Move ``excess`` of ``tenant``'s waiting vectors into its index on this thread, with no vault lock.

        The writer whose batch would pass ``index.max_pending_vectors`` pays for the vectors it adds past
        it, at its own CPU priority and a slice at a time (reads, and writes with room, go on between
        slices), so its wait grows with its excess (about 1 ms per vector into HNSW at 100,000 vectors)
        and never depends on the lowered priority of the background worker. While the index is frozen
        by a snapshot nothing can be moved: the writer waits for a drain step after ``mark`` instead.

        Returns:
            The vectors moved.

        Raises:
            VaultDeadlineError: ``deadline`` (``time.time()`` seconds) passed first.
        """
        moved = 0
        while moved < excess:
            step = self._drain_slice(tenant, deadline, limit=excess - moved)
            if step < 0:  # frozen or closed: wait for the thaw (or the close)
                self._wait_for_drain(mark, operation, deadline)
                return moved
            if step == 0:
                return moved
            moved += step
            check_deadline(operation, deadline)
        return moved

    def _wait_for_drain(self, mark: int, operation: str, deadline: float | None) -> None:
        """Wait, holding no vault lock, until a drain step after ``mark`` (reads and drains go on).

        Raises:
            VaultDeadlineError: ``deadline`` (``time.time()`` seconds) passed first.
        """
        with self._drained:
            while self._drain_steps == mark:
                left = None if deadline is None else deadline - time.time()
                if left is not None and left <= 0:
                    raise VaultDeadlineError(operation, -left)
                self._drained.wait(timeout=left)

    def _drain(self) -> None:
        """Move waiting vectors into their indexes, a slice at a time, outside the vault's lock.

        Writes wait for an add only when a backlog is full (``index.max_pending_vectors``), and then
        move their excess themselves (:meth:`_make_room`). Every slice, and the end, wakes the writers
        waiting for room.
        """
        try:
            while self._drain_slice(None, None) > 0:
                self._wake_writers()
                time.sleep(0)  # let a waiting snapshot, compaction or restore take the snapshot lock
        finally:
            self._wake_writers()

    def _slice_rows(self) -> int:
        """Vectors per slice: what one add is expected to do in ``_SLICE_S`` (1 to ``_MAX_SLICE``)."""
        return max(1, min(_MAX_SLICE, int(_SLICE_S / self._add_cost_s)))

    def _drain_slice(self, tenant: str | None, deadline: float | None, *, limit: int | None = None) -> int:
        """Move one slice (at most ``limit``) of ``tenant``'s waiting vectors (``None``: all) into the index.

        A slice is copied under the vault's lock, added holding only the index's own lock (a search waits
        for it: the slice is sized to take about ``_SLICE_S``), then dropped from the waiting vectors
        under the lock; a search in between drops the duplicates. Each slice holds the snapshot lock, so
        no snapshot, compaction, index build or restore sees half of one, and two drainers never move
        the same vectors.

        Returns:
            Vectors moved; 0 when none wait, -1 when the tenant's index is frozen, the snapshot lock was
            not had before ``deadline`` or the vault is closed.
        """
        if not self._snapshot_lock.acquire(blocking=False):
            if tenant is not None:  # a snapshot holds it: do not queue behind it if the index is frozen
                with self._lock:
                    state = self._storage.tenants.get(tenant)
                    if self._closed or (state is not None and state.frozen):
                        return -1
            wait = -1.0 if deadline is None else max(deadline - time.time(), 0.0)
            if not self._snapshot_lock.acquire(timeout=wait):
                return -1
        try:
            rows = self._slice_rows() if limit is None else min(limit, self._slice_rows())
            with self._lock:
                if self._closed:
                    return -1
                states = [
                    (name, state)
                    for name, state in self._storage.tenants.items()
                    if (tenant is None or name == tenant) and len(state.pending)
                ]
                if tenant is not None and any(state.frozen for _, state in states):
                    return -1
                work = [
                    (state, state.index, *state.pending.peek(rows)) for _, state in states if not state.frozen
                ]
                if not work:
                    if tenant is None:
                        self._drain_job = None  # the next write that leaves vectors waiting queues one
                    return 0
            began = time.perf_counter()
            for _, index, labels, vectors in work:
                with one_thread():
                    index.add(labels, vectors)
            moved = sum(len(labels) for *_, labels, _ in work)
            per_vector = (time.perf_counter() - began) / max(moved, 1)
            self._add_cost_s += (per_vector - self._add_cost_s) / 8  # moving average of the last ~8 slices
            with self._lock:
                for state, index, labels, _ in work:
                    if state.index is index:
                        state.pending.drop(len(labels))
            return moved
        finally:
            self._snapshot_lock.release()

    # ----------------------------------------------------------------- background snapshots
    def _snapshot_due(self, storage: Storage) -> bool:
        """Whether the WAL or some tenant's tombstones call for a snapshot (caller holds the lock)."""
        ratio = self._config.index.compact_tombstone_ratio
        return storage.wal.entries >= self._config.durability.snapshot_every_writes or any(
            len(state.tombstones) >= 32 and len(state.tombstones) > ratio * state.total
            for state in storage.tenants.values()
        )  # the same test as the compaction a snapshot then runs (storage.begin_snapshot)

    def _schedule_snapshot(self) -> None:
        """Queue a background snapshot unless one is queued or running (caller holds the lock)."""
        if self._snapshot_job is None or self._snapshot_job.done():
            self._snapshot_job = self._builder.submit(self._background_snapshot)

    def _background_snapshot(self) -> None:
        """Take a snapshot without stalling writes: the lock is held to begin and to commit it only.

        Beginning it starts a new WAL and freezes every tenant's index (writes meanwhile go to the new
        WAL and their vectors wait, searched exactly); the sealed files are written outside the lock; the
        manifest commits it. A crash at any point recovers from the old or the new manifest plus every
        WAL after it. A failure (a full disk) only logs: the WAL keeps every write, and the next write
        past the threshold tries again. Tenants over the tombstone ratio are compacted while beginning.
        """
        self._drain()  # so that beginning the snapshot has (almost) nothing left to add under the lock
        with self._snapshot_lock:
            storage = self._storage
            try:
                wal = None if self._closed else storage.next_wal()  # its directory fsync: not under the lock
            except VaultStorageError as exc:
                log.warning("vault snapshot failed; the WAL keeps every write", error=str(exc))
                return
            with self._lock:
                if self._closed or not self._snapshot_due(self._storage):
                    if wal is not None and wal is not storage.wal:
                        wal.close()  # left empty: the next snapshot opens it again (recovery replays nothing)
                    return
                try:
                    plan = storage.begin_snapshot(freeze=True, wal=wal)
                except VaultStorageError as exc:
                    log.warning("vault snapshot failed; the WAL keeps every write", error=str(exc))
                    return
            try:
                storage.write_snapshot(plan)
            except BaseException as exc:
                with self._lock:
                    storage.abort_snapshot(plan)
                if not isinstance(exc, VaultStorageError):
                    raise
                log.warning("vault snapshot failed; the WAL keeps every write", error=str(exc))
            else:
                with self._lock:
                    obsolete = storage.commit_snapshot(plan)
                remove_files(obsolete)  # unlinking a large index file is file-system work: not under the lock
            finally:
                self._drain()

    def join_background(self, timeout_s: float | None = None) -> bool:
        """Wait for the index builds and the snapshot running (or queued) in the background.

        Args:
            timeout_s: Longest wait, in seconds (``None``: no limit).

        Returns:
            Whether every build finished.
        """
        with self._lock:
            running = [f for f in self._builds.values() if not f.done()]
            running += [job for job in (self._snapshot_job, self._drain_job) if job is not None]
        return not wait(running, timeout=timeout_s).not_done

    def _maybe_snapshot(self, storage: Storage) -> None:
        if self._snapshot_due(storage):
            self._schedule_snapshot()
