"""The Ryot engine's worker thread: admits queued requests between steps and runs the steps.

Part of :mod:`ryot._engine`: a base of :class:`ryot._engine.RyotEngine`. The worker blocks on the
queue only when no request runs; when idle it snapshots finished slots into the prefix cache
(:mod:`ryot._kv_reuse`); a failed step fails the requests in it, never the worker.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import sys
import time

from ryot._kv_reuse import _KVReuse
from ryot._schedule import Job
from ryot.types import Failed, Finished, Timings, Usage

_log = logging.getLogger(__name__)

_IDLE_SNAPSHOT_DELAY_S = 0.02
"""How long the worker must have been idle before it snapshots a finished slot into the prefix cache."""
WORKER_THREAD_NAME = "ryot-worker"
"""Name of the worker thread, in Python and (on Linux) in the OS: ``top -H`` and ``/proc/<pid>/task/*/comm``
show it, and llama.cpp's OpenMP compute threads, which the worker starts, inherit it, so that the
engine's CPU time can be told apart from the service's (``benchmarks/llm_path.py`` does)."""


def _name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` (at most 15 bytes) in the OS on Linux; elsewhere do nothing."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # 15: PR_SET_NAME
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass


class _WorkerLoop(_KVReuse):
    """The worker thread's loop (see :class:`ryot._engine.RyotEngine`).

    The attribute below is set by :meth:`ryot._engine.RyotEngine.__init__`.
    """

    _queue: queue.SimpleQueue[Job | None]

    def _run(self) -> None:
        _name_os_thread(WORKER_THREAD_NAME)
        # On this thread, before any request: libgomp keeps a pool of compute threads per thread that
        # calls llama.cpp, and with more pooled threads than CPUs it spins far less at each barrier
        # (its throttled spin count): priming from the constructing thread (a loader thread in the
        # service) made every later step of the service slower (docs/ryot.md).
        try:
            self._prime_slots()
        except Exception:  # pragma: no cover - the slots' first prompts then evaluate their BOS
            _log.warning("priming the slots with BOS failed", exc_info=True)
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
            if job.cancelled:
                now = time.perf_counter()
                timings = Timings(now - job.submitted_at, 0.0, 0.0, 0)
                self._emit(job, Finished("cancelled", Usage(len(job.tokens), 0, 0), timings, ""))
                continue
            try:
                self._start(job, free)
            except Exception as exc:  # e.g. a sampler llama.cpp refuses: fail this request, keep serving
                self._emit(job, Failed(exc))
        return stopping
