"""Recovery of the vault's durable state: load the manifest's snapshot, replay the WAL, clean up.

Recovery loads the manifest's snapshot and replays every WAL file from the manifest's WAL generation on;
entries whose data key was crypto-shredded are skipped, any other undecryptable entry is an error. Also
the tenant table and the remembered idempotency keys, which replay and the write path share. The layers:
:class:`Recovery` → :class:`~vault._private.snapshotting.Snapshots` →
:class:`~vault._private.storage.Storage`.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from vault._private.files import fsync_dir
from vault._private.flat import read_trailing_rows
from vault._private.index import read_index
from vault._private.keyring import KeyRing
from vault._private.sealing import (
    InvalidTag,
    blob_key_version,
    decode_vector,
    open_blob,
    record_aad,
)
from vault._private.snapshot import (
    Manifest,
    SealedReader,
    read_sealed_file,
    snap_path,
)
from vault._private.tenant import TenantState, tenant_dir_name
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
from vault.errors import DecryptionError, DimensionMismatchError, IntegrityError

__all__ = ("Recovery", "sequence_entry")

log = structlog.get_logger("vault")
_DROPPED_KEYS = 1024
"""Idempotency keys of tenant shreds remembered (count, since the last open)."""


class Recovery:
    """The durable state as recovered from disk (base of :class:`~vault._private.storage.Storage`).

    :class:`~vault._private.storage.Storage` sets these attributes and calls :meth:`_load`.
    """

    dir: Path
    dim: int
    _config: VaultConfig
    keys: KeyRing
    tenants: dict[str, TenantState]
    manifest: Manifest
    dropped: OrderedDict[str, str]
    """Idempotency key of a tenant shred → the tenant."""
    log_sequence: int
    """Sequence of the last record-log message applied (0: none; see :mod:`vault.log`)."""
    wal: WriteAheadLog

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
            self.tenants[tenant] = self._load_tenant(tenant, tdir, gen)
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

    def _load_tenant(self, tenant: str, tdir: Path, gen: int) -> TenantState:
        """A tenant from its sealed snapshot files; the index is decrypted straight into FAISS.

        Raises:
            IntegrityError: A file is damaged or the two files do not match.
        """
        state_path = snap_path(tdir, "state", gen)
        raw_state = read_sealed_file(state_path, self.keys, tenant, "state", gen)
        try:
            state = json.loads(raw_state)
            kind = str(state["kind"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(state_path, f"snapshot does not load: {exc}") from None
        with SealedReader(snap_path(tdir, "index", gen), self.keys, tenant, "index", gen) as reader:
            try:
                index = read_index(reader.read, self.dim, self._config.index, kind)
                waiting = read_trailing_rows(reader.read, self.dim)
            except IntegrityError:  # a chunk failed authentication: the error names it
                raise
            except ValueError as exc:
                raise IntegrityError(reader.path, f"snapshot does not load: {exc}") from None
            reader.finish()
        try:
            return TenantState.from_state(tenant, tdir, self.dim, self._config.index, state, index, waiting)
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(state_path, f"snapshot does not load: {exc}") from None

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

    def settle(self) -> None:
        """Apply the writes still in flight before another change (only :class:`Storage` has such writes)."""

    def done(self, tenant: str, key: str | None) -> Any:
        """The result of the earlier call of ``tenant`` with idempotency ``key``, or ``None``."""
        if key is None:
            return None
        state = self.tenants.get(tenant)
        return None if state is None else state.done.get(key)

    def _cleanup(self) -> None:
        """Delete files no snapshot or live tenant references (left by crashes or compaction)."""
        remove_files(self._unused_files())

    def _unused_files(self) -> list[Path]:
        """Files and tenant directories no snapshot or live tenant references (the caller holds the lock).

        A background snapshot deletes them after releasing the lock: unlinking a 150 MB index file
        frees its extents, which is file-system work no write should wait for.
        """
        gen = self.manifest.generation
        live_dirs = {tenant_dir_name(t): t for t in set(self.tenants) | set(self.keys.tenants())}
        unused: list[Path] = []
        for entry in self.dir.iterdir():
            if entry.name.endswith(".tmp"):
                unused.append(entry)
            elif entry.is_dir() and entry.name.startswith("t_") and entry.name not in live_dirs:
                unused.append(entry)
        for state in self.tenants.values():
            keep = state.referenced_files() | {snap_path(state.dir, k, gen).name for k in ("state", "index")}
            unused += [file for file in state.dir.iterdir() if file.name not in keep]
        return unused

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


def sequence_entry(sequence: int) -> WalEntry:
    """The ``LOG_SEQ`` entry recording that the record log is applied up to ``sequence``."""
    return WalEntry(OP_LOG_SEQ, "", "", struct.pack(">Q", sequence))


def _decode_sequence(entry: WalEntry, path: Path) -> int:
    try:
        (sequence,) = struct.unpack(">Q", entry.blob)
    except struct.error:
        raise IntegrityError(path, "WAL log-sequence entry does not decode") from None
    return int(sequence)


def remove_files(paths: list[Path]) -> None:
    """Delete files, and directories with their contents (missing ones are skipped)."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
