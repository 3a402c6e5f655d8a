"""Routing on a real nats-server: least-loaded replica, failover on busy, retries, circuit breaker,
plans (fan-out, join, failure, cancellation).

The agents here are small test agents (they sleep, fail on purpose, or add numbers) so that each
behaviour of the router can be provoked; the real agents are exercised in tests/agents and in the
end-to-end tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, aclosing
from functools import partial
from typing import Any, ClassVar

import anyio
import pytest
from pydantic import BaseModel

from agents import Agent, AgentFailedError, AgentRunner, BadInputError, Bus, Call, NotFoundError
from agents.collective import spec_of
from agents.plans import parse_plan
from orchestrator import CallContext, Orchestrator, OrchestratorConfig
from orchestrator._dispatch import call_for_output
from orchestrator.testing import running

pytestmark = pytest.mark.anyio


class SleepIn(BaseModel):
    seconds: float = 0.0
    value: int = 0


class Sleeper(Agent):
    """Sleeps, then returns its value and which instance served it."""

    name = "t-sleeper"
    team = "analysis"
    description = "Sleeps for a while and answers with the value it was given."
    capabilities = ("sleep",)
    input_model: ClassVar[type[BaseModel]] = SleepIn

    def __init__(self, label: str = "") -> None:
        self.label = label

    async def handle(self, call: Call) -> Mapping[str, Any]:
        await anyio.sleep(call.input.seconds)
        return {"value": call.input.value, "label": self.label}


class BackupSleeper(Sleeper):
    name = "t-backup"
    description = "Another agent that sleeps, used as the fallback of t-sleeper."


class Flaky(Agent):
    """Fails its first ``failures`` calls, then adds ``a`` and ``b``."""

    name = "t-flaky"
    team = "analysis"
    description = "Adds two numbers after failing a given number of times."
    capabilities = ("add",)

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def handle(self, call: Call) -> Mapping[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"planned failure {self.calls}")
        if not isinstance(call.input.get("a"), int):
            raise BadInputError("must be an integer", field="a")
        return {"sum": call.input["a"] + call.input.get("b", 0)}


SPECS = [spec_of(Sleeper), spec_of(BackupSleeper), spec_of(Flaky)]
FAST = OrchestratorConfig(backoff_base_s=0.01, backoff_max_s=0.05, breaker_failures=3, breaker_reset_s=30)


def collective(bus: Bus, *runners: AgentRunner) -> AbstractAsyncContextManager[Orchestrator]:
    """The runners and an orchestrator that has seen every replica's heartbeat."""
    return running(bus, runners, config=FAST, specs=SPECS)


def ctx(timeout_s: float = 10) -> CallContext:
    return CallContext.with_timeout(timeout_s)


async def test_calls_spread_over_replicas_by_load(bus: Bus) -> None:
    a, b = AgentRunner(bus, Sleeper("a")), AgentRunner(bus, Sleeper("b"))
    async with collective(bus, a, b) as orch:
        labels: list[str] = []

        async def one() -> None:
            inv = await orch.invoke("t-sleeper", {"seconds": 0.3}, ctx())
            labels.append(inv.output["label"])

        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)
    assert sorted(labels) == ["a", "b"]  # the second call went to the idle replica


async def test_busy_agent_fails_over_to_an_agent_of_the_same_capability(bus: Bus) -> None:
    busy = AgentRunner(bus, Sleeper("main"), mailbox_size=1)
    backup = AgentRunner(bus, BackupSleeper("backup"))
    async with collective(bus, busy, backup) as orch:
        results: list[Any] = []

        async def occupy() -> None:
            results.append(await orch.invoke("t-sleeper", {"seconds": 1.0}, ctx(), fallback=False))

        async with anyio.create_task_group() as tg:
            tg.start_soon(occupy)
            tg.start_soon(occupy)
            with anyio.fail_after(10):  # one call in flight and one in the mailbox: the agent is full
                while not (busy.stats.accepted == 2 and busy.stats.in_flight == 1):
                    await anyio.sleep(0.01)
            inv = await orch.invoke("t-sleeper", {"value": 7}, ctx())
        assert inv.agent == "t-backup" and inv.output == {"value": 7, "label": "backup"}
        assert any(f.startswith("t-sleeper: busy") for f in inv.failovers)
        assert busy.stats.refused_busy >= 1


async def test_a_failing_call_is_retried_with_backoff(bus: Bus) -> None:
    flaky = Flaky(failures=2)
    async with collective(bus, AgentRunner(bus, flaky)) as orch:
        inv = await orch.invoke("t-flaky", {"a": 2, "b": 3}, ctx(), retries=3)
    assert inv.output == {"sum": 5}
    assert inv.attempts == 3 and flaky.calls == 3


async def test_bad_input_is_not_retried(bus: Bus) -> None:
    flaky = Flaky(failures=0)
    async with collective(bus, AgentRunner(bus, flaky)) as orch:
        with pytest.raises(BadInputError) as err:
            await orch.invoke("t-flaky", {"a": "x"}, ctx(), retries=3)
    assert err.value.field == "a" and flaky.calls == 1


async def test_breaker_opens_after_repeated_failures_and_refuses_without_calling(bus: Bus) -> None:
    flaky = Flaky(failures=1000)
    async with collective(bus, AgentRunner(bus, flaky)) as orch:
        for _ in range(3):
            with pytest.raises(AgentFailedError):
                await orch.invoke("t-flaky", {"a": 1}, ctx(), retries=0)
        assert orch.router.breaker("t-flaky").state == "open"
        calls = flaky.calls
        with pytest.raises(Exception, match="circuit breaker open"):
            await orch.invoke("t-flaky", {"a": 1}, ctx(), retries=0)
        assert flaky.calls == calls
        listed = {a.name: a for a in await orch.agents()}
        assert listed["t-flaky"].health == "circuit_open"
        assert listed["t-backup"].replicas == 0 and listed["t-backup"].health == "down"


async def test_unknown_agent_is_not_found(bus: Bus) -> None:
    async with collective(bus) as orch:
        with pytest.raises(NotFoundError) as err:
            await orch.invoke("nobody", {}, ctx())
    assert err.value.field == "agent"


PLAN = {
    "name": "fan-out-join",
    "steps": [
        {"id": "first", "agent": "t-flaky", "input": {"a": "${input.x}", "b": 1}},
        {"id": "left", "agent": "t-flaky", "input": {"a": "${steps.first.sum}", "b": 10}},
        {"id": "right", "capability": "add", "input": {"a": "${steps.first.sum}", "b": 100}},
        {"id": "join", "agent": "t-flaky", "input": {"a": "${steps.left.sum}", "b": "${steps.right.sum}"}},
    ],
    "output": {"total": "${steps.join.sum}", "parts": ["${steps.left.sum}", "${steps.right.sum}"]},
}


async def test_plan_fans_out_and_joins(bus: Bus) -> None:
    async with collective(bus, AgentRunner(bus, Flaky(0), concurrency=2)) as orch:
        seen: list[list[str]] = []

        async def progress(reports: list[Any]) -> None:
            seen.append([r.status for r in reports])

        outcome = await orch.run_plan(parse_plan(PLAN), {"x": 1}, ctx(), progress=progress)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.output == {"total": 114, "parts": [12, 102]}  # (1+1)+10 + (1+1)+100
    assert [s.status for s in outcome.steps] == ["succeeded"] * 4
    assert outcome.steps[2].selection is not None and outcome.steps[2].selection["agent"] == "t-flaky"
    assert ["running", "pending", "pending", "pending"] in seen


async def test_failed_step_cancels_running_siblings_and_skips_dependents(bus: Bus) -> None:
    sleeper = AgentRunner(bus, Sleeper("s"))
    plan = parse_plan(
        {
            "steps": [
                {"id": "slow", "agent": "t-sleeper", "input": {"seconds": 30}},
                {"id": "bad", "agent": "t-flaky", "input": {"a": "not a number"}, "retries": 0},
                {"id": "after", "agent": "t-flaky", "input": {"a": "${steps.bad.sum}"}},
            ]
        }
    )
    async with collective(bus, sleeper, AgentRunner(bus, Flaky(0))) as orch:
        with anyio.fail_after(10):
            outcome = await orch.run_plan(plan, {}, ctx(60))
        with anyio.fail_after(5):
            while sleeper.stats.cancelled == 0:
                await anyio.sleep(0.02)  # the agent was told to stop, it did not run to the end
    assert outcome.status == "failed"
    assert outcome.error is not None and outcome.error["field"] == "a"
    assert [s.status for s in outcome.steps] == ["cancelled", "failed", "skipped"]


async def test_cancelling_a_plan_stops_its_running_steps(bus: Bus) -> None:
    sleeper = AgentRunner(bus, Sleeper("s"), concurrency=2)
    plan = parse_plan(
        {
            "steps": [
                {"id": "one", "agent": "t-sleeper", "input": {"seconds": 30}},
                {"id": "two", "agent": "t-sleeper", "input": {"seconds": 30}},
                {"id": "three", "agent": "t-sleeper", "input": {"value": "${steps.one.value}"}},
            ]
        }
    )
    async with collective(bus, sleeper) as orch:
        cancel = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def cancel_soon() -> None:
                while sleeper.stats.in_flight < 2:
                    await anyio.sleep(0.02)
                cancel.set()

            tg.start_soon(cancel_soon)
            with anyio.fail_after(10):
                outcome = await orch.run_plan(plan, {}, ctx(60), cancel=cancel)
        with anyio.fail_after(5):
            while sleeper.stats.cancelled < 2:
                await anyio.sleep(0.02)
    assert outcome.status == "cancelled"
    assert [s.status for s in outcome.steps] == ["cancelled", "cancelled", "skipped"]


async def test_calls_of_one_session_run_in_order_others_in_parallel(bus: Bus) -> None:
    finished: list[int] = []
    release_first = anyio.Event()

    class Recording(Sleeper):
        async def handle(self, call: Call) -> Mapping[str, Any]:
            if call.input.value == 1:
                await release_first.wait()  # call 1 runs until call 3 (another session) has finished
            out = await super().handle(call)
            finished.append(call.input.value)
            return out

    runner = AgentRunner(bus, Recording("r"), concurrency=4)
    async with collective(bus, runner) as orch:

        async def one(value: int, seconds: float, session: str) -> None:
            payload = {"seconds": seconds, "value": value, "session": session}  # the session key
            await orch.invoke("t-sleeper", payload, ctx(), fallback=False)

        async def accepted(n: int) -> None:
            with anyio.fail_after(10):
                while runner.stats.accepted < n:
                    await anyio.sleep(0.01)

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, 1, 0.0, "alice")
            await accepted(1)
            tg.start_soon(one, 2, 0.0, "alice")  # same session: waits for 1 although a worker is free
            await accepted(2)
            tg.start_soon(one, 3, 0.0, "bob")  # another session: does not wait
            with anyio.fail_after(10):
                while 3 not in finished:
                    await anyio.sleep(0.01)
            release_first.set()
    assert finished == [3, 1, 2]


class Streamer(Agent):
    """Streams ``n`` chunks, then its label; its first ``fail_before`` calls fail before any chunk and
    its first ``fail_after`` calls after one chunk."""

    name = "t-streamer"
    team = "analysis"
    description = "Streams a few chunks of text."
    capabilities = ("stream",)

    def __init__(self, label: str, *, fail_before: int = 0, fail_after: int = 0, hold_s: float = 0.0) -> None:
        self.label, self.fail_before, self.fail_after, self.hold_s = label, fail_before, fail_after, hold_s
        self.calls = 0

    async def handle(self, call: Call) -> Mapping[str, Any]:
        self.calls += 1
        await anyio.sleep(self.hold_s)
        if self.calls <= self.fail_before:
            raise RuntimeError("planned failure before the first chunk")
        for i in range(int(call.input.get("n", 3))):
            await call.emit({"text": f"{self.label}{i}"})
            if self.calls <= self.fail_after:
                raise RuntimeError("planned failure after the first chunk")
        return {"label": self.label}


async def _drain(orch: Orchestrator, payload: Mapping[str, Any]) -> list[Any]:
    events = orch.router.stream("t-streamer", payload, ctx(), team="analysis")
    async with aclosing(events):
        return [e async for e in events]


async def test_stream_fails_over_from_a_busy_replica_before_the_first_token(bus: Bus) -> None:
    busy = AgentRunner(bus, Streamer("a", hold_s=1.0), mailbox_size=1, concurrency=1)
    idle = AgentRunner(bus, Streamer("b"))
    async with collective(bus, busy, idle) as orch:
        busy_inst, idle_inst = (
            next(i for i in orch.monitor.healthy("t-streamer") if i.beat.instance == r.instance_id)
            for r in (busy, idle)
        )
        idle_inst.dispatched += 10  # the router's view of load lags the heartbeats: "a" looks idler
        async with anyio.create_task_group() as tg:
            for _ in range(2):  # "a" is full (one running, one waiting), unknown to the router
                occupy = partial(call_for_output, bus, "analysis", "t-streamer", {"n": 1}, ctx())
                tg.start_soon(partial(occupy, accept_timeout_s=5, observer=None, subject=busy.direct_subject))
            with anyio.fail_after(5):
                while busy.stats.accepted < 2:
                    await anyio.sleep(0.01)
            events = await _drain(orch, {"n": 3})
            tg.cancel_scope.cancel()
    assert [e.data["text"] for e in events[:-1]] == ["b0", "b1", "b2"]
    assert events[-1].output == {"label": "b"}
    assert busy.stats.refused_busy >= 1  # it was tried first, and refused


async def test_stream_fails_over_after_a_failure_before_the_first_token(bus: Bus) -> None:
    flaky = Streamer("a", fail_before=1)
    async with collective(bus, AgentRunner(bus, flaky)) as orch:
        events = await _drain(orch, {"n": 2})
    assert [e.data["text"] for e in events[:-1]] == ["a0", "a1"]
    assert flaky.calls == 2  # direct subject failed, the queue group answered


async def test_stream_failure_after_a_token_reaches_the_caller(bus: Bus) -> None:
    broken = Streamer("a", fail_after=1)
    async with collective(bus, AgentRunner(bus, broken)) as orch:
        seen: list[str] = []
        events = orch.router.stream("t-streamer", {"n": 3}, ctx(), team="analysis")
        with pytest.raises(AgentFailedError):
            async with aclosing(events):
                async for e in events:
                    seen.append(e.data["text"])
    assert seen == ["a0"]
    assert broken.calls == 1  # not repeated: the caller has seen part of this answer


async def test_call_retries_only_idempotent_calls(bus: Bus) -> None:
    once, twice = Flaky(failures=1), Flaky(failures=1)
    async with collective(bus, AgentRunner(bus, once)) as orch:
        with pytest.raises(AgentFailedError):
            await orch.call("analysis", "t-flaky", {"a": 1, "b": 2}, ctx())
    assert once.calls == 1
    async with collective(bus, AgentRunner(bus, twice)) as orch:
        out = await orch.call("analysis", "t-flaky", {"a": 1, "b": 2}, ctx(), idempotent=True)
    assert out == {"sum": 3} and twice.calls == 2


async def test_health_without_a_local_generator(bus: Bus) -> None:
    api_only = Orchestrator(bus, FAST, specs=SPECS, health_requires_generator=False)
    embedded = Orchestrator(bus, FAST, specs=SPECS)
    h = await api_only.health()
    assert (h["status"], h["nats_connected"], h["model_loaded"]) == ("ok", True, False)
    assert (await embedded.health())["status"] == "degraded"
