"""Group commit for ``POST /v1/sigma/compress``: concurrent single messages share one compressor call.

One request per message pays a whole agent call (two NATS messages, the orchestrator's routing, the
agent's dispatch, a thread hop and a store commit) for ~10 KB of work. `CompressCoalescer` sends a
message at once when its *lane* has no call in flight, alone (an idle service adds no latency);
messages arriving while a call is in flight wait for it in the lane's next *group*, and when it ends
the group's first request (its *leader*) sends the whole group as one batch: the compressor's binary
attachment (`agents.compression.wire.pack_parts`), each message with its own conversation
(``streams``), compressed in arrival order in one store transaction. Every request gets its own frame
and report, exactly those a call of its own would have made in that order; the answer comes only
after the batch's store transaction committed, as for a single call.

A lane is one tenant, one credential's scopes and the same options (``level``, ``dedup``). The call
carries its tenant and scopes in its headers as every call does, so the compressor checks and stores
each message under that tenant. Tenants never share a call: a per-message tenant would have to travel
in the payload, where any caller of ``POST /v1/agents/compressor`` could name another tenant; lanes of
different tenants run side by side (the compressor commits their calls one after another anyway).

A group holds at most `MAX_GROUP_MESSAGES` messages and `agents.compression.MAX_DATA_BYTES` bytes
(one call's limit); a message that does not fit opens the next group. The group's call has the latest
deadline of its members; a member stops waiting at its own deadline (504). The leader's call is
shielded from its own request's cancellation (a client that disconnects does not cancel the others'
work); it ends by its deadline. A failed call fails every request of its group with the same error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import pydantic_core

from agents.compression import MAX_DATA_BYTES
from agents.compression.wire import pack_parts, unpack_parts
from agents.errors import DeadlineExceededError, StreamBrokenError
from agents.protocol import Attached
from orchestrator import CallContext, Orchestrator

__all__ = ("MAX_GROUP_MESSAGES", "CompressCoalescer", "CompressedMessage")

MAX_GROUP_MESSAGES = 64
"""Most messages one group sends in one compressor call."""
TEAM = "compression"
AGENT = "compressor"

CompressedMessage = tuple[bytes, bytes]
"""One message's report (a JSON object, `agents.compression.wire.SigmaCompressionReport`) and frame."""
_LaneKey = tuple[str, frozenset[str], int | None, bool]


@dataclass(eq=False, slots=True)
class _Group:
    """Messages that go to the compressor in one call, and what came back."""

    messages: list[bytes] = field(default_factory=list)
    streams: list[str | None] = field(default_factory=list)
    size: int = 0
    deadline: float = 0.0
    done: anyio.Event = field(default_factory=anyio.Event)
    results: list[CompressedMessage] | None = None
    error: Exception | None = None

    def fits(self, size: int) -> bool:
        return len(self.messages) < MAX_GROUP_MESSAGES and self.size + size <= MAX_DATA_BYTES


@dataclass(eq=False, slots=True)
class _Lane:
    """One tenant's (scopes', options') calls: at most one in flight, the next group filling meanwhile."""

    lock: anyio.Lock = field(default_factory=anyio.Lock)
    open: _Group | None = None
    requests: int = 0
    """Requests in the lane now (it is dropped when none is left)."""


class CompressCoalescer:
    """Sends concurrent single-message compressions of a lane as one compressor call (see the module).

    Args:
        orchestrator: Routes the calls to the compressor.
    """

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self._lanes: dict[_LaneKey, _Lane] = {}
        self.calls = 0
        """Compressor calls made (each for one group)."""
        self.messages = 0
        """Messages compressed through them."""

    async def compress(
        self, message: bytes, ctx: CallContext, *, stream: str | None, level: int | None, dedup: bool
    ) -> CompressedMessage:
        """Compress one message of ``ctx.tenant``, alone or with the concurrent ones of its lane.

        Args:
            message: The message (at most ``MAX_DATA_BYTES``, checked by the caller).
            ctx: The request's context: its tenant, scopes and deadline.
            stream: The message's conversation, or None.
            level: zstd level (None: the codec's default).
            dedup: Store-backed frame (False: self-contained).

        Returns:
            The message's report (JSON object) and frame.

        Raises:
            AgentError: What the compressor call raised, or ``DeadlineExceededError`` when the request's
                own deadline passed while its group's call was still running.
        """
        key = (ctx.tenant, ctx.scopes, level, dedup)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        lane.requests += 1
        try:
            group = lane.open
            leader = group is None or not group.fits(len(message))
            if leader:
                group = lane.open = _Group()
            assert group is not None  # noqa: S101 - just made
            index = len(group.messages)
            group.messages.append(message)
            group.streams.append(stream)
            group.size += len(message)
            group.deadline = max(group.deadline, ctx.deadline)
            if leader:
                with anyio.CancelScope(shield=True):
                    async with lane.lock:  # the previous group's call, if any, has ended
                        if lane.open is group:
                            lane.open = None  # later messages start the next group
                        await self._send(group, ctx, level, dedup)
            else:
                with anyio.move_on_after(max(ctx.remaining_s(), 0.0)):
                    await group.done.wait()
                if not group.done.is_set():
                    raise DeadlineExceededError(
                        "the request's deadline passed while its compression was still running"
                    )
        finally:
            lane.requests -= 1
            if not lane.requests:
                del self._lanes[key]
        if group.error is not None:
            raise group.error
        assert group.results is not None  # noqa: S101 - set with done when there is no error
        return group.results[index]

    async def _send(self, group: _Group, ctx: CallContext, level: int | None, dedup: bool) -> None:
        """One compressor call for the group; its results (or error) for every member, then ``done``."""
        try:
            options: dict[str, Any] = {"level": level, "dedup": dedup}
            if len(group.messages) == 1:
                options["stream"] = group.streams[0]
            else:
                options["streams"] = group.streams
            call_ctx = ctx.attempt(ctx.request_id, group.deadline, ctx.idempotency_key)  # the latest deadline
            out = await self.orchestrator.call(
                TEAM, AGENT, Attached(options, pack_parts(group.messages)), call_ctx
            )
            attachment = getattr(out, "attachment", None)
            if attachment is None:
                raise StreamBrokenError(f"{AGENT} answered without its binary attachment")
            reports, *frames = unpack_parts(attachment, len(group.messages) + 1)
            listed = pydantic_core.from_json(reports)
            if len(frames) != len(group.messages) or len(listed) != len(frames):
                raise StreamBrokenError(
                    f"{AGENT} answered {len(frames)} frames and {len(listed)} reports "
                    f"for {len(group.messages)} messages"
                )
            group.results = [(pydantic_core.to_json(r), f) for r, f in zip(listed, frames, strict=True)]
            self.calls += 1
            self.messages += len(frames)
        except Exception as exc:  # every member gets the call's error
            group.error = exc
        finally:
            group.done.set()

