"""The plan runner's journal and resume, on its scheduling alone.

The router is a recording stand-in (every call answers at once, or fails for the step named to fail):
these tests check which steps the runner starts and in which order it journals them, not the transport,
which the durable-task end-to-end tests run for real (``tests/neurectomy/test_task_faults_e2e.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest

from agents.errors import AgentFailedError
from agents.jetstream import JetStreamUnavailableError
from agents.plans import StepReport, parse_plan
from orchestrator._dispatch import CallContext
from orchestrator._plans import PlanRunner
from orchestrator._route import Invocation

pytestmark = pytest.mark.anyio

PLAN = parse_plan(
    {
        "steps": [
            {"id": "a", "agent": "x", "input": {"v": "${input.v}"}},
            {"id": "b", "agent": "x", "input": {"v": "${steps.a.v}"}},
            {"id": "c", "agent": "x", "input": {"v": "${steps.b.v}"}},
            {"id": "d", "agent": "x", "input": {"v": "${steps.a.v}"}},
        ],
        "output": {"c": "${steps.c.v}", "d": "${steps.d.v}"},
    }
)


class RecordingRouter:
    """Answers every call with its input plus the step; fails the steps in ``fail``."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.calls: list[str] = []
        self.fail = fail

    def authorise(self, agent: str, payload: Mapping[str, Any], ctx: CallContext) -> None:
        """Every call is allowed here (scopes per operation: tests/neurectomy/test_trust_boundary.py)."""

    async def invoke(self, agent: str, payload: Mapping[str, Any], ctx: CallContext, **_: Any) -> Invocation:
        step = ctx.request_id.rsplit("-", 1)[-1]
        self.calls.append(step)
        if step in self.fail:
            raise AgentFailedError(f"{step} failed")
        return Invocation({"v": f"{payload['v']}>{step}"}, agent, "analysis", 1)


def runner(router: RecordingRouter) -> PlanRunner:
    return PlanRunner(cast(Any, router), cast(Any, None))


def ctx() -> CallContext:
    return CallContext.with_timeout(10, request_id="t")


async def test_each_step_is_journaled_before_its_dependents_start() -> None:
    router = RecordingRouter()
    events: list[tuple[str, frozenset[str]]] = []

    async def journal(reports: list[StepReport]) -> None:
        events.append(("journal", frozenset(r.id for r in reports if r.status == "succeeded")))

    real_invoke = router.invoke

    async def invoke(agent: str, payload: Mapping[str, Any], ctx: CallContext, **kw: Any) -> Invocation:
        events.append(("call", frozenset({ctx.request_id.rsplit("-", 1)[-1]})))
        return await real_invoke(agent, payload, ctx, **kw)

    router.invoke = invoke  # type: ignore[method-assign]
    outcome = await runner(router).run(PLAN, {"v": "0"}, ctx(), journal=journal)
    assert outcome.status == "succeeded"
    assert outcome.output == {"c": "0>a>b>c", "d": "0>a>d"}

    def first(kind: str, step: str) -> int:
        return next(i for i, (k, steps) in enumerate(events) if k == kind and step in steps)

    for step, dependency in (("b", "a"), ("d", "a"), ("c", "b")):
        assert first("journal", dependency) < first("call", step), events
    assert sum(k == "journal" for k, _ in events) == 4


async def test_a_resumed_run_skips_the_finished_steps_and_reuses_their_outputs() -> None:
    first = RecordingRouter(fail=frozenset({"c"}))
    failed = await runner(first).run(PLAN, {"v": "0"}, ctx())
    assert failed.status == "failed"
    done = {r.id: r for r in failed.steps if r.status == "succeeded"}
    assert set(done) == {"a", "b", "d"}

    again = RecordingRouter()
    outcome = await runner(again).run(PLAN, {"v": "0"}, ctx(), done=done)
    assert again.calls == ["c"]  # a, b and d are not called again
    assert outcome.status == "succeeded" and outcome.output == {"c": "0>a>b>c", "d": "0>a>d"}
    assert [s.status for s in outcome.steps] == ["succeeded"] * 4


async def test_a_resumed_step_after_a_failed_optional_step_is_not_run_again() -> None:
    plan = parse_plan(
        {
            "steps": [
                {"id": "a", "agent": "x", "input": {"v": "1"}, "optional": True},
                {"id": "b", "agent": "x", "input": {"v": "${steps.a}"}},
            ]
        }
    )
    done = {"b": StepReport(id="b", agent="x", status="succeeded", output={"v": "kept"})}
    router = RecordingRouter()
    outcome = await runner(router).run(plan, {}, ctx(), done=done)
    assert router.calls == ["a"] and outcome.output == {"v": "kept"}


async def test_a_failed_journal_write_is_raised_as_itself() -> None:
    async def journal(reports: list[StepReport]) -> None:
        raise JetStreamUnavailableError("KV update: JetStream did not answer")

    router = RecordingRouter()
    with pytest.raises(JetStreamUnavailableError):
        await runner(router).run(PLAN, {"v": "0"}, ctx(), journal=journal)
    assert router.calls == ["a"]  # no dependent started after the journal failed
