"""Request body of ``POST /v1/responses`` (OpenAI's Responses API) and its input items.

Fields and shapes follow https://platform.openai.com/docs/api-reference/responses/create and the
``openai`` package's ``types/responses``. Served: ``input`` (text, or items: messages with text parts,
``function_call`` and ``function_call_output``; ``reasoning`` items are skipped), ``instructions``,
``max_output_tokens``, ``temperature``, ``top_p``, ``stream``, function ``tools``, ``tool_choice``,
``parallel_tool_calls``, ``text.format`` (``text``, ``json_object``, ``json_schema``). Accepted and
ignored: ``store`` (nothing is stored), ``metadata`` (echoed), ``user``, ``reasoning``, ``truncation``,
``include``, ``service_tier``, ``safety_identifier``, ``prompt_cache_key``, ``prompt_cache_retention``,
``max_tool_calls``, ``stream_options``, ``text.verbosity``. Refused with 400 naming them: what needs
stored state (``previous_response_id``, ``conversation``, ``prompt``, ``background``), ``top_logprobs``,
tools other than functions, and non-text input (images, files, audio). Unknown fields: 400.

Pure pydantic: no web framework imported.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.generate.schemas import MAX_PROMPT_CHARS

__all__ = (
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "InputContentPart",
    "InputMessageItem",
    "ResponseText",
    "ResponsesRequest",
)

_Text = Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Item(BaseModel):
    """An input item; fields it does not use are ignored.

    So an earlier response's output items can be sent back as they are (the pattern of OpenAI's
    examples; output items gain fields between releases).
    """

    model_config = ConfigDict(extra="ignore")


class InputContentPart(BaseModel):
    """A part of a message's ``content``: ``input_text`` / ``output_text`` (served), ``refusal``, others.

    ``input_image``, ``input_file`` and ``input_audio`` are refused with 400 naming the part.
    """

    model_config = ConfigDict(extra="allow")

    type: str
    text: _Text | None = None
    refusal: _Text | None = None

    def as_text(self) -> str | None:
        """The part's text; ``None`` for a kind that is not text."""
        if self.type in ("input_text", "output_text", "text"):
            return self.text or ""
        if self.type == "refusal":
            return self.refusal or ""
        return None


class InputMessageItem(_Item):
    """A message of ``input`` (``type`` ``message`` or absent), also an earlier response's output message."""

    type: Literal["message"] | None = None
    role: Literal["user", "system", "developer", "assistant"]
    content: _Text | list[InputContentPart]
    id: str | None = None
    status: str | None = None
    phase: str | None = None


class FunctionCallItem(_Item):
    """A call the model made in an earlier turn (an earlier response's ``function_call`` output item)."""

    type: Literal["function_call"]
    call_id: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=256)
    arguments: _Text
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Item):
    """The result of the call ``call_id``."""

    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=256)
    output: _Text | list[InputContentPart]
    id: str | None = None
    status: str | None = None


class ResponseText(_Body):
    """``text``: the output's ``format`` (``{"type": "text" | "json_object" | "json_schema", ...}``)."""

    format: dict[str, Any] | None = None
    verbosity: str | None = None
    """Accepted and ignored."""


class ResponsesRequest(_Body):
    """Body of ``POST /v1/responses`` (see the module docstring for what is served)."""

    model: str = Field(min_length=1, max_length=256)
    """As on ``/v1/chat/completions``: a configured model's name selects it, any other the default."""
    input: _Text | list[dict[str, Any]] = Field(min_length=1)
    """Text (one user message) or up to 256 items, checked one by one (errors name ``input[i]...``)."""
    instructions: _Text | None = None
    """A system message put before ``input``."""
    max_output_tokens: int | None = Field(default=None, ge=1, le=32768)
    """Upper bound on output tokens (256 when absent); reaching it makes the response ``incomplete``."""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stream: bool | None = None
    """Server-sent events (``event: response.output_text.delta`` ...), ending with ``response.completed``."""
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    """``{"type": "function", "name", "description", "parameters", "strict"}`` entries."""
    tool_choice: str | dict[str, Any] | None = None
    """``none``, ``auto``, ``required``, ``{"type": "function", "name": ...}`` or ``allowed_tools``."""
    parallel_tool_calls: bool | None = None
    """Accepted; at most one call is made per answer."""
    text: ResponseText | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    reasoning: dict[str, Any] | None = None
    truncation: str | None = None
    include: list[str] | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    max_tool_calls: int | None = None
    stream_options: dict[str, Any] | None = None
    top_logprobs: int | None = None
    """Not served here (use ``/v1/chat/completions`` ``logprobs``): a value above 0 is refused."""
    previous_response_id: str | None = None
    """Not served (responses are not stored): refused when given."""
    conversation: str | dict[str, Any] | None = None
    """Not served: refused when given."""
    prompt: dict[str, Any] | None = None
    """Not served (stored prompt templates): refused when given."""
    background: bool | None = None
    """Only ``false`` is served."""
