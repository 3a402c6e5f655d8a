"""A chat completion request as the generator's input: sampling fields, ``response_format``, tools.

Shared by ``POST /v1/chat/completions``, ``POST /v1/completions`` (the sampling fields) and
``POST /v1/responses`` (which is translated into a chat completion request first).
"""

from __future__ import annotations

from typing import Any

from agents.errors import BadInputError
from agents.protocol import GenerateInput
from api.openai.schemas import (
    MAX_CHOICES,
    MAX_STOP,
    ChatCompletionRequest,
    CompletionRequest,
    JsonObjectFormat,
    JsonSchemaFormat,
)
from api.openai.tools import ToolPlan, plan_tools, render_messages

__all__ = ("chat_input", "sampling")


def _logit_bias(raw: dict[str, float] | None) -> dict[int, float]:
    out: dict[int, float] = {}
    for key, bias in (raw or {}).items():
        if not key.strip().isdigit():
            raise BadInputError(f"key {key!r} is not a token id", field="logit_bias")
        if not -100.0 <= bias <= 100.0:
            raise BadInputError(f"bias {bias} of token {key} is outside -100..100", field="logit_bias")
        out[int(key)] = float(bias)
    return out


def sampling(body: ChatCompletionRequest | CompletionRequest) -> dict[str, Any]:
    """Sampling fields of ``body`` for :class:`GenerateInput` (absent ones keep the agent's defaults).

    Raises:
        BadInputError: A field asks for something not served, or is out of range.
    """
    n = body.n or 1
    if n > MAX_CHOICES:
        raise BadInputError(f"is {n}, over the limit of {MAX_CHOICES}", field="n")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > MAX_STOP:
        raise BadInputError(f"holds {len(stop)} sequences, over the limit of {MAX_STOP}", field="stop")
    if any(not s for s in stop):
        raise BadInputError("stop sequences must not be empty", field="stop")
    fields: dict[str, Any] = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "top_k": body.top_k,
        "min_p": body.min_p,
        "repeat_penalty": body.repeat_penalty,
        "seed": None if body.seed is None else body.seed % 2**32,
        "stop": stop,
        "presence_penalty": body.presence_penalty,
        "frequency_penalty": body.frequency_penalty,
        "logit_bias": _logit_bias(body.logit_bias),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _not_served(body: ChatCompletionRequest) -> None:
    for name in ("audio", "web_search_options"):
        if getattr(body, name) is not None:
            raise BadInputError(f"{name} is not served by this server", field=name)
    if body.modalities is not None and "audio" in body.modalities:
        raise BadInputError("only the text modality is served", field="modalities")


def chat_input(body: ChatCompletionRequest) -> tuple[GenerateInput, ToolPlan | None]:
    """The generator's input for ``body`` and its tool plan (``None``: a plain text answer).

    Raises:
        BadInputError: A field asks for something not served, or fields contradict each other.
    """
    _not_served(body)
    if body.top_logprobs is not None and not body.logprobs:
        raise BadInputError("top_logprobs needs logprobs set to true", field="top_logprobs")
    plan = plan_tools(body)
    fields = sampling(body)
    fmt = body.response_format
    if isinstance(fmt, JsonSchemaFormat | JsonObjectFormat):
        if plan is not None and plan.mode == "required":
            raise BadInputError(
                "a required tool call cannot also follow response_format", field="response_format"
            )
        if plan is None:
            fields["json_schema"] = (
                fmt.json_schema.schema_ if isinstance(fmt, JsonSchemaFormat) else {"type": "object"}
            )
    if plan is not None:
        fields["tool_schema"] = plan.schema
        fields["tool_mode"] = plan.mode
    if body.logprobs:
        fields["logprobs"] = body.top_logprobs or 0
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    return GenerateInput(messages=render_messages(body, plan), **fields), plan
