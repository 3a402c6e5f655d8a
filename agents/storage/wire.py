"""Inputs and outputs of the Storage team's agents, as they travel over NATS (JSON).

Pure pydantic, importing nothing of the project: the API builds these payloads and reads these outputs.
Every input model forbids unknown fields, so a typo is refused with its name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = (
    "MAX_EMBED_TEXTS",
    "MAX_ID_CHARS",
    "MAX_K",
    "NAME_PATTERN",
    "ArchiveInput",
    "ArchiveOutput",
    "CacheInput",
    "EmbedInput",
    "EmbedOutput",
    "EraseInput",
    "EraseOutput",
    "FetchInput",
    "HitOut",
    "IndexInput",
    "IndexOutput",
    "JSONScalar",
    "KeyInput",
    "KeyOutput",
    "RecordIn",
    "RecordOut",
    "RetrieveInput",
    "RetrieveOutput",
    "SnapshotInput",
    "SnapshotOut",
    "SnapshotOutput",
    "StatsOutput",
)

MAX_K = 1000
"""Largest ``k`` of a search (count)."""
MAX_EMBED_TEXTS = 256
"""Most texts in one ``embedder`` call (count)."""
MAX_ID_CHARS = 256
"""Longest record id, in characters (the vault's limit)."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Snapshot names: 1-64 characters of letters, digits, ``_ . -``, starting with a letter or digit."""

JSONScalar = str | int | float | bool | None


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordIn(_Wire):
    """One record to store."""

    id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    """Caller-chosen id; generated when absent. An existing id is replaced (upsert)."""
    text: str = Field(min_length=1)
    """The text to store and (unless ``vector`` is given) embed with all-MiniLM-L6-v2."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """JSON object; its top-level keys can be filtered on with equality."""
    vector: list[float] | None = None
    """Precomputed embedding, ``dim`` floats (384 for all-MiniLM-L6-v2); normalised before storing."""


class ArchiveInput(_Wire):
    """Input of ``archivist``: a batch upsert."""

    records: list[RecordIn] = Field(min_length=1)


class ArchiveOutput(_Wire):
    """Output of ``archivist``."""

    ids: list[str]
    """Ids of the stored records, in input order."""
    count: int
    sequence: int | None = None
    """Sequence of the write in the replicated record log (with ``vault_log.mode: jetstream``; ``None``
    with the embedded file WAL). Pass it as ``after_sequence`` to a read on any replica to see the write."""


class RetrieveInput(_Wire):
    """Input of ``retriever``: give ``query`` (text) or ``vector``, not both."""

    query: str | None = Field(default=None, min_length=1)
    vector: list[float] | None = None
    k: int = Field(default=10, ge=1, le=MAX_K)
    """Results wanted (count)."""
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0)
    """Drop hits whose cosine similarity is below this."""
    filters: dict[str, JSONScalar] = Field(default_factory=dict)
    """Metadata equality filters: every key must be present with an equal value."""
    after_sequence: int | None = Field(default=None, ge=0)
    """Sequence a write returned: a Storage replica that has not applied it yet waits for it (bounded),
    then answers 503 (retry). Ignored with the embedded file WAL."""


class HitOut(_Wire):
    """One search hit."""

    id: str
    score: float
    """Cosine similarity to the query, in [-1, 1]."""
    text: str
    metadata: dict[str, Any]


class RetrieveOutput(_Wire):
    """Output of ``retriever``: hits, best first."""

    hits: list[HitOut]


class FetchInput(_Wire):
    """Input of ``fetcher``."""

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    with_vector: bool = False
    """Also return the stored (normalised) embedding."""
    after_sequence: int | None = Field(default=None, ge=0)
    """Sequence a write returned: a Storage replica that has not applied it yet waits for it (bounded),
    then answers 503 (retry). Ignored with the embedded file WAL."""


class RecordOut(_Wire):
    """Output of ``fetcher``: one decrypted record."""

    id: str
    tenant: str
    text: str
    metadata: dict[str, Any]
    vector: list[float] | None = None


class EraseInput(_Wire):
    """Input of ``eraser``: a record ``id``, or ``tenant`` (the caller's own) to crypto-shred."""

    id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    tenant: str | None = Field(default=None, min_length=1)
    after_sequence: int | None = Field(default=None, ge=0)
    """Sequence a write returned: a Storage replica that has not applied it yet waits for it (bounded),
    then answers 503 (retry). Ignored with the embedded file WAL."""


class EraseOutput(_Wire):
    """Output of ``eraser``."""

    deleted: Literal["record", "tenant"]
    id: str | None = None
    tenant: str
    sequence: int | None = None
    """Sequence of the write in the replicated record log (with ``vault_log.mode: jetstream``; ``None``
    with the embedded file WAL). Pass it as ``after_sequence`` to a read on any replica to see the write."""


class KeyInput(_Wire):
    """Input of ``key-warden``."""

    scope: Literal["kek", "data_key"] = "kek"
    """``kek``: re-wrap every data key under a new key-encryption key (records untouched);
    ``data_key``: a new data key for the caller's tenant (new writes use it; old records still decrypt)."""


class KeyOutput(_Wire):
    """Output of ``key-warden``."""

    scope: Literal["kek", "data_key"]
    kek_id: str | None = None
    """Public fingerprint of the new KEK (never the key)."""
    tenant: str | None = None
    key_version: int | None = None


class IndexInput(_Wire):
    """Input of ``indexer``."""

    op: Literal["compact", "status"] = "compact"
    """``compact``: drop every tombstone (rewrite segments, rebuild indexes) and snapshot;
    ``status``: report the caller's index."""


class IndexOutput(_Wire):
    """Output of ``indexer``."""

    op: Literal["compact", "status"]
    tenant: str
    index_kind: str | None
    """``flat`` or ``hnsw`` for the caller's tenant; ``None`` when it has no index."""
    records: int
    """Live records of the caller's tenant."""
    tombstones: int
    """Tombstones left in all indexes."""
    tombstones_removed: int = 0
    snapshot_generation: int


class SnapshotInput(_Wire):
    """Input of ``snapshotter``."""

    op: Literal["snapshot", "restore", "list"] = "snapshot"
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    """Snapshot name: optional for ``snapshot`` (a timestamp), required for ``restore``."""


class SnapshotOut(_Wire):
    """A stored snapshot copy."""

    name: str
    created_at: float
    """Unix time, in seconds."""


class SnapshotOutput(_Wire):
    """Output of ``snapshotter``."""

    op: Literal["snapshot", "restore", "list"]
    name: str | None = None
    generation: int | None = None
    snapshots: list[SnapshotOut] = Field(default_factory=list)


class CacheInput(_Wire):
    """Input of ``vault-stats`` (no fields)."""


class StatsOutput(_Wire):
    """Output of ``vault-stats``: the vault's counters, seen from the caller's tenant."""

    tenant: str
    tenant_records: int
    index_kind: str | None
    tenants: int
    records: int
    tombstones: int
    l1_hits: int
    l1_misses: int
    hit_ratio: float
    """L1 (decrypted LRU) hits / record reads; 0.0 before any read."""
    l1_bytes: int
    l1_entries: int
    wal_entries: int
    wal_bytes: int
    snapshot_generation: int
    gpu: bool


class EmbedInput(_Wire):
    """Input of ``embedder``: texts to turn into vectors (nothing is stored)."""

    texts: list[str] = Field(default_factory=list, max_length=MAX_EMBED_TEXTS)
    """Non-empty strings; longer than 256 tokens are truncated by the model (see ``truncate``)."""
    token_ids: list[list[int]] | None = Field(default=None, max_length=MAX_EMBED_TEXTS)
    """Instead of ``texts``: WordPiece token ids of the embedding model's vocabulary, one list per input."""
    truncate: bool = True
    """False: an input over the model's window is refused (``context_length_exceeded``) instead of cut."""


class EmbedOutput(_Wire):
    """Output of ``embedder``."""

    model: str
    """The embedding model (``all-MiniLM-L6-v2``)."""
    dim: int
    """Vector dimension (384)."""
    vectors: list[list[float]]
    """One L2-normalised vector per text, in input order."""
    tokens: list[int]
    """Tokens the model read per text (special tokens included, after truncation)."""
