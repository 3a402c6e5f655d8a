"""The ``keyword-extractor`` agent: unsupervised keyphrase extraction with YAKE.

YAKE (Yet Another Keyword Extractor): R. Campos, V. Mangaravite, A. Pasquali, A. Jorge, C. Nunes and
A. Jatowt, "YAKE! Keyword extraction from single documents using multiple local features", Information
Sciences 509 (2020). It scores candidate n-grams from statistics of the one document (casing, position,
frequency, context diversity, spread over sentences); no corpus, no model. **A lower score means a more
relevant keyphrase.** Stop-word lists ship with the ``yake`` package for the languages in
:data:`YAKE_LANGUAGES`.

The extraction (:func:`extract_keyphrases`) runs in the team's worker process: on 200,000 characters of
prose YAKE makes ~100,000 long-lived objects, which trigger full garbage collections of the process's heap
(0.3-0.4 s each with the GIL held in a process that loaded torch, ``benchmarks/analysis_stalls.py``); in a
thread that stalled the event loop of the agents' process (and the API beside it) as long.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from agents.actor import Call
from agents.analysis._base import AnalysisAgent, AnalysisInput, AnalysisOutput, check_chars
from agents.analysis._text import has_words, words, yake_stopwords_dir
from agents.errors import BadInputError

__all__ = (
    "MAX_TOP_K",
    "YAKE_LANGUAGES",
    "KeyphraseOut",
    "KeywordExtractorAgent",
    "KeywordsInput",
    "KeywordsOutput",
)

MAX_TOP_K = 100
"""Most keyphrases one call returns (count)."""


def _yake_languages() -> frozenset[str]:
    folder = yake_stopwords_dir()
    names = (p.name for p in folder.iterdir())
    codes = {n.removeprefix("stopwords_").removesuffix(".txt") for n in names if n.startswith("stopwords_")}
    codes.discard("noLang")
    return frozenset(codes)


_ISO_TO_YAKE = {"cs": "cz"}
"""ISO 639-1 codes whose YAKE stop-word file has another name (Czech ships as ``cz``)."""
YAKE_LANGUAGES = frozenset(_yake_languages() | _ISO_TO_YAKE.keys())
"""ISO 639-1 codes with a stop-word list in the installed ``yake`` (``en``, ``fr``, ``de``, ...)."""


class KeywordsInput(AnalysisInput):
    """Input of ``keyword-extractor``."""

    text: str = Field(min_length=1, description="The document, at most 200,000 characters.")
    top_k: int = Field(default=10, ge=1, le=MAX_TOP_K, description="Keyphrases to return.")
    language: str = Field(
        default="en", pattern=r"^[a-z]{2}$", description="ISO 639-1 code choosing the stop-word list."
    )
    max_ngram: int = Field(default=3, ge=1, le=5, description="Longest keyphrase, in words.")
    dedup_threshold: float = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="Candidates more similar than this to a better one are dropped (1.0 keeps all).",
    )


class KeyphraseOut(AnalysisOutput):
    """One keyphrase: the text as it appears, its YAKE score (lower = more relevant) and occurrences."""

    phrase: str
    score: float = Field(description="YAKE score, > 0; lower is more relevant.")
    occurrences: int = Field(description="Case-insensitive whole-word occurrences in the text.")


class KeywordsOutput(AnalysisOutput):
    """Output of ``keyword-extractor``: keyphrases, most relevant (lowest score) first."""

    keyphrases: list[KeyphraseOut]
    language: str
    max_ngram: int
    summary: str


def _occurrences(tokens: list[str], phrase: str) -> int:
    target = words(phrase)
    n = len(target)
    if not n:
        return 0
    return sum(tokens[i : i + n] == target for i in range(len(tokens) - n + 1))


def extract_keyphrases(inp: KeywordsInput) -> KeywordsOutput:
    """Run YAKE on ``inp.text`` (blocking; the agent calls it in the team's worker process)."""
    import yake  # noqa: PLC0415 - heavy (networkx); loaded on the first call, not with the roster

    extractor = yake.KeywordExtractor(
        lan=_ISO_TO_YAKE.get(inp.language, inp.language),
        n=inp.max_ngram,
        dedup_lim=inp.dedup_threshold,
        top=inp.top_k,
    )
    found = extractor.extract_keywords(inp.text)
    tokens = words(inp.text)
    phrases = [
        KeyphraseOut(phrase=str(p), score=float(s), occurrences=_occurrences(tokens, str(p)))
        for p, s in sorted(found, key=lambda ps: float(ps[1]))
    ]
    summary = ", ".join(k.phrase for k in phrases[:5]) if phrases else "no keyphrases found"
    return KeywordsOutput(keyphrases=phrases, language=inp.language, max_ngram=inp.max_ngram, summary=summary)


class KeywordExtractorAgent(AnalysisAgent):
    """Extracts the top-k keyphrases of a document with YAKE (Campos et al. 2020); lower score = better."""

    name = "keyword-extractor"
    description = (
        "Extracts the most relevant keywords and keyphrases (1 to 5 words) of a document with YAKE, "
        "ranked by relevance, in about 30 languages."
    )
    capabilities = ("keywords", "keyphrases", "topics", "tags", "extract")
    input_model: ClassVar[type[BaseModel]] = KeywordsInput
    output_model: ClassVar[type[BaseModel]] = KeywordsOutput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Extract keyphrases from ``text`` (a :class:`KeywordsInput`); return a :class:`KeywordsOutput`.

        Raises:
            TooLargeError: ``text`` is longer than 200,000 characters.
            BadInputError: ``language`` has no stop-word list, or ``text`` has no words.
        """
        inp: KeywordsInput = call.input
        check_chars("text", inp.text)
        if inp.language not in YAKE_LANGUAGES:
            supported = ", ".join(sorted(YAKE_LANGUAGES))
            raise BadInputError(
                f"no stop-word list for {inp.language!r} (supported: {supported})", field="language"
            )
        if not has_words(inp.text):
            raise BadInputError("has no words", field="text")
        # YAKE's objects trigger full collections of this process's heap (~0.3 s, GIL held): not in a thread.
        out = await self.in_process(extract_keyphrases, inp)
        return out.model_dump()
