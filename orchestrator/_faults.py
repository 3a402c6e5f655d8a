"""Crash points for fault-injection tests: die with SIGKILL at a named point of a durable protocol.

Setting ``NEURECTOMY_CRASH_AT=<point>`` in a process's environment makes it kill itself (SIGKILL: no
cleanup, no flush, exactly like ``kill -9``) the first time it reaches ``<point>``. Unset, a crash point
costs one dictionary lookup. Points:

* ``task-recorded``: :meth:`orchestrator.TaskQueue.submit` stored the task record (and its idempotency
  key) but has not published the task to the work queue yet.
"""

from __future__ import annotations

import os
import signal

__all__ = ("CRASH_ENV", "crash_point")

CRASH_ENV = "NEURECTOMY_CRASH_AT"
"""Environment variable naming the crash point to die at."""


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if ``$NEURECTOMY_CRASH_AT`` is ``name``."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
