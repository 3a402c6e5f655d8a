"""The ``limits`` library's async storage interface over this process's memory, at O(1) per count.

:class:`api._limits.RateLimitMiddleware` runs ``limits``' fixed-window strategy
(:class:`limits.aio.strategies.FixedWindowRateLimiter`) over a storage. ``limits``' own
:class:`~limits.aio.storage.MemoryStorage` starts a task after each count that walks every live counter
(and runs ``asyncio.to_thread`` per moving-window key), so its cost per request grows with the number of
callers that have a live window: 13 µs with one caller, 0.9 ms with 10,000
(``benchmarks/rate_limit_storage.py``) — a flood of distinct client addresses would make each request
slower for everyone. :class:`WindowStore` keeps what the fixed window needs (a count and when it ends,
per key) in a dict and sweeps expired counters once per :data:`SWEEP_EVERY` new keys, so a count costs
O(1) amortised and memory stays bounded by the callers of one window.

Only the fixed-window part of the interface is implemented (``incr``, ``get``, ``get_expiry``,
``check``, ``reset``, ``clear``) plus ``incr_window``, as in :class:`api._kv_store.KeyValueStore`; both
are checked against ``limits``' ``MemoryStorage`` by one contract test
(``tests/api/test_shared_state.py``). Nothing here awaits between reading and writing a counter, so
counts on one event loop never race.
"""

from __future__ import annotations

from time import time

from limits.aio.storage import Storage

__all__ = ("SWEEP_EVERY", "WindowStore")

SWEEP_EVERY = 4096
"""New keys between two sweeps of expired counters."""


class WindowStore(Storage):
    """Fixed-window counters in this process's memory, for the ``limits`` strategies (module docstring).

    Attributes:
        windows: ``key -> [count, expiry]`` (expiry: Unix time, seconds) of every counter not yet swept.
    """

    STORAGE_SCHEME = None  # built directly, not from a storage URI

    def __init__(self) -> None:
        super().__init__()
        self.windows: dict[str, list[float]] = {}
        self._new_keys = 0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """The errors ``limits`` wraps in :class:`limits.errors.StorageError` (none arise here)."""
        return ValueError

    def _live(self, key: str, now: float) -> list[float] | None:
        window = self.windows.get(key)
        return window if window is not None and window[1] > now else None

    def _sweep(self, now: float) -> None:
        self.windows = {k: w for k, w in self.windows.items() if w[1] > now}

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to the counter of ``key``; a new counter expires ``expiry`` seconds from now.

        Returns:
            The count after adding.
        """
        count, _ = await self.incr_window(key, expiry, amount)
        return count

    async def incr_window(self, key: str, expiry: float, amount: int = 1) -> tuple[int, float]:
        """As :meth:`incr`, also returning when the counted window ends.

        Returns:
            The count after adding, and the window's expiry (Unix time, seconds).
        """
        now = time()
        window = self._live(key, now)
        if window is None:
            if key not in self.windows:
                self._new_keys += 1
                if self._new_keys >= SWEEP_EVERY:
                    self._new_keys = 0
                    self._sweep(now)
            window = self.windows[key] = [0, now + expiry]
        window[0] += amount
        return int(window[0]), window[1]

    async def get(self, key: str) -> int:
        """The count of ``key`` (0 if absent or expired)."""
        window = self._live(key, time())
        return 0 if window is None else int(window[0])

    async def get_expiry(self, key: str) -> float:
        """When the counter of ``key`` expires, Unix time in seconds (now if absent, as ``MemoryStorage``)."""
        now = time()
        window = self._live(key, now)
        return now if window is None else window[1]

    async def check(self) -> bool:
        """Always available."""
        return True

    async def reset(self) -> int | None:
        """Remove every counter.

        Returns:
            How many were removed.
        """
        removed = len(self.windows)
        self.windows = {}
        return removed

    async def clear(self, key: str) -> None:
        """Remove the counter of ``key`` (nothing happens if it is absent)."""
        self.windows.pop(key, None)
