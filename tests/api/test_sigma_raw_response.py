"""`api.sigma._raw_response.RawResponse`: the same ASGI messages as Litestar's own ``Response`` path."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, Response, post

from api.sigma._raw_response import BINARY, RawResponse

HEADERS = {"x-sigma-report": '{"bytes_in": 3, "ratio": 1.5, "note": "\u00e9"}'}
BODIES = [b"", b"frame", bytes(range(256)) * 40]


@post("/litestar", status_code=200)
async def litestar_way(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Litestar's generic conversion (what the raw routes answered before)."""
    return Response(await request.body(), media_type=BINARY, headers=HEADERS)


@post("/raw", status_code=200)
async def raw_way(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The raw routes' fast path."""
    return RawResponse(await request.body(), headers=HEADERS)


@post("/raw-with-route-headers", status_code=200, response_headers={"x-route": "set by the route"})
async def raw_with_route_headers(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The fast path under a route that sets its own response headers."""
    return RawResponse(await request.body(), headers=HEADERS)


@post("/litestar-with-route-headers", status_code=200, response_headers={"x-route": "set by the route"})
async def litestar_with_route_headers(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Litestar's conversion under a route that sets its own response headers."""
    return Response(await request.body(), media_type=BINARY, headers=HEADERS)


APP = Litestar(
    route_handlers=[litestar_way, raw_way, raw_with_route_headers, litestar_with_route_headers],
    logging_config=None,
)


async def _messages(path: str, body: bytes) -> list[dict[str, Any]]:
    """The ASGI messages ``APP`` sends for one POST of ``body`` to ``path``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", BINARY.encode()), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8420),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await APP(scope, receive, send)  # type: ignore[arg-type]
    return sent


@pytest.mark.anyio
@pytest.mark.parametrize("body", BODIES, ids=["empty", "short", "10 KB"])
@pytest.mark.parametrize("route", ["", "-with-route-headers"], ids=["plain", "route headers"])
async def test_raw_response_sends_what_litestar_sends(body: bytes, route: str) -> None:
    expected = await _messages(f"/litestar{route}", body)
    got = await _messages(f"/raw{route}", body)
    assert expected[0]["status"] == 200 and expected[1]["body"] == body  # the reference is what we think
    assert got == expected  # status, headers (names, values, order), body and more_body
    headers = dict(got[0]["headers"])
    assert headers[b"content-length"] == str(len(body)).encode()
    assert headers[b"content-type"] == b"application/octet-stream"
    assert headers[b"x-sigma-report"] == HEADERS["x-sigma-report"].encode("latin-1")
