"""The workers of an :class:`~agents.actor.AgentRunner`: each takes calls from the mailbox and runs them.

A call runs in its worker's cancel scope, which its deadline (one timer per instance,
:mod:`agents.deadlines`) or the caller's cancel message cancels; a call whose deadline passed or whose
caller cancelled it before it started is not run. Each call is answered with its output or error, then
counted, its span ended, and the next call of its session let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from pydantic import BaseModel, ValidationError

from agents._call import Call
from agents.deadlines import DeadlineTimer, WorkerSlot
from agents.errors import (
    AgentError,
    AgentFailedError,
    BadInputError,
    CancelledByCallerError,
    DeadlineExceededError,
)
from agents.mailbox import Mailbox
from agents.messaging import Message
from agents.tracing import SpanKind, remote_context, start_child, tracer

if TYPE_CHECKING:
    from agents.actor import Agent, RunnerStats

_tracer = tracer("neurectomy.agents")
_NO_SCOPE = contextlib.nullcontext()
log = structlog.get_logger("neurectomy.agents")


_LOG_VARS: list[tuple[ContextVar[Any], ContextVar[Any], ContextVar[Any]]] = []


def _log_vars() -> tuple[ContextVar[Any], ContextVar[Any], ContextVar[Any]]:
    """The structlog context variables of a call's log context: ``agent``, ``request_id``, ``trace_id``.

    What ``structlog.contextvars.bind_contextvars`` sets for these keys (looked up once; the variables
    are never replaced), set and reset directly for a call run in its caller's task.
    """
    if not _LOG_VARS:
        tokens = structlog.contextvars.bind_contextvars(agent="", request_id="", trace_id="")
        structlog.contextvars.reset_contextvars(**tokens)
        _LOG_VARS.append((tokens["agent"].var, tokens["request_id"].var, tokens["trace_id"].var))
    return _LOG_VARS[0]


def parse_input(model: type[BaseModel], data: Any) -> Any:
    """Validate ``data`` against ``model``.

    Raises:
        BadInputError: Naming the first offending field.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise BadInputError(first["msg"], field=where) from None


class WorkerPool:
    """The workers of :class:`~agents.actor.AgentRunner`.

    A mixin: the runner's ``__init__`` sets the attributes below.
    """

    agent: Agent
    stats: RunnerStats
    _mailbox: Mailbox[Call]
    _active: dict[str, Call]
    _sessions: dict[str, deque[Call]]
    _deadlines: DeadlineTimer
    _workers_scope: anyio.CancelScope
    _here: set[WorkerSlot]
    """The slots of the calls running in their callers' tasks (:meth:`_run_here`)."""
    _call_log: Any = log
    """The logger of each call's "call done" line, resolved by the first worker (see :meth:`_work`)."""

    async def _on_cancel(self, msg: Message) -> None:
        request_id = msg.subject.rsplit(".", 1)[-1]
        call = self._active.get(request_id)
        if call is not None:
            call.cancelled_by_caller = True  # not run if it has not started
            self._deadlines.cancel_call(call, "cancelled by the caller")

    async def _work(self) -> None:
        """One worker: serves the mailbox's calls one at a time until it is closed and empty.

        The calls run in the slot's cancel scope, which the deadline timer or a cancel message cancels
        for the call running then; the call is answered once out of that scope, and a new scope serves
        the next calls.
        """
        # The worker is its own task with its own context: bound once, the log context is set per call.
        tokens = structlog.contextvars.bind_contextvars(agent=self.agent.name, request_id="", trace_id="")
        # structlog's module-level proxy resolves its logger on every call (1-2 µs even for a filtered
        # debug line); the logger it resolves to, bound once the logging is configured, filters in 0.2 µs.
        self._call_log = log.bind()
        ids = (tokens["request_id"].var, tokens["trace_id"].var)
        slot = WorkerSlot()
        self._deadlines.add(slot)
        try:
            while True:
                interrupted: tuple[Mapping[str, Any] | None, AgentError | None] | None = None
                with slot.scope:
                    interrupted = await self._serve_calls(slot, ids)
                if slot.call is None:
                    return  # the mailbox is closed and empty
                output, error = interrupted or (None, None)
                caught = slot.scope.cancelled_caught
                slot.scope = anyio.CancelScope()
                await self._end(slot, output, error, caught=caught)
        finally:
            if slot.call is not None:  # cancelled with the workers (the drain's grace ended)
                self._done(slot, "cancelled")
            self._deadlines.remove(slot)

    async def _serve_calls(
        self, slot: WorkerSlot, ids: tuple[ContextVar[Any], ContextVar[Any]]
    ) -> tuple[Mapping[str, Any] | None, AgentError | None] | None:
        """Serve calls until the mailbox is closed and empty (``None``) or the scope was cancelled.

        A call whose handler returned while its cancellation was on the way leaves the scope at once with
        its output or error; one whose handler was cancelled leaves with the cancellation (``slot.call``
        says which call, either way).
        """
        get = self._mailbox.get
        while (call := await get()) is not None:
            ids[0].set(call.request_id)
            ids[1].set(call.trace_id)
            slot.call = call
            if call._turn is not None:
                await call._turn.wait()  # earlier calls of the session go first
            output, error = await self._run(slot, call)
            if slot.scope.cancel_called:  # cancelled as it returned: leave the scope first
                return output, error
            if not self._end_now(slot, output, error):
                await self._end(slot, output, error, caught=False)
        return None

    async def _run(self, slot: WorkerSlot, call: Call) -> tuple[Mapping[str, Any] | None, AgentError | None]:
        """Run ``call`` (``slot.call``, its turn come) in ``slot``'s scope: its output or its error.

        Counts it in flight and starts its span; a call whose caller cancelled it or whose deadline passed
        is not run. An exception of the handler becomes the error answered (``failed``).
        """
        agent = self.agent
        self.stats.in_flight += 1
        call._started = time.perf_counter()
        call._at_once = len(self._active) <= 1  # alone: its chunks are written at once (see _end)
        if call.traceparent:  # untraced calls make no span and switch no context
            self._start_span(call)
        now = time.time()
        if call.cancelled_by_caller:
            return None, None  # answered as cancelled, never run
        if call.deadline <= now:
            return None, DeadlineExceededError(f"{agent.name}: deadline passed before the call ran")
        deadlines = self._deadlines
        deadlines.start(slot, call.deadline, now)
        try:
            if agent.input_model is not None:
                call.input = parse_input(agent.input_model, call.input)
            return await agent.handle(call), None
        except AgentError as exc:
            return None, exc
        except Exception as exc:
            log.exception("agent failed")
            return None, AgentFailedError(f"{agent.name} failed: {type(exc).__name__}: {exc}")
        finally:
            deadlines.stop(slot)

    def _end_now(self, slot: WorkerSlot, output: Mapping[str, Any] | None, error: AgentError | None) -> bool:
        """The common end, as :meth:`_end` does it without a coroutine: the ``End`` queued at once.

        Whether it was (then ``slot.call`` is done); ``False`` for an error, a call its caller cancelled, or
        an ``End`` that cannot go out without waiting (:meth:`_end` sends it).
        """
        call = slot.call
        if output is None or error is not None or call.cancelled_by_caller:
            return False
        call._at_once = len(self._active) <= 1  # (alone, written at once)
        try:
            sent = call._finish_now(output)
        except BaseException:
            self._done(slot, "completed")
            raise
        if sent:
            self._done(slot, "completed")
        return bool(sent)

    async def _run_here(self, call: Call, worker: asyncio.Future[Call | None]) -> None:
        """Run ``call`` in the caller's task, with the agent's log context, and answer it.

        For a caller in this process that waits for the call's last message anyway (see
        :meth:`~agents._accept.AcceptPath._accept`): no mailbox, no worker's wake-up, no wake-up of
        the caller for the answer. The call holds the place of ``worker``, an idle worker taken out of the
        mailbox's line (:meth:`Mailbox.borrow <agents.mailbox.Mailbox.borrow>`) and given back after, so
        calls never run more at once than the workers. It runs as a worker runs it: in a cancel scope of its
        own that its deadline or a cancel message cancels, counted and answered the same way; the caller's
        own cancellation cancels the handler and counts it ``cancelled`` (the caller is gone: no answer).
        """
        slot = WorkerSlot()
        slot.call = call
        deadlines = self._deadlines
        deadlines.add(slot)
        self._here.add(slot)
        agent_var, request_var, trace_var = _log_vars()
        tokens = (
            agent_var.set(self.agent.name),
            request_var.set(call.request_id),
            trace_var.set(call.trace_id),
        )
        try:
            output: Mapping[str, Any] | None = None
            error: AgentError | None = None
            with slot.scope:
                output, error = await self._run(slot, call)
            if not slot.scope.cancel_called:
                if not self._end_now(slot, output, error):
                    await self._end(slot, output, error, caught=False)
            elif not (slot.scope.cancelled_caught and self._workers_scope.cancel_called):
                await self._end(slot, output, error, caught=slot.scope.cancelled_caught)
            # else: cut off with the workers (the drain's grace ended): not answered, as a worker's call
        finally:
            if slot.call is not None:  # the caller was cancelled, or the drain cut the call off
                self._done(slot, "cancelled")
            self._here.discard(slot)
            deadlines.remove(slot)
            self._mailbox.give_back(worker)
            trace_var.reset(tokens[2])
            request_var.reset(tokens[1])
            agent_var.reset(tokens[0])

    def _start_span(self, call: Call) -> None:
        span = start_child(_tracer, "agent", parent=remote_context(call.traceparent), kind=SpanKind.SERVER)
        if span.is_recording():
            span.update_name(f"agent {self.agent.name}")
            span.set_attributes({"neurectomy.agent": self.agent.name, "neurectomy.team": self.agent.team})
            call._span, call._span_token = span, otel_context.attach(trace.set_span_in_context(span))

    async def _end(
        self, slot: WorkerSlot, output: Mapping[str, Any] | None, error: AgentError | None, *, caught: bool
    ) -> None:
        """Answer ``slot.call`` with its output or error (``caught``: its handler was cancelled)."""
        call = slot.call
        outcome = "completed"
        if call.cancelled_by_caller:
            error, outcome = CancelledByCallerError("cancelled by the caller"), "cancelled"
        elif caught:
            error = DeadlineExceededError(f"{self.agent.name}: deadline passed")
        if error is not None:
            if outcome != "cancelled":
                outcome = "failed"
            if call._span is not None:
                call._span.set_status(StatusCode.ERROR, error.code)
        try:
            # The last message goes out even when the drain's grace ends now. A shield scope costs more
            # than the rest of a call's bookkeeping; it matters only once the workers' scope is cancelled
            # (a publish waits only when nats-py's buffer is full), so only then is it paid.
            shield = anyio.CancelScope(shield=True) if self._workers_scope.cancel_called else _NO_SCOPE
            with shield:
                # alone, its answer is written at once; with others in hand, it leaves with theirs
                call._at_once = len(self._active) <= 1
                if error is not None:
                    await call._fail(error)
                elif output is not None:
                    await call._finish(output)
        finally:
            self._done(slot, outcome)

    def _done(self, slot: WorkerSlot, outcome: str) -> None:
        """Forget ``slot.call`` (answered, or cut off by the drain): counters, span, its session's next."""
        call: Call = slot.call
        slot.call = None
        if call._span is not None and call._span_token is not None:
            otel_context.detach(call._span_token)
            call._span.end()
        self._active.pop(call.request_id, None)
        stats = self.stats
        seconds = 0.0
        if call._started:  # (else cut off while waiting for its turn in a session)
            stats.in_flight -= 1
            seconds = time.perf_counter() - call._started
            stats.processing_s_total += seconds
        setattr(stats, outcome, getattr(stats, outcome) + 1)
        if call._turn is not None:
            self._next_in_session(call)
        self._call_log.debug("call done", outcome=outcome, seconds=round(seconds, 4))

    def _next_in_session(self, call: Call) -> None:
        queue = self._sessions.get(call.session)
        if not queue:
            return
        if queue[0] is call:
            queue.popleft()
        else:  # pragma: no cover - only when the worker was cancelled before its turn
            queue.remove(call)
        if queue:
            queue[0]._turn.set()  # type: ignore[union-attr]
        else:
            del self._sessions[call.session]
