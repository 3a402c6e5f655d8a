"""The one place where exceptions become HTTP responses."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from agents.errors import AgentError
from api.generate.schemas import ErrorBody, ErrorDetail

log = structlog.get_logger("neurectomy.api")

STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "context_length_exceeded": 400,
    "not_found": 404,
    "too_large": 413,
    "unauthorized": 401,
    "forbidden": 403,
    "busy": 429,
    "no_responders": 503,
    "timeout": 504,
    "cancelled": 499,
    "stream_broken": 502,
    "internal": 500,
    "insufficient_storage": 507,
}
RETRY_AFTER_S = 1


def error_body(code: str, message: str, field: str | None, request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The JSON of an error response."""
    request_id = request.scope.get("state", {}).get("request_id")
    return ErrorBody(
        error=ErrorDetail(code=code, message=message, field=field), request_id=request_id
    ).model_dump()


def agent_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """An :class:`AgentError` as a response: 400, 429 (with Retry-After), 503, 504, ..."""
    assert isinstance(exc, AgentError)
    status = STATUS_BY_CODE.get(exc.code, 500)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status in (429, 503) else None
    log.info("request failed", code=exc.code, status=status, error=exc.message)
    return Response(
        error_body(exc.code, exc.message, exc.field, request), status_code=status, headers=headers
    )


def first_validation_error(exc: ValidationException) -> tuple[str | None, str]:
    """The first offending field of a failed validation and what is wrong with it.

    A request without a body (Litestar reports the missing ``data`` parameter as ``KeyError('data')``)
    gets ``(None, "the request body is missing: send a JSON object")``.
    """
    extra = exc.extra if isinstance(exc.extra, list) else []
    first: dict[str, Any] = extra[0] if extra and isinstance(extra[0], dict) else {}
    field = first.get("key") or None
    message = str(first.get("message") or exc.detail)
    if field == "data" and first.get("source") == "body" and message == "'data'":
        return None, "the request body is missing: send a JSON object"
    return field, message


def validation_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A body that failed validation as 400, naming the first offending field."""
    assert isinstance(exc, ValidationException)
    extra = exc.extra if isinstance(exc.extra, list) else []
    field, message = first_validation_error(exc)
    if field:
        message = f"{field}: {message}"
    body = error_body("bad_request", message, field, request)
    body["error"]["details"] = extra
    return Response(body, status_code=400)


def _body_limit(request: Request[Any, Any, Any]) -> int | None:
    """The request body limit of the matched route, bytes (None if unknown)."""
    try:
        return request.route_handler.resolve_request_max_body_size()
    except (AttributeError, KeyError, LookupError):  # no route matched
        return None


def http_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's own HTTP errors (404, 405, 413, malformed JSON, ...) in our error format."""
    assert isinstance(exc, HTTPException)
    code = "bad_request" if 400 <= exc.status_code < 500 else "internal"
    detail = str(exc.detail)
    if exc.status_code == 404:
        code = "not_found"
    elif exc.status_code == 413:
        code = "too_large"
        limit = _body_limit(request)
        if limit is not None:
            detail = f"the request body exceeds this route's limit of {limit} bytes"
    elif exc.status_code == 405:
        code = "method_not_allowed"
    elif exc.status_code == 401:
        code = "unauthorized"
    elif exc.status_code == 403:
        code = "forbidden"
    headers = dict(exc.headers or {})
    if exc.status_code == 429:  # Litestar's rate limiter: RateLimit-* headers, no Retry-After
        code = "rate_limited"
        reset = headers.get("RateLimit-Reset", str(RETRY_AFTER_S))
        headers["Retry-After"] = str(max(1, int(reset))) if reset.isdigit() else str(RETRY_AFTER_S)
        policy = headers.get("RateLimit-Policy", "")
        quota, _, window = policy.partition("; w=")
        detail = (
            f"rate limit of {quota} requests per {window} s exceeded; retry after {headers['Retry-After']} s"
            if quota and window
            else f"too many requests; retry after {headers['Retry-After']} s"
        )
    return Response(error_body(code, detail, None, request), status_code=exc.status_code, headers=headers)


def internal_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unexpected: logged with its traceback, answered as 500 without internals."""
    log.exception("unhandled error", error=f"{type(exc).__name__}: {exc}")
    return Response(error_body("internal", "internal error", None, request), status_code=500)


EXCEPTION_HANDLERS = {
    AgentError: agent_error_response,
    ValidationException: validation_error_response,
    HTTPException: http_error_response,
    Exception: internal_error_response,
}
