"""Token delivery of the Ryot engine: a sampled token becomes events, and a step's events reach their sinks.

Part of :mod:`ryot._engine`: the base of :class:`ryot._engine.RyotEngine`. A sampled token is turned
into text (stop strings held back by :class:`ryot._text.TextAssembler`) and optional log probabilities,
a finished request gets its usage and timings, and the events of one decode step are delivered back to
back once its sampling is done, each distinct sink ``flush()`` called once per batch.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable, Iterable

from ryot._llama import Context, Model, Sampler
from ryot._schedule import Job, Slot
from ryot.types import (
    Event,
    Failed,
    Finished,
    FinishReason,
    Timings,
    TokenChunk,
    TokenLogprob,
    TopLogprob,
    Usage,
)

Sink = Callable[[Event], None]

_log = logging.getLogger(__name__)


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


class _Delivery:
    """Sampled tokens to events and events to sinks (see :class:`ryot._engine.RyotEngine`).

    The attributes below are set by :meth:`ryot._engine.RyotEngine.__init__`.
    """

    _model: Model
    _ctx: Context
    _piece_buf: ctypes.Array[ctypes.c_char]
    _outbox: list[tuple[Job, Event]] | None

    def _emit(self, job: Job, event: Event) -> bool:
        """Pass ``event`` to the job's sink (during a step: once the step's sampling is done).

        Returns False when the sink refused it (the request is then cancelled).
        """
        if self._outbox is not None:
            self._outbox.append((job, event))
            return not job.cancelled
        ok = self._deliver(job, event)
        _flush_sinks((job.sink,))
        return ok

    @staticmethod
    def _deliver(job: Job, event: Event) -> bool:
        """Pass ``event`` to the job's sink now (any thread); False when the sink refused it."""
        try:
            job.sink(event)
        except Exception:
            job.cancelled = True
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
