"""A Litestar :class:`~litestar.stores.base.Store` on a JetStream KV bucket, shared by API processes.

Used for the rate limit counters when the API runs against a NATS cluster, so every API process counts
in the same window (:class:`api._limits.SharedRateLimitMiddleware`). The KV client itself lives in
:mod:`agents.jetstream` (the API does not import nats).

Expiry: JetStream KV has one ``max_age`` per bucket, not per key. Each value is therefore stored as a
Litestar :class:`~litestar.stores.base.StorageObject` (the value and its own expiry time), and a value
past its expiry reads as absent — that gives :meth:`KeyValueStore.set`'s ``expires_in`` its exact
meaning. The bucket's ``max_age`` (:data:`MAX_AGE_S`, one day: Litestar's longest rate-limit window)
only deletes idle keys; a value set to live longer than that is cut at it.

Keys: a Litestar key may hold any character, a KV key only ``[-/_=.A-Za-z0-9]``, so a key is stored as
``<namespace>.<base64url of the key>`` (``_`` as the namespace when there is none).

Compare-and-set (beyond the ``Store`` interface): :meth:`KeyValueStore.get_versioned` returns the KV
revision with the value and :meth:`KeyValueStore.set_if` writes only if the key is still at that
revision, so a read-modify-write (a rate-limit count) never loses a concurrent update.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Self

from litestar.stores.base import StorageObject, Store

from agents.jetstream import JetStream, KeyValueBucket, kv_get_or_none, kv_purge_all, kv_put

__all__ = ("MAX_AGE_S", "RATE_LIMIT_BUCKET", "KeyValueStore")

MAX_AGE_S = 86_400.0
"""The bucket's ``max_age``: the longest a value is kept, seconds."""
RATE_LIMIT_BUCKET = "neurectomy_rate_limits"
"""The KV bucket of the shared rate limit counters."""


class KeyValueStore(Store):
    """A Litestar store on a JetStream KV bucket (see the module docstring).

    Args:
        bucket: The open KV bucket.
        namespace: Key prefix; :meth:`delete_all` removes only this namespace's keys.
    """

    def __init__(self, bucket: KeyValueBucket, *, namespace: str = "_") -> None:
        if not namespace or not all(c.isalnum() or c in "-_" for c in namespace):
            raise ValueError(f"namespace {namespace!r} must be letters, digits, '-' or '_'")
        self._bucket = bucket
        self.namespace = namespace

    @classmethod
    async def open(cls, js: JetStream, bucket: str = RATE_LIMIT_BUCKET, *, namespace: str = "_") -> Self:
        """Open (create if missing) ``bucket`` with ``js``'s replicas and :data:`MAX_AGE_S`.

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        return cls(await js.ensure_key_value(bucket, history=1, ttl_s=MAX_AGE_S), namespace=namespace)

    def with_namespace(self, namespace: str) -> Self:
        """The same bucket under the namespace ``<this namespace>-<namespace>``."""
        return type(self)(self._bucket, namespace=f"{self.namespace}-{namespace}")

    def _key(self, key: str) -> str:
        encoded = base64.urlsafe_b64encode(key.encode()).rstrip(b"=").decode()
        return f"{self.namespace}.{encoded or '-'}"

    async def _read(self, key: str) -> tuple[StorageObject | None, int]:
        entry = await kv_get_or_none(self._bucket, self._key(key))
        if entry is None or not entry.value:
            return None, 0
        stored = StorageObject.from_bytes(entry.value)
        return (None if stored.expired else stored), entry.revision

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        """Store ``value`` under ``key``, expiring after ``expires_in`` seconds (``None``: max_age).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        data = value.encode() if isinstance(value, str) else value
        await kv_put(self._bucket, self._key(key), StorageObject.new(data, expires_in).to_bytes())

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        """The value of ``key``, or ``None`` if absent or expired; ``renew_for`` resets its expiry.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        stored, _ = await self._read(key)
        if stored is None:
            return None
        if renew_for is not None and stored.expires_at is not None:
            await self.set(key, stored.data, renew_for)
        return stored.data

    async def get_versioned(self, key: str) -> tuple[bytes | None, int]:
        """The value of ``key`` (``None`` if absent or expired) and its revision (0: no entry).

        Pass the revision to :meth:`set_if`.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        entry = await kv_get_or_none(self._bucket, self._key(key))
        if entry is None or not entry.value:
            return None, 0
        stored = StorageObject.from_bytes(entry.value)
        return (None if stored.expired else stored.data), entry.revision

    async def set_if(
        self, key: str, value: bytes, *, revision: int, expires_in: int | timedelta | None = None
    ) -> bool:
        """Store ``value`` only if ``key`` is still at ``revision`` (0: only if it has no entry).

        Returns:
            Whether it was stored (``False``: another writer came first; read again and retry).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        data = StorageObject.new(value, expires_in).to_bytes()
        if revision == 0:
            return await self._bucket.create(self._key(key), data) is not None
        return await self._bucket.update(self._key(key), data, revision=revision) is not None

    async def delete(self, key: str) -> None:
        """Delete ``key`` (nothing happens if it is absent).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        await self._bucket.delete(self._key(key))

    async def delete_all(self) -> None:
        """Delete every key of this namespace.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        await kv_purge_all(self._bucket, prefix=f"{self.namespace}.")

    async def exists(self, key: str) -> bool:
        """Whether ``key`` holds an unexpired value.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        stored, _ = await self._read(key)
        return stored is not None

    async def expires_in(self, key: str) -> int | None:
        """Seconds until ``key`` expires; ``-1`` without an expiry of its own, ``None`` if absent.

        ``-1`` as Litestar's memory and Redis stores answer (Redis ``TTL``).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        stored, _ = await self._read(key)
        return None if stored is None else stored.expires_in
