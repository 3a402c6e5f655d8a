"""The durable core: keyring, tenants, write-ahead log, snapshots, recovery, restore.

Write path: seal each record under the tenant's active data key, append the sealed records to the WAL
and fsync (one fsync per batch), then apply them to the tenant (segment append, index add). Recovery
loads the manifest's snapshot and replays every WAL file from the manifest's WAL generation on; entries
whose data key was crypto-shredded are skipped, any other undecryptable entry is an error.

Not thread-safe on its own: :class:`vault.Vault` calls it under its lock.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vault._private.cache import RecordCache
from vault._private.files import fsync_dir, fsync_file
from vault._private.keyring import KeyRing
from vault._private.sealing import (
    InvalidTag,
    blob_key_version,
    decode_record,
    decode_vector,
    open_blob,
    record_aad,
    seal,
)
from vault._private.snapshot import MANIFEST_NAME, Manifest, read_sealed_file, snap_path, write_sealed_file
from vault._private.tenant import Slot, TenantState, tenant_dir_name
from vault._private.wal import (
    OP_DELETE,
    OP_DROP_TENANT,
    OP_PUT,
    WalEntry,
    WriteAheadLog,
    read_wal,
    wal_generations,
    wal_path,
)
from vault.config import VaultConfig
from vault.errors import DecryptionError, DimensionMismatchError, IntegrityError
from vault.records import VaultStats

__all__ = ("Storage",)


class Storage:
    """Everything the vault keeps on disk, opened (and recovered) from ``directory``.

    Args:
        directory: Data directory (must exist; the caller holds its lock).
        config: Vault configuration.
        dim: Vector dimension of the embedder.

    Raises:
        IntegrityError: A file is corrupted or tampered with (the error names it).
        KeyEncryptionKeyError: The KEK does not match the keyring.
        DimensionMismatchError: The directory was created with embeddings of another dimension.
    """

    def __init__(self, directory: Path, config: VaultConfig, dim: int) -> None:
        self.dir = directory
        self.dim = dim
        self._config = config
        self.keys = KeyRing.open(directory, config.keys)
        self.tenants: dict[str, TenantState] = {}
        self.manifest = Manifest()
        self.wal: WriteAheadLog
        self._load()

    # ----------------------------------------------------------------- recovery
    def _load(self) -> None:
        self.manifest = manifest = Manifest.load(self.dir)
        if manifest.dim is not None and manifest.dim != self.dim:
            raise DimensionMismatchError(manifest.dim, self.dim, field="embedder.dim")
        gen = manifest.generation
        for tenant in manifest.tenants:
            tdir = self.dir / tenant_dir_name(tenant)
            if not self.keys.has_tenant(tenant):  # shredded after this snapshot
                shutil.rmtree(tdir, ignore_errors=True)
                continue
            state_path = snap_path(tdir, "state", gen)
            raw_state = read_sealed_file(state_path, self.keys, tenant, "state", gen)
            raw_index = read_sealed_file(snap_path(tdir, "index", gen), self.keys, tenant, "index", gen)
            try:
                state = json.loads(raw_state)
                self.tenants[tenant] = TenantState.from_state(
                    tenant, tdir, self.dim, self._config.index, state, raw_index
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise IntegrityError(state_path, f"snapshot does not load: {exc}") from None
        replayed = 0
        current = manifest.wal_generation
        for wal_gen in wal_generations(self.dir):
            path = wal_path(self.dir, wal_gen)
            if wal_gen < manifest.wal_generation:
                path.unlink()
                continue
            for entry in read_wal(path):
                self._replay(entry, path)
                replayed += 1
            current = wal_gen
        self.wal = WriteAheadLog(self.dir, current, fsync=self._config.durability.fsync, entries=replayed)
        self._cleanup()

    def _replay(self, entry: WalEntry, path: Path) -> None:
        if entry.op == OP_PUT:
            try:
                version = blob_key_version(entry.blob)
            except InvalidTag:
                raise IntegrityError(path, "WAL entry holds a truncated sealed record") from None
            key = self.keys.key(entry.tenant, version)
            if key is None:
                if self.keys.is_destroyed(version):
                    return  # crypto-shredded tenant: its records are gone for good
                raise IntegrityError(
                    path, f"WAL entry needs data-key version {version}, missing from keyring"
                )
            try:
                plaintext = open_blob(key, entry.blob, record_aad(entry.tenant, entry.record_id, version))
            except InvalidTag:
                raise DecryptionError(
                    path, "WAL record fails AES-GCM authentication", tenant=entry.tenant
                ) from None
            self.state(entry.tenant).put(entry.record_id, entry.blob, decode_vector(plaintext))
        elif entry.op == OP_DELETE:
            found = self.tenants.get(entry.tenant)
            if found is not None:
                found.delete(entry.record_id)
        elif entry.op == OP_DROP_TENANT:
            self._drop(entry.tenant)

    def _cleanup(self) -> None:
        """Delete files no snapshot or live tenant references (left by crashes or compaction)."""
        gen = self.manifest.generation
        live_dirs = {tenant_dir_name(t): t for t in set(self.tenants) | set(self.keys.tenants())}
        for entry in self.dir.iterdir():
            if entry.name.endswith(".tmp"):
                entry.unlink()
            elif entry.is_dir() and entry.name.startswith("t_") and entry.name not in live_dirs:
                shutil.rmtree(entry, ignore_errors=True)
        for state in self.tenants.values():
            keep = state.referenced_files() | {snap_path(state.dir, k, gen).name for k in ("state", "index")}
            for file in state.dir.iterdir():
                if file.name not in keep:
                    file.unlink()

    # ----------------------------------------------------------------- tenants
    def state(self, tenant: str) -> TenantState:
        """The tenant's state, created empty if it has none yet."""
        found = self.tenants.get(tenant)
        if found is None:
            found = TenantState(tenant, self.dir / tenant_dir_name(tenant), self.dim, self._config.index)
            self.tenants[tenant] = found
        return found

    def _drop(self, tenant: str) -> None:
        self.keys.destroy_tenant(tenant)
        state = self.tenants.pop(tenant, None)
        if state is not None:
            state.close()
        shutil.rmtree(self.dir / tenant_dir_name(tenant), ignore_errors=True)
        fsync_dir(self.dir)

    # ----------------------------------------------------------------- operations
    def put(self, tenant: str, items: list[tuple[str, bytes, NDArray[np.float32]]]) -> None:
        """Seal, log durably, then apply ``(record_id, plaintext, vector)`` items of one tenant."""
        version, key = self.keys.active(tenant, create=True)
        blobs = [seal(key, version, pt, record_aad(tenant, rid, version)) for rid, pt, _ in items]
        self.wal.append(
            [WalEntry(OP_PUT, tenant, rid, blob) for (rid, _, _), blob in zip(items, blobs, strict=True)]
        )
        self.state(tenant).put_many(
            [(rid, blob, vec) for (rid, _, vec), blob in zip(items, blobs, strict=True)]
        )

    def delete(self, tenant: str, record_id: str) -> None:
        """Log durably, then tombstone one record (the caller checked that it exists)."""
        self.wal.append([WalEntry(OP_DELETE, tenant, record_id)])
        self.tenants[tenant].delete(record_id)

    def drop_tenant(self, tenant: str) -> None:
        """Crypto-shred a tenant: log durably, destroy its data keys, delete its files."""
        self.wal.append([WalEntry(OP_DROP_TENANT, tenant)])
        self._drop(tenant)
        if tenant in self.manifest.tenants:
            self.manifest.tenants.remove(tenant)
            self.manifest.save(self.dir)

    def read_record(self, tenant: str, slot: Slot) -> tuple[str, dict[str, Any], NDArray[np.float32]]:
        """Open the sealed record at ``slot`` (tier 2).

        Raises:
            IntegrityError: The segment file is cut short or names an unknown key version.
            DecryptionError: The sealed record fails authentication (tampered or wrong place).
        """
        state = self.tenants[tenant]
        blob = state.read_blob(slot)
        path, record_id = state.segment_path, state.labels[slot.label]
        try:
            version = blob_key_version(blob)
        except InvalidTag:
            raise IntegrityError(path, "sealed record is truncated", slot.offset) from None
        key = self.keys.key(tenant, version)
        if key is None:
            raise IntegrityError(path, f"record sealed with unknown data-key version {version}", slot.offset)
        try:
            plaintext = open_blob(key, blob, record_aad(tenant, record_id, version))
        except InvalidTag:
            raise DecryptionError(
                path, "sealed record fails AES-GCM authentication", slot.offset, tenant=tenant
            ) from None
        return decode_record(plaintext)

    # ----------------------------------------------------------------- snapshots
    def snapshot(self, *, compact: bool = False) -> int:
        """Write a new snapshot generation, start a new WAL, delete what the old one needed.

        Args:
            compact: Compact every tenant with tombstones (otherwise only those over the configured ratio).

        Returns:
            The new snapshot generation.
        """
        old_segments: list[Path] = []
        ratio = self._config.index.compact_tombstone_ratio
        for state in self.tenants.values():
            if state.tombstones and (compact or len(state.tombstones) > ratio * state.index.ntotal):
                old_segments.append(state.compact())
        gen = self.manifest.generation + 1
        for tenant, state in self.tenants.items():
            state.sync()
            body = json.dumps(state.to_state()).encode()
            write_sealed_file(snap_path(state.dir, "state", gen), self.keys, tenant, "state", gen, body)
            index = state.index.serialize()
            write_sealed_file(snap_path(state.dir, "index", gen), self.keys, tenant, "index", gen, index)
        new_wal = self.wal.generation + 1
        self.manifest = Manifest(gen, new_wal, self.dim, sorted(self.tenants))
        self.manifest.save(self.dir)
        self.wal.close()
        self.wal = WriteAheadLog(self.dir, new_wal, fsync=self._config.durability.fsync)
        for wal_gen in wal_generations(self.dir):
            if wal_gen < new_wal:
                wal_path(self.dir, wal_gen).unlink()
        for path in old_segments:
            path.unlink(missing_ok=True)
        self._cleanup()
        return gen

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

        Raises:
            IntegrityError: ``src`` holds no valid snapshot.
            KeyEncryptionKeyError: The snapshot's keyring was wrapped under another KEK.
        """
        manifest = Manifest.load(src)
        if not (src / MANIFEST_NAME).exists():
            raise IntegrityError(src / MANIFEST_NAME, "no snapshot to restore")
        KeyRing.check_file(src / "keyring.json", self.keys)
        self.close(snapshot=False)
        for entry in self.dir.iterdir():
            if entry.is_dir() and entry.name.startswith("t_"):
                shutil.rmtree(entry)
            elif entry.name.startswith("wal.") or entry.name in (MANIFEST_NAME, self.keys.path.name):
                entry.unlink()
        for name in manifest.tenants:
            shutil.copytree(src / tenant_dir_name(name), self.dir / tenant_dir_name(name))
        shutil.copyfile(src / "keyring.json", self.keys.path)
        shutil.copyfile(src / MANIFEST_NAME, self.dir / MANIFEST_NAME)
        fsync_dir(self.dir)
        self.keys = KeyRing.open(self.dir, self._config.keys)
        self.tenants = {}
        self._load()

    def stats(self, cache: RecordCache) -> VaultStats:
        """Counters for :meth:`vault.Vault.stats`."""
        reads = cache.hits + cache.misses
        states = self.tenants.values()
        return VaultStats(
            tenants=len(self.keys.tenants()),
            records=sum(s.live for s in states),
            tombstones=sum(len(s.tombstones) for s in states),
            l1_hits=cache.hits,
            l1_misses=cache.misses,
            hit_ratio=cache.hits / reads if reads else 0.0,
            l1_bytes=cache.bytes,
            l1_entries=len(cache),
            wal_entries=self.wal.entries,
            wal_bytes=self.wal.bytes,
            snapshot_generation=self.manifest.generation,
            index_kinds={t: s.index.kind for t, s in self.tenants.items()},
            gpu=any(s.index.on_gpu for s in states),
        )

    def close(self, *, snapshot: bool) -> None:
        """Optionally snapshot, then close every file."""
        if snapshot:
            self.snapshot()
        self.wal.close()
        for state in self.tenants.values():
            state.close()
