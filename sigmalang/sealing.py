"""Encryption at rest of a store's RSUs: the `ChunkSealer` hook and per-tenant keyed row ids.

ΣLANG does not hold keys itself. A `sigmalang.DiskRSUStore` given a `ChunkSealer` (the service passes
``bridges.tenant_seal.VaultChunkSealer``: AES-256-GCM with the tenant's vault data key) stores

- each RSU's bytes sealed, with associated data binding the row id (the sealer binds the tenant), so
  a row copied to another id or tenant fails to open; and
- under a **row id** ``BLAKE2b-128(key=K_t, content id)`` instead of the plain content id, where
  ``K_t`` is 32 random bytes per tenant, itself stored sealed in the file: a reader of the file
  cannot tell which tenants hold the same content.

When the tenant's data key is destroyed (the tenant was deleted: crypto-shredded), `ChunkSealer.open`
raises ``LookupError``; the store then forgets the tenant's rows (they can never be opened again) and
reports its RSUs missing.
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol, runtime_checkable

from sigmalang.frame import RSU_ID_BYTES

__all__ = ("ID_KEY_AAD", "ChunkSealer", "new_id_key", "row_aad", "row_id")

ID_KEY_AAD = b"sigma/rsu-id-key/v1"
"""Associated data of a tenant's sealed row-id key."""
_ROW_AAD = b"sigma/rsu/v1/"


@runtime_checkable
class ChunkSealer(Protocol):
    """Seals and opens a tenant's bytes (blocking; called from the store's worker threads)."""

    def seal(self, tenant: str, aad: bytes, data: bytes) -> bytes:
        """Seal ``data`` for ``tenant`` with associated data ``aad``; returns the blob."""
        ...

    def open(self, tenant: str, aad: bytes, blob: bytes) -> bytes:
        """Open a blob made by `seal` with the same tenant and ``aad``.

        Raises:
            LookupError: The tenant's key is gone (crypto-shredded).
            ValueError: The blob does not authenticate (altered, or another tenant's or id's).
        """
        ...


def new_id_key() -> bytes:
    """32 random bytes: a tenant's row-id key."""
    return os.urandom(32)


def row_id(key: bytes, content_id: bytes) -> bytes:
    """A tenant's row id of an RSU: BLAKE2b-128 of its content id keyed with the tenant's id key."""
    return hashlib.blake2b(content_id, digest_size=RSU_ID_BYTES, key=key).digest()


def row_aad(rid: bytes) -> bytes:
    """Associated data of an RSU's sealed bytes: binds its row id."""
    return _ROW_AAD + rid
