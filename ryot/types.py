"""Requests, events and usage figures of the Ryot engine.

Events are what a generation emits, in order: zero or more :class:`TokenChunk`, then exactly one
terminal event, :class:`Finished` or :class:`Failed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length", "cancelled"]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation, rendered with the model's own chat template.

    Attributes:
        role: ``system``, ``user`` or ``assistant``.
        content: The message text.
    """

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How tokens are chosen.

    Attributes:
        max_tokens: Upper bound on completion tokens.
        temperature: Softmax temperature; ``0`` means greedy decoding.
        top_p: Nucleus sampling mass in (0, 1].
        top_k: Keep the k most likely tokens; ``0`` disables.
        min_p: Drop tokens below ``min_p`` × the top probability.
        repeat_penalty: Penalty for repeated tokens; ``1.0`` disables.
        seed: Sampling seed; ``None`` keeps the engine's generator state.
        stop: Strings that end the completion; the stop string is not returned.
        grammar: A GBNF grammar (llama.cpp's format, rule ``root``) the completion must follow, e.g.
            from :func:`ryot.grammar_from_json_schema`.
        speculative: Speculative decoding by prompt lookup (greedy requests only; ignored otherwise):
            faster when the output repeats the prompt, same text.
        prefix_namespace: Requests share KV prefixes (a slot's cached tokens, the prefix cache) only
            within one namespace: give the tenant, so that ``usage.cached_tokens`` and the time to first
            token never tell one tenant what another sent.
    """

    max_tokens: int = 256
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    grammar: str | None = None
    speculative: bool = False
    prefix_namespace: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    """Exact token accounting of one request.

    Attributes:
        prompt_tokens: Tokens of the prompt as the model tokenized it.
        completion_tokens: Tokens sampled for the completion (a stop string's tokens included).
        cached_tokens: Prompt tokens whose KV entries were reused from an earlier request
            (not evaluated again).
    """

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Timings:
    """Where one request spent its time, in seconds.

    Attributes:
        queue_s: From submission until the worker picked the request up.
        ttft_s: From pick-up to the first sampled token (prefill of the uncached prompt included).
        decode_s: From the first to the last sampled token.
        decode_tokens: Tokens sampled after the first one (the ones ``decode_s`` covers).
    """

    queue_s: float
    ttft_s: float
    decode_s: float
    decode_tokens: int

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Decode speed in tokens per second; ``None`` when fewer than two tokens were sampled."""
        if self.decode_tokens <= 0 or self.decode_s <= 0:
            return None
        return self.decode_tokens / self.decode_s


@dataclass(frozen=True, slots=True)
class TokenChunk:
    """Text produced since the previous chunk.

    Attributes:
        text: Newly decoded text (complete UTF-8 characters only).
        n_tokens: Sampled tokens this chunk covers (may be 0 while a stop string is held back).
    """

    text: str
    n_tokens: int


@dataclass(frozen=True, slots=True)
class Finished:
    """The terminal event of a successful or cancelled generation.

    Attributes:
        finish_reason: ``stop`` (end-of-generation token or stop string), ``length`` (max_tokens)
            or ``cancelled``.
        usage: Exact token counts.
        timings: Time spent queued, to first token and decoding.
        text: The whole completion text.
    """

    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    text: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The terminal event of a generation that raised.

    Attributes:
        error: The exception; a :class:`ryot.errors.RyotError` for expected failures.
    """

    error: BaseException


Event = TokenChunk | Finished | Failed


@dataclass(frozen=True, slots=True)
class Completion:
    """Result of a blocking generation.

    Attributes:
        text: The completion text.
        finish_reason: Why the completion ended.
        usage: Exact token counts.
        timings: Time spent queued, to first token and decoding.
    """

    text: str
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
