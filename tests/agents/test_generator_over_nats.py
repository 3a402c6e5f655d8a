"""The generator agent on a real nats-server, called through the orchestrator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import anyio
import pytest

from agents import AgentBusyError, AgentRunner, BadInputError, Bus, DeadlineExceededError, NoRespondersError
from agents.messaging import Message
from agents.protocol import (
    HEADER_DEADLINE,
    HEADER_REQUEST_ID,
    HEADER_TENANT,
    HEADER_TRACE_ID,
    GenerateInput,
    GenerateOutput,
    agent_subject,
)
from orchestrator import CallContext, Orchestrator, TextDelta
from ryot import RyotEngine
from tests.agents.conftest import discovered

pytestmark = pytest.mark.anyio
RunnerFactory = Callable[..., AbstractAsyncContextManager["AgentRunner"]]

LONG_DEADLINE_S = 60.0
"""The deadline of a call that must fail at once: a call that waited for it instead (retrying, or never
told "no responders") is then a minute late, which no load on this machine makes of an answer at once."""
AT_ONCE_S = LONG_DEADLINE_S / 4
"""An answer "at once", seconds: milliseconds on an idle machine, a few seconds on a starved one."""


async def test_generation_streams_and_usage_matches_tokenization(
    bus: Bus, engine: RyotEngine, generator_runner: RunnerFactory
) -> None:
    orchestrator = Orchestrator(bus)
    request = GenerateInput(prompt="The moon orbits", max_tokens=10, temperature=0.0)
    async with generator_runner():
        deltas: list[str] = []
        output = None
        async for event in orchestrator.generate_stream(request, orchestrator.context()):
            if isinstance(event, TextDelta):
                deltas.append(event.text)
            else:
                output = event
    assert isinstance(output, GenerateOutput)
    assert "".join(deltas) == output.text
    assert output.usage.prompt_tokens == len(engine.tokenize("The moon orbits"))
    assert output.usage.completion_tokens == 10
    assert output.model == engine.model_name


async def test_micro_service_answers_ping_info_and_stats(bus: Bus, generator_runner: RunnerFactory) -> None:
    async with generator_runner() as runner:
        await Orchestrator(bus).generate(
            GenerateInput(prompt="Hi", max_tokens=2), Orchestrator(bus).context()
        )
        pings = await bus.discover("PING")
        infos = await bus.discover("INFO")
        stats = await bus.discover("STATS")
    assert any(p["name"] == "generator" and p["id"] == runner.instance_id for p in pings)
    info = next(i for i in infos if i["id"] == runner.instance_id)
    assert info["metadata"]["team"] == "inference"
    assert info["endpoints"][0]["subject"] == "neurectomy.agent.inference.generator"
    assert info["endpoints"][0]["queue_group"] == "generator"
    stat = next(s for s in stats if s["id"] == runner.instance_id)
    endpoint = stat["endpoints"][0]
    assert endpoint["num_requests"] == 1
    assert endpoint["data"]["completed"] == 1
    assert endpoint["data"]["completion_tokens"] == 2


async def test_stopped_agent_fails_over_to_no_responders_at_once(
    bus: Bus, generator_runner: RunnerFactory
) -> None:
    orchestrator = Orchestrator(bus)
    async with generator_runner():
        agents = await orchestrator.agents()
        assert [a.name for a in agents] == ["generator"]
    started = time.perf_counter()
    with pytest.raises(NoRespondersError):
        await orchestrator.generate(
            GenerateInput(prompt="Hi", max_tokens=2), orchestrator.context(timeout_s=LONG_DEADLINE_S)
        )
    assert time.perf_counter() - started < AT_ONCE_S  # not at the deadline
    assert await orchestrator.agents() == []


async def test_invalid_input_is_refused_with_the_field(bus: Bus, generator_runner: RunnerFactory) -> None:
    orchestrator = Orchestrator(bus)
    async with generator_runner():
        for field, value in (("max_tokens", 0), ("temperature", -0.5), ("top_p", 0.0), ("stop", ["."] * 9)):
            with pytest.raises(
                BadInputError
            ) as info:  # the agent checks the ranges of agents.protocol.Sampling
                await orchestrator.call_once(
                    "inference", "generator", {"prompt": "Hi", field: value}, orchestrator.context()
                )
            assert info.value.field == field
        with pytest.raises(BadInputError) as both:
            await orchestrator.generate(
                GenerateInput(prompt="Hi", messages=[{"role": "user", "content": "Hi"}]),  # type: ignore[list-item]
                orchestrator.context(),
            )
        assert both.value.field == "prompt"
        # Raw bytes that are not JSON never reach the agent's work loop.
        from orchestrator._dispatch import CallContext

        reply = await bus.request(
            "neurectomy.agent.inference.generator",
            b"{not json",
            headers=CallContext.with_timeout(5).headers("_INBOX.unused"),
            timeout_s=2,
        )
        assert reply.headers["Nats-Service-Error-Code"] == "bad_request"


async def test_full_mailbox_answers_busy(bus: Bus, generator_runner: RunnerFactory) -> None:
    orchestrator = Orchestrator(bus)
    long = GenerateInput(prompt="Write a long essay about rivers.", max_tokens=300)
    async with generator_runner(mailbox_size=1, concurrency=1) as runner:
        async with anyio.create_task_group() as tg:

            async def consume() -> None:
                async for _ in orchestrator.generate_stream(long, orchestrator.context()):
                    pass

            async def reached(in_flight: int, accepted: int) -> None:
                with anyio.fail_after(30):
                    while runner.stats.in_flight < in_flight or runner.stats.accepted < accepted:
                        await anyio.sleep(0.01)

            tg.start_soon(consume)
            await reached(1, 1)  # taken by the worker
            tg.start_soon(consume)
            await reached(1, 2)  # waits in the mailbox
            with pytest.raises(AgentBusyError):
                await orchestrator.generate(long, orchestrator.context())
            tg.cancel_scope.cancel()


async def test_deadline_cancels_the_work_and_frees_the_model(
    bus: Bus, generator_runner: RunnerFactory
) -> None:
    orchestrator = Orchestrator(bus)
    async with generator_runner() as runner:
        started = time.perf_counter()
        with pytest.raises(DeadlineExceededError):
            await orchestrator.generate(
                GenerateInput(prompt="Write a very long story.", max_tokens=1500),
                orchestrator.context(timeout_s=0.5),
            )
        # The caller has its answer at the deadline, not when the generation would have ended (1500 tokens:
        # over 20 s of decoding on an idle machine, longer on a busy one, where the deadline's answer is
        # late by the scheduling delay only).
        assert time.perf_counter() - started < 10.0
        engine = runner.agent.bridge.engine  # type: ignore[attr-defined]
        # 1500 tokens take over 20 s of decoding even on an idle machine; cancelled, the generation leaves
        # its slot after the decode step under way (seconds when other processes hold the CPU).
        with anyio.fail_after(15):
            while engine.active:
                await anyio.sleep(0.02)
        quick = await orchestrator.generate(GenerateInput(prompt="Hi", max_tokens=2), orchestrator.context())
        assert quick.usage.completion_tokens >= 1
        with anyio.fail_after(5):  # the worker counts the call done just after it sent the output
            while runner.stats.in_flight:
                await anyio.sleep(0.01)
        assert runner.stats.completed >= 1


async def test_leaving_a_stream_early_cancels_the_generation(
    bus: Bus, generator_runner: RunnerFactory
) -> None:
    orchestrator = Orchestrator(bus)
    async with generator_runner() as runner:
        received = 0
        async for event in orchestrator.generate_stream(
            GenerateInput(prompt="Write a very long story.", max_tokens=1500), orchestrator.context()
        ):
            received += isinstance(event, TextDelta)
            if received == 3:
                break
        with anyio.fail_after(2):
            while runner.stats.in_flight:
                await anyio.sleep(0.01)
        assert runner.stats.cancelled == 1
        engine = runner.agent.bridge.engine  # type: ignore[attr-defined]
        with anyio.fail_after(15):  # the 1500-token generation (over 20 s) left its engine slot
            while engine.active:
                await anyio.sleep(0.02)


async def test_replicas_share_the_queue_group(bus: Bus, generator_runner: RunnerFactory) -> None:
    orchestrator = Orchestrator(bus)
    async with generator_runner() as first, generator_runner() as second:
        agents = await discovered(orchestrator, lambda agents: bool(agents) and agents[0].replicas >= 2)
        assert [(a.name, a.replicas) for a in agents] == [("generator", 2)]
        for _ in range(6):
            await orchestrator.generate(GenerateInput(prompt="Hi", max_tokens=1), orchestrator.context())
    assert first.stats.completed + second.stats.completed == 6


async def test_a_call_travels_as_json_with_its_context_in_headers(
    bus: Bus, generator_runner: RunnerFactory
) -> None:
    """What goes over NATS: the input as JSON, and request id, tenant, trace id, deadline as headers."""
    orchestrator = Orchestrator(bus)
    request = GenerateInput(prompt="Hi", max_tokens=1, temperature=0.0, stop=["."])
    seen: list[Message] = []

    async def tap(msg: Message) -> None:
        seen.append(msg)

    ctx = CallContext.with_timeout(30, request_id="req-json-1", tenant="acme", trace_id="trace-1")
    async with generator_runner(), bus.subscription(agent_subject("inference", "generator"), tap):
        await bus.flush()
        await orchestrator.generate(request, ctx)
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.01)
    (msg,) = seen
    assert json.loads(msg.data) == request.model_dump(exclude_none=True)
    assert msg.headers[HEADER_REQUEST_ID] == "req-json-1"
    assert msg.headers[HEADER_TENANT] == "acme"
    assert msg.headers[HEADER_TRACE_ID] == "trace-1"
    assert float(msg.headers[HEADER_DEADLINE]) == pytest.approx(ctx.deadline)
