"""The Litestar application: routes, error mapping, request ids, OpenAPI at ``/schema``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from litestar import Litestar
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.datastructures import State
from litestar.middleware import ASGIMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from api import _metrics, dashboard
from api._auth import AuthConfig, KeyVerifier, auth_middleware, openapi_security
from api._kv_store import KeyValueStore
from api._limits import LimitsConfig, rate_limit_middleware
from api._metrics import Metrics, MetricsMiddleware
from api._origin import HostOriginGuard, cors_config
from api._trace import TraceMiddleware, add_trace_headers
from api.agents import routes as _agents
from api.errors import EXCEPTION_HANDLERS
from api.generate import routes as _generate
from api.keys import routes as _keys
from api.llamacpp import routes as _llamacpp
from api.ollama import routes as _ollama
from api.openai import routes as _openai
from api.sigma import routes as _sigma
from api.system import routes as _system
from api.system import sysinfo as _sysinfo
from api.tasks import routes as _tasks
from api.vault import routes as _vault
from api.ws import routes as _ws
from orchestrator import Orchestrator, TaskQueue

log = structlog.get_logger("neurectomy.api")
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


class RequestIdMiddleware(ASGIMiddleware):
    """Takes ``X-Request-Id`` from the request (or makes one), binds it to every log line, echoes it.

    The id the client chose is only a label: the calls the request makes over NATS (and their cancel
    subjects) use ``call_id``, which the server generates for every request, so a client that reuses
    another caller's ``X-Request-Id`` cannot cancel or disturb that caller's calls.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Bind the request id around the rest of the app."""
        headers = dict(scope.get("headers") or [])
        raw = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        # Only subject-safe characters, as the id is logged and echoed (NATS subjects use call_id).
        chosen = _REQUEST_ID_RE.fullmatch(raw) is not None
        call_id = uuid.uuid4().hex
        # A server-made request id is the call id too, so the same id is on every hop's log lines; a
        # client-chosen one is only echoed (the API's log lines carry both, to join them).
        request_id = raw if chosen else call_id
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["call_id"] = call_id

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id, call_id=call_id):
            await next_app(scope, receive, send_with_id)


def create_app(
    orchestrator: Orchestrator,
    *,
    max_body_bytes: int = 4 * 1024 * 1024,
    debug: bool = False,
    auth: AuthConfig | None = None,
    keys: KeyVerifier | None = None,
    limits: LimitsConfig | None = None,
    tasks: TaskQueue | None = None,
    allowed_hosts: Sequence[str] | None = None,
    cors_origins: Sequence[str] = (),
    admin_token: str | None = None,
    rate_limit_store: KeyValueStore | None = None,
) -> Litestar:
    """The HTTP application over ``orchestrator``.

    Args:
        orchestrator: Dispatches requests to the agents (the app's metrics become its observer).
        max_body_bytes: Larger request bodies are refused with 413.
        debug: Litestar debug mode (tracebacks in responses; never in production).
        auth: Authentication settings; ``None`` or ``enabled`` not ``True``: no authentication (the
            caller resolves ``enabled=None`` against the bind address, see ``AuthConfig.enabled_for``).
        keys: API key verifier when auth is on (``neurectomy.server.keys.KeyStore``); if it can also create
            and revoke keys, ``/v1/keys`` manages them.
        limits: Rate limits (none by default).
        tasks: The durable task queue behind ``/v1/tasks`` (None: those routes answer 503).
        allowed_hosts: Hosts a request's ``Host`` may name (``*.example.com`` for subdomains, ``*`` any);
            ``None`` checks no host (an in-process app; ``serve`` always passes its list, see
            :mod:`api._origin`).
        cors_origins: Origins browsers may call from (CORS; none by default).
        admin_token: With auth off, ``/v1/keys`` needs ``Authorization: Bearer <admin_token>`` (the local
            admin token in the state directory); ``None``: those routes refuse (403).
        rate_limit_store: Where rate limit windows are counted: a :class:`api._kv_store.KeyValueStore`
            shared with the cluster's other API processes; ``None``: in this process only.
    """
    metrics = Metrics()
    orchestrator.observer = metrics
    auth_on = auth is not None and auth.enabled is True
    guards = [auth_middleware(auth, keys)] if auth is not None and auth_on else []
    rate_limit = rate_limit_middleware(limits or LimitsConfig(), store=rate_limit_store)
    host_guard = (
        [HostOriginGuard(AllowedHostsConfig(allowed_hosts=list(allowed_hosts)), cors_origins)]
        if allowed_hosts is not None
        else []
    )
    return Litestar(
        route_handlers=[
            *_openai.ROUTES,
            *_generate.ROUTES,
            *_system.ROUTES,
            *_agents.ROUTES,
            *_keys.ROUTES,
            *_tasks.ROUTES,
            *_vault.ROUTES,
            *_sigma.ROUTES,
            *_ws.ROUTES,
            *_metrics.ROUTES,
            *_sysinfo.ROUTES,
            *_ollama.ROUTES,
            *_llamacpp.ROUTES,
            *dashboard.ROUTES,
        ],
        state=State(
            {
                "orchestrator": orchestrator,
                "metrics": metrics,
                "keys": keys,
                "tasks": tasks,
                "admin_token": admin_token,
            }
        ),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[
            *host_guard,
            RequestIdMiddleware(),
            TraceMiddleware(),
            MetricsMiddleware(metrics),
            *guards,
            *([rate_limit] if rate_limit is not None else []),
        ],
        before_send=[add_trace_headers],
        openapi_config=OpenAPIConfig(
            title="Neurectomy", version="0.1.0", path="/schema", **(openapi_security() if auth_on else {})
        ),
        cors_config=cors_config(cors_origins),
        request_max_body_size=max_body_bytes,
        debug=debug,
        logging_config=None,
    )
