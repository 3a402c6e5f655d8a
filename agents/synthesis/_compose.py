"""Agents that run plans through the collective: ``rag-answerer`` and ``workflow-runner``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from anyio import to_thread
from pydantic import BaseModel

from agents.actor import Call
from agents.errors import BadInputError
from agents.limits import text_input_bytes
from agents.plans import PlanError, parse_plan
from agents.synthesis._base import SynthesisAgent, plan_error
from agents.synthesis._wire import MAX_GOAL_CHARS, RagInput, RagOutput, Source, WorkflowInput, WorkflowOutput
from agents.synthesis.builtin_plans import rag

__all__ = ("RagAnswererAgent", "WorkflowRunnerAgent")


def _sources(value: Any) -> list[Source]:
    """``{ids, scores, texts}`` of the ``rag`` plan's output as ``[{id, score, text}]``."""
    if not isinstance(value, Mapping):
        return []
    ids, scores = value.get("ids") or [], value.get("scores") or []
    texts = value.get("texts") or [""] * len(ids)
    return [
        Source(id=str(i), score=float(s), text=str(t)) for i, s, t in zip(ids, scores, texts, strict=False)
    ]


class RagAnswererAgent(SynthesisAgent):
    """Answers a question from the stored records: retrieve → optimise the context → generate → verify."""

    name = "rag-answerer"
    description = (
        "Answers a question from the stored documents: retrieves the nearest records, fits them into a "
        "token budget, generates a grounded answer and verifies it against the context."
    )
    capabilities = ("rag", "answer", "question", "retrieve", "grounded")
    input_model: ClassVar[type[BaseModel]] = RagInput
    max_input_bytes = text_input_bytes(MAX_GOAL_CHARS)
    output_model: ClassVar[type[BaseModel]] = RagOutput
    bridges = ("collective",)
    text_input = "question"
    text_output = "answer"

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Run the built-in ``rag`` plan for ``question``.

        Raises:
            AgentError: A step failed: its wire code, the step and agent in the message, and its field as
                ``steps.<id>.<field>``.
        """
        inp: RagInput = call.input
        outcome = await self.collective.run_plan(rag(), inp.model_dump(), parent=call)
        if outcome.status != "succeeded":
            raise plan_error(outcome, plan="rag")
        output = outcome.output if isinstance(outcome.output, Mapping) else {}
        return RagOutput(
            answer=str(output.get("answer") or "").strip(),
            sources=_sources(output.get("sources")),
            verification=dict(output.get("verification") or {}),
            steps=[s.model_dump() for s in outcome.steps],
        ).model_dump()


class WorkflowRunnerAgent(SynthesisAgent):
    """Runs a user-defined plan (a DAG of agent steps, as an object or JSON/YAML text)."""

    name = "workflow-runner"
    description = (
        "Runs a user-defined workflow: a YAML or JSON DAG of agent steps whose inputs reference the "
        "workflow input and earlier steps' outputs."
    )
    capabilities = ("workflow", "dag", "pipeline", "plan", "yaml")
    input_model: ClassVar[type[BaseModel]] = WorkflowInput
    output_model: ClassVar[type[BaseModel]] = WorkflowOutput
    bridges = ("collective",)
    text_input = None
    text_output = None

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Validate ``plan`` and run it with ``input``; a failed step fails the outcome, not the call.

        Raises:
            BadInputError: The plan is not valid, naming the field (``plan.steps.1.agent``).
            ForbiddenError: A step needs a scope the caller lacks (nothing runs).
        """
        inp: WorkflowInput = call.input
        try:
            plan = await to_thread.run_sync(parse_plan, inp.plan)  # YAML text: off the event loop
        except PlanError as exc:
            field = exc.field or "plan"
            raise BadInputError(str(exc).removeprefix(f"{field}: "), field=field) from None
        outcome = await self.collective.run_plan(plan, inp.input, parent=call)
        return WorkflowOutput(
            plan=outcome.plan,
            status=outcome.status,
            output=outcome.output,
            steps=[s.model_dump() for s in outcome.steps],
            error=outcome.error,
            seconds=outcome.seconds,
        ).model_dump()
