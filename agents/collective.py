"""What an agent may ask of the rest of the collective, and how an agent kind is described.

Synthesis agents compose other agents (``rag-answerer`` runs the ``rag`` plan, ``consensus`` fans a
question out, ``workflow-runner`` runs a user's plan). They cannot import the orchestrator (it sits
above the agents), so they receive a :class:`Collective` when they are built: the runtime passes the
orchestrator, which implements it with selection, retries, failover and cancellation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agents.limits import DEFAULT_MAX_INPUT_BYTES
from agents.scopes import OperationScopes

if TYPE_CHECKING:
    from agents.actor import Agent, Call
    from agents.plans import Plan, PlanOutcome

__all__ = ("AgentSpec", "Candidate", "Collective", "spec_of")


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One kind of agent as the registry lists it.

    Attributes:
        name: Agent name (also its queue group and the last part of its subject).
        team: ``inference``, ``compression``, ``storage``, ``analysis`` or ``synthesis``.
        description: One sentence on what it does (also what free-text selection matches against).
        capabilities: Words a request may ask for (``summarize``, ``search``, ...).
        bridges: Engines it reaches: ``ryot``, ``sigma``, ``vault``, ``collective``.
        input_schema: JSON Schema of its input (empty if it takes any object).
        output_schema: JSON Schema of its output (empty if undeclared).
        text_input: Input field that takes handed-on text, or None.
        text_output: Output field holding its main text, or None.
        scopes: The scope its calls need (see :mod:`agents.scopes`).
        max_input_bytes: Largest JSON input it takes, in bytes (a binary attachment does not count);
            larger ones are refused with ``too_large`` before they are decoded.
    """

    name: str
    team: str
    description: str
    capabilities: tuple[str, ...]
    bridges: tuple[str, ...]
    input_schema: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] = field(default_factory=dict)
    text_input: str | None = "text"
    text_output: str | None = "text"
    scopes: OperationScopes = OperationScopes()
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES


def spec_of(agent: type[Agent]) -> AgentSpec:
    """The :class:`AgentSpec` of an agent class (schemas from its pydantic input/output models)."""
    return AgentSpec(
        name=agent.name,
        team=agent.team,
        description=agent.description,
        capabilities=tuple(agent.capabilities),
        bridges=tuple(agent.bridges),
        input_schema=agent.input_model.model_json_schema() if agent.input_model else {},
        output_schema=agent.output_model.model_json_schema() if agent.output_model else {},
        text_input=agent.text_input,
        text_output=agent.text_output,
        scopes=agent.scopes,
        max_input_bytes=agent.max_input_bytes,
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    """An agent considered by selection, with its scores.

    Attributes:
        agent: Agent name.
        score: Overall score in [0, 1] (higher is better).
        capability: 1.0 if it has the requested capability (or named word of the goal), else 0.0.
        semantic: Cosine similarity of the goal to the agent's description, in [-1, 1].
        load: Calls in flight and queued across its healthy replicas (lower is better).
    """

    agent: str
    score: float
    capability: float = 0.0
    semantic: float = 0.0
    load: float = 0.0


class Collective(Protocol):
    """The collective as an agent sees it (implemented by the orchestrator)."""

    def specs(self) -> Sequence[AgentSpec]:
        """Every agent kind of the roster."""
        ...

    async def select(self, goal: str, *, capability: str | None = None, k: int = 3) -> list[Candidate]:
        """The ``k`` best agents for a free-text ``goal`` (and a capability, if given), best first."""
        ...

    async def call(
        self, agent: str, payload: Mapping[str, Any], *, parent: Call, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Call ``agent`` on behalf of ``parent`` (same tenant, trace and deadline; cancelled with it).

        Raises:
            AgentError: What the agent (or the dispatch) reported.
        """
        ...

    async def run_plan(self, plan: Plan, inputs: Mapping[str, Any], *, parent: Call) -> PlanOutcome:
        """Run ``plan`` on behalf of ``parent``; a failed step fails the outcome, it does not raise."""
        ...
