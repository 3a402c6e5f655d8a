"""The ``tokenizer`` agent: the model's own tokenizer, both ways, without generating."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, model_validator

from agents.actor import Call
from agents.inference._base import MAX_TEXT_CHARS, TEXT_INPUT_BYTES, ModelName, WireModel
from agents.inference._generator import InferenceAgent, engine_error
from bridges import BridgeTimeoutError
from ryot import RyotError

__all__ = ("MAX_TOKEN_IDS", "TokenizeInput", "TokenizeOutput", "TokenizerAgent")

MAX_TOKEN_IDS = 100_000
"""Most token ids one call may detokenize."""


class TokenizeInput(WireModel):
    """Input of ``tokenizer``: a text to tokenize, or token ids to turn back into text (one of them)."""

    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    """Text to tokenize."""
    tokens: list[int] | None = Field(default=None, max_length=MAX_TOKEN_IDS)
    """Token ids to detokenize."""
    add_bos: bool = True
    """When tokenizing: prepend the beginning-of-sequence token, as generation does."""
    pieces: bool = False
    """Also return the text of each token."""
    model: ModelName = None
    """Name of the model whose tokenizer to use (one of the configured Ryot models); ``None``: default."""

    @model_validator(mode="after")
    def _one_of(self) -> TokenizeInput:
        if (self.text is None) == (self.tokens is None):
            raise ValueError("give exactly one of text and tokens")
        return self


class TokenizeOutput(WireModel):
    """Output of ``tokenizer``: ``tokens`` and ``count`` for a text, ``text`` for token ids."""

    tokens: list[int] | None = None
    count: int
    """Number of tokens (BOS included when it was added)."""
    text: str | None = None
    pieces: list[str] | None = None
    """Text of each token (special tokens are empty; a piece that splits a character shows U+FFFD)."""
    model: str
    """Name of the model whose tokenizer was used."""


class TokenizerAgent(InferenceAgent):
    """Tokenizes text into the model's token ids (and counts them), or detokenizes ids into text."""

    name = "tokenizer"
    description = (
        "Tokenizes text into the LLM's token ids and counts them, or turns token ids back into text."
    )
    capabilities = ("tokenize", "tokens", "count", "detokenize", "tokenizer", "budget")
    input_model: ClassVar[type[TokenizeInput]] = TokenizeInput
    max_input_bytes = TEXT_INPUT_BYTES
    output_model = TokenizeOutput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Tokenize or detokenize ``call.input`` (a :class:`TokenizeInput`).

        Raises:
            BadInputError: A token id outside the vocabulary (field ``tokens``).
        """
        inp: TokenizeInput = call.input
        model = self.resolve_model(inp.model)
        try:
            if inp.text is not None:
                tokens = await self.bridge.tokenize(inp.text, add_bos=inp.add_bos, model=model)
                text = None
            else:
                tokens = list(inp.tokens or [])
                text = await self.bridge.detokenize(tokens, model=model)
            pieces = (
                [
                    p.decode("utf-8", errors="replace")
                    for p in await self.bridge.token_pieces(tokens, model=model)
                ]
                if inp.pieces
                else None
            )
        except (RyotError, BridgeTimeoutError) as exc:
            raise engine_error(exc) from exc
        return TokenizeOutput(
            tokens=tokens if inp.text is not None else None,
            count=len(tokens),
            text=text,
            pieces=pieces,
            model=model,
        ).model_dump()
