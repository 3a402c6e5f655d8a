"""The record log's shared keyring: tenants' data keys in the KV bucket ``vault_keyring``, set by CAS.

Part of :mod:`agents.storage._log`: the base of :class:`~agents.storage._log.RecordLog`. The first replica
to ``create`` a tenant's key wins and the others install the winner; key versions come from a CAS counter
in the same bucket, unique cluster-wide; a data-key rotation is a CAS update of the tenant's keys.
"""

from __future__ import annotations

import functools
import json

from agents.errors import AgentBusyError, NotFoundError
from agents.jetstream import KeyValueBucket, KvEntry
from agents.storage._log_config import tenant_subject
from bridges.vault import VaultBridge
from vault import LogReplica, TenantNotFoundError, VaultInputError

__all__ = ("SharedKeyring",)

_VERSION_KEY = "next-version"
_CAS_ROUNDS = 32


class SharedKeyring:
    """Install, create and rotate the shared data keys (mixed into :class:`~agents.storage._log.RecordLog`).

    The record log sets these attributes in its ``__init__``.
    """

    bridge: VaultBridge
    replica: LogReplica
    _keys: KeyValueBucket | None
    _revisions: dict[str, int]

    @property
    def keys(self) -> KeyValueBucket:
        """The keyring bucket (after :meth:`open`)."""
        if self._keys is None:
            raise RuntimeError("RecordLog.open() was not called")
        return self._keys

    async def _install_keys_for(self, data: bytes) -> None:
        """Install from the keyring bucket the data keys a message needs that this replica lacks."""
        needed = await self.bridge.offload("log_keys", functools.partial(self.replica.key_versions, data))
        for tenant, version in needed:
            if self.replica.has_key(tenant, version):
                continue
            entry = await self._entry(tenant)
            if entry is not None:
                await self._install(tenant, entry)
            if not self.replica.has_key(tenant, version):  # the bucket no longer holds it: shredded
                await self.bridge.offload(
                    "log_keys", functools.partial(self.replica.forget_key_versions, {version})
                )

    # ----------------------------------------------------------------- keyring
    def _key_name(self, tenant: str) -> str:
        return "tenant." + tenant_subject("", tenant).lstrip(".")

    async def _entry(self, tenant: str) -> KvEntry | None:
        try:
            return await self.keys.get(self._key_name(tenant))
        except NotFoundError:
            return None

    async def _install(self, tenant: str, entry: KvEntry) -> None:
        if self._revisions.get(tenant) != entry.revision:
            await self.bridge.offload(
                "log_keys", functools.partial(self.replica.install_tenant_keys, tenant, entry.value)
            )
            self._revisions[tenant] = entry.revision

    async def _next_version(self) -> int:
        """A data-key version no replica has used (a CAS counter in the keyring bucket)."""
        for _ in range(_CAS_ROUNDS):
            try:
                entry = await self.keys.get(_VERSION_KEY)
            except NotFoundError:
                if await self.keys.create(_VERSION_KEY, b"2") is not None:
                    return 1
                continue
            version = int(entry.value)
            if await self.keys.update(_VERSION_KEY, str(version + 1).encode(), revision=entry.revision):
                return version
        raise AgentBusyError("the vault keyring's version counter is contended; retry")

    async def _new_key(self, tenant: str, current: KvEntry | None) -> bytes:
        while True:
            version = await self._next_version()
            try:
                return await self.bridge.offload(
                    "log_keys",
                    functools.partial(
                        self.replica.new_tenant_key,
                        tenant,
                        version,
                        None if current is None else current.value,
                    ),
                )
            except VaultInputError:  # used by this vault before it joined the cluster: take the next
                continue

    async def ensure_key(self, tenant: str) -> None:
        """Install the tenant's shared data keys, creating them (CAS: one winner) on its first write."""
        entry = await self._entry(tenant)
        if entry is None:
            document = await self._new_key(tenant, None)
            revision = await self.keys.create(self._key_name(tenant), document)
            entry = (
                KvEntry(self._key_name(tenant), document, revision) if revision else await self._entry(tenant)
            )
            if entry is None:
                raise AgentBusyError("the tenant's data key was created and shredded meanwhile; retry")
        await self._install(tenant, entry)

    async def rotate_data_key(self, tenant: str) -> int:
        """A new active data key for ``tenant`` in the keyring bucket (CAS); returns its version.

        Raises:
            TenantNotFoundError: The tenant has no data key.
        """
        for _ in range(_CAS_ROUNDS):
            entry = await self._entry(tenant)
            if entry is None:
                raise TenantNotFoundError(tenant)
            document = await self._new_key(tenant, entry)
            revision = await self.keys.update(self._key_name(tenant), document, revision=entry.revision)
            if revision is not None:
                await self._install(tenant, KvEntry(entry.key, document, revision))
                return int(json.loads(document)["active"])
        raise AgentBusyError("the tenant's keys are contended; retry")
