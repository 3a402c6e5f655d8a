"""The ``planner`` agent: a plan for a free-text goal, or an honest "needs clarification".

1. The goal is taken apart (:func:`agents.intent.parse_goal`): quoted text, text after a colon and a
   following paragraph are payloads; the rest is split into sub-goals.
2. Each sub-goal's instruction is routed by meaning (:class:`agents.intent.IntentRouter`: nearest example
   requests of every agent and built-in plan, with capability cues and a calibrated confidence), then
   the split is shaped (:mod:`agents.synthesis._shaping`): a request clause read without its polite
   or explanatory opening, leading context dropped, trailing statements taken for payload, halves of
   one request joined, and close classes told apart by the request's form.
3. A goal of one sub-goal that asks for a built-in plan gets it (``report``, ``consensus``; a question
   for ``rag-answerer`` gets the ``rag`` plan). Otherwise each sub-goal becomes one step, in order
   (each step runs ``after`` the one before): its text is its own quoted payload, else the previous
   step's text output, else the goal's payload; agents whose input is a request (generator, coder,
   rag-answerer, retriever, …) get the sub-goal as written. Parameters the sub-goal states (target
   language, labels, budget, k, id, …) go into the step input (:func:`agents.intent.step_input`).
   "Store X and then tell me Y" thus becomes ``archivist`` → ``rag-answerer``, whose answer carries
   the retrieved passages.
4. When a sub-goal matches nothing the collective does, its confidence is below
   :data:`CONFIDENCE_THRESHOLD`, or a parameter the user must choose is missing (target language,
   labels, schema, budget, id, format, snapshot name), the output's ``status`` is
   ``needs_clarification`` with the candidates and their scores, and no plan is proposed to run. A
   missing *payload* (the context of a verification, the second text of a comparison, a frame) does
   not make the agent less right: the plan stands and ``needs`` names the field the caller must add (a
   run without it fails at that step, naming the field).

Planning is deterministic for one goal and one roster, and takes well under a millisecond per sub-goal
once the router is built (see ``benchmarks/planning.py``).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import anyio
from pydantic import BaseModel

from agents.actor import Call
from agents.collective import AgentSpec
from agents.errors import BadInputError
from agents.examples import AGENT_EXAMPLES, BUILTIN_EXAMPLES, OUT_OF_SCOPE
from agents.intent import NONE, IntentRouter, ParsedGoal, Route, SubGoal, parse_goal
from agents.intent._inputs import ANSWER_TOKENS, INSTRUCTION_AGENTS, PAYLOAD_FIELDS, step_input
from agents.limits import text_input_bytes
from agents.plans import Plan, PlanStep
from agents.synthesis._base import SynthesisAgent
from agents.synthesis._forms import (
    analysis_report,
    answer_or_search,
    general_question,
    recall_after_store,
    stated_runner_up,
    vote_or_sample,
)
from agents.synthesis._shaping import (
    BUILTIN,
    WEAK,
    agent_of,
    composite,
    head_clauses,
    leading_context,
    least,
    repeats,
    request_clauses,
    trailing_payload,
)
from agents.synthesis._wire import MAX_GOAL_CHARS, CandidateScore, PlannedStep, PlannerInput, PlannerOutput
from agents.synthesis.builtin_plans import consensus, rag, report

__all__ = ("CONFIDENCE_THRESHOLD", "GoalPlanner", "PlannerAgent", "build_plan", "plan_inputs")

CONFIDENCE_THRESHOLD = 0.3
"""Least calibrated confidence of every sub-goal for a plan to be proposed."""
_NEAR = 0.05
"""A runner-up within this score of the best may replace it when only it gets every required input."""
_FRAME_AGENTS = frozenset({"decompressor", "glyph-encoder", "codec-inspector"})
_RAG_DEFAULTS = {"k": 4, "budget_tokens": 512, "max_tokens": ANSWER_TOKENS}


def plan_inputs(plan: Plan) -> list[str]:
    """The names of the plan's input (``${input.<name>}``) its steps and output reference, sorted."""
    return sorted(set(re.findall(r"\$\{\s*input\.([A-Za-z0-9_-]+)", plan.model_dump_json())))


def _candidates(route: Route) -> list[CandidateScore]:
    return [
        CandidateScore(agent=name, score=round(score, 4), capability=0.0, semantic=round(score, 4), load=0.0)
        for name, score in route.ranked
    ]


class GoalPlanner:
    """Plans goals over a roster (thread-safe once built; build it off the event loop, ~0.3 s).

    Args:
        specs: The roster (the agents a plan may use).
    """

    def __init__(self, specs: Sequence[AgentSpec]) -> None:
        self.specs = {s.name: s for s in specs}
        examples: dict[str, Sequence[str]] = {
            n: (*e, self.specs[n].description) for n, e in AGENT_EXAMPLES.items() if n in self.specs
        }  # the agent's own description counts as one more example
        examples.update({f"{BUILTIN}{n}": e for n, e in BUILTIN_EXAMPLES.items()})
        examples[NONE] = OUT_OF_SCOPE
        caps = {n: s.capabilities for n, s in self.specs.items()}
        self.router = IntentRouter(examples, capabilities=caps)
        self.verbs = frozenset(
            t.split()[0].lower()
            for c, e in examples.items()
            if c != NONE
            for t in e
            if t.split()[0].lower() not in _NOT_VERBS
        )

    def plan(self, goal: str, *, max_steps: int = 6) -> PlannerOutput:
        """The plan for ``goal`` (see the module docstring).

        Raises:
            BadInputError: The goal has more than ``max_steps`` sub-goals (field ``max_steps``).
        """
        parsed = parse_goal(goal, verbs=self.verbs)
        whole = parse_goal(goal)  # without splitting at "and <verb>": one request or two?
        marked = sum(sg.marked for sg in whole.subgoals)  # unmarked trailing sentences may be payload
        if marked > max_steps:
            raise BadInputError(
                f"the goal has {marked} sub-goals; max_steps is {max_steps}", field="max_steps"
            )
        routes = [self.router.route(sg.instruction) for sg in parsed.subgoals]
        if len(whole.subgoals) < len(parsed.subgoals):
            whole_routes = [self.router.route(sg.instruction) for sg in whole.subgoals]
            distinct = least(routes) >= WEAK and not repeats(routes)  # each part a confident own step
            if (least(whole_routes) >= least(routes) and not distinct) or repeats(routes):
                parsed, routes = whole, whole_routes
        parsed, routes = request_clauses(self.router, parsed, routes)
        parsed, routes = head_clauses(self.router, parsed, routes)
        parsed, routes = leading_context(parsed, routes, self.verbs)
        parsed, routes = trailing_payload(parsed, routes, self.verbs)
        parsed, routes = composite(self.router, parsed, routes, self.verbs)
        if not parsed.subgoals:
            return _unclear(goal, [], "the goal names nothing to do")
        if len(parsed.subgoals) > max_steps:
            raise BadInputError(
                f"the goal has {len(parsed.subgoals)} sub-goals; max_steps is {max_steps}", field="max_steps"
            )
        routes = recall_after_store(parsed, routes)
        if len(routes) == 1:
            routes = [analysis_report(routes[0], parsed.subgoals[0].instruction)]
        routes = [answer_or_search(r, sub.text) for r, sub in zip(routes, parsed.subgoals, strict=True)]
        routes = [vote_or_sample(r, sub) for r, sub in zip(routes, parsed.subgoals, strict=True)]
        routes = [
            general_question(self.router, r, sub, parsed.payload)
            for r, sub in zip(routes, parsed.subgoals, strict=True)
        ]
        routes = [
            stated_runner_up(
                self.router, r, functools.partial(self._states, sub=sub, parsed=parsed), self._takes
            )
            for r, sub in zip(routes, parsed.subgoals, strict=True)
        ]
        return _Builder(self, goal, parsed, routes).build()

    @functools.cache  # noqa: B019 (one planner per roster and process: see goal_planner)
    def _takes(self, agent: str) -> bool:
        """Whether ``agent`` requires a parameter besides its payload (a language, an id, labels, …)."""
        return agent in self.specs and not self._states(agent, SubGoal("", "", (), True), parse_goal(""))

    def _states(self, agent: str, sub: SubGoal, parsed: ParsedGoal) -> bool:
        """Whether ``sub`` states every parameter ``agent`` requires (its payload aside)."""
        if agent not in self.specs:
            return False
        _, need = step_input(agent, sub, text="", raw="", request="", quotes=parsed.quotes, literal=str)
        return not [n for n in need if n not in PAYLOAD_FIELDS]


_NOT_VERBS = frozenset(
    {"what", "which", "how", "is", "are", "does", "do", "can", "i", "let's", "hi", "the", "a", "according",
     "based", "from", "using", "will", "was", "who", "whose", "tl;dr", "zero-shot", "our", "vault", "cache",
     "statistics", "keyword", "static", "named", "language", "sentiment", "full", "structured", "dedupe"}
)  # fmt: skip
"""First words of examples that do not start a new sub-goal after "and"."""


def _unclear(goal: str, rationale: list[PlannedStep], reason: str, confidence: float = 0.0) -> PlannerOutput:
    return PlannerOutput(
        plan={},
        builtin=None,
        inputs=[],
        rationale=rationale,
        input={},
        status="needs_clarification",
        confidence=round(confidence, 4),
        reason=reason,
    )


class _Builder:
    """Builds one plan: the steps, the plan input (payloads) and the rationale."""

    def __init__(self, planner: GoalPlanner, goal: str, parsed: ParsedGoal, routes: list[Route]) -> None:
        self.planner, self.goal, self.parsed, self.routes = planner, goal, parsed, routes
        self.values: dict[str, Any] = {"goal": goal}

    def literal(self, value: str) -> str:
        for name, known in self.values.items():
            if known == value and name != "goal":
                return f"${{input.{name}}}"
        name = f"v{len(self.values)}"
        self.values[name] = value
        return f"${{input.{name}}}"

    def _payload(self, sub: SubGoal, first: bool) -> tuple[str | None, str | None]:
        """(reference, raw text) of the payload a step applies to, if the goal gives one."""
        if sub.quotes:
            raw = "\n\n".join(self.parsed.quotes[i] for i in sub.quotes)
            return self.literal(raw), raw
        if first and self.parsed.payload is not None:
            return self.literal(self.parsed.payload), self.parsed.payload
        return None, None

    def build(self) -> PlannerOutput:
        subs, routes = self.parsed.subgoals, self.routes
        confidence = min(r.confidence for r in routes)
        rationale = [
            PlannedStep(
                step=f"s{i + 1}",
                agent=r.best,
                subgoal=sub.text,
                candidates=_candidates(r),
                confidence=round(r.confidence, 4),
            )
            for i, (sub, r) in enumerate(zip(subs, routes, strict=True))
        ]
        unclear = [rs for rs, r in zip(rationale, routes, strict=True) if r.best == NONE]
        if unclear:
            return _unclear(self.goal, rationale, f"no agent does {unclear[0].subgoal!r}", confidence)
        if confidence < CONFIDENCE_THRESHOLD:
            weak = min(rationale, key=lambda r: r.confidence)
            return _unclear(
                self.goal, rationale, f"not sure which agent should do {weak.subgoal!r}", confidence
            )
        if len(subs) == 1:
            builtin = self._builtin(subs[0], routes[0])
            if builtin is not None:
                return builtin
        steps: list[PlanStep] = []
        previous: PlanStep | None = None
        for i, (sub, route, why) in enumerate(zip(subs, routes, rationale, strict=True)):
            agent = agent_of(route.best)
            inp, need = self._input(i, sub, agent, previous)
            if need:  # a runner-up about as close that the goal fully parameterises fits better
                top = route.ranked[0][1]
                for name, score in route.ranked[1:3]:
                    other = agent_of(name)
                    if name == NONE or other not in self.planner.specs or score < top - _NEAR:
                        continue
                    other_inp, other_need = self._input(i, sub, other, previous)
                    if not other_need:
                        agent, inp, need = other, other_inp, []
                        break
            step = PlanStep(
                id=f"s{i + 1}-{agent}"[:64],
                agent=agent,
                input=inp,
                after=(previous.id,) if previous is not None else (),
            )
            rationale[i] = why.model_copy(update={"step": step.id, "agent": agent, "needs": need})
            steps.append(step)
            previous = step
        missing = [(r.agent, n) for r in rationale for n in r.needs if n not in PAYLOAD_FIELDS]
        if missing:
            what = ", ".join(f"{a} needs {n}" for a, n in missing)
            return _unclear(self.goal, rationale, f"the goal does not say: {what}", confidence)
        plan = Plan(name="planned", steps=tuple(steps))
        return self._output(plan, None, rationale, confidence)

    def _input(
        self, i: int, sub: SubGoal, agent: str, previous: PlanStep | None
    ) -> tuple[dict[str, Any], list[str]]:
        """The input of ``agent`` as step ``i`` for ``sub``, and the required fields the goal lacks."""
        text, raw = self._payload(sub, first=i == 0)
        if text is None and previous is not None and previous.agent is not None:
            out = self.planner.specs[previous.agent].text_output
            if previous.agent == "compressor" and agent in _FRAME_AGENTS:
                out = "frame"
            if out is not None and agent not in INSTRUCTION_AGENTS:
                text = f"${{steps.{previous.id}.{out}}}"
        if text is None and i == 0 and agent not in INSTRUCTION_AGENTS:
            text = self.literal(sub.text)  # the sub-goal names its own text ("is Guten Tag German?")
            raw = sub.text
        return step_input(
            agent,
            sub,
            text=text,
            raw=raw,
            request=self.literal(sub.text),
            quotes=self.parsed.quotes,
            literal=self.literal,
            tail=self.parsed.payload if sub.quotes else None,
        )

    def _builtin(self, sub: SubGoal, route: Route) -> PlannerOutput | None:
        best = route.best
        text, _ = self._payload(sub, first=True)
        body = text or self.literal(sub.text)
        values: dict[str, Any]
        if best == f"{BUILTIN}report":
            plan, values = report(), {"text": body}
        elif best == f"{BUILTIN}consensus":
            plan, values = consensus(), {"prompt": self.literal(sub.text) if text is None else body}
        elif best == "rag-answerer":
            values = {"question": self.literal(sub.text), **_RAG_DEFAULTS}
            inp, _ = step_input("rag-answerer", sub, text=None, raw=None, request="", quotes=(), literal=str)
            values.update({k: v for k, v in inp.items() if k != "question"})
            plan = rag()
        else:
            return None
        # the built-in plans read fixed input names: bind them to the goal's values
        resolved = {k: self.values[v[8:-1]] if isinstance(v, str) and v.startswith("${input.") else v
                    for k, v in values.items()}  # fmt: skip
        name = plan.name
        why = PlannedStep(
            step=name,
            agent=best.removeprefix(BUILTIN),
            subgoal=sub.text,
            candidates=_candidates(route),
            confidence=round(route.confidence, 4),
        )
        self.values = {"goal": self.goal, **resolved}
        return self._output(plan, name, [why], route.confidence)

    def _output(
        self, plan: Plan, builtin: str | None, rationale: list[PlannedStep], confidence: float
    ) -> PlannerOutput:
        names = plan_inputs(plan)
        return PlannerOutput(
            plan=plan.model_dump(mode="json", exclude_defaults=True),
            builtin=builtin,
            inputs=names,
            rationale=rationale,
            input={k: v for k, v in self.values.items() if k in names or k == "goal"},
            status="planned",
            confidence=round(confidence, 4),
        )


_planners: dict[str, GoalPlanner] = {}
_planners_lock = threading.Lock()


def goal_planner(specs: Sequence[AgentSpec]) -> GoalPlanner:
    """The :class:`GoalPlanner` of a roster, built once per process and roster (blocking, ~0.3 s)."""
    key = json.dumps(sorted(s.name for s in specs))
    with _planners_lock:
        planner = _planners.get(key)
        if planner is None:
            planner = _planners[key] = GoalPlanner(specs)
        return planner


async def build_plan(specs: Sequence[AgentSpec], goal: str, *, max_steps: int = 6) -> PlannerOutput:
    """Plan ``goal`` over ``specs`` (the router is built in a worker thread the first time).

    Raises:
        BadInputError: The goal has more than ``max_steps`` sub-goals (field ``max_steps``).
    """

    def plan() -> PlannerOutput:  # off the event loop: a long goal of many sentences routes each one
        return goal_planner(tuple(specs)).plan(goal, max_steps=max_steps)

    return await anyio.to_thread.run_sync(plan)


class PlannerAgent(SynthesisAgent):
    """Turns a free-text goal into a plan of agent steps (a built-in plan when one fits), or asks."""

    name = "planner"
    description = (
        "Turns a free-text goal into a plan: each sub-goal matched by meaning to an agent (or a built-in "
        "plan: rag, report, consensus), with its payload and parameters; asks for clarification when unsure."
    )
    capabilities = ("plan", "decompose", "route", "workflow")
    input_model: ClassVar[type[BaseModel]] = PlannerInput
    max_input_bytes = text_input_bytes(MAX_GOAL_CHARS)
    output_model: ClassVar[type[BaseModel]] = PlannerOutput
    bridges = ("collective",)
    text_input = "goal"
    text_output = None

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Plan ``goal`` in at most ``max_steps`` steps."""
        inp: PlannerInput = call.input
        out = await build_plan(self.collective.specs(), inp.goal, max_steps=inp.max_steps)
        return out.model_dump()
