"""Built-in plans of the Synthesis team: ``rag``, ``consensus`` and ``report``.

Each function returns an :class:`agents.plans.Plan` whose steps read the plan's input through
``${input.<name>}`` references (the docstrings list the names); ``rag-answerer`` runs :func:`rag`, the
``planner`` proposes these plans when it recognises a goal, and ``workflow-runner`` runs any of them.

====================== ==============================================================================
plan                   steps
====================== ==============================================================================
rag                    retriever → context-optimizer → generator → verifier
consensus              n × generator (different seeds, at the same time) → consensus
report                 sentiment, keyword-extractor, entity-extractor, language-detector,
                       quality-critic (at the same time, each optional) → reporter
====================== ==============================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.plans import Plan, PlanStep

__all__ = ("BUILTIN_PLANS", "RAG_SYSTEM_PROMPT", "REPORT_ANALYSES", "consensus", "rag", "report")

RAG_SYSTEM_PROMPT = (
    "Answer the question using only the context. Be brief. "
    "If the context does not contain the answer, say that you do not know."
)
"""System message of the ``rag`` plan's generation."""

REPORT_ANALYSES: tuple[tuple[str, str, str], ...] = (
    ("sentiment", "sentiment", "Sentiment"),
    ("keywords", "keyword-extractor", "Keywords"),
    ("entities", "entity-extractor", "Entities"),
    ("language", "language-detector", "Language"),
    ("quality", "quality-critic", "Quality"),
)
"""The ``report`` plan's analyses: (step id, Analysis agent, report heading)."""


def rag() -> Plan:
    """Retrieval-augmented answering.

    Input: ``question`` (text), ``k`` (records to retrieve), ``budget_tokens`` (context budget),
    ``max_tokens`` (answer length). Steps:

    1. ``retrieve`` — ``retriever`` {query, k}: the k nearest records;
    2. ``context`` — ``context-optimizer`` {text: the hits' texts, query, budget_tokens}: the sentences
       most relevant to the question that fit the budget;
    3. ``answer`` — ``generator`` {messages: system + context and question, temperature 0, seed 0,
       max_tokens};
    4. ``verify`` — ``verifier`` {answer, context}: is each sentence of the answer in the context?

    Output: ``{answer, sources: {ids, scores, texts}, verification}`` (``texts``: the retrieved passages).
    """
    return Plan(
        name="rag",
        steps=(
            PlanStep(
                id="retrieve",
                agent="retriever",
                input={"query": "${input.question}", "k": "${input.k}"},
            ),
            PlanStep(
                id="context",
                agent="context-optimizer",
                input={
                    # A reference inside a longer string is interpolated as text: the hits joined by
                    # blank lines (the optimiser takes one text, not a list).
                    "text": "Retrieved passages:\n\n${steps.retrieve.hits[*].text}",
                    "query": "${input.question}",
                    "budget_tokens": "${input.budget_tokens}",
                },
            ),
            PlanStep(
                id="answer",
                agent="generator",
                input={
                    "messages": [
                        {"role": "system", "content": RAG_SYSTEM_PROMPT},
                        {
                            "role": "user",
                            "content": "Context:\n${steps.context.text}\n\nQuestion: ${input.question}",
                        },
                    ],
                    "temperature": 0.0,
                    "seed": 0,
                    "max_tokens": "${input.max_tokens}",
                },
            ),
            PlanStep(
                id="verify",
                agent="verifier",
                input={"answer": "${steps.answer.text}", "context": "${steps.context.text}"},
            ),
        ),
        output={
            "answer": "${steps.answer.text}",
            "sources": {
                "ids": "${steps.retrieve.hits[*].id}",
                "scores": "${steps.retrieve.hits[*].score}",
                "texts": "${steps.retrieve.hits[*].text}",
            },
            "verification": "${steps.verify}",
        },
    )


def consensus(n: int = 4, *, temperature: float = 0.7, max_tokens: int = 64) -> Plan:
    """``n`` generations of one prompt at the same time (seeds 0..n-1), then a vote.

    Input: ``prompt``. The vote tolerates the largest f with n ≥ 3f + 1 faulty answers.

    Args:
        n: Generations, 1–63.
        temperature: Sampling temperature of each generation.
        max_tokens: Most tokens of each answer.

    Raises:
        ValueError: ``n`` is out of range.
    """
    if not 1 <= n <= 63:
        raise ValueError(f"n must be 1-63, not {n}")
    generations = tuple(
        PlanStep(
            id=f"gen{i}",
            agent="generator",
            input={
                "prompt": "${input.prompt}",
                "seed": i,
                "temperature": temperature,
                "max_tokens": max_tokens,
            },
        )
        for i in range(n)
    )
    vote = PlanStep(
        id="vote",
        agent="consensus",
        input={"candidates": [f"${{steps.gen{i}.text}}" for i in range(n)]},
    )
    return Plan(name="consensus", steps=(*generations, vote))


def report(title: str = "Text report") -> Plan:
    """The Analysis team's views of one text, at the same time, then a Markdown report of them.

    Input: ``text``. Each analysis step is optional: one that fails leaves its section empty instead of
    failing the report.

    Args:
        title: The report's title.
    """
    analyses = tuple(
        PlanStep(id=step_id, agent=agent, input={"text": "${input.text}"}, optional=True)
        for step_id, agent, _ in REPORT_ANALYSES
    )
    sections: dict[str, Any] = {heading: f"${{steps.{step_id}}}" for step_id, _, heading in REPORT_ANALYSES}
    reporter = PlanStep(id="report", agent="reporter", input={"title": title, "sections": sections})
    return Plan(name="report", steps=(*analyses, reporter))


BUILTIN_PLANS: dict[str, Callable[..., Plan]] = {"rag": rag, "consensus": consensus, "report": report}
"""The built-in plans by name."""
