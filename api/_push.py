"""Streamed generations written from nats-py's read loop: one HTTP write per token event, no task wake-up.

A streamed response used to pull each token event through a chain of async generators (the relay, the
route's encoder, litestar's ``Stream``) in its own task, which the event's arrival woke: one loop turn and
~16 generator resumptions per event before the HTTP write. A :func:`push_response` instead hands the
stream's deltas to :meth:`orchestrator.GenerationStream.push`: each chunk is checked (sequence, deadline),
measured, formatted and written inside the read loop that received it. The response's task waits only for
the end: the output (the last events), an error (an error event), the deadline or the client's disconnect
(which cancels the generation on the agent, as before).

Writing needs no ``await`` as long as the connection takes the bytes: :class:`BodyWriter` runs the ASGI
``send`` coroutine until it returns, which it does at once unless the transport's buffer is full
(uvicorn's flow control). Then the rest of that send runs when its future is done, and later bodies
queue behind it in order; the response's end waits for them (:meth:`BodyWriter.flush`).

The bytes are each format's own (native SSE, OpenAI SSE, Ollama NDJSON): a route gives the functions that
encode a delta, the output and an error.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Receive, Send

from agents.errors import AgentError
from agents.protocol import GenerateOutput
from orchestrator import GenerationStream, TextDelta

__all__ = ("BodyWriter", "EventFormat", "push_response")


class BodyWriter:
    """Writes ASGI body messages from plain callbacks (no ``await``), in order.

    :meth:`write` runs ``send`` to its end at once when it does not wait (the transport took the bytes);
    if it waits (flow control), it resumes when the future it waits on is done (after a bare ``yield``,
    such as ``asyncio.sleep(0)``, on the loop's next turn), and bodies written meanwhile queue behind it.
    Every send runs in the context of the task that made the writer, but a resumed send runs in no task:
    a ``send`` that waits inside an anyio cancel scope (an ``anyio.Lock``) fails, and the response with it.

    Args:
        send: The response's ASGI ``send``.
    """

    __slots__ = ("_backlog", "_context", "_idle", "_pending", "_send", "error")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._context = contextvars.copy_context()
        self._pending: Generator[Any, None, None] | None = None
        self._backlog: deque[bytes] = deque()
        self._idle: asyncio.Future[None] | None = None
        self.error: BaseException | None = None
        """What a send raised, if one did (then nothing more is sent)."""

    @property
    def waiting(self) -> bool:
        """Whether a send is waiting for the connection (flow control) and later bodies queue behind it."""
        return self._pending is not None

    def write(self, body: bytes) -> None:
        """Send ``body`` as one body message (more to come), now or after the sends before it.

        Never raises: a failed send is raised by :meth:`flush`, and later bodies are dropped.
        """
        if self._pending is not None or self._backlog:
            self._backlog.append(body)
        elif self.error is None:
            self._step(self._body(body))

    def _body(self, body: bytes) -> Generator[Any, None, None]:
        """The ASGI send of ``body`` (more to come), as a coroutine for :meth:`_step` to run."""
        return self._send({"type": "http.response.body", "body": body, "more_body": True}).__await__()

    def _step(self, coro: Generator[Any, None, None]) -> None:
        """Run ``coro`` until it ends or waits on a future (then resume it from that future's callback)."""
        try:
            waited = self._context.run(coro.send, None)
        except StopIteration:
            return
        except BaseException as exc:  # the response's task raises it (flush)
            self._fail(exc)
            return
        if waited is None:  # a bare yield (``asyncio.sleep(0)``, anyio's checkpoints): resume next turn
            self._pending = coro
            asyncio.get_running_loop().call_soon(self._resume, None)  # as asyncio's Task does
            return
        if not isinstance(waited, asyncio.Future):  # not asyncio's protocol: nothing to resume on
            coro.close()
            self._fail(RuntimeError(f"the ASGI send waited on {waited!r}, not on a future"))
            return
        waited._asyncio_future_blocking = False  # as asyncio's Task does before it resumes the coroutine
        self._pending = coro
        waited.add_done_callback(self._resume)

    def _resume(self, _: asyncio.Future[Any] | None) -> None:
        coro, self._pending = self._pending, None
        if coro is None:  # closed meanwhile
            return
        self._step(coro)
        while self._pending is None and self.error is None and self._backlog:
            self._step(self._body(self._backlog.popleft()))
        if self._pending is None:
            self._wake()

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self._backlog.clear()
        self._wake()

    def _wake(self) -> None:
        idle = self._idle
        if idle is not None and not idle.done():
            idle.set_result(None)

    async def flush(self) -> None:
        """Wait until every body written so far is sent.

        Raises:
            BaseException: What a send raised.
        """
        while self._pending is not None and self.error is None:
            self._idle = asyncio.get_running_loop().create_future()
            await self._idle
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Drop a send still waiting and the bodies behind it (the response is over). Idempotent."""
        coro, self._pending = self._pending, None
        self._backlog.clear()
        if coro is not None:
            coro.close()


@dataclass(frozen=True, slots=True)
class EventFormat:
    """How one stream format writes a generation.

    Attributes:
        delta: The bytes of a text delta (``b""``: nothing to write for it).
        end: The bytes after the output (the last events, e.g. ``done`` or the usage and ``[DONE]``).
        error: The bytes of an error after the response started.
        head: Bytes written before the first event (e.g. OpenAI's role chunk).
    """

    delta: Callable[[TextDelta], bytes]
    end: Callable[[GenerateOutput], bytes]
    error: Callable[[AgentError], bytes]
    head: bytes = b""


class _PushedGeneration:
    """The body of a :func:`push_response`: the events of ``stream`` in ``fmt``, written as they arrive.

    :meth:`begin` writes the head and the first event (in hand before the response started) without an
    ``await``; :meth:`run` writes the rest and closes the stream.
    """

    __slots__ = ("_early", "_writer", "fmt", "stream")

    def __init__(self, stream: GenerationStream, fmt: EventFormat) -> None:
        self.stream = stream
        self.fmt = fmt
        self._writer: BodyWriter | None = None
        self._early: BaseException | None = None
        """What :meth:`begin` met, raised by :meth:`run` (which then closes the stream)."""

    def __aiter__(self) -> _PushedGeneration:  # litestar's Stream takes async iterables only
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration

    def begin(self, send: Send) -> None:
        """Write the head and the first event now, and hand the later deltas to the read loop.

        Never raises: what it meets is raised by :meth:`run`, which must follow in any case.
        """
        writer = self._writer = BodyWriter(send)
        try:
            if self.fmt.head:
                writer.write(self.fmt.head)
            first = self.stream.first
            if isinstance(first, TextDelta):
                self._on_delta(first)
                self.stream.push(self._on_delta)  # the later deltas come in the read loop
        except BaseException as exc:  # raised again by run(), which closes the stream
            self._early = exc

    def _on_delta(self, delta: TextDelta) -> None:
        writer = self._writer
        assert writer is not None
        error = writer.error
        if error is not None:  # stop the stream: next() raises it (an Exception: the read loop goes on)
            if isinstance(error, Exception):
                raise error
            raise RuntimeError(f"the ASGI send failed: {error!r}") from error
        body = self.fmt.delta(delta)
        if body:
            writer.write(body)

    async def run(self, send: Send) -> None:
        """Write the stream's events after :meth:`begin` (called here if it was not); close the stream.

        Closing it on the way out cancels an unfinished generation.

        Raises:
            BaseException: What a send raised; the response's cancellation (client gone).
        """
        if self._writer is None:
            self.begin(send)
        writer = self._writer
        assert writer is not None
        stream, fmt, write = self.stream, self.fmt, writer.write
        failure: BaseException | None = None
        try:
            if self._early is not None:
                raise self._early
            event = stream.first
            while isinstance(event, TextDelta):  # the first was written by begin(); next() gives the rest
                event = await stream.next()
                if isinstance(event, TextDelta):  # one the read loop did not take
                    self._on_delta(event)
            write(fmt.end(event))
        except AgentError as exc:
            failure = exc
            write(fmt.error(exc))
        except BaseException as exc:
            failure = exc
            writer.close()
            raise
        finally:
            await stream.aclose(failure)
        try:
            await writer.flush()
        finally:
            writer.close()


class _ASGIPushResponse(ASGIStreamingResponse):
    """litestar's streaming response (start, disconnect listener) with a pushed body.

    The body is written by the response's own task, which also sent the start, and the disconnect listener
    is the task group's child: the first event (in hand before the response began) follows the headers at
    once. litestar's ``send_body`` does it the other way round (the body in a child task, the listener in
    the response's task), which put a loop turn, and whatever else that turn ran, between the headers and
    the first token on every stream (0.2-0.35 ms on a loaded 2-core machine, docs/ryot.md).
    """

    __slots__ = ()

    async def send_body(self, send: Send, receive: Receive) -> None:
        body = self.iterator
        if not isinstance(body, _PushedGeneration):  # not made by _PushStream: litestar's own way
            await super().send_body(send, receive)
            return
        body.begin(send)  # the first event right behind the headers, before the task group's cost
        async with anyio.create_task_group() as tg:
            # a disconnect cancels the group's scope, and so the body's wait here (which cancels the
            # generation on the agent)
            tg.start_soon(self._listen_for_disconnect, tg.cancel_scope, receive)
            await body.run(send)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            tg.cancel_scope.cancel()


class _PushStream(Stream):
    """A ``Stream`` whose ASGI response writes a :class:`_PushedGeneration`."""

    __slots__ = ()

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        response = super().to_asgi_response(*args, **kwargs)
        if type(response) is not ASGIStreamingResponse:  # a litestar that builds another class
            raise TypeError(f"expected litestar's ASGIStreamingResponse, got {type(response).__name__}")
        response.__class__ = _ASGIPushResponse  # the same slots; only _stream differs
        return response


def push_response(
    stream: GenerationStream, fmt: EventFormat, *, media_type: str, headers: Mapping[str, str]
) -> Stream:
    """A streamed response of ``stream`` (its first event already in) written in ``fmt`` as events arrive.

    The client's disconnect cancels the generation on the agent; an error after the start is written
    with ``fmt.error``.

    Args:
        stream: An open generation (:meth:`orchestrator.Orchestrator.open_generation`); the response
            closes it.
        fmt: The stream format's encoders.
        media_type: The response's ``Content-Type``.
        headers: More response headers.
    """
    return _PushStream(_PushedGeneration(stream, fmt), media_type=media_type, headers=dict(headers))
