"""The Ryot engine: one GGUF model, one llama.cpp context, one worker thread.

llama.cpp contexts are not thread safe, so a single worker thread owns the context and serves requests
one at a time from a bounded queue (a full queue refuses new work with :class:`EngineBusyError`).
Between requests the KV cache keeps the previous prompt and completion; a new prompt that shares a
prefix with it skips the prefill of that prefix (``usage.cached_tokens``). Cancellation is checked
between sampled tokens, so a cancelled request frees the worker within one decode step.

The sampling chain and prefix matching are llama-cpp-python's ``Llama.generate``; this module adds the
queue, cancellation, stop strings, incremental UTF-8 decoding and exact usage accounting.
"""

from __future__ import annotations

import codecs
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp

from ryot.chat import ChatTemplate
from ryot.config import RyotConfig
from ryot.errors import (
    EngineBusyError,
    EngineClosedError,
    GenerationCancelledError,
    InvalidRequestError,
    ModelLoadError,
    PromptTooLongError,
)
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
    Usage,
)

Sink = Callable[[Event], None]


class _CountingLlama(llama_cpp.Llama):
    """``Llama`` that counts the tokens it evaluates, so cached (skipped) prompt tokens are exact."""

    evaluated_tokens: int = 0

    def eval(self, tokens: Sequence[int]) -> None:
        self.evaluated_tokens += len(tokens)
        super().eval(tokens)


@dataclass(slots=True)
class _Job:
    tokens: list[int]
    params: SamplingParams
    sink: Sink
    submitted_at: float
    cancelled: threading.Event = field(default_factory=threading.Event)


class GenerationHandle:
    """A submitted request: lets the caller cancel it."""

    __slots__ = ("_job",)

    def __init__(self, job: _Job) -> None:
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


class _StopMatcher:
    """Finds stop strings in streamed text and holds back text that may begin one."""

    __slots__ = ("_stops", "_pending")

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add decoded text; return (text safe to emit, whether a stop string was reached)."""
        if not self._stops:
            return text, False
        self._pending += text
        cut = min((i for i in (self._pending.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self._pending = self._pending[:cut], ""
            return out, True
        hold = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(self._pending)), hold, -1):
                if self._pending.endswith(stop[:n]):
                    hold = n
                    break
        out = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(self._pending) - hold :]
        return out, False

    def flush(self) -> str:
        """Text still held back when generation ends without a stop string."""
        out, self._pending = self._pending, ""
        return out


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


class RyotEngine:
    """One loaded GGUF model served by a single worker thread.

    Use as a context manager or call :meth:`close`. All public methods are thread safe.

    Args:
        config: Model path, context size, threads and queue bound.

    Raises:
        ModelLoadError: The GGUF file is missing or llama.cpp cannot load it.
    """

    def __init__(self, config: RyotConfig | None = None) -> None:
        self.config = config or RyotConfig()
        path = resolve_model_path(self.config.model_path)
        threads = self.config.resolved_threads()
        try:
            self._llm = _CountingLlama(
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_batch=self.config.n_batch,
                n_threads=threads,
                n_threads_batch=threads,
                swa_full=self.config.swa_full,
                seed=self.config.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(str(path), str(exc)) from exc
        self.model_path: Path = path
        self.n_threads = threads
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        eos_id, bos_id = self._llm.token_eos(), self._llm.token_bos()
        model = self._llm._model  # the high-level API exposes token text only through _model
        self.chat_template = ChatTemplate(
            override=self.config.chat_template,
            gguf_template=self._llm.metadata.get("tokenizer.chat_template"),
            architecture=self._llm.metadata.get("general.architecture", ""),
            bos=model.token_get_text(bos_id) if bos_id != -1 else "",
            eos=model.token_get_text(eos_id) if eos_id != -1 else "",
        )
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=self.config.queue_size)
        self._lock = threading.Lock()
        self._closed = False
        self._current: _Job | None = None
        self._worker = threading.Thread(target=self._run, name="ryot-worker", daemon=True)
        self._worker.start()

    # -- information -------------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The model's file name without the ``.gguf`` suffix."""
        return self.model_path.stem

    @property
    def n_ctx(self) -> int:
        """Context window in tokens."""
        return int(self._llm.n_ctx())

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the worker (the running one not included)."""
        return self._queue.qsize()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def metadata(self) -> dict[str, str]:
        """The GGUF metadata key/value pairs (``general.architecture``, ``general.name``, ...)."""
        return dict(self._llm.metadata)

    # -- tokenization ------------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = False) -> list[int]:
        """Token ids of ``text`` with the model's tokenizer.

        Args:
            text: Text to tokenize.
            add_bos: Prepend the beginning-of-sequence token if the model uses one.
            special: Parse special-token text such as ``<start_of_turn>`` as the special token.
        """
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt text for ``messages`` (see :mod:`ryot.chat` for which template is used).

        Raises:
            InvalidRequestError: No messages, no usable template, or the template rejects them.
        """
        return self.chat_template.render(messages)

    def prompt_tokens(self, prompt: str | Sequence[ChatMessage]) -> list[int]:
        """Token ids the engine evaluates for ``prompt`` (a text, or chat messages)."""
        if isinstance(prompt, str):
            return self.tokenize(prompt)
        return self.tokenize(
            self.render_chat(prompt), add_bos=not self.chat_template.includes_bos, special=True
        )

    # -- generation --------------------------------------------------------------------------------------

    def submit(
        self, prompt: str | Sequence[ChatMessage], params: SamplingParams, sink: Sink
    ) -> GenerationHandle:
        """Queue a generation; its events are passed to ``sink`` on the worker thread.

        ``sink`` receives zero or more :class:`TokenChunk` and then one :class:`Finished` or
        :class:`Failed`. It must not block for long; if it raises, the request is cancelled.

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
        if isinstance(prompt, str) and not prompt:
            raise InvalidRequestError("prompt", "must not be empty")
        tokens = self.prompt_tokens(prompt)
        if len(tokens) + params.max_tokens > self.n_ctx:
            raise PromptTooLongError(len(tokens), params.max_tokens, self.n_ctx)
        job = _Job(tokens=tokens, params=params, sink=sink, submitted_at=time.perf_counter())
        with self._lock:
            if self._closed:
                raise EngineClosedError()
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise EngineBusyError(self.config.queue_size) from None
        return GenerationHandle(job)

    def stream(
        self, prompt: str | Sequence[ChatMessage], params: SamplingParams | None = None
    ) -> Iterator[TokenChunk | Finished]:
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

    def generate(
        self, prompt: str | Sequence[ChatMessage], params: SamplingParams | None = None
    ) -> Completion:
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
                if job is not None:
                    self._emit(job, Failed(EngineClosedError()))
            current = self._current
            if current is not None:
                current.cancelled.set()
            self._queue.put_nowait(None)
        self._worker.join(timeout_s)
        if not self._worker.is_alive():
            self._llm.close()

    def __enter__(self) -> RyotEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- worker ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._current = job
            try:
                self._generate(job)
            except Exception as exc:  # a failure ends this request, never the worker
                self._emit(job, Failed(exc))
            finally:
                self._current = None

    @staticmethod
    def _emit(job: _Job, event: Event) -> bool:
        try:
            job.sink(event)
        except Exception:
            job.cancelled.set()
            return False
        return True

    def _generate(self, job: _Job) -> None:
        started = time.perf_counter()
        params = job.params
        if job.cancelled.is_set():
            timings = Timings(started - job.submitted_at, 0.0, 0.0, 0)
            self._emit(job, Finished("cancelled", Usage(len(job.tokens), 0, 0), timings, ""))
            return
        llm = self._llm
        if params.seed is not None:
            llm.set_seed(params.seed)
        evaluated_before = llm.evaluated_tokens
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stopper = _StopMatcher(params.stop)
        parts: list[str] = []
        cached = 0
        n_sampled = 0
        first_at = last_at = started
        finish: FinishReason = "length"
        hit_stop_string = False
        tokens: Any = llm.generate(
            job.tokens,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            temp=params.temperature,
            repeat_penalty=params.repeat_penalty,
            reset=True,
        )
        try:
            for token in tokens:
                now = time.perf_counter()
                if n_sampled == 0:
                    cached = len(job.tokens) - (llm.evaluated_tokens - evaluated_before)
                    first_at = now
                last_at = now
                if job.cancelled.is_set():
                    finish = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    finish = "stop"
                    break
                n_sampled += 1
                text, stopped = stopper.feed(decoder.decode(llm.detokenize([token])))
                if text or stopped:
                    parts.append(text)
                    if not self._emit(job, TokenChunk(text, 1)):
                        finish = "cancelled"
                        break
                if stopped:
                    finish, hit_stop_string = "stop", True
                    break
                if n_sampled >= params.max_tokens:
                    break
        finally:
            tokens.close()
        if not hit_stop_string:
            tail = stopper.flush() + decoder.decode(b"", final=True)
            if tail:
                parts.append(tail)
                self._emit(job, TokenChunk(tail, 0))
        usage = Usage(prompt_tokens=len(job.tokens), completion_tokens=n_sampled, cached_tokens=cached)
        timings = Timings(
            queue_s=started - job.submitted_at,
            ttft_s=first_at - started,
            decode_s=last_at - first_at,
            decode_tokens=max(n_sampled - 1, 0),
        )
        self._emit(job, Finished(finish, usage, timings, "".join(parts)))
