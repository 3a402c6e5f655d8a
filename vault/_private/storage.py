"""The durable core: keyring, tenants, write-ahead log, snapshots, recovery, restore.

Write path: seal each record under the tenant's active data key (saved to the keyring before it is
used), write the sealed records behind the end of the tenant's segment file, append them to the WAL with
the call's idempotency key and fsync (one fsync per batch: the commit point), then count them in the
segment and index them. Every step that can fail on a full disk comes before the commit and is undone
when it fails. Recovery loads the manifest's snapshot and replays every WAL file from the manifest's WAL
generation on; entries whose data key was crypto-shredded are skipped, any other undecryptable entry is an
error.

Not thread-safe on its own: :class:`vault.Vault` calls it under its lock.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from vault._private.cache import RecordCache
from vault._private.files import fsync_dir, fsync_file, storage_error
from vault._private.keyring import KEYRING_NAME, KeyRing
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
    OP_DONE,
    OP_DROP_TENANT,
    OP_LOG_SEQ,
    OP_PUT,
    WalEntry,
    WriteAheadLog,
    read_wal,
    wal_generations,
    wal_path,
)
from vault.config import VaultConfig
from vault.errors import DecryptionError, DimensionMismatchError, IntegrityError, VaultStorageError
from vault.records import VaultStats

__all__ = ("Storage",)

log = structlog.get_logger("vault")
_DROPPED_KEYS = 1024
"""Idempotency keys of tenant shreds remembered (count, since the last open)."""


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
        self.dropped: OrderedDict[str, str] = OrderedDict()
        """Idempotency key of a tenant shred → the tenant."""
        self.log_sequence = 0
        """Sequence of the last record-log message applied (0: none; see :mod:`vault.log`)."""
        self.wal: WriteAheadLog
        self._load()

    # ----------------------------------------------------------------- recovery
    def _load(self) -> None:
        self.log_sequence = 0
        self.manifest = manifest = Manifest.load(self.dir)
        if manifest.dim is not None and manifest.dim != self.dim:
            raise DimensionMismatchError(manifest.dim, self.dim, field="embedder.dim")
        gen = manifest.generation
        for tenant in manifest.tenants:
            tdir = self.dir / tenant_dir_name(tenant)
            state_path = snap_path(tdir, "state", gen)
            if not self.keys.has_tenant(tenant) or self._sealed_by_destroyed_key(state_path):
                shutil.rmtree(tdir, ignore_errors=True)  # shredded after this snapshot
                continue
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

    def _sealed_by_destroyed_key(self, path: Path) -> bool:
        """Whether a sealed snapshot file belongs to a shredded incarnation of its tenant."""
        try:
            with open(path, "rb") as fh:
                head = fh.read(64)
            return self.keys.is_destroyed(blob_key_version(head[8:]))
        except (OSError, InvalidTag):
            return False

    def _open_entry(self, entry: WalEntry, path: Path) -> NDArray[np.float32] | None:
        """The vector of a logged ``PUT``, or ``None`` when its data key was crypto-shredded.

        Raises:
            IntegrityError: The sealed record is truncated or needs a key version the keyring lacks.
            DecryptionError: It fails AES-GCM authentication.
        """
        try:
            version = blob_key_version(entry.blob)
        except InvalidTag:
            raise IntegrityError(path, "WAL entry holds a truncated sealed record") from None
        key = self.keys.key(entry.tenant, version)
        if key is None:
            if self.keys.is_destroyed(version):
                return None  # crypto-shredded tenant: its records are gone for good
            raise IntegrityError(path, f"WAL entry needs data-key version {version}, missing from keyring")
        try:
            plaintext = open_blob(key, entry.blob, record_aad(entry.tenant, entry.record_id, version))
        except InvalidTag:
            raise DecryptionError(
                path, "WAL record fails AES-GCM authentication", tenant=entry.tenant
            ) from None
        return decode_vector(plaintext)

    def _replay(self, entry: WalEntry, path: Path) -> None:
        if entry.op == OP_PUT:
            vector = self._open_entry(entry, path)
            if vector is not None:
                self.state(entry.tenant).put(entry.record_id, entry.blob, vector)
        elif entry.op == OP_LOG_SEQ:
            self.log_sequence = max(self.log_sequence, _decode_sequence(entry, path))
        elif entry.op == OP_DELETE:
            found = self.tenants.get(entry.tenant)
            if found is not None:
                found.delete(entry.record_id)
        elif entry.op == OP_DROP_TENANT:
            self._drop(entry.tenant)
            if entry.record_id:
                self._remember_drop(entry.record_id, entry.tenant)
        elif entry.op == OP_DONE:
            if self.keys.has_tenant(entry.tenant):
                try:
                    result = json.loads(entry.blob)
                except ValueError:
                    raise IntegrityError(path, "WAL idempotency entry does not decode") from None
                self.state(entry.tenant).remember(entry.record_id, result, self._keep)

    @property
    def _keep(self) -> int:
        return self._config.durability.idempotency_keys

    def _remember_drop(self, key: str, tenant: str) -> None:
        self.dropped[key] = tenant
        while len(self.dropped) > _DROPPED_KEYS:
            self.dropped.popitem(last=False)

    def done(self, tenant: str, key: str | None) -> Any:
        """The result of the earlier call of ``tenant`` with idempotency ``key``, or ``None``."""
        if key is None:
            return None
        state = self.tenants.get(tenant)
        return None if state is None else state.done.get(key)

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
        """Forget a shredded tenant's state and files.

        Its keys are gone already (the keyring save is the shred's commit), so a replayed shred never
        touches the keyring, which may hold the key of a tenant of the same name created since.
        """
        state = self.tenants.pop(tenant, None)
        if state is not None:
            state.close()
        shutil.rmtree(self.dir / tenant_dir_name(tenant), ignore_errors=True)
        fsync_dir(self.dir)

    # ----------------------------------------------------------------- operations
    def seal(
        self,
        tenant: str,
        items: list[tuple[str, bytes, NDArray[np.float32]]],
        *,
        key: str | None = None,
        result: Any = None,
        create_key: bool = True,
    ) -> tuple[list[WalEntry], list[bytes]]:
        """The log entries of a put: ``PUT`` per ``(record_id, plaintext, vector)`` item, then ``DONE``.

        Args:
            tenant: The tenant.
            items: The records.
            key: Idempotency key of the call (a ``DONE`` entry with ``result``).
            result: What a retry with ``key`` is answered.
            create_key: Create the tenant's data key when it has none (else :class:`TenantNotFoundError`).

        Returns:
            The entries and the sealed blobs (in item order).
        """
        version, data_key = self.keys.active(tenant, create=create_key)
        blobs = [seal(data_key, version, pt, record_aad(tenant, rid, version)) for rid, pt, _ in items]
        entries = [
            WalEntry(OP_PUT, tenant, rid, blob) for (rid, _, _), blob in zip(items, blobs, strict=True)
        ]
        if key is not None:
            entries.append(WalEntry(OP_DONE, tenant, key, json.dumps(result).encode()))
        return entries, blobs

    def put(
        self,
        tenant: str,
        items: list[tuple[str, bytes, NDArray[np.float32]]],
        *,
        key: str | None = None,
        result: Any = None,
    ) -> None:
        """Seal, log durably, then apply ``(record_id, plaintext, vector)`` items of one tenant.

        Args:
            tenant: The tenant.
            items: The records.
            key: Idempotency key of the call, logged with the records (one commit).
            result: What a retry with ``key`` is answered.

        Raises:
            VaultStorageError: A write failed (a full disk): nothing was kept.
        """
        entries, blobs = self.seal(tenant, items, key=key, result=result)
        state = self.state(tenant)
        staged_at = state.stage(b"".join(blobs))
        try:
            self.wal.append(entries)
        except VaultStorageError:
            state.unstage()
            raise
        state.put_many(
            [(rid, blob, vec) for (rid, _, vec), blob in zip(items, blobs, strict=True)], staged_at=staged_at
        )
        if key is not None:
            state.remember(key, result, self._keep)

    def delete(self, tenant: str, record_id: str, *, key: str | None = None) -> None:
        """Log durably, then tombstone one record (the caller checked that it exists).

        Raises:
            VaultStorageError: The WAL write failed (a full disk): the record stays.
        """
        entries = [WalEntry(OP_DELETE, tenant, record_id)]
        if key is not None:
            entries.append(WalEntry(OP_DONE, tenant, key, json.dumps(record_id).encode()))
        self.wal.append(entries)
        state = self.tenants[tenant]
        state.delete(record_id)
        if key is not None:
            state.remember(key, record_id, self._keep)

    def drop_tenant(self, tenant: str, *, key: str | None = None) -> None:
        """Crypto-shred a tenant: destroy its data keys (the commit), then drop its files and state.

        Raises:
            VaultStorageError: The keyring could not be saved (a full disk): nothing was shredded.
        """
        self.keys.destroy_tenant(tenant)
        if key is not None:
            self._remember_drop(key, tenant)
        try:
            self.wal.append([WalEntry(OP_DROP_TENANT, tenant, key or "")])
        except VaultStorageError as exc:  # the shred is done; the entry only helps a later replay
            log.warning("vault shred not logged", tenant=tenant, error=str(exc))
        if tenant in self.manifest.tenants:
            manifest = Manifest(
                self.manifest.generation,
                self.manifest.wal_generation,
                self.manifest.dim,
                [t for t in self.manifest.tenants if t != tenant],
            )
            try:
                manifest.save(self.dir)
                self.manifest = manifest
            except VaultStorageError as exc:  # the next open skips files sealed with destroyed keys
                log.warning("vault manifest not updated after shred", tenant=tenant, error=str(exc))
        self._drop(tenant)

    def apply(self, entries: list[WalEntry], sequence: int, source: Path) -> set[tuple[str, str]]:
        """Log and apply entries sealed by another replica (one record-log message), in order.

        Entries between shreds commit with one WAL write that also records ``sequence``; a shred
        commits as :meth:`drop_tenant` does. A ``PUT`` whose data key was shredded is skipped, a
        ``DELETE`` of a record that is not here changes nothing.

        Args:
            entries: The message's entries.
            sequence: Its sequence in the record log (above :attr:`log_sequence`).
            source: Names the log in errors.

        Returns:
            ``(tenant, record_id)`` of every record written or deleted (for cache invalidation).

        Raises:
            IntegrityError: An entry is malformed or needs a data key the keyring lacks.
            DecryptionError: A sealed record fails authentication.
            VaultStorageError: A write failed (a full disk): the message is not applied.
        """
        touched: set[tuple[str, str]] = set()
        run: list[WalEntry] = []
        for entry in [*entries, None]:
            if entry is not None and entry.op not in (OP_DROP_TENANT, OP_LOG_SEQ):
                run.append(entry)
                continue
            self._apply_run(run, sequence if entry is None else None, source)
            touched |= {(e.tenant, e.record_id) for e in run if e.op in (OP_PUT, OP_DELETE)}
            run = []
            if entry is not None and entry.op == OP_LOG_SEQ:
                raise IntegrityError(source, f"message {sequence} holds a log-sequence entry")
            if entry is not None:
                self.drop_tenant(entry.tenant, key=entry.record_id or None)
        self.log_sequence = sequence
        return touched

    def _apply_run(self, run: list[WalEntry], sequence: int | None, source: Path) -> None:
        puts: dict[str, list[tuple[str, bytes, NDArray[np.float32]]]] = {}
        for entry in run:
            vector = self._open_entry(entry, source) if entry.op == OP_PUT else None
            if vector is not None:
                puts.setdefault(entry.tenant, []).append((entry.record_id, entry.blob, vector))
        staged: dict[str, int] = {}
        try:
            for tenant, items in puts.items():
                staged[tenant] = self.state(tenant).stage(b"".join(blob for _, blob, _ in items))
            marker = [] if sequence is None else [sequence_entry(sequence)]
            if run or marker:
                self.wal.append([*run, *marker])
        except VaultStorageError:
            for tenant in staged:
                self.tenants[tenant].unstage()
            raise
        for tenant, items in puts.items():
            self.tenants[tenant].put_many(items, staged_at=staged[tenant])
        for entry in run:
            state = self.tenants.get(entry.tenant)
            if entry.op == OP_DELETE and state is not None:
                state.delete(entry.record_id)
            elif entry.op == OP_DONE and self.keys.has_tenant(entry.tenant):
                try:
                    result = json.loads(entry.blob)
                except ValueError:
                    raise IntegrityError(source, "log idempotency entry does not decode") from None
                self.state(entry.tenant).remember(entry.record_id, result, self._keep)

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
        old_segments: list[Path] = []
        ratio = self._config.index.compact_tombstone_ratio
        for state in self.tenants.values():
            if state.tombstones and (compact or len(state.tombstones) > ratio * state.index.ntotal):
                old_segments.append(state.compact())
        gen = self.manifest.generation + 1
        new_wal = self.wal.generation + 1
        written: list[Path] = []
        wal = None
        try:
            wal = WriteAheadLog(self.dir, new_wal, fsync=self._config.durability.fsync)
            if self.log_sequence:  # the new generation starts where the record log was applied up to
                wal.append([sequence_entry(self.log_sequence)])
                wal.entries = 0
            for tenant, state in self.tenants.items():
                try:
                    state.sync()
                except OSError as exc:
                    raise storage_error(exc, state.segment_path) from exc
                for kind, data in (
                    ("state", json.dumps(state.to_state()).encode()),
                    ("index", state.index.serialize()),
                ):
                    path = snap_path(state.dir, kind, gen)
                    written.append(path)
                    write_sealed_file(path, self.keys, tenant, kind, gen, data)
            manifest = Manifest(gen, new_wal, self.dim, sorted(self.tenants))
            manifest.save(self.dir)
        except BaseException:
            if wal is not None:
                wal.close()
                wal.path.unlink(missing_ok=True)
            for path in written:
                path.unlink(missing_ok=True)
            raise
        self.manifest = manifest
        self.wal.close()
        self.wal = wal
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

        The copy's data keys are re-wrapped under the current KEK; a copy taken before a KEK rotation
        opens with the earlier KEK the keyring keeps.

        Raises:
            IntegrityError: ``src`` holds no valid snapshot.
            KeyEncryptionKeyError: The snapshot's keyring was wrapped under a KEK this vault never had.
        """
        if not (src / MANIFEST_NAME).exists():
            raise IntegrityError(src / MANIFEST_NAME, "no snapshot to restore")
        manifest = Manifest.load(src)
        copy = KeyRing.open_copy(src / KEYRING_NAME, self.keys)
        for name in manifest.tenants:
            for kind in ("state", "index"):
                read_sealed_file(
                    snap_path(src / tenant_dir_name(name), kind, manifest.generation),
                    copy,
                    name,
                    kind,
                    manifest.generation,
                )
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
        """Optionally snapshot, then close every file.

        The snapshot is skipped when nothing changed, and its failure (a full disk) only logs: the WAL
        holds every write.
        """
        if snapshot:
            try:
                self.snapshot()
            except VaultStorageError as exc:
                log.warning("vault snapshot on close failed; the WAL keeps every write", error=str(exc))
        self.wal.close()
        for state in self.tenants.values():
            state.close()


def sequence_entry(sequence: int) -> WalEntry:
    """The ``LOG_SEQ`` entry recording that the record log is applied up to ``sequence``."""
    return WalEntry(OP_LOG_SEQ, "", "", struct.pack(">Q", sequence))


def _decode_sequence(entry: WalEntry, path: Path) -> int:
    try:
        (sequence,) = struct.unpack(">Q", entry.blob)
    except struct.error:
        raise IntegrityError(path, "WAL log-sequence entry does not decode") from None
    return int(sequence)
