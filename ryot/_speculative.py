"""Draft tokens for speculative decoding by prompt lookup.

The draft is what followed the most recent earlier occurrence of the sequence's last n-gram (n from
``ngram_max`` down to ``ngram_min``). It costs no draft model and pays off when the output repeats its
input (quoting, editing code, extracting): the target model checks all drafted tokens in one batch and
keeps the longest prefix it confirms. Evaluating several positions of a sequence at once rounds
differently in llama.cpp than one at a time, so where two tokens nearly tie the greedy text can differ
from the text without speculation (see docs/ryot.md).
Source: A. Saxena, "Prompt Lookup Decoding" (2023), github.com/apoorvumang/prompt-lookup-decoding;
llama.cpp's ``lookup`` example and ``--spec-type ngram`` follow the same idea.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence


def prompt_lookup(
    history: Sequence[int], *, draft_max: int, ngram_max: int = 3, ngram_min: int = 2
) -> list[int]:
    """Up to ``draft_max`` tokens that followed the latest earlier match of ``history``'s last n-gram.

    Args:
        history: Tokens so far (prompt and completion), oldest first.
        draft_max: Longest draft to return.
        ngram_max: Longest suffix tried first.
        ngram_min: Shortest suffix tried.

    Returns:
        The draft (empty when there is no match or ``draft_max`` < 1).
    """
    if draft_max < 1 or len(history) <= ngram_min:
        return []
    raw = array("i", history).tobytes()
    size = array("i").itemsize
    for n in range(min(ngram_max, len(history) - 1), ngram_min - 1, -1):
        pattern = raw[-n * size :]
        end = len(raw) - size  # the match must start before the suffix itself
        while True:
            at = raw.rfind(pattern, 0, end)
            if at < 0:
                break
            if at % size == 0:  # aligned to a token, not inside one
                start = at // size + n
                return list(history[start : start + draft_max])
            end = at + len(pattern) - 1
    return []
