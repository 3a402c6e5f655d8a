"""Errors of the OpenAI-compatible routes, in OpenAI's shape: ``{"error": {message, type, param, code}}``.

The status of every error is still decided in one place, :mod:`api.errors` (``STATUS_BY_CODE`` and its
exception handlers); this module only re-shapes their bodies, so that OpenAI clients raise their typed
exceptions (``openai.BadRequestError`` for 400, ``RateLimitError`` for 429, ``InternalServerError`` for 5xx,
...). :func:`openai_error` is the one mapping from our error codes to OpenAI's error ``type``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from agents.errors import AgentError
from api.errors import (
    STATUS_BY_CODE,
    agent_error_response,
    http_error_response,
    internal_error_response,
    validation_error_response,
)
from api.openai.schemas import OpenAIError, OpenAIErrorBody

__all__ = ("OPENAI_EXCEPTION_HANDLERS", "openai_error", "openai_error_type", "openai_param")

_TAGGED = frozenset({"messages", "content", "response_format", "tool_choice"})
"""Fields whose validation locations carry a union member's tag (a role, a part type, ...) after them."""
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def openai_param(key: str | None) -> str | None:
    """A validation location in OpenAI's notation: ``messages.2.user.content.0`` → ``messages[2].content[0]``.

    Indices become ``[i]``; the names pydantic adds for union members (``constrained-str``,
    ``list[...]``, ``function-after[...]``, a discriminator's tag such as ``user``) are dropped.
    """
    if not key:
        return key
    out = ""
    previous = ""
    for segment in key.split("."):
        if segment.isdigit():
            out += f"[{segment}]"
            continue
        if (
            not _PLAIN.match(segment)
            or segment[0].isupper()
            or segment in ("str", "int", "float", "bool", "list", "dict")
        ):
            continue  # a union member's type name, not a field
        if previous in _TAGGED or (out.endswith("]") and previous.isdigit() and _tag_after_index(out)):
            previous = segment
            if segment in _TAGS:
                continue
        out += f".{segment}" if out else segment
        previous = segment
    return out or key


_TAGS = frozenset(
    {"system", "developer", "user", "assistant", "tool", "function", "text", "json_object", "json_schema"}
)


def _tag_after_index(path: str) -> bool:
    """Whether the element just indexed in ``path`` is a tagged union (a message)."""
    return path.rsplit("[", 1)[0].endswith("messages")


_TYPE_BY_STATUS = {
    429: "rate_limit_error",
    499: "cancelled_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


def openai_error_type(status: int) -> str:
    """OpenAI's error ``type`` for an HTTP status.

    4xx: ``invalid_request_error``, except 429 ``rate_limit_error``; 5xx: ``server_error``, except 503
    ``service_unavailable_error`` and 504 ``timeout_error``.
    """
    return _TYPE_BY_STATUS.get(status, "invalid_request_error" if status < 500 else "server_error")


def openai_error(code: str, message: str, param: str | None) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OpenAI-shaped body of an error with our wire ``code``.

    Args:
        code: Our error code (``bad_request``, ``busy``, ``no_responders``, ``timeout``, ...).
        message: Human-readable description.
        param: The request field at fault, if any.

    Returns:
        ``(status, {"error": {"message", "type", "param", "code"}})``; the status comes from
        :data:`api.errors.STATUS_BY_CODE` (500 for an unknown code).
    """
    status = STATUS_BY_CODE.get(code, 500)
    body = OpenAIErrorBody(
        error=OpenAIError(message=message, type=openai_error_type(status), param=param, code=code)
    )
    return status, body.model_dump()


def agent_error_body(exc: AgentError) -> dict[str, Any]:
    """The OpenAI-shaped body of ``exc`` (for an error event inside a stream)."""
    return openai_error(exc.code, exc.message, exc.field)[1]


def _reshaped(
    native: Callable[[Request[Any, Any, Any], Exception], Response[Any]],
) -> Callable[[Request[Any, Any, Any], Exception], Response[Any]]:
    """A handler that answers like ``native`` (status, headers) with the body in OpenAI's shape."""

    def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        response = native(request, exc)
        ours: dict[str, Any] = response.content["error"]
        body = OpenAIErrorBody(
            error=OpenAIError(
                message=str(ours.get("message", "")),
                type=openai_error_type(response.status_code or 500),
                param=openai_param(ours.get("field")),
                code=ours.get("code"),
            )
        )
        return Response(body.model_dump(), status_code=response.status_code, headers=response.headers)

    return handler


OPENAI_EXCEPTION_HANDLERS = {
    AgentError: _reshaped(agent_error_response),
    ValidationException: _reshaped(validation_error_response),
    HTTPException: _reshaped(http_error_response),
    Exception: _reshaped(internal_error_response),
}
"""Exception handlers of the OpenAI-compatible router (they override the app's for its routes only)."""
