"""JetStream key-value buckets: :class:`KeyValueBucket` and the shared-state helpers built on it.

A KV ``create`` of an existing key or an ``update`` with a stale revision returns ``None`` (see
:mod:`agents.jetstream`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import anyio
import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from agents.errors import NotFoundError
from agents.jetstream._base import KvEntry, headers_of, translated

__all__ = ("KeyValueBucket", "kv_get_or_none", "kv_purge_all", "kv_put", "kv_values", "kv_watch_all")


class KeyValueBucket:
    """A JetStream KV bucket; every write can be compare-and-set on the key's revision."""

    def __init__(self, kv: KeyValue, name: str, js: JetStreamContext, *, timeout_s: float = 5.0) -> None:
        self._kv = kv
        self._js = js
        self.name = name
        self.timeout_s = timeout_s

    async def get(self, key: str) -> KvEntry:
        """The current value of ``key``.

        Raises:
            NotFoundError: No such key (or it was deleted).
            JetStreamUnavailableError: JetStream did not answer.
        """
        with translated(f"KV get {self.name}/{key}"):
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                raise NotFoundError(f"no key {key!r} in {self.name}") from None
        return KvEntry(key, bytes(entry.value or b""), int(entry.revision or 0))

    async def create(self, key: str, value: bytes) -> int | None:
        """Store ``value`` under ``key`` only if the key does not exist.

        Returns:
            The new revision, or ``None`` if the key exists.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        with translated(f"KV create {self.name}/{key}"):
            try:
                return int(await self._kv.create(key, value))
            except nats.js.errors.KeyWrongLastSequenceError:
                return None

    async def update(self, key: str, value: bytes, *, revision: int) -> int | None:
        """Store ``value`` under ``key`` only if the key's current revision is ``revision``.

        Returns:
            The new revision, or ``None`` if the key changed since ``revision`` (compare-and-set lost).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        with translated(f"KV update {self.name}/{key}"):
            try:
                return int(await self._kv.update(key, value, last=revision))
            except nats.js.errors.KeyWrongLastSequenceError:
                return None

    async def delete(self, key: str, *, revision: int | None = None) -> bool:
        """Delete ``key`` (only at ``revision`` if given).

        Returns:
            Whether it was deleted (``False``: the revision did not match).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        with translated(f"KV delete {self.name}/{key}"):
            try:
                return bool(await self._kv.delete(key, last=revision))
            except nats.js.errors.KeyWrongLastSequenceError:
                return False

    async def keys(self, pattern: str) -> list[str]:
        """The keys matching ``pattern`` (NATS wildcards ``*`` and ``>``) that hold a value now.

        Filtered on the server and read headers-only (values are not transferred).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        found: list[str] = []
        with translated(f"KV keys {self.name}/{pattern}"):
            watcher = await self._kv.watch(pattern, ignore_deletes=True, meta_only=True)
            try:
                with anyio.fail_after(self.timeout_s):
                    async for entry in watcher:
                        if entry is None:  # the end of the values stored now
                            break
                        found.append(entry.key)
            except TimeoutError:
                raise nats.errors.TimeoutError from None
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    try:
                        await watcher.stop()  # type: ignore[no-untyped-call]
                    except nats.errors.Error:
                        pass
        return found

    async def history(self, key: str) -> list[KvEntry]:
        """The values of ``key`` the bucket still holds (at most its ``history``), oldest first.

        Reads the bucket's stream ``KV_<bucket>`` message by message (``next_by_subj``), which, unlike a
        watch, cannot miss values that arrive while it starts.

        Raises:
            NotFoundError: The bucket holds nothing for ``key``.
            JetStreamUnavailableError: JetStream did not answer.
        """
        subject = f"$KV.{self.name}.{key}"
        entries: list[KvEntry] = []
        seq = 1
        with translated(f"KV history {self.name}/{key}"):
            while True:
                try:
                    raw = await self._js.get_msg(f"KV_{self.name}", seq=seq, subject=subject, next=True)
                except nats.js.errors.NotFoundError:
                    break
                headers = headers_of(raw.headers)
                deleted = headers.get("KV-Operation") in ("DEL", "PURGE")
                entries.append(KvEntry(key, bytes(raw.data or b""), int(raw.seq or 0), deleted))
                seq = int(raw.seq or 0) + 1
        if not entries:
            raise NotFoundError(f"no key {key!r} in {self.name}")
        return entries

    async def latest(self) -> list[KvEntry]:
        """The current value of every key in the bucket (deleted keys left out), in stream order.

        Reads the whole bucket once (a watch of ``>`` without history): O(keys), so meant for buckets with
        a retention limit. The read ends at the stream's last sequence as it was when the read began,
        not at nats-py's "no more pending" marker, which can arrive before the values already sent
        (it is decided from consumer info fetched while the first deliveries are in flight).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        with translated(f"KV list {self.name}"):
            state = (await self._js.stream_info(f"KV_{self.name}")).state
            if not state.messages:
                return []
            last_seq = int(state.last_seq)
            # A watch of ">" sees deletes too: their sequences count towards last_seq.
            return await _current_values(self, ">", lambda entry: int(entry.revision or 0) >= last_seq)

    async def watch(self, key: str) -> AsyncGenerator[KvEntry, None]:
        """The current value of ``key`` (if any), then each new value as it is stored.

        Ends when the key is deleted. Close the generator (``contextlib.aclosing``) to stop watching
        early.

        Raises:
            JetStreamUnavailableError: JetStream did not answer when the watch started.
        """
        async with aclosing(kv_watch_all(self, key)) as entries:
            async for entry in entries:
                if entry.deleted:  # DEL or PURGE
                    return
                yield entry


# --- Shared state helpers (issue 15: API keys, rate limits, chat sessions and ΣLANG chunks in KV) ---


async def kv_put(bucket: KeyValueBucket, key: str, value: bytes) -> int:
    """Store ``value`` under ``key`` unconditionally (last writer wins).

    Returns:
        The new revision.

    Raises:
        JetStreamUnavailableError: JetStream did not answer.
    """
    with translated(f"KV put {bucket.name}/{key}"):
        return int(await bucket._kv.put(key, value))


async def kv_get_or_none(bucket: KeyValueBucket, key: str) -> KvEntry | None:
    """The current value of ``key``, or ``None`` when there is none (never stored, deleted or expired).

    Raises:
        JetStreamUnavailableError: JetStream did not answer.
    """
    try:
        return await bucket.get(key)
    except NotFoundError:
        return None


async def kv_purge_all(bucket: KeyValueBucket, *, prefix: str | None = None) -> None:
    """Remove every value of the bucket, history included (only keys starting with ``prefix`` if given).

    ``prefix`` ends at a token boundary, such as ``t.abc.``.

    Raises:
        JetStreamUnavailableError: JetStream did not answer.
    """
    subject = f"$KV.{bucket.name}.{prefix}>" if prefix else None
    with translated(f"KV purge {bucket.name}/{prefix or '>'}"):
        await bucket._js.purge_stream(f"KV_{bucket.name}", subject=subject)


async def kv_watch_all(bucket: KeyValueBucket, pattern: str = ">") -> AsyncGenerator[KvEntry, None]:
    """Every current value of the keys matching ``pattern``, then each change as it is stored, forever.

    Deletes, purges and expiries arrive as entries with ``deleted=True`` (an expiry by the bucket's
    ``max_age`` only removes the message: a cache fed by this watch must drop stale values itself).
    ``None`` is never yielded. Close the generator (``contextlib.aclosing``) to stop watching.

    Raises:
        JetStreamUnavailableError: JetStream did not answer when the watch started.
    """
    with translated(f"KV watch {bucket.name}/{pattern}"):
        watcher = await bucket._kv.watch(pattern)
    try:
        async for entry in watcher:
            if entry is None:  # "no more pending values" marker
                continue
            deleted = entry.operation is not None
            yield KvEntry(entry.key, bytes(entry.value or b""), int(entry.revision or 0), deleted)
    finally:
        await _stop(watcher)


async def kv_values(bucket: KeyValueBucket, pattern: str) -> list[KvEntry]:
    """The current value of every key matching ``pattern`` (deleted keys left out), in stream order.

    A filtered watch read until the last entry pending when it started (the entry whose ``delta``, the
    server's count of messages still pending, is 0); O(matching keys). Whether anything matches at all is
    asked first (stream info filtered on the keys' subjects), not taken from nats-py's "no more pending"
    marker, which can arrive before values already sent (see :meth:`KeyValueBucket.latest`).

    Raises:
        JetStreamUnavailableError: JetStream did not answer.
    """
    with translated(f"KV values {bucket.name}/{pattern}"):
        info = await bucket._js.stream_info(
            f"KV_{bucket.name}", subjects_filter=f"$KV.{bucket.name}.{pattern}"
        )
        if not info.state.subjects:
            return []
        return await _current_values(bucket, pattern, lambda entry: not entry.delta)


async def _current_values(
    bucket: KeyValueBucket, pattern: str, is_last: Callable[[Any], bool]
) -> list[KvEntry]:
    """Read a watch of ``pattern`` until ``is_last(entry)``: the live values in stream order.

    nats-py's "no more pending" marker (``None``) is skipped, not trusted (see
    :meth:`KeyValueBucket.latest`). Raises ``nats.errors.TimeoutError`` after ``bucket.timeout_s``.
    """
    found: dict[str, KvEntry] = {}
    watcher = await bucket._kv.watch(pattern)
    try:
        with anyio.fail_after(bucket.timeout_s):
            async for entry in watcher:
                if entry is None:
                    continue
                if entry.operation is None:
                    found[entry.key] = KvEntry(entry.key, bytes(entry.value or b""), int(entry.revision or 0))
                else:
                    found.pop(entry.key, None)
                if is_last(entry):
                    break
    except TimeoutError:
        raise nats.errors.TimeoutError from None
    finally:
        await _stop(watcher)
    return sorted(found.values(), key=lambda e: e.revision)


async def _stop(watcher: Any) -> None:
    """Stop a nats-py KV watcher, shielded and bounded (2 s), ignoring a connection already gone."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(2):
        try:
            await watcher.stop()
        except nats.errors.Error:
            pass
