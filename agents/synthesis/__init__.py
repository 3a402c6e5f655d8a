"""The Synthesis team: eight cross-team agents that compose, combine and check the others' work.

================= ===========================================================================
agent             work
================= ===========================================================================
rag-answerer      question → retrieve → optimise context → generate → verify (the ``rag`` plan)
planner           free-text goal → a plan: a built-in one, or one selected agent per sub-goal
aggregator        many results → one (concat, deep merge, numeric summary, union, plurality vote)
reporter          titled sections of results → a Markdown report (tables, lists, JSON blocks)
consensus         n answers (given, or generated with n seeds) → the value a 2f+1 quorum agrees on
formatter         data → JSON, YAML, CSV, Markdown or text (and parses JSON, YAML, CSV)
verifier          answer + context → per-sentence support (word recall, numbers) and a verdict
workflow-runner   a user's plan (object, JSON or YAML) + input → the run's outcome and step reports
================= ===========================================================================

Every agent takes the :class:`agents.collective.Collective` at construction (``cls(collective)``);
those with ``"collective"`` in their ``bridges`` call other agents through it with ``parent=call``, so
tenant, trace, deadline and cancellation carry over. The built-in plans are in
:mod:`agents.synthesis.builtin_plans`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.synthesis._aggregate import AggregatorAgent, aggregate
from agents.synthesis._base import SynthesisAgent, plan_error
from agents.synthesis._compose import RagAnswererAgent, WorkflowRunnerAgent
from agents.synthesis._consensus import ConsensusAgent, Tally, default_f, quorum, tally
from agents.synthesis._format import FormatterAgent, ReporterAgent, convert, parse_data, render_report
from agents.synthesis._planner import CONFIDENCE_THRESHOLD, GoalPlanner, PlannerAgent, build_plan, plan_inputs
from agents.synthesis._verify import VerifierAgent, verify
from agents.synthesis.builtin_plans import BUILTIN_PLANS

if TYPE_CHECKING:
    from agents.actor import Agent
    from agents.collective import Collective

SYNTHESIS_AGENTS: tuple[type[SynthesisAgent], ...] = (
    RagAnswererAgent,
    PlannerAgent,
    AggregatorAgent,
    ReporterAgent,
    ConsensusAgent,
    FormatterAgent,
    VerifierAgent,
    WorkflowRunnerAgent,
)
"""Every agent of the team, in roster order."""

SYNTHESIS_AGENT_NAMES: tuple[str, ...] = tuple(cls.name for cls in SYNTHESIS_AGENTS)
"""Their names, in roster order."""


def synthesis_agents(collective: Collective) -> list[Agent]:
    """One instance of each Synthesis agent, all composing ``collective``, in roster order."""
    return [cls(collective) for cls in SYNTHESIS_AGENTS]


__all__ = (
    "BUILTIN_PLANS",
    "CONFIDENCE_THRESHOLD",
    "SYNTHESIS_AGENTS",
    "SYNTHESIS_AGENT_NAMES",
    "AggregatorAgent",
    "ConsensusAgent",
    "GoalPlanner",
    "FormatterAgent",
    "PlannerAgent",
    "RagAnswererAgent",
    "ReporterAgent",
    "SynthesisAgent",
    "Tally",
    "VerifierAgent",
    "WorkflowRunnerAgent",
    "aggregate",
    "build_plan",
    "convert",
    "default_f",
    "parse_data",
    "plan_error",
    "plan_inputs",
    "quorum",
    "render_report",
    "synthesis_agents",
    "tally",
    "verify",
)
