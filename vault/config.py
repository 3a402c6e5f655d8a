"""Configuration of a ΣVAULT instance: frozen pydantic models, one per component.

The data directory is not part of the configuration: the caller passes it to :class:`vault.Vault`
(the service passes ``$XDG_STATE_HOME/neurectomy/vault``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ("CacheConfig", "DurabilityConfig", "IndexConfig", "KeyConfig", "VaultConfig")


class IndexConfig(BaseModel):
    """FAISS index per tenant: exact flat search while small, HNSW beyond a threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hnsw_threshold: int = Field(default=20_000, ge=1)
    """Number of live vectors (count) at which a tenant's index switches from flat to HNSW."""
    hnsw_m: int = Field(default=32, ge=4, le=128)
    """HNSW graph degree M (links per node)."""
    hnsw_ef_construction: int = Field(default=80, ge=8)
    """HNSW efConstruction: candidate list size while building (count)."""
    hnsw_ef_search: int = Field(default=64, ge=8)
    """HNSW efSearch: candidate list size while searching (count); raised to k when k is larger."""
    filter_overfetch: int = Field(default=4, ge=1)
    """Initial over-fetch factor when a search has metadata filters (candidates = k x factor)."""
    compact_tombstone_ratio: float = Field(default=0.25, gt=0.0, le=1.0)
    """Rebuild a tenant's index and segment once tombstones exceed this fraction of its vectors."""
    use_gpu: bool = True
    """Move indexes to GPU 0 when ``faiss.get_num_gpus() > 0``; falls back to CPU on any error."""
    max_pending_vectors: int = Field(default=16_384, ge=1)
    """Most vectors (count) waiting to be added to one tenant's index (``dim x 4`` bytes each: 24 MiB at
    384-d); 4 times as many while a snapshot freezes the index. A ``put_many`` that would pass it first
    moves the vectors it brings past it (at most its own count) into the index itself, outside the
    vault's lock; past the frozen allowance it waits for the snapshot (no longer than its deadline). A
    batch is let in whole once nothing waits, whatever its size. The default keeps the exact search over
    the waiting vectors around 1 ms (measured: 16,384 x 384-d, one core, numpy matrix-vector product +
    top-10)."""


class CacheConfig(BaseModel):
    """Tier 1 of the record cache: decrypted records in an LRU bounded in bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    l1_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    """Upper bound of the decrypted-record LRU, in bytes (text + metadata + embedding); 0 disables it."""


class DurabilityConfig(BaseModel):
    """Write-ahead log and snapshots."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fsync: bool = True
    """fsync the write-ahead log before a write returns. Turning it off loses acknowledged writes on a
    power cut (not on a process crash); only benchmarks should turn it off."""
    snapshot_every_writes: int = Field(default=50_000, ge=1)
    """Take a snapshot (and start a new, empty WAL) after this many WAL entries (count)."""
    snapshot_on_close: bool = True
    """Take a snapshot when the vault is closed (unless nothing changed), so the next open replays
    nothing."""
    idempotency_keys: int = Field(default=10_000, ge=0)
    """Idempotency keys remembered per tenant (count; oldest forgotten first): a write retried with a
    remembered key returns the first call's result and writes nothing."""


class KeyConfig(BaseModel):
    """Where the key-encryption key (KEK) comes from; never from inside the data directory by default.

    In order: the environment variable ``kek_env`` when it is set (32 bytes, base64); else ``kek_file``
    when given (e.g. a mounted secret); else the per-vault key file ``<kek_dir>/<vault id>.key``, created
    with mode 0600 on first run (``kek_dir`` defaults to ``$XDG_CONFIG_HOME/neurectomy/vault-keys``). Back
    that file up apart from the data: without it nothing in the vault decrypts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kek_env: str = "NEURECTOMY_VAULT_KEK"
    """Environment variable holding the base64 KEK (32 bytes decoded); ignored when unset."""
    kek_file: Path | None = None
    """Path of the KEK file (e.g. a mounted secret); ``None`` means the per-vault file in ``kek_dir``."""
    kek_dir: Path | None = None
    """Directory of per-vault KEK files; ``None`` means ``$XDG_CONFIG_HOME/neurectomy/vault-keys``."""
    allow_kek_in_data_dir: bool = False
    """Accept a KEK file inside the data directory (a copy of the directory then decrypts everything)."""


class VaultConfig(BaseModel):
    """Root configuration of a :class:`vault.Vault`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_record_bytes: int = Field(default=1024 * 1024, ge=1)
    """Largest accepted record: UTF-8 text plus JSON-serialised metadata, in bytes."""
    max_batch: int = Field(default=4096, ge=1)
    """Largest number of records accepted by one ``put_many`` call (count)."""
    embed_batch_size: int = Field(default=64, ge=1)
    """Texts per embedder call (count)."""
    embed_threads: int | None = Field(default=1, ge=1)
    """Torch threads of the embedder (process-wide; ``None``: all cores). 1 by default: the service's
    LLM decode uses the cores, and torch's spinning threads would fight it (see ``MiniLMEmbedder``)."""
    index: IndexConfig = IndexConfig()
    """FAISS index settings."""
    cache: CacheConfig = CacheConfig()
    """Record cache settings."""
    durability: DurabilityConfig = DurabilityConfig()
    """Write-ahead log and snapshot settings."""
    keys: KeyConfig = KeyConfig()
    """Key-encryption key source."""
