"""An agent refuses a JSON input over its ``max_input_bytes`` before decoding it (real nats-server).

The accept path compares the envelope's length (the payload before a binary attachment) with the agent's
limit and answers ``too_large`` on ``input``, naming both sizes, without decoding the JSON or reaching
the handler; exactly at the limit the input is taken, a larger declared limit takes more, and the
attachment does not count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_core
import pytest

from agents import Agent, Bus, Call, TooLargeError
from agents.collective import spec_of
from agents.limits import DEFAULT_MAX_INPUT_BYTES, NATS_MAX_PAYLOAD_BYTES, text_input_bytes
from agents.messaging import Message
from agents.protocol import HEADER_ERROR_FIELD, Attached, agent_subject
from agents.roster import AGENTS_BY_TEAM, HELPERS
from orchestrator import CallContext, testing
from orchestrator.testing import running
from tests.agents.conftest import serving

pytestmark = pytest.mark.anyio

LIMIT = 1000


class Recorder(Agent):
    """Records every input its handler sees; takes at most :data:`LIMIT` bytes of JSON."""

    name = "t-recorder"
    team = "analysis"
    description = "Records the size of its input."
    takes_attachment = True
    max_input_bytes = LIMIT

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def handle(self, call: Call) -> Mapping[str, Any]:
        self.seen.append(call.input)
        return {"json": len(pydantic_core.to_json(call.input)), "attachment": len(call.attachment or b"")}


class BigRecorder(Recorder):
    """The same work with a declared limit of four times as much."""

    name = "t-big-recorder"
    max_input_bytes = 4 * LIMIT


def _text_of(size: int) -> dict[str, str]:
    """An input that is exactly ``size`` bytes of JSON as the service writes it."""
    payload = {"text": "x" * (size - len(b'{"text":""}'))}
    assert len(pydantic_core.to_json(payload)) == size
    return payload


async def test_an_input_over_the_limit_is_refused_naming_the_field_and_both_sizes(bus: Bus) -> None:
    agent = Recorder()
    async with running(bus, [agent]) as orchestrator:
        with pytest.raises(TooLargeError) as over:
            await testing.call(orchestrator, agent.name, _text_of(LIMIT + 1))
        assert over.value.field == "input"
        assert over.value.message == f"{LIMIT + 1} bytes of JSON; t-recorder takes at most {LIMIT} bytes"
        assert agent.seen == []
        at_limit = _text_of(LIMIT)
        assert await testing.call(orchestrator, agent.name, at_limit) == {"json": LIMIT, "attachment": 0}
        assert agent.seen == [at_limit]


async def test_the_refused_input_is_never_decoded_and_counts_as_refused_bad(bus: Bus) -> None:
    agent = Recorder()
    subject = agent_subject(agent.team, agent.name)
    headers = CallContext.with_timeout(30).headers()

    def refusal(reply: Message) -> tuple[str, str, str]:
        """A refusal's code, field and message (a NATS micro error: headers, no body)."""
        return (
            reply.headers["Nats-Service-Error-Code"],
            reply.headers[HEADER_ERROR_FIELD],
            reply.headers["Nats-Service-Error"],
        )

    async with serving(bus, agent) as runner, bus.inbox() as box:
        not_json = b"{" * (LIMIT + 1)  # decoded, it would be refused as "not JSON"
        reply = await box.request(subject, not_json, headers=headers, timeout_s=30)
        expected = f"{LIMIT + 1} bytes of JSON; t-recorder takes at most {LIMIT} bytes"
        assert refusal(reply) == ("too_large", "input", expected)
        assert (runner.stats.refused_bad, runner.stats.accepted) == (1, 0)
        short = b"{" * LIMIT  # within the limit: decoded, and refused for what it is
        code, field, message = refusal(await box.request(subject, short, headers=headers, timeout_s=30))
        assert (code, field) == ("bad_request", "input") and message.startswith("input is not JSON")
        assert (runner.stats.refused_bad, runner.stats.accepted) == (2, 0)
    assert agent.seen == []


async def test_a_larger_declared_limit_takes_a_larger_input(bus: Bus) -> None:
    small, big = Recorder(), BigRecorder()
    payload = _text_of(3 * LIMIT)
    async with running(bus, [small, big]) as orchestrator:
        with pytest.raises(TooLargeError, match=f"t-recorder takes at most {LIMIT} bytes"):
            await testing.call(orchestrator, small.name, payload)
        assert await testing.call(orchestrator, big.name, payload) == {"json": 3 * LIMIT, "attachment": 0}
    assert small.seen == [] and big.seen == [payload]


async def test_the_attachment_does_not_count_against_the_limit(bus: Bus) -> None:
    agent = Recorder()
    attachment = bytes(range(256)) * (4 * LIMIT // 256)  # four times the limit, after a JSON within it
    async with running(bus, [agent]) as orchestrator:
        out = await testing.call(orchestrator, agent.name, Attached(_text_of(LIMIT), attachment))
        assert out == {"json": LIMIT, "attachment": len(attachment)}
        with pytest.raises(TooLargeError, match=f"{LIMIT + 1} bytes of JSON"):
            await testing.call(orchestrator, agent.name, Attached(_text_of(LIMIT + 1), b"x"))
    assert len(agent.seen) == 1


def test_every_agent_declares_a_limit_its_input_model_allows() -> None:
    """The roster's limits: the default, a text limit from the model, or the NATS payload; spec shows it."""
    limits = {cls.name: cls.max_input_bytes for team in AGENTS_BY_TEAM.values() for cls in team}
    limits.update({cls.name: cls.max_input_bytes for cls in HELPERS})
    assert limits["fetcher"] == DEFAULT_MAX_INPUT_BYTES
    assert limits["summarizer"] == text_input_bytes(200_000) == 4 * 200_000 + 64 * 1024
    assert limits["chat"] == text_input_bytes(200_000, 200_000)  # message and system
    assert limits["planner"] == limits["rag-answerer"] == text_input_bytes(10_000)
    assert limits["archivist"] == limits["compressor"] == limits["aggregator"] == NATS_MAX_PAYLOAD_BYTES
    assert limits["retriever"] == NATS_MAX_PAYLOAD_BYTES  # "find what is like this document": any length
    assert max(limits.values()) == NATS_MAX_PAYLOAD_BYTES  # none above what one NATS message carries
    assert spec_of(BigRecorder).max_input_bytes == 4 * LIMIT
