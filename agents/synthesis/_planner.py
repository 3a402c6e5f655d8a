"""The ``planner`` agent: a plan for a free-text goal, built from the registry.

1. A goal that asks for a built-in plan gets it (checked in this order):

   * ``consensus`` — it asks for a vote, a consensus, a majority or a quorum;
   * ``rag`` — it is a question (``?``, or it starts with what/who/how/…, "find", "according to") about
     stored material (documents, records, notes, files, the knowledge base, …);
   * ``report`` — it asks for a report on, or an analysis of, a text.

2. Otherwise the goal is split into sub-goals (numbered or bulleted lines; else sentences, ``;`` and
   "then"), each sub-goal is matched to an agent with ``Collective.select(subgoal, k=3)``, and the
   steps are chained: a step's text input (``AgentSpec.text_input``) is the previous step's text output
   (``${steps.<prev>.<text_output>}``), the first one's is ``${input.text}``. An agent qualifies when it
   takes text, and (unless it is the last step) produces text; the best-scored qualifying candidate wins.

The result depends only on the goal and on what ``select`` and ``specs`` answer, so it is deterministic
for one goal and one registry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from agents.actor import Call
from agents.collective import AgentSpec, Candidate, Collective
from agents.errors import BadInputError
from agents.plans import Plan, PlanStep
from agents.synthesis._base import SynthesisAgent
from agents.synthesis._text import split_sentences
from agents.synthesis._wire import CandidateScore, PlannedStep, PlannerInput, PlannerOutput
from agents.synthesis.builtin_plans import consensus, rag, report

__all__ = ("PlannerAgent", "build_plan", "match_builtin", "plan_inputs", "split_goal")

_CONSENSUS = re.compile(r"\b(vot(e|es|ing)|consensus|majority|quorum|byzantine)\b", re.IGNORECASE)
_STORED = re.compile(
    r"\b(documents?|docs|records?|notes|files?|archives?|knowledge[- ]base|stored|store|vault|"
    r"corpus|our data|database|wiki)\b",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"\?|^\s*(what|who|whom|whose|when|where|which|why|how|is|are|does|do|did|can|should)\b|"
    r"\b(find|look up|according to|answer)\b",
    re.IGNORECASE,
)
_REPORT = re.compile(r"\b(report\s+on|report\s+about|analy[sz]e|analysis\s+of|assess)\b", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(.*\S)\s*$")
_SEPARATORS = re.compile(r"\s*;\s*|,?\s+(?:and\s+)?then\s+|\s*\bafterwards\b,?\s*", re.IGNORECASE)
_LEAD = re.compile(r"^(?:(?:first|second|next|finally|lastly|then|and|also)\b,?\s*)+", re.IGNORECASE)
_REF_INPUT = re.compile(r"\$\{\s*input\.([A-Za-z0-9_-]+)")

_NOT_A_STEP = frozenset({"planner", "workflow-runner"})
"""Agents that take a plan or a goal rather than text: never chosen for a sub-goal."""


def match_builtin(goal: str) -> str | None:
    """The built-in plan a goal asks for (``consensus``, ``rag``, ``report``), or None."""
    if _CONSENSUS.search(goal):
        return "consensus"
    if _STORED.search(goal) and _QUESTION.search(goal):
        return "rag"
    if _REPORT.search(goal):
        return "report"
    return None


def split_goal(goal: str) -> list[str]:
    """The sub-goals of ``goal``, in order (see the module docstring)."""
    lines = [line for line in goal.splitlines() if line.strip()]
    items = [m.group(1) for line in lines if (m := _LIST_ITEM.match(line))]
    pieces = (
        items
        if len(items) >= 2
        else [s for sentence in split_sentences(goal) for s in _SEPARATORS.split(sentence)]
    )
    subgoals = []
    for piece in pieces:
        text = _LEAD.sub("", piece.strip()).strip(" .,;:")
        if text:
            subgoals.append(text[0].upper() + text[1:])
    return subgoals


def plan_inputs(plan: Plan) -> list[str]:
    """The names of the plan's input (``${input.<name>}``) its steps and output reference, sorted."""
    text = plan.model_dump_json()
    return sorted(set(_REF_INPUT.findall(text)))


def _qualifies(spec: AgentSpec | None, *, last: bool) -> bool:
    if spec is None or spec.name in _NOT_A_STEP or spec.text_input is None:
        return False
    return last or spec.text_output is not None


def _needs(spec: AgentSpec) -> list[str]:
    required = spec.input_schema.get("required", [])
    return sorted(str(f) for f in required if f != spec.text_input)


async def build_plan(collective: Collective, goal: str, *, max_steps: int = 6) -> PlannerOutput:
    """The plan for ``goal`` (see the module docstring).

    Raises:
        BadInputError: The goal has more than ``max_steps`` sub-goals (field ``max_steps``), or no
            sub-goal, or none of the candidates of a sub-goal can take text (field ``goal``).
    """
    builtin = match_builtin(goal)
    if builtin is not None:
        plan = {"rag": rag, "consensus": consensus, "report": report}[builtin]()
        builtin_steps = [
            PlannedStep(step=s.id, agent=s.agent or "", subgoal=f"built-in {builtin} plan", candidates=[])
            for s in plan.steps
        ]
        return PlannerOutput(
            plan=plan.model_dump(mode="json", exclude_defaults=True),
            builtin=builtin,
            inputs=plan_inputs(plan),
            rationale=builtin_steps,
        )
    subgoals = split_goal(goal)
    if not subgoals:
        raise BadInputError("the goal names nothing to do", field="goal")
    if len(subgoals) > max_steps:
        raise BadInputError(
            f"the goal has {len(subgoals)} sub-goals; max_steps is {max_steps}", field="max_steps"
        )
    specs = {s.name: s for s in collective.specs()}
    steps: list[PlanStep] = []
    rationale: list[PlannedStep] = []
    previous: tuple[str, AgentSpec] | None = None
    for i, subgoal in enumerate(subgoals):
        last = i == len(subgoals) - 1
        candidates: list[Candidate] = await collective.select(subgoal, k=3)
        chosen = next((c for c in candidates if _qualifies(specs.get(c.agent), last=last)), None)
        if chosen is None:
            names = ", ".join(c.agent for c in candidates) or "none"
            raise BadInputError(
                f"no agent that takes text fits the sub-goal {subgoal!r} (candidates: {names})", field="goal"
            )
        spec = specs[chosen.agent]
        step_id = f"s{i + 1}-{spec.name}"[:64]
        text = "${input.text}" if previous is None else f"${{steps.{previous[0]}.{previous[1].text_output}}}"
        steps.append(PlanStep(id=step_id, agent=spec.name, input={spec.text_input or "text": text}))
        rationale.append(
            PlannedStep(
                step=step_id,
                agent=spec.name,
                subgoal=subgoal,
                candidates=[
                    CandidateScore(
                        agent=c.agent,
                        score=c.score,
                        capability=c.capability,
                        semantic=c.semantic,
                        load=c.load,
                    )
                    for c in candidates
                ],
                needs=_needs(spec),
            )
        )
        previous = (step_id, spec)
    plan = Plan(name="planned", steps=tuple(steps))
    return PlannerOutput(
        plan=plan.model_dump(mode="json", exclude_defaults=True),
        builtin=None,
        inputs=plan_inputs(plan),
        rationale=rationale,
    )


class PlannerAgent(SynthesisAgent):
    """Turns a free-text goal into a plan of agent steps (a built-in plan when one fits)."""

    name = "planner"
    description = (
        "Turns a free-text goal into a plan: a built-in plan (rag, report, consensus) when one fits, "
        "otherwise one agent step per sub-goal, chained text to text."
    )
    capabilities = ("plan", "decompose", "route", "workflow")
    input_model: ClassVar[type[BaseModel]] = PlannerInput
    output_model: ClassVar[type[BaseModel]] = PlannerOutput
    bridges = ("collective",)
    text_input = "goal"
    text_output = None

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Plan ``goal`` in at most ``max_steps`` steps."""
        inp: PlannerInput = call.input
        return (await build_plan(self.collective, inp.goal, max_steps=inp.max_steps)).model_dump()
