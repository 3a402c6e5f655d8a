"""Rate limit counting per request against the number of callers with a live window, side by side.

The API counts each request with the ``limits`` library's fixed window (``FixedWindowRateLimiter.hit``
then ``get_window_stats`` for the ``RateLimit-*`` headers, as :class:`api._limits.RateLimitMiddleware`
does) over :class:`api._window_store.WindowStore` (the service's storage) and over ``limits``' own async
``MemoryStorage``, which schedules a sweep of every live counter after a count (an asyncio task, run once
the event loop is free), so its CPU per request grows with the callers seen within one window. The floor
beside them is a plain dict of ``count, window end`` per caller (the minimum any fixed window needs), so
the ratios show what each storage costs.

Each row fills the storage with ``N`` callers, then times ``--requests`` sequential requests cycling over
them with ``time.process_time()`` (CPU, less disturbed by a loaded machine), yielding to the event loop
after each request as a server does; median of ``--rounds``.

Usage: ``PYTHONPATH=$PWD python benchmarks/rate_limit_storage.py [--requests 2000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from limits import RateLimitItemPerMinute  # noqa: E402
from limits.aio.storage import MemoryStorage, Storage  # noqa: E402
from limits.aio.strategies import FixedWindowRateLimiter  # noqa: E402

from api._window_store import WindowStore  # noqa: E402

CALLERS = (1, 100, 1_000, 10_000)


async def limits_over(storage: Storage, callers: int, requests: int) -> float:
    """CPU µs per request: ``limits`` fixed window over ``storage`` with ``callers`` live windows."""
    limiter, item = FixedWindowRateLimiter(storage), RateLimitItemPerMinute(10**9)
    for i in range(callers):
        await limiter.hit(item, f"ip:{i}")
    await asyncio.sleep(0.01)
    start = time.process_time()
    for j in range(requests):
        await limiter.hit(item, f"ip:{j % callers}")
        await limiter.get_window_stats(item, f"ip:{j % callers}")
        await asyncio.sleep(0)
    return (time.process_time() - start) / requests * 1e6


async def dict_floor(callers: int, requests: int) -> float:
    """CPU µs per request: a dict of ``[count, window end]`` per caller (no sweep)."""
    windows: dict[str, list[float]] = {}

    def hit(key: str) -> tuple[float, float]:
        now = time.time()
        window = windows.get(key)
        if window is None or window[1] <= now:
            window = windows[key] = [0, now + 60]
        window[0] += 1
        return window[0], window[1]

    for i in range(callers):
        hit(f"ip:{i}")
    start = time.process_time()
    for j in range(requests):
        hit(f"ip:{j % callers}")
        await asyncio.sleep(0)
    return (time.process_time() - start) / requests * 1e6


def main() -> None:
    """Print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU µs per request, median of {args.rounds} rounds of {args.requests} requests")
    print(
        f"{'live callers':>12}  {'WindowStore':>11}  {'limits MemoryStorage':>20}  {'dict floor':>10}"
        "  ours÷floor  MemoryStorage÷floor"
    )
    for callers in CALLERS:
        ours, lib, floor = [], [], []
        for _ in range(args.rounds):
            ours.append(asyncio.run(limits_over(WindowStore(), callers, args.requests)))
            lib.append(asyncio.run(limits_over(MemoryStorage(), callers, args.requests)))
            floor.append(asyncio.run(dict_floor(callers, args.requests)))
        o, m, base = statistics.median(ours), statistics.median(lib), statistics.median(floor)
        print(f"{callers:>12}  {o:>11.1f}  {m:>20.1f}  {base:>10.1f}  {o / base:10.1f}  {m / base:19.1f}")


if __name__ == "__main__":
    main()
