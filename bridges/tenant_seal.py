"""An async sealer over a vault's keyring: seals other components' data with the tenant's data key.

Used for durable task records (:class:`orchestrator.Sealer`): the blobs are made by
:mod:`vault.tenant_seal`, so deleting a tenant in the vault crypto-shreds them. Calls run in worker
threads (the vault's lock may be held by a long snapshot or compaction; the event loop never waits on it).
"""

from __future__ import annotations

import functools

import anyio
import anyio.to_thread

from vault import Vault
from vault.tenant_seal import open_for_tenant, seal_for_tenant

__all__ = ("VaultChunkSealer", "VaultSealer")


class VaultSealer:
    """Seals and opens bytes with a tenant's vault data key (AES-256-GCM), off the event loop.

    Args:
        vault: The open vault (not closed by the sealer).
        max_threads: Calls running in threads at once.
    """

    def __init__(self, vault: Vault, *, max_threads: int = 2) -> None:
        self.vault = vault
        self._limiter = anyio.CapacityLimiter(max_threads)

    async def seal(self, tenant: str, plaintext: bytes, *, context: bytes) -> bytes:
        """Seal ``plaintext`` for ``tenant`` (its data key is created on first use).

        Raises:
            vault.VaultClosedError: The vault is closed.
        """
        call = functools.partial(seal_for_tenant, self.vault, tenant, plaintext, context=context)
        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    async def open(self, tenant: str, blob: bytes, *, context: bytes) -> bytes:
        """Open a blob made by :meth:`seal` with the same tenant and context.

        Raises:
            vault.TenantNotFoundError: The tenant's data key is gone (deleted; a ``LookupError``).
            vault.DecryptionError: The blob does not authenticate (a ``ValueError``).
        """
        call = functools.partial(open_for_tenant, self.vault, tenant, blob, context=context)
        return await anyio.to_thread.run_sync(call, limiter=self._limiter)


class VaultChunkSealer:
    """A blocking `sigmalang.sealing.ChunkSealer` over the vault: ΣLANG's RSUs sealed with the tenant's key.

    Called from the ΣLANG bridge's worker threads (the store is blocking). Deleting the tenant in the
    vault crypto-shreds its RSUs: :meth:`open` then raises ``vault.TenantNotFoundError`` (a ``LookupError``).

    Args:
        vault: The open vault (not closed by the sealer).
    """

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def seal(self, tenant: str, aad: bytes, data: bytes) -> bytes:
        """Seal ``data`` for ``tenant``, ``aad`` bound as the blob's context (``len(data) + 32`` bytes)."""
        return seal_for_tenant(self.vault, tenant, data, context=aad)

    def open(self, tenant: str, aad: bytes, blob: bytes) -> bytes:
        """Open a blob made by :meth:`seal` with the same tenant and ``aad``.

        Raises:
            vault.TenantNotFoundError: The tenant's data key is gone (a ``LookupError``).
            vault.DecryptionError: The blob does not authenticate (a ``ValueError``).
        """
        return open_for_tenant(self.vault, tenant, blob, context=aad)
