"""Snapshots of the vault's durable state: plan, write, commit or abort; copy, restore and close.

A snapshot is begun (a new WAL, every tenant's index captured or frozen), its sealed files written (the
slow part, outside the vault's lock in the background), then committed by the manifest or aborted.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from vault._private.files import fsync_dir, fsync_file, storage_error
from vault._private.keyring import KEYRING_NAME, KeyRing
from vault._private.recovery import Recovery, remove_files, sequence_entry
from vault._private.snapshot import (
    MANIFEST_NAME,
    Manifest,
    SealedReader,
    SealKey,
    snap_path,
    write_sealed_bytes,
    write_sealed_stream,
)
from vault._private.tenant import Captured, TenantState, tenant_dir_name
from vault._private.wal import (
    WriteAheadLog,
    wal_generations,
    wal_path,
)
from vault.errors import IntegrityError, VaultStorageError

__all__ = ("SnapshotPlan", "Snapshots")

log = structlog.get_logger("vault")


@dataclass(slots=True)
class SnapshotPlan:
    """A snapshot between :meth:`Storage.begin_snapshot` and its commit or abort."""

    generation: int
    old_wal: WriteAheadLog
    new_wal: WriteAheadLog
    tenants: list[tuple[str, TenantState, Captured, SealKey]]
    old_segments: list[Path]
    written: list[Path] = field(default_factory=list)
    manifest: Manifest | None = None


class Snapshots(Recovery):
    """Snapshots, copies, restores and closing of the durable state.

    A layer of :class:`~vault._private.storage.Storage`, on top of :class:`~vault._private.recovery.Recovery`.
    """

    # ----------------------------------------------------------------- snapshots
    @property
    def changed(self) -> bool:
        """Whether a snapshot now would differ from the one in force (WAL entries since it)."""
        return self.wal.entries > 0 or (self.manifest.generation == 0 and bool(self.tenants))

    def snapshot(self, *, compact: bool = False, force: bool = False) -> int:
        """Write a new snapshot generation, start a new WAL, delete what the old one needed.

        Nothing is written when nothing changed since the snapshot in force (unless ``compact`` or
        ``force``). The new manifest is the commit point: a failure before it (a full disk) removes what
        was written and leaves the snapshot in force and the WAL as they were.

        Args:
            compact: Compact every tenant with tombstones (otherwise only those over the configured ratio).
            force: Write a new generation even when nothing changed.

        Returns:
            The generation in force afterwards.

        Raises:
            VaultStorageError: A file could not be written (nothing changed).
        """
        if not (compact or force or self.changed):
            return self.manifest.generation
        plan = self.begin_snapshot(compact=compact)
        try:
            self.write_snapshot(plan)
        except BaseException:
            self.abort_snapshot(plan)
            raise
        remove_files(self.commit_snapshot(plan))
        return plan.generation

    def next_wal(self) -> WriteAheadLog:
        """Create (or open) the WAL a snapshot begun next will start (call it without the lock).

        Creating a file fsyncs its directory, a journal commit no write should wait for under the
        lock. The caller holds the snapshot lock, so no other snapshot moves the generation meanwhile.

        Raises:
            VaultStorageError: The file cannot be created.
        """
        return WriteAheadLog(self.dir, self.wal.generation + 1, fsync=self._config.durability.fsync)

    def begin_snapshot(
        self, *, compact: bool = False, freeze: bool = False, wal: WriteAheadLog | None = None
    ) -> SnapshotPlan:
        """Start a snapshot (the caller holds the lock): compact, capture every tenant, start a new WAL.

        Writes after this go to the new WAL, which recovery replays after the old one whether or not the
        snapshot commits, so a crash at any point of the snapshot loses no acknowledged write.

        Args:
            compact: As in :meth:`snapshot`.
            freeze: Freeze the captured indexes so that :meth:`write_snapshot` may run without the lock.
            wal: The new WAL made by :meth:`next_wal` (``None``: made here).

        Raises:
            VaultStorageError: The new WAL file could not be created (nothing changed).
        """
        self.settle()  # every put written to the old WAL is durable and in the captured state
        old_segments: list[Path] = []
        ratio = self._config.index.compact_tombstone_ratio
        for state in self.tenants.values():
            if state.tombstones and (compact or len(state.tombstones) > ratio * state.total):
                old_segments.append(state.compact())
        seal_keys = {tenant: self.keys.active(tenant, create=True) for tenant in self.tenants}
        if wal is None or wal.generation != self.wal.generation + 1:
            wal = self.next_wal()
        if self.log_sequence:  # the new generation starts where the record log was applied up to
            try:
                wal.append([sequence_entry(self.log_sequence)])
            except BaseException:
                wal.close()
                wal.path.unlink(missing_ok=True)
                raise
            wal.entries = 0
        plan = SnapshotPlan(
            self.manifest.generation + 1,
            self.wal,
            wal,
            [(t, s, s.capture(freeze=freeze), seal_keys[t]) for t, s in self.tenants.items()],
            old_segments,
        )
        self.wal = wal
        return plan

    def write_snapshot(self, plan: SnapshotPlan) -> None:
        """Write the sealed files and the manifest (the commit) of a begun snapshot.

        Runs without the lock when the plan froze its indexes (the tenants must not be dropped, compacted
        or restored meanwhile: the vault runs one snapshot at a time and shreds, compacts and restores
        only between them).

        Raises:
            VaultStorageError: A file could not be written (call :meth:`abort_snapshot`).
        """
        gen = plan.generation
        for tenant, state, captured, seal_key in plan.tenants:
            try:
                state.sync()
            except OSError as exc:
                raise storage_error(exc, state.segment_path) from exc
            state_path = snap_path(state.dir, "state", gen)
            plan.written.append(state_path)
            data = captured.to_json()
            write_sealed_bytes(state_path, seal_key, tenant, "state", gen, data)
            index_path = snap_path(state.dir, "index", gen)
            plan.written.append(index_path)
            write_sealed_stream(
                index_path, seal_key, tenant, "index", gen, captured.index_size(), captured.write_index
            )
        manifest = Manifest(gen, plan.new_wal.generation, self.dim, sorted(t for t, *_ in plan.tenants))
        manifest.save(self.dir)
        plan.manifest = manifest

    def commit_snapshot(self, plan: SnapshotPlan) -> list[Path]:
        """Put a written snapshot in force (the caller holds the lock).

        The frozen indexes thaw; the vectors that waited meanwhile are still to be drained.

        Returns:
            What the new snapshot makes obsolete (old WALs, segments and snapshot files): delete it with
            :func:`~vault._private.recovery.remove_files`, after releasing the lock.
        """
        assert plan.manifest is not None
        self.manifest = plan.manifest
        plan.old_wal.close()
        for _, state, _, _ in plan.tenants:
            state.unfreeze()
        old_wals = [wal_path(self.dir, g) for g in wal_generations(self.dir) if g < plan.new_wal.generation]
        return old_wals + plan.old_segments + self._unused_files()

    def abort_snapshot(self, plan: SnapshotPlan) -> None:
        """Undo a snapshot that failed before its manifest (the caller holds the lock).

        The snapshot in force stays. A new WAL nothing was written to is removed again; one that took
        writes stays (recovery replays it after the old one) and counts the old one's entries too.
        """
        for path in plan.written:
            path.unlink(missing_ok=True)
        for _, state, _, _ in plan.tenants:
            state.unfreeze()
        if self.wal is plan.new_wal and plan.new_wal.entries == 0:
            plan.new_wal.close()
            plan.new_wal.path.unlink(missing_ok=True)
            self.wal = plan.old_wal
        else:
            plan.old_wal.close()
            self.wal.entries += plan.old_wal.entries

    def copy_to(self, dest: Path) -> None:
        """Copy the current snapshot (sealed files, keyring, manifest; never the KEK) into ``dest``."""
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        files = [self.dir / MANIFEST_NAME, self.keys.path]
        for state in self.tenants.values():
            gen = self.manifest.generation
            names = state.referenced_files() | {snap_path(state.dir, k, gen).name for k in ("state", "index")}
            files += [state.dir / name for name in sorted(names)]
        for src in files:
            target = dest / src.relative_to(self.dir)
            target.parent.mkdir(mode=0o700, exist_ok=True)
            shutil.copyfile(src, target)
            os.chmod(target, 0o600)
            fsync_file(target)
        for folder in {dest} | {(dest / f.relative_to(self.dir)).parent for f in files}:
            fsync_dir(folder)

    def restore_from(self, src: Path) -> None:
        """Replace everything with the snapshot copied to ``src`` by :meth:`copy_to`, then reload.

        The copy's data keys are re-wrapped under the current KEK; a copy taken before a KEK rotation
        opens with the earlier KEK the keyring keeps.

        Raises:
            IntegrityError: ``src`` holds no valid snapshot.
            KeyEncryptionKeyError: The snapshot's keyring was wrapped under a KEK this vault never had.
        """
        self.settle()
        if not (src / MANIFEST_NAME).exists():
            raise IntegrityError(src / MANIFEST_NAME, "no snapshot to restore")
        manifest = Manifest.load(src)
        copy = KeyRing.open_copy(src / KEYRING_NAME, self.keys)
        for name in manifest.tenants:
            for kind in ("state", "index"):  # authenticate every chunk, keeping none
                path = snap_path(src / tenant_dir_name(name), kind, manifest.generation)
                with SealedReader(path, copy, name, kind, manifest.generation) as reader:
                    reader.finish()
        self.close(snapshot=False)
        for entry in self.dir.iterdir():
            if entry.is_dir() and entry.name.startswith("t_"):
                shutil.rmtree(entry)
            elif entry.name.startswith("wal.") or entry.name == MANIFEST_NAME:
                entry.unlink()
        for name in manifest.tenants:
            shutil.copytree(src / tenant_dir_name(name), self.dir / tenant_dir_name(name))
        self.keys.adopt(copy)
        shutil.copyfile(src / MANIFEST_NAME, self.dir / MANIFEST_NAME)
        fsync_dir(self.dir)
        self.keys = KeyRing.open(self.dir, self._config.keys)
        self.tenants = {}
        self.dropped.clear()
        self._load()

    def close(self, *, snapshot: bool) -> None:
        """Optionally snapshot, then close every file.

        The snapshot is skipped when nothing changed, and its failure (a full disk) only logs: the WAL
        holds every write.
        """
        self.settle()
        if snapshot:
            try:
                self.snapshot()
            except VaultStorageError as exc:
                log.warning("vault snapshot on close failed; the WAL keeps every write", error=str(exc))
        self.wal.close()
        for state in self.tenants.values():
            state.close()
