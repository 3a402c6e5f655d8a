"""Ordered reading of a stream from a sequence on: :class:`OrderedReader`, :func:`last_sequence`."""

from __future__ import annotations

from typing import Any

import anyio
import nats.errors
import nats.js.errors
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
)

from agents.jetstream._base import StoredMessage, headers_of, translated
from agents.jetstream._streams import JetStream

__all__ = ("OrderedReader", "last_sequence", "ordered_reader")


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
        with translated(f"read {self.stream}"):
            try:
                msg = await self._sub.next_msg(timeout=timeout_s)
            except nats.errors.TimeoutError:
                return None
        return StoredMessage(
            str(msg.subject),
            bytes(msg.data or b""),
            headers_of(msg.headers),
            int(msg.metadata.sequence.stream),
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
    with translated(f"read {stream} from {start_seq}"):
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
    with translated(f"stream info {stream}"):
        info = await js._js.stream_info(stream)
    return int(info.state.last_seq)
