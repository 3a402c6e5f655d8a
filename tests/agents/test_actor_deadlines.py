"""An agent instance's deadlines and cancels (real nats-server): one timer per instance cancels each running
call at its own deadline, a cancel message stops the call it names, a call whose deadline passed or whose
caller cancelled it before it started is never run, and the worker goes on serving after each."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from agents import Agent, AgentRunner, Bus, Call
from agents.protocol import End, Error, Reply, agent_subject, cancel_subject, stream_message_adapter
from orchestrator import CallContext

pytestmark = pytest.mark.anyio

SUBJECT = agent_subject("analysis", "t-waiter")


class Waiter(Agent):
    """Answers ``{"tag": …}``; with ``wait`` first waits for the test's gate."""

    name = "t-waiter"
    team = "analysis"
    description = "Waits for the test when asked to, then answers with its tag."

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.swallow = False

    async def handle(self, call: Call) -> Mapping[str, Any]:
        tag = call.input["tag"]
        self.started.append(tag)
        if call.input.get("wait"):
            try:
                await self.gate.wait()
            except anyio.get_cancelled_exc_class():
                self.cancelled.append(tag)
                if self.swallow:  # a handler that ignores its cancellation and answers anyway
                    return {"tag": tag, "swallowed": True}
                raise
        return {"tag": tag}


@asynccontextmanager
async def _run(bus: Bus, agent: Agent, concurrency: int) -> AsyncIterator[AgentRunner]:
    async with anyio.create_task_group() as tg:
        runner = AgentRunner(bus, agent, concurrency=concurrency)
        await tg.start(runner.run)
        yield runner
        tg.cancel_scope.cancel()


async def _ask(bus: Bus, ctx: CallContext, tag: str, *, wait: bool = False) -> End | Error:
    """One call: the accept (when sent) on the reply subject, then the last message in the stream."""
    payload = f'{{"tag": "{tag}", "wait": {"true" if wait else "false"}}}'.encode()
    async with bus.inbox() as box:
        reply = await box.request(SUBJECT, payload, headers=ctx.headers(), timeout_s=10)
        first = stream_message_adapter.validate_json(reply.data) if b'"type"' in reply.data else None
        if first is None:
            assert Reply.model_validate_json(reply.data).ok
            first = stream_message_adapter.validate_json((await box.next(10)).data)
    assert isinstance(first, End | Error)
    return first


async def test_a_running_call_is_cancelled_at_its_deadline_and_the_worker_goes_on(bus: Bus) -> None:
    agent = Waiter()
    async with _run(bus, agent, concurrency=1):
        started = time.monotonic()
        last = await _ask(bus, CallContext.with_timeout(0.5), "late", wait=True)
        assert isinstance(last, Error) and last.error.code == "timeout"
        assert time.monotonic() - started >= 0.45  # not before its deadline
        assert agent.cancelled == ["late"]
        after = await _ask(bus, CallContext.with_timeout(5), "next")  # the same worker, a new scope
        assert isinstance(after, End) and after.output == {"tag": "next"}


async def test_each_running_call_is_cancelled_at_its_own_deadline(bus: Bus) -> None:
    agent = Waiter()
    results: dict[str, End | Error] = {}
    async with _run(bus, agent, concurrency=3):

        async def ask(tag: str, timeout_s: float) -> None:
            results[tag] = await _ask(bus, CallContext.with_timeout(timeout_s), tag, wait=True)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask, "long", 30.0)  # the timer is armed for it first
                while agent.started != ["long"]:
                    await anyio.sleep(0.005)
                tg.start_soon(ask, "later", 1.2)  # a later deadline: the timer stays
                tg.start_soon(ask, "sooner", 0.6)  # an earlier one: the timer is armed again
                while len(agent.cancelled) < 2:
                    await anyio.sleep(0.01)
                assert agent.cancelled == ["sooner", "later"]
                assert "long" in agent.started
                agent.gate.set()
    assert {tag: type(r).__name__ for tag, r in results.items()} == {
        "long": "End",
        "later": "Error",
        "sooner": "Error",
    }
    assert isinstance(results["sooner"], Error) and results["sooner"].error.code == "timeout"


async def test_a_call_past_its_deadline_is_not_run(bus: Bus) -> None:
    agent = Waiter()
    async with _run(bus, agent, concurrency=1):
        last = await _ask(bus, CallContext(deadline=time.time() - 1.0), "stale")
        assert isinstance(last, Error) and last.error.code == "timeout"
        assert agent.started == []


async def test_a_cancel_message_stops_the_running_call(bus: Bus) -> None:
    agent = Waiter()
    async with _run(bus, agent, concurrency=1):
        ctx = CallContext.with_timeout(30)
        async with anyio.create_task_group() as tg:
            results: list[End | Error] = []

            async def ask() -> None:
                results.append(await _ask(bus, ctx, "stopped", wait=True))

            tg.start_soon(ask)
            while agent.started != ["stopped"]:
                await anyio.sleep(0.005)
            await bus.publish(cancel_subject(ctx.request_id), b"")
        (last,) = results
        assert isinstance(last, Error) and last.error.code == "cancelled"
        assert agent.cancelled == ["stopped"]
        after = await _ask(bus, CallContext.with_timeout(5), "next")
        assert isinstance(after, End) and after.output == {"tag": "next"}


async def test_a_queued_call_cancelled_before_it_starts_is_never_run(bus: Bus) -> None:
    agent = Waiter()
    async with _run(bus, agent, concurrency=1) as runner:
        first, queued = CallContext.with_timeout(30), CallContext.with_timeout(30)
        results: dict[str, End | Error] = {}

        async def ask(ctx: CallContext, tag: str, wait: bool) -> None:
            results[tag] = await _ask(bus, ctx, tag, wait=wait)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, first, "first", True)
            while agent.started != ["first"]:
                await anyio.sleep(0.005)
            tg.start_soon(ask, queued, "queued", False)
            while queued.request_id not in runner._active:  # accepted, behind the first call
                await anyio.sleep(0.005)
            await bus.publish(cancel_subject(queued.request_id), b"")
            while not runner._active[queued.request_id].cancelled_by_caller:
                await anyio.sleep(0.005)
            agent.gate.set()
        assert isinstance(results["first"], End)
        last = results["queued"]
        assert isinstance(last, Error) and last.error.code == "cancelled"
        assert agent.started == ["first"]


async def test_a_handler_that_answers_despite_its_deadline_is_heard_and_the_worker_goes_on(bus: Bus) -> None:
    agent = Waiter()
    agent.swallow = True
    async with _run(bus, agent, concurrency=1) as runner:
        last = await _ask(bus, CallContext.with_timeout(0.2), "stubborn", wait=True)
        assert isinstance(last, End) and last.output == {"tag": "stubborn", "swallowed": True}
        after = await _ask(bus, CallContext.with_timeout(5), "next")
        assert isinstance(after, End) and after.output == {"tag": "next"}
        assert (runner.stats.completed, runner.stats.in_flight) == (2, 0)
