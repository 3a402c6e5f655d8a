"""The Storage team: eight agents over one ΣVAULT (through :class:`bridges.vault.VaultBridge`).

==============  ==========================================================================
archivist       batch upsert: embed, seal (AES-256-GCM), log with fsync, index
retriever       semantic search: text or vector query, k, score threshold, metadata filters
fetcher         get one record by id
eraser          delete a record; crypto-shred the caller's tenant
key-warden      rotate the key-encryption key or the caller's data key
indexer         compaction (drop tombstones, rebuild indexes); index status
snapshotter     named encrypted snapshots, list, restore
cache-keeper    counters: cache hit ratio and bytes, records, tombstones, WAL
==============  ==========================================================================

Besides the eight, :class:`EmbedderAgent` (``embedder``) turns texts into vectors without storing them
(for ``POST /v1/embeddings``); the team's starter runs it next to them.

Every agent works in the call's tenant (the ``Neurectomy-Tenant`` header). Inputs and outputs are in
:mod:`agents.storage.wire`; vault exceptions become wire errors in :func:`vault_error` only.
"""

from __future__ import annotations

from pathlib import Path

from agents.storage._admin import CacheKeeperAgent, IndexerAgent, KeyWardenAgent, SnapshotterAgent
from agents.storage._base import DEFAULT_MAX_PAYLOAD_BYTES, StorageAgent, vault_error
from agents.storage._embed import EMBEDDING_MODEL, EmbedderAgent
from agents.storage._records import ArchivistAgent, EraserAgent, FetcherAgent, RetrieverAgent
from bridges.vault import VaultBridge

__all__ = (
    "STORAGE_AGENT_NAMES",
    "ArchivistAgent",
    "EMBEDDING_MODEL",
    "CacheKeeperAgent",
    "EmbedderAgent",
    "EraserAgent",
    "FetcherAgent",
    "IndexerAgent",
    "KeyWardenAgent",
    "RetrieverAgent",
    "SnapshotterAgent",
    "StorageAgent",
    "storage_agents",
    "vault_error",
)

STORAGE_AGENT_NAMES = (
    "archivist",
    "retriever",
    "fetcher",
    "eraser",
    "key-warden",
    "indexer",
    "snapshotter",
    "cache-keeper",
)
"""Names of the Storage team's agents (also their queue groups)."""


def storage_agents(
    bridge: VaultBridge, *, snapshot_dir: Path, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
) -> list[StorageAgent]:
    """One instance of each Storage team agent over ``bridge``, in :data:`STORAGE_AGENT_NAMES` order.

    Args:
        bridge: The vault bridge they share.
        snapshot_dir: Where the snapshotter keeps named copies.
        max_payload_bytes: Largest NATS message, in bytes (outputs beyond it are refused).
    """
    size = {"max_payload_bytes": max_payload_bytes}
    return [
        ArchivistAgent(bridge, **size),
        RetrieverAgent(bridge, **size),
        FetcherAgent(bridge, **size),
        EraserAgent(bridge, **size),
        KeyWardenAgent(bridge, **size),
        IndexerAgent(bridge, **size),
        SnapshotterAgent(bridge, snapshot_dir=snapshot_dir, **size),
        CacheKeeperAgent(bridge, **size),
    ]
