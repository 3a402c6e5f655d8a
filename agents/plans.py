"""Plans: cross-team work as a DAG of steps, and the reports of a plan's run.

A plan is data (JSON or YAML): steps name an agent (or a capability the orchestrator resolves), and a
step's ``input`` may reference the plan's input and earlier steps' outputs::

    name: rag
    steps:
      - id: retrieve
        agent: retriever
        input: {query: "${input.question}", k: 4}
      - id: context
        agent: context-optimizer
        input: {text: "Passages: ${steps.retrieve.hits[*].text}", query: "${input.question}"}
      - id: answer
        agent: generator
        input: {prompt: "Context: ${steps.context.text} Question: ${input.question} Answer:"}
    output: "${steps.answer}"

References (``${...}``):

* ``input.<path>`` — the plan's input; ``steps.<id>.<path>`` — the output of step ``<id>``;
* a path is dot-separated keys, ``[n]`` list indexes, and ``[*]`` maps the rest of the path over a list;
* a string that is exactly one reference takes the referenced value as it is (object, list, number);
  a reference inside a longer string is interpolated as text (lists of strings joined by blank lines,
  other values as JSON).

Dependencies are the steps a step references plus those in ``after``; steps whose dependencies are done
run at the same time (fan-out), a step referencing several steps waits for all (join). Validation
names the offending field (``steps.2.input``) and refuses unknown references and cycles.

This module is pure data and logic: it imports nothing of the orchestrator, the bus or the engines.
References are found and resolved in :mod:`agents._plan_refs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from agents._plan_refs import PlanError, _ref_step, _refs_in, resolve

__all__ = (
    "MAX_PLAN_STEPS",
    "Plan",
    "PlanError",
    "PlanOutcome",
    "PlanStep",
    "StepReport",
    "StepStatus",
    "dependencies",
    "load_yaml",
    "parse_plan",
    "resolve",
    "step_references",
)

MAX_PLAN_STEPS = 64
"""Most steps one plan may have."""

MAX_PLAN_TEXT_BYTES = 256 * 1024
"""Largest plan given as YAML/JSON text, in bytes (a plan as an object is bounded by the body limit)."""
MAX_YAML_NODES = 20_000
"""Most YAML nodes (scalars, lists, mappings) a plan text may hold."""
StepStatus = Literal["pending", "running", "succeeded", "failed", "skipped", "cancelled"]


class PlanStep(BaseModel):
    """One step of a plan.

    Attributes:
        id: Unique within the plan; ``[A-Za-z0-9_-]``, 1–64 characters.
        agent: The agent to call; or
        capability: a capability the orchestrator resolves to an agent (exactly one of the two).
        input: The agent's input, with ``${...}`` references.
        after: Steps that must finish first, besides those referenced.
        timeout_s: Deadline of one attempt, in seconds (default: the orchestrator's step deadline).
        retries: Extra attempts after a retryable failure (timeouts, agent failures), 0–10.
        optional: If the step fails, the plan goes on and the step's output is ``null``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    agent: str | None = None
    capability: str | None = None
    input: Any = Field(default_factory=dict)
    after: tuple[str, ...] = ()
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    retries: int = Field(default=2, ge=0, le=10)
    optional: bool = False
    _deps: tuple[Any, tuple[str, ...], frozenset[str]] | None = PrivateAttr(default=None)
    """Cache of :func:`dependencies`: (the ``input`` object, ``after``, the ids) it was computed for."""

    @model_validator(mode="after")
    def _one_target(self) -> PlanStep:
        if (self.agent is None) == (self.capability is None):
            raise ValueError("give exactly one of agent and capability")
        _dependencies(self)  # computed once, here, so that every validated step carries the same cache
        return self


class Plan(BaseModel):
    """A DAG of steps and the expression of its result.

    Attributes:
        name: A label for logs and reports.
        steps: 1 to :data:`MAX_PLAN_STEPS` steps, in any order that respects their dependencies.
        output: The plan's result, with references (default: the output of the last step listed).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="custom", max_length=128)
    steps: tuple[PlanStep, ...] = Field(min_length=1, max_length=MAX_PLAN_STEPS)
    output: Any = None

    @model_validator(mode="after")
    def _check_graph(self) -> Plan:
        ids = [s.id for s in self.steps]
        seen: set[str] = set()
        for i, sid in enumerate(ids):
            if sid in seen:
                raise ValueError(f"steps.{i}.id: duplicate step id {sid!r}")
            seen.add(sid)
        for i, step in enumerate(self.steps):
            for dep in _dependencies(step):
                if dep not in seen:
                    raise ValueError(f"steps.{i}: refers to unknown step {dep!r}")
                if dep == step.id:
                    raise ValueError(f"steps.{i}: refers to itself")
        for where, ref in _refs_in(self.output, "output"):
            root = ref.split(".", 1)[0]
            if root == "steps" and _ref_step(ref) not in seen:
                raise ValueError(f"{where}: refers to unknown step in ${{{ref}}}")
        self.layers()  # raises on a cycle
        return self

    def step(self, step_id: str) -> PlanStep:
        """The step with id ``step_id``.

        Raises:
            KeyError: No such step.
        """
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def layers(self) -> list[list[str]]:
        """Step ids grouped into layers; every step's dependencies are in earlier layers.

        Raises:
            ValueError: The steps form a cycle (the message lists them).
        """
        deps = {s.id: _dependencies(s) for s in self.steps}
        done: set[str] = set()
        layers: list[list[str]] = []
        while len(done) < len(deps):
            ready = [sid for sid, d in deps.items() if sid not in done and d <= done]
            if not ready:
                stuck = sorted(set(deps) - done)
                raise ValueError(f"steps: the steps {', '.join(stuck)} depend on each other (a cycle)")
            layers.append(ready)
            done.update(ready)
        return layers

    def result(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
        """The plan's result from its input and the steps' outputs.

        Raises:
            PlanError: A reference cannot be resolved.
        """
        if self.output is None:
            return outputs.get(self.steps[-1].id)
        return resolve(self.output, inputs, outputs, where="output")


def step_references(step: PlanStep) -> set[str]:
    """Ids of the steps that ``step.input`` references."""
    return {_ref_step(ref) for _, ref in _refs_in(step.input, "input") if ref.startswith("steps.")}


def dependencies(step: PlanStep) -> set[str]:
    """Ids of the steps ``step`` waits for: those it references and those in ``after``."""
    return set(_dependencies(step))


def _dependencies(step: PlanStep) -> frozenset[str]:
    """:func:`dependencies`, computed once per step (the cache is keyed by ``input`` and ``after``)."""
    cached = step._deps
    if cached is not None and cached[0] is step.input and cached[1] == step.after:
        return cached[2]
    deps = frozenset(step_references(step) | set(step.after))
    step._deps = (step.input, step.after, deps)
    return deps


class _PlanLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and with at most :data:`MAX_YAML_NODES` nodes.

    Aliases are refused outright (``&a [*a, *a]`` nested a few levels expands exponentially: the
    "billion laughs" document); a plan never needs them.
    """

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self.nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted in plans", mark)
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, f"a plan holds at most {MAX_YAML_NODES} YAML nodes", mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str | bytes) -> Any:
    """YAML (or JSON) text as Python data, aliases refused, nodes and size capped; linear time.

    Raises:
        PlanError: Too large (over :data:`MAX_PLAN_TEXT_BYTES`), an alias, too many nodes, or not YAML.
    """
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_PLAN_TEXT_BYTES:
        raise PlanError(
            f"a plan as text is at most {MAX_PLAN_TEXT_BYTES} bytes; this one is {size}", field="plan"
        )
    loader = _PlanLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise PlanError(f"not JSON or YAML: {exc}", field="plan") from None
    except RecursionError:
        raise PlanError("the plan is nested too deeply", field="plan") from None
    finally:
        loader.dispose()


def parse_plan(source: str | bytes | Mapping[str, Any]) -> Plan:
    """A :class:`Plan` from a mapping, JSON or YAML text (see :func:`load_yaml` for the text limits).

    Raises:
        PlanError: Not JSON/YAML, too large, or not a valid plan (the message names the field).
    """
    data: Any = source
    if isinstance(source, str | bytes):
        data = load_yaml(source)  # YAML 1.1 is a superset of JSON for our purposes
    if not isinstance(data, Mapping):
        raise PlanError("a plan is an object with steps", field="plan")
    try:
        return Plan.model_validate(data)
    except RecursionError:
        raise PlanError("the plan is nested too deeply", field="plan") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        if ":" in msg and not loc:
            loc, _, msg = msg.partition(": ")
        raise PlanError(msg, field=f"plan.{loc}" if loc else "plan") from None


class StepReport(BaseModel):
    """What happened to one step of a run.

    Attributes:
        id: The step id.
        agent: The agent that ran it (after capability resolution and failover), if any ran.
        status: ``pending`` → ``running`` → ``succeeded`` | ``failed`` | ``skipped`` | ``cancelled``.
        attempts: Calls made (retries and failovers included).
        started_at: Unix time in seconds when the step started, or None.
        seconds: Wall time of the step, or None while it runs.
        output: The step's output, once it succeeded.
        error: ``{"code", "message", "field"}`` when it failed.
        selection: Why this agent was chosen (scores), when the step named a capability.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    agent: str | None = None
    status: StepStatus = "pending"
    attempts: int = 0
    started_at: float | None = None
    seconds: float | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    selection: dict[str, Any] | None = None


class PlanOutcome(BaseModel):
    """The result of running a plan.

    Attributes:
        plan: The plan's name.
        status: ``succeeded``, ``failed`` or ``cancelled``; ``needs_clarification`` when the goal was not
            clear enough to plan (nothing ran).
        output: The plan's result (``Plan.output``), when it succeeded.
        steps: One report per step, in the plan's order.
        error: The first error that failed the plan.
        seconds: Wall time of the run.
    """

    model_config = ConfigDict(extra="forbid")

    plan: str
    status: Literal["succeeded", "failed", "cancelled", "needs_clarification"]
    output: Any = None
    steps: list[StepReport]
    error: dict[str, Any] | None = None
    seconds: float = 0.0
