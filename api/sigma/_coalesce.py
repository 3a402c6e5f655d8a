"""Group commit for ``POST /v1/sigma/compress``: concurrent single messages share one compressor call.

One request per message pays a whole agent call (two NATS messages, the orchestrator's routing, the
agent's dispatch, a thread hop and a store commit) for ~10 KB of work. `CompressCoalescer` sends a
message at once when its *lane* has no call in flight, alone (an idle service adds no latency);
messages arriving while a call is in flight wait in the lane's next *group*, which is sent as one
batch as soon as that call ends: the compressor's binary attachment
(`agents.compression.wire.pack_parts`), each message with its own conversation (``streams``),
compressed in arrival order in one store transaction. Every request gets its own frame and report,
exactly those a call of its own would have made in that order, and only after the batch's store
transaction committed, as for a call of its own.

A lane is one tenant, one credential's scopes and the same options (``level``, ``dedup``). The call
carries its tenant and scopes in its headers as every call does, so the compressor checks and stores
each message under that tenant. Tenants never share a call: a per-message tenant would have to travel
in the payload, where any caller of ``POST /v1/agents/compressor`` could name another tenant; lanes of
different tenants run side by side (the compressor commits their calls one after another anyway).

A group holds at most `MAX_GROUP_MESSAGES` messages and `agents.compression.MAX_DATA_BYTES` bytes
(one call's limit); a message that does not fit opens the next group. Groups are sent by tasks of the
coalescer's task group (the app's lifespan owns it, `coalescing`), never by a member's own task, so
a member that is cancelled (its client went away) or whose deadline passes (504) stops waiting
without disturbing the others; the group's call has the latest deadline of its members. A failed call
fails every request of its group with its error.

The message of an idle lane is sent by its own request's task, shielded from that task's
cancellation (the lane's next group must not start before this call has ended) and ended by the
request's deadline like any call: a lone turn, the common case when requests come one at a time,
then costs no task, lock or event. Through them it cost ~0.15-0.2 ms of event-loop CPU per request
here (anyio's task spawn, lock and event each take loop iterations; docs/sigmalang.md, "One turn per
request, round 3").
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import pydantic_core
from litestar import Litestar

from agents.compression import MAX_DATA_BYTES
from agents.compression.wire import pack_parts, unpack_parts
from agents.errors import AgentBusyError, DeadlineExceededError, StreamBrokenError
from agents.protocol import Attached
from orchestrator import CallContext, Orchestrator

__all__ = (
    "COALESCER_STATE",
    "MAX_GROUP_MESSAGES",
    "TEAM",
    "CompressCoalescer",
    "CompressedMessage",
    "attachment_of",
    "call_compressor",
    "coalescing",
    "compress_messages",
)

MAX_GROUP_MESSAGES = 64
"""Most messages one group sends in one compressor call."""
COALESCER_STATE = "sigma_compress_coalescer"
"""Key of the app's `CompressCoalescer` in its state (absent when the app's lifespan did not run)."""
TEAM = "compression"
"""The Compression team (``neurectomy.agent.compression.*``)."""
AGENT = "compressor"

CompressedMessage = tuple[bytes, bytes]
"""One message's report (a JSON object, `agents.compression.wire.SigmaCompressionReport`) and frame."""
_LaneKey = tuple[str, frozenset[str], int | None, bool]


def attachment_of(out: dict[str, Any], agent: str) -> bytes:
    """An agent's binary answer (`agents.protocol.Attached`).

    Raises:
        StreamBrokenError: The answer had none (an agent that does not speak it).
    """
    attachment = getattr(out, "attachment", None)
    if attachment is None:
        raise StreamBrokenError(f"{agent} answered without its binary attachment")
    return bytes(attachment)


async def call_compressor(
    orchestrator: Orchestrator, options: dict[str, Any], messages: bytes, ctx: CallContext
) -> bytes:
    """Messages (`pack_parts` layout) → the compressor's answer: reports (JSON array), then frames."""
    out = await orchestrator.call(TEAM, AGENT, Attached(options, messages), ctx)
    return attachment_of(out, AGENT)


async def compress_messages(
    orchestrator: Orchestrator,
    messages: Sequence[bytes],
    streams: Sequence[str | None],
    ctx: CallContext,
    *,
    level: int | None,
    dedup: bool,
) -> list[CompressedMessage]:
    """One compressor call for ``messages`` of ``ctx.tenant``, raw both ways; each one's report and frame.

    Raises:
        AgentError: The call's error; ``StreamBrokenError`` when the answer does not hold one frame and
            report per message.
    """
    options: dict[str, Any] = {"level": level, "dedup": dedup}
    if len(messages) == 1:
        options["stream"] = streams[0]
    else:
        options["streams"] = list(streams)
    answer = await call_compressor(orchestrator, options, pack_parts(messages), ctx)
    reports, *frames = unpack_parts(answer, len(messages) + 1)
    listed = pydantic_core.from_json(reports)
    if len(frames) != len(messages) or len(listed) != len(frames):
        raise StreamBrokenError(
            f"{AGENT} answered {len(frames)} frames and {len(listed)} reports for {len(messages)} messages"
        )
    return [(pydantic_core.to_json(r), f) for r, f in zip(listed, frames, strict=True)]


_STOPPING = "the compression call was cancelled: the service is stopping"
"""The ``busy`` answer of a group whose call was cancelled, or never sent, as the app stops."""


@dataclass(eq=False, slots=True)
class _Group:
    """Messages that wait for their lane's call in flight, then go to the compressor in one call."""

    ctx: CallContext
    """The first member's context (request id, trace id, tenant, scopes)."""
    messages: list[bytes] = field(default_factory=list)
    streams: list[str | None] = field(default_factory=list)
    size: int = 0
    deadline: float = 0.0
    done: anyio.Event = field(default_factory=anyio.Event)
    results: list[CompressedMessage] | None = None
    error: Exception | None = None

    def fits(self, size: int) -> bool:
        return len(self.messages) < MAX_GROUP_MESSAGES and self.size + size <= MAX_DATA_BYTES

    def fail(self, error: Exception) -> None:
        self.error = error
        self.done.set()


@dataclass(eq=False, slots=True)
class _Lane:
    """A lane with a call in flight (an idle lane has no entry): the groups waiting for it, in order."""

    waiting: deque[_Group] = field(default_factory=deque)


class CompressCoalescer:
    """Sends concurrent single-message compressions of a lane as one compressor call (see the module).

    An async context manager: its task group sends the groups (leaving it cancels the calls in
    flight; their requests get ``busy``).

    Args:
        orchestrator: Routes the calls to the compressor.
    """

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self._lanes: dict[_LaneKey, _Lane] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def pending(self) -> int:
        """Messages waiting in a group for the call in flight of their lane to end."""
        return sum(len(group.messages) for lane in self._lanes.values() for group in lane.waiting)

    async def __aenter__(self) -> CompressCoalescer:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg, self._tg = self._tg, None
        if tg is None:
            return None
        tg.cancel_scope.cancel()
        return await tg.__aexit__(exc_type, exc, tb)

    async def compress(
        self, message: bytes, ctx: CallContext, *, stream: str | None, level: int | None, dedup: bool
    ) -> CompressedMessage:
        """Compress one message of ``ctx.tenant``, alone or with the concurrent ones of its lane.

        A message of an idle lane is sent from the caller's task, shielded from its cancellation (the
        lane's next group goes only once this call has ended, so a stream's turns reach the store in
        order); the call itself ends at ``ctx``'s deadline. A message arriving while its lane has a
        call in flight waits in the lane's next group, sent by the coalescer's task group, until the
        group's call ends or its own deadline passes.

        Args:
            message: The message (at most ``MAX_DATA_BYTES``, checked by the caller).
            ctx: The request's context: its tenant, scopes and deadline.
            stream: The message's conversation, or None.
            level: zstd level (None: the codec's default).
            dedup: Store-backed frame (False: self-contained).

        Returns:
            The message's report (JSON object) and frame.

        Raises:
            AgentError: What the compressor call raised; ``DeadlineExceededError`` when the request's
                own deadline passed first; ``AgentBusyError`` when the coalescer is not running.
        """
        if self._tg is None:
            raise AgentBusyError("the compression coalescer is not running (the app is stopping)")
        key = (ctx.tenant, ctx.scopes, level, dedup)
        lane = self._lanes.get(key)
        if lane is None:  # idle: sent at once, alone (no task, lock or event for the common case)
            lane = self._lanes[key] = _Lane()
            try:
                with anyio.CancelScope(shield=True):
                    (one,) = await compress_messages(
                        self.orchestrator, [message], [stream], ctx, level=level, dedup=dedup
                    )
            finally:
                self._next(key, lane, level, dedup)
            return one
        group = lane.waiting[-1] if lane.waiting else None
        if group is None or not group.fits(len(message)):
            group = _Group(ctx)
            lane.waiting.append(group)
        index = len(group.messages)
        group.messages.append(message)
        group.streams.append(stream)
        group.size += len(message)
        group.deadline = max(group.deadline, ctx.deadline)
        with anyio.move_on_after(max(ctx.remaining_s(), 0.0)):
            await group.done.wait()
        if not group.done.is_set():
            raise DeadlineExceededError("the request's deadline passed before its compression finished")
        if group.error is not None:
            raise group.error
        assert group.results is not None  # noqa: S101 - set with done when there is no error
        return group.results[index]

    def _next(self, key: _LaneKey, lane: _Lane, level: int | None, dedup: bool) -> None:
        """The lane's call has ended: send its next group from the task group, or forget the idle lane."""
        if not lane.waiting:
            del self._lanes[key]
        elif self._tg is None:  # stopping: nothing more is sent
            del self._lanes[key]
            for group in lane.waiting:
                group.fail(AgentBusyError(_STOPPING))
            lane.waiting.clear()
        else:
            self._tg.start_soon(self._send, key, lane, lane.waiting.popleft(), level, dedup)

    async def _send(self, key: _LaneKey, lane: _Lane, group: _Group, level: int | None, dedup: bool) -> None:
        """Send ``group`` (its lane's call in flight has ended); its results (or error) for all."""
        try:
            ctx = group.ctx.attempt(group.ctx.request_id, group.deadline, group.ctx.idempotency_key)
            group.results = await compress_messages(
                self.orchestrator, group.messages, group.streams, ctx, level=level, dedup=dedup
            )
        except Exception as exc:  # every member gets the call's error
            group.error = exc
        finally:
            if group.results is None and group.error is None:  # cancelled: the app is stopping
                group.error = AgentBusyError(_STOPPING)
            group.done.set()
            self._next(key, lane, level, dedup)


@asynccontextmanager
async def coalescing(app: Litestar) -> AsyncIterator[None]:
    """The app's lifespan hook: a `CompressCoalescer` over ``app.state.orchestrator`` while it serves."""
    async with CompressCoalescer(app.state.orchestrator) as coalescer:
        app.state[COALESCER_STATE] = coalescer
        try:
            yield
        finally:
            del app.state[COALESCER_STATE]
