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
class TokenPrompt:
    """A prompt given as token ids (evaluated as they are: no BOS is added, no template applied).

    Attributes:
        tokens: Token ids of the model's vocabulary.
    """

    tokens: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How tokens are chosen.

    Attributes:
        max_tokens: Upper bound on completion tokens.
        temperature: Softmax temperature; ``0`` means greedy decoding.
        top_p: Nucleus sampling mass in (0, 1].
        top_k: Keep the k most likely tokens; ``0`` disables (at most 2**31 - 1, llama.cpp's ``int32_t``;
            a k of at least the vocabulary's size keeps every token).
        min_p: Drop tokens below ``min_p`` × the top probability.
        repeat_penalty: Penalty for repeated tokens (positive logits divided by it, negative ones
            multiplied); ``1.0`` disables; any finite value above 0.
        seed: Sampling seed; ``None`` keeps the engine's generator state.
        stop: Strings that end the completion; the stop string is not returned.
        grammar: A GBNF grammar (llama.cpp's format, rule ``root``) the completion must follow, e.g.
            from :func:`ryot.grammar_from_json_schema`.
        speculative: Speculative decoding by prompt lookup (greedy requests only; ignored otherwise):
            faster when the output repeats the prompt, same text.
        prefix_namespace: Requests share KV prefixes (a slot's cached tokens, the prefix cache) only
            within one namespace: give the tenant, so that ``usage.cached_tokens`` and the time to first
            token never tell one tenant what another sent. Only a leading BOS token, which every text
            prompt starts with, is reused across namespaces (``cached_tokens`` 1 for a cold text prompt).
        presence_penalty: Subtracted once from the logit of every token already sampled (OpenAI's
            ``presence_penalty``; llama.cpp's penalties sampler over the last 256 tokens); any finite
            value (OpenAI documents -2..2, llama.cpp and Ollama take any).
        frequency_penalty: Subtracted from a token's logit once per time it was sampled (any finite
            value).
        logit_bias: ``(token id, bias)`` pairs added to the logits before sampling (-100 bans a token,
            +100 all but forces it).
        logprobs: ``None``: no log probabilities. ``k >= 0``: each sampled token's log probability
            under the model (log-softmax of its raw logits, natural log) and the ``k`` most likely
            alternatives, in :attr:`TokenChunk.logprobs`.
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
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    logprobs: int | None = None
    prefix_namespace: str = ""


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """One candidate token at a position, with its log probability.

    Attributes:
        token: The token's text (invalid UTF-8 of a partial character replaced by U+FFFD).
        bytes: The token's exact bytes.
        logprob: Natural log of its probability under the model (raw logits, before sampling).
    """

    token: str
    bytes: bytes
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """The sampled token at a position, its log probability and the most likely alternatives.

    Attributes:
        token: The sampled token's text.
        bytes: Its exact bytes.
        logprob: Its natural-log probability under the model (raw logits).
        top: The most likely tokens at this position, most likely first (``SamplingParams.logprobs``).
    """

    token: str
    bytes: bytes
    logprob: float
    top: tuple[TopLogprob, ...] = ()


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
        logprobs: One entry per token sampled since the previous chunk, when the request asked for
            log probabilities (its text may still be held back, e.g. the start of a stop string).
    """

    text: str
    n_tokens: int
    logprobs: tuple[TokenLogprob, ...] = ()


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
