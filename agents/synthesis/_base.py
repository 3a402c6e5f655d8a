"""What the Synthesis agents share: the collective they compose, and turning a failed plan into an error."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from agents.actor import Agent
from agents.errors import AgentError, AgentFailedError, CancelledByCallerError, error_from_wire
from agents.limits import NATS_MAX_PAYLOAD_BYTES

if TYPE_CHECKING:
    from agents.collective import Collective
    from agents.plans import PlanOutcome

__all__ = ("SynthesisAgent", "plan_error")


class SynthesisAgent(Agent):
    """Base of the Synthesis team's agents.

    Every agent takes the :class:`~agents.collective.Collective` at construction (so the runtime builds
    them all alike); those whose ``bridges`` hold ``collective`` call other agents through it, always with
    ``parent=call`` so that tenant, trace, deadline and cancellation carry over.

    Args:
        collective: The rest of the collective (the orchestrator at run time); optional for the agents that
            call no other agent.
    """

    team: ClassVar[str] = "synthesis"
    max_input_bytes: ClassVar[int] = NATS_MAX_PAYLOAD_BYTES
    """Composers take other agents' outputs (items, sections, data, candidates, a plan's input), which
    only the wire bounds; ``rag-answerer`` and ``planner`` take one question or goal and declare less."""

    def __init__(self, collective: Collective | None = None) -> None:
        self._collective = collective

    @property
    def collective(self) -> Collective:
        """The collective this agent composes.

        Raises:
            AgentFailedError: The agent was built without one.
        """
        if self._collective is None:
            raise AgentFailedError(f"{self.name} was started without a collective to call other agents")
        return self._collective


def plan_error(outcome: PlanOutcome, *, plan: str) -> AgentError:
    """The error of a plan run that did not succeed, carrying the failed step's wire code.

    The message names the step and its agent; the field, when the step reported one, becomes
    ``steps.<id>.<field>``.

    Args:
        outcome: A run whose status is ``failed`` or ``cancelled``.
        plan: The plan's name, for the message.
    """
    error = outcome.error
    failed = next((s for s in outcome.steps if s.status == "failed" and s.error == error), None)
    if error is None:
        failed = next((s for s in outcome.steps if s.status == "failed" and s.error), None)
        error = failed.error if failed is not None else None
    if error is None:
        if outcome.status == "cancelled":
            return CancelledByCallerError(f"the {plan} plan was cancelled")
        return AgentFailedError(f"the {plan} plan ended {outcome.status} without an error")
    where = f"step {failed.id!r} ({failed.agent or 'no agent'})" if failed is not None else "the plan"
    field = error.get("field")
    if failed is not None and field:
        field = f"steps.{failed.id}.{field}"
    return error_from_wire(
        str(error.get("code", "internal")),
        f"{plan} plan: {where} failed: {error.get('message', '')}",
        field,
    )
