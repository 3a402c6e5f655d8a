"""The ``language-detector`` agent: which language a text is written in, with confidences, via lingua.

lingua (P. M. Stahl, ``lingua-language-detector``, Rust with Python bindings) combines a rule-based
pre-filter (alphabets, unique characters) with character 1- to 5-gram models of 75 languages; the models
ship inside the wheel, nothing is downloaded. It is markedly more accurate than n-gram-profile detectors
on short texts (a few words). Confidence values are relative: over the candidate languages they sum to 1.

The candidate set defaults to :data:`DEFAULT_LANGUAGES` (20 widely used languages: fewer candidates is
faster and avoids confusing close relatives the caller never expects). A detector per candidate set and
accuracy mode is built once per worker process of the analysis team, lazily, in that process: loading
the high-accuracy models of 20 languages takes about 3 s; afterwards a call takes well under 10 ms for a
paragraph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from cachetools import LRUCache
from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder
from pydantic import BaseModel, Field

from agents.actor import Call
from agents.analysis._base import AnalysisAgent, AnalysisInput, AnalysisOutput, check_chars
from agents.errors import BadInputError

__all__ = (
    "DEFAULT_LANGUAGES",
    "SUPPORTED_LANGUAGES",
    "LanguageCandidate",
    "LanguageDetectorAgent",
    "LanguageInput",
    "LanguageOutput",
    "LanguageSegment",
)

DEFAULT_LANGUAGES: tuple[str, ...] = (
    "en", "zh", "es", "ar", "hi", "pt", "ru", "ja", "de", "fr",
    "it", "ko", "tr", "nl", "pl", "sv", "uk", "id", "vi", "el",
)  # fmt: skip
"""ISO 639-1 codes of the default candidate languages."""
SUPPORTED_LANGUAGES: frozenset[str] = frozenset(lang.iso_code_639_1.name.lower() for lang in Language.all())
"""ISO 639-1 codes lingua can detect (75)."""


class LanguageInput(AnalysisInput):
    """Input of ``language-detector``."""

    text: str = Field(min_length=1, description="The text, at most 200,000 characters.")
    languages: list[str] | None = Field(
        default=None,
        min_length=2,
        max_length=len(SUPPORTED_LANGUAGES),
        description="ISO 639-1 codes of the candidate languages (default: 20 widely used ones).",
    )
    top_k: int = Field(default=3, ge=1, le=20, description="Candidates to list, most likely first.")
    low_accuracy: bool = Field(
        default=False,
        description="Use only trigram models: faster and lighter, but unreliable below ~120 characters.",
    )
    mixed: bool = Field(default=False, description="Also split the text into single-language segments.")


class LanguageCandidate(AnalysisOutput):
    """One candidate language and its relative confidence."""

    language: str = Field(description="ISO 639-1 code.")
    name: str = Field(description="English name, e.g. 'French'.")
    confidence: float = Field(description="In [0, 1]; the candidates' confidences sum to 1.")


class LanguageSegment(AnalysisOutput):
    """A stretch of text in one language (``mixed`` mode)."""

    language: str
    start: int = Field(description="Offset of the first character (characters).")
    end: int = Field(description="Offset just past the last character (characters).")
    words: int


class LanguageOutput(AnalysisOutput):
    """Output of ``language-detector``."""

    language: str | None = Field(
        description="ISO 639-1 code of the most likely language; None if no letters."
    )
    name: str | None
    confidence: float
    candidates: list[LanguageCandidate]
    segments: list[LanguageSegment] | None = Field(description="Only when ``mixed`` was asked for.")
    summary: str


def _code(lang: Language) -> str:
    return lang.iso_code_639_1.name.lower()


def _name(lang: Language) -> str:
    return lang.name.capitalize()


MAX_SAMPLE_CHARS = 10_000
"""The whole-text confidences are computed on the first this many characters (plenty for lingua)."""
MAX_MIXED_CHARS = 5_000
"""Longest text split into single-language segments (``mixed``); lingua's segmentation grows faster than
linearly (a minute for 19,000 characters of English against all languages here)."""
MAX_DETECTORS = 8
"""Detectors a worker process keeps (one per candidate set and accuracy mode), least recently used out."""
_PROCESS_DETECTORS: LRUCache[tuple[frozenset[str], bool], LanguageDetector] = LRUCache(MAX_DETECTORS)
# (cachetools is not thread safe: a worker process runs one call at a time)


def build_detector(languages: frozenset[str], low_accuracy: bool) -> LanguageDetector:
    """A lingua detector for ``languages`` (ISO 639-1 codes), models preloaded (blocking)."""
    langs = [Language.from_iso_code_639_1(IsoCode639_1.from_str(code)) for code in sorted(languages)]
    builder = LanguageDetectorBuilder.from_languages(*langs)
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    return builder.with_preloaded_language_models().build()


def detect_in_process(
    languages: frozenset[str], low_accuracy: bool, text: str, top_k: int, mixed: bool
) -> dict[str, Any]:
    """:func:`detect` in a worker process, its detectors cached there (see the agent's docstring)."""
    key = (languages, low_accuracy)
    detector = _PROCESS_DETECTORS.get(key)  # a hit becomes the most recently used
    if detector is None:
        detector = _PROCESS_DETECTORS[key] = build_detector(languages, low_accuracy)
    return detect(detector, text, top_k, mixed).model_dump()


def detect(detector: LanguageDetector, text: str, top_k: int, mixed: bool) -> LanguageOutput:
    """Run ``detector`` on ``text`` (blocking; confidences on the first :data:`MAX_SAMPLE_CHARS`)."""
    values = detector.compute_language_confidence_values(text[:MAX_SAMPLE_CHARS])
    candidates = [
        LanguageCandidate(language=_code(v.language), name=_name(v.language), confidence=v.value)
        for v in values[:top_k]
        if v.value > 0.0
    ]
    segments = None
    if mixed:
        segments = [
            LanguageSegment(
                language=_code(r.language), start=r.start_index, end=r.end_index, words=r.word_count
            )
            for r in detector.detect_multiple_languages_of(text)
        ]
    best = candidates[0] if candidates else None
    summary = f"{best.name} ({best.language}, confidence {best.confidence:.2f})" if best else "undetermined"
    if segments and len({s.language for s in segments}) > 1:
        summary += "; mixed: " + ", ".join(dict.fromkeys(s.language for s in segments))
    return LanguageOutput(
        language=best.language if best else None,
        name=best.name if best else None,
        confidence=best.confidence if best else 0.0,
        candidates=candidates,
        segments=segments,
        summary=summary,
    )


class LanguageDetectorAgent(AnalysisAgent):
    """Detects the language of a text among candidate languages with lingua, with confidences.

    lingua runs in a worker process (:meth:`~AnalysisAgent.in_process`): its Rust code keeps the GIL,
    so in a thread a long text stalled every coroutine of the process for seconds.
    Each worker caches detectors per (candidate set, accuracy mode), at most :attr:`MAX_DETECTORS`, least
    recently used out; the first call of a worker pays for its start and the model load.
    """

    name = "language-detector"
    description = (
        "Detects which natural language a text is written in (ISO 639-1 code such as en, fr, de) with "
        "confidence scores, and can split mixed-language text into segments."
    )
    capabilities = ("language", "detect", "identify-language", "langid", "locale", "lang")
    input_model: ClassVar[type[BaseModel]] = LanguageInput
    output_model: ClassVar[type[BaseModel]] = LanguageOutput
    MAX_DETECTORS: ClassVar[int] = MAX_DETECTORS

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Detect the language of ``text`` (a :class:`LanguageInput`); return a :class:`LanguageOutput`.

        Raises:
            TooLargeError: ``text`` is longer than 200,000 characters (5,000 with ``mixed``).
            BadInputError: A code in ``languages`` is not one lingua knows (the field names its position).
        """
        inp: LanguageInput = call.input
        check_chars("text", inp.text)
        codes = [c.lower() for c in inp.languages] if inp.languages is not None else list(DEFAULT_LANGUAGES)
        for i, code in enumerate(codes):
            if code not in SUPPORTED_LANGUAGES:
                raise BadInputError(
                    f"{code!r} is not an ISO 639-1 code lingua can detect", field=f"languages.{i}"
                )
        if len(set(codes)) < 2:
            raise BadInputError("at least two different languages are needed", field="languages")
        if inp.mixed:
            check_chars("text", inp.text, MAX_MIXED_CHARS)
        # lingua's Rust code holds the GIL while it runs: in a thread it would stall the event loop (and
        # the API beside it) for seconds; a worker process does not, and is killed at the deadline.
        return await self.in_process(
            detect_in_process, frozenset(codes), inp.low_accuracy, inp.text, inp.top_k, inp.mixed
        )
