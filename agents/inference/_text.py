"""The ``summarizer`` and ``translator`` agents: text in, shorter or translated text out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from agents.actor import Call
from agents.errors import BadInputError
from agents.inference._base import (
    DEFAULT_MAX_TOKENS,
    MAX_TEXT_CHARS,
    MAX_TOKENS_LIMIT,
    PROMPT_OVERHEAD_TOKENS,
    TEXT_INPUT_BYTES,
    MaxTokens,
    ModelName,
    WireModel,
    ensure_fits,
)
from agents.inference._generator import InferenceAgent, usage_out
from agents.protocol import UsageOut
from ryot import SamplingParams

__all__ = (
    "LANGUAGES",
    "SummarizerAgent",
    "SummarizeInput",
    "SummarizeOutput",
    "TranslateInput",
    "TranslateOutput",
    "TranslatorAgent",
    "resolve_language",
    "trim_summary",
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def trim_summary(text: str, *, max_sentences: int, max_words: int | None) -> str:
    """``text`` cut to its first ``max_sentences`` sentences, then to ``max_words`` words."""
    sentences = [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]
    out = " ".join(sentences[:max_sentences])
    if max_words is not None:
        words = out.split()
        if len(words) > max_words:
            out = " ".join(words[:max_words])
    return out


class SummarizeInput(WireModel):
    """Input of ``summarizer``."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    """The text to summarize (it must fit the model's context window with the summary)."""
    max_sentences: int = Field(default=3, ge=1, le=20)
    """The summary has at most this many sentences."""
    max_words: int | None = Field(default=None, ge=1, le=1000)
    """The summary has at most this many words, if set."""
    max_tokens: MaxTokens | None = None
    """Tokens the model may generate; by default derived from the limits above."""
    model: ModelName = None
    """Name of the model to use (one of the configured Ryot models); ``None``: the default model."""


class SummarizeOutput(WireModel):
    """Output of ``summarizer``."""

    summary: str
    sentences: int
    words: int
    input_tokens: int
    """Tokens of the input text (BOS included)."""
    output_tokens: int
    """Tokens the model generated."""
    method: Literal["model", "lead"]
    """``model``: written by the model; ``lead``: the model wrote nothing, so the text's first sentences."""
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: UsageOut


class SummarizerAgent(InferenceAgent):
    """Summarizes a text with the model, within a number of sentences and words."""

    name = "summarizer"
    description = "Summarizes a text into a few sentences with the local LLM."
    capabilities = ("summarize", "summary", "summarise", "condense", "shorten", "tldr", "digest")
    input_model: ClassVar[type[SummarizeInput]] = SummarizeInput
    max_input_bytes = TEXT_INPUT_BYTES
    output_model = SummarizeOutput
    text_output = "summary"

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Summarize ``call.input`` (a :class:`SummarizeInput`), streaming the model's text.

        Raises:
            TooLargeError: The text does not fit the context window (field ``text``, limit in tokens).
        """
        inp: SummarizeInput = call.input
        model = self.resolve_model(inp.model)
        if inp.max_tokens is not None:
            max_tokens = inp.max_tokens
        elif inp.max_words is not None:
            max_tokens = min(2 * inp.max_words + 16, MAX_TOKENS_LIMIT)
        else:
            max_tokens = min(48 * inp.max_sentences, MAX_TOKENS_LIMIT)
        text = inp.text.strip()
        input_tokens = await ensure_fits(
            self.bridge,
            text,
            field="text",
            reserve_tokens=max_tokens + PROMPT_OVERHEAD_TOKENS,
            model=model,
        )
        # A base model summarizes best when the text is followed by the conventional "TL;DR:" cue.
        prompt = f"Text: {text}\n\nTL;DR:"
        params = SamplingParams(max_tokens=max_tokens, temperature=0.0, stop=("\n\n",))
        finished = await self.generate(call, prompt, params, prompt_field="text", model=model)
        summary = trim_summary(finished.text, max_sentences=inp.max_sentences, max_words=inp.max_words)
        method: Literal["model", "lead"] = "model"
        if not summary:
            summary, method = (
                trim_summary(text, max_sentences=inp.max_sentences, max_words=inp.max_words),
                "lead",
            )
        return SummarizeOutput(
            summary=summary,
            sentences=len([s for s in _SENTENCE_END.split(summary) if s]),
            words=len(summary.split()),
            input_tokens=input_tokens,
            output_tokens=finished.usage.completion_tokens,
            method=method,
            finish_reason=finished.finish_reason,
            usage=usage_out(finished),
        ).model_dump()


LANGUAGES: dict[str, tuple[str, str]] = {
    "ar": ("Arabic", "صباح الخير."),
    "cs": ("Czech", "Dobré ráno."),
    "da": ("Danish", "God morgen."),
    "de": ("German", "Guten Morgen."),
    "el": ("Greek", "Καλημέρα."),
    "en": ("English", "Good morning."),
    "es": ("Spanish", "Buenos días."),
    "fi": ("Finnish", "Hyvää huomenta."),
    "fr": ("French", "Bonjour."),
    "he": ("Hebrew", "בוקר טוב."),
    "hi": ("Hindi", "सुप्रभात।"),
    "hu": ("Hungarian", "Jó reggelt."),
    "id": ("Indonesian", "Selamat pagi."),
    "it": ("Italian", "Buongiorno."),
    "ja": ("Japanese", "おはようございます。"),
    "ko": ("Korean", "좋은 아침입니다."),
    "nl": ("Dutch", "Goedemorgen."),
    "no": ("Norwegian", "God morgen."),
    "pl": ("Polish", "Dzień dobry."),
    "pt": ("Portuguese", "Bom dia."),
    "ro": ("Romanian", "Bună dimineața."),
    "ru": ("Russian", "Доброе утро."),
    "sv": ("Swedish", "God morgon."),
    "tr": ("Turkish", "Günaydın."),
    "uk": ("Ukrainian", "Доброго ранку."),
    "vi": ("Vietnamese", "Chào buổi sáng."),
    "zh": ("Chinese", "早上好。"),
}
"""Supported languages: ISO 639-1 code → (English name, "Good morning." in it, the one-shot example)."""

_BY_NAME = {name.lower(): code for code, (name, _) in LANGUAGES.items()}


def resolve_language(value: str, *, field: str) -> str:
    """The ISO 639-1 code of a language given by code or English name (any case).

    Raises:
        BadInputError: Not a supported language (the message lists them), naming ``field``.
    """
    key = value.strip().lower()
    if key in LANGUAGES:
        return key
    if key in _BY_NAME:
        return _BY_NAME[key]
    supported = ", ".join(f"{code} ({name})" for code, (name, _) in LANGUAGES.items())
    raise BadInputError(f"unsupported language {value!r}; supported: {supported}", field=field)


class TranslateInput(WireModel):
    """Input of ``translator``."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    """The text to translate."""
    target: str = Field(min_length=1, max_length=40)
    """Language to translate into: an ISO 639-1 code (``fr``) or an English name (``French``)."""
    source: str | None = Field(default=None, max_length=40)
    """Language of the text, if known (same forms as ``target``)."""
    max_tokens: MaxTokens | None = None
    """Tokens the model may generate; by default twice the text's tokens plus 16."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature; the default 0 is greedy (deterministic)."""
    model: ModelName = None
    """Name of the model to use (one of the configured Ryot models); ``None``: the default model."""


class TranslateOutput(WireModel):
    """Output of ``translator``."""

    translation: str
    target: str
    """ISO 639-1 code of the target language."""
    target_name: str
    source: str | None
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: UsageOut


class TranslatorAgent(InferenceAgent):
    """Translates a text into one of the supported languages with a one-shot prompt."""

    name = "translator"
    description = "Translates text into another language (by name or ISO code) with the local LLM."
    capabilities = ("translate", "translation", "language", "localize", "multilingual")
    input_model: ClassVar[type[TranslateInput]] = TranslateInput
    max_input_bytes = TEXT_INPUT_BYTES
    output_model = TranslateOutput
    text_output = "translation"

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Translate ``call.input`` (a :class:`TranslateInput`), streaming the translation.

        Raises:
            BadInputError: Unsupported ``target`` or ``source`` language.
            TooLargeError: The text does not fit the context window (field ``text``).
        """
        inp: TranslateInput = call.input
        model = self.resolve_model(inp.model)
        target = resolve_language(inp.target, field="target")
        source = resolve_language(inp.source, field="source") if inp.source is not None else None
        text = inp.text.strip()
        tokens = await ensure_fits(
            self.bridge, text, field="text", reserve_tokens=PROMPT_OVERHEAD_TOKENS, model=model
        )
        max_tokens = inp.max_tokens or min(2 * tokens + 16, MAX_TOKENS_LIMIT, DEFAULT_MAX_TOKENS * 8)
        await ensure_fits(
            self.bridge, text, field="text", reserve_tokens=max_tokens + PROMPT_OVERHEAD_TOKENS, model=model
        )
        name, example = LANGUAGES[target]
        label = LANGUAGES[source][0] if source is not None else "Text"
        example_source = "Good morning." if source is None else LANGUAGES[source][1]
        prompt = (
            f"Translate into {name}.\n{label}: {example_source}\n{name}: {example}\n{label}: {text}\n{name}:"
        )
        lines = text.count("\n") + 1
        # One line in, one line out; a multi-line text ends where the model starts a new example.
        stop = ("\n",) if lines == 1 else (f"\n{label}:", "\n\n\n")
        params = SamplingParams(max_tokens=max_tokens, temperature=inp.temperature, stop=stop)
        finished = await self.generate(call, prompt, params, prompt_field="text", model=model)
        translation = "\n".join(finished.text.strip().split("\n")[:lines]).strip()
        return TranslateOutput(
            translation=translation,
            target=target,
            target_name=name,
            source=source,
            finish_reason=finished.finish_reason,
            usage=usage_out(finished),
        ).model_dump()
