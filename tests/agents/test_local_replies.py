"""Answers to a caller in the same process reach its inbox without nats-server (``nats.local_replies``).

A real nats-server carries every request; the caller's inbox subscription's own count of messages that
arrived over NATS (``Subscription._received``) tells which way the answers came.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from agents import Agent, Bus, Call, DeadlineExceededError
from agents.protocol import HEADER_DEADLINE, HEADER_REQUEST_ID, HEADER_SCOPES
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator import Orchestrator, TextDelta
from ryot import RyotEngine
from tests.agents.conftest import serving

pytestmark = pytest.mark.anyio


class Counter(Agent):
    """Streams ``n`` chunks ``{"i": k}`` after ``gate`` (if any) opens, then ends with ``{"n": n}``."""

    name = "t-counter"
    team = "analysis"
    description = "Streams numbered chunks."
    capabilities = ("count",)

    def __init__(self) -> None:
        self.gate: anyio.Event | None = None

    async def handle(self, call: Call) -> Mapping[str, Any]:
        if self.gate is not None:
            await self.gate.wait()
        if "big" in call.input:  # one chunk of that many bytes, then the usual ones
            await call.emit({"big": "x" * int(call.input["big"])})
        n = int(call.input["n"])
        for k in range(n):
            await call.emit({"i": k})
        return {"n": n}


def request_headers(request_id: str) -> dict[str, str]:
    return {HEADER_REQUEST_ID: request_id, HEADER_DEADLINE: repr(time.time() + 30), HEADER_SCOPES: "write"}


async def raw_call(bus: Bus, subject: str, n: int, request_id: str, **more: int) -> list[bytes]:
    """The payloads a call receives, in order: its reply (the accept), then its stream up to the end."""
    async with bus.inbox() as box:
        reply = await box.request(
            subject, json.dumps({"n": n, **more}).encode(), headers=request_headers(request_id), timeout_s=10
        )
        received = [reply.data]
        while json.loads(received[-1]).get("type") not in ("end", "error"):
            received.append((await box.next(10)).data)
    return received


def over_nats(bus: Bus) -> int:
    """Messages the caller's inboxes received from nats-server so far."""
    sub = bus._inbox_sub
    assert sub is not None
    return int(sub._received)


async def test_answers_skip_nats_server_and_are_the_same_bytes_as_over_nats(bus: Bus, agent_bus: Bus) -> None:
    async with serving(agent_bus, Counter()) as runner:
        await bus.open_inbox()  # the caller's inbox subscription exists before the counts are read
        local_before, nats_before = Bus.local_deliveries(), over_nats(bus)
        local = await raw_call(bus, runner.subject, 20, "local-1")
        local_after, nats_after = Bus.local_deliveries(), over_nats(bus)
        agent_bus.local_replies = False
        remote = await raw_call(bus, runner.subject, 20, "local-1")
    assert len(local) == 22  # the accept, 20 chunks, the end
    assert local_after - local_before == len(local)
    assert nats_after == nats_before  # nothing of the call came back through nats-server
    assert over_nats(bus) - nats_after == len(remote)  # with the setting off, everything did
    assert Bus.local_deliveries() == local_after
    assert local == remote


async def test_a_message_over_the_payload_limit_is_refused_as_nats_refuses_it(
    bus: Bus, agent_bus: Bus
) -> None:
    big = agent_bus.max_payload  # with the chunk's JSON around it: over the limit by a few bytes
    async with serving(agent_bus, Counter()) as runner:
        before = Bus.local_deliveries()
        local = await raw_call(bus, runner.subject, 2, "big-1", big=big)
        delivered = Bus.local_deliveries() - before
        agent_bus.local_replies = False
        remote = await raw_call(bus, runner.subject, 2, "big-1", big=big)
    accept, error = (json.loads(data) for data in local)
    assert accept["ok"] is True
    assert error["type"] == "error"
    assert "payload" in error["error"]["message"].lower()
    assert delivered == 1  # the accept; the refused chunk and the error after it went over NATS
    assert local == remote


async def test_concurrent_streams_keep_their_order(bus: Bus, agent_bus: Bus) -> None:
    results: dict[int, list[bytes]] = {}
    async with serving(agent_bus, Counter()) as runner:
        before = Bus.local_deliveries()

        async def one(k: int) -> None:
            results[k] = await raw_call(bus, runner.subject, 30 + k, f"order-{k}")

        async with anyio.create_task_group() as tg:
            for k in range(8):
                tg.start_soon(one, k)
    assert Bus.local_deliveries() - before == sum(len(r) for r in results.values())
    for k, received in results.items():
        accept, *stream = (json.loads(data) for data in received)
        assert accept["ok"] is True
        assert [m["type"] for m in stream] == ["chunk"] * (30 + k) + ["end"]
        assert [m["seq"] for m in stream] == list(range(31 + k))
        assert [m["data"]["i"] for m in stream[:-1]] == list(range(30 + k))
        assert stream[-1]["output"] == {"n": 30 + k}


async def test_a_message_after_the_inbox_closed_is_dropped(bus: Bus, agent_bus: Bus) -> None:
    agent = Counter()
    agent.gate = anyio.Event()
    async with serving(agent_bus, agent) as runner:
        box = await bus.open_inbox()
        reply = await box.request(
            runner.subject, b'{"n": 3}', headers=request_headers("late-1"), timeout_s=10
        )
        assert json.loads(reply.data)["ok"] is True
        bus.close_inbox(box)
        before = Bus.local_deliveries()
        agent.gate.set()
        with anyio.fail_after(10):
            while runner.stats.completed < 1:
                await anyio.sleep(0.01)
    assert Bus.local_deliveries() - before == 4  # 3 chunks and the end went the local way ...
    with pytest.raises(DeadlineExceededError):  # ... and were dropped, as nats-server drops them
        await box.next(0.01)


_REMOTE_CALLER = """
import json, sys, time, anyio
from agents import Bus
from agents.protocol import HEADER_DEADLINE, HEADER_REQUEST_ID, HEADER_SCOPES

async def main(url, subject):
    async with await Bus.connect(url, name="remote-caller") as bus:
        async with bus.inbox() as box:
            headers = {HEADER_REQUEST_ID: "remote-1", HEADER_DEADLINE: repr(time.time() + 30),
                       HEADER_SCOPES: "write"}
            reply = await box.request(subject, b'{"n": 5}', headers=headers, timeout_s=20)
            received = [reply.data]
            while json.loads(received[-1]).get("type") != "end":
                received.append((await box.next(20)).data)
        print(json.dumps({"received": [d.decode() for d in received], "over_nats": bus._inbox_sub._received}))

anyio.run(main, sys.argv[1], sys.argv[2])
"""


async def test_a_caller_in_another_process_gets_its_answers_over_nats(
    nats_server: EmbeddedNats, agent_bus: Bus
) -> None:
    async with serving(agent_bus, Counter()) as runner:
        before = Bus.local_deliveries()
        done = await anyio.run_process(
            [sys.executable, "-c", _REMOTE_CALLER, nats_server.url, runner.subject],
            stderr=subprocess.PIPE,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    result = json.loads(done.stdout)
    stream = [json.loads(m) for m in result["received"][1:]]
    assert [m.get("data", {}).get("i") for m in stream[:-1]] == [0, 1, 2, 3, 4]
    assert result["over_nats"] == 7  # the accept, 5 chunks, the end: all through nats-server
    assert Bus.local_deliveries() == before


async def test_a_streamed_generation_comes_back_locally(bus: Bus, agent_bus: Bus, engine: RyotEngine) -> None:
    from agents import GeneratorAgent
    from agents.protocol import GenerateInput, GenerateOutput
    from bridges import RyotBridge

    orchestrator = Orchestrator(bus)
    request = GenerateInput(prompt="The moon orbits", max_tokens=10, temperature=0.0)
    async with serving(agent_bus, GeneratorAgent(RyotBridge(engine))):
        await bus.open_inbox()
        local_before, nats_before = Bus.local_deliveries(), over_nats(bus)
        events = [e async for e in orchestrator.generate_stream(request, orchestrator.context())]
        local, nats = Bus.local_deliveries() - local_before, over_nats(bus) - nats_before
    deltas = [e for e in events if isinstance(e, TextDelta)]
    output = events[-1]
    assert isinstance(output, GenerateOutput)
    assert output.usage.completion_tokens == 10
    assert "".join(d.text for d in deltas) == output.text
    assert local >= len(deltas) + 1  # every chunk and the end (and the accept, unless the end replaced it)
    assert nats == 0


async def test_an_inbox_with_a_subject_of_its_own_gets_its_answers_over_nats(
    bus: Bus, agent_bus: Bus
) -> None:
    async with serving(agent_bus, Counter()) as runner, bus.inbox("t.local.custom") as box:
        before = Bus.local_deliveries()
        reply = await box.request(runner.subject, b'{"n": 2}', headers=request_headers("own-1"), timeout_s=10)
        stream = [json.loads((await box.next(10)).data) for _ in range(3)]
    assert json.loads(reply.data)["ok"] is True
    assert [m["type"] for m in stream] == ["chunk", "chunk", "end"]
    assert Bus.local_deliveries() == before  # not a fresh inbox of a bus: only NATS knows who listens
