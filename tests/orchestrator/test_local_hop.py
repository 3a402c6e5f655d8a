"""The hop in the ``serve`` shape: an orchestrator and an agent in one process, request and answer local.

A real nats-server runs; the orchestrator's bus sends requests to the agent's direct subject locally
(``local_requests``) with the call's headers as parsed fields (``CallContext.header_fields``: no header
block is written and parsed back), and the agent's bus answers locally (``local_replies``). Each test checks
that the local path keeps a promise of the wire path: the agent's scope check, the caller's tenant and
scopes, its deadline (handed over as a number, not as the header's text), the cancellation of a call the
caller left.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import pytest

from agents import Agent, AgentRunner, Bus, Call
from agents._localrequest import requests_delivered
from agents.collective import spec_of
from agents.scopes import ALL_SCOPES
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator import CallContext, Orchestrator, OrchestratorConfig
from orchestrator.testing import wait_for_replicas

pytestmark = pytest.mark.anyio


class Echo(Agent):
    """Ends with the tenant, scopes, request id and deadline its call carried; waits first when asked to."""

    name = "t-local-echo"
    team = "analysis"
    description = "Echoes what the call carried."
    capabilities = ("local-echo",)
    started = anyio.Event()
    cancelled = anyio.Event()
    release = anyio.Event()

    async def handle(self, call: Call) -> Mapping[str, Any]:
        if call.input.get("hold"):
            await type(self).release.wait()
        if call.input.get("wait"):
            type(self).started.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                type(self).cancelled.set()
                raise
        return {
            "tenant": call.tenant,
            "scopes": sorted(call.scopes),
            "request_id": call.request_id,
            "deadline": call.deadline,
        }


@pytest.fixture
async def serve(nats_server: EmbeddedNats) -> AsyncIterator[tuple[Orchestrator, AgentRunner, Bus]]:
    """The agent on its own bus and the orchestrator on another, flagged as ``serve`` flags its roles."""
    Echo.started, Echo.cancelled, Echo.release = anyio.Event(), anyio.Event(), anyio.Event()
    async with (
        await Bus.connect(nats_server.url, name="tests-serve-agent") as agent_bus,
        await Bus.connect(nats_server.url, name="tests-serve-api") as api_bus,
    ):
        agent_bus.local_replies = api_bus.local_replies = True
        api_bus.local_requests = True
        runner = AgentRunner(agent_bus, Echo())
        orch = Orchestrator(api_bus, OrchestratorConfig(retries=0), specs=(spec_of(Echo),))
        async with anyio.create_task_group() as tg:
            await tg.start(orch.run)
            await tg.start(runner.run)
            await wait_for_replicas(orch, Counter({Echo.name: 1}))
            yield orch, runner, api_bus
            tg.cancel_scope.cancel()


async def ask(bus: Bus, subject: str, ctx: CallContext) -> tuple[bytes, dict[str, str]]:
    """One request with the call's headers given as a :class:`~agents._inbox.HeaderSource`: its reply."""
    async with bus.inbox() as box:
        reply = await box.request(subject, b"{}", source=ctx, timeout_s=10)
    return reply.data, reply.headers


async def test_a_local_request_without_the_scope_is_refused_as_over_nats(
    serve: tuple[Orchestrator, AgentRunner, Bus],
) -> None:
    _, runner, api_bus = serve
    reader = CallContext.with_timeout(10, tenant="acme", scopes=frozenset({"read"}))  # the call needs write
    delivered = requests_delivered()
    local = await ask(api_bus, runner.direct_subject, reader)
    local_delivered = requests_delivered() - delivered
    api_bus.local_requests = False
    remote = await ask(api_bus, runner.direct_subject, reader)
    assert local_delivered == 1  # handed over in this process, not through nats-server ...
    assert requests_delivered() - delivered == 1  # ... and the second over NATS
    assert local[1]["Nats-Service-Error-Code"] == "forbidden"
    assert local == remote
    assert runner.stats.refused_bad == 2
    assert runner.stats.accepted == 0


async def test_a_local_call_carries_the_caller_s_tenant_and_scopes(
    serve: tuple[Orchestrator, AgentRunner, Bus],
) -> None:
    orch, _, api_bus = serve
    scopes = frozenset({"read", "write"})
    ctx = CallContext.with_timeout(10, tenant="acme", scopes=scopes, request_id="rq-1", trace_id="tr-1")
    delivered = requests_delivered()
    local = await orch.invoke(Echo.name, {}, ctx)
    local_delivered = requests_delivered() - delivered
    api_bus.local_requests = False
    remote = await orch.invoke(Echo.name, {}, ctx)
    assert local_delivered == 1
    assert requests_delivered() - delivered == 1
    expected = {  # attempt 1's id; the context's deadline (sooner than the step timeout's)
        "tenant": "acme",
        "scopes": ["read", "write"],
        "request_id": "rq-1-1",
        "deadline": ctx.deadline,
    }
    assert local.output == remote.output == expected


async def test_a_local_request_s_deadline_is_read_as_over_nats(
    serve: tuple[Orchestrator, AgentRunner, Bus],
) -> None:
    # Locally the deadline goes as a number (agents._message.LocalRequest), over NATS as the header's text:
    # the agent must run, refuse or time out the same calls with the same deadline either way.
    _, runner, api_bus = serve
    soon = time.time() + 10
    answers = {}
    for deadline in (soon, time.time() - 1, math.nan, math.inf):
        ctx = CallContext(deadline, request_id=f"rq-{deadline}", scopes=ALL_SCOPES)
        delivered = requests_delivered()
        local = await ask(api_bus, runner.direct_subject, ctx)
        assert requests_delivered() - delivered == 1  # handed over in this process
        api_bus.local_requests = False
        remote = await ask(api_bus, runner.direct_subject, ctx)
        api_bus.local_requests = True
        assert requests_delivered() - delivered == 1  # the second one over NATS
        assert local == remote
        answers[deadline] = local
    ran = json.loads(answers[soon][0])
    assert ran["type"] == "end"
    assert ran["output"]["deadline"] == soon  # the same float, to the last bit
    late = json.loads(next(data for deadline, (data, _) in answers.items() if deadline < soon))
    assert late["type"] == "error"
    assert late["error"]["code"] == "timeout"  # (DeadlineExceededError's wire code)
    missing = next(headers for deadline, (_, headers) in answers.items() if math.isnan(deadline))
    assert missing["Nats-Service-Error-Code"] == "bad_request"  # a NaN deadline is no deadline
    assert json.loads(answers[math.inf][0])["output"]["deadline"] is None  # JSON has no infinity
    assert runner.stats.completed == 4  # two each of the future and the infinite deadline


async def test_answers_to_a_local_request_reach_its_inbox_until_it_closes(
    serve: tuple[Orchestrator, AgentRunner, Bus],
) -> None:
    # A local request names its inbox (agents._message.LocalRequest.reply_to): the agent's answers go
    # straight to it, and one that comes after the caller closed it is dropped, as NATS drops a message
    # for a subscription that is gone.
    _, runner, api_bus = serve
    answers = Bus.local_deliveries()
    async with api_bus.inbox() as box:
        ctx = CallContext.with_timeout(10, scopes=ALL_SCOPES)
        accept = await box.request(runner.direct_subject, b'{"hold": true}', source=ctx, timeout_s=10)
    assert json.loads(accept.data) == {"ok": True, "instance": runner.instance_id, "error": None}
    assert Bus.local_deliveries() - answers == 1  # the accept, handed over in this process
    Echo.release.set()
    with anyio.fail_after(10):
        while runner.stats.completed < 1:
            await anyio.sleep(0.01)
    assert Bus.local_deliveries() - answers == 1  # the End, for a closed inbox: dropped
    async with api_bus.inbox() as box:  # a call made now is answered in full: its End as the reply
        ctx = CallContext.with_timeout(10, scopes=ALL_SCOPES)
        end = await box.request(runner.direct_subject, b'{"hold": true}', source=ctx, timeout_s=10)
    assert json.loads(end.data)["type"] == "end"
    assert Bus.local_deliveries() - answers == 2


async def test_a_local_call_the_caller_leaves_is_cancelled_at_the_agent(
    serve: tuple[Orchestrator, AgentRunner, Bus],
) -> None:
    orch, runner, _ = serve
    delivered = requests_delivered()
    async with anyio.create_task_group() as tg:
        ctx = CallContext.with_timeout(60, scopes=ALL_SCOPES)
        tg.start_soon(orch.invoke, Echo.name, {"wait": True}, ctx)
        with anyio.fail_after(10):
            await Echo.started.wait()  # the agent runs it; the caller waits for its answer
        tg.cancel_scope.cancel()
    with anyio.fail_after(10):  # told to stop (the cancel goes over NATS), the handler is cancelled
        await Echo.cancelled.wait()
    with anyio.fail_after(10):
        while runner.stats.cancelled < 1:
            await anyio.sleep(0.01)
    assert requests_delivered() - delivered == 1
    assert runner.stats.completed == 0
