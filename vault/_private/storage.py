"""The durable core: keyring, tenants, write-ahead log, snapshots, recovery, restore.

Write path: seal each record under the tenant's active data key (saved to the keyring before it is
used), write the sealed records behind the bytes already staged in the tenant's segment file, write them
to the WAL with the call's idempotency key (:meth:`Storage.begin_put`), fsync (the commit point; taken
without the lock, one fsync for every writer that wrote before it began: group commit), then count them
in the segment and index them, in WAL order (:meth:`Storage.finish_puts`). Every step that can fail on a
full disk comes before the commit and is undone when it fails. Recovery (load and replay) lives in
:mod:`vault._private.recovery`, snapshots, copies and restores in :mod:`vault._private.snapshotting`;
:class:`Storage` stacks the three layers.

Not thread-safe on its own: :class:`vault.Vault` calls it under its lock.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from vault._private.cache import RecordCache
from vault._private.keyring import KeyRing
from vault._private.recovery import sequence_entry
from vault._private.sealing import (
    InvalidTag,
    blob_key_version,
    decode_record,
    open_blob,
    record_aad,
    seal,
)
from vault._private.snapshot import (
    Manifest,
)
from vault._private.snapshotting import SnapshotPlan, Snapshots
from vault._private.tenant import Slot, TenantState
from vault._private.wal import (
    OP_DELETE,
    OP_DONE,
    OP_DROP_TENANT,
    OP_LOG_SEQ,
    OP_PUT,
    WalEntry,
    WriteAheadLog,
)
from vault.config import VaultConfig
from vault.errors import DecryptionError, IntegrityError, VaultStorageError
from vault.records import VaultStats

__all__ = ("InflightPut", "SnapshotPlan", "Storage")

log = structlog.get_logger("vault")


@dataclass(slots=True)
class InflightPut:
    """A put written to the WAL and staged in its segment, waiting for its fsync (:meth:`Storage.begin_put`).

    Attributes:
        ticket: End offset of its frames in ``wal``: durable once ``wal.synced`` reaches it.
        error: Set when the fsync failed (nothing of the put was kept).
        applied: Set once it is applied (visible to reads, its idempotency key remembered).
    """

    tenant: str
    records: list[tuple[str, bytes, NDArray[np.float32]]]
    staged_at: int
    key: str | None
    result: Any
    wal: WriteAheadLog
    ticket: int
    error: VaultStorageError | None = None
    applied: bool = False


class Storage(Snapshots):
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
        self.inflight: deque[InflightPut] = deque()
        """Puts written to the WAL, not known durable yet (applied by :meth:`finish_puts`, in order)."""
        self.wal: WriteAheadLog
        self._load()

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

    def begin_put(
        self,
        tenant: str,
        items: list[tuple[str, bytes, NDArray[np.float32]]],
        *,
        key: str | None = None,
        result: Any = None,
    ) -> InflightPut:
        """Seal ``(record_id, plaintext, vector)`` items, stage them in the segment, write them to the WAL.

        Not durable yet: the caller syncs the WAL up to the returned ``ticket`` (without the lock; writers
        that wrote meanwhile share the fsync), then calls :meth:`finish_puts` under the lock, which applies
        every put whose frames are durable, in WAL order. Until then no read sees the records.

        Raises:
            VaultStorageError: A write failed (a full disk): nothing was kept.
        """
        entries, blobs = self.seal(tenant, items, key=key, result=result)
        state = self.state(tenant)
        staged_at = state.stage(b"".join(blobs))
        try:
            ticket = self.wal.write(entries)
        except VaultStorageError:
            state.unstage(staged_at)
            raise
        records = [(rid, blob, vec) for (rid, _, vec), blob in zip(items, blobs, strict=True)]
        put = InflightPut(tenant, records, staged_at, key, result, self.wal, ticket)
        self.inflight.append(put)
        return put

    def finish_puts(self) -> None:
        """Apply the in-flight puts whose WAL frames are durable, oldest first (the caller holds the lock).

        After a failed fsync every put not known durable fails (its ``error`` is set): the WAL and the
        segments are cut back to before it, and nothing of it is kept.
        """
        wal = self.wal
        if wal.broken is not None:
            error = wal.broken
            wal.cut_unsynced()
            lost = [put for put in self.inflight if put.ticket > wal.synced]
            for put in reversed(lost):  # newest first: each tenant ends cut back to its oldest lost put
                put.error = error
                self.tenants[put.tenant].unstage(put.staged_at)
            self.inflight = deque(put for put in self.inflight if put.error is None)
        while self.inflight and self.inflight[0].wal.synced >= self.inflight[0].ticket:
            put = self.inflight.popleft()
            state = self.tenants[put.tenant]
            state.put_many(put.records, staged_at=put.staged_at)
            if put.key is not None:
                state.remember(put.key, put.result, self._keep)
            put.applied = True

    def settle(self) -> None:
        """Make every in-flight put durable and apply it (the caller holds the lock; one fsync at most).

        Every other change (a delete, a shred, a log message, a snapshot, closing) settles first, so the
        order in which changes apply is the order of the WAL. A put whose fsync fails only fails itself.
        """
        if self.inflight:
            try:
                self.wal.sync(self.inflight[-1].ticket)
            except VaultStorageError:
                pass  # finish_puts fails the lost puts; their writers raise
            self.finish_puts()

    def done(self, tenant: str, key: str | None) -> Any:
        """The result of the earlier call of ``tenant`` with idempotency ``key``, or ``None``.

        A call with that key still in flight is settled first, so a concurrent retry answers its result.
        """
        if key is not None and any(put.key == key and put.tenant == tenant for put in self.inflight):
            self.settle()
        return super().done(tenant, key)

    def delete(self, tenant: str, record_id: str, *, key: str | None = None) -> None:
        """Log durably, then tombstone one record (the caller checked that it exists).

        Raises:
            VaultStorageError: The WAL write failed (a full disk): the record stays.
        """
        self.settle()
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
        self.settle()
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
        self.settle()
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
        label, offset, _ = slot
        path, record_id = state.segment_path, state.labels[label]
        try:
            version = blob_key_version(blob)
        except InvalidTag:
            raise IntegrityError(path, "sealed record is truncated", offset) from None
        key = self.keys.key(tenant, version)
        if key is None:
            raise IntegrityError(path, f"record sealed with unknown data-key version {version}", offset)
        try:
            plaintext = open_blob(key, blob, record_aad(tenant, record_id, version))
        except InvalidTag:
            raise DecryptionError(
                path, "sealed record fails AES-GCM authentication", offset, tenant=tenant
            ) from None
        return decode_record(plaintext)

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
            pending_vectors=max((len(s.pending) for s in states), default=0),
        )
