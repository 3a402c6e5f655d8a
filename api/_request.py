"""Per-request context the routes share: request id, tenant, trace id, deadline."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from agents.errors import BadInputError
from agents.scopes import ALL_SCOPES
from api._auth import Principal
from api._trace import trace_id_of
from orchestrator import CallContext, Orchestrator, new_id

TENANT_HEADER = "x-neurectomy-tenant"
DEFAULT_TENANT = "default"
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def request_id_of(request: Request[Any, Any, Any]) -> str:
    """The request id bound by the request-id middleware (a fresh one if missing)."""
    return str(request.scope.get("state", {}).get("request_id") or new_id())


def call_id_of(request: Request[Any, Any, Any]) -> str:
    """The server-generated id of the request's calls over NATS (never the client's ``X-Request-Id``)."""
    state = request.scope.get("state", {})
    call_id = state.get("call_id")
    if not call_id:
        call_id = state["call_id"] = new_id()
    return str(call_id)


def tenant_of(request: Request[Any, Any, Any]) -> str:
    """The tenant of the credential when auth is on, else ``X-Neurectomy-Tenant`` (``default`` when absent).

    Raises:
        BadInputError: The header is not 1-64 characters of ``[A-Za-z0-9_.-]`` starting alphanumeric.
    """
    user = request.scope.get("user")
    if isinstance(user, Principal):
        return user.tenant  # the auth middleware refused a header naming another tenant (403)
    tenant = request.headers.get(TENANT_HEADER, DEFAULT_TENANT)
    if not _TENANT_RE.match(tenant):
        raise BadInputError(
            "must be 1-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit",
            field="X-Neurectomy-Tenant",
        )
    return tenant


def scopes_of(request: Request[Any, Any, Any]) -> frozenset[str]:
    """The credential's scopes when auth is on; every scope when it is off (a loopback-only service)."""
    user = request.scope.get("user")
    if isinstance(user, Principal):
        return user.scopes
    return ALL_SCOPES


def call_context(
    orchestrator: Orchestrator, request: Request[Any, Any, Any], *, timeout_s: float | None = None
) -> CallContext:
    """The :class:`CallContext` of a call made on behalf of ``request``."""
    return orchestrator.context(
        timeout_s=timeout_s,
        request_id=call_id_of(request),
        tenant=tenant_of(request),
        trace_id=trace_id_of(request),
        scopes=scopes_of(request),
    )
