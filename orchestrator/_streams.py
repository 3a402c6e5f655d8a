"""Streams an agent accepted: the routed call (:class:`RoutedStream`) and a generation's events on it.

A :class:`RoutedStream` is what :meth:`orchestrator.Router.open_stream` returns once failover is over (an
instance accepted and sent its first message); :class:`GenerationStream` reads the generator agent's
stream as :class:`TextDelta` events and then its :class:`~agents.protocol.GenerateOutput`, measuring TTFT,
inter-token latency and the hop for the observer.

Both are read in one of two ways, or the first then the second:

- **pull**: ``await next()`` (or ``async for``) for each event, as an async generator would yield it;
- **push**: ``push(on_delta)`` hands every later chunk to a callback as it arrives, inside nats-py's read
  loop (see :meth:`orchestrator._dispatch.AgentCall.push`), and ``next()`` then returns only what the
  callback was not given: the output, or raises the error. A streamed HTTP response that formats and
  writes each chunk in that callback saves its task's wake-up and a chain of generator resumptions per
  event (docs/ryot.md, "The API side of the stream").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.errors import AgentError, StreamBrokenError
from agents.protocol import Chunk, End, GenerateOutput
from orchestrator._dispatch import AgentCall
from orchestrator._observe import CallObserver

__all__ = ("GenerationStream", "RoutedStream", "TextDelta")


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Streamed text of a generation.

    Attributes:
        text: Text since the previous delta.
        logprobs: Per token sampled since the previous delta, its log probability and alternatives
            (:class:`agents.protocol.TokenLogprobOut` as dicts), when the input asked for them.
    """

    text: str
    logprobs: tuple[dict[str, Any], ...] = ()


_new = object.__new__
_SET_TEXT, _SET_LOGPROBS = (vars(TextDelta)[name].__set__ for name in ("text", "logprobs"))


class RoutedStream:
    """A streamed call an instance accepted: its first message, then the rest (pulled or pushed).

    Attributes:
        first: The call's first stream message (a chunk, or the :class:`~agents.protocol.End`).
    """

    __slots__ = ("_call", "_closed", "_on_close", "first")

    def __init__(self, call: AgentCall, first: Chunk | End, on_close: Callable[[], None]) -> None:
        self._call = call
        self._on_close = on_close
        self._closed = False
        self.first = first

    @property
    def done(self) -> bool:
        """Whether the call's End (or Error) has arrived."""
        return self._call.done

    async def next(self) -> Chunk | End:
        """The next chunk (one not pushed), or the End.

        Raises:
            AgentError: The agent's error, a passed deadline, a lost instance, a broken stream (see
                :func:`orchestrator._dispatch.call_agent`).
        """
        return await self._call.next()

    def push(self, on_chunk: Callable[[Chunk], None]) -> None:
        """Hand each later chunk to ``on_chunk`` in nats-py's read loop (:meth:`AgentCall.push`)."""
        self._call.push(on_chunk)

    async def aclose(self, failure: BaseException | None = None) -> None:
        """End the call: cancel it on the agent if it has not ended, close its inbox. Idempotent.

        Args:
            failure: What ended the reading early, if anything (marks the call's span failed); ``None``
                before the End means the consumer left early, as closing a generator does.
        """
        if self._closed:
            return
        self._closed = True
        call = self._call
        if call.done and (failure is None or isinstance(failure, GeneratorExit)):
            failure = None
        elif failure is None:
            failure = GeneratorExit()  # the consumer left early (the span says so, as for a generator)
        try:
            await call.finish(failure)
        finally:
            self._on_close()


class GenerationStream:
    """A generation on the ``generator`` agent: :class:`TextDelta` events, then its ``GenerateOutput``.

    Made by :meth:`orchestrator.Orchestrator.open_generation` with the first event in hand
    (:attr:`first`). Read the rest with :meth:`next` (``async for``), or :meth:`push` the deltas and
    :meth:`next` the output. :meth:`aclose` it (which cancels the generation if it has not ended); the hop
    (outcome, seconds) goes to the observer then.

    Attributes:
        first: The first event (a delta, or the output when the whole answer came at once).
    """

    __slots__ = ("_closed", "_last", "_observer", "_outcome", "_routed", "_started", "first")

    def __init__(self, routed: RoutedStream, observer: CallObserver | None, started: float) -> None:
        self._routed = routed
        self._observer = observer
        self._started = started
        self._last = 0.0
        self._outcome = "cancelled"
        self._closed = False
        self.first = self._event(routed.first)

    def _delta(self, chunk: Chunk) -> TextDelta:
        """A chunk as a delta; its arrival measured (TTFT for the first, inter-token latency after)."""
        now = time.perf_counter()
        observer = self._observer
        if observer is not None:
            if self._last:
                observer.inter_token(now - self._last)
            else:
                observer.first_token(now - self._started)
        self._last = now
        data = chunk.data
        delta: TextDelta = _new(TextDelta)  # through the slots: the frozen __init__ costs three calls
        _SET_TEXT(delta, str(data.get("text", "")))
        _SET_LOGPROBS(delta, tuple(data.get("logprobs") or ()))
        return delta

    def _event(self, event: Chunk | End) -> TextDelta | GenerateOutput:
        if isinstance(event, Chunk):
            return self._delta(event)
        try:
            output = GenerateOutput.model_validate(event.output)
        except ValueError as exc:
            raise StreamBrokenError(f"generator returned an unreadable output: {exc}") from None
        self._outcome = "ok"
        if self._observer is not None:
            self._observer.generation(output)
        return output

    async def next(self) -> TextDelta | GenerateOutput:
        """The next event (a delta not pushed, or the output).

        Raises:
            StopAsyncIteration: The output was the previous event.
            StreamBrokenError: The generator's output could not be read.
            AgentError: See :func:`orchestrator._dispatch.call_agent`.
        """
        if self._routed.done:
            raise StopAsyncIteration
        try:
            return self._event(await self._routed.next())
        except AgentError as exc:
            self._outcome = exc.code
            raise

    def __aiter__(self) -> GenerationStream:
        return self

    async def __anext__(self) -> TextDelta | GenerateOutput:
        return await self.next()

    def push(self, on_delta: Callable[[TextDelta], None]) -> None:
        """Hand each later delta to ``on_delta`` as its chunk arrives, in nats-py's read loop.

        ``on_delta`` must not block; an exception it raises is raised by :meth:`next`. The deltas are
        measured as :meth:`next` measures them.
        """
        delta = self._delta

        def on_chunk(chunk: Chunk) -> None:
            on_delta(delta(chunk))

        self._routed.push(on_chunk)

    async def aclose(self, failure: BaseException | None = None) -> None:
        """Stop: cancel the generation on the agent if it has not ended (frees its LLM slot). Idempotent.

        Args:
            failure: What ended the reading early, if anything (see :meth:`RoutedStream.aclose`).
        """
        if self._closed:
            return
        self._closed = True
        if isinstance(failure, AgentError):
            self._outcome = failure.code
        try:
            await self._routed.aclose(failure)
        finally:
            if self._observer is not None:
                self._observer.hop(
                    "inference", "generator", self._outcome, time.perf_counter() - self._started
                )
