"""Lossy, opt-in context optimisation: fit a text into a token budget by extractive selection.

The text is split into sentences (or paragraphs) that never cut a fenced code block, a JSON value, a
number or a caller-protected span (`sigmalang._segment`). Units are ranked by relevance to a query,
Okapi BM25 by default (Robertson and Zaragoza 2009) or any injected scorer (e.g. cosine similarity of
embeddings), ties broken by position (earlier first). The best units that fit are kept and written
out in their original order; nothing inside a kept unit is changed, so code, JSON and numbers are
always either present verbatim or absent.

Tokens are counted by the caller's ``count_tokens`` (the serving LLM's tokenizer): this module knows
no tokenizer. The result never exceeds the budget as measured by that function on the final text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sigmalang._bm25 import bm25_scores
from sigmalang._segment import Unit, UnitKind, segment
from sigmalang.errors import BudgetUnreachableError

__all__ = ("OptimizedContext", "Scorer", "optimize_context")

Scorer = Callable[[str, Sequence[str]], Sequence[float]]
"""``scorer(query, units) -> scores``: one relevance score per unit, higher is more relevant."""


@dataclass(frozen=True, slots=True)
class OptimizedContext:
    """The optimised text and what it cost.

    Attributes:
        text: The selected units in their original order.
        tokens_in: Tokens of the input, by the caller's counter.
        tokens_out: Tokens of `text`, by the caller's counter (never above `budget_tokens`).
        budget_tokens: The budget asked for, tokens.
        units_total: Units the input was split into.
        units_kept: Units in `text`.
        code_blocks_dropped: Fenced code blocks left out (each was kept whole or dropped whole).
        json_values_dropped: Stand-alone JSON values left out (likewise).
    """

    text: str
    tokens_in: int
    tokens_out: int
    budget_tokens: int
    units_total: int
    units_kept: int
    code_blocks_dropped: int
    json_values_dropped: int

    @property
    def token_ratio(self) -> float:
        """``tokens_in / tokens_out`` (1.0 when nothing was removed)."""
        return self.tokens_in / self.tokens_out if self.tokens_out else float("inf")


def _assemble(source: str, units: Sequence[Unit], kept: Sequence[int]) -> str:
    parts: list[str] = []
    previous = -1
    for index in sorted(kept):
        unit = units[index]
        if parts:
            before = units[previous]
            if index == previous + 1:
                parts.append(source[before.end : unit.start])
            elif before.paragraph == unit.paragraph:
                parts.append(" ")
            else:
                parts.append("\n\n")
        parts.append(unit.text)
        previous = index
    return "".join(parts)


def optimize_context(
    text: str,
    *,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    query: str = "",
    protected: Sequence[tuple[int, int]] = (),
    scorer: Scorer | None = None,
    by_paragraph: bool = False,
) -> OptimizedContext:
    """Fit `text` into `budget_tokens` by keeping the units most relevant to `query`.

    Args:
        text: The context (documents, history, tool output).
        budget_tokens: Most tokens the result may have, by `count_tokens`.
        count_tokens: The tokenizer's counter, ``str -> tokens``.
        query: What the context is for; without one, earlier units are preferred.
        protected: ``(start, end)`` character offsets into `text` that must be kept; the unit holding
            each one is kept whole.
        scorer: Relevance function replacing BM25, ``(query, unit texts) -> scores``.
        by_paragraph: Select whole paragraphs instead of sentences.

    Returns:
        The optimised context. If `text` already fits it is returned unchanged.

    Raises:
        BudgetUnreachableError: The protected units alone exceed the budget.
        ValueError: `budget_tokens` is negative or `scorer` returns the wrong number of scores.
    """
    if budget_tokens < 0:
        raise ValueError(f"budget_tokens must be >= 0, got {budget_tokens}")
    tokens_in = count_tokens(text)
    units = segment(text, by_paragraph=by_paragraph, protected=protected)
    if tokens_in <= budget_tokens:
        return OptimizedContext(text, tokens_in, tokens_in, budget_tokens, len(units), len(units), 0, 0)
    texts = [u.text for u in units]
    scores = list(scorer(query, texts) if scorer is not None else bm25_scores(query, texts))
    if len(scores) != len(units):
        raise ValueError(f"scorer returned {len(scores)} scores for {len(units)} units")

    mandatory = [i for i, u in enumerate(units) if u.protected]
    base = count_tokens(_assemble(text, units, mandatory)) if mandatory else 0
    if base > budget_tokens:
        raise BudgetUnreachableError(budget_tokens, base)
    candidates = sorted((i for i, u in enumerate(units) if not u.protected), key=lambda i: (-scores[i], i))
    chosen: list[int] = []
    used = base
    for i in candidates:
        cost = count_tokens(texts[i]) + 1  # + a separator
        if used + cost <= budget_tokens:
            chosen.append(i)
            used += cost
    # Token counts are not additive (merges across joins); drop the least relevant until it fits.
    result = _assemble(text, units, mandatory + chosen)
    tokens_out = count_tokens(result)
    while tokens_out > budget_tokens and chosen:
        chosen.pop()
        result = _assemble(text, units, mandatory + chosen)
        tokens_out = count_tokens(result)
    kept = set(mandatory + chosen)
    dropped = [units[i] for i in range(len(units)) if i not in kept]
    return OptimizedContext(
        text=result,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        budget_tokens=budget_tokens,
        units_total=len(units),
        units_kept=len(kept),
        code_blocks_dropped=sum(1 for u in dropped if u.kind is UnitKind.CODE),
        json_values_dropped=sum(1 for u in dropped if u.kind is UnitKind.JSON),
    )
