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

A finished slot keeps its KV cache. A new request goes to the free slot whose cached tokens share the
longest prefix (of more than one token) with its prompt, else to the least recently used free slot,
and skips the prefill of the shared prefix
(``usage.cached_tokens``; the last prompt token is always evaluated, for fresh logits). Gemma 3's
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

Cancellation is checked between steps, so a cancelled request frees its slot within one decode step.

Requests with ``speculative=True`` (greedy only) add prompt-lookup draft tokens behind their next token
in the same batch; the model verifies them in that one decode and the matching prefix is kept
(:mod:`ryot._speculative`), so repetitive outputs take fewer steps. The kept tokens are greedy choices,
but from a batch holding several positions of one sequence, which llama.cpp rounds differently from
one position at a time: in a near tie the text can differ from the non-speculative one.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ryot._llama import Batch, Context, Model, Sampler, SamplerSpec
from ryot._prefix_cache import PrefixCache, as_tokens
from ryot._schedule import MAX_PAD, Fed, Job, Placeholder, Slot, choose_slot, lay_out, least_recently_used
from ryot._speculative import prompt_lookup
from ryot._text import TextAssembler
from ryot.chat import ChatTemplate
from ryot.config import RyotConfig
from ryot.errors import (
    EngineBusyError,
    EngineClosedError,
    GenerationCancelledError,
    InvalidRequestError,
    PromptTooLongError,
    RyotError,
)
from ryot.grammar import check_grammar
from ryot.models import resolve_model_path
from ryot.types import (
    ChatMessage,
    Completion,
    Event,
    Failed,
    Finished,
    FinishReason,
    SamplingParams,
    Timings,
    TokenChunk,
    TokenLogprob,
    TokenPrompt,
    TopLogprob,
    Usage,
)

Sink = Callable[[Event], None]
Prompt = str | Sequence[ChatMessage] | TokenPrompt
"""A prompt: text, chat messages (rendered with the chat template), or token ids."""

_log = logging.getLogger(__name__)

_MIN_SNAPSHOT_TOKENS = 32
"""Shortest sequence worth a prefix-cache entry (its prefill takes a few tens of milliseconds)."""
_MIN_GAIN_TOKENS = 16
"""Restore from the prefix cache only when it saves at least this many prefill tokens over a slot (and
snapshot a slot's tokens only when at least this many would be lost)."""
_IDLE_SNAPSHOT_DELAY_S = 0.02
"""How long the worker must have been idle before it snapshots a finished slot into the prefix cache."""
WORKER_THREAD_NAME = "ryot-worker"
"""Name of the worker thread, in Python and (on Linux) in the OS: ``top -H`` and ``/proc/<pid>/task/*/comm``
show it, and llama.cpp's OpenMP compute threads, which the worker starts, inherit it, so that the
engine's CPU time can be told apart from the service's (``benchmarks/llm_path.py`` does)."""


def _flush_sinks(sinks: Iterable[Sink]) -> None:
    """Call ``flush()`` once on each distinct flush callable of ``sinks`` that has one.

    The engine calls it after handing over a batch of events (a step's, or a single one outside
    steps), so that a sink can buffer events and signal its consumer once per batch (see :meth:`submit`).
    """
    done: set[Callable[[], None]] = set()
    for sink in sinks:
        flush = getattr(sink, "flush", None)
        if flush is not None and flush not in done:
            done.add(flush)
            try:
                flush()
            except Exception:  # a consumer gone; its requests are cancelled through their sinks
                _log.debug("sink flush failed", exc_info=True)


def _name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` (at most 15 bytes) in the OS on Linux; elsewhere do nothing."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # 15: PR_SET_NAME
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass


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
        self._job.cancelled.set()


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _validate(params: SamplingParams) -> None:
    if params.max_tokens < 1:
        raise InvalidRequestError("max_tokens", "must be at least 1")
    if not 0.0 <= params.temperature <= 2.0:
        raise InvalidRequestError("temperature", "must be between 0 and 2")
    if not 0.0 < params.top_p <= 1.0:
        raise InvalidRequestError("top_p", "must be in (0, 1]")
    if params.top_k < 0:
        raise InvalidRequestError("top_k", "must be 0 (off) or positive")
    if not 0.0 <= params.min_p <= 1.0:
        raise InvalidRequestError("min_p", "must be between 0 and 1")
    if params.repeat_penalty <= 0.0:
        raise InvalidRequestError("repeat_penalty", "must be positive")
    for name in ("presence_penalty", "frequency_penalty"):
        if not -2.0 <= getattr(params, name) <= 2.0:
            raise InvalidRequestError(name, "must be between -2 and 2")
    if params.logprobs is not None and not 0 <= params.logprobs <= 20:
        raise InvalidRequestError("logprobs", "must be between 0 and 20")


class RyotEngine:
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
        self._seeds = random.Random(self.config.seed)  # noqa: S311 - sampling seeds, not secrets
        self._piece_buf = ctypes.create_string_buffer(256)
        self._outbox: list[tuple[Job, Event]] | None = None
        """Events of the step being run (``None`` outside steps: events go out at once)."""
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=self.config.queue_size)
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
        if isinstance(prompt, str):
            return self.tokenize(prompt)
        return self.tokenize(
            self.render_chat(prompt), add_bos=not self.chat_template.includes_bos, special=True
        )

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
        tokens = self.prompt_tokens(prompt)
        if not tokens:
            raise InvalidRequestError("prompt", "tokenizes to nothing")
        if len(tokens) + params.max_tokens > self.n_ctx:
            raise PromptTooLongError(len(tokens), params.max_tokens, self.n_ctx)
        job = Job(tokens=tokens, params=params, sink=sink, submitted_at=time.perf_counter())
        with self._lock:
            if self._closed:
                raise EngineClosedError()
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise EngineBusyError(self.config.queue_size) from None
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
            self._queue.put_nowait(None)
        self._worker.join(timeout_s)
        if not self._worker.is_alive():
            self._batch.close()
            self._ctx.close()
            self._model.close()
            if self._prefix_cache is not None:
                self._prefix_cache.clear()  # its host memory goes with the model (stats stay readable)

    def __enter__(self) -> RyotEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- worker ------------------------------------------------------------------------------------------

    def _emit(self, job: Job, event: Event) -> bool:
        """Pass ``event`` to the job's sink (during a step: once the step's sampling is done).

        Returns False when the sink refused it (the request is then cancelled).
        """
        if self._outbox is not None:
            self._outbox.append((job, event))
            return not job.cancelled.is_set()
        ok = self._deliver(job, event)
        _flush_sinks((job.sink,))
        return ok

    @staticmethod
    def _deliver(job: Job, event: Event) -> bool:
        """Pass ``event`` to the job's sink now (any thread); False when the sink refused it."""
        try:
            job.sink(event)
        except Exception:
            job.cancelled.set()
            return False
        return True

    def _flush_outbox(self) -> None:
        """Deliver the events of the step just done, back to back.

        A step's tokens reach their sinks within microseconds of each other instead of one
        sampling apart, so a consumer that wakes up for the first (the bridge's event loop) finds the
        others already there and handles every request's token in one wake-up.
        """
        outbox, self._outbox = self._outbox, None
        if outbox:
            for job, event in outbox:
                self._deliver(job, event)
            _flush_sinks(job.sink for job, _ in outbox)

    def _run(self) -> None:
        _name_os_thread(WORKER_THREAD_NAME)
        stopping = False
        while True:
            stopping = self._admit(stopping)
            busy = [slot for slot in self._slots if slot.job is not None]
            if not busy:
                if stopping:
                    return
                continue
            if stopping:
                for slot in busy:
                    self._finish(slot, "cancelled")
                return
            self._outbox = []
            try:
                self._step(busy)
            except Exception as exc:  # a failed step ends the requests in it, never the worker
                for slot in busy:
                    if slot.job is not None:
                        self._fail(slot, exc)
            finally:
                self._flush_outbox()

    def _admit(self, stopping: bool) -> bool:
        """Move queued jobs into free slots; block only when nothing runs. Returns ``stopping``."""
        while not stopping:
            free = [slot for slot in self._slots if slot.job is None]
            if not free:
                break
            idle = len(free) == len(self._slots)
            unsaved = self._unsaved_slot() if idle else None
            try:
                if unsaved is not None:
                    job = self._queue.get(timeout=_IDLE_SNAPSHOT_DELAY_S)
                else:
                    job = self._queue.get(timeout=0.5) if idle else self._queue.get_nowait()
            except queue.Empty:
                if unsaved is None:
                    break
                self._save_whole(unsaved)  # idle: the copy is off every request's path
                continue
            if job is None:
                return True
            if job.cancelled.is_set():
                now = time.perf_counter()
                timings = Timings(now - job.submitted_at, 0.0, 0.0, 0)
                self._emit(job, Finished("cancelled", Usage(len(job.tokens), 0, 0), timings, ""))
                continue
            try:
                self._start(job, free)
            except Exception as exc:  # e.g. a sampler llama.cpp refuses: fail this request, keep serving
                self._emit(job, Failed(exc))
        return stopping

    def _prefix_cache_unsupported(self) -> str:
        """Why this model's states cannot be reused from the prefix cache ("" when they can)."""
        if self._model.recurrent:
            return "recurrent or hybrid memory cannot be trimmed back to a shared prefix"
        if self._model.n_swa > 0 and not self.config.swa_full:
            return "sliding-window attention without swa_full keeps only the window; set swa_full=True"
        return ""

    def _window_ok(self, seq: int, reuse: int) -> bool:
        """Whether ``seq`` still holds every position the token after ``reuse`` kept tokens attends to."""
        if self._model.n_swa <= 0 or reuse <= 0:
            return True
        pos_min = self._ctx.seq_pos_min(seq)
        return pos_min <= 0 or pos_min <= reuse - self._model.n_swa

    def _start(self, job: Job, free: list[Slot]) -> None:
        # Longest cached prefix wins; a match of at most one token (BOS) counts as none, so that such a
        # request takes the least recently used slot and leaves other slots' caches alone.
        tokens = job.tokens
        ns = job.params.prefix_namespace
        lcps = {id(s): _common_prefix(s.cached, tokens) if s.namespace == ns else 0 for s in self._slots}
        busy = [s.seq for s in self._slots if s.job is not None]
        slot = choose_slot(free, busy, lambda s: lcps[id(s)], min_gain=_MIN_GAIN_TOKENS)
        p = job.params
        seed = p.seed if p.seed is not None else self._seeds.getrandbits(32)
        sampler = Sampler(self._spec(p, seed), self._model)  # first: if it raises, the slot is untouched
        limit = len(tokens) - 1
        reuse = min(lcps[id(slot)], limit)
        if not self._window_ok(slot.seq, reuse):
            reuse = 0  # a restored sliding-window state lacks the window below this prefix
        cache = self._prefix_cache
        share = min(max(lcps.values()), limit)  # the longest prefix any slot, busy or free, shares
        restored = tried = False
        if cache is not None and limit >= _MIN_SNAPSHOT_TOKENS:
            prompt = as_tokens(tokens)
            entry, hit, longest = cache.lookup(prompt, limit, ns)
            share = max(share, longest)
            if entry is not None and hit >= reuse + _MIN_GAIN_TOKENS:
                tried = True
                slot = least_recently_used(free, busy)
                self._save_evicted(slot, keep=0)
                if self._ctx.set_seq_state(entry.state, slot.seq) and self._window_ok(slot.seq, hit):
                    reuse, restored = hit, True
                else:
                    _log.warning("prefix cache: restoring %d tokens failed; prefilling", len(entry.tokens))
                    cache.record_failure(entry)
                    reuse = 0
                slot.cached = entry.tokens.tolist()  # what the sequence holds now (trimmed below)
            cache.record(entry if restored else None, reuse)
        if not tried:
            self._save_evicted(slot, keep=reuse)
        if not self._ctx.seq_rm(slot.seq, reuse, -1):
            self._ctx.seq_rm(slot.seq, 0, -1)
            reuse = 0
        slot.shared = set() if tried else {b for b in slot.shared if b <= reuse}
        if cache is not None and share >= _MIN_SNAPSHOT_TOKENS:
            slot.shared.add(share)
        slot.job = job
        slot.saved = False
        slot.namespace = ns
        slot.cached = job.tokens[:reuse]
        slot.pending = job.tokens[reuse:]
        slot.reused = reuse
        slot.next_token = None
        slot.n_sampled = 0
        slot.admitted_at = time.perf_counter()
        slot.sampler = sampler
        slot.text = TextAssembler(p.stop)

    def _unsaved_slot(self) -> Slot | None:
        """A slot whose whole sequence the prefix cache does not hold yet (``None``: none, or no cache)."""
        if self._prefix_cache is None:
            return None
        for slot in self._slots:
            if not slot.saved and len(slot.cached) >= _MIN_SNAPSHOT_TOKENS:
                return slot
        return None

    def _save_whole(self, slot: Slot) -> None:
        """Snapshot all of ``slot.cached`` unless done before for these tokens or the cache covers them.

        The worker calls it for finished slots while idle, so that evicting one later costs the next
        request nothing, and from :meth:`_save_evicted` for a slot the idle pass did not reach.
        """
        cache = self._prefix_cache
        if cache is None or slot.saved:
            return
        slot.saved = True
        if not cache.covers(as_tokens(slot.cached), slot.namespace):
            self._snapshot(slot.seq, slot.cached, slot.namespace)

    def _save_evicted(self, slot: Slot, keep: int) -> None:
        """Snapshot ``slot`` into the prefix cache before its tokens past ``keep`` are dropped.

        Saves its whole sequence, then each shared prefix longer than ``keep``: the caller is about to
        trim the sequence anyway, and trimming first makes the saved state end at that prefix, which a
        sliding-window model needs (see :mod:`ryot._prefix_cache`). Covered ones are skipped.
        """
        cache = self._prefix_cache
        n = len(slot.cached)
        if cache is None or n < _MIN_SNAPSHOT_TOKENS or n - keep < _MIN_GAIN_TOKENS:
            return  # too little would be lost for a later restore to pay off (see _MIN_GAIN_TOKENS)
        self._save_whole(slot)
        for b in sorted(slot.shared, reverse=True):
            if b - keep < _MIN_GAIN_TOKENS or b < _MIN_SNAPSHOT_TOKENS:
                break
            if b >= len(slot.cached) or cache.covers(as_tokens(slot.cached[:b]), slot.namespace):
                continue
            if not self._window_ok(slot.seq, b) or not self._ctx.seq_rm(slot.seq, b, -1):
                continue
            del slot.cached[b:]
            self._snapshot(slot.seq, slot.cached, slot.namespace)

    def _snapshot(self, seq: int, tokens: Sequence[int], namespace: str) -> None:
        """Save the state of ``seq``, which holds exactly ``tokens``, into the prefix cache."""
        cache = self._prefix_cache
        assert cache is not None
        state = self._ctx.seq_state(seq)
        if state is not None:
            cache.put(as_tokens(tokens), state, cache.pos_min_of(len(tokens)), namespace)

    @staticmethod
    def _spec(p: SamplingParams, seed: int) -> SamplerSpec:
        return SamplerSpec(
            p.temperature,
            p.top_k,
            p.top_p,
            p.min_p,
            p.repeat_penalty,
            seed,
            p.grammar,
            presence_penalty=p.presence_penalty,
            frequency_penalty=p.frequency_penalty,
            logit_bias=p.logit_bias,
        )

    def _draft(self, slot: Slot) -> list[int]:
        """Prompt-lookup draft for a decoding slot, or nothing when speculation cannot help or apply."""
        job = slot.job
        assert job is not None and slot.next_token is not None
        p = job.params
        if not p.speculative or p.temperature > 0.0 or p.grammar is not None or p.logprobs is not None:
            return []
        if p.repeat_penalty != 1.0 or p.presence_penalty != 0.0 or p.frequency_penalty != 0.0 or p.logit_bias:
            return []  # greedy only: stateful samplers could not take back rejected draft tokens
        room = min(
            self.config.draft_max,
            p.max_tokens - slot.n_sampled - 1,
            self.n_ctx - len(slot.cached) - 2,
        )
        return prompt_lookup([*slot.cached, slot.next_token], draft_max=room)

    def _step(self, busy: list[Slot]) -> None:
        """One step: prefill chunks, each prompt in its own ``llama_decode``, then one for the rest.

        The second ``llama_decode`` holds the next token of every decoding sequence (those whose
        prefill just completed included); a prefill's first token is delivered before it (TTFT).

        A prompt is evaluated in its own call, as when it is served alone: llama.cpp splits a batch whose
        sequences bring different numbers of tokens into micro-batches anyway (see ryot._schedule), and
        where it cuts a prompt changes the rounding of its logits, so that a greedy text would depend
        on what else was admitted in the same step. While any sequence decodes, the prompts get at most
        ``prefill_chunk`` tokens per step (chunked prefill).
        """
        for slot in busy:
            if slot.job is not None and slot.job.cancelled.is_set():
                self._finish(slot, "cancelled")
        busy = [slot for slot in busy if slot.job is not None]
        capacity = self._batch.capacity
        budget = capacity
        first_tokens = False
        if any(slot.next_token is not None for slot in busy):
            budget = min(budget, self.config.prefill_chunk)
        for slot in busy:
            if slot.job is None or slot.next_token is not None or not slot.pending or budget <= 0:
                continue
            chunk = slot.pending[:budget]
            done = len(chunk) == len(slot.pending)
            budget -= len(chunk)
            slot.pending = slot.pending[len(chunk) :]
            self._decode([Fed(slot, chunk, [], [], [len(chunk) - 1] if done else [])])
            first_tokens = first_tokens or done
        if first_tokens and self._outbox is not None:  # a first token goes out now, not one decode later
            self._flush_outbox()
            self._outbox = []
        fed_list: list[Fed] = []
        room = capacity
        decoding = [slot for slot in busy if slot.job is not None and slot.next_token is not None]
        for slot in decoding:  # their next token, plus any draft tokens to verify
            assert slot.next_token is not None
            draft = self._draft(slot)[: max(room - len(decoding), 0)]
            fed = [slot.next_token, *draft]
            fed_list.append(Fed(slot, fed, [], draft, list(range(len(fed)))))
            room -= len(fed)
        if fed_list:
            self._decode(fed_list)

    def _decode(self, fed_list: list[Fed]) -> None:
        """Evaluate ``fed_list`` in one ``llama_decode`` and sample where asked.

        The entries go in sequence order, with placeholders in short holes, so that llama.cpp makes
        one micro-batch of them when they bring one token each (see ryot._schedule).
        """
        batch = self._batch
        idle = [slot for slot in self._slots if slot.job is None]
        room = batch.capacity - sum(len(f.fed) for f in fed_list)
        layout = lay_out(fed_list, idle, room=room, n_ctx=self.n_ctx, max_pad=MAX_PAD)
        batch.clear()
        pads: list[Placeholder] = []
        pad_token = max(self._model.bos, 0)
        for entry in layout:
            if isinstance(entry, Placeholder):
                batch.add(pad_token, entry.pos, entry.slot.seq, False)
                pads.append(entry)
                continue
            base = len(entry.slot.cached)
            seq = entry.slot.seq
            wanted = entry.sampled
            for i, token in enumerate(entry.fed):
                idx = batch.add(token, base + i, seq, i in wanted)
                if i in wanted:
                    entry.outputs.append((idx, i))
        self.placeholders += len(pads)
        rc = self._ctx.decode(batch)
        for pad in pads:
            self._ctx.seq_rm(pad.slot.seq, pad.pos, -1)
        if rc != 0:
            raise RyotError(f"llama_decode failed with code {rc} (KV cache full?)")
        for f in fed_list:
            self._verify(f)

    def _verify(self, f: Fed) -> None:
        """Sample after each fed token with logits; keep draft tokens while they match (greedy)."""
        slot = f.slot
        base = len(slot.cached)
        slot.cached.extend(f.fed)
        self.draft_tokens += len(f.draft)
        for i, (idx, offset) in enumerate(f.outputs):
            if slot.job is None or slot.sampler is None:
                break
            token = slot.sampler.sample(self._ctx, idx)
            top = slot.job.params.logprobs
            self._accept(slot, token, None if top is None else self._logprob(slot.sampler, idx, token, top))
            if i < len(f.draft) and token == f.draft[i] and slot.job is not None:
                self.draft_accepted += 1
                slot.next_token = None  # already fed (and in the KV cache) as part of the draft
                continue
            keep = base + offset + 1  # fed[: offset + 1] stays; rejected draft tokens leave the KV cache
            if len(slot.cached) > keep:
                self._ctx.seq_rm(slot.seq, keep, -1)
                del slot.cached[keep:]
            break

    def _token_text(self, token: int) -> tuple[str, bytes]:
        raw = self._model.piece(token, self._piece_buf)
        return raw.decode("utf-8", errors="replace"), raw

    def _logprob(self, sampler: Sampler, idx: int, token: int, top: int) -> TokenLogprob:
        """The sampled token's log probability and the ``top`` most likely ones at batch entry ``idx``."""
        chosen, best = sampler.logprobs(self._ctx, idx, token, top)
        text, raw = self._token_text(token)
        alternatives = tuple(TopLogprob(*self._token_text(t), lp) for t, lp in best)
        return TokenLogprob(text, raw, chosen, alternatives)

    def _accept(self, slot: Slot, token: int, logprob: TokenLogprob | None = None) -> None:
        job = slot.job
        assert job is not None and slot.text is not None
        now = time.perf_counter()
        if slot.n_sampled == 0:
            slot.first_at = now
        slot.last_at = now
        if self._model.is_eog(token):
            self._finish(slot, "stop")
            return
        slot.n_sampled += 1
        text = slot.text.feed(self._model.piece(token, self._piece_buf))
        logprobs = () if logprob is None else (logprob,)
        if (text or slot.text.hit_stop or logprobs) and not self._emit(job, TokenChunk(text, 1, logprobs)):
            self._finish(slot, "cancelled")
            return
        if slot.text.hit_stop:
            self._finish(slot, "stop")
        elif slot.n_sampled >= job.params.max_tokens:
            self._finish(slot, "length")
        else:
            slot.next_token = token

    def _release(self, slot: Slot) -> Job:
        job = slot.job
        assert job is not None
        if slot.sampler is not None:
            slot.sampler.close()
        slot.sampler = None
        slot.job = None
        slot.next_token = None
        slot.pending = []
        slot.last_used = time.perf_counter()
        return job

    def _finish(self, slot: Slot, reason: FinishReason) -> None:
        assert slot.text is not None
        tail = slot.text.finish()
        job = self._release(slot)
        if tail:
            self._emit(job, TokenChunk(tail, 0))
        started = slot.admitted_at
        first = slot.first_at if slot.n_sampled or reason == "stop" else started
        usage = Usage(
            prompt_tokens=len(job.tokens), completion_tokens=slot.n_sampled, cached_tokens=slot.reused
        )
        timings = Timings(
            queue_s=started - job.submitted_at,
            ttft_s=max(first - started, 0.0),
            decode_s=max(slot.last_at - first, 0.0) if slot.n_sampled else 0.0,
            decode_tokens=max(slot.n_sampled - 1, 0),
        )
        self._emit(job, Finished(reason, usage, timings, slot.text.text))

    def _fail(self, slot: Slot, exc: Exception) -> None:
        job = self._release(slot)
        slot.cached = []
        self._ctx.seq_rm(slot.seq, 0, -1)
        self._emit(job, Failed(exc))
