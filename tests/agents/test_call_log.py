"""Each call's "call done" debug line: logged with the call's own context, skipped when debug is off.

The worker decides once, as it starts, whether the configured level keeps debug lines (structlog's
filtering loggers drop them); with debug off it does not even build the line. A real nats-server runs;
the lines are captured through structlog's own configuration (``merge_contextvars`` then a
:class:`structlog.testing.LogCapture`), so a captured line carries the context a rendered line would.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

import anyio
import pytest
import structlog
from structlog.testing import LogCapture

from agents import Agent, Bus, Call
from agents.protocol import HEADER_DEADLINE, HEADER_REQUEST_ID, HEADER_SCOPES, HEADER_TRACE_ID
from tests.agents.conftest import serving

pytestmark = pytest.mark.anyio


class Answer(Agent):
    """Ends at once, or fails when the input asks it to."""

    name = "t-call-log"
    team = "analysis"
    description = "Answers at once."
    capabilities = ("call-log",)

    async def handle(self, call: Call) -> Mapping[str, Any]:
        if call.input.get("fail"):
            raise RuntimeError("asked to fail")
        return {"ok": True}


def capture(level: int) -> Iterator[LogCapture]:
    """structlog configured to keep lines at ``level`` and up, with the context variables merged in."""
    saved = structlog.get_config()
    captured = LogCapture()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, captured],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    try:
        yield captured
    finally:
        structlog.configure(**saved)


@pytest.fixture
def debug_logs() -> Iterator[LogCapture]:
    yield from capture(logging.DEBUG)


@pytest.fixture
def info_logs() -> Iterator[LogCapture]:
    yield from capture(logging.INFO)


async def ask(bus: Bus, subject: str, request_id: str, payload: dict[str, Any]) -> str:
    """One call over NATS: the type of its last message (``end`` or ``error``)."""
    headers = {
        HEADER_REQUEST_ID: request_id,
        HEADER_DEADLINE: repr(time.time() + 30),
        HEADER_SCOPES: "write",
        HEADER_TRACE_ID: f"trace-{request_id}",
    }
    async with bus.inbox() as box:
        reply = json.loads(
            (await box.request(subject, json.dumps(payload).encode(), headers=headers, timeout_s=10)).data
        )
        while reply.get("type") not in ("end", "error"):
            reply = json.loads((await box.next(10)).data)
    return str(reply["type"])


def done_lines(captured: LogCapture) -> list[dict[str, Any]]:
    return [entry for entry in captured.entries if entry["event"] == "call done"]


async def until_counted(runner: Any, calls: int) -> None:
    """Wait until the runner has counted ``calls`` calls as ended (it does so just after answering)."""
    with anyio.fail_after(10):
        while runner.stats.completed + runner.stats.failed < calls:
            await anyio.sleep(0.01)


async def test_with_debug_on_each_call_logs_its_end_with_its_own_context(
    debug_logs: LogCapture, bus: Bus, agent_bus: Bus
) -> None:
    async with serving(agent_bus, Answer()) as runner:
        assert await ask(bus, runner.subject, "rq-ok", {}) == "end"
        assert await ask(bus, runner.subject, "rq-fail", {"fail": True}) == "error"
        await until_counted(runner, 2)
    lines = done_lines(debug_logs)
    assert [(line["request_id"], line["outcome"]) for line in lines] == [
        ("rq-ok", "completed"),
        ("rq-fail", "failed"),
    ]
    assert {line["agent"] for line in lines} == {Answer.name}
    assert [line["trace_id"] for line in lines] == ["trace-rq-ok", "trace-rq-fail"]
    assert all(line["seconds"] >= 0 for line in lines)


async def test_with_debug_off_no_call_logs_its_end_and_every_call_is_still_counted(
    info_logs: LogCapture, bus: Bus, agent_bus: Bus
) -> None:
    async with serving(agent_bus, Answer()) as runner:
        assert await ask(bus, runner.subject, "rq-ok", {}) == "end"
        assert await ask(bus, runner.subject, "rq-fail", {"fail": True}) == "error"
        await until_counted(runner, 2)
        assert (runner.stats.completed, runner.stats.failed, runner.stats.in_flight) == (1, 1, 0)
    assert done_lines(info_logs) == []
    assert any(entry["event"] == "agent started" for entry in info_logs.entries)  # info lines are kept
