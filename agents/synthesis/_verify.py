"""The ``verifier`` agent: is each sentence of an answer supported by the context it was drawn from?

A lexical groundedness check, deterministic and model-free (in the spirit of the token-overlap "context
recall" measures of RAG evaluation, e.g. RAGAS, Es et al. 2023, without its LLM judge):

* the answer and the context are split into sentences;
* a sentence's **support** is the recall of its content words (stop words and numbers dropped, light
  stemming) in the best-matching context sentence: |words(s) ∩ words(c)| / |words(s)|, maximised
  over the context sentences c;
* every number of the sentence must appear (canonically: ``1,000`` = ``1000``) somewhere in the context;
* a sentence is supported when support ≥ ``threshold`` and its numbers are found. Sentences without any
  content word ("Yes.") count as supported when their numbers are found.

The verdict is ``supported`` when every sentence is, ``unsupported`` when none is, else
``partially_supported``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from agents.actor import Call
from agents.synthesis._base import SynthesisAgent
from agents.synthesis._text import content_words, numbers, split_sentences
from agents.synthesis._wire import SentenceCheck, VerifyInput, VerifyOutput

__all__ = ("VerifierAgent", "verify")


def verify(answer: str, context: str | list[str], *, threshold: float = 0.5) -> VerifyOutput:
    """Check every sentence of ``answer`` against ``context`` (see the module docstring).

    Args:
        answer: The text to check.
        context: The source text, or several source texts.
        threshold: Least support of a supported sentence, in [0, 1].
    """
    texts = [context] if isinstance(context, str) else list(context)
    context_sentences = [s for t in texts for s in split_sentences(t)]
    indexed = [(s, content_words(s)) for s in context_sentences]
    context_numbers = {n for t in texts for n in numbers(t)}
    checks: list[SentenceCheck] = []
    for sentence in split_sentences(answer):
        words = content_words(sentence)
        nums = numbers(sentence)
        numbers_ok = all(n in context_numbers for n in nums)
        if not words:
            checks.append(
                SentenceCheck(
                    text=sentence, support=1.0, best_match=None, numbers_ok=numbers_ok, supported=numbers_ok
                )
            )
            continue
        best, best_support = None, 0.0
        for candidate, candidate_words in indexed:
            support = len(words & candidate_words) / len(words)
            if support > best_support:
                best, best_support = candidate, support
        checks.append(
            SentenceCheck(
                text=sentence,
                support=round(best_support, 4),
                best_match=best,
                numbers_ok=numbers_ok,
                supported=numbers_ok and best_support >= threshold,
            )
        )
    supported = sum(c.supported for c in checks)
    ratio = supported / len(checks) if checks else 0.0
    verdict: Literal["supported", "partially_supported", "unsupported"]
    if checks and supported == len(checks):
        verdict = "supported"
    elif supported:
        verdict = "partially_supported"
    else:
        verdict = "unsupported"
    return VerifyOutput(supported_ratio=round(ratio, 4), verdict=verdict, sentences=checks)


class VerifierAgent(SynthesisAgent):
    """Checks that an answer's sentences and numbers are supported by a context (no model involved)."""

    name = "verifier"
    description = (
        "Checks whether each sentence of an answer is supported by a context: word overlap with the "
        "best-matching context sentence and every number found in the context."
    )
    capabilities = ("verify", "fact-check", "grounding", "hallucination")
    input_model: ClassVar[type[BaseModel]] = VerifyInput
    output_model: ClassVar[type[BaseModel]] = VerifyOutput
    text_input = "answer"
    text_output = None

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Verify ``answer`` against ``context`` with ``threshold``."""
        inp: VerifyInput = call.input
        return verify(inp.answer, inp.context, threshold=inp.threshold).model_dump()
