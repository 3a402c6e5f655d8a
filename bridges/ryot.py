"""Async bridge from the agents to the Ryot engine.

The engine is synchronous and owns one worker thread. The bridge

* offloads blocking calls (model load, tokenization, submission, which tokenizes) to threads through a
  :class:`anyio.CapacityLimiter`,
* turns the worker's events into an async iterator (the worker schedules each event onto the event
  loop without waiting, so a stalled or finished event loop can never hold up the engine),
* enforces a timeout per call and cancels the engine request when the caller goes away or times out
  (the worker stops within one decode step),
* counts requests, failures, tokens and time to first token (:class:`RyotBridgeMetrics`).
"""

from __future__ import annotations

import ctypes
import functools
import math
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import asdict, dataclass

import anyio
import anyio.lowlevel
import anyio.to_thread

from bridges.errors import BridgeTimeoutError
from ryot import (
    ChatMessage,
    EngineClosedError,
    Event,
    Failed,
    Finished,
    InvalidRequestError,
    RyotConfig,
    RyotEngine,
    SamplingParams,
    TokenChunk,
)


@dataclass(slots=True)
class RyotBridgeMetrics:
    """Counters of one bridge since start.

    Attributes:
        requests: Generations started.
        failures: Generations that raised (engine errors, timeouts).
        cancelled: Generations ended by cancellation.
        prompt_tokens: Sum of prompt tokens.
        cached_tokens: Sum of prompt tokens served from the KV prefix cache.
        completion_tokens: Sum of completion tokens.
        ttft_s_total: Sum of engine-side time to first token, in seconds.
        decode_s_total: Sum of engine-side decode time, in seconds.
    """

    requests: int = 0
    failures: int = 0
    cancelled: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    ttft_s_total: float = 0.0
    decode_s_total: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a flat dict (for ``$SRV.STATS`` data)."""
        return asdict(self)


class RyotBridge:
    """Async access to one :class:`ryot.RyotEngine`.

    Args:
        engine: The engine to drive (the bridge closes it in :meth:`aclose`).
        timeout_s: Default upper bound of one generation, in seconds.
        max_offload_threads: Threads that may run blocking engine calls at once.
    """

    def __init__(self, engine: RyotEngine, *, timeout_s: float = 300.0, max_offload_threads: int = 2) -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        self.metrics = RyotBridgeMetrics()
        self._limiter = anyio.CapacityLimiter(max_offload_threads)

    @classmethod
    async def open(cls, config: RyotConfig, *, timeout_s: float = 300.0) -> RyotBridge:
        """Load the model in a worker thread and return a bridge to it.

        Raises:
            ryot.ModelLoadError: The GGUF cannot be loaded.
        """
        engine = await anyio.to_thread.run_sync(RyotEngine, config)
        return cls(engine, timeout_s=timeout_s)

    @property
    def model_name(self) -> str:
        """Name of the loaded model."""
        return self.engine.model_name

    async def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` with the model's tokenizer (BOS included)."""
        return len(await anyio.to_thread.run_sync(self.engine.tokenize, text, limiter=self._limiter))

    async def tokenize(self, text: str, *, add_bos: bool = True) -> list[int]:
        """Token ids of ``text`` with the model's tokenizer (special-token text is not parsed).

        Raises:
            ryot.EngineClosedError: The engine is closed.
        """
        return await anyio.to_thread.run_sync(
            functools.partial(self.engine.tokenize, text, add_bos=add_bos), limiter=self._limiter
        )

    async def token_pieces(self, tokens: Sequence[int]) -> list[bytes]:
        """The bytes each token stands for (special tokens such as BOS stand for nothing).

        A piece may be part of a UTF-8 character (byte-fallback tokens); join before decoding.

        Raises:
            ryot.InvalidRequestError: An id is outside the vocabulary (field ``tokens``).
            ryot.EngineClosedError: The engine is closed.
        """
        return await anyio.to_thread.run_sync(self._pieces, list(tokens), limiter=self._limiter)

    async def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens`` (the inverse of :meth:`tokenize`; invalid UTF-8 becomes U+FFFD).

        Raises:
            ryot.InvalidRequestError: An id is outside the vocabulary (field ``tokens``).
            ryot.EngineClosedError: The engine is closed.
        """
        return b"".join(await self.token_pieces(tokens)).decode("utf-8", errors="replace")

    def _pieces(self, tokens: list[int]) -> list[bytes]:
        # RyotEngine has no public detokenizer yet: read the vocabulary of its (read-only, thread-safe)
        # model directly, with a buffer of our own (the engine's buffer belongs to its worker thread).
        if self.engine.closed:
            raise EngineClosedError()
        model = self.engine._model
        for i, token in enumerate(tokens):
            if not 0 <= token < model.n_vocab:
                raise InvalidRequestError(
                    "tokens", f"id {token} at {i} is outside the vocabulary 0..{model.n_vocab - 1}"
                )
        buf = ctypes.create_string_buffer(256)
        return [model.piece(token, buf) for token in tokens]

    async def stream(
        self,
        prompt: str | Sequence[ChatMessage],
        params: SamplingParams,
        *,
        timeout_s: float | None = None,
    ) -> AsyncGenerator[TokenChunk | Finished, None]:
        """Generate, yielding text chunks and then one :class:`ryot.Finished`.

        Leaving the iteration early (break, cancellation, exception) cancels the engine request.

        Raises:
            ryot.RyotError: Invalid input, busy queue, closed engine, or a failure while generating.
            BridgeTimeoutError: The generation exceeded ``timeout_s`` (default: the bridge's timeout).
        """
        limit = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        token = anyio.lowlevel.current_token()
        send, receive = anyio.create_memory_object_stream[Event](max_buffer_size=math.inf)

        receiver_gone = False

        def deliver(event: Event) -> None:  # runs on the event loop
            nonlocal receiver_gone
            try:
                send.send_nowait(event)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                receiver_gone = True

        def sink(event: Event) -> None:  # runs on the engine's worker thread; must never block
            if receiver_gone:
                raise anyio.BrokenResourceError  # the engine cancels the request
            token.backend_class.run_sync_soon(deliver, (event,), token.native_token)

        self.metrics.requests += 1
        with send, receive:
            try:
                handle = await anyio.to_thread.run_sync(
                    self.engine.submit, prompt, params, sink, limiter=self._limiter
                )
            except Exception:
                self.metrics.failures += 1
                raise
            try:
                while True:
                    with anyio.move_on_after(deadline - time.monotonic()) as scope:
                        event = await receive.receive()
                    if scope.cancelled_caught:
                        self.metrics.failures += 1
                        raise BridgeTimeoutError("generate", limit)
                    if isinstance(event, Failed):
                        self.metrics.failures += 1
                        raise event.error
                    if isinstance(event, Finished):
                        self._account(event)
                    yield event
                    if isinstance(event, Finished):
                        return
            finally:
                handle.cancel()

    def _account(self, event: Finished) -> None:
        m = self.metrics
        if event.finish_reason == "cancelled":
            m.cancelled += 1
        m.prompt_tokens += event.usage.prompt_tokens
        m.cached_tokens += event.usage.cached_tokens
        m.completion_tokens += event.usage.completion_tokens
        m.ttft_s_total += event.timings.ttft_s
        m.decode_s_total += event.timings.decode_s

    async def aclose(self) -> None:
        """Cancel outstanding work and free the model (in a thread). Idempotent."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.engine.close)

    async def __aenter__(self) -> RyotBridge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
