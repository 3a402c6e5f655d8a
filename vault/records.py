"""Value types the vault accepts and returns: records, search hits and statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = ("JSONScalar", "NewRecord", "Record", "SearchHit", "VaultStats")

JSONScalar: TypeAlias = str | int | float | bool | None
"""A metadata value that equality filters can match."""


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A record to store with :meth:`vault.Vault.put_many`.

    Attributes:
        text: The text to store and (unless ``embedding`` is given) embed. Must not be empty.
        metadata: JSON-serialisable mapping with string keys; top-level keys can be filtered on.
        id: Caller-chosen record id (1-256 characters); a random one is generated when ``None``.
            Storing an existing id replaces that record.
        embedding: Optional precomputed vector, shape ``(dim,)`` float32 (``dim`` = the embedder's, 384
            for all-MiniLM-L6-v2). It is L2-normalised before it is stored.
    """

    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    embedding: NDArray[np.float32] | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A stored record as returned by fetch and search.

    Attributes:
        id: Record id.
        tenant: Tenant the record belongs to.
        text: The stored text.
        metadata: The stored metadata (a fresh ``dict`` per call).
        embedding: L2-normalised vector, shape ``(dim,)`` float32.
    """

    id: str
    tenant: str
    text: str
    metadata: dict[str, Any]
    embedding: NDArray[np.float32]

    def nbytes(self) -> int:
        """Approximate memory held by the record, in bytes (used by the cache's byte bound)."""
        meta = sum(len(str(k)) + len(str(v)) for k, v in self.metadata.items())
        return len(self.text.encode()) + meta + int(self.embedding.nbytes) + len(self.id) + 200


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result.

    Attributes:
        record: The matching record, decrypted.
        score: Cosine similarity to the query (inner product of unit vectors), in [-1, 1].
    """

    record: Record
    score: float


@dataclass(frozen=True, slots=True)
class VaultStats:
    """Counters reported by :meth:`vault.Vault.stats`.

    Attributes:
        tenants: Number of tenants with a live data key.
        records: Live records across tenants.
        tombstones: Deleted vectors still in the indexes (until compaction).
        l1_hits: Record reads served from the decrypted LRU.
        l1_misses: Record reads that had to read and decrypt a sealed record from disk (tier 2).
        hit_ratio: ``l1_hits / (l1_hits + l1_misses)``, 0.0 before any read.
        l1_bytes: Bytes currently held by the decrypted LRU.
        l1_entries: Records currently held by the decrypted LRU.
        wal_entries: Entries in the write-ahead log since the last snapshot.
        wal_bytes: Size of the write-ahead log since the last snapshot, in bytes.
        snapshot_generation: Generation number of the latest snapshot (0 before the first).
        index_kinds: Index type per tenant (``"flat"`` or ``"hnsw"``).
        gpu: Whether indexes live on a GPU.
        pending_vectors: Vectors waiting to be added to their tenant's index, the most of any tenant
            (count; bounded by ``index.max_pending_vectors`` for writes through ``put_many``).
    """

    tenants: int
    records: int
    tombstones: int
    l1_hits: int
    l1_misses: int
    hit_ratio: float
    l1_bytes: int
    l1_entries: int
    wal_entries: int
    wal_bytes: int
    snapshot_generation: int
    index_kinds: Mapping[str, str]
    gpu: bool
    pending_vectors: int = 0
