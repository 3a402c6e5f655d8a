"""ΣVAULT: an embedded, encrypted vector store on FAISS for agent memory and retrieval.

Records ``(id, tenant, text, metadata, embedding)`` are compressed with ΣLANG, sealed with AES-256-GCM
under per-tenant data keys (wrapped by a key-encryption key), logged to an fsynced write-ahead log and
indexed in one FAISS index per tenant. Usable on its own::

    from vault import Vault

    with Vault("/var/lib/app/vault") as v:
        v.put("acme", "The invoice is due on Friday.", metadata={"kind": "note"})
        hits = v.search("acme", "when must the bill be paid?", k=3)
"""

from vault.config import CacheConfig, DurabilityConfig, IndexConfig, KeyConfig, VaultConfig
from vault.embedding import MINILM_DIM, Embedder, MiniLMEmbedder, minilm_model_dir
from vault.errors import (
    DecryptionError,
    DimensionMismatchError,
    EmptyTextError,
    InsufficientStorageError,
    IntegrityError,
    KeyEncryptionKeyError,
    RecordNotFoundError,
    RecordTooLargeError,
    TenantNotFoundError,
    VaultClosedError,
    VaultDeadlineError,
    VaultError,
    VaultInputError,
    VaultLockedError,
    VaultStorageError,
)
from vault.log import LogReplica, SealedWrite
from vault.records import JSONScalar, NewRecord, Record, SearchHit, VaultStats
from vault.store import Vault

__all__ = (
    "MINILM_DIM",
    "CacheConfig",
    "DecryptionError",
    "DimensionMismatchError",
    "DurabilityConfig",
    "Embedder",
    "EmptyTextError",
    "IndexConfig",
    "InsufficientStorageError",
    "IntegrityError",
    "JSONScalar",
    "KeyConfig",
    "KeyEncryptionKeyError",
    "LogReplica",
    "MiniLMEmbedder",
    "NewRecord",
    "Record",
    "RecordNotFoundError",
    "RecordTooLargeError",
    "SealedWrite",
    "SearchHit",
    "TenantNotFoundError",
    "Vault",
    "VaultClosedError",
    "VaultConfig",
    "VaultDeadlineError",
    "VaultError",
    "VaultInputError",
    "VaultLockedError",
    "VaultStats",
    "VaultStorageError",
    "minilm_model_dir",
)
