"""The Litestar application: routes, error mapping, request ids, OpenAPI at ``/schema``."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import structlog
from litestar import Litestar
from litestar._asgi.utils import wrap_in_exception_handler
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api import _metrics, dashboard
from api._auth import AuthConfig, KeyVerifier, auth_middleware, openapi_security
from api._bodies import JsonRequest
from api._kv_store import KeyValueStore
from api._limits import LimitsConfig, rate_limit_middleware
from api._metrics import Metrics
from api._origin import HostOriginGuard, cors_config
from api._trace import attach_span, end_request_span, start_request_span, trace_headers
from api.agents import routes as _agents
from api.errors import EXCEPTION_HANDLERS
from api.generate import routes as _generate
from api.keys import routes as _keys
from api.llamacpp import routes as _llamacpp
from api.ollama import routes as _ollama
from api.openai import routes as _openai
from api.sigma import routes as _sigma
from api.sigma._coalesce import coalescing
from api.system import routes as _system
from api.system import sysinfo as _sysinfo
from api.tasks import routes as _tasks
from api.vault import routes as _vault
from api.ws import routes as _ws
from orchestrator import Orchestrator, TaskQueue, new_id

log = structlog.get_logger("neurectomy.api")
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


class RequestContextMiddleware:
    """Request id, trace span, metrics and the access log line of every request, in one ASGI layer.

    * **Request id**: ``X-Request-Id`` from the request when it is 1-128 characters of
      ``[A-Za-z0-9_-]`` (else one made here), echoed on the response and bound to every log line. The
      id the client chose is only a label: the calls the request makes over NATS (and their cancel
      subjects) use ``call_id``, which the server generates for every request, so a client that reuses
      another caller's ``X-Request-Id`` cannot cancel or disturb that caller's calls. A server-made
      request id is the call id too, so the same id is on every hop's log lines.
    * **Trace**: the request's server span (:mod:`api._trace`), current while the rest of the app runs;
      its trace id bound to log lines.
    * **Metrics** (HTTP only): count and duration per route and status, and one access log line
      (:meth:`api._metrics.Metrics.request`); an error raised by inner middleware counts with its status.
    * **Response headers**: ``X-Request-Id``, ``X-Trace-Id`` and ``traceparent``
      (:func:`api._trace.trace_headers`) on every response start, errors of inner middleware included:
      with ``guarded`` the rest of the app runs inside litestar's exception handler, so an auth or rate
      limit refusal is rendered inside this layer and passes through the same ``send`` wrapper.

    One layer instead of three: the headers are read in one pass over the raw list, the log context is
    bound once and the response start is seen by one ``send`` wrapper. A streamed body message passes two
    wrappers of litestar's exception handlers and this one (a ``before_send`` hook would add two more per
    message: litestar's send wrapper and the hook).

    Args:
        app: The next ASGI app.
        metrics: The app's metrics.
        guarded: Whether middleware inside this one may raise (auth, rate limits): their errors are then
            rendered inside this layer.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, guarded: bool = False) -> None:
        self.app = wrap_in_exception_handler(app) if guarded else app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the rest of the app with the request's ids, span and measurements."""
        kind = scope["type"]
        if kind != ScopeType.HTTP and kind != ScopeType.WEBSOCKET:
            await self.app(scope, receive, send)
            return
        raw_id = traceparent = b""
        tenant: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                raw_id = value
            elif name == b"traceparent":
                traceparent = value
            elif name == b"x-neurectomy-tenant" and tenant is None:
                tenant = value  # the first, as the routes read it
        chosen = raw_id.decode("latin-1")
        call_id = new_id()
        # Only subject-safe characters, as the id is logged and echoed (NATS subjects use call_id).
        request_id = chosen if _REQUEST_ID_RE.fullmatch(chosen) is not None else call_id
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["call_id"] = call_id
        span = start_request_span(scope, traceparent.decode("latin-1"))
        id_header = (b"x-request-id", request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header, *trace_headers(state)]
            await send(message)

        bound = {"request_id": request_id, "call_id": call_id}
        if span is not None:
            bound["trace_id"] = state["trace_id"]
        started = time.perf_counter()
        tokens = structlog.contextvars.bind_contextvars(**bound)
        otel_token = attach_span(span) if span is not None else None
        try:
            await self.app(scope, receive, send_with_id)
        except HTTPException as exc:
            status = exc.status_code
            raise
        finally:
            if kind == ScopeType.HTTP:
                elapsed = time.perf_counter() - started
                method, path = str(scope.get("method", "")), scope["path"]
                self.metrics.request(method, scope.get("path_template") or path, path, status, elapsed)
            if span is not None:
                header = tenant.decode("latin-1") if tenant is not None else None
                end_request_span(span, otel_token, scope, status, header)
            structlog.contextvars.reset_contextvars(**tokens)


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
            DefineMiddleware(
                RequestContextMiddleware, metrics=metrics, guarded=bool(guards) or rate_limit is not None
            ),
            *guards,
            *([rate_limit] if rate_limit is not None else []),
        ],
        lifespan=[coalescing],  # concurrent POST /v1/sigma/compress requests share compressor calls
        openapi_config=OpenAPIConfig(
            title="Neurectomy", version="0.1.0", path="/schema", **(openapi_security() if auth_on else {})
        ),
        cors_config=cors_config(cors_origins),
        request_max_body_size=max_body_bytes,
        request_class=JsonRequest,  # a large JSON body is decoded with the garbage collector paused
        debug=debug,
        logging_config=None,
    )
