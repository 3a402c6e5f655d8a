"""What the Inference team's task agents share: wire models, ``max_tokens`` bounds, context checks.

Beyond :class:`agents.inference.InferenceAgent` (the bridge, streaming, error mapping): the frozen wire
model base, the bounds on ``max_tokens``, and the check that a text fits the context window.

The packaged model (Gemma 3 270M) is a small *base* model: it continues text rather than following
instructions, so the task agents prompt it with short completion-style templates (a label, then the
text, then the start of the answer) and stop strings, not with chat turns.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from agents.errors import TooLargeError
from agents.inference._generator import engine_error
from agents.limits import text_input_bytes
from bridges import BridgeTimeoutError, RyotBridge
from ryot import RyotError

__all__ = (
    "DEFAULT_MAX_TOKENS",
    "MAX_TEXT_CHARS",
    "MAX_TOKENS_LIMIT",
    "PROMPT_OVERHEAD_TOKENS",
    "TEXT_INPUT_BYTES",
    "MaxTokens",
    "ModelName",
    "WireModel",
    "context_window",
    "ensure_fits",
    "token_count",
)

DEFAULT_MAX_TOKENS = 128
"""Completion tokens an agent generates unless the call asks for more."""
MAX_TOKENS_LIMIT = 2048
"""The most completion tokens any call may ask for."""
MAX_TEXT_CHARS = 200_000
"""Longest text input, in characters (the context window refuses far less, with a clear error)."""
TEXT_INPUT_BYTES = text_input_bytes(MAX_TEXT_CHARS)
"""``max_input_bytes`` of the agents with one text of :data:`MAX_TEXT_CHARS` (the other fields fit in the
room :func:`~agents.limits.text_input_bytes` keeps; tokenizer's 100,000 token ids are ~700 KB)."""
PROMPT_OVERHEAD_TOKENS = 48
"""Tokens reserved for an agent's own instructions around the caller's text."""

MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)]
"""Completion tokens, 1 to :data:`MAX_TOKENS_LIMIT`."""
ModelName = Annotated[str | None, Field(min_length=1, max_length=128)]
"""A configured Ryot model's name, or ``None`` for the default model."""


class WireModel(BaseModel):
    """Base of the team's inputs and outputs: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


async def token_count(bridge: RyotBridge, text: str, *, model: str | None = None) -> int:
    """Tokens of ``text`` with the tokenizer of ``model`` (the default model for ``None``; BOS included).

    Raises:
        AgentError: Unknown model (``not_found``), the engine is closed (``busy``) or failed.
    """
    try:
        return await bridge.count_tokens(text, model=model)
    except (RyotError, BridgeTimeoutError) as exc:
        raise engine_error(exc) from exc


async def ensure_fits(
    bridge: RyotBridge, text: str, *, field: str, reserve_tokens: int, model: str | None = None
) -> int:
    """Check that ``text`` leaves ``reserve_tokens`` of the context window free; return its tokens.

    Args:
        bridge: The bridge whose model counts and whose context window bounds.
        text: The caller's text.
        field: The input field ``text`` came from (named in the error).
        reserve_tokens: Tokens needed besides the text: the completion and the agent's instructions.
        model: The model whose tokenizer counts and whose context window bounds (``None``: default).

    Raises:
        TooLargeError: The text is longer than the context window allows (message states the limit
            in tokens).
        AgentError: Unknown model (``not_found``), or the engine failed.
    """
    tokens = await token_count(bridge, text, model=model)
    n_ctx = await context_window(bridge, model=model)
    limit = n_ctx - reserve_tokens
    if tokens > limit:
        raise TooLargeError(
            f"{tokens} tokens; the limit is {max(limit, 0)} tokens (a context window of {n_ctx} tokens "
            f"less {reserve_tokens} for the instructions and the answer)",
            field=field,
        )
    return tokens


async def context_window(bridge: RyotBridge, *, model: str | None = None) -> int:
    """Context window of one request of ``model``, in tokens (loads the model if needed).

    Raises:
        AgentError: Unknown model (``not_found``), or the model failed to load.
    """
    try:
        return await bridge.context_window(model)
    except (RyotError, BridgeTimeoutError) as exc:
        raise engine_error(exc) from exc
