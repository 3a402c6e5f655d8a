"""The Storage team: eight agents over one ΣVAULT (through :class:`bridges.vault.VaultBridge`).

==============  ==========================================================================
archivist       batch upsert: embed, seal (AES-256-GCM), log with fsync, index
retriever       semantic search: text or vector query, k, score threshold, metadata filters
fetcher         get one record by id
eraser          delete a record; crypto-shred the caller's tenant
key-warden      rotate the key-encryption key or the caller's data key
indexer         compaction (drop tombstones, rebuild indexes); index status
snapshotter     named encrypted snapshots, list, restore
vault-stats    counters: cache hit ratio and bytes, records, tombstones, WAL
==============  ==========================================================================

Besides the eight, :class:`EmbedderAgent` (``embedder``) turns texts into vectors without storing them
(for ``POST /v1/embeddings``); the team's starter runs it next to them.

With ``vault_log.mode: jetstream`` the writes go through :class:`RecordLog`, a replicated JetStream stream
that every Storage replica applies (any number of replicas serve the same records; see ``_log``).

Every agent works in the call's tenant (the ``Neurectomy-Tenant`` header). Inputs and outputs are in
:mod:`agents.storage.wire`; vault exceptions become wire errors in :func:`vault_error` only.

The names below load on first use, so importing :mod:`agents.storage.wire` (as the API's vault schemas
and the SDK do) loads neither the bridge nor the vault engine.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.storage._admin import IndexerAgent, KeyWardenAgent, SnapshotterAgent, VaultStatsAgent
    from agents.storage._base import StorageAgent, vault_error
    from agents.storage._embed import EMBEDDING_MODEL, EmbedderAgent
    from agents.storage._log import LogBehindError, RecordLog, VaultLogConfig
    from agents.storage._records import ArchivistAgent, EraserAgent, FetcherAgent, RetrieverAgent
    from agents.storage._team import STORAGE_AGENT_NAMES, storage_agents

__all__ = (
    "ArchivistAgent",
    "VaultStatsAgent",
    "EMBEDDING_MODEL",
    "EmbedderAgent",
    "EraserAgent",
    "FetcherAgent",
    "IndexerAgent",
    "KeyWardenAgent",
    "LogBehindError",
    "RecordLog",
    "RetrieverAgent",
    "STORAGE_AGENT_NAMES",
    "SnapshotterAgent",
    "StorageAgent",
    "VaultLogConfig",
    "storage_agents",
    "vault_error",
)

_MODULE_OF = {
    "ArchivistAgent": "agents.storage._records",
    "EraserAgent": "agents.storage._records",
    "FetcherAgent": "agents.storage._records",
    "RetrieverAgent": "agents.storage._records",
    "VaultStatsAgent": "agents.storage._admin",
    "IndexerAgent": "agents.storage._admin",
    "KeyWardenAgent": "agents.storage._admin",
    "SnapshotterAgent": "agents.storage._admin",
    "StorageAgent": "agents.storage._base",
    "vault_error": "agents.storage._base",
    "EMBEDDING_MODEL": "agents.storage._embed",
    "EmbedderAgent": "agents.storage._embed",
    "STORAGE_AGENT_NAMES": "agents.storage._team",
    "LogBehindError": "agents.storage._log",
    "RecordLog": "agents.storage._log",
    "VaultLogConfig": "agents.storage._log",
    "storage_agents": "agents.storage._team",
}


def __getattr__(name: str) -> object:
    """Load a public name from its module on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'agents.storage' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, with the public ones not loaded yet."""
    return [*globals(), *__all__]
