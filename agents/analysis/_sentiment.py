"""The ``sentiment`` agent: VADER polarity of a whole text and of each of its sentences.

VADER (Valence Aware Dictionary and sEntiment Reasoner): C. J. Hutto and E. Gilbert, "VADER: A
Parsimonious Rule-based Model for Sentiment Analysis of Social Media Text", ICWSM 2014. A lexicon of
~7,500 rated words and emoticons plus rules for negation, intensifiers, "but" and capitalisation; no
model download, English only. Labels use the authors' thresholds: compound ≥ 0.05 positive, ≤ -0.05
negative, neutral in between. Texts longer than :data:`WHOLE_TEXT_MAX_CHARS` are scored as the mean of
their sentences (the VADER authors' advice for long texts; one pass would be quadratic).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from agents.actor import Call
from agents.analysis._base import MAX_LISTED, AnalysisAgent, AnalysisInput, AnalysisOutput, check_chars
from agents.analysis._text import sentence_spans
from agents.errors import BadInputError

__all__ = (
    "NEGATIVE_THRESHOLD",
    "POSITIVE_THRESHOLD",
    "WHOLE_TEXT_MAX_CHARS",
    "SentenceSentiment",
    "SentimentAgent",
    "SentimentInput",
    "LinearVader",
    "SentimentOutput",
    "score_sentiment",
    "sentiment_label",
)

POSITIVE_THRESHOLD = 0.05
"""Compound score at or above which a text is ``positive`` (Hutto & Gilbert 2014)."""
NEGATIVE_THRESHOLD = -0.05
"""Compound score at or below which a text is ``negative`` (Hutto & Gilbert 2014)."""
WHOLE_TEXT_MAX_CHARS = 20_000
"""Longest text VADER scores in one pass, in characters (its rules are quadratic in the words: 20,000
characters take ~60 ms, 100,000 take ~2 s). Longer texts get the mean of their sentences' scores, and
so does any single sentence's score past this length, truncated."""

Label = Literal["positive", "negative", "neutral"]


def sentiment_label(compound: float) -> Label:
    """``positive``/``negative``/``neutral`` for a VADER compound score in [-1, 1]."""
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


class SentimentInput(AnalysisInput):
    """Input of ``sentiment``."""

    text: str = Field(min_length=1, description="English text, at most 200,000 characters.")
    per_sentence: bool = Field(default=True, description="Also score each sentence.")


class SentenceSentiment(AnalysisOutput):
    """The polarity of one sentence, with its character offsets into the input."""

    start: int
    end: int
    text: str
    label: Label
    compound: float = Field(description="Normalised sum of valences, in [-1, 1].")
    pos: float = Field(description="Share of the text that is positive, in [0, 1].")
    neu: float = Field(description="Share of the text that is neutral, in [0, 1].")
    neg: float = Field(description="Share of the text that is negative, in [0, 1].")


class SentimentOutput(AnalysisOutput):
    """Output of ``sentiment``: whole-text scores, per-sentence scores and the most extreme sentences."""

    label: Label
    compound: float = Field(description="Normalised sum of valences of the whole text, in [-1, 1].")
    pos: float
    neu: float
    neg: float
    method: Literal["whole_text", "sentence_mean"] = Field(
        description="How the overall scores were made: one VADER pass, or the mean over sentences "
        f"(texts over {WHOLE_TEXT_MAX_CHARS:,} characters)."
    )
    sentences: list[SentenceSentiment] = Field(description=f"At most {MAX_LISTED}, in text order.")
    sentences_total: int
    most_positive: int | None = Field(description="Index into ``sentences`` of the highest compound.")
    most_negative: int | None = Field(description="Index into ``sentences`` of the lowest compound.")
    summary: str


class LinearVader(SentimentIntensityAnalyzer):  # type: ignore[misc]  # (vaderSentiment is untyped)
    """VADER whose two per-word checks get the few words they read, not the whole text: same scores.

    vaderSentiment 3.3.2's ``_negation_check`` and ``_special_idioms_check`` lower-case every word of the
    text on each call (up to three calls per sentiment word), which made a pass quadratic in the words: 99 %
    of the time of a 20,000-character text. They read at most the three words before word ``i`` and the
    two after it: from ``i = 3`` on they are given just those words, with ``i`` shifted to match (below,
    the whole list, as upstream).
    """

    @staticmethod
    def _negation_check(valence: float, words_and_emoticons: list[str], start_i: int, i: int) -> float:
        check = SentimentIntensityAnalyzer._negation_check
        out: float = (
            check(valence, words_and_emoticons, start_i, i)
            if i < 3
            else check(valence, words_and_emoticons[i - 3 : i + 1], start_i, 3)
        )
        return out

    @staticmethod
    def _special_idioms_check(valence: float, words_and_emoticons: list[str], i: int) -> float:
        check = SentimentIntensityAnalyzer._special_idioms_check
        out: float = (
            check(valence, words_and_emoticons, i)
            if i < 3
            else check(valence, words_and_emoticons[i - 3 : i + 3], 3)
        )
        return out


@functools.cache  # (two threads starting at once may each build one: harmless)
def _analyzer() -> SentimentIntensityAnalyzer:
    """The process's VADER analyser, built on first use (lexicon load, ~30 ms) and only read after."""
    return LinearVader()


def score_sentiment(text: str, per_sentence: bool) -> dict[str, Any]:
    """Score ``text`` (blocking; the agent calls it in a worker thread or process).

    Returns:
        A :class:`SentimentOutput` as JSON-ready data (made here, not on the caller's event loop).
    """
    analyzer = _analyzer()
    whole = len(text) <= WHOLE_TEXT_MAX_CHARS
    spans = sentence_spans(text) if per_sentence or not whole else []
    scored: list[SentenceSentiment] = []
    for span in spans if not whole else spans[:MAX_LISTED]:
        s = analyzer.polarity_scores(span.text[:WHOLE_TEXT_MAX_CHARS])
        scored.append(
            SentenceSentiment(
                start=span.start,
                end=span.end,
                text=span.text,
                label=sentiment_label(s["compound"]),
                compound=s["compound"],
                pos=s["pos"],
                neu=s["neu"],
                neg=s["neg"],
            )
        )
    if whole:
        overall = analyzer.polarity_scores(text)
    else:  # VADER is quadratic in the words of one call: average the sentences instead
        overall = {
            k: sum(getattr(x, k) for x in scored) / len(scored) for k in ("compound", "pos", "neu", "neg")
        }
    sentences = scored[:MAX_LISTED] if per_sentence else []
    most_pos = max(range(len(sentences)), key=lambda i: sentences[i].compound, default=None)
    most_neg = min(range(len(sentences)), key=lambda i: sentences[i].compound, default=None)
    label = sentiment_label(overall["compound"])
    summary = f"{label} (compound {overall['compound']:+.3f})"
    if sentences:
        counts = {k: sum(x.label == k for x in sentences) for k in ("positive", "negative", "neutral")}
        summary += "; sentences: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    return SentimentOutput(
        label=label,
        compound=overall["compound"],
        pos=overall["pos"],
        neu=overall["neu"],
        neg=overall["neg"],
        method="whole_text" if whole else "sentence_mean",
        sentences=sentences,
        sentences_total=len(spans),
        most_positive=most_pos,
        most_negative=most_neg,
        summary=summary,
    ).model_dump()


class SentimentAgent(AnalysisAgent):
    """Scores the sentiment of an English text with VADER (Hutto & Gilbert 2014), overall and per sentence.

    A text of :data:`~agents.analysis._base.PROCESS_MIN_CHARS` characters or more is scored in the team's
    worker process, a shorter one in a worker thread (:meth:`~AnalysisAgent.in_worker`); each builds its
    analyser on first use.
    """

    name = "sentiment"
    description = (
        "Scores the sentiment of English text with VADER: positive, negative or neutral, with compound "
        "and positive/neutral/negative shares for the whole text and for each sentence."
    )
    capabilities = ("sentiment", "polarity", "tone", "emotion", "opinion", "feeling", "feel", "mood")
    input_model: ClassVar[type[BaseModel]] = SentimentInput
    output_model: ClassVar[type[BaseModel]] = SentimentOutput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Score ``text`` (a :class:`SentimentInput`); return a :class:`SentimentOutput` as JSON.

        Raises:
            TooLargeError: ``text`` is longer than 200,000 characters.
            BadInputError: ``text`` is only white space.
        """
        inp: SentimentInput = call.input
        check_chars("text", inp.text)
        if not inp.text.strip():
            raise BadInputError("must not be only white space", field="text")
        return await self.in_worker(len(inp.text), score_sentiment, inp.text, inp.per_sentence)
