"""A small typed layer over NATS JetStream: work-queue streams, pull consumers and KV buckets.

Besides :mod:`agents.messaging` this is the only module that imports ``nats`` (an import-linter contract
holds it to that). It is built from a connected :class:`~agents.messaging.Bus` and shares its connection.
NATS errors are turned into ``agents.errors`` here:

* JetStream not enabled, not reachable, not answering in time, or the connection closed →
  :class:`JetStreamUnavailableError` (a :class:`~agents.errors.NoRespondersError`: the API answers 503);
* a stream refusing a message because of its limits (``discard: new``) →
  :class:`~agents.errors.AgentBusyError` (429);
* a missing key, stream or consumer → :class:`~agents.errors.NotFoundError`;
* a KV ``create`` of an existing key or an ``update`` with a stale revision → ``None`` (a typed result,
  not an exception: compare-and-set conflicts are expected);
* anything else JetStream refuses → :class:`~agents.errors.AgentFailedError`.

Pull consumers fetch with ``no_wait`` pull requests (the JetStream API
``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``, ADR-13) on an inbox of their own: the server answers at
once with a message or a ``404 No Messages`` status, so a caller can poll several consumers in priority
order without leaving lingering pull requests behind that would grab messages it cannot run yet.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue

from agents.errors import AgentBusyError, AgentError, AgentFailedError, NoRespondersError, NotFoundError
from agents.messaging import Bus

__all__ = (
    "JetStream",
    "JetStreamUnavailableError",
    "JsMessage",
    "KeyValueBucket",
    "KvEntry",
    "OrderedReader",
    "PullConsumer",
    "StoredMessage",
    "last_sequence",
    "ordered_reader",
)

_STREAM_LIMIT_CODES = frozenset({10077, 10078, 10047, 10028})  # max msgs / bytes / store / msg size
_STREAM_CONFIG_CONFLICT = 10058  # stream name already in use with a different configuration
_UNAVAILABLE = (
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoServersError,
)


class JetStreamUnavailableError(NoRespondersError):
    """JetStream did not answer: not enabled, not connected, timed out, or the stream is missing.

    An infrastructure error (retry later); its wire code is ``no_responders`` so the API answers 503.
    """


def raw_client(bus: Bus) -> Client:
    """The nats-py client behind ``bus`` (the one documented use of its private connection).

    JetStream shares the bus's connection instead of opening a second one; only this module and
    :mod:`agents.messaging` may touch nats-py objects.
    """
    return bus._nc


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn nats errors raised inside the block into ``agents.errors`` (see the module docstring)."""
    try:
        yield
    except AgentError:
        raise
    except nats.js.errors.APIError as exc:
        if exc.err_code in _STREAM_LIMIT_CODES:
            raise AgentBusyError(f"{what}: {exc.description or 'stream limit reached'}") from exc
        if isinstance(exc, nats.js.errors.NotFoundError):
            raise NotFoundError(f"{what}: {exc.description or 'not found'}") from exc
        if isinstance(exc, nats.js.errors.ServiceUnavailableError):
            raise JetStreamUnavailableError(f"{what}: JetStream is not available") from exc
        raise AgentFailedError(f"{what}: JetStream refused: {exc.description or exc}") from exc
    except _UNAVAILABLE as exc:
        raise JetStreamUnavailableError(f"{what}: JetStream did not answer ({type(exc).__name__})") from exc
    except nats.errors.Error as exc:
        raise AgentFailedError(f"{what}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class KvEntry:
    """One value of a KV bucket.

    Attributes:
        key: The key.
        value: The value bytes.
        revision: The bucket-wide revision (stream sequence) of this value; pass it to
            :meth:`KeyValueBucket.update` for compare-and-set.
        deleted: The entry is a delete or purge marker (only seen in :meth:`KeyValueBucket.history`).
    """

    key: str
    value: bytes
    revision: int
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message read back from a stream.

    Attributes:
        subject: Subject it was published on.
        data: Payload bytes.
        headers: Headers (empty dict when none).
        seq: Stream sequence.
    """

    subject: str
    data: bytes
    headers: dict[str, str]
    seq: int


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
        with _translated(f"KV get {self.name}/{key}"):
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
        with _translated(f"KV create {self.name}/{key}"):
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
        with _translated(f"KV update {self.name}/{key}"):
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
        with _translated(f"KV delete {self.name}/{key}"):
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
        with _translated(f"KV keys {self.name}/{pattern}"):
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
        with _translated(f"KV history {self.name}/{key}"):
            while True:
                try:
                    raw = await self._js.get_msg(f"KV_{self.name}", seq=seq, subject=subject, next=True)
                except nats.js.errors.NotFoundError:
                    break
                headers = _headers(raw.headers)
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
        found: dict[str, KvEntry] = {}
        with _translated(f"KV list {self.name}"):
            state = (await self._js.stream_info(f"KV_{self.name}")).state
            if not state.messages:
                return []
            last_seq = int(state.last_seq)
            watcher = await self._kv.watch(">")  # deletes too: their sequences count towards last_seq
            try:
                with anyio.fail_after(self.timeout_s):
                    async for entry in watcher:
                        if entry is None:  # nats-py's marker: not trusted (see above)
                            continue
                        revision = int(entry.revision or 0)
                        if entry.operation is None:
                            found[entry.key] = KvEntry(entry.key, bytes(entry.value or b""), revision)
                        else:
                            found.pop(entry.key, None)
                        if revision >= last_seq:  # delivered in sequence order: nothing older is left
                            break
            except TimeoutError:
                raise nats.errors.TimeoutError from None
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    try:
                        await watcher.stop()  # type: ignore[no-untyped-call]
                    except nats.errors.Error:
                        pass
        return sorted(found.values(), key=lambda e: e.revision)

    async def watch(self, key: str) -> AsyncGenerator[KvEntry, None]:
        """The current value of ``key`` (if any), then each new value as it is stored.

        Ends when the key is deleted. Close the generator (``contextlib.aclosing``) to stop watching
        early.

        Raises:
            JetStreamUnavailableError: JetStream did not answer when the watch started.
        """
        with _translated(f"KV watch {self.name}/{key}"):
            watcher = await self._kv.watch(key)
        try:
            async for entry in watcher:
                if entry is None:  # "no more pending values" marker
                    continue
                if entry.operation is not None:  # DEL or PURGE
                    return
                yield KvEntry(key, bytes(entry.value or b""), int(entry.revision or 0))
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                try:
                    await watcher.stop()  # type: ignore[no-untyped-call]
                except nats.errors.Error:
                    pass


class JsMessage:
    """A message delivered by a pull consumer; settle it with exactly one of ack, nak or term.

    Attributes:
        subject: Subject it was published on.
        data: Payload bytes.
        headers: Headers (empty dict when none).
        num_delivered: How many times JetStream has delivered it (1 on the first delivery).
        stream_seq: Its stream sequence.
    """

    def __init__(self, msg: Msg) -> None:
        self._msg = msg
        meta = msg.metadata
        self.subject: str = msg.subject
        self.data: bytes = msg.data
        self.headers: dict[str, str] = dict(msg.headers or {})
        self.num_delivered: int = int(meta.num_delivered)
        self.stream_seq: int = int(meta.sequence.stream)

    async def ack(self) -> None:
        """Acknowledge: the work is done, JetStream removes it from the work queue.

        Raises:
            JetStreamUnavailableError: The connection is closed.
        """
        with _translated("ack"):
            await self._msg.ack()

    async def nak(self, delay_s: float | None = None) -> None:
        """Ask for redelivery, after ``delay_s`` seconds if given.

        Raises:
            JetStreamUnavailableError: The connection is closed.
        """
        with _translated("nak"):
            await self._msg.nak(delay=delay_s)

    async def in_progress(self) -> None:
        """Reset the ack-wait timer: still working on it (may be sent many times).

        Raises:
            JetStreamUnavailableError: The connection is closed.
        """
        with _translated("in-progress ack"):
            await self._msg.in_progress()

    async def term(self) -> None:
        """Stop redelivering it (it can never be processed).

        Raises:
            JetStreamUnavailableError: The connection is closed.
        """
        with _translated("term"):
            await self._msg.term()


class PullConsumer:
    """A durable pull consumer read with ``no_wait`` pull requests on an inbox of its own.

    Create with :meth:`JetStream.pull_consumer`; call :meth:`aclose` when done.
    """

    def __init__(self, nc: Client, sub: Subscription, inbox: str, stream: str, durable: str) -> None:
        self._nc = nc
        self._sub = sub
        self._inbox = inbox
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.stream = stream
        self.durable = durable

    async def next(self, *, timeout_s: float) -> JsMessage | None:
        """The next message if one is available right now, else ``None`` (never waits for new ones).

        Args:
            timeout_s: Upper bound on the server's answer, in seconds.

        Raises:
            JetStreamUnavailableError: JetStream did not answer within ``timeout_s`` (or the consumer is
                gone).
        """
        request = json.dumps({"batch": 1, "no_wait": True}).encode()
        with _translated(f"fetch from {self.stream}/{self.durable}"):
            await self._nc.publish(self._next_subject, request, reply=self._inbox)
            while True:
                msg = await self._sub.next_msg(timeout=timeout_s)
                status = (msg.headers or {}).get("Status")
                if not status:
                    return JsMessage(msg)
                if status in ("404", "408", "409"):  # no messages / expired / busy: nothing now
                    return None
                if status == "100":  # heartbeat or flow control
                    continue
                raise JetStreamUnavailableError(
                    f"fetch from {self.stream}/{self.durable}: status {status} "
                    f"{(msg.headers or {}).get('Description', '')}".strip()
                )

    async def aclose(self) -> None:
        """Drop the consumer's inbox subscription (the durable consumer stays). Idempotent."""
        with anyio.CancelScope(shield=True):
            try:
                await self._sub.unsubscribe()
            except nats.errors.Error:
                pass


class JetStream:
    """JetStream operations on a :class:`~agents.messaging.Bus`'s connection.

    Args:
        bus: Connected bus (not closed by this object).
        timeout_s: Deadline of each JetStream API call and publish ack, in seconds.
    """

    def __init__(self, bus: Bus, *, timeout_s: float = 5.0) -> None:
        self._nc = raw_client(bus)
        self._js: JetStreamContext = self._nc.jetstream(timeout=timeout_s)
        self.timeout_s = timeout_s
        self.replicas = bus.stream_replicas
        """Replicas of each stream and KV bucket created here (``nats.stream_replicas``)."""

    async def ensure_stream(
        self,
        name: str,
        subjects: list[str],
        *,
        work_queue: bool,
        max_msgs: int = -1,
        max_age_s: float | None = None,
        duplicate_window_s: float = 120.0,
    ) -> None:
        """Create the file-stored stream ``name``, or update it to this configuration.

        Args:
            name: Stream name.
            subjects: Subjects it captures.
            work_queue: Work-queue retention (a message is removed once acked) instead of limits.
            max_msgs: Most messages it holds (``-1``: unlimited); when full, publishes are refused
                (discard ``new``) with :class:`~agents.errors.AgentBusyError`.
            max_age_s: Messages older than this are removed, in seconds (``None``: kept).
            duplicate_window_s: Window in which a repeated ``Nats-Msg-Id`` is dropped, in seconds.

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        config = StreamConfig(
            name=name,
            subjects=subjects,
            retention=RetentionPolicy.WORK_QUEUE if work_queue else RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_msgs=max_msgs,
            max_age=max_age_s,
            discard=DiscardPolicy.NEW,
            duplicate_window=duplicate_window_s,
            num_replicas=self.replicas,
        )
        with _translated(f"create stream {name}"):
            try:
                await self._js.add_stream(config)
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != _STREAM_CONFIG_CONFLICT:
                    raise
                await self._js.update_stream(config)

    async def ensure_key_value(
        self, bucket: str, *, history: int = 1, ttl_s: float | None = None
    ) -> KeyValueBucket:
        """The KV bucket ``bucket`` (file storage), created if missing.

        Args:
            bucket: Bucket name.
            history: Values kept per key, 1–64.
            ttl_s: Values older than this expire, in seconds (``None``: kept).

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        with _translated(f"open KV bucket {bucket}"):
            try:
                kv = await self._js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                kv = await self._js.create_key_value(
                    KeyValueConfig(
                        bucket=bucket,
                        history=history,
                        ttl=ttl_s,
                        storage=StorageType.FILE,
                        replicas=self.replicas,
                    )
                )
        return KeyValueBucket(kv, bucket, self._js, timeout_s=self.timeout_s)

    async def publish(
        self,
        subject: str,
        data: bytes,
        *,
        stream: str | None = None,
        msg_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> int:
        """Publish to a stream and wait for its ack (the message is then durable).

        Args:
            subject: Subject (captured by a stream).
            data: Payload bytes.
            stream: The stream that must store it (refused otherwise).
            msg_id: ``Nats-Msg-Id``: a repeat within the stream's duplicate window is dropped.
            headers: Extra headers.

        Returns:
            The stream sequence of the message (of the first copy, for a duplicate).

        Raises:
            AgentBusyError: The stream is full.
            JetStreamUnavailableError: No stream captures ``subject``, or JetStream did not answer.
        """
        hdrs = dict(headers or {})
        if msg_id is not None:
            hdrs["Nats-Msg-Id"] = msg_id
        with _translated(f"publish to {subject}"):
            ack = await self._js.publish(subject, data, stream=stream, headers=hdrs or None)
        return int(ack.seq)

    async def pull_consumer(
        self,
        stream: str,
        durable: str,
        *,
        filter_subject: str,
        ack_wait_s: float,
        max_deliver: int,
        max_ack_pending: int = 1000,
    ) -> PullConsumer:
        """Create (or update) a durable pull consumer with explicit ack and bind to it.

        Args:
            stream: The stream.
            durable: Durable consumer name (shared by every worker: they split its messages).
            filter_subject: Subject it delivers.
            ack_wait_s: Seconds without ack or in-progress before JetStream redelivers a message.
            max_deliver: Most deliveries of one message.
            max_ack_pending: Most delivered-but-unacked messages across all workers.

        Raises:
            NotFoundError: No such stream.
            JetStreamUnavailableError: JetStream did not answer.
        """
        config = ConsumerConfig(
            name=durable,
            durable_name=durable,
            filter_subject=filter_subject,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait_s,
            max_deliver=max_deliver,
            max_ack_pending=max_ack_pending,
        )
        with _translated(f"create consumer {stream}/{durable}"):
            await self._js.add_consumer(stream, config=config)
            inbox = self._nc.new_inbox()
            sub = await self._nc.subscribe(inbox)
        return PullConsumer(self._nc, sub, inbox, stream, durable)

    async def message_count(self, stream: str) -> int:
        """Messages the stream holds now.

        Raises:
            NotFoundError: No such stream.
            JetStreamUnavailableError: JetStream did not answer.
        """
        with _translated(f"stream info {stream}"):
            info = await self._js.stream_info(stream)
        return int(info.state.messages)

    async def last_message(self, stream: str, subject: str) -> StoredMessage:
        """The last message on ``subject`` in ``stream``.

        Raises:
            NotFoundError: No such stream or no message on ``subject``.
            JetStreamUnavailableError: JetStream did not answer.
        """
        with _translated(f"read {stream}/{subject}"):
            raw = await self._js.get_last_msg(stream, subject)
        return StoredMessage(
            str(raw.subject or ""), bytes(raw.data or b""), _headers(raw.headers), int(raw.seq or 0)
        )

    async def delete_message(self, stream: str, seq: int) -> bool:
        """Remove the message ``seq`` from ``stream``.

        Returns:
            Whether it was there.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        with _translated(f"delete {stream}/{seq}"):
            try:
                return bool(await self._js.delete_msg(stream, seq))
            except nats.js.errors.NotFoundError:
                return False

    async def delete_stream(self, name: str) -> None:
        """Delete a stream and its messages (a KV bucket ``b`` is the stream ``KV_b``).

        Raises:
            NotFoundError: No such stream.
            JetStreamUnavailableError: JetStream did not answer.
        """
        with _translated(f"delete stream {name}"):
            await self._js.delete_stream(name)


def _headers(raw: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (raw or {}).items()}


# --- Shared state helpers (issue 15: API keys, rate limits, chat sessions and ΣLANG chunks in KV) ---


async def kv_put(bucket: KeyValueBucket, key: str, value: bytes) -> int:
    """Store ``value`` under ``key`` unconditionally (last writer wins).

    Returns:
        The new revision.

    Raises:
        JetStreamUnavailableError: JetStream did not answer.
    """
    with _translated(f"KV put {bucket.name}/{key}"):
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
    with _translated(f"KV purge {bucket.name}/{prefix or '>'}"):
        await bucket._js.purge_stream(f"KV_{bucket.name}", subject=subject)


async def kv_watch_all(bucket: KeyValueBucket, pattern: str = ">") -> AsyncGenerator[KvEntry, None]:
    """Every current value of the keys matching ``pattern``, then each change as it is stored, forever.

    Deletes, purges and expiries arrive as entries with ``deleted=True`` (an expiry by the bucket's
    ``max_age`` only removes the message: a cache fed by this watch must drop stale values itself).
    ``None`` is never yielded. Close the generator (``contextlib.aclosing``) to stop watching.

    Raises:
        JetStreamUnavailableError: JetStream did not answer when the watch started.
    """
    with _translated(f"KV watch {bucket.name}/{pattern}"):
        watcher = await bucket._kv.watch(pattern)
    try:
        async for entry in watcher:
            if entry is None:  # "no more pending values" marker
                continue
            deleted = entry.operation is not None
            yield KvEntry(entry.key, bytes(entry.value or b""), int(entry.revision or 0), deleted)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            try:
                await watcher.stop()  # type: ignore[no-untyped-call]
            except nats.errors.Error:
                pass


async def kv_values(bucket: KeyValueBucket, pattern: str) -> list[KvEntry]:
    """The current value of every key matching ``pattern`` (deleted keys left out), in stream order.

    A filtered watch read until the last entry pending when it started (the entry whose ``delta``, the
    server's count of messages still pending, is 0); O(matching keys). Whether anything matches at all is
    asked first (stream info filtered on the keys' subjects), not taken from nats-py's "no more pending"
    marker, which can arrive before values already sent (see :meth:`KeyValueBucket.latest`).

    Raises:
        JetStreamUnavailableError: JetStream did not answer.
    """
    found: dict[str, KvEntry] = {}
    with _translated(f"KV values {bucket.name}/{pattern}"):
        info = await bucket._js.stream_info(
            f"KV_{bucket.name}", subjects_filter=f"$KV.{bucket.name}.{pattern}"
        )
        if not info.state.subjects:
            return []
        watcher = await bucket._kv.watch(pattern)
        try:
            with anyio.fail_after(bucket.timeout_s):
                async for entry in watcher:
                    if entry is None:  # nats-py's marker: not trusted (see above)
                        continue
                    if entry.operation is None:
                        found[entry.key] = KvEntry(
                            entry.key, bytes(entry.value or b""), int(entry.revision or 0)
                        )
                    else:
                        found.pop(entry.key, None)
                    if not entry.delta:
                        break
        except TimeoutError:
            raise nats.errors.TimeoutError from None
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                try:
                    await watcher.stop()  # type: ignore[no-untyped-call]
                except nats.errors.Error:
                    pass
    return sorted(found.values(), key=lambda e: e.revision)


class OrderedReader:
    """A stream's messages in sequence order from a start sequence, read with an ordered consumer.

    An ordered consumer (ADR-17) is ephemeral, flow-controlled and unacknowledged; nats-py recreates
    it from the next expected sequence after a gap, a missed heartbeat or a lost server, so a reader
    sees every message once and in order. Create with :func:`ordered_reader`; call :meth:`aclose`.
    """

    def __init__(self, sub: Any, stream: str) -> None:
        self._sub = sub
        self.stream = stream

    async def next(self, *, timeout_s: float) -> StoredMessage | None:
        """The next message, or ``None`` when none arrived within ``timeout_s`` seconds.

        Raises:
            JetStreamUnavailableError: The connection is closed.
        """
        with _translated(f"read {self.stream}"):
            try:
                msg = await self._sub.next_msg(timeout=timeout_s)
            except nats.errors.TimeoutError:
                return None
        return StoredMessage(
            str(msg.subject), bytes(msg.data or b""), _headers(msg.headers), int(msg.metadata.sequence.stream)
        )

    async def next_batch(self, *, max_msgs: int, timeout_s: float) -> list[StoredMessage]:
        """The next message (waiting up to ``timeout_s`` seconds) and those already received behind it.

        Returns:
            Up to ``max_msgs`` messages in order (empty when none arrived in time).

        Raises:
            JetStreamUnavailableError: The connection is closed.
        """
        first = await self.next(timeout_s=timeout_s)
        batch = [] if first is None else [first]
        while batch and len(batch) < max_msgs and self._sub.pending_msgs > 0:
            more = await self.next(timeout_s=timeout_s)
            if more is None:
                break
            batch.append(more)
        return batch

    async def aclose(self) -> None:
        """Stop reading (the server drops the ephemeral consumer). Idempotent."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            try:
                await self._sub.unsubscribe()
            except nats.errors.Error:
                pass


async def ordered_reader(
    js: JetStream, stream: str, filter_subject: str, *, start_seq: int, heartbeat_s: float = 2.0
) -> OrderedReader:
    """Read ``stream`` (messages on ``filter_subject``) in order, from sequence ``start_seq`` on.

    Args:
        js: JetStream of a connected bus.
        stream: The stream.
        filter_subject: Subjects to deliver (wildcards allowed).
        start_seq: First stream sequence wanted (>= 1; later messages only if it is gone).
        heartbeat_s: Idle heartbeat, in seconds: two missed ones make the client recreate the consumer.

    Raises:
        NotFoundError: No such stream.
        JetStreamUnavailableError: JetStream did not answer.
    """
    config = ConsumerConfig(opt_start_seq=max(start_seq, 1))
    with _translated(f"read {stream} from {start_seq}"):
        sub = await js._js.subscribe(
            filter_subject,
            stream=stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=config,
            idle_heartbeat=heartbeat_s,
        )
    return OrderedReader(sub, stream)


async def last_sequence(js: JetStream, stream: str) -> int:
    """The stream's last sequence (0 when it never held a message).

    Raises:
        NotFoundError: No such stream.
        JetStreamUnavailableError: JetStream did not answer.
    """
    with _translated(f"stream info {stream}"):
        info = await js._js.stream_info(stream)
    return int(info.state.last_seq)
