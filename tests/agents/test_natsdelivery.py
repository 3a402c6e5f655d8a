"""Requests handled from nats-py's reader (real nats-server): nats.micro's counters still count them, a
refusal is still a micro error reply, a request that came before the switch is not lost, and an answer
that cannot be queued at once is left to the ordinary publish."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from nats.aio.msg import Msg
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointConfig, ServiceConfig

from agents import Agent, AgentRunner, Bus, Call
from agents._endpointcounts import CountedEndpoint
from agents._message import Message
from agents.errors import BadInputError
from agents.natsdelivery import deliver_directly, publish_now
from agents.protocol import agent_subject
from orchestrator import CallContext

pytestmark = pytest.mark.anyio


class Echo(Agent):
    name = "t-echo"
    team = "analysis"
    description = "Echoes its input."

    async def handle(self, call: Call) -> Mapping[str, Any]:
        return {"echo": call.input}


@asynccontextmanager
async def _run(bus: Bus) -> AsyncIterator[AgentRunner]:
    async with anyio.create_task_group() as tg:
        runner = AgentRunner(bus, Echo(), concurrency=2)
        await tg.start(runner.run)
        yield runner
        tg.cancel_scope.cancel()


async def test_stats_count_the_requests_and_a_refusal_is_a_micro_error(bus: Bus) -> None:
    subject = agent_subject(Echo.team, Echo.name)
    async with _run(bus) as runner:
        for n in range(3):
            await bus.request(
                subject, f'{{"n": {n}}}'.encode(), headers=CallContext.with_timeout(5).headers(), timeout_s=5
            )
        refused = await bus.request(
            subject, b"not json", headers=CallContext.with_timeout(5).headers(), timeout_s=5
        )
        assert refused.headers["Nats-Service-Error-Code"] == "bad_request"
        assert "not JSON" in refused.headers["Nats-Service-Error"]
        missing = await bus.request(subject, b"{}", headers={}, timeout_s=5)
        assert missing.headers["Nats-Service-Error-Code"] == "bad_request"
        (stats,) = [s for s in await bus.discover("STATS") if s.get("id") == runner.instance_id]
    assert sum(e["num_requests"] for e in stats["endpoints"]) == 5
    assert stats["endpoints"][0]["data"]["completed"] == 3
    assert stats["endpoints"][0]["data"]["refused_bad"] == 2


async def test_a_request_queued_before_the_switch_is_handled_at_the_switch(bus: Bus) -> None:
    nc = bus._nc
    seen: list[bytes] = []

    async def ordinary(request: Request) -> None:  # never called: the switch comes first
        raise AssertionError("handled the ordinary way")

    def direct(msg: Msg) -> bytes:
        seen.append(msg.data)
        return b"ok:" + msg.data

    svc = await add_service(nc, ServiceConfig(name="t-switch", version="0.0.1"))
    try:
        await svc.add_endpoint(EndpointConfig(name="t-switch", subject="t.switch", handler=ordinary))
        (endpoint,) = svc._endpoints
        sub = endpoint._subscription
        assert sub is not None
        early = Msg(nc, subject="t.switch", reply="", data=b"early", _sid=sub._id)
        sub._pending_size += len(early.data)
        sub._pending_queue.put_nowait(early)  # as nats-py's reader would have, before the switch
        deliver_directly(nc, endpoint, direct, lambda *_: None)
        assert seen == [b"early"]
        async with bus.inbox() as box:
            reply = await box.request("t.switch", b"late", timeout_s=5)
        assert reply.data == b"ok:late"
        assert seen == [b"early", b"late"]
        assert (endpoint._num_requests, sub._pending_size) == (2, 0)
    finally:
        await svc.stop()


async def test_srv_stats_are_exact_after_each_request_errors_included(bus: Bus) -> None:
    """The delivery keeps the request count and processing time in fields of its own (round 14): every
    read of ``$SRV.STATS`` (and of the endpoint's attributes) sees the exact counts of that moment, the
    average as nats.micro computes it, unexpected errors counted by nats.micro's own fields; a reset
    starts them from zero."""
    nc = bus._nc

    def handler(msg: Message) -> bytes:
        time.sleep(0.0001)  # a processing time that cannot round to nothing
        if msg.data == b"refuse":
            raise BadInputError("refused")
        if msg.data == b"crash":
            raise RuntimeError("crashed")
        return b"ok"

    async def ordinary(request: Request) -> None:  # never called: the switch comes first
        raise AssertionError("handled the ordinary way")

    svc = await add_service(nc, ServiceConfig(name="t-counts", version="0.0.1"))
    try:
        await svc.add_endpoint(EndpointConfig(name="t-counts", subject="t.counts", handler=ordinary))
        (endpoint,) = svc._endpoints
        deliver_directly(nc, endpoint, handler, lambda *_: None)
        assert isinstance(endpoint, CountedEndpoint)
        with pytest.raises(RuntimeError, match="already counts"):
            deliver_directly(nc, endpoint, handler, lambda *_: None)

        async def stats() -> dict[str, Any]:
            reply = await nc.request(f"$SRV.STATS.t-counts.{svc.id}", b"", timeout=5)
            (counted,) = json.loads(reply.data)["endpoints"]
            return dict(counted)

        before = await stats()
        counters = ("num_requests", "processing_time", "average_processing_time")
        assert [before[k] for k in counters] == [0, 0, 0]
        bodies = [b"a", b"refuse", b"b", b"crash", b"c", b"refuse", b"d"]
        seen = []
        for n, body in enumerate(bodies, 1):
            reply = await nc.request("t.counts", body, timeout=5)
            seen.append(reply.headers.get("Nats-Service-Error-Code", "") if reply.headers else "")
            counted = await stats()
            assert counted["num_requests"] == n
            assert counted["processing_time"] >= n * 100_000  # ns: each request slept 0.1 ms
            assert counted["average_processing_time"] == int(counted["processing_time"] / n)
            assert counted["processing_time"] == endpoint._processing_time
        assert seen == ["", "bad_request", "", "500", "", "bad_request", ""]
        assert (counted["num_errors"], counted["last_error"]) == (1, "RuntimeError('crashed')")
        assert svc.stats().endpoints[0].num_requests == endpoint._num_requests == len(bodies)

        endpoint._reset()  # nats.micro's: counts start again from zero
        assert (endpoint._num_requests, endpoint._processing_time) == (0, 0)
        await nc.request("t.counts", b"e", timeout=5)
        again = await stats()
        assert again["num_requests"] == 1
        assert again["average_processing_time"] == again["processing_time"] >= 100_000
    finally:
        await svc.stop()


async def test_publish_now_leaves_what_it_cannot_queue_to_the_ordinary_publish(bus: Bus) -> None:
    nc = bus._nc
    assert not publish_now(nc, "", b"x")  # nats-py refuses an empty subject
    assert not publish_now(nc, "a b", b"x")  # and one with whitespace
    assert not publish_now(nc, "t.big", b"x" * (bus.max_payload + 1))  # and one over the limit
    async with bus.inbox("t.now") as box:
        await bus.flush()
        assert publish_now(nc, "t.now", b"queued", {"X-A": "1"})
        got = await box.next(5)
    assert (got.data, got.headers) == (b"queued", {"X-A": "1"})


async def test_an_answer_made_alone_is_written_at_once_and_a_turn_keeps_its_order(bus: Bus) -> None:
    nc = bus._nc
    async with bus.inbox("t.turn") as box:
        await bus.flush()
        await anyio.sleep(0)  # a fresh turn of the event loop
        assert bus.publish_now("t.turn", b"1", at_once=True)
        assert not nc._pending  # written to the transport, no flusher round
        assert bus.publish_now("t.turn", b"2", at_once=True)  # the same turn: queued behind it
        assert nc._pending
        await bus.publish("t.turn", b"3")
        with anyio.fail_after(5):
            while nc._pending:  # the flusher writes them
                await anyio.sleep(0)
        assert bus.publish_now("t.turn", b"4")  # not at once: the pending buffer, as before
        assert nc._pending
        got = [(await box.next(5)).data for _ in range(4)]
    assert got == [b"1", b"2", b"3", b"4"]


async def test_a_write_now_message_goes_to_the_transport_unless_something_is_pending(bus: Bus) -> None:
    """``write=True`` (one generation's chunk of a delivery): written at once with nothing pending and
    without using up the loop turn's direct write; behind pending messages it queues, in order."""
    nc = bus._nc
    async with bus.inbox("t.write") as box:
        await bus.flush()
        await anyio.sleep(0)  # a fresh turn of the event loop
        assert bus.publish_now("t.write", b"1", write=True)
        assert not nc._pending  # written to the transport
        assert bus.publish_now("t.write", b"2", at_once=True)  # the turn's direct write is still free
        assert not nc._pending
        assert bus.publish_now("t.write", b"3")  # the pending buffer
        assert bus.publish_now("t.write", b"4", write=True)  # behind it, not ahead of it
        assert len(nc._pending) == 2
        got = [(await box.next(5)).data for _ in range(4)]
    assert got == [b"1", b"2", b"3", b"4"]
