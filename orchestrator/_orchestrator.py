"""The orchestrator: plans a request, dispatches it to agents over NATS, relays the results."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Coroutine, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import anyio
from anyio.abc import TaskStatus

from agents.collective import AgentSpec
from agents.errors import AgentError, StreamBrokenError
from agents.messaging import Bus
from agents.plans import Plan, PlanOutcome
from agents.protocol import GenerateInput, GenerateOutput
from orchestrator._call_context import CallContext
from orchestrator._collective import OrchestratorCollective
from orchestrator._discovery import AgentInfo as AgentInfo
from orchestrator._discovery import Discovery
from orchestrator._dispatch import call_for_output
from orchestrator._load import LoadMonitor
from orchestrator._observe import CallObserver
from orchestrator._plans import PlanRunner, ProgressFn
from orchestrator._route import Invocation, Router
from orchestrator._select import Selection, Selector
from orchestrator._streams import GenerationStream, TextDelta
from orchestrator.config import OrchestratorConfig


class Orchestrator(Discovery):
    """Dispatches requests to the collective: selection, routing with failover and retries, plans.

    Run :meth:`run` in a task group (``await tg.start(orchestrator.run)``) to follow the agents'
    heartbeats; without it, calls go to the agents' shared subjects and selection ignores load.

    Args:
        bus: Connected bus (shared with whoever created it; the orchestrator does not close it).
        config: Deadlines, timeouts, retries, breakers.
        observer: Receives hop latencies, stream timings and token usage (e.g. the API's metrics).
        specs: The roster (`agents.roster.ROSTER` in a service); selection and routing need it.
        semantic: Match free-text goals by meaning (the planner's intent router; else: lexical matching).
        health_requires_generator: :meth:`health` is ``ok`` only when a generator with a loaded model
            answers (a process that runs the Inference team); ``False`` (``serve --teams none``): NATS
            connected is enough, the generator is reported but does not gate.
    """

    def __init__(
        self,
        bus: Bus,
        config: OrchestratorConfig | None = None,
        *,
        observer: CallObserver | None = None,
        specs: Sequence[AgentSpec] = (),
        semantic: bool = True,
        health_requires_generator: bool = True,
    ) -> None:
        self.bus = bus
        self.health_requires_generator = health_requires_generator
        self.config = config or OrchestratorConfig()
        self.specs = tuple(specs)
        self.monitor = LoadMonitor(bus, ttl_factor=self.config.heartbeat_ttl_factor)
        self.selector = Selector(self.specs, monitor=self.monitor, semantic=semantic)
        self.router = Router(bus, self.config, self.selector, self.monitor, observer)
        self.plans = PlanRunner(self.router, self.selector)

    @property
    def observer(self) -> CallObserver | None:
        """Receives hop latencies (of direct and routed calls), stream timings and token usage."""
        return self.router.observer

    @observer.setter
    def observer(self, value: CallObserver | None) -> None:
        self.router.observer = value

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow the agents' heartbeats until cancelled (replicas, load and health for routing).

        Args:
            task_status: Reports started once the heartbeat subscription is bound.
        """
        await self.monitor.run(task_status=task_status)

    def collective(self) -> OrchestratorCollective:
        """This orchestrator as the `agents.collective.Collective` synthesis agents are given."""
        return OrchestratorCollective(self)

    async def select(
        self, *, agent: str | None = None, capability: str | None = None, goal: str | None = None, k: int = 5
    ) -> Selection:
        """Choose an agent by name, capability or free-text goal (see `orchestrator._select`).

        Args:
            agent: An agent name: that agent, if it is in the roster (checked first).
            capability: A capability the agent must have (e.g. ``summarize``).
            goal: Free text describing the work: agents ranked by capability match and by the similarity
                of their description to it (semantic with the ``embedder`` agent, else lexical), then load.
            k: Candidates kept in the explanation (count).

        Returns:
            The chosen agent, how it was chosen and the top candidates' scores.

        Raises:
            NotFoundError: No agent of that name, or none with that capability (field named).
            BadInputError: None of ``agent``, ``capability``, ``goal`` was given.
        """
        return await self.selector.select(agent=agent, capability=capability, goal=goal, k=k)

    def invoke(
        self,
        agent: str,
        payload: Mapping[str, Any],
        ctx: CallContext,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        fallback: bool = True,
    ) -> Coroutine[Any, Any, Invocation]:
        """Route a call to ``agent``: least-loaded healthy replica, failover, retries, circuit breaker.

        The one call that routes: a busy or missing replica fails over to another replica and then (with
        ``fallback``) to another agent of the same primary capability; retryable failures are retried
        with exponential backoff (see `orchestrator._route`). For one attempt on the agent's shared
        subject, without any of that, use :meth:`call_once`.

        Args:
            agent: Agent name (must be in the roster given as ``specs``).
            payload: The agent's input (JSON-serialisable).
            ctx: Request id, tenant, trace id and the overall deadline.
            timeout_s: Deadline of one attempt, in seconds (default: ``config.step_timeout_s``; never past
                ``ctx.deadline``).
            retries: Extra rounds after retryable failures (default: ``config.retries``).
            fallback: Whether other agents of the same primary capability may answer.

        Returns:
            The output, with the agent and instance that answered, attempts and failovers.

        Raises:
            NotFoundError: ``agent`` is not in the roster.
            BadInputError: The agent refused the input (not retried).
            AgentError: The last error when every attempt failed (``busy``, ``no_responders``,
                ``deadline_exceeded``, ``circuit_open``, ...), or a non-retryable error at once.
        """
        # The router's coroutine itself, awaited by the caller: no coroutine level of its own per call.
        return self.router.invoke(
            agent, payload, ctx, timeout_s=timeout_s, retries=retries, fallback=fallback
        )

    async def run_plan(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        ctx: CallContext,
        *,
        progress: ProgressFn | None = None,
        cancel: anyio.Event | None = None,
    ) -> PlanOutcome:
        """Run a plan's steps (in dependency order, independent ones at once), each routed by :meth:`invoke`.

        Args:
            plan: The steps and the output template (see `agents.plans`).
            inputs: The plan's ``${input.*}`` values.
            ctx: Request id, tenant, trace id and the overall deadline.
            progress: Called with each step's state change (started, succeeded, failed).
            cancel: Set it to stop the plan: running steps are cancelled, the outcome says so.

        Returns:
            The outcome: per-step results and the output, or the failed step and its error. A failed step
            fails the outcome; it does not raise.
        """
        return await self.plans.run(plan, inputs, ctx, progress=progress, cancel=cancel)

    def context(self, *, timeout_s: float | None = None, **kwargs: Any) -> CallContext:
        """A :class:`CallContext` whose deadline is ``timeout_s`` seconds from now.

        Args:
            timeout_s: Seconds until the deadline (default: ``config.default_deadline_s``).
            **kwargs: More :class:`CallContext` fields (``request_id``, ``tenant``, ``trace_id``, ...).

        Returns:
            The context to pass to a call.
        """
        return CallContext.with_timeout(timeout_s or self.config.default_deadline_s, **kwargs)

    async def call_once(
        self, team: str, agent: str, payload: dict[str, Any], ctx: CallContext
    ) -> dict[str, Any]:
        """Call an agent once on its shared subject; NATS's queue group picks the replica.

        No routing: no least-loaded choice, no failover, no retry, no circuit breaker (use :meth:`call`
        or :meth:`invoke` for those). Streamed chunks are dropped. Works without :meth:`run` and without
        a roster.

        Args:
            team: The agent's team (its subject is ``neurectomy.agent.<team>.<agent>``).
            agent: Agent name.
            payload: The agent's input (JSON-serialisable).
            ctx: Request id, tenant, trace id and the deadline.

        Returns:
            The agent's output (``End.output``).

        Raises:
            AgentError: The agent's error, ``busy``, ``no_responders`` (503, no instance at all), a passed
                deadline or a payload over the NATS max payload (see
                :func:`orchestrator._dispatch.call_agent`).
        """
        return await call_for_output(
            self.bus,
            team,
            agent,
            payload,
            ctx,
            accept_timeout_s=self.config.accept_timeout_s,
            observer=self.observer,
        )

    async def call(
        self, team: str, agent: str, payload: dict[str, Any], ctx: CallContext, *, idempotent: bool = False
    ) -> dict[str, Any]:
        """Call one agent through the router and return its output (streamed chunks are dropped).

        The router picks the least-loaded healthy replica and fails over to the next (then the queue
        group) when one is busy or gone; no fallback agent answers instead. A failure after the agent
        accepted (deadline, crash) is retried only when the call is ``idempotent``.

        Args:
            team: The agent's team.
            agent: The agent's name.
            payload: Its input.
            ctx: Request id, tenant, trace id and deadline (each attempt may use all that remains).
            idempotent: Repeating the call has the effect of one call (reads, upserts by id).

        Raises:
            AgentError: The agent's error, ``busy``, ``no_responders`` (503, no instance at all), a passed
                deadline or a payload over the NATS max payload (see
                :func:`orchestrator._dispatch.call_agent`).
        """
        inv = await self.router.invoke(
            agent,
            payload,
            ctx,
            timeout_s=max(ctx.remaining_s(), 0.001),
            retries=None if idempotent else 0,
            fallback=False,
            team=team,
        )
        return inv.output

    async def open_generation(self, request: GenerateInput, ctx: CallContext) -> GenerationStream:
        """Start a generation on the ``generator`` agent and return its stream once the first event is in.

        Routed: the least-loaded healthy generator first; a busy or vanished one is skipped while no event
        has come (see :meth:`orchestrator.Router.open_stream`). Read the rest with ``next()`` /
        ``async for`` or push the deltas (:meth:`GenerationStream.push`); ``aclose()`` it in every case
        (before the end it cancels the generation on the agent, which frees its LLM slot within one
        decode step).

        Args:
            request: Prompt or messages, sampling and model.
            ctx: Request id, tenant, trace id and the deadline.

        Returns:
            The stream, with its first event (:attr:`GenerationStream.first`).

        Raises:
            StreamBrokenError: The generator's output could not be read.
            AgentError: See :func:`orchestrator._dispatch.call_agent`.
        """
        observer = self.observer  # read once: the per-token path is the service's CPU per token
        started = time.perf_counter()
        try:
            routed = await self.router.open_stream(
                "generator", request.model_dump(exclude_none=True), ctx, team="inference"
            )
            try:
                return GenerationStream(routed, observer, started)
            except BaseException as exc:  # e.g. an unreadable first event: the call is cancelled
                await routed.aclose(exc)
                raise
        except BaseException as exc:  # the hop of a stream that never opened (an open one records its own)
            if observer is not None:
                outcome = exc.code if isinstance(exc, AgentError) else "cancelled"
                observer.hop("inference", "generator", outcome, time.perf_counter() - started)
            raise

    async def generate_stream(
        self, request: GenerateInput, ctx: CallContext
    ) -> AsyncGenerator[TextDelta | GenerateOutput, None]:
        """Run a generation on the ``generator`` agent; yield text deltas and then the output.

        :meth:`open_generation` as a generator: leaving the iteration early (``aclose``) cancels the
        generation on the agent, which frees its LLM slot within one decode step.

        Args:
            request: Prompt or messages, sampling and model.
            ctx: Request id, tenant, trace id and the deadline.

        Yields:
            :class:`TextDelta` per streamed chunk, then one :class:`GenerateOutput` (text, usage, timings).

        Raises:
            StreamBrokenError: The generator's output could not be read.
            AgentError: See :func:`orchestrator._dispatch.call_agent`.
        """
        stream = await self.open_generation(request, ctx)
        failure: BaseException | None = None
        try:
            event = stream.first
            while True:
                yield event
                if isinstance(event, GenerateOutput):
                    return
                event = await stream.next()
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await stream.aclose(failure)

    async def generate(self, request: GenerateInput, ctx: CallContext) -> GenerateOutput:
        """Run a generation to the end and return its output.

        Args:
            request: Prompt or messages, sampling and model.
            ctx: Request id, tenant, trace id and the deadline.

        Returns:
            The text, finish reason, exact token usage and engine timings.

        Raises:
            AgentError: See :meth:`generate_stream`.
        """
        events = self.generate_stream(request, ctx)
        async with aclosing(events):
            async for event in events:
                if isinstance(event, GenerateOutput):
                    return event
        raise StreamBrokenError("generator stream ended without an output")  # pragma: no cover
