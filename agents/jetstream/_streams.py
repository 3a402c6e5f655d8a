"""JetStream streams and pull consumers: :class:`JetStream`, :class:`PullConsumer`, :class:`JsMessage`.

Pull consumers fetch with ``no_wait`` pull requests (see :mod:`agents.jetstream`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

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
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue

from agents.jetstream._base import (
    STREAM_CONFIG_CONFLICT,
    JetStreamUnavailableError,
    StoredMessage,
    headers_of,
    raw_client,
    translated,
)
from agents.jetstream._kv import KeyValueBucket
from agents.jetstream._startup import until_ready
from agents.messaging import Bus

__all__ = ("JetStream", "JsMessage", "PullConsumer")

T = TypeVar("T")


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
        with translated("ack"):
            await self._msg.ack()

    async def nak(self, delay_s: float | None = None) -> None:
        """Ask for redelivery, after ``delay_s`` seconds if given.

        Raises:
            JetStreamUnavailableError: The connection is closed.
        """
        with translated("nak"):
            await self._msg.nak(delay=delay_s)

    async def in_progress(self) -> None:
        """Reset the ack-wait timer: still working on it (may be sent many times).

        Raises:
            JetStreamUnavailableError: The connection is closed.
        """
        with translated("in-progress ack"):
            await self._msg.in_progress()

    async def term(self) -> None:
        """Stop redelivering it (it can never be processed).

        Raises:
            JetStreamUnavailableError: The connection is closed.
        """
        with translated("term"):
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
        with translated(f"fetch from {self.stream}/{self.durable}"):
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

    The set-up calls (:meth:`ensure_stream`, :meth:`ensure_key_value`, :meth:`pull_consumer`) wait for a
    cluster that is not ready yet (no meta or stream leader), up to ``startup_timeout_s``
    (:func:`agents.jetstream._startup.until_ready`); every other call fails at once.

    Args:
        bus: Connected bus (not closed by this object).
        timeout_s: Deadline of each JetStream API call and publish ack, in seconds.
    """

    def __init__(self, bus: Bus, *, timeout_s: float = 5.0) -> None:
        self._nc = raw_client(bus)
        self._js: JetStreamContext = self._nc.jetstream(timeout=timeout_s)
        self._denials = bus.permission_denials
        self.timeout_s = timeout_s
        self.replicas = bus.stream_replicas
        """Replicas of each stream and KV bucket created here (``nats.stream_replicas``)."""
        self.startup_timeout_s = bus.jetstream_startup_timeout_s
        """How long each set-up call waits for JetStream to be ready, in seconds
        (``nats.jetstream_startup_timeout_s``)."""

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
            JetStreamNotReadyError: JetStream was still not ready after ``startup_timeout_s``.
            JetStreamUnavailableError: JetStream is not enabled.
            ForbiddenError: The credentials may not create streams.
            AgentFailedError: JetStream refused the configuration.
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
        what = f"create stream {name}"

        async def attempt() -> None:
            with translated(what):
                try:
                    await self._js.add_stream(config)
                except nats.js.errors.BadRequestError as exc:
                    if exc.err_code != STREAM_CONFIG_CONFLICT:
                        raise
                    await self._js.update_stream(config)

        await self._until_ready(what, attempt)

    async def _until_ready(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        return await until_ready(what, attempt, timeout_s=self.startup_timeout_s, denials=self._denials)

    async def ensure_key_value(
        self, bucket: str, *, history: int = 1, ttl_s: float | None = None
    ) -> KeyValueBucket:
        """The KV bucket ``bucket`` (file storage), created if missing.

        Args:
            bucket: Bucket name.
            history: Values kept per key, 1–64.
            ttl_s: Values older than this expire, in seconds (``None``: kept).

        Raises:
            JetStreamNotReadyError: JetStream was still not ready after ``startup_timeout_s``.
            JetStreamUnavailableError: JetStream is not enabled.
            ForbiddenError: The credentials may not open or create the bucket.
            AgentFailedError: JetStream refused the configuration.
        """
        what = f"open KV bucket {bucket}"

        async def attempt() -> KeyValue:
            with translated(what):
                try:
                    return await self._js.key_value(bucket)
                except nats.js.errors.BucketNotFoundError:
                    return await self._js.create_key_value(
                        KeyValueConfig(
                            bucket=bucket,
                            history=history,
                            ttl=ttl_s,
                            storage=StorageType.FILE,
                            replicas=self.replicas,
                        )
                    )

        kv = await self._until_ready(what, attempt)
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
        with translated(f"publish to {subject}"):
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
            JetStreamNotReadyError: JetStream was still not ready after ``startup_timeout_s``.
            JetStreamUnavailableError: JetStream is not enabled.
            ForbiddenError: The credentials may not create consumers.
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
        what = f"create consumer {stream}/{durable}"

        async def attempt() -> None:
            with translated(what):
                await self._js.add_consumer(stream, config=config)

        await self._until_ready(what, attempt)
        with translated(f"subscribe for {stream}/{durable}"):
            inbox = self._nc.new_inbox()
            sub = await self._nc.subscribe(inbox)
        return PullConsumer(self._nc, sub, inbox, stream, durable)

    async def message_count(self, stream: str) -> int:
        """Messages the stream holds now.

        Raises:
            NotFoundError: No such stream.
            JetStreamUnavailableError: JetStream did not answer.
        """
        with translated(f"stream info {stream}"):
            info = await self._js.stream_info(stream)
        return int(info.state.messages)

    async def last_message(self, stream: str, subject: str) -> StoredMessage:
        """The last message on ``subject`` in ``stream``.

        Raises:
            NotFoundError: No such stream or no message on ``subject``.
            JetStreamUnavailableError: JetStream did not answer.
        """
        with translated(f"read {stream}/{subject}"):
            raw = await self._js.get_last_msg(stream, subject)
        return StoredMessage(
            str(raw.subject or ""), bytes(raw.data or b""), headers_of(raw.headers), int(raw.seq or 0)
        )

    async def delete_message(self, stream: str, seq: int) -> bool:
        """Remove the message ``seq`` from ``stream``.

        Returns:
            Whether it was there.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        with translated(f"delete {stream}/{seq}"):
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
        with translated(f"delete stream {name}"):
            await self._js.delete_stream(name)
