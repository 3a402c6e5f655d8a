"""The orchestrator as the :class:`agents.collective.Collective` that synthesis agents receive."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agents.actor import Call
from agents.collective import AgentSpec, Candidate
from agents.plans import Plan, PlanOutcome
from orchestrator._call_context import CallContext

if TYPE_CHECKING:
    from orchestrator._orchestrator import Orchestrator

__all__ = ("OrchestratorCollective", "context_of")


def context_of(parent: Call) -> CallContext:
    """A context for a call on behalf of ``parent``: same tenant, scopes, trace and deadline, a new id."""
    return CallContext(
        deadline=parent.deadline,
        request_id=f"{parent.request_id}-{uuid.uuid4().hex[:8]}",
        tenant=parent.tenant,
        trace_id=parent.trace_id,
        scopes=parent.scopes,
    )


class OrchestratorCollective:
    """Implements :class:`agents.collective.Collective` with an :class:`Orchestrator`.

    Calls are routed with retries and failover; cancelling the parent call cancels the calls it made
    (each publishes its cancel on the way out).
    """

    def __init__(self, orchestrator: Orchestrator) -> None:
        self._orchestrator = orchestrator

    def specs(self) -> Sequence[AgentSpec]:
        """The roster."""
        return self._orchestrator.specs

    async def select(self, goal: str, *, capability: str | None = None, k: int = 3) -> list[Candidate]:
        """The ``k`` best agents for ``goal``, best first (see `orchestrator._select`)."""
        selection = await self._orchestrator.selector.select(goal=goal, capability=capability, k=k)
        return list(selection.candidates)

    async def call(
        self, agent: str, payload: Mapping[str, Any], *, parent: Call, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Route a call to ``agent`` on behalf of ``parent`` and return its output."""
        invocation = await self._orchestrator.invoke(agent, payload, context_of(parent), timeout_s=timeout_s)
        return invocation.output

    async def run_plan(self, plan: Plan, inputs: Mapping[str, Any], *, parent: Call) -> PlanOutcome:
        """Run ``plan`` on behalf of ``parent``.

        Raises:
            ForbiddenError: A step needs a scope ``parent``'s caller lacks (checked before any step runs).
        """
        ctx = context_of(parent)
        self._orchestrator.plans.authorise(plan, ctx)
        return await self._orchestrator.run_plan(plan, inputs, ctx)
