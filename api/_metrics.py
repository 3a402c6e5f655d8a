"""Prometheus metrics (``GET /metrics``, prometheus-client) and the per-request access log line.

Exposed, one registry per app (names as exposed; counters get ``_total``):

* ``neurectomy_http_requests_total{method,route,status}`` and
  ``neurectomy_http_request_duration_seconds{method,route}`` (route = path template, e.g.
  ``/v1/vault/records/{record_id:str}``; time until the response is complete);
* ``neurectomy_agent_hop_duration_seconds{team,agent,outcome}``: one orchestrator → agent call over NATS;
* ``neurectomy_ttft_seconds`` (dispatch → first streamed text, seen by the orchestrator),
  ``neurectomy_inter_token_latency_seconds`` (between consecutive streamed chunks; the generator sends
  one chunk per decoded token piece), ``neurectomy_engine_ttft_seconds`` and
  ``neurectomy_engine_queue_seconds`` (Ryot's own timings);
* ``neurectomy_tokens_total{kind=prompt|completion|cached}``;
* at scrape time, from ``$SRV.STATS`` of every agent instance: ``neurectomy_agent_replicas``,
  ``neurectomy_agent_in_flight``, ``neurectomy_agent_mailbox_depth`` ``{team,agent}``,
  ``neurectomy_engine_queue_depth``, and the counters ``neurectomy_prefix_cache_lookups_total`` /
  ``neurectomy_prefix_cache_hits_total`` (Ryot's prefix cache, summed over generator instances); from the
  ``vault-stats`` agent, if running, ``neurectomy_vault_l1_lookups_total`` /
  ``neurectomy_vault_l1_hits_total``
  (record reads and those served by the decrypted LRU). Hit rates are counters, not ratio gauges, so
  Prometheus can rate them over any window: ``rate(hits[5m]) / rate(lookups[5m])``. They are sums over
  the instances running now, so an instance restart shows as a counter reset;
* ``neurectomy_nats_local_deliveries_total``: agents' answers (accepts, stream chunks, ends) handed to a
  caller's inbox in this process without nats-server (``nats.local_replies``; 0 when every answer went
  over NATS);
* ``neurectomy_nats_local_requests_total``: requests handed to an agent instance's endpoint in this process
  without nats-server (``nats.local_requests``: the router's chosen instance runs here);
* ``neurectomy_build_info{version,python}`` (always 1), and prometheus-client's process collector
  (``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ``process_open_fds``, ...), platform
  collector (``python_info``) and GC collector (``python_gc_*``).
"""

from __future__ import annotations

import importlib.metadata
import platform
from bisect import bisect_left
from typing import Any

import anyio
import structlog
from litestar import Response, get
from litestar.datastructures import State
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from agents import Bus
from agents.errors import AgentError
from agents.protocol import GenerateOutput
from api.dashboard._live import LiveStats
from orchestrator import Orchestrator

log = structlog.get_logger("neurectomy.api")

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TOKEN_BUCKETS_S = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
MAX_CACHED_SERIES = 10_000
"""Most ``(method, route, status)`` label sets whose series are kept at hand (others: looked up each time)."""
SCRAPE_TIMEOUT_S = 1.0
"""Upper bound on the agent queries made while answering one scrape, in seconds."""


class Metrics:
    """The app's metrics; also the orchestrator's :class:`~orchestrator.CallObserver`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "neurectomy_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "neurectomy_http_request_duration_seconds",
            "HTTP request latency until the response is complete.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.hop_seconds = Histogram(
            "neurectomy_agent_hop_duration_seconds",
            "One orchestrator-to-agent call over NATS.",
            ["team", "agent", "outcome"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.ttft_seconds = Histogram(
            "neurectomy_ttft_seconds", "Dispatch to first streamed text.", buckets=TOKEN_BUCKETS_S, registry=r
        )
        self.itl_seconds = Histogram(
            "neurectomy_inter_token_latency_seconds",
            "Time between consecutive streamed text chunks.",
            buckets=TOKEN_BUCKETS_S,
            registry=r,
        )
        # Observed once per token event (inter_token): its values, reached once here (prometheus-client's
        # Histogram internals: the upper bounds with +Inf last, one value per bucket, the sum).
        self._itl_bounds: tuple[float, ...] = tuple(self.itl_seconds._upper_bounds)
        self._itl_buckets: list[Any] = self.itl_seconds._buckets
        self._itl_sum: Any = self.itl_seconds._sum
        self.engine_ttft_seconds = Histogram(
            "neurectomy_engine_ttft_seconds",
            "Ryot's time to first token.",
            buckets=TOKEN_BUCKETS_S,
            registry=r,
        )
        self.engine_queue_seconds = Histogram(
            "neurectomy_engine_queue_seconds",
            "Time waiting in Ryot's queue.",
            buckets=TOKEN_BUCKETS_S,
            registry=r,
        )
        self.tokens = Counter("neurectomy_tokens", "Tokens generated and consumed.", ["kind"], registry=r)
        agent_labels = ["team", "agent"]
        self.agent_replicas = Gauge(
            "neurectomy_agent_replicas", "Running instances.", agent_labels, registry=r
        )
        self.agent_in_flight = Gauge(
            "neurectomy_agent_in_flight", "Calls being handled.", agent_labels, registry=r
        )
        self.agent_mailbox = Gauge(
            "neurectomy_agent_mailbox_depth", "Calls waiting in mailboxes.", agent_labels, registry=r
        )
        self.engine_queue_depth = Gauge(
            "neurectomy_engine_queue_depth",
            "Generations queued in Ryot across generator instances.",
            registry=r,
        )
        self._scraped: dict[str, float] = {}
        r.register(_ScrapedCounters(self._scraped))
        r.register(_LocalDeliveries())
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        Info("neurectomy_build", "Version of the running Neurectomy.", registry=r).info(
            {"version": _version(), "python": platform.python_version()}
        )
        self.live = LiveStats()
        """Rolling windows for the dashboard's live views."""
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._hop_series: dict[tuple[str, str, str], Any] = {}

    def request(self, method: str, route: str, path: str, status: int, seconds: float) -> None:
        """Count and time one HTTP request and write its access log line.

        Args:
            method: The HTTP method.
            route: The route's path template (the path itself when no route matched).
            path: The path requested.
            status: The response status.
            seconds: Time until the response was complete.
        """
        series = self._request_series.get((method, route, status))
        if series is None:  # the label children of each (method, route, status), looked up once
            series = (
                self.requests.labels(method, route, str(status)),
                self.request_seconds.labels(method, route),
            )
            if len(self._request_series) < MAX_CACHED_SERIES:
                self._request_series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)
        log.info("request", method=method, path=path, status=status, duration_s=round(seconds, 6))

    # CallObserver
    def hop(self, team: str, agent: str, outcome: str, seconds: float) -> None:
        """Record one agent call."""
        key = (team, agent, outcome)
        child = self._hop_series.get(key)
        if child is None:  # the label child of each (team, agent, outcome), looked up once
            child = self.hop_seconds.labels(team, agent, outcome)
            if len(self._hop_series) < MAX_CACHED_SERIES:
                self._hop_series[key] = child
        child.observe(seconds)
        self.live.hop(team, agent, outcome, seconds)

    def first_token(self, seconds: float) -> None:
        """Record a TTFT."""
        self.ttft_seconds.observe(seconds)
        self.live.first_token(seconds)

    def inter_token(self, seconds: float) -> None:
        """Record a gap between two streamed chunks (``seconds``: a ``perf_counter`` difference, never NaN).

        What ``itl_seconds.observe(seconds)`` does (the sum, then the first bucket whose upper bound is
        ``>= seconds``: ``bisect_left`` over the sorted bounds), without its three Python calls of checks
        and bucket search: it runs once per token event.
        """
        self._itl_sum.inc(seconds)
        self._itl_buckets[bisect_left(self._itl_bounds, seconds)].inc(1)

    def generation(self, output: GenerateOutput) -> None:
        """Record a finished generation's tokens and engine timings."""
        self.tokens.labels("prompt").inc(output.usage.prompt_tokens)
        self.tokens.labels("completion").inc(output.usage.completion_tokens)
        self.tokens.labels("cached").inc(output.usage.cached_tokens)
        self.engine_ttft_seconds.observe(output.timings.ttft_s)
        self.engine_queue_seconds.observe(output.timings.queue_s)
        self.live.generation(output.usage.completion_tokens, output.timings.decode_s)

    async def refresh(self, orchestrator: Orchestrator) -> None:
        """Set the gauges from the agents' ``$SRV.STATS`` (and the vault's stats) right now."""
        with anyio.move_on_after(SCRAPE_TIMEOUT_S):
            answers = await orchestrator.stats()
            totals: dict[tuple[str, str], list[int]] = {}
            queue_depth = lookups = hits = 0
            for answer in answers:
                meta = answer.get("metadata") or {}
                if "team" not in meta:
                    continue
                data = ((answer.get("endpoints") or [{}])[0].get("data")) or {}
                row = totals.setdefault((str(meta["team"]), str(answer.get("name", ""))), [0, 0, 0])
                row[0] += 1
                row[1] += int(data.get("in_flight", 0))
                row[2] += int(data.get("mailbox_depth", 0))
                queue_depth += int(data.get("engine_queue_depth", 0))
                prefix = data.get("prefix_cache") or {}
                lookups += int(prefix.get("lookups", 0))
                hits += int(prefix.get("hits", 0))
            for gauge in (self.agent_replicas, self.agent_in_flight, self.agent_mailbox):
                gauge.clear()
            for (team, agent), (replicas, in_flight, mailbox) in totals.items():
                self.agent_replicas.labels(team, agent).set(replicas)
                self.agent_in_flight.labels(team, agent).set(in_flight)
                self.agent_mailbox.labels(team, agent).set(mailbox)
            self.engine_queue_depth.set(queue_depth)
            self._scraped["prefix_cache_lookups"] = lookups
            self._scraped["prefix_cache_hits"] = hits
            if any(agent == "vault-stats" for _, agent in totals):
                try:
                    stats = await orchestrator.call_once(
                        "storage", "vault-stats", {}, orchestrator.context(timeout_s=SCRAPE_TIMEOUT_S)
                    )
                    l1_hits = int(stats.get("l1_hits", 0))
                    self._scraped["vault_l1_hits"] = l1_hits
                    self._scraped["vault_l1_lookups"] = l1_hits + int(stats.get("l1_misses", 0))
                except AgentError as exc:
                    log.info("vault stats unavailable for metrics", error=exc.message)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


_SCRAPED_COUNTERS = {
    "prefix_cache_lookups": "Prompts looked up in Ryot's prefix cache (summed over generator instances).",
    "prefix_cache_hits": "Prefix-cache lookups that reused a cached prefix.",
    "vault_l1_lookups": "Vault record reads (decrypted LRU lookups).",
    "vault_l1_hits": "Vault record reads served from the decrypted LRU.",
}


class _ScrapedCounters(Collector):
    """Counters whose values are read from the agents at scrape time (see :meth:`Metrics.refresh`)."""

    def __init__(self, values: dict[str, float]) -> None:
        self._values = values

    def describe(self) -> list[CounterMetricFamily]:
        """The families, without values (so the registry knows their names)."""
        return [CounterMetricFamily(f"neurectomy_{k}", doc) for k, doc in _SCRAPED_COUNTERS.items()]

    def collect(self) -> list[CounterMetricFamily]:
        """The families with the last scraped values (absent until an agent reported one)."""
        families = []
        for key, doc in _SCRAPED_COUNTERS.items():
            if key in self._values:
                families.append(CounterMetricFamily(f"neurectomy_{key}", doc, value=self._values[key]))
        return families


class _LocalDeliveries(Collector):
    """The messages this process delivered without nats-server.

    Answers (:meth:`agents.Bus.local_deliveries`) and requests (:meth:`agents.Bus.local_requests_delivered`).
    """

    _FAMILIES = (
        (
            "neurectomy_nats_local_deliveries",
            "Agents' answers delivered to a caller's inbox in this process without nats-server.",
            Bus.local_deliveries,
        ),
        (
            "neurectomy_nats_local_requests",
            "Requests handed to an agent instance's endpoint in this process without nats-server.",
            Bus.local_requests_delivered,
        ),
    )

    def describe(self) -> list[CounterMetricFamily]:
        """The families, without a value."""
        return [CounterMetricFamily(name, doc) for name, doc, _ in self._FAMILIES]

    def collect(self) -> list[CounterMetricFamily]:
        """The families with the counts as of now."""
        return [CounterMetricFamily(name, doc, value=count()) for name, doc, count in self._FAMILIES]


def _version() -> str:
    try:
        return importlib.metadata.version("neurectomy")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics_endpoint(state: State) -> Response[bytes]:
    """The Prometheus text exposition of the app's metrics (gauges refreshed from the agents first)."""
    metrics: Metrics = state.metrics
    await metrics.refresh(state.orchestrator)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


ROUTES = (metrics_endpoint,)
