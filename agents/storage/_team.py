"""The Storage team as a whole: its agents' names and one instance of each over a shared bridge."""

from __future__ import annotations

from pathlib import Path

from agents.limits import NATS_MAX_PAYLOAD_BYTES
from agents.storage._admin import IndexerAgent, KeyWardenAgent, SnapshotterAgent, VaultStatsAgent
from agents.storage._base import StorageAgent
from agents.storage._log import RecordLog
from agents.storage._records import ArchivistAgent, EraserAgent, FetcherAgent, RetrieverAgent
from bridges.vault import VaultBridge

__all__ = ("STORAGE_AGENT_NAMES", "storage_agents")

STORAGE_AGENT_NAMES = (
    "archivist",
    "retriever",
    "fetcher",
    "eraser",
    "key-warden",
    "indexer",
    "snapshotter",
    "vault-stats",
)
"""Names of the Storage team's agents (also their queue groups)."""


def storage_agents(
    bridge: VaultBridge,
    *,
    snapshot_dir: Path,
    max_payload_bytes: int = NATS_MAX_PAYLOAD_BYTES,
    log: RecordLog | None = None,
) -> list[StorageAgent]:
    """One instance of each Storage team agent over ``bridge``, in :data:`STORAGE_AGENT_NAMES` order.

    Args:
        bridge: The vault bridge they share.
        snapshot_dir: Where the snapshotter keeps named copies.
        max_payload_bytes: Largest NATS message, in bytes (outputs beyond it are refused).
        log: The replicated record log (``vault_log.mode: jetstream``); ``None``: the vault's file WAL.
    """
    return [
        ArchivistAgent(bridge, max_payload_bytes=max_payload_bytes, log=log),
        RetrieverAgent(bridge, max_payload_bytes=max_payload_bytes, log=log),
        FetcherAgent(bridge, max_payload_bytes=max_payload_bytes, log=log),
        EraserAgent(bridge, max_payload_bytes=max_payload_bytes, log=log),
        KeyWardenAgent(bridge, max_payload_bytes=max_payload_bytes, log=log),
        IndexerAgent(bridge, max_payload_bytes=max_payload_bytes, log=log),
        SnapshotterAgent(bridge, snapshot_dir=snapshot_dir, max_payload_bytes=max_payload_bytes, log=log),
        VaultStatsAgent(bridge, max_payload_bytes=max_payload_bytes, log=log),
    ]
