"""Inputs and outputs of the Synthesis team's agents, as they travel over NATS (JSON).

Every model is frozen and forbids unknown fields, so a typo is refused with its name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = (
    "MAX_AGGREGATE_ITEMS",
    "MAX_CONSENSUS_N",
    "MAX_GOAL_CHARS",
    "AggregateInput",
    "AggregateOutput",
    "CandidateScore",
    "ConsensusInput",
    "ConsensusOutput",
    "FormatInput",
    "FormatOutput",
    "MergeConflict",
    "PlannerInput",
    "PlannerOutput",
    "PlannedStep",
    "RagInput",
    "RagOutput",
    "ReportInput",
    "ReportOutput",
    "SectionIn",
    "SentenceCheck",
    "Source",
    "VerifyInput",
    "VerifyOutput",
    "VoteCount",
    "WorkflowInput",
    "WorkflowOutput",
)

MAX_AGGREGATE_ITEMS = 1000
"""Most items one ``aggregator`` call combines (count)."""
MAX_CONSENSUS_N = 64
"""Most answers one ``consensus`` call votes on (count)."""
MAX_GOAL_CHARS = 10_000
"""Longest goal of a ``planner`` call or question of a ``rag-answerer`` call, in characters."""


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RagInput(_Wire):
    """Input of ``rag-answerer``."""

    question: str = Field(min_length=1, max_length=MAX_GOAL_CHARS)
    k: int = Field(default=4, ge=1, le=50)
    """Records to retrieve (count)."""
    budget_tokens: int = Field(default=512, ge=16, le=32_768)
    """Token budget of the optimised context."""
    max_tokens: int = Field(default=128, ge=1, le=4096)
    """Most tokens of the answer."""


class Source(_Wire):
    """A retrieved record the answer drew on."""

    id: str
    score: float
    """Cosine similarity to the question, in [-1, 1]."""
    text: str = ""
    """The retrieved passage (so the answer carries what it is grounded on)."""


class RagOutput(_Wire):
    """Output of ``rag-answerer``."""

    answer: str
    sources: list[Source]
    verification: dict[str, Any]
    """The ``verifier``'s output for the answer against the optimised context."""
    steps: list[dict[str, Any]]
    """One ``agents.plans.StepReport`` per step of the ``rag`` plan."""


class PlannerInput(_Wire):
    """Input of ``planner``."""

    goal: str = Field(min_length=1, max_length=MAX_GOAL_CHARS)
    max_steps: int = Field(default=6, ge=1, le=64)


class CandidateScore(_Wire):
    """An agent selection considered for one sub-goal, with its scores."""

    agent: str
    score: float
    capability: float
    semantic: float
    load: float


class PlannedStep(_Wire):
    """Why one step of a plan calls the agent it calls."""

    step: str
    agent: str
    subgoal: str
    candidates: list[CandidateScore]
    needs: list[str] = Field(default_factory=list)
    """Required input fields of the agent that the goal does not give (the plan is then not run)."""
    confidence: float = 1.0
    """Calibrated probability that the agent is the one the sub-goal asks for (0-1)."""


class PlannerOutput(_Wire):
    """Output of ``planner``."""

    plan: dict[str, Any]
    """The plan as JSON (``agents.plans.Plan``), ready for ``workflow-runner``."""
    builtin: str | None
    """Name of the built-in plan that was recognised, or None for a decomposed goal."""
    inputs: list[str]
    """The plan's input fields (``${input.<name>}``)."""
    rationale: list[PlannedStep]
    input: dict[str, Any] = Field(default_factory=dict)
    """Values of the plan's input taken from the goal (payloads, the request); run the plan with it."""
    status: Literal["planned", "needs_clarification"] = "planned"
    """``needs_clarification``: no plan is confident enough (or a required parameter is missing)."""
    confidence: float = 1.0
    """The least confidence of the plan's sub-goals (0-1)."""
    reason: str | None = None
    """Why clarification is needed."""


class AggregateInput(_Wire):
    """Input of ``aggregator``."""

    items: list[Any] = Field(min_length=2, max_length=MAX_AGGREGATE_ITEMS)
    mode: Literal["concat", "merge", "mean", "union", "vote"]
    field: str | None = Field(default=None, min_length=1, max_length=256)
    """Dotted path of the value to take from object items (``mean`` and ``vote``)."""
    separator: str = Field(default="\n\n", max_length=64)
    """Between concatenated texts (``concat``)."""


class MergeConflict(_Wire):
    """A path where merged objects disagree (the last value wins)."""

    path: str
    values: list[Any]


class VoteCount(_Wire):
    """Votes for one value."""

    value: Any
    count: int


class AggregateOutput(_Wire):
    """Output of ``aggregator``."""

    mode: str
    result: Any
    counts: dict[str, int | float]
    """What the mode counted: items, kept, duplicates, skipped, conflicts, ..."""
    conflicts: list[MergeConflict] = Field(default_factory=list)
    votes: list[VoteCount] = Field(default_factory=list)


class SectionIn(_Wire):
    """One section of a report."""

    heading: str = Field(min_length=1, max_length=256)
    content: Any = None


class ReportInput(_Wire):
    """Input of ``reporter``."""

    title: str = Field(min_length=1, max_length=256)
    sections: dict[str, Any] | list[SectionIn]
    """Heading → content, or ``{heading, content}`` objects in order."""


class ReportOutput(_Wire):
    """Output of ``reporter``."""

    markdown: str
    sections: int
    words: int


class ConsensusInput(_Wire):
    """Input of ``consensus``: ``candidates`` (answers already produced) or ``prompt`` (asked ``n`` times)."""

    candidates: list[str] | None = Field(default=None, min_length=1, max_length=MAX_CONSENSUS_N)
    prompt: str | None = Field(default=None, min_length=1)
    n: int | None = Field(default=None, ge=1, le=MAX_CONSENSUS_N)
    """Generations to ask for (``prompt`` only; default 4 = 3·1 + 1)."""
    f: int | None = Field(default=None, ge=0)
    """Faulty answers tolerated; default the largest f with n ≥ 3f + 1."""
    numeric: bool = True
    """Canonicalise answers that are numbers (``1,000.0`` and ``1000`` vote together)."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=64, ge=1, le=4096)


class ConsensusOutput(_Wire):
    """Output of ``consensus``."""

    value: str | None
    """The agreed answer as first given, or None without a quorum."""
    key: str | None
    """The agreed answer normalised (what was counted)."""
    votes: dict[str, int]
    """Normalised answer → votes, most votes first."""
    quorum: int
    agreed: bool
    n: int
    f: int
    candidates: list[str]
    failed: int
    """Generations that failed (counted as faulty, no vote)."""


class FormatInput(_Wire):
    """Input of ``formatter``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    data: Any
    to: Literal["json", "yaml", "markdown", "csv", "text"]
    source_format: Literal["json", "yaml", "csv"] | None = Field(default=None, alias="from")
    """How to parse ``data`` when it is text (absent: text stays text)."""


class FormatOutput(_Wire):
    """Output of ``formatter``."""

    text: str
    to: str
    chars: int


class VerifyInput(_Wire):
    """Input of ``verifier``."""

    answer: str = Field(max_length=100_000)
    context: str | list[str] = Field(max_length=1000)
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """Least support (content-word recall) of a supported sentence."""


class SentenceCheck(_Wire):
    """How well one sentence of the answer is supported."""

    text: str
    support: float
    """Share of the sentence's content words found in ``best_match``, in [0, 1]."""
    best_match: str | None
    numbers_ok: bool
    """Every number of the sentence appears in the context."""
    supported: bool


class VerifyOutput(_Wire):
    """Output of ``verifier``."""

    supported_ratio: float
    verdict: Literal["supported", "partially_supported", "unsupported"]
    sentences: list[SentenceCheck]


class WorkflowInput(_Wire):
    """Input of ``workflow-runner``."""

    plan: dict[str, Any] | str
    """An ``agents.plans.Plan`` as an object, or as JSON/YAML text."""
    input: dict[str, Any] = Field(default_factory=dict)
    """The plan's input (``${input.<name>}``)."""


class WorkflowOutput(_Wire):
    """Output of ``workflow-runner``."""

    plan: str
    status: Literal["succeeded", "failed", "cancelled", "needs_clarification"]
    output: Any
    steps: list[dict[str, Any]]
    error: dict[str, Any] | None
    seconds: float
