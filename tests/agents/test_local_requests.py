"""Requests to an agent instance in the same process reach it without nats-server (``nats.local_requests``).

A real nats-server runs; the agent's direct endpoint subscription's own count of requests that arrived over
NATS (``Subscription._received``) and ``agents._localrequest.requests_delivered()`` tell which way each
request went, and the answers are compared byte for byte with the same request sent over NATS.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from agents import Agent, AgentRunner, Bus, Call, NoRespondersError
from agents._localrequest import find, requests_delivered
from agents.protocol import HEADER_DEADLINE, HEADER_REQUEST_ID, HEADER_SCOPES, HEADER_TENANT
from neurectomy.server.natsserver import EmbeddedNats
from tests.agents.conftest import serving

pytestmark = pytest.mark.anyio


class Echo(Agent):
    """Streams ``n`` chunks, then ends with the tenant and scopes the request carried."""

    name = "t-echo"
    team = "analysis"
    description = "Echoes what the call carried."
    capabilities = ("echo",)

    async def handle(self, call: Call) -> Mapping[str, Any]:
        for k in range(int(call.input["n"])):
            await call.emit({"i": k})
        return {"tenant": call.tenant, "scopes": sorted(call.scopes), "request_id": call.request_id}


@pytest.fixture
async def caller(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    """A caller's connection that sends requests to instances of this process locally."""
    async with await Bus.connect(nats_server.url, name="tests-caller") as connected:
        connected.local_requests = True
        yield connected


def headers(request_id: str, **more: str) -> dict[str, str]:
    return {
        HEADER_REQUEST_ID: request_id,
        HEADER_DEADLINE: repr(time.time() + 30),
        HEADER_SCOPES: "write",
        HEADER_TENANT: "acme",
        **more,
    }


async def call(bus: Bus, subject: str, payload: bytes, hdrs: dict[str, str]) -> list[bytes]:
    """The payloads a call receives, in order: its reply (the accept or an error), then its stream."""
    async with bus.inbox() as box:
        reply = await box.request(subject, payload, headers=hdrs, timeout_s=10)
        received = [reply.data]
        if reply.headers.get("Nats-Service-Error-Code"):
            return [*received, reply.headers["Nats-Service-Error-Code"].encode()]
        while json.loads(received[-1]).get("type") not in ("end", "error"):
            received.append((await box.next(10)).data)
    return received


def direct_received(runner: AgentRunner, agent_bus: Bus) -> int:
    """Requests the instance's direct endpoint received from nats-server so far."""
    subs = [s for s in agent_bus._nc._subs.values() if s.subject == runner.direct_subject]
    assert len(subs) == 1
    return int(subs[0]._received)


async def test_a_request_to_a_direct_subject_skips_nats_server_and_gets_the_same_answers(
    caller: Bus, agent_bus: Bus
) -> None:
    async with serving(agent_bus, Echo()) as runner:
        subject = runner.direct_subject
        delivered, over_nats = requests_delivered(), direct_received(runner, agent_bus)
        local = await call(caller, subject, b'{"n": 3}', headers("loc-1"))
        local_delivered = requests_delivered() - delivered
        local_over_nats = direct_received(runner, agent_bus)
        caller.local_requests = False
        remote = await call(caller, subject, b'{"n": 3}', headers("loc-1"))
        remote_over_nats = direct_received(runner, agent_bus) - local_over_nats
        accepted = runner.stats.accepted
    assert local_delivered == 1
    assert local_over_nats == over_nats  # the request never went through nats-server ...
    assert remote_over_nats == 1  # ... and with the setting off it did
    assert requests_delivered() - delivered == 1
    assert accepted == 2
    assert local == remote
    end = json.loads(local[-1])
    assert end["output"] == {"tenant": "acme", "scopes": ["write"], "request_id": "loc-1"}
    assert [json.loads(m)["data"]["i"] for m in local[1:-1]] == [0, 1, 2]


async def test_the_agent_checks_a_local_request_as_one_from_the_wire(caller: Bus, agent_bus: Bus) -> None:
    bad = {HEADER_REQUEST_ID: "bad-1", HEADER_SCOPES: "write"}  # no deadline header
    async with serving(agent_bus, Echo()) as runner:
        delivered = requests_delivered()
        local = await call(caller, runner.direct_subject, b'{"n": 1}', bad)
        local_delivered = requests_delivered() - delivered
        caller.local_requests = False
        remote = await call(caller, runner.direct_subject, b'{"n": 1}', bad)
        refused = runner.stats.refused_bad
    assert local_delivered == 1
    assert local[-1] == b"bad_request"
    assert local == remote
    assert refused == 2


async def test_the_shared_subject_and_a_bus_without_the_setting_go_over_nats(
    caller: Bus, bus: Bus, agent_bus: Bus
) -> None:
    async with serving(agent_bus, Echo()) as runner:
        delivered = requests_delivered()
        shared = await call(caller, runner.subject, b'{"n": 1}', headers("shared-1"))  # the queue group
        plain = await call(bus, runner.direct_subject, b'{"n": 1}', headers("plain-1"))  # setting off
    assert requests_delivered() == delivered
    assert json.loads(shared[-1])["type"] == "end"
    assert json.loads(plain[-1])["type"] == "end"


async def test_a_stopped_instance_is_no_longer_reached_locally(caller: Bus, agent_bus: Bus) -> None:
    async with serving(agent_bus, Echo()) as runner:
        subject = runner.direct_subject
        assert find(subject) is not None
    assert find(subject) is None
    delivered = requests_delivered()
    with pytest.raises(NoRespondersError):
        await call(caller, subject, b'{"n": 1}', headers("gone-1"))
    assert requests_delivered() == delivered
