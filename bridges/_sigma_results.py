"""What the ΣLANG bridge returns: its counters, outcomes and frame recipes, and the approximate token count.

Part of `bridges.sigma` (re-exported there).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from sigmalang import CompressionResult, OptimizedContext

__all__ = (
    "APPROX_CHARS_PER_TOKEN",
    "CompressOutcome",
    "DedupStats",
    "OptimizeOutcome",
    "RecipeItem",
    "SigmaBridgeMetrics",
    "TokenCounter",
    "approx_tokens",
)

TokenCounter = Literal["ryot", "approx"]
"""Which counter produced a token count: the serving LLM's tokenizer, or :func:`approx_tokens`."""

APPROX_CHARS_PER_TOKEN = 4
"""Characters per token of the approximation (OpenAI's rule of thumb for English text, "What are
tokens and how to count them?", help.openai.com; measured here with Gemma 3's tokenizer: 4.0 on this
repo's Python, 3.7 on its Markdown)."""


def approx_tokens(text: str) -> int:
    """Approximate token count: ``ceil(characters / APPROX_CHARS_PER_TOKEN)`` (0 for empty text)."""
    return math.ceil(len(text) / APPROX_CHARS_PER_TOKEN)


@dataclass(slots=True)
class SigmaBridgeMetrics:
    """Counters of one bridge since start.

    Attributes:
        compressions: Messages compressed.
        compress_calls: Calls that compressed them (one per batch: ``compressions / compress_calls`` is
            the mean batch, e.g. of coalesced ``POST /v1/sigma/compress`` requests).
        decompressions: Frames decoded.
        optimizations: Contexts optimised.
        dictionaries_trained: Dictionaries trained and registered.
        failures: Calls that raised (bad frames, missing RSUs, ...).
        timeouts: Calls abandoned after their timeout.
        bytes_in: Sum of compressed input sizes, bytes.
        bytes_out: Sum of produced frame sizes, bytes.
        busy_s_total: Time spent in codec calls, in seconds.
    """

    compressions: int = 0
    compress_calls: int = 0
    decompressions: int = 0
    optimizations: int = 0
    dictionaries_trained: int = 0
    failures: int = 0
    timeouts: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    busy_s_total: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a flat dict (for ``$SRV.STATS`` data)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CompressOutcome:
    """A compression and how its tokens were counted."""

    result: CompressionResult
    token_counter: TokenCounter


@dataclass(frozen=True, slots=True)
class OptimizeOutcome:
    """An optimised context and how its tokens were counted."""

    context: OptimizedContext
    token_counter: TokenCounter


@dataclass(frozen=True, slots=True)
class DedupStats:
    """How much of one message the RSU store (or an earlier message of the batch) already holds.

    Attributes:
        bytes: Message length, bytes.
        chunks: Content-defined chunks long enough to be referenced (0 for short messages).
        known_chunks: Chunks already in the store.
        known_bytes: Their bytes.
        repeated_chunks: Chunks not in the store but seen earlier in the same batch.
        repeated_bytes: Their bytes.
        new_bytes: Bytes that would travel as literals (``bytes - known - repeated``).
    """

    bytes: int
    chunks: int
    known_chunks: int
    known_bytes: int
    repeated_chunks: int
    repeated_bytes: int
    new_bytes: int


@dataclass(frozen=True, slots=True)
class RecipeItem:
    """One part of a version-2 frame: a context RSU (a *glyph*) or the compressed payload.

    Attributes:
        kind: ``glyph`` (an RSU of the tenant's store used as zstd context) or ``payload``.
        seq: The RSU's sequence number in the tenant's store, for a glyph.
        size: The RSU's bytes (None when the store no longer holds it), or the payload's bytes.
        in_store: Whether the tenant's store holds the RSU, for a glyph.
    """

    kind: Literal["glyph", "payload"]
    seq: int | None
    size: int | None
    in_store: bool | None = None
