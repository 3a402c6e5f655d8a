"""Seal and open other components' bytes with a tenant's vault data key (encryption at rest elsewhere).

Other state derived from a tenant (durable task inputs and results, for instance) is sealed with the same
per-tenant AES-256-GCM data key as the tenant's records, so :meth:`Vault.delete_tenant` crypto-shreds it
too: once the tenant's data keys are destroyed, no blob sealed here can be opened again, wherever it is
stored. Blob layout and nonce policy are those of the records (``vault._private.sealing``)::

    key_version u32 | nonce (12 bytes, random) | ciphertext || tag (16 bytes)

The associated data binds the tenant, the caller's ``context`` (e.g. ``b"task/<id>"``: a blob moved to
another object fails to open) and the key version. Both functions take the vault's lock (the keyring is
not thread-safe) and are cheap (microseconds of AES-GCM); the first seal for a new tenant creates and
persists its data key.
"""

from __future__ import annotations

import struct

from vault._private.sealing import InvalidTag, blob_key_version, open_blob, seal
from vault.errors import DecryptionError, TenantNotFoundError
from vault.store import Vault

__all__ = ("open_for_tenant", "seal_for_tenant")

_PREFIX = b"svault/tenant-blob/v1"


def _aad(tenant: str, context: bytes, version: int) -> bytes:
    raw = tenant.encode()
    return (
        _PREFIX
        + struct.pack(">I", len(raw))
        + raw
        + struct.pack(">I", len(context))
        + context
        + struct.pack(">I", version)
    )


def seal_for_tenant(vault: Vault, tenant: str, plaintext: bytes, *, context: bytes) -> bytes:
    """Seal ``plaintext`` under the tenant's active data key (created if the tenant has none yet).

    Args:
        vault: The open vault whose keyring holds the tenant's data keys.
        tenant: Tenant the bytes belong to.
        plaintext: Bytes to seal.
        context: What the blob is (bound as associated data; pass the same to :func:`open_for_tenant`).

    Returns:
        The sealed blob (``len(plaintext) + 32`` bytes).

    Raises:
        VaultClosedError: The vault is closed.
    """
    with vault._lock:
        version, key = vault._open().keys.active(tenant, create=True)
    return seal(key, version, plaintext, _aad(tenant, context, version))


def open_for_tenant(vault: Vault, tenant: str, blob: bytes, *, context: bytes) -> bytes:
    """Authenticate and decrypt a blob made by :func:`seal_for_tenant`.

    Raises:
        TenantNotFoundError: The tenant's data key is gone (the tenant was deleted: crypto-shredded).
        DecryptionError: The blob was altered, or made for another tenant or context.
        VaultClosedError: The vault is closed.
    """
    where = vault.data_dir / "keyring.json"
    try:
        version = blob_key_version(blob)
    except InvalidTag:
        raise DecryptionError(where, "sealed blob is too short", tenant=tenant) from None
    with vault._lock:
        keys = vault._open().keys
        key = keys.key(tenant, version)
        if key is None:
            if keys.is_destroyed(version) or not keys.has_tenant(tenant):
                raise TenantNotFoundError(tenant)
            raise DecryptionError(where, f"no data key {version} for this tenant", tenant=tenant)
    try:
        return open_blob(key, blob, _aad(tenant, context, version))
    except InvalidTag:
        raise DecryptionError(where, "sealed blob does not authenticate", tenant=tenant) from None
