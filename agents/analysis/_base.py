"""What the analysis agents share: the base class, the thread limiter, size limits and wire model bases.

Every analysis agent runs its CPU work (VADER, the entity finders, Jaccard, ...) off the event loop, in a
worker thread through one :class:`anyio.CapacityLimiter` that the team shares (the runtime passes it; two
threads by default, the machine has two cores), or in a worker process. Pure Python in a thread lets the
loop in every 5 ms (``sys.getswitchinterval()``). Work that keeps the GIL for long runs in a worker process
instead (:meth:`AnalysisAgent.in_process`): lingua's Rust code; textstat, whose first call parses the CMU
dictionary; ``ast.parse`` of a long source (code-analyzer); work that makes many long-lived objects (YAKE,
radon), whose full garbage collections scan the whole heap of the process with the GIL held (~0.3 s in a
process that loaded torch); and the entity finders' regular expressions, each one C call over the whole
text. VADER (sentiment) is pure Python, but two calls in threads compete with the loop for the GIL (and
each long text's work is seconds of it), so a long text goes to the process too
(:meth:`AnalysisAgent.in_worker`, :data:`PROCESS_MIN_CHARS`). In a thread these held the interpreter lock
the event loop needs, so every coroutine of the process (the API's ``/health`` beside it) waited as long
(``benchmarks/analysis_stalls.py`` measures each agent's worst event-loop lag).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ClassVar, TypeVar

import anyio
import anyio.to_process
import anyio.to_thread
from pydantic import BaseModel, ConfigDict

from agents.actor import Agent
from agents.errors import TooLargeError
from agents.limits import text_input_bytes

__all__ = (
    "ANALYSIS_PROCESSES",
    "ANALYSIS_THREADS",
    "MAX_LISTED",
    "MAX_TEXT_CHARS",
    "PROCESS_MIN_CHARS",
    "AnalysisAgent",
    "AnalysisInput",
    "AnalysisOutput",
    "check_chars",
)

T = TypeVar("T")

MAX_TEXT_CHARS = 200_000
"""Longest text (or source code) an analysis agent accepts, in characters."""
MAX_LISTED = 2_000
"""Most items (sentences, entities, functions, outliers) an answer lists; the rest are counted only."""
ANALYSIS_THREADS = 2
"""Analysis calls running in worker threads at once, across the team (the default limiter's tokens)."""
ANALYSIS_PROCESSES = 1
"""Analysis calls running in worker processes at once, across the team: one worker then serves them all
(language-detector, quality-critic, keyword-extractor, code-analyzer), so lingua's models (~500 MB) and
textstat's dictionary are loaded once, not once per worker."""
PROCESS_MIN_CHARS = 1_000
"""Texts at least this long (characters) go to the team's worker process (:meth:`AnalysisAgent.in_worker`);
shorter ones to a worker thread. Below it the work is short (on 1,000 characters, a loaded 2-core machine:
VADER ~6 ms, the entity finders ~1 ms on prose and ~40 ms on text dense with dates, dateparser's pure
Python, which lets the loop in every 5 ms), and a thread neither waits behind the process's other calls
nor pays the pickling (~0.1 ms more per call)."""


def check_chars(field: str, text: str, limit: int = MAX_TEXT_CHARS) -> None:
    """Refuse a text longer than ``limit`` characters.

    Args:
        field: The input field holding ``text`` (named in the error).
        text: The text to check.
        limit: Largest length allowed, in characters.

    Raises:
        TooLargeError: Naming ``field``, the length and the limit.
    """
    if len(text) > limit:
        raise TooLargeError(f"{len(text)} characters; the limit is {limit} characters", field=field)


class AnalysisInput(BaseModel):
    """Base of the analysis inputs: frozen, and unknown fields are refused by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AnalysisOutput(BaseModel):
    """Base of the analysis outputs: frozen, no undeclared fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AnalysisAgent(Agent):
    """Base of the Analysis team: local CPU libraries, no engine, work offloaded to threads.

    Args:
        limiter: Shared by the team's agents; bounds the worker threads they use at once. A new
            ``CapacityLimiter(ANALYSIS_THREADS)`` when ``None``.
        processes: Shared by the team's agents; bounds the worker processes of :meth:`in_process` calls.
            A new ``CapacityLimiter(ANALYSIS_PROCESSES)`` when ``None``.
    """

    team: ClassVar[str] = "analysis"
    bridges: ClassVar[tuple[str, ...]] = ()
    text_output: ClassVar[str | None] = "summary"
    """Every analysis output carries a one-line ``summary`` a plan step can hand on."""
    max_input_bytes: ClassVar[int] = text_input_bytes(MAX_TEXT_CHARS)
    """One text of :data:`MAX_TEXT_CHARS` characters and small options."""

    def __init__(
        self,
        *,
        limiter: anyio.CapacityLimiter | None = None,
        processes: anyio.CapacityLimiter | None = None,
    ) -> None:
        self.limiter = limiter if limiter is not None else anyio.CapacityLimiter(ANALYSIS_THREADS)
        self.processes = processes if processes is not None else anyio.CapacityLimiter(ANALYSIS_PROCESSES)
        self.thread_calls = 0
        self.thread_seconds_total = 0.0

    async def in_thread(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a worker thread under the team's limiter and return its result.

        Cancelling the await does not stop ``fn``; it finishes in its thread (the calls are bounded by
        the input size limits).
        """
        started = anyio.current_time()
        try:
            return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self.limiter)
        finally:
            self.thread_calls += 1
            self.thread_seconds_total += anyio.current_time() - started

    async def in_process(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a worker process (``anyio.to_process``) under the ``processes`` limiter.

        For work that keeps the GIL: in a thread it would stall this process's event loop. ``fn`` is a
        module-level function; it, ``args`` and the result travel pickled. Workers are started on first
        use (that call pays the start and the imports) and kept for later calls (anyio ends one idle for
        5 minutes); cancelling the await (a call's deadline) kills the worker.
        """
        return await anyio.to_process.run_sync(fn, *args, cancellable=True, limiter=self.processes)

    async def in_worker(self, chars: int, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a worker thread for a short input, else in the worker process.

        Args:
            chars: Size of the input, in characters: at least :data:`PROCESS_MIN_CHARS` goes to
                :meth:`in_process` (``fn`` module-level, arguments and result picklable), less to
                :meth:`in_thread`.
            fn: The blocking work.
            *args: Its arguments.
        """
        if chars >= PROCESS_MIN_CHARS:
            return await self.in_process(fn, *args)
        return await self.in_thread(fn, *args)

    def stats(self) -> dict[str, float]:
        """Worker-thread calls of this instance and their total time, in seconds."""
        return {
            "thread_calls": self.thread_calls,
            "thread_seconds_total": round(self.thread_seconds_total, 6),
        }
