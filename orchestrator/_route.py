"""Routing one call reliably: replica choice, failover, retries with backoff, circuit breakers.

For a call to agent ``A`` the router tries, in order:

1. A's healthy instances, least loaded first, each on its direct subject; then A's shared subject (the
   queue group: NATS picks any replica, including ones started since the last heartbeat);
2. if A refuses (``busy``), has no responders, or its breaker is open: the next fallback agent of A's
   primary capability, the same way (failover costs no backoff);
3. on a retryable failure (the attempt's deadline passed, the agent crashed or its instance vanished):
   a new round after an exponential backoff with full jitter, while retries, the retry budget and the
   call's deadline allow.

A breaker counts only the agent's own failures: a crash, a lost instance, or a timeout of an attempt
that had the service's whole step deadline (``step_timeout_s``). A deadline the caller shortened
(``timeout_s``, or an overall deadline closer than a step's), a refusal and a 4xx answer say nothing
about the agent's health, so one caller's tiny deadlines cannot open a breaker for everyone.

Errors that retrying cannot fix (bad input, not found, too large, cancelled) are raised at once. Every
attempt gets its own request id but carries the call's idempotency key, so an agent that did the work
for an attempt whose answer came too late answers the retry without doing it again.

A streamed call (:meth:`Router.stream`) tries A's instances the same way, least loaded first and then the
queue group, and fails over on a refusal or failure only while it has yielded nothing: once a chunk has
reached the caller, a failure is raised (the caller has seen part of one answer and cannot be given the
start of another).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import anyio
import structlog

from agents.errors import (
    AgentBusyError,
    AgentError,
    AgentFailedError,
    DeadlineExceededError,
    NoRespondersError,
    NotFoundError,
    StreamBrokenError,
)
from agents.messaging import Bus
from agents.protocol import Chunk, End, agent_subject
from agents.scopes import check_scope
from orchestrator._call_context import CallContext, new_id
from orchestrator._dispatch import PROBE_S, AgentCall, call_for_output
from orchestrator._generators import routed_events
from orchestrator._load import LoadMonitor
from orchestrator._observe import CallObserver
from orchestrator._reliability import CircuitBreaker, RetryBudget, backoff_s
from orchestrator._select import Selector
from orchestrator._streams import RoutedStream
from orchestrator.config import OrchestratorConfig

__all__ = ("Invocation", "Router")

log = structlog.get_logger("neurectomy.orchestrator")

_REFUSED = (AgentBusyError, NoRespondersError)
"""Refusals: try the next replica or agent at once."""
_RETRYABLE = (DeadlineExceededError, AgentFailedError, StreamBrokenError)
"""Failures a later attempt may not repeat (InstanceLostError is a StreamBrokenError)."""


@dataclass(slots=True, init=False)
class Invocation:
    """The result of a routed call.

    Attributes:
        output: The agent's output.
        agent: The agent that produced it (may be a fallback).
        team: Its team.
        attempts: Calls made, refusals and retries included.
        failovers: One line per attempt that did not succeed (``agent: code``).
    """

    output: dict[str, Any]
    agent: str
    team: str
    attempts: int
    failovers: list[str]

    def __init__(
        self,
        output: dict[str, Any],
        agent: str,
        team: str,
        attempts: int,
        failovers: list[str] | None = None,
    ) -> None:
        # The dataclass's own __init__, written out (as agents._message.Message's, why: there): compiled,
        # each line is a store into the native object; the dataclass's would stay interpreted.
        self.output = output
        self.agent = agent
        self.team = team
        self.attempts = attempts
        self.failovers = [] if failovers is None else failovers


def _code(error: AgentError | None) -> str:
    return error.code if error is not None else "none"


class Router:
    """Sends calls to agents with failover and retries (see the module docstring).

    Args:
        bus: Connected bus.
        config: Timeouts, retry and breaker settings.
        selector: The roster (for teams and fallbacks).
        monitor: Live instances and their load.
        observer: Receives the latency of every attempt.
    """

    def __init__(
        self,
        bus: Bus,
        config: OrchestratorConfig,
        selector: Selector,
        monitor: LoadMonitor,
        observer: CallObserver | None = None,
    ) -> None:
        self.bus = bus
        self.config = config
        self.selector = selector
        self.monitor = monitor
        self.observer = observer
        self.budget = RetryBudget(
            ratio=config.retry_budget_ratio,
            min_retries=config.retry_budget_min,
            window_s=config.retry_budget_window_s,
        )
        self.breakers: dict[str, CircuitBreaker] = {}
        self._alive_checks: dict[str, Callable[[str], bool]] = {}

    def breaker(self, agent: str) -> CircuitBreaker:
        """The circuit breaker of ``agent`` (created closed on first use)."""
        b = self.breakers.get(agent)
        if b is None:
            b = self.breakers[agent] = CircuitBreaker(
                self.config.breaker_failures, self.config.breaker_reset_s
            )
        return b

    def _alive(self, agent: str) -> Callable[[str], bool] | None:
        """``alive(instance)`` for calls to ``agent`` (one per agent), or None before the monitor runs."""
        if not self.monitor.started:
            return None
        alive = self._alive_checks.get(agent)
        if alive is None:
            alive = self._alive_checks[agent] = self._alive_check(agent)
        return alive

    def _alive_check(self, agent: str) -> Callable[[str], bool]:
        monitor = self.monitor

        def alive(instance: str) -> bool:
            return any(i.beat.instance == instance for i in monitor.healthy(agent))

        return alive

    def _team(self, agent: str, default: str | None = None) -> str:
        spec = self.selector.specs.get(agent)
        if spec is None and default is not None:
            return default  # an agent outside the roster, called by team and name
        if spec is None:
            raise NotFoundError(f"no agent named {agent!r}", field="agent")
        return spec.team

    def authorise(self, agent: str, payload: Mapping[str, Any], ctx: CallContext) -> None:
        """Raise unless ``ctx.scopes`` allow calling ``agent`` with ``payload`` (`agents.scopes`).

        Raises:
            NotFoundError: ``agent`` is not in the roster.
            ForbiddenError: The scope the operation needs is missing.
        """
        spec = self.selector.specs.get(agent)
        if spec is None:
            raise NotFoundError(f"no agent named {agent!r}", field="agent")
        check_scope(agent, spec.scopes, payload, ctx.scopes)

    async def invoke(
        self,
        agent: str,
        payload: Mapping[str, Any],
        ctx: CallContext,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        fallback: bool = True,
        team: str | None = None,
    ) -> Invocation:
        """Call ``agent`` (or a fallback) and return its output.

        Args:
            agent: Agent name (must be in the roster).
            payload: Its input.
            ctx: Request id, tenant, trace id and the overall deadline.
            timeout_s: Deadline of one attempt, in seconds (default: ``config.step_timeout_s``; never past
                ``ctx.deadline``).
            retries: Extra rounds after retryable failures (default: ``config.retries``).
            fallback: Whether other agents of the same primary capability may answer.
            team: The agent's team when it is not in the roster (else looked up there).

        Raises:
            NotFoundError: ``agent`` is not in the roster.
            ForbiddenError: ``ctx.scopes`` lack the scope the call needs (checked before anything is sent).
            AgentError: The last error when every attempt failed, or a non-retryable error at once.
        """
        spec = self.selector.specs.get(agent)
        if spec is not None:  # as authorise() checks it, with the spec looked up once
            check_scope(agent, spec.scopes, payload, ctx.scopes)
            team = spec.team
        elif team is None:
            raise NotFoundError(f"no agent named {agent!r}", field="agent")
        # else: an internal service outside the roster (the embedder), called by team and name from the
        # service's own routes; the agent checks the caller's scopes itself (Neurectomy-Scopes header).
        config = self.config
        per_attempt_s = timeout_s or config.step_timeout_s
        key = ctx.idempotency_key or new_id()  # one per routed call, the same on every attempt
        rounds = (config.retries if retries is None else retries) + 1
        self.budget.record_call()
        names = [agent]  # the agent, then (looked up once, when it does not answer) its fallbacks
        fallbacks_due = fallback
        attempts, failovers = 0, []
        last: AgentError | None = None
        for round_no in range(rounds):
            index = 0
            while index < len(names) or fallbacks_due:
                if index == len(names):  # the agent itself did not answer: now its stand-ins
                    fallbacks_due = False
                    names += self.selector.fallbacks(agent)
                    continue
                name = names[index]
                index += 1
                if name != agent:  # a fallback that needs more than the caller holds is not tried
                    other = self.selector.specs.get(name)
                    if other is None or other.scopes.needed(payload) not in ctx.scopes:
                        continue
                breaker = self.breakers.get(name) or self.breaker(name)
                if breaker.opened_at is not None and not breaker.allow():  # (a closed one allows)
                    failovers.append(f"{name}: circuit open")
                    last = AgentBusyError(f"{name}: circuit breaker open after repeated failures")
                    continue
                team_of = team if name == agent else self._team(name)
                alive = self._alive_checks.get(name) or self._alive(name)  # (made once per agent)
                verdict, full_budget = False, False
                failed = False
                try:
                    for inst in (*self.monitor.healthy(name), None):
                        subject = inst.beat.direct_subject if inst else agent_subject(team_of, name)
                        attempts += 1
                        now = time.time()
                        deadline = min(ctx.deadline, now + per_attempt_s)
                        full_budget = deadline - now >= config.step_timeout_s * 0.999
                        if inst is not None:
                            self.monitor.dispatched(inst)
                        refused = False
                        try:
                            output = await call_for_output(
                                self.bus,
                                team_of,
                                name,
                                payload,
                                ctx.attempt(f"{ctx.request_id}-{attempts}", deadline, key),
                                accept_timeout_s=config.accept_timeout_s,
                                observer=self.observer,
                                subject=subject,
                                alive=alive,
                            )
                        except _REFUSED as exc:
                            failovers.append(f"{name}: {exc.code}")
                            last = exc
                            if inst is not None and isinstance(exc, NoRespondersError):
                                self.monitor.forget(inst)
                            refused = True
                        finally:
                            self.monitor.done(inst)
                        if refused:
                            continue
                        verdict = True
                        breaker.success()
                        return Invocation(output, name, team_of, attempts, failovers)
                except _RETRYABLE as exc:
                    if not isinstance(exc, DeadlineExceededError) or full_budget:
                        verdict = True  # else: the caller's deadline, not the agent's failure
                        breaker.failure()
                    failovers.append(f"{name}: {exc.code}")
                    last = exc
                    if ctx.remaining_s() <= 0:
                        raise
                    failed = True
                finally:
                    if not verdict:
                        breaker.release()
                if failed:
                    break
            if round_no + 1 >= rounds or ctx.remaining_s() <= 0:
                break
            if not self.budget.try_spend():
                failovers.append("retry budget exhausted")
                break
            pause = backoff_s(round_no, base_s=config.backoff_base_s, cap_s=config.backoff_max_s)
            if pause >= ctx.remaining_s():
                break
            log.info("retrying", agent=agent, round=round_no + 1, after_s=round(pause, 3), error=_code(last))
            await anyio.sleep(pause)
        if last is None:
            last = NoRespondersError(f"no agent answers for {agent}")
        if ctx.remaining_s() <= 0 and not isinstance(last, DeadlineExceededError):
            raise DeadlineExceededError(
                f"{agent}: deadline passed after {attempts} attempts ({last.message})"
            )
        raise last

    async def open_stream(
        self, agent: str, payload: Mapping[str, Any], ctx: CallContext, *, team: str | None = None
    ) -> RoutedStream:
        """Call ``agent`` with failover until an instance accepts and sends its first stream message.

        Healthy instances are tried least loaded first, then the queue group; a refusal (busy, no
        responders) or a failure moves to the next one while no event has been received.

        Args:
            agent: Agent name.
            payload: Its input.
            ctx: Request id, tenant, trace id and the deadline of the whole stream.
            team: The agent's team when it is not in the roster.

        Returns:
            The stream, with its first event (:attr:`RoutedStream.first`); close it with
            :meth:`RoutedStream.aclose` (which cancels the call on the agent if it has not ended).

        Raises:
            AgentError: The last error when no instance took the call (see
                :func:`orchestrator._dispatch.call_agent`).
        """
        team_of = self._team(agent, team)
        last: AgentError = NoRespondersError(f"no agent answers for {agent}")
        attempts = 0
        for inst in [*self.monitor.healthy(agent), None]:
            if ctx.remaining_s() <= 0:
                break
            subject = inst.beat.direct_subject if inst else agent_subject(team_of, agent)
            attempts += 1
            attempt_ctx = ctx if attempts == 1 else replace(ctx, request_id=f"{ctx.request_id}-{attempts}")
            if inst is not None:
                self.monitor.dispatched(inst)
            call = AgentCall(self.bus, agent, attempt_ctx, self._alive(agent), PROBE_S)
            started = False
            try:
                await call.start(team_of, subject, payload, self.config.accept_timeout_s)
                started = True
                first = await call.next()
            except (*_REFUSED, *_RETRYABLE) as exc:
                if started:
                    await call.finish(exc)
                self.monitor.done(inst)
                last = exc
                if inst is not None and isinstance(exc, NoRespondersError):
                    self.monitor.forget(inst)
                log.info("stream failover", agent=agent, attempt=attempts, error=exc.code)
                continue
            except BaseException as exc:
                try:
                    if started:
                        await call.finish(exc)
                finally:
                    self.monitor.done(inst)
                raise
            return RoutedStream(call, first, partial(self.monitor.done, inst))
        if ctx.remaining_s() <= 0 and not isinstance(last, DeadlineExceededError):
            raise DeadlineExceededError(
                f"{agent}: deadline passed after {attempts} attempts ({last.message})"
            )
        raise last

    def stream(
        self, agent: str, payload: Mapping[str, Any], ctx: CallContext, *, team: str | None = None
    ) -> AsyncGenerator[Chunk | End, None]:
        """Call ``agent`` and yield its chunks and its :class:`~agents.protocol.End`, with failover.

        :meth:`open_stream` as a generator: leaving early cancels the call on the agent.

        Raises:
            AgentError: The last error when no instance took the call, or any error after the first
                yielded event (see :func:`orchestrator._dispatch.call_agent`).
        """
        return routed_events(self, agent, payload, ctx, team)
