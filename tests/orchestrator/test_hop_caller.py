"""The caller's side of the hop on a real nats-server: header blocks, reply delivery, deadlines, ordering.

The orchestrator builds a call's header block from a cached fixed part, its inbox replies are handed over
in nats-py's read loop (no subscription task), every wait of a bus shares one deadline timer, and the
first message of a turn of the event loop is written without a flusher round. Each test here checks a
promise those shortcuts must keep: the same bytes on the wire, every reply delivered, every deadline
kept, messages in the order they were sent.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any, ClassVar

import anyio
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from agents import Agent, AgentBusyError, AgentRunner, Bus, Call
from agents._natsfast import publish_block
from agents.collective import spec_of
from agents.errors import DeadlineExceededError, NoRespondersError
from agents.messaging import Message
from agents.natsheaders import header_block, parse_header_lines
from agents.scopes import ALL_SCOPES, OperationScopes
from orchestrator import CallContext, OrchestratorConfig
from orchestrator.testing import running

pytestmark = pytest.mark.anyio

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_CONTEXT_FIELDS = {
    "request_id": _TEXT.filter(bool),
    "tenant": _TEXT.filter(bool),
    "trace_id": _TEXT,
    "idempotency_key": _TEXT,
    "scopes": st.sets(st.sampled_from(sorted(ALL_SCOPES))),
    "deadline": st.floats(min_value=0, max_value=4e9, allow_nan=False),
}
"""A call context's fields, as the property tests draw them."""


@settings(max_examples=300, deadline=None)
@given(**_CONTEXT_FIELDS)
def test_header_block_is_the_block_of_the_headers(
    request_id: str, tenant: str, trace_id: str, idempotency_key: str, scopes: set[str], deadline: float
) -> None:
    ctx = CallContext(deadline, request_id, tenant, trace_id, frozenset(scopes), idempotency_key)
    block = ctx.header_block()
    assert block == header_block(ctx.headers())
    assert parse_header_lines(block.partition(b"\r\n")[2]) == {
        name: value.replace("\r", " ").replace("\n", " ").strip() for name, value in ctx.headers().items()
    }


@settings(max_examples=300, deadline=None)
@given(**_CONTEXT_FIELDS)
# values the fast path for plain ids must leave to the slow one (trimmed, CR/LF, tab, non-ASCII space)
@example(" id ", "acme", "t\r1", "k\tey\x0b", set(), 1.5)
@example("id\u00a0", "acme", "\x85t", " ", {"read"}, 2.0)
@example("a-1", "default", "a-1", "0123abcd", set(ALL_SCOPES), 3.25)
def test_header_fields_are_what_the_agent_parses_from_the_block(
    request_id: str, tenant: str, trace_id: str, idempotency_key: str, scopes: set[str], deadline: float
) -> None:
    # A request handed to an agent in this process carries these instead of a block written and parsed
    # back: the agent must check exactly the headers it would have read from the wire.
    ctx = CallContext(deadline, request_id, tenant, trace_id, frozenset(scopes), idempotency_key)
    fields = ctx.header_fields()
    assert fields == parse_header_lines(ctx.header_block().partition(b"\r\n")[2])
    assert list(fields) == list(parse_header_lines(ctx.header_block().partition(b"\r\n")[2]))
    fields["x"] = "changed"  # a new dict per call: the cached scopes/tenant part is not shared
    assert "x" not in ctx.header_fields()


def test_header_fields_refuse_what_the_block_cannot_carry() -> None:
    ctx = CallContext.with_timeout(5, request_id="bad\ud800id")  # a lone surrogate is not UTF-8
    with pytest.raises(UnicodeEncodeError):
        ctx.header_block()
    with pytest.raises(UnicodeEncodeError):
        ctx.header_fields()


def test_an_attempt_is_the_context_with_its_own_id_deadline_and_key() -> None:
    ctx = CallContext.with_timeout(30, tenant="acme", trace_id="t1", scopes=frozenset({"read"}))
    attempt = ctx.attempt(f"{ctx.request_id}-2", 123.5, "key")
    assert attempt == dataclasses.replace(
        ctx, request_id=f"{ctx.request_id}-2", deadline=123.5, idempotency_key="key"
    )
    assert len(dataclasses.fields(CallContext)) == 6  # attempt() sets each of them


class EchoIn(BaseModel):
    seconds: float = 0.0
    value: int = 0


class Echo(Agent):
    """Answers with its input's value (after sleeping ``seconds``)."""

    name = "t-echo"
    team = "analysis"
    description = "Answers with the value it was given."
    capabilities = ("echo",)
    input_model: ClassVar[type[BaseModel]] = EchoIn

    async def handle(self, call: Call) -> Mapping[str, Any]:
        await anyio.sleep(call.input.seconds)
        return {"value": call.input.value}


class AdminEcho(Echo):
    """The fallback of ``t-echo``, for admins only."""

    name = "t-admin-echo"
    description = "Answers with the value it was given, for admins."
    scopes = OperationScopes(default="admin")


SPECS = [spec_of(Echo), spec_of(AdminEcho)]
CONFIG = OrchestratorConfig(backoff_base_s=0.01, backoff_max_s=0.05)


async def test_replies_reach_their_calls_from_the_read_loop(bus: Bus) -> None:
    echo = AgentRunner(bus, Echo(), concurrency=16, mailbox_size=512)
    async with running(bus, [echo], config=CONFIG, specs=SPECS) as orch:
        results: list[int] = []

        async def call(value: int) -> None:
            inv = await orch.invoke("t-echo", {"value": value}, CallContext.with_timeout(10))
            results.append(inv.output["value"])

        async with anyio.create_task_group() as tg:
            for value in range(400):
                tg.start_soon(call, value)
    assert sorted(results) == list(range(400))
    sub = bus._inbox_sub
    assert sub is not None
    assert sub._wait_for_msgs_task is None  # no task between nats-py's read loop and the calls
    assert sub._pending_size == 0  # nats-py's slow-consumer count never grows
    timers = bus._timers
    assert timers._live == 0 and len(timers._heap) <= 1024  # finished waits do not pile up


async def test_a_message_for_a_closed_inbox_is_dropped(bus: Bus) -> None:
    box = await bus.open_inbox()
    bus.close_inbox(box)
    await bus.publish(box.subject, b"late")
    await bus.publish(f"{box.subject}.r", b"late reply")
    await bus.flush()
    async with bus.inbox() as fresh:  # the bus still delivers
        await bus.publish(fresh.subject, b"on time")
        msg = await fresh.next(5)
    assert msg.data == b"on time"


async def test_waits_with_different_deadlines_each_end_at_their_own(bus: Bus) -> None:
    timeouts = [0.3, 0.05, 0.2, 0.1, 0.25, 0.15]
    ended: list[tuple[float, float]] = []

    async def wait(timeout_s: float) -> None:
        async with bus.inbox() as box:
            started = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                await box.next(timeout_s)
            ended.append((timeout_s, time.monotonic() - started))

    async with anyio.create_task_group() as tg:
        for timeout_s in timeouts:
            tg.start_soon(wait, timeout_s)
    assert [t for t, _ in ended] == sorted(timeouts)  # in deadline order
    assert all(waited >= timeout_s for timeout_s, waited in ended)
    assert bus._timers._live == 0


async def test_a_wait_ends_when_its_message_arrives_before_an_earlier_deadline(bus: Bus) -> None:
    async with bus.inbox() as slow, bus.inbox() as fast:
        async with anyio.create_task_group() as tg:
            got: list[Message] = []

            async def read(timeout_s: float) -> None:
                got.append(await fast.next(timeout_s))

            tg.start_soon(read, 10.0)
            with pytest.raises(DeadlineExceededError):
                await slow.next(0.05)  # the earlier deadline passes; the later wait goes on
            await bus.publish(fast.subject, b"here")
    assert [m.data for m in got] == [b"here"]


async def test_messages_sent_in_one_turn_and_the_next_keep_their_order(bus: Bus, nats_server: Any) -> None:
    seen: list[Message] = []
    arrived = anyio.Event()

    async def spy(msg: Message) -> None:
        seen.append(msg)
        if len(seen) == 4:
            arrived.set()

    block = CallContext.with_timeout(5, tenant="acme").header_block()
    async with await Bus.connect(nats_server.url, name="spy") as other:
        async with other.subscription("t.order.>", spy):
            await other.flush()
            await publish_block(bus._nc, "t.order.a", "", block, b"1", bus._turn)  # written at once
            await bus.publish("t.order.b", b"2")  # through nats-py's pending buffer
            await publish_block(bus._nc, "t.order.c", "", block, b"3", bus._turn)  # behind it
            await anyio.sleep(0)
            await publish_block(bus._nc, "t.order.d", "", block, b"4", bus._turn)  # a new turn: at once again
            with anyio.fail_after(30):
                await arrived.wait()
    assert [(m.subject, m.data) for m in seen] == [
        ("t.order.a", b"1"),
        ("t.order.b", b"2"),
        ("t.order.c", b"3"),
        ("t.order.d", b"4"),
    ]
    assert seen[0].headers["Neurectomy-Tenant"] == "acme" and seen[3].headers == seen[0].headers


async def test_only_the_bus_s_only_call_writes_its_request_at_once(bus: Bus) -> None:
    """Alone, a request leaves without a flusher round; with other calls in flight, with their requests."""
    transport = bus._nc._transport
    assert transport is not None
    written: list[bytes] = []
    write = transport.write

    def spy(data: bytes) -> None:
        written.append(bytes(data))
        write(data)

    at_once: dict[int, bool] = {}
    transport.write = spy  # type: ignore[method-assign]
    try:
        for others in (0, 1, 3):
            async with AsyncExitStack() as stack:
                for _ in range(others):
                    await stack.enter_async_context(bus.inbox())
                box = await stack.enter_async_context(bus.inbox())
                await anyio.sleep(0)  # a fresh turn of the event loop
                written.clear()
                with pytest.raises(NoRespondersError):
                    block = CallContext.with_timeout(5).header_block()
                    await box.request(f"t.nobody.{others}", b"x", block=block, timeout_s=5)
                at_once[others] = any(f"t.nobody.{others}".encode() in data for data in written)
    finally:
        del transport.write
    assert at_once == {0: True, 1: False, 3: False}


async def test_a_fallback_the_caller_may_not_use_is_not_tried(bus: Bus) -> None:
    busy = AgentRunner(bus, Echo(), mailbox_size=1)
    admin = AgentRunner(bus, AdminEcho())
    async with running(bus, [busy, admin], config=CONFIG, specs=SPECS) as orch:
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(orch.invoke, "t-echo", {"seconds": 1.0}, CallContext.with_timeout(10))
            with anyio.fail_after(10):  # one call in flight and one in the mailbox: the agent is full
                while not (busy.stats.accepted == 2 and busy.stats.in_flight == 1):
                    await anyio.sleep(0.01)
            writer = CallContext.with_timeout(10, scopes=frozenset({"read", "write"}))
            with pytest.raises(AgentBusyError):
                await orch.invoke("t-echo", {"value": 1}, writer)
            inv = await orch.invoke("t-echo", {"value": 2}, CallContext.with_timeout(10))
    assert admin.stats.accepted == 1  # the admin's call alone reached the fallback
    assert inv.agent == "t-admin-echo" and inv.output == {"value": 2}
    assert inv.failovers == ["t-echo: busy"] * 2  # its instance's direct subject, then its queue group


class SlowToAccept(Echo):
    """Sends its accept only after ``accept_grace_s`` (a call that ends sooner answers with its End)."""

    accept_grace_s: ClassVar[float] = 30.0


async def test_a_call_left_before_its_accept_is_cancelled_at_the_agent(bus: Bus) -> None:
    runner = AgentRunner(bus, SlowToAccept())
    async with running(bus, [runner], config=CONFIG, specs=SPECS) as orch:
        async with anyio.create_task_group() as tg:
            tg.start_soon(orch.invoke, "t-echo", {"seconds": 30.0}, CallContext.with_timeout(60))
            with anyio.fail_after(10):  # the agent runs it; the caller still waits for the accept
                while runner.stats.in_flight < 1:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        with anyio.fail_after(10):  # told to stop, the agent does not run it to the end
            while runner.stats.cancelled < 1:
                await anyio.sleep(0.01)
    assert runner.stats.completed == 0


def test_with_timeout_without_keywords_gives_every_other_field_its_default() -> None:
    # CallContext.with_timeout(s) alone sets the fields directly: the same context as the constructor's.
    before = time.time()
    ctx = CallContext.with_timeout(5)
    after = time.time()
    assert type(ctx) is CallContext
    assert before + 5 <= ctx.deadline <= after + 5
    assert ctx == CallContext(ctx.deadline, ctx.request_id)  # tenant, trace id, scopes, key: defaults
    assert len(ctx.request_id) == 32
    assert ctx.request_id != CallContext.with_timeout(5).request_id


def test_the_constructor_is_the_dataclass_s() -> None:
    """``CallContext``'s written-out ``__init__`` (compiled: a native class) does what the dataclass's did."""
    ctx = CallContext(7.5, "rq", "acme", "tr", frozenset({"read"}), "key")
    assert (ctx.deadline, ctx.request_id, ctx.tenant, ctx.trace_id, ctx.scopes, ctx.idempotency_key) == (
        7.5,
        "rq",
        "acme",
        "tr",
        frozenset({"read"}),
        "key",
    )
    assert ctx == CallContext(
        deadline=7.5,
        request_id="rq",
        tenant="acme",
        trace_id="tr",
        scopes=frozenset({"read"}),
        idempotency_key="key",
    )
    assert hash(ctx) == hash(CallContext(7.5, "rq", "acme", "tr", frozenset({"read"}), "key"))
    assert CallContext(7.5).request_id != CallContext(7.5).request_id  # a new id each time
    assert CallContext(7.5, "").request_id == ""  # an id given is kept, whatever it is
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.tenant = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        CallContext.with_timeout(5, tenat="typo")  # type: ignore[arg-type]
    assert dataclasses.replace(ctx, request_id="rq-2") == ctx.attempt("rq-2", 7.5, "key")
    assert CallContext.with_timeout(5, tenant="acme", scopes=frozenset({"read"})).scopes == frozenset(
        {"read"}
    )
