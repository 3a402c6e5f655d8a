"""Running ΣLANG codec calls off the event loop: bounded threads, timeouts, counters, the token counter.

Part of `bridges.sigma`: the base of :class:`bridges.sigma.SigmaBridge`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

import anyio
import anyio.to_thread

from bridges._sigma_results import SigmaBridgeMetrics, TokenCounter, approx_tokens
from bridges.errors import BridgeTimeoutError
from sigmalang import SigmaCodec

T = TypeVar("T")
_counter: ContextVar[Callable[[str], int]] = ContextVar("sigma_token_counter")


class _CodecOffload:
    """Runs calls on one shared codec in worker threads (see :class:`bridges.sigma.SigmaBridge`)."""

    def __init__(
        self,
        codec: SigmaCodec,
        *,
        count_tokens: Callable[[str], int] | None = None,
        timeout_s: float = 60.0,
        max_offload_threads: int = 2,
        exact_tokens_max_bytes: int = 4096,
    ) -> None:
        self.codec = codec
        self.timeout_s = timeout_s
        self.exact_tokens_max_bytes = exact_tokens_max_bytes
        self.metrics = SigmaBridgeMetrics()
        self._exact = count_tokens
        self._limiter = anyio.CapacityLimiter(max_offload_threads)
        self._closed = False
        codec.count_tokens = self._count_in_context

    @property
    def token_counter(self) -> TokenCounter:
        """The counter used for short texts and for the context optimiser."""
        return "ryot" if self._exact is not None else "approx"

    def counter_for(self, size_bytes: int) -> TokenCounter:
        """The counter used for a compression input of ``size_bytes`` bytes."""
        if self._exact is not None and size_bytes <= self.exact_tokens_max_bytes:
            return "ryot"
        return "approx"

    def _fn(self, name: TokenCounter) -> Callable[[str], int]:
        return self._exact if name == "ryot" and self._exact is not None else approx_tokens

    @staticmethod
    def _count_in_context(text: str) -> int:
        return _counter.get(approx_tokens)(text)

    def _with_counter(self, name: TokenCounter, fn: Callable[[], T]) -> Callable[[], T]:
        counter = self._fn(name)

        def run() -> T:
            token = _counter.set(counter)  # set in the worker thread: the codec reads it there
            try:
                return fn()
            finally:
                _counter.reset(token)

        return run

    async def _run(self, operation: str, fn: Callable[[], T], timeout_s: float | None = None) -> T:
        limit = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        started = time.perf_counter()
        outcome: list[T] = []
        try:
            with anyio.move_on_after(limit):
                outcome.append(
                    await anyio.to_thread.run_sync(fn, limiter=self._limiter, abandon_on_cancel=True)
                )
        except Exception:
            self.metrics.failures += 1
            raise
        finally:
            self.metrics.busy_s_total += time.perf_counter() - started
        if not outcome:
            self.metrics.timeouts += 1
            raise BridgeTimeoutError(operation, limit)
        return outcome[0]

    async def count_tokens(self, text: str) -> tuple[int, TokenCounter]:
        """Tokens of ``text`` with the exact counter if there is one, and which counter it was."""
        name = self.token_counter
        return await self._run("count_tokens", lambda: self._fn(name)(text)), name

    async def tokens_of(self, data: bytes) -> tuple[int, TokenCounter]:
        """Tokens of ``data`` decoded as UTF-8 (invalid bytes replaced), counted as for compression."""
        name = self.counter_for(len(data))
        fn = self._fn(name)
        return await self._run("count_tokens", lambda: fn(data.decode("utf-8", errors="replace"))), name

    async def aclose(self) -> None:
        """Stop the codec's automatic dictionary training and close its store (in a thread). Idempotent."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.codec.close)
            await anyio.to_thread.run_sync(self.codec.store.close)
