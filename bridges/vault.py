"""Async bridge from the agents to one ΣVAULT :class:`vault.Vault`.

The vault is synchronous and thread-safe (one lock; embedding runs outside it). The bridge

* opens the vault and loads all-MiniLM-L6-v2 in a worker thread, so the event loop never blocks on
  recovery or on the torch import (:meth:`VaultBridge.open`),
* runs every vault call in a thread through one :class:`anyio.CapacityLimiter`,
* bounds each read with a timeout (:class:`~bridges.errors.BridgeTimeoutError`; the abandoned read runs
  to completion in its thread, harmlessly),
* hands each write its deadline instead, and waits for it: the vault commits a write only before its
  deadline (else it raises :class:`vault.VaultDeadlineError` and writes nothing, ever), so a write that
  answers "timeout" did not happen, and one that committed just before its deadline is visible to every
  read that starts after the answer; an idempotency key makes a retry of either answer the same ids,
* counts calls, failures, timeouts and time per operation (:class:`VaultBridgeMetrics`).

Vault exceptions pass through unchanged; the agents turn them into wire errors.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import anyio
import anyio.to_thread
import numpy as np
import structlog
from numpy.typing import NDArray

from bridges._vault_metrics import OpStats, VaultBridgeMetrics
from bridges._vault_offload import _VaultOffload
from vault import (
    JSONScalar,
    MiniLMEmbedder,
    NewRecord,
    Record,
    SearchHit,
    Vault,
    VaultConfig,
    VaultStats,
)

_log = structlog.get_logger("neurectomy.bridges")

__all__ = ("OpStats", "VaultBridge", "VaultBridgeMetrics")


class VaultBridge(_VaultOffload):
    """Async access to one :class:`vault.Vault`.

    Args:
        vault: The open vault (the bridge closes it in :meth:`aclose`).
        config: The configuration ``vault`` was opened with (the agents read its limits).
        timeout_s: Default upper bound of one vault call, in seconds.
        max_threads: Vault calls that may run in threads at once (count).
    """

    def __init__(
        self, vault: Vault, config: VaultConfig, *, timeout_s: float = 60.0, max_threads: int = 4
    ) -> None:
        self.vault = vault
        self.config = config
        self.timeout_s = timeout_s
        self.metrics = VaultBridgeMetrics()
        self._limiter = anyio.CapacityLimiter(max_threads)
        self._closed = False
        self.on_tenant_deleted: list[Callable[[str], Awaitable[object]]] = []
        """Called with the tenant after each successful `delete_tenant` (e.g. ΣLANG drops its sealed
        RSUs); a failing listener is logged, never undoes or fails the shred."""

    @classmethod
    async def open(
        cls,
        data_dir: str | os.PathLike[str],
        config: VaultConfig | None = None,
        *,
        timeout_s: float = 60.0,
        max_threads: int = 4,
        preload_model: bool = True,
    ) -> VaultBridge:
        """Open (and recover) the vault in ``data_dir`` in a worker thread and return a bridge to it.

        The key-encryption key comes from ``config.keys`` as the library resolves it: the environment
        variable (``NEURECTOMY_VAULT_KEK`` by default), a configured key file, or the vault's own key file
        under ``$XDG_CONFIG_HOME/neurectomy/vault-keys`` (generated with mode 0600 on first run); never a
        file inside ``data_dir`` unless ``config.keys.allow_kek_in_data_dir``.

        Args:
            data_dir: The vault's data directory.
            config: Vault settings; defaults when ``None``.
            timeout_s: Default timeout of one vault call, in seconds.
            max_threads: Vault calls that may run in threads at once (count).
            preload_model: Load all-MiniLM-L6-v2 now (about 0.5 s plus the torch import) rather than on
                the first write or text query.

        Raises:
            vault.VaultLockedError: Another process has ``data_dir`` open.
            vault.IntegrityError: A file in ``data_dir`` is corrupted (the error names it).
            vault.KeyEncryptionKeyError: The KEK is malformed or does not match the keyring.
        """
        cfg = config or VaultConfig()

        def load() -> Vault:
            embedder = MiniLMEmbedder(batch_size=cfg.embed_batch_size, torch_threads=cfg.embed_threads)
            if preload_model:
                embedder.load()
            return Vault(data_dir, config=cfg, embedder=embedder)

        opened = await anyio.to_thread.run_sync(load)
        return cls(opened, cfg, timeout_s=timeout_s, max_threads=max_threads)

    # ----------------------------------------------------------------- operations
    async def put_many(
        self,
        tenant: str,
        records: Sequence[NewRecord],
        *,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> list[str]:
        """Store records durably (embedding those without a vector); see :meth:`vault.Vault.put_many`.

        Args:
            tenant: The tenant.
            records: The records.
            timeout_s: The write must commit within this many seconds, or not at all.
            idempotency_key: Names the call: a retry with the same key returns the same ids, writing
                nothing again.

        Returns:
            Record ids, in input order.

        Raises:
            vault.VaultInputError: Bad text, id, metadata, vector or batch size (names the field).
            vault.RecordTooLargeError: A record exceeds ``max_record_bytes``.
            vault.InsufficientStorageError: The disk is full (nothing was written).
            vault.VaultDeadlineError: The write could not commit in time (nothing was written).
        """
        call = functools.partial(self.vault.put_many, tenant, records, idempotency_key=idempotency_key)
        ids = await self._write("put_many", lambda deadline: call(deadline=deadline), timeout_s)
        self.metrics.records_written += len(ids)
        return ids

    async def search(
        self,
        tenant: str,
        query: str | NDArray[np.float32],
        *,
        k: int = 10,
        min_score: float | None = None,
        where: Mapping[str, JSONScalar] | None = None,
        timeout_s: float | None = None,
    ) -> list[SearchHit]:
        """Nearest records by cosine similarity; see :meth:`vault.Vault.search`.

        Args:
            tenant: Tenant to search.
            query: Text to embed, or a ``(dim,)`` float32 vector.
            k: Results wanted (count).
            min_score: Drop hits with a cosine similarity below this.
            where: Metadata equality filters.
            timeout_s: Timeout of this call, in seconds (the bridge's default when ``None``).

        Returns:
            Up to ``k`` hits, best first.

        Raises:
            vault.TenantNotFoundError: Unknown tenant.
            vault.VaultInputError: Bad ``k``, ``min_score``, ``where`` or query (names the field).
            BridgeTimeoutError: The call exceeded its timeout.
        """
        call = functools.partial(self.vault.search, tenant, query, k=k, min_score=min_score, where=where)
        hits = await self._run("search", call, timeout_s)
        self.metrics.hits_returned += len(hits)
        return hits

    async def get(self, tenant: str, record_id: str, *, timeout_s: float | None = None) -> Record:
        """Fetch and decrypt one record.

        Raises:
            vault.TenantNotFoundError: Unknown tenant.
            vault.RecordNotFoundError: No live record with this id.
            vault.IntegrityError: The sealed record was altered (names the file).
        """
        return await self._run("get", functools.partial(self.vault.get, tenant, record_id), timeout_s)

    async def delete(
        self,
        tenant: str,
        record_id: str,
        *,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Delete one record durably (committed within ``timeout_s`` or not at all).

        Raises:
            vault.TenantNotFoundError: Unknown tenant.
            vault.RecordNotFoundError: No live record with this id (and no earlier call with this key).
            vault.InsufficientStorageError: The disk is full (the record stays).
            vault.VaultDeadlineError: The delete could not commit in time (the record stays).
        """
        call = functools.partial(self.vault.delete, tenant, record_id, idempotency_key=idempotency_key)
        await self._write("delete", lambda deadline: call(deadline=deadline), timeout_s)

    async def delete_tenant(
        self, tenant: str, *, timeout_s: float | None = None, idempotency_key: str | None = None
    ) -> None:
        """Crypto-shred a tenant: destroy its data keys and delete its files.

        Raises:
            vault.TenantNotFoundError: Unknown tenant (and no earlier shred with this key).
            vault.InsufficientStorageError: The keyring could not be saved (nothing was shredded).
        """
        call = functools.partial(self.vault.delete_tenant, tenant, idempotency_key=idempotency_key)
        await self._write("delete_tenant", lambda _deadline: call(), timeout_s)
        await self.tenant_deleted(tenant)

    async def tenant_deleted(self, tenant: str) -> None:
        """Tell the :attr:`on_tenant_deleted` listeners that ``tenant`` was shredded (failures are logged)."""
        for listener in self.on_tenant_deleted:
            try:
                await listener(tenant)
            except Exception as exc:  # noqa: BLE001 - the shred is done; the listener's data is unreadable anyway
                _log.warning("tenant-deleted listener failed", tenant=tenant, error=repr(exc))

    async def embed(
        self, texts: Sequence[str], *, timeout_s: float | None = None
    ) -> tuple[NDArray[np.float32], list[int]]:
        """Embed texts with the vault's embedder, outside any tenant (nothing is stored).

        Args:
            texts: ``n`` non-empty strings.
            timeout_s: Timeout of this call, in seconds (the bridge's default when ``None``).

        Returns:
            ``(n, dim)`` float32 vectors, rows L2-normalised, and the tokens the model read per text
            (all-MiniLM-L6-v2's own tokenizer; whitespace-separated words for another embedder).

        Raises:
            BridgeTimeoutError: The call exceeded its timeout.
        """
        embedder = self.vault.embedder

        def run() -> tuple[NDArray[np.float32], list[int]]:
            vectors = embedder.embed(texts)
            if isinstance(embedder, MiniLMEmbedder):
                return vectors, embedder.count_tokens(texts)
            return vectors, [len(t.split()) for t in texts]

        return await self._run("embed", run, timeout_s)

    async def count(self, tenant: str, *, timeout_s: float | None = None) -> int:
        """Live records of ``tenant`` (0 when unknown)."""
        return await self._run("count", functools.partial(self.vault.count, tenant), timeout_s)

    async def rotate_kek(self, *, timeout_s: float | None = None) -> str:
        """Re-wrap every data key under a newly generated key-encryption key (file KEK only).

        Returns:
            Fingerprint of the new KEK (not the key).

        Raises:
            vault.KeyEncryptionKeyError: The KEK comes from an environment variable.
        """
        return await self._run("rotate_kek", self.vault.rotate_kek, timeout_s)

    async def rotate_data_key(self, tenant: str, *, timeout_s: float | None = None) -> int:
        """Give ``tenant`` a new data key for new writes; returns the new key version.

        Raises:
            vault.TenantNotFoundError: Unknown tenant.
        """
        return await self._run(
            "rotate_data_key", functools.partial(self.vault.rotate_data_key, tenant), timeout_s
        )

    async def compact(self, *, timeout_s: float | None = None) -> int:
        """Drop every tombstone (rewrite segments, rebuild indexes), then snapshot; returns the generation."""
        return await self._run("compact", self.vault.compact, timeout_s)

    async def snapshot(self, dest: Path | None = None, *, timeout_s: float | None = None) -> int:
        """Take an encrypted snapshot (and copy it to ``dest`` if given); returns the generation."""
        return await self._run("snapshot", functools.partial(self.vault.snapshot, dest), timeout_s)

    async def restore(self, src: Path, *, timeout_s: float | None = None) -> None:
        """Replace the vault's contents with a copy made by :meth:`snapshot`.

        Raises:
            vault.IntegrityError: ``src`` holds no valid snapshot (names the file).
            vault.KeyEncryptionKeyError: The copy was wrapped under another KEK.
        """
        await self._run("restore", functools.partial(self.vault.restore, src), timeout_s)

    async def stats(self, *, timeout_s: float | None = None) -> VaultStats:
        """The vault's counters (records, tombstones, cache hit ratio, WAL, snapshot generation)."""
        return await self._run("stats", self.vault.stats, timeout_s)

    # ----------------------------------------------------------------- lifecycle
    async def aclose(self) -> None:
        """Close the vault in a thread (waits for running calls; snapshots if configured). Idempotent."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.vault.close)

    async def __aenter__(self) -> VaultBridge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
