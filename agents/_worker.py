"""The workers of an :class:`~agents.actor.AgentRunner`: each takes calls from the mailbox and runs them.

A call runs in its worker's cancel scope, which its deadline (one timer per instance,
:mod:`agents.deadlines`) or the caller's cancel message cancels; a call whose deadline passed or whose
caller cancelled it before it started is not run. Each call is answered with its output or error, then
counted, its span ended, and the next call of its session let go.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from mypy_extensions import trait
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


@trait  # a mixin of AgentRunner (as AcceptPath)
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
    _call_log: Any
    """The logger of each call's "call done" line, resolved by the first worker (see :meth:`_work`)."""
    _log_done: bool
    """Whether that line is logged at all: ``False`` once the first worker found the configured level
    drops debug lines (its arguments are then not even built)."""

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
        # A level that drops debug lines drops this one for good: not even its arguments are built then.
        self._call_log = call_log = log.bind()
        enabled = getattr(call_log, "is_enabled_for", None)  # (structlog's filtering loggers have it)
        self._log_done = enabled is None or bool(enabled(logging.DEBUG))
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
        get, agent, deadlines = self._mailbox.get, self.agent, self._deadlines
        while (call := await get()) is not None:
            ids[0].set(call.request_id)
            ids[1].set(call.trace_id)
            slot.call = call
            if call._turn is not None:
                await call._turn.wait()  # earlier calls of the session go first
            self.stats.in_flight += 1
            call._started = time.perf_counter()
            call._at_once = len(self._active) <= 1  # alone: its chunks are written at once (see _end)
            if call.traceparent:  # untraced calls make no span and switch no context
                self._start_span(call)
            output: Mapping[str, Any] | None = None
            error: AgentError | None = None
            now = time.time()
            if call.cancelled_by_caller:
                pass  # answered as cancelled, never run
            elif call.deadline <= now:
                error = DeadlineExceededError(f"{agent.name}: deadline passed before the call ran")
            else:
                deadlines.start(slot, call.deadline, now)
                try:
                    if agent.input_model is not None:
                        call.input = parse_input(agent.input_model, call.input)
                    output = await agent.handle(call)
                except AgentError as exc:
                    error = exc
                except Exception as exc:
                    log.exception("agent failed")
                    error = AgentFailedError(f"{agent.name} failed: {type(exc).__name__}: {exc}")
                finally:
                    deadlines.stop(slot)
                if slot.scope.cancel_called:  # cancelled as it returned: leave the scope first
                    return output, error
                if output is not None and error is None and not call.cancelled_by_caller:
                    # the common end, as _end does it without a coroutine: the End queued at once
                    call._at_once = len(self._active) <= 1  # (alone, written at once)
                    try:
                        sent = call._finish_now(output)
                    except BaseException:
                        self._done(slot, "completed")
                        raise
                    if sent:
                        self._done(slot, "completed")
                        continue
            await self._end(slot, output, error, caught=False)
        return None

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
        if outcome == "completed":  # (most calls: no attribute looked up by name)
            stats.completed += 1
        else:
            setattr(stats, outcome, getattr(stats, outcome) + 1)
        if call._turn is not None:
            self._next_in_session(call)
        if self._log_done:
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
