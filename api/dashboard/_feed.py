"""The dashboard's live feed and the trace views.

* ``GET /v1/dashboard/snapshot``: the system now, as JSON (see :class:`Snapshotter`);
* ``GET /v1/dashboard/events``: the same as server-sent events (``event: snapshot``) every
  ``interval_s`` seconds until the client goes away;
* ``GET /v1/traces``: the newest traces in this process's span buffer (its own spans and those the agent
  processes ship over NATS, see :mod:`agents.tracing`); ``GET /v1/traces/{trace_id}``: one trace's
  spans, by start time (404 when none is kept).

A snapshot is built at most once per ``interval_s`` however many pages watch (one ``$SRV.STATS``
round for all). The agents and models it shows are the system's, not a tenant's; traces are filtered
to those a request of the caller's tenant started, unless the caller has the ``admin`` scope.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromPath, Parameter
from litestar.response import Stream

from agents.errors import NotFoundError
from agents.tracing import TENANT_ATTRIBUTE, span_buffer
from api._auth import Principal
from api._request import tenant_of
from api._sse import sse_event, sse_response
from orchestrator import Orchestrator

if TYPE_CHECKING:
    from api._metrics import Metrics

__all__ = ("ROUTES", "Snapshotter")

DEFAULT_INTERVAL_S = 2.0
"""Seconds between two snapshots of the live feed."""


class Snapshotter:
    """Builds the dashboard's snapshot, at most once per ``interval_s`` (shared by every watcher).

    Args:
        orchestrator: Asks the agents (``$SRV.STATS``).
        metrics: The app's metrics (its :class:`~api.dashboard.LiveStats` windows).
        interval_s: Reuse a snapshot younger than this, in seconds.
    """

    def __init__(
        self, orchestrator: Orchestrator, metrics: Metrics, *, interval_s: float = DEFAULT_INTERVAL_S
    ):
        self.orchestrator = orchestrator
        self.metrics = metrics
        self.interval_s = interval_s
        self._last: dict[str, Any] | None = None
        self._lock = anyio.Lock()

    async def get(self) -> dict[str, Any]:
        """The snapshot (rebuilt when older than ``interval_s``).

        Keys: ``t`` (Unix seconds), ``agents`` (one row per agent: roster fields, ``health``, ``load``,
        ``replicas``, ``in_flight``, ``mailbox_depth``, and over the last minute ``calls``, ``errors``,
        ``p50_ms``, ``p95_ms``), ``models`` (served models with memory, slots, queue), ``prefix_cache``
        (Ryot's ``lookups`` and ``hits`` since start, summed over instances), ``series`` (TTFT
        p50/p95, tokens/s, calls/s over the last minutes) and ``nats_connected``.
        """
        async with self._lock:
            if self._last is not None and time.time() - self._last["t"] < self.interval_s:
                return self._last
            live = self.metrics.live
            live.tick()
            window = live.agents()
            agents = []
            answers = await self.orchestrator.stats()  # one collection for agents, models and the cache
            for info in await self.orchestrator.agents(answers):
                row = dataclasses.asdict(info)
                row.pop("metadata", None)
                row["capabilities"] = list(info.capabilities)
                row.update(window.get(info.name) or {"calls": 0, "errors": 0, "p50_ms": None, "p95_ms": None})
                agents.append(row)
            models = [dataclasses.asdict(m) for m in await self.orchestrator.models(answers)]
            lookups = hits = 0
            for answer in answers:
                data = ((answer.get("endpoints") or [{}])[0].get("data")) or {}
                prefix = data.get("prefix_cache") or {}
                lookups += int(prefix.get("lookups", 0))
                hits += int(prefix.get("hits", 0))
            self._last = {
                "t": time.time(),
                "nats_connected": self.orchestrator.bus.is_connected,
                "agents": agents,
                "models": models,
                "prefix_cache": {"lookups": lookups, "hits": hits},
                "series": live.series(),
            }
            return self._last


def _snapshotter(state: State) -> Snapshotter:
    snap = state.get("dashboard_snapshotter")
    if snap is None:
        snap = Snapshotter(state.orchestrator, state.metrics)
        state.dashboard_snapshotter = snap
    return snap


@get("/v1/dashboard/snapshot", summary="Agents, models and live charts' data, now")
async def snapshot(state: State) -> dict[str, Any]:
    """One snapshot (see :meth:`Snapshotter.get`)."""
    return await _snapshotter(state).get()


@get("/v1/dashboard/events", summary="The dashboard snapshot as server-sent events")
async def events(state: State) -> Stream:
    """``event: snapshot`` with the snapshot as JSON every couple of seconds, until the client leaves."""
    snap = _snapshotter(state)

    async def stream() -> AsyncGenerator[bytes, None]:
        while True:
            body = await snap.get()
            yield sse_event(_json(body), "snapshot")
            await anyio.sleep(snap.interval_s)

    return sse_response(stream())


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _may_see(request: Request[Any, Any, Any]) -> str | None:
    """The tenant whose traces the caller may see (``None``: all, for ``admin``)."""
    user = request.scope.get("user")
    if isinstance(user, Principal) and "admin" in user.scopes:
        return None
    return tenant_of(request)


def _visible(spans: list[dict[str, Any]], tenant: str | None) -> bool:
    if tenant is None:
        return True
    tenants = {s["attributes"].get(TENANT_ATTRIBUTE) for s in spans} - {None}
    return tenants == {tenant}


@get("/v1/traces", summary="The newest traces kept in memory (summaries)")
async def list_traces(
    request: Request[Any, Any, Any],
    limit: Annotated[int, Parameter(ge=1, le=500, description="Most traces listed.")] = 50,
) -> list[dict[str, Any]]:
    """The newest traces kept, newest first (see :meth:`agents.tracing.SpanBuffer.traces`)."""
    tenant = _may_see(request)
    buffer = span_buffer()
    rows = buffer.traces(limit=max(limit * 4, 200))
    if tenant is not None:
        by_trace: dict[str, list[dict[str, Any]]] = {}
        for span in buffer.spans():
            by_trace.setdefault(span["trace_id"], []).append(span)
        rows = [r for r in rows if _visible(by_trace.get(r["trace_id"], []), tenant)]
    return rows[:limit]


@get("/v1/traces/{trace_id:str}", summary="One trace's spans, across processes")
async def get_trace(request: Request[Any, Any, Any], trace_id: FromPath[str]) -> list[dict[str, Any]]:
    """The spans of ``trace_id`` by start time: ids, parent, name, kind, times (ns), service, attributes.

    Raises:
        NotFoundError: No span of that trace is kept (or it belongs to another tenant's request).
    """
    spans = span_buffer().trace(trace_id)
    if not spans or not _visible(spans, _may_see(request)):
        raise NotFoundError(f"no trace {trace_id!r} in memory", field="trace_id")
    return spans


ROUTES = (snapshot, events, list_traces, get_trace)
