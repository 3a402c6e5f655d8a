"""``client.vault``: the ΣVAULT part of the SDK (records, search, shredding, keys, stats, snapshots).

::

    with Client() as client:
        ids = client.vault.upsert([{"id": "n1", "text": "The invoice is due on Friday."}])
        hits = client.vault.search("when must the bill be paid?", k=3)
        acme = client.vault.with_tenant("acme")      # or tenant="acme" on any call
        acme.add("Globex owes us money.", metadata={"kind": "note"})

The tenant goes in the ``X-Neurectomy-Tenant`` header (the server's ``default`` when none is given).

Read-your-writes on a cluster (the server's ``vault_log.mode: jetstream``): each write answers the
``sequence`` of its record-log message; the resource remembers the highest it has seen
(:attr:`VaultResource.last_sequence`, shared with its ``with_tenant`` copies) and sends it as
``after_sequence`` with reads, so whichever Storage replica answers has applied this client's writes. Pass
``after_sequence=`` to read another client's write.

The request bodies, paths and the resources' shared base are in :mod:`neurectomy.sdk._vault_requests`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from api.vault.schemas import (
    DeleteResponse,
    IndexResponse,
    RecordResponse,
    RotateRequest,
    RotateResponse,
    SearchHit,
    SearchResponse,
    SnapshotRequest,
    SnapshotResponse,
    StatsResponse,
    UpsertResponse,
)
from neurectomy.sdk._send import AsyncSend, Send
from neurectomy.sdk._vault_requests import (
    TENANT_HEADER,
    RecordLike,
    _Base,
    _record_path,
    _search_body,
    _Session,
    _upsert_body,
)
from neurectomy.sdk._wire import _validated

__all__ = ("AsyncVaultResource", "VaultResource")


class VaultResource(_Base):
    """ΣVAULT calls of a :class:`~neurectomy.Client` (``client.vault``).

    Every method takes ``tenant=`` to override the resource's tenant for one call. Errors: the SDK's
    typed :class:`~neurectomy.APIError` subclasses, e.g. :class:`~neurectomy.BadRequestError` (400,
    ``field`` names the input), :class:`~neurectomy.NotFoundError` (404),
    :class:`~neurectomy.TooLargeError` (413, the message states the limit).

    Args:
        client: The client whose connection pool is used.
        tenant: Default tenant of this resource (``None``: the server's ``default``).
    """

    def __init__(self, send: Send, tenant: str | None = None, session: _Session | None = None) -> None:
        super().__init__(tenant, session)
        self._send = send

    def with_tenant(self, tenant: str) -> VaultResource:
        """A resource on the same client whose calls run in ``tenant``."""
        return VaultResource(self._send, tenant, self._session)

    def upsert(self, records: Iterable[RecordLike], *, tenant: str | None = None) -> list[str]:
        """Store records (``{"id"?, "text", "metadata"?, "vector"?}``; an existing id is replaced).

        Returns:
            Record ids in input order (generated where no id was given).

        Raises:
            BadRequestError: Empty text, wrong vector dimension, too many records (``field`` names it).
            TooLargeError: A record over the server's ``max_record_bytes``, or the batch over a NATS message.
        """
        body = _upsert_body(records)
        response = self._send("POST", "/v1/vault/records", json=body, headers=self._headers(tenant))
        out = UpsertResponse.model_validate_json(response.content)
        self._seen(out.sequence)
        return out.ids

    def add(
        self,
        text: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,  # noqa: A002 - the record field is called id
        vector: Sequence[float] | None = None,
        tenant: str | None = None,
    ) -> str:
        """Store one record; returns its id. See :meth:`upsert`."""
        record = {"id": id, "text": text, "metadata": dict(metadata or {}), "vector": vector}
        return self.upsert([record], tenant=tenant)[0]

    def get(
        self,
        record_id: str,
        *,
        with_vector: bool = False,
        tenant: str | None = None,
        after_sequence: int | None = None,
    ) -> RecordResponse:
        """Fetch one decrypted record (``with_vector``: also its stored unit vector).

        ``after_sequence``: see the module docstring (default: :attr:`last_sequence`).

        Raises:
            NotFoundError: The tenant has no record with this id.
            UnavailableError: The replica did not apply ``after_sequence`` in time (503; retry).
        """
        params = self._get_params(with_vector, after_sequence)
        response = self._send("GET", _record_path(record_id), params=params, headers=self._headers(tenant))
        return RecordResponse.model_validate_json(response.content)

    def delete(
        self, record_id: str, *, tenant: str | None = None, after_sequence: int | None = None
    ) -> DeleteResponse:
        """Delete one record (``after_sequence``: as for :meth:`get`).

        Raises:
            NotFoundError: The tenant has no record with this id.
        """
        params = self._get_params(False, after_sequence)
        response = self._send("DELETE", _record_path(record_id), params=params, headers=self._headers(tenant))
        out = DeleteResponse.model_validate_json(response.content)
        self._seen(out.sequence)
        return out

    def search(
        self,
        query: str | None = None,
        *,
        vector: Sequence[float] | None = None,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        min_score: float | None = None,
        tenant: str | None = None,
        after_sequence: int | None = None,
    ) -> list[SearchHit]:
        """Nearest records to a text ``query`` or a ``vector`` (cosine similarity), best first.

        Args:
            query: Text to embed on the server.
            vector: Or a vector of the vault's dimension (384).
            k: Hits wanted (1-1000).
            filters: Metadata equality filters.
            min_score: Drop hits with a lower cosine similarity.
            tenant: Tenant of this call.
            after_sequence: See the module docstring (default: :attr:`last_sequence`).

        Raises:
            BadRequestError: Neither or both of ``query`` and ``vector``, bad ``k``, wrong dimension.
        """
        body = _search_body(query, vector, k, filters, min_score, self._after(after_sequence))
        response = self._send("POST", "/v1/vault/search", json=body, headers=self._headers(tenant))
        return SearchResponse.model_validate_json(response.content).hits

    def delete_tenant(self, tenant: str | None = None) -> DeleteResponse:
        """Crypto-shred ``tenant`` (default: the resource's tenant, else ``default``).

        Raises:
            NotFoundError: The tenant has nothing stored.
        """
        name = tenant or self.tenant or "default"
        response = self._send(
            "DELETE", f"/v1/vault/tenants/{quote(name, safe='')}", headers={TENANT_HEADER: name}
        )
        return DeleteResponse.model_validate_json(response.content)

    def rotate_keys(self, scope: str = "kek", *, tenant: str | None = None) -> RotateResponse:
        """Rotate the key-encryption key (``kek``) or the tenant's data key (``data_key``)."""
        body = _validated(RotateRequest, {"scope": scope}).model_dump()
        response = self._send("POST", "/v1/vault/keys/rotate", json=body, headers=self._headers(tenant))
        return RotateResponse.model_validate_json(response.content)

    def stats(self, *, tenant: str | None = None) -> StatsResponse:
        """Vault counters: the tenant's records, all records, tombstones, cache hit ratio, WAL."""
        response = self._send("GET", "/v1/vault/stats", headers=self._headers(tenant))
        return StatsResponse.model_validate_json(response.content)

    def compact(self) -> IndexResponse:
        """Drop tombstones everywhere (rewrite segments, rebuild indexes), then snapshot."""
        response = self._send("POST", "/v1/vault/compact", headers=self._headers(None))
        return IndexResponse.model_validate_json(response.content)

    def snapshot(self, name: str | None = None) -> SnapshotResponse:
        """Take an encrypted snapshot of the whole vault and keep a copy named ``name``."""
        body = _validated(SnapshotRequest, {"name": name}).model_dump(exclude_none=True)
        response = self._send("POST", "/v1/vault/snapshots", json=body, headers=self._headers(None))
        return SnapshotResponse.model_validate_json(response.content)

    def snapshots(self) -> SnapshotResponse:
        """The snapshot copies, oldest first (in ``.snapshots``)."""
        response = self._send("GET", "/v1/vault/snapshots", headers=self._headers(None))
        return SnapshotResponse.model_validate_json(response.content)

    def restore(self, name: str) -> SnapshotResponse:
        """Replace the whole vault with the snapshot copy ``name``."""
        path = f"/v1/vault/snapshots/{quote(name, safe='')}/restore"
        response = self._send("POST", path, headers=self._headers(None))
        return SnapshotResponse.model_validate_json(response.content)


class AsyncVaultResource(_Base):
    """ΣVAULT calls of an :class:`~neurectomy.AsyncClient` (``client.vault``); see :class:`VaultResource`."""

    def __init__(self, send: AsyncSend, tenant: str | None = None, session: _Session | None = None) -> None:
        super().__init__(tenant, session)
        self._send = send

    def with_tenant(self, tenant: str) -> AsyncVaultResource:
        """A resource on the same client whose calls run in ``tenant``."""
        return AsyncVaultResource(self._send, tenant, self._session)

    async def upsert(self, records: Iterable[RecordLike], *, tenant: str | None = None) -> list[str]:
        """See :meth:`VaultResource.upsert`."""
        body = _upsert_body(records)
        response = await self._send("POST", "/v1/vault/records", json=body, headers=self._headers(tenant))
        out = UpsertResponse.model_validate_json(response.content)
        self._seen(out.sequence)
        return out.ids

    async def add(
        self,
        text: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,  # noqa: A002 - the record field is called id
        vector: Sequence[float] | None = None,
        tenant: str | None = None,
    ) -> str:
        """See :meth:`VaultResource.add`."""
        record = {"id": id, "text": text, "metadata": dict(metadata or {}), "vector": vector}
        return (await self.upsert([record], tenant=tenant))[0]

    async def get(
        self,
        record_id: str,
        *,
        with_vector: bool = False,
        tenant: str | None = None,
        after_sequence: int | None = None,
    ) -> RecordResponse:
        """See :meth:`VaultResource.get`."""
        params = self._get_params(with_vector, after_sequence)
        response = await self._send(
            "GET", _record_path(record_id), params=params, headers=self._headers(tenant)
        )
        return RecordResponse.model_validate_json(response.content)

    async def delete(
        self, record_id: str, *, tenant: str | None = None, after_sequence: int | None = None
    ) -> DeleteResponse:
        """See :meth:`VaultResource.delete`."""
        params = self._get_params(False, after_sequence)
        response = await self._send(
            "DELETE", _record_path(record_id), params=params, headers=self._headers(tenant)
        )
        out = DeleteResponse.model_validate_json(response.content)
        self._seen(out.sequence)
        return out

    async def search(
        self,
        query: str | None = None,
        *,
        vector: Sequence[float] | None = None,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        min_score: float | None = None,
        tenant: str | None = None,
        after_sequence: int | None = None,
    ) -> list[SearchHit]:
        """See :meth:`VaultResource.search`."""
        body = _search_body(query, vector, k, filters, min_score, self._after(after_sequence))
        response = await self._send("POST", "/v1/vault/search", json=body, headers=self._headers(tenant))
        return SearchResponse.model_validate_json(response.content).hits

    async def delete_tenant(self, tenant: str | None = None) -> DeleteResponse:
        """See :meth:`VaultResource.delete_tenant`."""
        name = tenant or self.tenant or "default"
        response = await self._send(
            "DELETE", f"/v1/vault/tenants/{quote(name, safe='')}", headers={TENANT_HEADER: name}
        )
        return DeleteResponse.model_validate_json(response.content)

    async def rotate_keys(self, scope: str = "kek", *, tenant: str | None = None) -> RotateResponse:
        """See :meth:`VaultResource.rotate_keys`."""
        body = _validated(RotateRequest, {"scope": scope}).model_dump()
        response = await self._send("POST", "/v1/vault/keys/rotate", json=body, headers=self._headers(tenant))
        return RotateResponse.model_validate_json(response.content)

    async def stats(self, *, tenant: str | None = None) -> StatsResponse:
        """See :meth:`VaultResource.stats`."""
        response = await self._send("GET", "/v1/vault/stats", headers=self._headers(tenant))
        return StatsResponse.model_validate_json(response.content)

    async def compact(self) -> IndexResponse:
        """See :meth:`VaultResource.compact`."""
        response = await self._send("POST", "/v1/vault/compact", headers=self._headers(None))
        return IndexResponse.model_validate_json(response.content)

    async def snapshot(self, name: str | None = None) -> SnapshotResponse:
        """See :meth:`VaultResource.snapshot`."""
        body = _validated(SnapshotRequest, {"name": name}).model_dump(exclude_none=True)
        response = await self._send("POST", "/v1/vault/snapshots", json=body, headers=self._headers(None))
        return SnapshotResponse.model_validate_json(response.content)

    async def snapshots(self) -> SnapshotResponse:
        """See :meth:`VaultResource.snapshots`."""
        response = await self._send("GET", "/v1/vault/snapshots", headers=self._headers(None))
        return SnapshotResponse.model_validate_json(response.content)

    async def restore(self, name: str) -> SnapshotResponse:
        """See :meth:`VaultResource.restore`."""
        path = f"/v1/vault/snapshots/{quote(name, safe='')}/restore"
        response = await self._send("POST", path, headers=self._headers(None))
        return SnapshotResponse.model_validate_json(response.content)
