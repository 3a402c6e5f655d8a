"""The Litestar application: routes, error mapping, request ids, OpenAPI at ``/schema``."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.middleware import ASGIMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from api import _generate, _sigma, _system, _vault
from api.errors import EXCEPTION_HANDLERS
from orchestrator import Orchestrator

log = structlog.get_logger("neurectomy.api")
REQUEST_ID_HEADER = "x-request-id"


class RequestIdMiddleware(ASGIMiddleware):
    """Takes ``X-Request-Id`` from the request (or makes one), binds it to every log line, echoes it."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Bind the request id around the rest of the app."""
        headers = dict(scope.get("headers") or [])
        raw = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = raw if raw and len(raw) <= 128 and raw.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await next_app(scope, receive, send_with_id)


def create_app(
    orchestrator: Orchestrator, *, max_body_bytes: int = 4 * 1024 * 1024, debug: bool = False
) -> Litestar:
    """The HTTP application over ``orchestrator``.

    Args:
        orchestrator: Dispatches requests to the agents.
        max_body_bytes: Larger request bodies are refused with 413.
        debug: Litestar debug mode (tracebacks in responses; never in production).
    """
    return Litestar(
        route_handlers=[*_generate.ROUTES, *_system.ROUTES, *_vault.ROUTES, *_sigma.ROUTES],
        state=State({"orchestrator": orchestrator}),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[RequestIdMiddleware()],
        openapi_config=OpenAPIConfig(title="Neurectomy", version="0.1.0", path="/schema"),
        request_max_body_size=max_body_bytes,
        debug=debug,
        logging_config=None,
    )
