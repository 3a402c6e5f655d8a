"""API keys shared by every API process of a cluster: a JetStream KV bucket mirrored by a watch.

Used instead of the file store alone when the process runs against an existing NATS server or cluster
(``nats.shared_state``, see :mod:`neurectomy.settings`). The records are the file store's
(:class:`~neurectomy.server.keys.ApiKey`: SHA-256 digests, never tokens), one KV entry per key:
``key.<id>`` → the record's JSON, in the bucket :data:`BUCKET` (replicas ``nats.stream_replicas``).

* **Reads** (:meth:`SharedKeyStore.verify`, on every request) come from a local cache, filled at start
  and kept current by a KV watch: a key created or revoked by one API process is seen by every other
  one as soon as the watch delivers the change (milliseconds on a LAN). A full re-read every
  :data:`RESYNC_S` seconds repairs a watch that a reconnect broke.
* **Writes** (``create``/``revoke`` over ``/v1/keys``) go to KV first (``create`` for a new id,
  compare-and-set on the revision for a revocation) and then into the cache, so the writer reads its
  own write at once.
* **The local file** (``<state_dir>/api-keys.json``, written by ``neurectomy keys create|revoke``) is
  imported at start and again whenever it changes (checked every :data:`FILE_POLL_S` seconds): keys
  missing from KV are added, revocations are carried over; nothing in KV is ever un-revoked. Until the
  import, a key only the file knows is checked against the file (so a key made by the CLI on this host
  works at once); a key KV knows is decided by KV alone.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from dataclasses import asdict
from typing import Any

import anyio
import anyio.abc
import structlog

from agents.errors import AgentError
from agents.jetstream import JetStream, KeyValueBucket, KvEntry, kv_get_or_none, kv_watch_all
from neurectomy.server.keys import (
    ApiKey,
    CreatedKey,
    KeyStore,
    KeyStoreError,
    key_from_dict,
    matches,
    new_key,
    revoked,
    token_key_id,
)

__all__ = ("BUCKET", "FILE_POLL_S", "RESYNC_S", "SharedKeyStore")

log = structlog.get_logger("neurectomy.keys")

BUCKET = "neurectomy_api_keys"
"""The KV bucket holding the API keys of a cluster."""
FILE_POLL_S = 1.0
"""How often the local key file is checked for changes to import, seconds."""
RESYNC_S = 30.0
"""How often the whole bucket is re-read (repairs a watch lost across a reconnect), seconds."""
_PREFIX = "key."


def _encode(key: ApiKey) -> bytes:
    return json.dumps({**asdict(key), "scopes": list(key.scopes)}).encode()


def _decode(value: bytes) -> ApiKey:
    raw: dict[str, Any] = json.loads(value)
    return key_from_dict(raw)


class SharedKeyStore:
    """API keys in a JetStream KV bucket, read from a watched local cache (see the module docstring).

    Create with :meth:`open`, then run :meth:`run` in a task group (``await tg.start(store.run)``).

    Args:
        bucket: The open KV bucket.
        file_store: The local key file, imported into the bucket.
    """

    def __init__(self, bucket: KeyValueBucket, file_store: KeyStore) -> None:
        self._bucket = bucket
        self._file = file_store
        self._cache: dict[str, tuple[int, ApiKey]] = {}  # id -> (revision, record)
        self._file_seen: tuple[int, int] | None = None

    @classmethod
    async def open(cls, js: JetStream, file_store: KeyStore) -> SharedKeyStore:
        """Open (create if missing) the key bucket with ``js``'s replicas and load it.

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        store = cls(await js.ensure_key_value(BUCKET, history=1), file_store)
        await store.import_file()
        await store.resync()
        return store

    def _apply(self, revision: int, key: ApiKey) -> None:
        seen = self._cache.get(key.id)
        if seen is None or seen[0] < revision:
            self._cache[key.id] = (revision, key)

    def _apply_entry(self, entry: KvEntry) -> None:
        if entry.deleted or not entry.key.startswith(_PREFIX):
            return
        try:
            self._apply(entry.revision, _decode(entry.value))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("unreadable API key record in KV; ignored", key=entry.key, error=str(exc))

    async def resync(self) -> None:
        """Re-read every key of the bucket into the cache.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        for entry in await self._bucket.latest():
            self._apply_entry(entry)

    async def import_file(self) -> int:
        """Copy the local key file's keys and revocations into the bucket; returns how many changed.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        self._file_seen = self._file.stamp()
        changed = 0
        for key in self._file.list_keys():
            name = f"{_PREFIX}{key.id}"
            current = await kv_get_or_none(self._bucket, name)
            if current is None:
                revision = await self._bucket.create(name, _encode(key))
                changed += revision is not None
                if revision is not None:
                    self._apply(revision, key)
            elif key.revoked and not _decode(current.value).revoked:
                changed += await self._revoke_at(name, current) is not None
        if changed:
            log.info("imported API keys from the local file into KV", changed=changed)
        return changed

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep the cache current (KV watch, periodic re-read) and import the file when it changes."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch)
            tg.start_soon(self._poll)
            task_status.started()

    async def _watch(self) -> None:
        while True:
            try:
                async with aclosing(kv_watch_all(self._bucket, f"{_PREFIX}>")) as changes:
                    async for entry in changes:
                        self._apply_entry(entry)
            except AgentError as exc:
                log.warning("API key watch lost; restarting", error=exc.message)
            await anyio.sleep(FILE_POLL_S)

    async def _poll(self) -> None:
        since_resync = 0.0
        while True:
            await anyio.sleep(FILE_POLL_S)
            since_resync += FILE_POLL_S
            try:
                if self._file.stamp() != self._file_seen:
                    await self.import_file()
                if since_resync >= RESYNC_S:
                    since_resync = 0.0
                    await self.resync()
            except AgentError as exc:
                log.warning("API key sync failed; will retry", error=exc.message)

    def verify(self, token: str) -> ApiKey | None:
        """The valid (not revoked) key whose token this is, or ``None``.

        From the cache: no I/O but a ``stat`` of the key file for a key KV does not know yet.
        """
        key_id = token_key_id(token)
        if key_id is None:
            return None
        cached = self._cache.get(key_id)
        if cached is None:
            return self._file.verify(token)
        return cached[1] if matches(cached[1], token) else None

    def list_keys(self) -> list[ApiKey]:
        """Every key the cluster knows (revoked ones included), oldest first."""
        return sorted((k for _, k in self._cache.values()), key=lambda k: k.created_at)

    async def create(
        self, tenant: str, scopes: str | tuple[str, ...] | list[str], *, name: str = ""
    ) -> CreatedKey:
        """Create a key in the bucket; the returned token is not stored anywhere.

        Raises:
            KeyStoreError: Invalid tenant or scopes.
            JetStreamUnavailableError: JetStream did not answer.
        """
        while True:
            created = new_key(tenant, scopes, name=name, taken=self._cache.__contains__)
            revision = await self._bucket.create(f"{_PREFIX}{created.key.id}", _encode(created.key))
            if revision is not None:  # else another process took the id meanwhile: draw again
                self._apply(revision, created.key)
                return created

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key in the bucket (every API process refuses it once its watch delivers the change).

        Raises:
            KeyStoreError: No key has this id.
            JetStreamUnavailableError: JetStream did not answer.
        """
        name = f"{_PREFIX}{key_id}"
        while True:
            current = await kv_get_or_none(self._bucket, name)
            if current is None:
                raise KeyStoreError(f"no API key with id {key_id!r}")
            key = _decode(current.value)
            if key.revoked:
                self._apply(current.revision, key)
                return key
            done = await self._revoke_at(name, current)
            if done is not None:
                return done

    async def _revoke_at(self, name: str, current: KvEntry) -> ApiKey | None:
        """Mark the record of ``current`` revoked if it is still at that revision (``None``: it changed)."""
        key = revoked(_decode(current.value))
        revision = await self._bucket.update(name, _encode(key), revision=current.revision)
        if revision is None:
            return None
        self._apply(revision, key)
        return key
