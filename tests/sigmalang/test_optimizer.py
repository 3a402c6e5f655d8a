from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigmalang import BudgetUnreachableError, optimize_context


def words(text: str) -> int:
    return len(text.split())


CODE = "```python\ndef retry(n):\n\n    return n * 2.5  # seconds\n```"
JSON_BLOCK = json.dumps({"tool": "search", "args": {"k": 5, "threshold": 0.75}}, indent=2)
DOC = f"""The storage agent keeps 4096 records per shard. Shards rotate every 3.5 hours.

Retries use exponential backoff. The retry helper is below.

{CODE}

The tool call that failed was:
{JSON_BLOCK}

Unrelated: the office plants need water on Tuesdays. The cafeteria serves soup at 12:30.
- the backup runs at 02:00 UTC
- version 1.2.3 is current
"""
NUMBER = re.compile(r"\d+(?:[.:]\d+)*")


def test_text_that_fits_is_returned_unchanged() -> None:
    result = optimize_context(DOC, budget_tokens=10_000, count_tokens=words, query="retry")
    assert result.text == DOC
    assert result.token_ratio == 1.0


@given(
    st.integers(min_value=0, max_value=words(DOC)), st.sampled_from(["", "retry backoff", "shard records"])
)
def test_budget_met_and_code_json_numbers_never_altered(budget: int, query: str) -> None:
    result = optimize_context(DOC, budget_tokens=budget, count_tokens=words, query=query)
    assert result.tokens_out <= budget
    assert result.tokens_out == words(result.text)
    assert (CODE in result.text) or ("```" not in result.text)
    assert (JSON_BLOCK in result.text) or ('"tool"' not in result.text)
    for number in NUMBER.findall(result.text):
        assert re.search(rf"(?<![\d.:]){re.escape(number)}(?!\d|[.:]\d)", DOC), number
    for token in result.text.split():
        assert token in DOC.split()  # every whitespace-separated token is verbatim from the input


def test_most_relevant_sentences_win() -> None:
    result = optimize_context(DOC, budget_tokens=25, count_tokens=words, query="cafeteria soup")
    assert "The cafeteria serves soup at 12:30." in result.text
    assert "plants" not in result.text or result.tokens_out <= 25
    assert result.tokens_in / result.tokens_out == result.token_ratio
    other = optimize_context(DOC, budget_tokens=25, count_tokens=words, query="shards rotate")
    assert "Shards rotate every 3.5 hours." in other.text
    assert "cafeteria" not in other.text


def test_code_block_is_kept_whole_when_relevant() -> None:
    result = optimize_context(DOC, budget_tokens=40, count_tokens=words, query="retry helper def return")
    assert CODE in result.text
    assert result.code_blocks_dropped == 0


def test_protected_span_is_always_kept() -> None:
    start = DOC.index("Unrelated")
    end = DOC.index("Tuesdays.") + len("Tuesdays.")
    result = optimize_context(
        DOC, budget_tokens=20, count_tokens=words, query="shard records", protected=[(start, end)]
    )
    assert "the office plants need water on Tuesdays." in result.text
    assert result.tokens_out <= 20


def test_unreachable_budget_raises() -> None:
    with pytest.raises(BudgetUnreachableError) as caught:
        optimize_context(DOC, budget_tokens=3, count_tokens=words, protected=[(0, len(DOC) // 2)])
    assert caught.value.budget == 3 and caught.value.minimum > 3


def test_injected_scorer_replaces_bm25() -> None:
    def prefer_lists(query: str, units: list[str]) -> list[float]:
        return [1.0 if u.startswith("- ") else 0.0 for u in units]

    result = optimize_context(DOC, budget_tokens=14, count_tokens=words, scorer=prefer_lists)
    assert "- the backup runs at 02:00 UTC" in result.text
    assert "- version 1.2.3 is current" in result.text


def test_paragraph_mode_keeps_paragraphs_whole() -> None:
    result = optimize_context(DOC, budget_tokens=20, count_tokens=words, query="backoff", by_paragraph=True)
    assert "Retries use exponential backoff. The retry helper is below." in result.text
