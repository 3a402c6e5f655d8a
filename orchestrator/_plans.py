"""Running a plan: every step as soon as its dependencies are done, with a report per step.

Each step waits for the steps it depends on, resolves its input (`agents.plans.resolve`), resolves a
capability to an agent (`Selector`), and is routed with retries and failover (`Router`). A failed
step that is not ``optional`` fails the plan: the steps still running are cancelled (each running call
publishes its cancel, so agents stop their work) and the steps not started are ``skipped``. Cancelling
the run (``cancel`` event, or cancelling the caller) does the same and reports ``cancelled``.

**Journal and resume.** With a ``journal``, each step that succeeds is journaled (the function returns
once the reports, with the step's output, are stored) before any step that depends on it starts. A run
given ``done`` (the succeeded reports of an earlier run of the same plan) takes those steps' outputs as
they are and runs only the others: a durable task redelivered after a crash resumes, it does not restart.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Literal

import anyio
import structlog
from anyio.abc import TaskGroup
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from agents.errors import AgentError, BadInputError
from agents.plans import Plan, PlanError, PlanOutcome, PlanStep, StepReport, dependencies, resolve
from agents.tracing import start_child, tracer
from orchestrator._call_context import CallContext
from orchestrator._route import Router
from orchestrator._select import Selector

__all__ = ("PlanRunner", "ProgressFn")

log = structlog.get_logger("neurectomy.orchestrator")
_tracer = tracer("neurectomy.orchestrator")

ProgressFn = Callable[[list[StepReport]], Awaitable[None]]
"""Called with every step's report whenever one of them changes."""


def _error(exc: AgentError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message, "field": exc.field}


class _Run:
    def __init__(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        progress: ProgressFn | None,
        journal: ProgressFn | None = None,
        done: Mapping[str, StepReport] | None = None,
    ) -> None:
        self.plan = plan
        self.inputs = inputs
        self.progress = progress
        self.journal = journal
        self.reports = {s.id: StepReport(id=s.id, agent=s.agent) for s in plan.steps}
        self.outputs: dict[str, Any] = {}
        for sid, report in (done or {}).items():  # finished in an earlier run: reused, not run again
            if sid in self.reports and report.status == "succeeded":
                self.reports[sid] = report.model_copy()
                self.outputs[sid] = report.output
        self.resumed = frozenset(self.outputs)
        self.failed: AgentError | None = None
        self.journal_error: Exception | None = None
        self.cancelled = False
        # The schedule: no step waits in a task; a step starts once its last dependency is done.
        self.deps = {s.id: dependencies(s) for s in plan.steps}
        self.waiting = {sid: set(deps) - self.outputs.keys() for sid, deps in self.deps.items()}
        self.dependents: dict[str, list[PlanStep]] = {s.id: [] for s in plan.steps}
        for step in plan.steps:
            for dep in self.deps[step.id]:
                self.dependents[dep].append(step)
        self.ready = [s for s in plan.steps if s.id not in self.outputs and not self.waiting[s.id]]

    async def changed(self) -> None:
        if self.progress is not None:
            await self.progress([self.reports[s.id] for s in self.plan.steps])

    def finished(self, step_id: str) -> list[PlanStep]:
        """The steps that can start now that ``step_id`` is done.

        A step whose dependency has no output (it failed) is ``skipped`` here, and is done in turn.
        """
        ready: list[PlanStep] = []
        done = [step_id]
        while done:
            sid = done.pop()
            for step in self.dependents[sid]:
                if step.id in self.resumed:  # finished in an earlier run (after an optional step failed)
                    continue
                waiting = self.waiting[step.id]
                waiting.discard(sid)
                if waiting:
                    continue
                if any(d not in self.outputs for d in self.deps[step.id]):  # a needed step failed
                    self.reports[step.id].status = "skipped"
                    done.append(step.id)
                else:
                    ready.append(step)
        return ready


class PlanRunner:
    """Runs plans through a :class:`Router`.

    Args:
        router: Routes each step's call.
        selector: Resolves ``capability`` steps to agents.
    """

    def __init__(self, router: Router, selector: Selector) -> None:
        self.router = router
        self.selector = selector

    def authorise(self, plan: Plan, ctx: CallContext) -> None:
        """Raise unless ``ctx.scopes`` allow every step that names its agent (before anything runs).

        A step whose operation is a reference (``op: "${input.op}"``) needs the strictest scope of its
        agent; each step is checked again with its resolved input when it runs, and a ``capability``
        step once its agent is chosen.

        Raises:
            ForbiddenError: A step needs a scope the caller lacks (the message names the step).
            NotFoundError: A step names an agent not in the roster.
        """
        for step in plan.steps:
            if step.agent is None:
                continue
            try:
                self.router.authorise(step.agent, step.input, ctx)
            except AgentError as exc:
                exc.field = f"plan.steps.{step.id}"
                raise

    async def run(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        ctx: CallContext,
        *,
        progress: ProgressFn | None = None,
        cancel: anyio.Event | None = None,
        journal: ProgressFn | None = None,
        done: Mapping[str, StepReport] | None = None,
    ) -> PlanOutcome:
        """Run ``plan`` with ``inputs``; never raises for a failed step (the outcome says ``failed``).

        Args:
            plan: The plan.
            inputs: What ``${input.*}`` references resolve against.
            ctx: Tenant, trace id and the deadline of the whole run; step calls get ids
                ``<request id>-<step id>-<attempt>``.
            progress: Called whenever a step's report changes.
            cancel: Setting it cancels the run (running steps are told to stop).
            journal: Awaited with every step's report after a step succeeds, before the steps that
                depend on it start (it stores them durably); its errors end the run (they propagate).
            done: Step id → succeeded report of an earlier run of this plan: those steps are not run,
                their outputs are reused.

        Raises:
            Exception: Only what ``journal`` raises.
        """
        span = start_child(_tracer, f"plan {plan.name}", attributes={"neurectomy.steps": len(plan.steps)})
        run = _Run(plan, inputs, progress, journal, done)
        if not span.is_recording():
            return await self._run(run, ctx, cancel)
        with trace.use_span(span, end_on_exit=True):
            return await self._run(run, ctx, cancel)

    async def _run(self, run: _Run, ctx: CallContext, cancel: anyio.Event | None) -> PlanOutcome:
        started = time.perf_counter()
        plan, inputs = run.plan, run.inputs
        try:
            self.authorise(plan, ctx)
        except AgentError as exc:
            return PlanOutcome(
                plan=plan.name,
                status="failed",
                steps=[run.reports[s.id] for s in plan.steps],
                error=_error(exc),
                seconds=time.perf_counter() - started,
            )
        if cancel is None:
            await self._run_steps(run, ctx)
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_cancel, cancel, run, tg.cancel_scope)
                await self._run_steps(run, ctx)
                tg.cancel_scope.cancel()  # stop the cancel watcher
        if run.journal_error is not None:
            raise run.journal_error
        for report in run.reports.values():
            if report.status in ("pending", "running"):
                report.status = "cancelled" if report.status == "running" else "skipped"
        status: Literal["succeeded", "failed", "cancelled"] = (
            "cancelled" if run.cancelled else "failed" if run.failed else "succeeded"
        )
        output: Any = None
        error = _error(run.failed) if run.failed else None
        if status == "succeeded":
            try:
                output = plan.result(inputs, run.outputs)
            except PlanError as exc:
                status, error = "failed", {"code": "bad_request", "message": str(exc), "field": exc.field}
        await run.changed()
        return PlanOutcome(
            plan=plan.name,
            status=status,
            output=output,
            steps=[run.reports[s.id] for s in plan.steps],
            error=error,
            seconds=time.perf_counter() - started,
        )

    @staticmethod
    async def _watch_cancel(cancel: anyio.Event, run: _Run, scope: anyio.CancelScope) -> None:
        await cancel.wait()
        run.cancelled = True
        scope.cancel()

    async def _run_steps(self, run: _Run, ctx: CallContext) -> None:
        async with anyio.create_task_group() as steps:
            for step in run.ready:
                steps.start_soon(self._branch, step, run, ctx, steps)

    async def _branch(self, step: PlanStep, run: _Run, ctx: CallContext, steps: TaskGroup) -> None:
        """Run ``step``, then the steps it makes ready: the first in this task, the others in new tasks.

        A chain of steps thus runs in one task, and no task waits for its dependencies.
        """
        next_step: PlanStep | None = step
        while next_step is not None:
            await self._step(next_step, run, ctx, steps.cancel_scope)
            if steps.cancel_scope.cancel_called or run.cancelled:  # failed or cancelled: start nothing
                return
            if run.journal is not None and run.reports[next_step.id].status == "succeeded":
                try:
                    await run.journal([run.reports[s.id] for s in run.plan.steps])
                except Exception as exc:  # raised by run() itself, not as an exception group
                    run.journal_error = run.journal_error or exc
                    steps.cancel_scope.cancel()
                    return
            ready = run.finished(next_step.id)
            next_step = ready[0] if ready else None
            for other in ready[1:]:
                steps.start_soon(self._branch, other, run, ctx, steps)

    async def _step(self, step: PlanStep, run: _Run, ctx: CallContext, scope: anyio.CancelScope) -> None:
        report = run.reports[step.id]
        span = start_child(_tracer, f"step {step.id}", attributes={"neurectomy.step": step.id})
        try:
            if not span.is_recording():
                await self._execute(step, report, run, ctx)
            else:
                with trace.use_span(
                    span, end_on_exit=False, record_exception=False, set_status_on_exception=False
                ):
                    await self._execute(step, report, run, ctx)
        except AgentError as exc:
            if span.is_recording():
                span.set_status(StatusCode.ERROR, exc.code)
            report.status, report.error = "failed", _error(exc)
            if step.optional:
                run.outputs[step.id] = None  # dependents run, reading null
            elif run.failed is None:
                run.failed = exc
                scope.cancel()
        finally:
            if span.is_recording():
                span.set_attribute("neurectomy.agent", report.agent or "")
            span.end()
            if report.started_at is not None and report.seconds is None:
                report.seconds = time.time() - report.started_at
            if run.progress is not None:
                with anyio.CancelScope(shield=True):
                    await run.changed()

    async def _execute(self, step: PlanStep, report: StepReport, run: _Run, ctx: CallContext) -> None:
        try:
            payload = resolve(step.input, run.inputs, run.outputs, where=f"steps.{step.id}.input")
        except PlanError as exc:
            raise BadInputError(str(exc).split(": ", 1)[-1], field=exc.field) from None
        agent = step.agent
        if agent is None:
            selection = await self.selector.select(capability=step.capability, k=3)
            agent, report.selection = selection.agent, selection.explain()
        report.status, report.agent, report.started_at = "running", agent, time.time()
        if run.progress is not None:
            await run.changed()
        step_ctx = replace(  # a step's idempotency key: the run's (stable across re-runs if set) + step id
            ctx,
            request_id=f"{ctx.request_id}-{step.id}",
            idempotency_key=f"{ctx.idempotency_key}-{step.id}" if ctx.idempotency_key else "",
        )
        try:
            invocation = await self.router.invoke(
                agent, payload, step_ctx, timeout_s=step.timeout_s, retries=step.retries
            )
        except AgentError:
            report.attempts += 1
            raise
        report.attempts = invocation.attempts
        if report.agent != invocation.agent:  # a fallback answered
            report.agent = invocation.agent
        report.output = invocation.output
        report.status = "succeeded"
        run.outputs[step.id] = invocation.output
