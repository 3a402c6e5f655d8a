"""Handing Ryot's events from its worker thread to the event loop, a few tokens at a time.

Every token that reaches the event loop on its own costs the whole path behind the bridge once: a loop
wake-up, the agent's chunk, a NATS message there and back, the API's SSE event and its HTTP write. On
this 2-core machine that was ~1 ms of CPU per streamed token, taken from decode. So the bridge delivers a
request's text on a short time budget, ``chunk_interval_s``:

* a request's first text, its end (:class:`~ryot.Finished` / :class:`~ryot.Failed`) and anything of a
  request that has delivered no text yet go at once (time to first token and the usage are never
  delayed);
* later text waits until ``chunk_interval_s`` has passed since the last delivery, then everything pending
  for every request goes in one loop wake-up (a timer on the loop, re-armed after each delivery while
  text keeps arriving faster than the interval: the engine's worker thread wakes the loop for held text
  only to arm the first timer of such a run); text that arrives after the interval has passed goes at
  once, and no timer is armed for it (a timer that would find nothing costs a wake-up per token when
  decoding is slower than the interval, as on a loaded machine);
* the events of one delivery are merged (:func:`coalesced`): adjacent text chunks become one chunk with
  their texts, token counts and log probabilities joined, so the stream reads the same.

With ``chunk_interval_s`` 0 every decode step's events go at once (one wake-up per step for all requests).

A consumer may take its text right in the delivery's loop callback (:class:`EventChannel`'s ``on_text``,
e.g. an agent publishing its chunk): then a delivery costs no task wake-up at all.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable

import anyio

from ryot import Event, TokenChunk

__all__ = (
    "DEFAULT_CHUNK_INTERVAL_S",
    "EventChannel",
    "LoopDispatcher",
    "RequestSink",
    "TextHandler",
    "coalesced",
)

DEFAULT_CHUNK_INTERVAL_S = 0.04
"""Least time between two deliveries of streamed text after a request's first, in seconds.

40 ms is 25 updates a second (smooth to a reader); at this machine's ~70 tok/s for one stream it sends
one chunk per ~3 tokens, under concurrency one per ~3 decode steps for all streams."""


class LoopDispatcher:
    """Hands the engine's events to one asyncio event loop: one wake-up for every request that has some.

    The engine hands a decode step's events to the requests' sinks (which only buffer them), then calls
    their shared :meth:`flush` once. A flush wakes the loop at once when a sink holds something urgent
    (see the module docstring) or the interval has passed since the last delivery; else the timer the
    last delivery armed delivers it (or, if none is armed, the flush arms one).

    Args:
        loop: The event loop the consumers run on.
        interval_s: Least time between two deliveries of non-urgent text, in seconds (0: no wait).

    Attributes:
        loop: The event loop the consumers run on.
        lock: Guards the ready list, the flags and the requests' pending events (held for microseconds).
        wakeups: Deliveries run so far (each delivered every request's events pending then).
    """

    __slots__ = (
        "_hold_until", "_interval_s", "_pace", "_ready", "_soon", "_timer", "lock", "loop", "wakeups",
    )  # fmt: skip

    def __init__(self, loop: asyncio.AbstractEventLoop, interval_s: float) -> None:
        self.loop = loop
        self._interval_s = interval_s
        self._ready: list[RequestSink] = []
        self._soon = False
        """A delivery is scheduled with ``call_soon_threadsafe``."""
        self._timer = False
        """A timer on the loop will deliver (or find nothing and stop)."""
        self._pace = False
        """Text arrives faster than the interval (some was held): a delivery arms the next one's timer."""
        self._hold_until = 0.0
        """``time.monotonic()`` before which non-urgent text waits for the timer."""
        self.lock = threading.Lock()
        self.wakeups = 0

    def ready(self, sink: RequestSink) -> None:
        """Deliver ``sink``'s events at the next delivery (hold :attr:`lock`)."""
        self._ready.append(sink)

    def flush(self) -> None:
        """Schedule the delivery of the pending events: now if urgent or due, else leave it to the timer.

        Called by the engine's worker thread after each batch of events (any thread may call it).
        """
        with self.lock:
            if not self._ready or self._soon:
                return
            if time.monotonic() >= self._hold_until or any(sink.urgent for sink in self._ready):
                self._soon = True
                action = self._deliver
            elif self._timer:
                return  # the armed timer delivers it
            else:  # no timer armed (none was needed until now): arm one
                self._timer = self._pace = True
                action = self._arm
        self.loop.call_soon_threadsafe(action)

    def _arm(self) -> None:  # on the event loop
        self.loop.call_later(max(self._hold_until - time.monotonic(), 0.0), self._on_timer)

    def _on_timer(self) -> None:  # on the event loop
        with self.lock:
            if not self._ready:  # nothing to send: text is slower than the interval (or has ended)
                self._timer = self._pace = False  # the next flush that holds text arms a timer
                return
            wait = self._hold_until - time.monotonic()
        if wait > 0.001:  # a delivery ran meanwhile (urgent events): wait for the rest of its interval
            self.loop.call_later(wait, self._on_timer)
            return
        self._run(timer=True)

    def _deliver(self) -> None:  # on the event loop
        self._run(timer=False)

    def _run(self, *, timer: bool) -> None:  # on the event loop
        with self.lock:
            ready, self._ready = self._ready, []
            if not timer:
                self._soon = False
            if not ready:
                if timer:
                    self._timer = False
                return
            self._hold_until = time.monotonic() + self._interval_s
            arm = self._interval_s > 0 and self._pace and (timer or not self._timer)
            self._timer = self._timer or arm
        self.wakeups += 1
        alone = len(ready) == 1
        for sink in ready:
            sink.deliver(alone)
        if arm:  # text keeps coming faster than the interval: the next interval's goes with this timer
            self.loop.call_later(self._interval_s, self._on_timer)


TextHandler = Callable[[TokenChunk, bool], bool]
"""Takes a generation's text on the event loop, in the dispatcher's callback: ``(chunk, alone)`` → whether it
handled the chunk (it must not block; ``alone``: the only request of this delivery). What it does not take
goes to the consumer task, as does everything after it until the task has caught up."""


class EventChannel:
    """Batches of one generation's events, from the dispatcher to the generation's one consumer task.

    A deque and one future, on the event loop: :meth:`put` is a plain call and a waiting :meth:`get`
    costs one task wake-up, where an anyio memory object stream took a checkpoint (a loop turn), an
    ``Event`` and a cancellation look-up per batch. Not thread safe: loop callbacks and one task only.

    With a :data:`TextHandler` (``on_text``), text reaches the consumer's handler right in the
    dispatcher's callback while the consumer task waits with nothing queued: no task wake-up per
    delivery. The terminal events, and anything that arrives while the task still holds or has queued
    earlier events, go to the task, so that the order is kept.

    Args:
        on_text: Takes text chunks in the dispatcher's callback (see :data:`TextHandler`); ``None``: every
            event goes to the task.

    Attributes:
        closed: The consumer is gone (:meth:`close`): :meth:`put` refuses batches.
        busy: The consumer task is handling a batch it took (from :meth:`get` until its next :meth:`get`).
    """

    __slots__ = ("_batches", "_on_text", "_waiter", "busy", "closed")

    def __init__(self, on_text: TextHandler | None = None) -> None:
        self._batches: deque[list[Event]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._on_text = on_text
        self.closed = False
        self.busy = False

    def put(self, batch: list[Event], alone: bool = False) -> bool:
        """Hand ``batch`` over: its leading text to ``on_text`` if the task is idle, the rest to the task.

        Args:
            batch: Events of one request, in order.
            alone: The request is the only one of this delivery (passed on to ``on_text``).

        Returns:
            False (nothing taken) once :attr:`closed`.
        """
        if self.closed:
            return False
        on_text = self._on_text
        if on_text is not None and batch and not self.busy and not self._batches:
            if len(batch) > 1:
                batch = coalesced(batch)
            taken = 0
            for event in batch:
                if not isinstance(event, TokenChunk):
                    break
                try:
                    handled = on_text(event, alone)
                except Exception:  # the task handles the chunk again and meets the error
                    handled = False
                if not handled:
                    break
                taken += 1
            if taken == len(batch):
                return True
            batch = batch[taken:]
        self._batches.append(batch)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    async def get(self) -> list[Event]:
        """The next batch, waiting for one if none is queued (cancellable while it waits).

        Call it again only once the batch it returned is handled (:attr:`busy` until then).
        """
        self.busy = False
        while not self._batches:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.busy = True
        return self._batches.popleft()

    def close(self) -> None:
        """The consumer is gone: later batches are refused (the engine then cancels the request)."""
        self.closed = True
        self._batches.clear()


class RequestSink:
    """The engine's sink of one request: buffers its events until the dispatcher delivers them.

    ``flush`` is the dispatcher's (one per loop), which the engine calls once per batch of events for all
    requests. Events that arrive while a delivery is pending join it.

    Attributes:
        urgent: The pending events must go at once: this request has delivered no text yet, or its
            terminal event is pending.
    """

    __slots__ = ("_channel", "_dispatcher", "_gone", "_pending", "_started", "flush", "urgent")

    def __init__(self, dispatcher: LoopDispatcher, channel: EventChannel) -> None:
        self._dispatcher = dispatcher
        self._channel = channel
        self._pending: list[Event] = []
        self._gone = False
        self._started = False
        """Text went to the consumer already (later text may wait for the interval)."""
        self.urgent = False
        self.flush = dispatcher.flush

    def __call__(self, event: Event) -> None:  # on the engine's worker thread; never blocks
        if self._gone:
            raise anyio.BrokenResourceError  # the engine cancels the request
        with self._dispatcher.lock:
            self._pending.append(event)
            if not self._started or not isinstance(event, TokenChunk):
                self.urgent = True
            if len(self._pending) == 1:
                self._dispatcher.ready(self)

    def deliver(self, alone: bool = False) -> None:  # on the event loop
        """Hand the pending events to the channel (``alone``: the only request of this delivery)."""
        with self._dispatcher.lock:
            events, self._pending = self._pending, []
            self.urgent = False
            if not self._started:
                self._started = any(isinstance(e, TokenChunk) and (e.text or e.logprobs) for e in events)
        if not self._channel.put(events, alone):
            self._gone = True


def coalesced(events: list[Event]) -> list[Event]:
    """``events`` with each run of adjacent text chunks merged into one chunk.

    A :class:`~ryot.TokenChunk` is the text since the previous chunk, so a run of them reads the same as
    one chunk with their texts, token counts and log probabilities joined.
    """
    if len(events) == 1:
        return events
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, TokenChunk) and isinstance(last, TokenChunk):
            out[-1] = TokenChunk(
                last.text + event.text, last.n_tokens + event.n_tokens, last.logprobs + event.logprobs
            )
        else:
            out.append(event)
    return out
