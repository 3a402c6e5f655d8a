"""The Ryot engine: one GGUF model, one llama.cpp context, one worker thread, continuous batching.

llama.cpp contexts are not thread safe, so a single worker thread owns the context. The context holds
``parallel`` sequences ("slots"); every step the worker prefills a chunk of each new prompt in its own
``llama_decode`` (at most ``prefill_chunk`` tokens per step while any slot decodes, so that a long prompt
joining delays the others' next tokens by one short step, not by a whole ``n_batch``), then evaluates the
next token of every decoding slot in one ``llama_decode``, laid out so that llama.cpp makes one
micro-batch of it (consecutive sequence ids, placeholders in short holes: :mod:`ryot._schedule`), and
samples each slot's next token from its own logits with its own sampler chain. New requests join
between steps and finished ones leave (continuous batching, as in llama.cpp's server). Requests beyond
the free slots wait in a bounded queue; a full queue refuses with :class:`EngineBusyError`.

A finished slot keeps its KV cache, and every slot holds the BOS token from the start (one
``llama_decode`` for all of them when the engine starts), so that no text prompt evaluates it, as raw
llama-cpp-python's prompts do not after its first. A new request goes to the free slot whose cached
tokens share the longest prefix (of more than one token) with its prompt, else to the least recently
used free slot, and skips the prefill of the shared prefix
(``usage.cached_tokens``; the last two prompt tokens are always evaluated, for fresh logits computed
as a cold prefill computes them: :data:`ryot._schedule.MIN_PROMPT_ROWS`). Gemma 3's
sliding-window layers keep full KV (``swa_full``) so that any prefix can be reused.

Beyond the slots, a host-memory prefix cache (:mod:`ryot._prefix_cache`, ``prefix_cache_bytes``) keeps
KV states of earlier sequences. A snapshot is one ``llama_state_seq_get_data`` on the worker thread
(measured 8 ms for 256 tokens, 13 ms for 1k, 14 ms for 4k of Gemma 3 270M: the window layers stop
growing at 512), so it is never taken per token, and kept off requests' paths where possible: once the
worker has been idle for ``_IDLE_SNAPSHOT_DELAY_S``, it saves the whole sequence of each finished slot
the cache does not hold yet. When a request with another prefix takes a slot, what is about to be
dropped is saved then (paid by that admission), unless fewer than ``_MIN_GAIN_TOKENS`` would be lost:
the whole sequence if the idle pass did not save it, then each prefix of it that another request
shared, trimming the sequence down to it first (the trim was coming anyway). The second kind is what
makes shared prefixes of sliding-window models reusable: their saved states hold the window layers only
for the last ``n_swa`` positions, so a state can be trimmed back only to a prefix near its end. Entries
the cache already covers are not saved again. When the cache holds a usable prefix at least
``_MIN_GAIN_TOKENS`` longer than any free slot's, the request takes the least recently used free slot
and the state is restored into it (``llama_state_seq_set_data``, 1.4 ms for 256 tokens) and trimmed
like a slot's; ``cached_tokens`` is then the restored prefix.

A prompt text submitted again (in the same namespace) is not tokenized again: recent texts' token ids
are kept (:mod:`ryot._token_cache`), which takes ~0.3 ms off a repeated prompt's path when the
tokenizer's tables are out of the CPU caches.

Cancellation is checked between steps, so a cancelled request frees its slot within one decode step.

A step that gives a request its first token delivers it before evaluating anything else, then (when the
compute threads fill every usable CPU) leaves the CPUs to that token's consumers for
``first_token_handoff_s`` (3 ms) before its next ``llama_decode``: the first token still has to cross
the service (event loop, NATS, HTTP) to its client, and with the compute threads on every core that
path waited for the cores (median 4.6-7.3 ms under load) instead of taking ~1.6 ms (docs/ryot.md).

Requests with ``speculative=True`` (greedy only) add prompt-lookup draft tokens behind their next token
in the same batch; the model verifies them in that one decode and the matching prefix is kept
(:mod:`ryot._speculative`), so repetitive outputs take fewer steps. The kept tokens are greedy choices,
but from a batch holding several positions of one sequence, which llama.cpp rounds differently from
one position at a time: in a near tie the text can differ from the non-speculative one.

The engine's parts, bases of :class:`RyotEngine`: the worker loop and admission (:mod:`ryot._worker`),
slot choice, KV reuse and prefix-cache snapshots (:mod:`ryot._kv_reuse`), the decode step
(:mod:`ryot._step`), and token and event delivery (:mod:`ryot._delivery`).
"""

from __future__ import annotations

import ctypes
import logging
import math
import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ryot._delivery import Sink, _flush_sinks
from ryot._llama import Batch, Context, Model, Sampler
from ryot._prefix_cache import PrefixCache
from ryot._schedule import Job, Slot
from ryot._token_cache import TokenCache
from ryot._worker import WORKER_THREAD_NAME, _WorkerLoop
from ryot.chat import ChatTemplate
from ryot.config import RyotConfig
from ryot.errors import (
    EngineBusyError,
    EngineClosedError,
    GenerationCancelledError,
    InvalidRequestError,
    PromptTooLongError,
)
from ryot.grammar import check_grammar
from ryot.models import resolve_model_path
from ryot.types import (
    ChatMessage,
    Completion,
    Event,
    Failed,
    Finished,
    SamplingParams,
    TokenChunk,
    TokenPrompt,
)

__all__ = ("WORKER_THREAD_NAME", "GenerationHandle", "Prompt", "RyotEngine", "Sink")

Prompt = str | Sequence[ChatMessage] | TokenPrompt
"""A prompt: text, chat messages (rendered with the chat template), or token ids."""

_log = logging.getLogger(__name__)


class GenerationHandle:
    """A submitted request: lets the caller cancel it."""

    __slots__ = ("_job",)

    def __init__(self, job: Job) -> None:
        self._job = job

    @property
    def prompt_tokens(self) -> int:
        """Tokens in the prompt as the model tokenized it."""
        return len(self._job.tokens)

    def cancel(self) -> None:
        """Ask the worker to stop this request; it ends with ``finish_reason="cancelled"``.

        Safe to call from any thread, any number of times, also after the request finished.
        """
        self._job.cancelled = True


_INT32_MAX = 2**31 - 1
"""llama.cpp's ``top_k`` is a C ``int32_t``."""


def _validate(params: SamplingParams) -> None:
    if params.max_tokens < 1:
        raise InvalidRequestError("max_tokens", "must be at least 1")
    if not 0.0 <= params.temperature < math.inf:
        raise InvalidRequestError("temperature", "must be 0 (greedy) or a positive finite number")
    if not 0.0 < params.top_p <= 1.0:
        raise InvalidRequestError("top_p", "must be in (0, 1]")
    if not 0 <= params.top_k <= _INT32_MAX:
        raise InvalidRequestError("top_k", f"must be 0 (off) or positive, at most {_INT32_MAX}")
    if not 0.0 <= params.min_p <= 1.0:
        raise InvalidRequestError("min_p", "must be between 0 and 1")
    if not 0.0 < params.repeat_penalty < math.inf:
        raise InvalidRequestError("repeat_penalty", "must be a positive finite number")
    for name in ("presence_penalty", "frequency_penalty"):
        if not math.isfinite(getattr(params, name)):
            raise InvalidRequestError(name, "must be a finite number")
    if params.logprobs is not None and not 0 <= params.logprobs <= 20:
        raise InvalidRequestError("logprobs", "must be between 0 and 20")


class RyotEngine(_WorkerLoop):
    """One loaded GGUF model served by a single worker thread with continuous batching.

    Use as a context manager or call :meth:`close`. All public methods are thread safe.

    Args:
        config: Model path, context size per sequence, parallel sequences, threads and queue bound.

    Raises:
        ModelLoadError: The GGUF file is missing or llama.cpp cannot load it.
    """

    def __init__(self, config: RyotConfig | None = None) -> None:
        self.config = config or RyotConfig()
        path = resolve_model_path(self.config.model_path)
        self.n_threads = self.config.resolved_threads()
        self.first_token_handoff_s = self.config.resolved_first_token_handoff_s()
        """Pause after a step that gave a request its first token, seconds (see :class:`RyotConfig`)."""
        self._model = Model(path, repack=self.config.repack)
        try:
            self._ctx = Context(
                self._model,
                n_ctx_seq=self.config.n_ctx,
                n_seq=self.config.parallel,
                n_batch=self.config.n_batch,
                n_threads=self.n_threads,
                swa_full=self.config.swa_full,
                n_outputs_max=self.config.parallel * (self.config.draft_max + 1),
            )
        except BaseException:
            self._model.close()
            raise
        self._batch = Batch(self.config.n_batch)
        self.model_path: Path = path
        meta = self._model.metadata
        self.chat_template = ChatTemplate(
            override=self.config.chat_template,
            gguf_template=meta.get("tokenizer.chat_template"),
            architecture=meta.get("general.architecture", ""),
            bos=self._model.token_text(self._model.bos) if self._model.bos >= 0 else "",
            eos=self._model.token_text(self._model.eos) if self._model.eos >= 0 else "",
        )
        self._slots = [Slot(seq=i) for i in range(self.config.parallel)]
        self._prefix_cache: PrefixCache | None = None
        if self.config.prefix_cache_bytes > 0:
            reason = self._prefix_cache_unsupported()
            if reason:
                _log.info("prefix cache disabled for %s: %s", path.name, reason)
            else:
                self._prefix_cache = PrefixCache(self.config.prefix_cache_bytes, n_swa=self._model.n_swa)
        self.draft_tokens = 0
        """Tokens drafted by prompt lookup so far (speculative decoding)."""
        self.draft_accepted = 0
        """Drafted tokens the model confirmed (each saved one decode step)."""
        self.placeholders = 0
        """Placeholder tokens added to steps to keep their sequences in one micro-batch (ryot._schedule)."""
        self._token_cache = TokenCache()
        """Token ids of recent prompt texts (:mod:`ryot._token_cache`)."""
        self._seeds = random.Random(self.config.seed)  # noqa: S311 - sampling seeds, not secrets
        self._piece_buf = ctypes.create_string_buffer(256)
        self._outbox: list[tuple[Job, Event]] | None = None
        """Events of the step being run (``None`` outside steps: events go out at once)."""
        # SimpleQueue (C): its put and its get with a timeout take none of queue.Queue's Python-level
        # locks and conditions, on the submitting event loop and on the worker's wake-up; submit
        # enforces queue_size under self._lock (only the worker takes jobs out).
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name=WORKER_THREAD_NAME, daemon=True)
        self._worker.start()

    # -- information -------------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The model's file name without the ``.gguf`` suffix."""
        return self.model_path.stem

    @property
    def n_ctx(self) -> int:
        """Context window of one request (prompt + completion), in tokens."""
        return self._ctx.n_ctx_seq

    @property
    def parallel(self) -> int:
        """Requests decoded together (sequences of the context)."""
        return self._ctx.n_seq

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a free sequence (running ones not included)."""
        return self._queue.qsize()

    @property
    def active(self) -> int:
        """Requests being decoded right now."""
        return sum(slot.job is not None for slot in self._slots)

    @property
    def prefix_cache_stats(self) -> dict[str, int] | None:
        """Counters of the prefix cache, or ``None`` when it is off (see :meth:`PrefixCache.stats`).

        Keys: ``entries``, ``bytes``, ``max_bytes``, ``tokens``, ``lookups``, ``hits``, ``misses``,
        ``stores``, ``evictions``, ``rejected``, ``restored_tokens``, ``restore_failures``.
        """
        return self._prefix_cache.stats() if self._prefix_cache is not None else None

    @property
    def token_cache_stats(self) -> dict[str, int]:
        """Counters of the prompt token cache (see :meth:`ryot._token_cache.TokenCache.stats`)."""
        return self._token_cache.stats()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def metadata(self) -> dict[str, str]:
        """The GGUF metadata key/value pairs (``general.architecture``, ``general.name``, ...)."""
        return dict(self._model.metadata)

    # -- tokenization ------------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = False) -> list[int]:
        """Token ids of ``text`` with the model's tokenizer.

        Args:
            text: Text to tokenize.
            add_bos: Prepend the beginning-of-sequence token if the model uses one.
            special: Parse special-token text such as ``<start_of_turn>`` as the special token.
        """
        if self._closed:
            raise EngineClosedError()
        return self._model.tokenize(text.encode("utf-8"), add_special=add_bos, parse_special=special)

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt text for ``messages`` (see :mod:`ryot.chat` for which template is used).

        Raises:
            InvalidRequestError: No messages, no usable template, or the template rejects them.
        """
        return self.chat_template.render(messages)

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """Token ids the engine evaluates for ``prompt`` (a text, chat messages, or token ids as they are).

        Raises:
            InvalidRequestError: A token id outside the vocabulary (field ``prompt``).
        """
        if isinstance(prompt, TokenPrompt):
            n_vocab = self._model.n_vocab
            for i, token in enumerate(prompt.tokens):
                if not 0 <= token < n_vocab:
                    raise InvalidRequestError(
                        "prompt", f"token id {token} at {i} is outside 0..{n_vocab - 1}"
                    )
            return list(prompt.tokens)
        text, add_bos, special = self._text_of(prompt)
        return self.tokenize(text, add_bos=add_bos, special=special)

    def _text_of(self, prompt: str | Sequence[ChatMessage]) -> tuple[str, bool, bool]:
        """``(text, add_bos, special)``: the text the engine tokenizes for ``prompt`` and how."""
        if isinstance(prompt, str):
            return prompt, True, False
        return self.render_chat(prompt), not self.chat_template.includes_bos, True

    def _submitted_tokens(self, prompt: Prompt, namespace: str) -> list[int]:
        """:meth:`prompt_tokens`, through the token cache of ``namespace`` (:mod:`ryot._token_cache`)."""
        if isinstance(prompt, TokenPrompt):
            return self.prompt_tokens(prompt)
        text, add_bos, special = self._text_of(prompt)
        key = (namespace, text, add_bos, special)
        tokens = self._token_cache.get(key)
        if tokens is None:
            tokens = self.tokenize(text, add_bos=add_bos, special=special)
            self._token_cache.put(key, tokens)
        return tokens

    # -- generation --------------------------------------------------------------------------------------

    def submit(self, prompt: Prompt, params: SamplingParams, sink: Sink) -> GenerationHandle:
        """Queue a generation; its events are passed to ``sink`` on the worker thread.

        ``sink`` receives zero or more :class:`TokenChunk` and then one :class:`Finished` or
        :class:`Failed`. It must not block for long; if it raises, the request is cancelled. A sink
        may have a ``flush()`` attribute: the worker calls it after each batch of events it handed
        over (all of a decode step's, for every request), once per distinct ``flush``, so that sinks
        sharing one can wake their consumer once per step.

        Args:
            prompt: Prompt text, or chat messages rendered with the model's template.
            params: Sampling parameters.
            sink: Receives the request's events.

        Raises:
            InvalidRequestError: Empty prompt or a parameter out of range.
            PromptTooLongError: Prompt tokens + ``max_tokens`` exceed the context window.
            EngineBusyError: ``queue_size`` requests are already waiting.
            EngineClosedError: The engine is closed.
        """
        _validate(params)
        if params.grammar is not None:
            check_grammar(params.grammar)
            try:  # parse it now, so that a bad grammar is the caller's error and not a failed request
                Sampler(self._spec(params, 0), self._model).close()
            except ValueError:
                raise InvalidRequestError("grammar", "not a valid GBNF grammar with a 'root' rule") from None
        for token, _ in params.logit_bias:
            if not 0 <= token < self._model.n_vocab:
                raise InvalidRequestError(
                    "logit_bias", f"token id {token} is outside 0..{self._model.n_vocab - 1}"
                )
        if isinstance(prompt, str) and not prompt:
            raise InvalidRequestError("prompt", "must not be empty")
        tokens = self._submitted_tokens(prompt, params.prefix_namespace)
        if not tokens:
            raise InvalidRequestError("prompt", "tokenizes to nothing")
        if len(tokens) + params.max_tokens > self.n_ctx:
            raise PromptTooLongError(len(tokens), params.max_tokens, self.n_ctx)
        job = Job(tokens=tokens, params=params, sink=sink, submitted_at=time.perf_counter())
        with self._lock:
            if self._closed:
                raise EngineClosedError()
            if self._queue.qsize() >= self.config.queue_size:
                raise EngineBusyError(self.config.queue_size)
            self._queue.put(job)
        return GenerationHandle(job)

    def stream(self, prompt: Prompt, params: SamplingParams | None = None) -> Iterator[TokenChunk | Finished]:
        """Blocking iterator over one generation's events; closing it early cancels the request.

        Raises:
            RyotError: As :meth:`submit`, or a failure during generation.
        """
        events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        handle = self.submit(prompt, params or SamplingParams(), events.put)
        try:
            while True:
                event = events.get()
                if isinstance(event, Failed):
                    raise event.error
                yield event
                if isinstance(event, Finished):
                    return
        finally:
            handle.cancel()

    def generate(self, prompt: Prompt, params: SamplingParams | None = None) -> Completion:
        """Run one generation to the end and return its text and usage (blocking).

        Raises:
            RyotError: As :meth:`submit`, or a failure during generation.
        """
        for event in self.stream(prompt, params):
            if isinstance(event, Finished):
                return Completion(event.text, event.finish_reason, event.usage, event.timings)
        raise GenerationCancelledError()  # pragma: no cover - stream always ends with Finished

    # -- lifecycle ---------------------------------------------------------------------------------------

    def close(self, timeout_s: float = 10.0) -> None:
        """Cancel queued and running requests, stop the worker and free the model. Idempotent.

        Args:
            timeout_s: How long to wait for the worker to finish its current decode step.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:  # not the worker's: delivered at once, never into a step's outbox
                    self._deliver(job, Failed(EngineClosedError()))
                    _flush_sinks((job.sink,))
            self._queue.put(None)
        self._worker.join(timeout_s)
        if not self._worker.is_alive():
            self._batch.close()
            self._ctx.close()
            self._model.close()
            self._token_cache.clear()
            if self._prefix_cache is not None:
                self._prefix_cache.clear()  # its host memory goes with the model (stats stay readable)

    def __enter__(self) -> RyotEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
