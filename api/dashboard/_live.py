"""Rolling windows behind the dashboard's live views: per-agent latency and errors, TTFT, tokens/s.

Prometheus histograms answer "since start" (and are for Prometheus to rate); an operator watching the
page wants "the last minutes". :class:`LiveStats` keeps the raw samples of the last ``window_s`` seconds
(bounded deques; old samples are dropped as new ones arrive or when read) and a short time series of
one point per :meth:`LiveStats.tick`, so a freshly opened page draws charts with history.

Percentiles are nearest-rank over the window's samples (NIST/Hyndman–Fan definition 1): for ``n``
sorted samples, p-th percentile = sample ``ceil(p/100 * n)``.
"""

from __future__ import annotations

import collections
import math
import time
from typing import Any

__all__ = ("LiveStats", "percentile")

MAX_SAMPLES = 10_000
"""Samples kept per window (per agent, and for TTFT and generations)."""


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank ``p``-th percentile (0 < p <= 100) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


class LiveStats:
    """Samples of the last ``window_s`` seconds and ``history`` points of a time series.

    Fed by :class:`api.Metrics` (the orchestrator's call observer); read by the dashboard feed.

    Args:
        window_s: Width of the rolling windows, in seconds.
        history: Points kept per series (one per :meth:`tick`).
    """

    def __init__(self, *, window_s: float = 60.0, history: int = 300) -> None:
        self.window_s = window_s
        self._hops: dict[tuple[str, str], collections.deque[tuple[float, float, bool]]] = {}
        self._ttft: collections.deque[tuple[float, float]] = collections.deque(maxlen=MAX_SAMPLES)
        self._tokens: collections.deque[tuple[float, int, float]] = collections.deque(maxlen=MAX_SAMPLES)
        self._series: collections.deque[dict[str, float | None]] = collections.deque(maxlen=history)
        self._last_tick = 0.0

    def hop(self, team: str, agent: str, outcome: str, seconds: float) -> None:
        """One orchestrator → agent call: its latency in seconds; ``outcome`` ``ok`` or a wire code."""
        window = self._hops.setdefault((team, agent), collections.deque(maxlen=MAX_SAMPLES))
        window.append((time.time(), seconds, outcome in ("ok", "cancelled")))

    def first_token(self, seconds: float) -> None:
        """A TTFT seen by the orchestrator, in seconds."""
        self._ttft.append((time.time(), seconds))

    def generation(self, completion_tokens: int, decode_s: float) -> None:
        """A finished generation: tokens decoded and the decode time in seconds."""
        self._tokens.append((time.time(), completion_tokens, decode_s))

    def agents(self) -> dict[str, dict[str, Any]]:
        """Per agent name: ``calls``, ``errors``, ``p50_ms``, ``p95_ms`` over the window."""
        since = time.time() - self.window_s
        out: dict[str, dict[str, Any]] = {}
        for (_team, agent), window in self._hops.items():
            recent = [(s, ok) for t, s, ok in list(window) if t >= since]
            latencies = [s for s, _ in recent]
            p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
            out[agent] = {
                "calls": len(recent),
                "errors": sum(1 for _, ok in recent if not ok),
                "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
                "p95_ms": round(p95 * 1000, 2) if p95 is not None else None,
            }
        return out

    def tick(self, *, min_interval_s: float = 1.0) -> None:
        """Append one point to the time series (at most one per ``min_interval_s`` seconds).

        A point: ``t`` (Unix seconds), ``ttft_p50_ms`` and ``ttft_p95_ms`` over the last 30 s,
        ``tokens_per_s`` (decoded tokens / decode seconds over the last 30 s), ``calls_per_s`` (agent calls
        over the last 10 s / 10).
        """
        now = time.time()
        if now - self._last_tick < min_interval_s:
            return
        self._last_tick = now
        ttft = [s for t, s in list(self._ttft) if t >= now - 30]
        gens = [(n, d) for t, n, d in list(self._tokens) if t >= now - 30]
        decode_s = sum(d for _, d in gens)
        calls = sum(sum(1 for t, _, _ in list(w) if t >= now - 10) for w in list(self._hops.values()))
        p50, p95 = percentile(ttft, 50), percentile(ttft, 95)
        self._series.append(
            {
                "t": now,
                "ttft_p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
                "ttft_p95_ms": round(p95 * 1000, 2) if p95 is not None else None,
                "tokens_per_s": round(sum(n for n, _ in gens) / decode_s, 2) if decode_s > 0 else None,
                "calls_per_s": calls / 10,
            }
        )

    def series(self) -> dict[str, list[float | None]]:
        """The time series as columns, oldest first, ready for a chart.

        Keys: ``t``, ``ttft_p50_ms``, ``ttft_p95_ms``, ``tokens_per_s``, ``calls_per_s``.
        """
        points = list(self._series)
        keys = ("t", "ttft_p50_ms", "ttft_p95_ms", "tokens_per_s", "calls_per_s")
        return {k: [p[k] for p in points] for k in keys}
