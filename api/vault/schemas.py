"""Request and response bodies of the ΣVAULT routes (``/v1/vault/*``), shared with the Python SDK.

Pure pydantic: importing this module imports neither the web framework nor the vault engine.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = (
    "MAX_K",
    "MAX_RECORDS_PER_REQUEST",
    "SNAPSHOT_NAME_PATTERN",
    "DeleteResponse",
    "IndexResponse",
    "RecordIn",
    "RecordResponse",
    "RotateRequest",
    "RotateResponse",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "SnapshotInfo",
    "SnapshotRequest",
    "SnapshotResponse",
    "StatsResponse",
    "UpsertRequest",
    "UpsertResponse",
)

MAX_K = 1000
"""Largest ``k`` of a search (count)."""
MAX_RECORDS_PER_REQUEST = 4096
"""Most records in one upsert request (the vault's default ``max_batch``; the service may set less)."""
SNAPSHOT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""1-64 characters of letters, digits, ``_ . -``, starting with a letter or digit."""

JSONScalar = str | int | float | bool | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordIn(_Body):
    """One record to store (upsert: an existing id is replaced)."""

    id: str | None = Field(default=None, min_length=1, max_length=256, pattern=r"^[^/\x00]+$")
    """Caller-chosen id (no ``/``, 1-256 characters); generated when absent."""
    text: str = Field(min_length=1)
    """Text to store and embed (all-MiniLM-L6-v2, unless ``vector`` is given)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """JSON object; top-level keys can be filtered on with equality."""
    vector: list[float] | None = None
    """Precomputed embedding of the vault's dimension (384); normalised before storing."""


class UpsertRequest(_Body):
    """Body of ``POST /v1/vault/records``."""

    records: list[RecordIn] = Field(min_length=1, max_length=MAX_RECORDS_PER_REQUEST)


class UpsertResponse(_Body):
    """Ids of the stored records, in input order."""

    ids: list[str]
    count: int


class RecordResponse(_Body):
    """Body of ``GET /v1/vault/records/{id}``: the decrypted record."""

    id: str
    tenant: str
    text: str
    metadata: dict[str, Any]
    vector: list[float] | None = None
    """The stored unit vector, with ``?with_vector=true``."""


class SearchRequest(_Body):
    """Body of ``POST /v1/vault/search``: give ``query`` (text) or ``vector``, not both."""

    query: str | None = Field(default=None, min_length=1)
    vector: list[float] | None = None
    k: int = Field(default=10, ge=1, le=MAX_K)
    """Results wanted (count)."""
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0)
    """Drop hits with a cosine similarity below this."""
    filters: dict[str, JSONScalar] = Field(default_factory=dict)
    """Metadata equality filters (every key present with an equal value; ``true`` never equals ``1``)."""


class SearchHit(_Body):
    """One hit."""

    id: str
    score: float
    """Cosine similarity to the query, in [-1, 1]."""
    text: str
    metadata: dict[str, Any]


class SearchResponse(_Body):
    """Hits, best first."""

    hits: list[SearchHit]


class DeleteResponse(_Body):
    """What was deleted."""

    deleted: Literal["record", "tenant"]
    id: str | None = None
    tenant: str


class RotateRequest(_Body):
    """Body of ``POST /v1/vault/keys/rotate`` (optional)."""

    scope: Literal["kek", "data_key"] = "kek"
    """``kek``: re-wrap every data key under a new key-encryption key (records are not rewritten);
    ``data_key``: a new data key for the tenant's new writes."""


class RotateResponse(_Body):
    """Result of a rotation."""

    scope: Literal["kek", "data_key"]
    kek_id: str | None = None
    """Public fingerprint of the new KEK (never the key)."""
    tenant: str | None = None
    key_version: int | None = None


class IndexResponse(_Body):
    """Body of ``POST /v1/vault/compact``."""

    op: Literal["compact", "status"]
    tenant: str
    index_kind: str | None
    records: int
    tombstones: int
    tombstones_removed: int
    snapshot_generation: int


class SnapshotRequest(_Body):
    """Body of ``POST /v1/vault/snapshots`` (optional)."""

    name: str | None = Field(default=None, pattern=SNAPSHOT_NAME_PATTERN)
    """Name of the copy; a UTC timestamp when absent."""


class SnapshotInfo(_Body):
    """A stored snapshot copy."""

    name: str
    created_at: float
    """Unix time, in seconds."""


class SnapshotResponse(_Body):
    """Result of a snapshot, restore or listing."""

    op: Literal["snapshot", "restore", "list"]
    name: str | None = None
    generation: int | None = None
    snapshots: list[SnapshotInfo] = Field(default_factory=list)


class StatsResponse(_Body):
    """Body of ``GET /v1/vault/stats``: vault counters, seen from the caller's tenant."""

    tenant: str
    tenant_records: int
    index_kind: str | None
    """``flat`` or ``hnsw`` for the tenant; ``None`` before its first write."""
    tenants: int
    records: int
    tombstones: int
    l1_hits: int
    l1_misses: int
    hit_ratio: float
    """Decrypted-LRU hits / record reads; 0.0 before any read."""
    l1_bytes: int
    l1_entries: int
    wal_entries: int
    wal_bytes: int
    snapshot_generation: int
    gpu: bool
