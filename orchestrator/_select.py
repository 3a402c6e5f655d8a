"""Agent selection: by name, by capability, or for a free-text goal — deterministic and explained.

Order of evidence (ARCHITECTURE.md, issue 5):

1. **Capability.** An agent that has the requested capability — or, for a free-text goal, whose primary
   (first) capability a word of the goal names (words compared on their first five letters, so
   ``summarise`` finds ``summarize``) — scores 1 on this term; one whose other capabilities a word names
   scores :data:`SECONDARY_CAPABILITY`.
2. **Semantic match.** The planner's intent router (:class:`agents.intent.IntentRouter`): nearest example
   requests of each agent by meaning (a static distillation of all-MiniLM-L6-v2, in process, well under a
   millisecond) and wording. Built once, off the event loop, at the first goal (or :meth:`Selector.prepare`).
   Without it (``semantic=False``, or the model package missing), a lexical TF-IDF cosine over the
   descriptions stands in, and the explanation says ``method: lexical``.
3. **Load.** Among equal scores, the agent whose healthy replicas carry the least load wins; agents with no
   healthy replica are left out when the load monitor knows of any instance at all. The replica itself
   is picked at dispatch time (:class:`~orchestrator._load.LoadMonitor`).

``score = 0.5 · capability + 0.5 · max(semantic, 0)``; ties break on load, then on the name, so the same
goal over the same roster and load always gives the same agent.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio
import structlog
from opentelemetry import trace

from agents.collective import AgentSpec, Candidate
from agents.errors import BadInputError, NotFoundError
from agents.tracing import start_child, tracer
from orchestrator._load import LoadMonitor

if TYPE_CHECKING:
    from agents.synthesis import GoalPlanner

__all__ = ("Selection", "Selector")

log = structlog.get_logger("neurectomy.orchestrator")
_tracer = tracer("neurectomy.orchestrator")

SECONDARY_CAPABILITY = 0.6
"""Capability term of an agent matched only through one of its secondary capabilities."""
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _fields(spec: AgentSpec) -> tuple[set[str], set[str]]:
    """Input field names and required ones (what a payload must match to mean the same)."""
    schema = spec.input_schema
    return set(schema.get("properties", {})), set(schema.get("required", []))


def _stem(word: str) -> str:
    return word[:5]


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen agent and why.

    Attributes:
        agent: The chosen agent's name.
        team: Its team.
        method: ``name``, ``capability``, ``semantic`` or ``lexical``.
        candidates: The agents considered, best first, with their scores.
    """

    agent: str
    team: str
    method: Literal["name", "capability", "semantic", "lexical"]
    candidates: tuple[Candidate, ...]

    def explain(self) -> dict[str, Any]:
        """The selection as JSON: method, chosen agent and the candidates' scores."""
        return {
            "agent": self.agent,
            "method": self.method,
            "candidates": [
                {
                    "agent": c.agent,
                    "score": round(c.score, 4),
                    "capability": c.capability,
                    "semantic": round(c.semantic, 4),
                    "load": round(c.load, 3),
                }
                for c in self.candidates
            ],
        }


class Selector:
    """Picks agents from the roster.

    Args:
        specs: The roster.
        monitor: Live load of the instances (None: load is not considered).
        semantic: Match free-text goals with the intent router (False: lexical matching).
    """

    def __init__(
        self, specs: Sequence[AgentSpec], *, monitor: LoadMonitor | None = None, semantic: bool = True
    ) -> None:
        self.specs = {s.name: s for s in specs}
        self.monitor = monitor
        self.semantic = semantic and bool(specs)
        self._planner: GoalPlanner | None = None
        self._names = sorted(self.specs)
        self._stems = {
            n: {_stem(w) for c in spec.capabilities for w in _words(c)} for n, spec in self.specs.items()
        }
        self._primary = {
            n: {_stem(w) for w in _words(spec.capabilities[0] if spec.capabilities else "")}
            for n, spec in self.specs.items()
        }
        docs = [_words(self._doc(self.specs[n])) for n in self._names]
        df = Counter(w for d in docs for w in set(d))
        self._idf = {w: math.log((1 + len(docs)) / (1 + c)) + 1 for w, c in df.items()}
        self._tfidf = [self._vector(d) for d in docs]

    @staticmethod
    def _doc(spec: AgentSpec) -> str:
        return f"{spec.name.replace('-', ' ')}: {spec.description} ({', '.join(spec.capabilities)})"

    def _vector(self, words: list[str]) -> dict[str, float]:
        tf = Counter(words)
        vec = {w: c * self._idf.get(w, 0.0) for w, c in tf.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {w: v / norm for w, v in vec.items()}

    async def prepare(self) -> None:
        """Build the intent router now (once, in a worker thread); with ``semantic=False`` nothing."""
        if self.semantic and self._planner is None:
            from agents.synthesis._planner import goal_planner  # the router (numpy tables): on first use

            try:
                self._planner = await anyio.to_thread.run_sync(goal_planner, tuple(self.specs.values()))
            except (ModuleNotFoundError, FileNotFoundError) as exc:  # no model package: lexical
                log.warning("intent router unavailable; lexical selection", error=str(exc))
                self.semantic = False

    def _load(self, name: str) -> tuple[int, float]:
        return self.monitor.load(name) if self.monitor is not None else (1, 0.0)

    def _known_live(self) -> bool:
        return self.monitor is not None and bool(self.monitor.started)

    async def _semantic(self, goal: str) -> tuple[list[float], Literal["semantic", "lexical"]]:
        await self.prepare()
        if self._planner is not None:
            route = self._planner.router.route(goal, k=len(self._planner.router.classes))
            scores = dict(route.ranked)
            return [max(0.0, min(1.0, scores.get(n, 0.0))) for n in self._names], "semantic"
        q = self._vector(_words(goal))
        return [sum(q.get(w, 0.0) * v for w, v in d.items()) for d in self._tfidf], "lexical"

    async def select(
        self, *, agent: str | None = None, capability: str | None = None, goal: str | None = None, k: int = 5
    ) -> Selection:
        """Choose an agent.

        Args:
            agent: An agent name (checked against the roster).
            capability: A capability the agent must have.
            goal: Free text describing the work.
            k: Candidates kept in the explanation.

        Raises:
            NotFoundError: No agent of that name, or none with that capability (field named).
            BadInputError: None of ``agent``, ``capability``, ``goal`` was given.
        """
        span = start_child(_tracer, "select")
        if not span.is_recording():  # untraced: no context switch either
            return await self._select(agent=agent, capability=capability, goal=goal, k=k)
        with trace.use_span(span, end_on_exit=True):
            selection = await self._select(agent=agent, capability=capability, goal=goal, k=k)
            span.set_attributes(
                {"neurectomy.agent": selection.agent, "neurectomy.selection.method": selection.method}
            )
            return selection

    async def _select(
        self, *, agent: str | None, capability: str | None, goal: str | None, k: int
    ) -> Selection:
        if agent is not None:
            spec = self.specs.get(agent)
            if spec is None:
                raise NotFoundError(f"no agent named {agent!r}", field="agent")
            return Selection(agent, spec.team, "name", (Candidate(agent, 1.0, load=self._load(agent)[1]),))
        if capability is None and not (goal and goal.strip()):
            raise BadInputError("give an agent, a capability or a goal", field="goal")
        names = self._names
        if capability is not None:
            wanted = capability.strip().lower()
            names = [n for n in names if wanted in self.specs[n].capabilities]
            if not names:
                raise NotFoundError(f"no agent has the capability {capability!r}", field="capability")
        goal_stems = {_stem(w) for w in _words(goal or "") if len(w) >= 3}
        semantic: list[float] = [0.0] * len(self._names)
        method: Literal["capability", "semantic", "lexical"] = "capability"
        if goal and goal.strip():
            semantic, method = await self._semantic(goal)
        index = {n: i for i, n in enumerate(self._names)}
        live = self._known_live()
        scored: list[tuple[float, float, str, Candidate]] = []
        for name in names:
            replicas, load = self._load(name)
            if live and replicas == 0:
                continue
            if capability is not None or goal_stems & self._primary[name]:
                cap = 1.0
            else:
                cap = SECONDARY_CAPABILITY if goal_stems & self._stems[name] else 0.0
            sem = semantic[index[name]]
            score = 0.5 * cap + 0.5 * max(sem, 0.0)
            scored.append((-score, load, name, Candidate(name, score, cap, sem, load)))
        if not scored:
            what = f"capability {capability!r}" if capability else "this goal"
            raise NotFoundError(f"no healthy agent for {what}", field="capability" if capability else "goal")
        scored.sort(key=lambda t: (t[0], t[1], t[2]))
        best = scored[0][3]
        return Selection(best.agent, self.specs[best.agent].team, method, tuple(t[3] for t in scored[:k]))

    def fallbacks(self, agent: str) -> list[str]:
        """Agents that can stand in for ``agent``, healthy and least loaded first.

        A stand-in shares ``agent``'s first (primary) capability and takes the same input fields, so the
        same payload means the same thing to it (``extractor`` never falls back to ``entity-extractor``).
        """
        spec = self.specs.get(agent)
        if spec is None or not spec.capabilities:
            return []
        primary, fields = spec.capabilities[0], _fields(spec)
        others = [
            n
            for n in self._names
            if n != agent and primary in self.specs[n].capabilities and _fields(self.specs[n]) == fields
        ]
        loads = {n: self._load(n) for n in others}
        return sorted(others, key=lambda n: (-loads[n][0], loads[n][1], n))
