"""How the orchestrator runs a durable task: plan it (goal → the ``planner`` agent), then run the plan.

A plan that fails on an infrastructure error (no responders, busy, timeout, lost instance) raises that
error, so the task worker retries the task (redelivery, up to ``max_attempts``); a plan that fails on
the task's own fault (bad input, not found, too large) is a failed task, not retried.

A run resumes what earlier runs of the task finished: the planner's plan is journaled before the first
step (``record.planned``) and every finished step's output before its dependents start
(``record.steps``), so a redelivery neither plans again nor re-runs a finished step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from agents.errors import BadInputError, error_from_wire
from agents.plans import PlanError, PlanOutcome, parse_plan
from agents.tracing import TENANT_ATTRIBUTE, current_trace_id, remote_context, start_child, tracer
from orchestrator._call_context import CallContext
from orchestrator._task_store import TaskRecord
from orchestrator._task_worker import Executor, TaskJournal

if TYPE_CHECKING:
    from orchestrator._orchestrator import Orchestrator

__all__ = ("INFRASTRUCTURE_CODES", "clarification", "task_executor")

_tracer = tracer("neurectomy.orchestrator")

INFRASTRUCTURE_CODES = frozenset({"no_responders", "busy", "timeout", "stream_broken"})
"""Wire codes of failures that a later attempt of the task may not meet."""


def goal_inputs(goal: str) -> dict[str, Any]:
    """The input a planned goal's plan reads: the goal as ``text``, ``goal`` and ``question``."""
    return {"text": goal, "goal": goal, "question": goal}


def clarification(planned: dict[str, Any]) -> PlanOutcome:
    """The outcome of a goal the planner was not sure about: nothing ran; the candidates are the result.

    Args:
        planned: The ``planner``'s output with ``status`` ``needs_clarification``.
    """
    reason = str(planned.get("reason") or "the goal is not clear enough to plan")
    return PlanOutcome(
        plan="planned",
        status="needs_clarification",
        output={
            "reason": reason,
            "confidence": planned.get("confidence"),
            "subgoals": planned.get("rationale", []),
        },
        steps=[],
        error={"code": "needs_clarification", "message": reason, "field": "goal"},
        seconds=0.0,
    )


def task_executor(orchestrator: Orchestrator, *, deadline_s: float) -> Executor:
    """The function a :class:`~orchestrator._task_worker.TaskWorker` calls to run one task.

    Args:
        orchestrator: Plans and runs.
        deadline_s: Deadline of one run of a task, in seconds.
    """

    async def execute(record: TaskRecord, journal: TaskJournal) -> PlanOutcome:
        span = start_child(
            _tracer,
            "task",
            parent=remote_context(record.traceparent),
            attributes={
                "neurectomy.task": record.id,
                "neurectomy.attempt": record.attempts,
                TENANT_ATTRIBUTE: record.tenant,
            },
        )
        with trace.use_span(span, end_on_exit=True):
            return await _execute(record, journal)

    async def _execute(record: TaskRecord, journal: TaskJournal) -> PlanOutcome:
        ctx = CallContext.with_timeout(
            deadline_s,
            request_id=f"task-{record.id}-{record.attempts}",
            # The same on every attempt: a step that wrote before a crash is not written again when the
            # re-run calls it (plan steps call with "task-<id>-<step id>"; the vault keeps the first result).
            idempotency_key=f"task-{record.id}",
            tenant=record.tenant,
            trace_id=current_trace_id() or record.id,
            scopes=frozenset(record.scopes),
        )
        if record.plan is not None:
            plan, inputs = parse_plan(record.plan), record.input
        else:
            goal = record.goal or ""
            if record.planned is not None:  # planned by an earlier run: resume that plan
                journaled = record.planned
                plan = parse_plan(journaled.get("plan", journaled))  # {plan, input}, or a bare plan
                inputs = journaled.get("input") or goal_inputs(goal)
            else:
                planned = await orchestrator.invoke("planner", {"goal": goal}, ctx)
                if planned.output.get("status") == "needs_clarification":
                    return clarification(planned.output)
                try:
                    plan = parse_plan(planned.output["plan"])
                except (PlanError, KeyError) as exc:
                    raise BadInputError(
                        f"the planner returned an unusable plan: {exc}", field="goal"
                    ) from None
                inputs = planned.output.get("input") or goal_inputs(goal)
                plan_json = plan.model_dump(mode="json", exclude_defaults=True)
                await journal.plan_made({"plan": plan_json, "input": inputs})
        done = {s.id: s for s in record.steps if s.status == "succeeded"}
        outcome = await orchestrator.plans.run(
            plan, inputs, ctx, progress=journal, journal=journal.commit, done=done
        )
        if outcome.status == "failed" and outcome.error and outcome.error.get("code") in INFRASTRUCTURE_CODES:
            err = outcome.error
            raise error_from_wire(str(err["code"]), str(err.get("message", "")), err.get("field"))
        return outcome

    return execute
