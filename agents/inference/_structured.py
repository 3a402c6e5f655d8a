"""The ``classifier`` and ``extractor`` agents: answers constrained by a GBNF grammar.

llama.cpp's grammar sampler masks every token that would leave the grammar, so a greedy answer is always
a sentence of it: one of the labels, or a JSON document of the schema (see `ryot.grammar`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from anyio import to_thread
from pydantic import ConfigDict, Field, StringConstraints, field_validator

from agents.actor import Call
from agents.errors import AgentFailedError, BadInputError
from agents.inference._base import (
    MAX_TEXT_CHARS,
    PROMPT_OVERHEAD_TOKENS,
    TEXT_INPUT_BYTES,
    MaxTokens,
    ModelName,
    WireModel,
    ensure_fits,
)
from agents.inference._generator import InferenceAgent, usage_out
from agents.protocol import UsageOut
from ryot import RyotError, SamplingParams, grammar_from_json_schema

__all__ = (
    "ClassifierAgent",
    "ClassifyInput",
    "ClassifyOutput",
    "ExtractInput",
    "ExtractOutput",
    "ExtractorAgent",
    "labels_grammar",
)

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _gbnf_literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def labels_grammar(labels: list[str]) -> str:
    """A GBNF grammar whose sentences are exactly the labels, each optionally after one space.

    The space lets the model start the answer the way it writes a word after ``Label:``.
    """
    return 'root ::= " "? (' + " | ".join(_gbnf_literal(label) for label in labels) + ")\n"


class ClassifyInput(WireModel):
    """Input of ``classifier``."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    """The text to classify."""
    labels: list[Label] = Field(min_length=2, max_length=50)
    """The classes, 2 to 50 distinct labels of 1 to 100 characters (no line breaks)."""
    question: str | None = Field(default=None, max_length=200)
    """What the labels answer (e.g. ``sentiment``, ``topic``), to sharpen the prompt."""
    model: ModelName = None
    """Name of the model to use (one of the configured Ryot models); ``None``: the default model."""

    @field_validator("labels")
    @classmethod
    def _distinct_single_line(cls, labels: list[str]) -> list[str]:
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be distinct")
        if any(ch in label for label in labels for ch in "\r\n\t"):
            raise ValueError("labels must not contain line breaks or tabs")
        return labels


class ClassifyOutput(WireModel):
    """Output of ``classifier``."""

    label: str
    """One of the input labels, always."""
    index: int
    """Position of ``label`` in the input labels."""
    usage: UsageOut


class ClassifierAgent(InferenceAgent):
    """Zero-shot classification: the model picks one label, forced by a grammar of the labels."""

    name = "classifier"
    description = "Classifies a text into exactly one of the given labels (zero-shot) with the local LLM."
    capabilities = ("classify", "classification", "categorize", "label", "tag", "route", "intent")
    input_model: ClassVar[type[ClassifyInput]] = ClassifyInput
    max_input_bytes = TEXT_INPUT_BYTES
    output_model = ClassifyOutput
    text_output = "label"

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Classify ``call.input`` (a :class:`ClassifyInput`) greedily under the labels' grammar.

        Raises:
            TooLargeError: The text does not fit the context window (field ``text``).
        """
        inp: ClassifyInput = call.input
        model = self.resolve_model(inp.model)
        # Under a grammar the model may spell a label in any tokenization, down to one byte per token:
        # the label's bytes, the optional space and the end-of-generation token bound the answer.
        max_tokens = max(len(label.encode()) for label in inp.labels) + 2
        options = ", ".join(inp.labels)
        reserve = max_tokens + PROMPT_OVERHEAD_TOKENS + len(options) // 2
        text = " ".join(inp.text.split())
        await ensure_fits(self.bridge, text, field="text", reserve_tokens=reserve, model=model)
        what = inp.question.strip() if inp.question else "Label"
        prompt = f"Classify the text. Options: {options}.\nText: {text}\n{what} (one of {options}):"
        params = SamplingParams(max_tokens=max_tokens, temperature=0.0, grammar=labels_grammar(inp.labels))
        finished = await self.generate(call, prompt, params, prompt_field="text", model=model)
        answer = finished.text.strip()
        if answer not in inp.labels:  # pragma: no cover - the grammar and max_tokens rule this out
            raise AgentFailedError(f"the model answered {answer!r}, which is not a label")
        return ClassifyOutput(
            label=answer, index=inp.labels.index(answer), usage=usage_out(finished)
        ).model_dump()


def _fields_hint(schema: Mapping[str, Any]) -> str:
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        return ""
    parts = []
    for key, sub in props.items():
        kind = sub.get("type") if isinstance(sub, Mapping) else None
        parts.append(f"{key} ({kind})" if isinstance(kind, str) else str(key))
    return "Fields: " + ", ".join(parts) + "\n"


class ExtractInput(WireModel):
    """Input of ``extractor``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    """The text to extract from."""
    json_schema: dict[str, Any] = Field(alias="schema")
    """JSON Schema of the result, an object (``"type": "object"``, usually with ``properties``)."""
    max_tokens: MaxTokens = 256
    """Upper bound on the JSON document, in tokens."""
    model: ModelName = None
    """Name of the model to use (one of the configured Ryot models); ``None``: the default model."""


class ExtractOutput(WireModel):
    """Output of ``extractor``."""

    data: dict[str, Any]
    """The extracted object; it is valid for the schema (generated under the schema's grammar)."""
    text: str
    """The same object as JSON text, as the model wrote it."""
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: UsageOut


class ExtractorAgent(InferenceAgent):
    """Extracts a JSON object valid for a given JSON Schema from a text (grammar-constrained decoding)."""

    name = "extractor"
    description = "Extracts structured data from text as a JSON object that follows a given JSON Schema."
    capabilities = ("extract", "extraction", "json", "schema", "structured", "parse", "fields")
    input_model: ClassVar[type[ExtractInput]] = ExtractInput
    max_input_bytes = TEXT_INPUT_BYTES
    output_model = ExtractOutput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Extract from ``call.input`` (an :class:`ExtractInput`) greedily under the schema's grammar.

        Raises:
            BadInputError: The schema is not an object schema or cannot become a grammar (field
                ``schema``); the JSON did not fit ``max_tokens`` (field ``max_tokens``).
            TooLargeError: The text does not fit the context window (field ``text``).
        """
        inp: ExtractInput = call.input
        model = self.resolve_model(inp.model)
        schema = inp.json_schema
        if schema.get("type") != "object":
            raise BadInputError('the schema must describe an object ("type": "object")', field="schema")
        try:
            grammar = await to_thread.run_sync(grammar_from_json_schema, schema)
        except RyotError as exc:
            raise BadInputError(f"unsupported schema: {exc}", field="schema") from exc
        text = inp.text.strip()
        hint = _fields_hint(schema)
        reserve = inp.max_tokens + PROMPT_OVERHEAD_TOKENS + len(hint) // 2
        await ensure_fits(self.bridge, text, field="text", reserve_tokens=reserve, model=model)
        prompt = f"Extract the data from the text as JSON.\n{hint}Text: {text}\nJSON:"
        params = SamplingParams(max_tokens=inp.max_tokens, temperature=0.0, grammar=grammar)
        try:
            finished = await self.generate(call, prompt, params, prompt_field="text", model=model)
        except BadInputError as exc:
            if exc.field == "grammar":  # llama.cpp refused the converted grammar
                raise BadInputError(f"unsupported schema: {exc.message}", field="schema") from exc
            raise
        if finished.finish_reason == "length":
            raise BadInputError(
                f"the JSON did not fit in max_tokens={inp.max_tokens} tokens; allow more", field="max_tokens"
            )
        try:
            data = json.loads(finished.text)
        except ValueError as exc:  # pragma: no cover - the grammar only admits complete JSON
            raise AgentFailedError(f"the model's JSON does not parse: {exc}") from exc
        if not isinstance(data, dict):  # pragma: no cover - an object schema's grammar yields objects
            raise AgentFailedError("the model's JSON is not an object")
        return ExtractOutput(
            data=data,
            text=finished.text.strip(),
            finish_reason=finished.finish_reason,
            usage=usage_out(finished),
        ).model_dump(by_alias=True)
