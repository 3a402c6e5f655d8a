"""Async bridge from the agents to Ryot's models.

The bridge drives a :class:`ryot.ModelPool` (several named models, loaded on demand, freed when idle;
one model when built from a single engine). Every operation takes an optional ``model`` name (``None``:
the pool's default model). The bridge

* offloads blocking calls (model load, tokenization, submission, which tokenizes) to threads through a
  :class:`anyio.CapacityLimiter` (model loads to plain worker threads, so that a load never holds up
  the other models' work),
* holds a lease on the model for the duration of each operation, so that an idle unload never closes
  an engine in use, and runs the idle-unload loop (:meth:`RyotBridge.run_idle_unloader`),
* turns the worker's events into an async iterator (the worker schedules each event onto the event
  loop without waiting, so a stalled or finished event loop can never hold up the engine); a request's
  first text and its end go at once, later text every ``chunk_interval_s`` at most, merged
  (:mod:`bridges._ryot_delivery`: the path behind the bridge then runs once per few tokens),
* enforces a timeout per call and cancels the engine request when the caller goes away or times out
  (the worker stops within one decode step),
* counts requests, failures, tokens and time to first token (:class:`RyotBridgeMetrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import time
import weakref
from collections.abc import AsyncGenerator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import anyio
import anyio.to_thread
import structlog
from anyio.abc import TaskStatus

from bridges._ryot_delivery import (
    DEFAULT_CHUNK_INTERVAL_S,
    EventChannel,
    LoopDispatcher,
    RequestSink,
    TextHandler,
    coalesced,
)
from bridges.errors import BridgeTimeoutError
from ryot import (
    ChatMessage,
    EngineClosedError,
    Event,
    Failed,
    Finished,
    InvalidRequestError,
    ModelPool,
    ModelPoolConfig,
    RyotConfig,
    RyotEngine,
    SamplingParams,
    TokenChunk,
    TokenPrompt,
    UnknownModelError,
)

log = structlog.get_logger("neurectomy.bridges")


_INLINE_SUBMIT_CHARS = 512
"""Prompts up to this many characters are tokenized on the event loop instead of in a worker thread:
Gemma 3's tokenizer takes ~0.8 µs per character here (43 µs for 40 characters, 0.4 ms for 512), less
than the hand-off to a worker thread and back, which costs far more while decoding keeps both cores
busy."""


def _quick_to_submit(prompt: str | Sequence[ChatMessage] | TokenPrompt, params: SamplingParams) -> bool:
    """Whether :meth:`ryot.RyotEngine.submit` is cheap enough to call on the event loop.

    True for a short prompt without a grammar (parsing one can take milliseconds).
    """
    if params.grammar is not None:
        return False
    if isinstance(prompt, TokenPrompt):
        return len(prompt.tokens) <= _INLINE_SUBMIT_CHARS
    if isinstance(prompt, str):
        return len(prompt) <= _INLINE_SUBMIT_CHARS
    return sum(len(m.content) for m in prompt) <= _INLINE_SUBMIT_CHARS


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
    """Async access to a :class:`ryot.ModelPool` (or to one :class:`ryot.RyotEngine`).

    Args:
        models: The pool to drive, or one loaded engine (a pool of that one model, named
            ``engine.model_name``). The bridge closes it in :meth:`aclose`.
        timeout_s: Default upper bound of one generation, in seconds.
        max_offload_threads: Threads that may run blocking engine calls (not loads) at once.
        chunk_interval_s: Least time between two deliveries of a request's streamed text after its
            first, in seconds (0: every decode step); see :mod:`bridges._ryot_delivery`.
    """

    def __init__(
        self,
        models: ModelPool | RyotEngine,
        *,
        timeout_s: float = 300.0,
        max_offload_threads: int = 2,
        chunk_interval_s: float = DEFAULT_CHUNK_INTERVAL_S,
    ) -> None:
        if not chunk_interval_s >= 0:
            raise ValueError(f"chunk_interval_s must be at least 0, not {chunk_interval_s}")
        self.pool = models if isinstance(models, ModelPool) else ModelPool.from_engine(models)
        self.timeout_s = timeout_s
        self.chunk_interval_s = chunk_interval_s
        self.metrics = RyotBridgeMetrics()
        self._limiter = anyio.CapacityLimiter(max_offload_threads)
        self._dispatchers: weakref.WeakKeyDictionary[Any, LoopDispatcher] = weakref.WeakKeyDictionary()

    @classmethod
    async def open(
        cls,
        config: RyotConfig,
        *,
        timeout_s: float = 300.0,
        chunk_interval_s: float = DEFAULT_CHUNK_INTERVAL_S,
    ) -> RyotBridge:
        """Build the pool of ``config`` and load its ``preload`` models in a worker thread.

        Args:
            config: A :class:`ryot.ModelPoolConfig` (named models), or a plain :class:`ryot.RyotConfig`
                (its one model, preloaded).
            timeout_s: Default upper bound of one generation, in seconds.
            chunk_interval_s: Least time between two deliveries of streamed text (see the class).

        Raises:
            ryot.ModelLoadError: A preloaded model cannot be loaded.
        """
        if not isinstance(config, ModelPoolConfig):
            config = ModelPoolConfig(**{name: getattr(config, name) for name in RyotConfig.model_fields})
        pool = ModelPool.from_config(config)
        try:
            await anyio.to_thread.run_sync(pool.preload)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pool.close)
            raise
        return cls(pool, timeout_s=timeout_s, chunk_interval_s=chunk_interval_s)

    @property
    def model_name(self) -> str:
        """Name of the default model."""
        return self.pool.default

    @property
    def model_names(self) -> tuple[str, ...]:
        """Names of every configured model."""
        return self.pool.names

    @property
    def engine(self) -> RyotEngine:
        """The default model's engine, if it is loaded.

        Raises:
            ryot.EngineClosedError: The default model is not loaded (or the pool is closed).
        """
        engine = self.pool.loaded()
        if engine is None:
            raise EngineClosedError()
        return engine

    def resolve(self, model: str | None) -> str:
        """The name of the model a call with ``model`` uses (the default one for ``None``).

        Raises:
            ryot.UnknownModelError: No model has that name (the message lists the configured ones).
        """
        return self.pool.resolve(model)

    def status(self) -> list[dict[str, Any]]:
        """Every model's :class:`ryot.ModelStatus` as a dict (for ``$SRV.STATS`` data)."""
        return [s.as_dict() for s in self.pool.status()]

    async def _engine(self, name: str) -> RyotEngine:
        """The engine of ``name`` (hold a lease): at once if loaded, else loaded in a worker thread."""
        engine = self.pool.loaded(name)
        if engine is None:
            engine = await anyio.to_thread.run_sync(self.pool.get, name)
        return engine

    async def context_window(self, model: str | None = None) -> int:
        """Context window of one request of ``model``, in tokens (loads the model if needed).

        Raises:
            ryot.UnknownModelError: No model has that name.
            ryot.ModelLoadError: The model cannot be loaded.
        """
        with self.pool.lease(model) as name:
            return (await self._engine(name)).n_ctx

    async def count_tokens(self, text: str, *, model: str | None = None) -> int:
        """Number of tokens of ``text`` with the model's tokenizer (BOS included)."""
        return len(await self.tokenize(text, model=model))

    async def tokenize(self, text: str, *, add_bos: bool = True, model: str | None = None) -> list[int]:
        """Token ids of ``text`` with the model's tokenizer (special-token text is not parsed).

        Raises:
            ryot.UnknownModelError: No model has that name.
            ryot.ModelLoadError: The model cannot be loaded.
            ryot.EngineClosedError: The engine is closed.
        """
        with self.pool.lease(model) as name:
            engine = await self._engine(name)
            return await anyio.to_thread.run_sync(
                functools.partial(engine.tokenize, text, add_bos=add_bos), limiter=self._limiter
            )

    async def token_pieces(self, tokens: Sequence[int], *, model: str | None = None) -> list[bytes]:
        """The bytes each token stands for (special tokens such as BOS stand for nothing).

        A piece may be part of a UTF-8 character (byte-fallback tokens); join before decoding.

        Raises:
            ryot.InvalidRequestError: An id is outside the vocabulary (field ``tokens``).
            ryot.UnknownModelError: No model has that name.
            ryot.EngineClosedError: The engine is closed.
        """
        with self.pool.lease(model) as name:
            engine = await self._engine(name)
            return await anyio.to_thread.run_sync(self._pieces, engine, list(tokens), limiter=self._limiter)

    async def detokenize(self, tokens: Sequence[int], *, model: str | None = None) -> str:
        """The text of ``tokens`` (the inverse of :meth:`tokenize`; invalid UTF-8 becomes U+FFFD).

        Raises:
            ryot.InvalidRequestError: An id is outside the vocabulary (field ``tokens``).
            ryot.UnknownModelError: No model has that name.
            ryot.EngineClosedError: The engine is closed.
        """
        return b"".join(await self.token_pieces(tokens, model=model)).decode("utf-8", errors="replace")

    @staticmethod
    def _pieces(engine: RyotEngine, tokens: list[int]) -> list[bytes]:
        # RyotEngine has no public detokenizer yet: read the vocabulary of its (read-only, thread-safe)
        # model directly, with a buffer of our own (the engine's buffer belongs to its worker thread).
        if engine.closed:
            raise EngineClosedError()
        model = engine._model
        for i, token in enumerate(tokens):
            if not 0 <= token < model.n_vocab:
                raise InvalidRequestError(
                    "tokens", f"id {token} at {i} is outside the vocabulary 0..{model.n_vocab - 1}"
                )
        buf = ctypes.create_string_buffer(256)
        return [model.piece(token, buf) for token in tokens]

    async def stream(
        self,
        prompt: str | Sequence[ChatMessage] | TokenPrompt,
        params: SamplingParams,
        *,
        timeout_s: float | None = None,
        model: str | None = None,
        on_text: TextHandler | None = None,
    ) -> AsyncGenerator[TokenChunk | Finished, None]:
        """Generate with ``model`` (the default one for ``None``), yielding text chunks, then one Finished.

        The model is loaded first if needed (the load counts against the timeout but is never cut
        short). Leaving the iteration early (break, cancellation, exception) cancels the engine request.

        ``on_text(chunk, alone)`` (optional) takes text right where it reaches the event loop, without
        waking the iterating task (see :class:`bridges._ryot_delivery.EventChannel`): a chunk it takes
        (returns True) is not yielded; one it refuses is yielded, in order, as is all text after it until
        the iteration has caught up. The Finished is always yielded.

        Raises:
            ryot.RyotError: Unknown model (:class:`ryot.UnknownModelError`), a model that fails to load,
                invalid input, busy queue, closed engine, or a failure while generating.
            BridgeTimeoutError: The generation exceeded ``timeout_s`` (default: the bridge's timeout).
        """
        self.metrics.requests += 1
        try:
            name = self.pool.resolve(model)
        except UnknownModelError:
            self.metrics.failures += 1
            raise
        limit = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        dispatcher = self._dispatcher()
        channel = EventChannel(on_text)
        sink = RequestSink(dispatcher, channel)

        with contextlib.closing(channel), self.pool.lease(name):
            try:
                engine = await self._engine(name)
                if _quick_to_submit(prompt, params):  # a thread hop would cost more than the work
                    handle = engine.submit(prompt, params, sink)
                else:
                    handle = await anyio.to_thread.run_sync(
                        engine.submit, prompt, params, sink, limiter=self._limiter
                    )
            except Exception:
                self.metrics.failures += 1
                raise
            # One timer for the whole generation (not a cancel scope per delivery): at the deadline it
            # hands the consumer the timeout marker.
            timer = dispatcher.loop.call_later(max(deadline - time.monotonic(), 0.0), channel.put, _TIMED_OUT)
            try:
                while True:
                    events = await channel.get()
                    if events is _TIMED_OUT:
                        self.metrics.failures += 1
                        raise BridgeTimeoutError("generate", limit)
                    for event in coalesced(events):
                        if isinstance(event, Failed):
                            self.metrics.failures += 1
                            raise event.error
                        if isinstance(event, Finished):
                            self._account(event)
                        yield event
                        if isinstance(event, Finished):
                            return
            finally:
                timer.cancel()
                handle.cancel()

    def _dispatcher(self) -> LoopDispatcher:
        """The dispatcher of the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        dispatcher = self._dispatchers.get(loop)
        if dispatcher is None:
            dispatcher = self._dispatchers[loop] = LoopDispatcher(loop, self.chunk_interval_s)
        return dispatcher

    def _account(self, event: Finished) -> None:
        m = self.metrics
        if event.finish_reason == "cancelled":
            m.cancelled += 1
        m.prompt_tokens += event.usage.prompt_tokens
        m.cached_tokens += event.usage.cached_tokens
        m.completion_tokens += event.usage.completion_tokens
        m.ttft_s_total += event.timings.ttft_s
        m.decode_s_total += event.timings.decode_s

    async def run_idle_unloader(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Free models idle for longer than their ``idle_unload_s``, until cancelled.

        Checks every :attr:`ryot.ModelPool.idle_check_interval_s` seconds (in a worker thread: closing
        an engine waits for its worker); returns at once when no model is ever unloaded. Start it in
        a task group: ``await tg.start(bridge.run_idle_unloader)``.
        """
        interval = self.pool.idle_check_interval_s
        task_status.started()
        if interval is None:
            return
        while not self.pool.closed:
            await anyio.sleep(interval)
            for name in await anyio.to_thread.run_sync(self.pool.unload_idle):
                log.info("model unloaded", model=name, reason="idle")

    async def aclose(self) -> None:
        """Cancel outstanding work and free every model (in a thread). Idempotent."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.pool.close)

    async def __aenter__(self) -> RyotBridge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


_TIMED_OUT: list[Event] = []
"""Handed to a generation's consumer at its deadline (the engine's deliveries are never this list)."""
