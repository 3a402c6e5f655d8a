"""What the SDK clients send and read: generation bodies checked like the server, errors, SSE events.

Part of :mod:`neurectomy.sdk.client`. A generation's body is validated with the server's own
:class:`api.generate.schemas.GenerateRequest` before it is sent; an error answer (``{"error": {...}}``,
or OpenAI's shape) becomes the typed :class:`~neurectomy.sdk.errors.APIError`; a server-sent event
becomes a :class:`TokenEvent`, the final :class:`GenerateResponse`, or a :class:`StreamError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
from httpx_sse import ServerSentEvent
from pydantic import BaseModel, ValidationError

from api.generate.schemas import ChatMessage, GenerateRequest, GenerateResponse, TokenEvent
from neurectomy.sdk._transport import default_api_key, default_base_url
from neurectomy.sdk.errors import APIError, BadRequestError, StreamError, api_error

Timeout = float | None
"""A per-call timeout in seconds (``None``: the client's ``timeout_s``)."""


def _timeout(timeout: Timeout) -> Any:
    return httpx.USE_CLIENT_DEFAULT if timeout is None else timeout


StreamEvent = TokenEvent | GenerateResponse

M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], body: Mapping[str, Any]) -> M:
    """``body`` as ``model``, or the same 400 the server would answer (field named), before sending."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise BadRequestError(400, "bad_request", f"{field}: {first['msg']}", field=field) from None


def _body(
    prompt: str | None,
    messages: Sequence[ChatMessage | dict[str, str]] | None,
    stream: bool,
    options: dict[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {"stream": stream, **{k: v for k, v in options.items() if v is not None}}
    if prompt is not None:
        body["prompt"] = prompt
    if messages is not None:
        body["messages"] = [m.model_dump() if isinstance(m, ChatMessage) else dict(m) for m in messages]
    _validated(GenerateRequest, body)  # fail fast, with the same rules as the server
    return body


def _error(response: httpx.Response, content: bytes) -> APIError:
    try:
        detail = json.loads(content)["error"]
        code, message = str(detail["code"]), str(detail["message"])
        field = detail.get("field", detail.get("param"))  # our shape, or OpenAI's on /v1/chat/... routes
        request_id = json.loads(content).get("request_id")
    except (ValueError, KeyError, TypeError):
        code, message, field, request_id = "http_error", content.decode(errors="replace")[:500], None, None
    return api_error(
        response.status_code,
        code,
        message,
        field=field,
        request_id=request_id or response.headers.get("x-request-id"),
        retry_after=response.headers.get("retry-after"),
    )


def _embedding_body(texts: str | Sequence[str]) -> dict[str, Any]:
    return {"model": "all-MiniLM-L6-v2", "input": texts if isinstance(texts, str) else list(texts)}


def _vectors(body: dict[str, Any]) -> list[list[float]]:
    return [[float(x) for x in item["embedding"]] for item in sorted(body["data"], key=lambda d: d["index"])]


def _event(sse: ServerSentEvent) -> StreamEvent | None:
    if sse.event == "token":
        return TokenEvent.model_validate_json(sse.data)
    if sse.event == "done":
        return GenerateResponse.model_validate_json(sse.data)
    if sse.event == "error":
        detail = json.loads(sse.data)["error"]
        raise StreamError(str(detail["code"]), str(detail["message"]))
    return None


def _http_args(base_url: str | None, timeout_s: float, api_key: str | None) -> dict[str, Any]:
    key = api_key if api_key is not None else default_api_key()
    return {
        "base_url": base_url or default_base_url(),
        "timeout": timeout_s,
        "headers": {"Authorization": f"Bearer {key}"} if key else {},
    }
