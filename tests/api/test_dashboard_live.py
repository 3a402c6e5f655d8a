"""The dashboard's rolling windows: nearest-rank percentiles, per-agent errors, the time series."""

from __future__ import annotations

import pytest

from api.dashboard import LiveStats
from api.dashboard._live import percentile


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(10, 0, -1)]  # unsorted on purpose
    assert percentile(values, 50) == 5.0
    assert percentile(values, 95) == 10.0
    assert percentile(values, 10) == 1.0
    assert percentile([], 50) is None


def test_agent_window_counts_errors_and_latency() -> None:
    live = LiveStats(window_s=60)
    for ms in (10, 20, 30, 40):
        live.hop("analysis", "sentiment", "ok", ms / 1000)
    live.hop("analysis", "sentiment", "timeout", 2.0)
    live.hop("analysis", "sentiment", "cancelled", 0.5)  # the caller left: not the agent's error
    row = live.agents()["sentiment"]
    assert row["calls"] == 6 and row["errors"] == 1
    assert row["p50_ms"] == 30.0 and row["p95_ms"] == 2000.0


def test_series_points_are_rate_limited_and_columnar() -> None:
    live = LiveStats()
    live.first_token(0.05)
    live.first_token(0.15)
    live.generation(40, 0.5)
    live.tick(min_interval_s=0)
    live.tick(min_interval_s=3600)  # too soon: no second point
    series = live.series()
    assert len(series["t"]) == 1
    assert series["ttft_p50_ms"] == [50.0] and series["ttft_p95_ms"] == [150.0]
    assert series["tokens_per_s"] == [pytest.approx(80.0)]
