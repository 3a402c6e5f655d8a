"""Maintenance agents of the Storage team: key-warden, indexer, snapshotter, vault-stats."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import ClassVar

import anyio

from agents.actor import Call
from agents.errors import BadInputError, NotFoundError
from agents.limits import NATS_MAX_PAYLOAD_BYTES
from agents.scopes import OperationScopes
from agents.storage._base import StorageAgent
from agents.storage._log import RecordLog
from agents.storage.wire import (
    CacheInput,
    IndexInput,
    IndexOutput,
    KeyInput,
    KeyOutput,
    SnapshotInput,
    SnapshotOut,
    SnapshotOutput,
    StatsOutput,
)
from bridges.vault import VaultBridge

__all__ = ("VaultStatsAgent", "IndexerAgent", "KeyWardenAgent", "SnapshotterAgent")


class KeyWardenAgent(StorageAgent):
    """Rotates keys: the key-encryption key (re-wraps every data key) or the caller's data key."""

    name = "key-warden"
    description = (
        "Rotates keys: re-wraps every data key under a new key-encryption key without rewriting records, "
        "or gives a tenant a new data key."
    )
    capabilities = ("rotate-kek", "rotate-data-key")
    input_model: ClassVar[type[KeyInput]] = KeyInput
    scopes = OperationScopes(default="admin")
    output_model: ClassVar[type[KeyOutput]] = KeyOutput
    ops = ("rotate_kek", "rotate_data_key")

    async def work(self, call: Call) -> KeyOutput:
        """Rotate per ``call.input`` (a :class:`KeyInput`); returns the KEK fingerprint or key version."""
        inp: KeyInput = call.input
        if self.log is not None:
            if inp.scope == "kek":
                raise BadInputError(
                    "the KEK of a replicated vault is rotated by re-deploying every Storage replica with "
                    "the new key; rotating it in one replica is not supported",
                    field="scope",
                )
            version = await self.log.rotate_data_key(call.tenant)
            return KeyOutput(scope="data_key", tenant=call.tenant, key_version=version)
        if inp.scope == "kek":
            fingerprint = await self.bridge.rotate_kek(timeout_s=self.timeout(call))
            return KeyOutput(scope="kek", kek_id=fingerprint)
        version = await self.bridge.rotate_data_key(call.tenant, timeout_s=self.timeout(call))
        return KeyOutput(scope="data_key", tenant=call.tenant, key_version=version)


class IndexerAgent(StorageAgent):
    """Compacts the vault (drops tombstones, rebuilds indexes, snapshots) or reports the caller's index."""

    name = "indexer"
    description = "Compacts the indexes: drops deleted vectors, rewrites segments, rebuilds FAISS indexes."
    capabilities = ("compact", "rebuild", "index-status")
    input_model: ClassVar[type[IndexInput]] = IndexInput
    scopes = OperationScopes(default="admin", op_field="op", by_value={"compact": "admin", "status": "read"})
    output_model: ClassVar[type[IndexOutput]] = IndexOutput
    ops = ("compact", "stats", "count")

    async def work(self, call: Call) -> IndexOutput:
        """Run ``call.input.op`` (an :class:`IndexInput`)."""
        inp: IndexInput = call.input
        before = await self.bridge.stats(timeout_s=self.timeout(call))
        if inp.op == "compact":
            await self.bridge.compact(timeout_s=self.timeout(call))
        after = await self.bridge.stats(timeout_s=self.timeout(call)) if inp.op == "compact" else before
        return IndexOutput(
            op=inp.op,
            tenant=call.tenant,
            index_kind=after.index_kinds.get(call.tenant),
            records=await self.bridge.count(call.tenant, timeout_s=self.timeout(call)),
            tombstones=after.tombstones,
            tombstones_removed=before.tombstones - after.tombstones,
            snapshot_generation=after.snapshot_generation,
        )


class SnapshotterAgent(StorageAgent):
    """Takes encrypted snapshots (copied under a name), lists them, restores one.

    Snapshots cover the whole vault (every tenant). A copy holds the wrapped data keys: restoring it brings
    back tenants shredded since, so delete copies as part of shredding.

    Args:
        bridge: The vault bridge.
        snapshot_dir: Where named copies live (created with mode 0700).
        max_payload_bytes: Largest NATS message, in bytes.
        log: The replicated record log, if any (restore is then refused).
    """

    name = "snapshotter"
    description = "Takes named encrypted snapshots of the vault, lists them, and restores one."
    capabilities = ("snapshot", "restore", "list-snapshots")
    input_model: ClassVar[type[SnapshotInput]] = SnapshotInput
    scopes = OperationScopes(default="admin")  # restore rolls every tenant back; list names them all
    output_model: ClassVar[type[SnapshotOutput]] = SnapshotOutput
    ops = ("snapshot", "restore")

    def __init__(
        self,
        bridge: VaultBridge,
        *,
        snapshot_dir: Path,
        max_payload_bytes: int = NATS_MAX_PAYLOAD_BYTES,
        log: RecordLog | None = None,
    ) -> None:
        super().__init__(bridge, max_payload_bytes=max_payload_bytes, log=log)
        self.snapshot_dir = snapshot_dir

    async def _list(self) -> list[SnapshotOut]:
        root = anyio.Path(self.snapshot_dir)
        if not await root.is_dir():
            return []
        out = []
        async for entry in root.iterdir():
            if not entry.name.startswith(".") and await entry.is_dir():
                out.append(SnapshotOut(name=entry.name, created_at=(await entry.stat()).st_mtime))
        return sorted(out, key=lambda s: (s.created_at, s.name))

    async def work(self, call: Call) -> SnapshotOutput:
        """Run ``call.input.op`` (a :class:`SnapshotInput`).

        Raises:
            BadInputError: ``snapshot`` to a name that exists, or ``restore`` without a name.
            NotFoundError: ``restore`` of a name that does not exist.
        """
        inp: SnapshotInput = call.input
        if inp.op == "list":
            return SnapshotOutput(op="list", snapshots=await self._list())
        if inp.op == "restore":
            if self.log is not None:
                raise BadInputError(
                    "a replicated vault is restored from its JetStream record log, not from a snapshot copy "
                    "(snapshots are this replica's cache)",
                    field="op",
                )
            if inp.name is None:
                raise BadInputError("name the snapshot to restore", field="name")
            src = self.snapshot_dir / inp.name
            if not await anyio.Path(src).is_dir():
                raise NotFoundError(f"no snapshot named {inp.name!r}", field="name")
            await self.bridge.restore(src, timeout_s=self.timeout(call))
            return SnapshotOutput(op="restore", name=inp.name)
        name = inp.name or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        final = anyio.Path(self.snapshot_dir / name)
        if await final.exists():
            raise BadInputError(f"a snapshot named {name!r} exists already", field="name")
        await anyio.Path(self.snapshot_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = self.snapshot_dir / f".{name}.partial"
        generation = await self.bridge.snapshot(partial, timeout_s=self.timeout(call))
        await anyio.Path(partial).rename(final)  # a copy is visible only once complete
        return SnapshotOutput(op="snapshot", name=name, generation=generation)


class VaultStatsAgent(StorageAgent):
    """Reports the vault's counters: records, tombstones, L1 cache hit ratio and bytes, WAL, snapshots.

    Named ``vault-stats`` (it was ``cache-keeper``, which read as if it managed the cache; it only reports).
    """

    name = "vault-stats"
    description = "Reports the vault's cache hit ratio, cache bytes, record and tombstone counts, WAL size."
    capabilities = ("stats", "cache-stats")
    input_model: ClassVar[type[CacheInput]] = CacheInput
    scopes = OperationScopes(default="read")
    output_model: ClassVar[type[StatsOutput]] = StatsOutput
    ops = ("stats", "count")

    async def work(self, call: Call) -> StatsOutput:
        """The counters, with the caller's tenant's record count and index kind (no other tenant's names)."""
        s = await self.bridge.stats(timeout_s=self.timeout(call))
        shared = {k: v for k, v in asdict(s).items() if k in StatsOutput.model_fields}  # the vault's counters
        return StatsOutput(
            tenant=call.tenant,
            tenant_records=await self.bridge.count(call.tenant, timeout_s=self.timeout(call)),
            index_kind=s.index_kinds.get(call.tenant),
            **shared,
        )
