"""The raw ΣLANG answers: `api.sigma._raw_response.RawResponse` sends what Litestar's ``Response`` sends,
and a raw turn through the app (real Compression team) keeps its headers and its access log line."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response, post
from structlog.testing import capture_logs

from agents import Bus
from agents.compression import COMPRESSION_AGENTS
from api import create_app
from api.sigma._raw_response import BINARY, RawResponse
from bridges.sigma import SigmaBridge
from orchestrator import new_id
from orchestrator.testing import running
from sigmalang import DiskRSUStore, SigmaCodec

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


@pytest.fixture
async def sigma_app(bus: Bus, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app over the real Compression team (real codec, on-disk RSU store), called in-process."""
    codec = SigmaCodec(store=DiskRSUStore(tmp_path / "rsu.db"), secret=b"raw-response-test-secret-32-byte")
    async with (
        SigmaBridge(codec) as bridge,
        running(bus, [cls(bridge) for cls in COMPRESSION_AGENTS]) as orchestrator,
    ):
        app = create_app(orchestrator)
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://neurectomy.test") as client:
            yield client


def _access_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "request"]


@pytest.mark.anyio
async def test_a_raw_turn_answers_the_same_headers_and_logs_its_access_line(
    sigma_app: httpx.AsyncClient,
) -> None:
    turn = b"user: where is my parcel? " * 400
    with capture_logs() as logs:
        packed = await sigma_app.post(
            "/v1/sigma/compress?stream=conversation-1",
            content=turn,
            headers={"content-type": BINARY, "x-request-id": "turn-1"},
        )
    assert packed.status_code == 200, packed.text
    assert packed.headers["content-type"] == BINARY
    assert int(packed.headers["content-length"]) == len(packed.content) > 0
    report = json.loads(packed.headers["x-sigma-report"])
    assert report["bytes_in"] == len(turn) and report["bytes_out"] == len(packed.content)
    assert packed.headers["x-request-id"] == "turn-1"
    trace_id = packed.headers["x-trace-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert re.fullmatch(rf"00-{trace_id}-[0-9a-f]{{16}}-01", packed.headers["traceparent"])
    (line,) = _access_lines(logs)
    assert line["method"] == "POST" and line["path"] == "/v1/sigma/compress" and line["status"] == 200
    assert isinstance(line["duration_s"], float) and line["duration_s"] > 0
    assert line["log_level"] == "info"

    with capture_logs() as logs:
        unpacked = await sigma_app.post(
            "/v1/sigma/decompress", content=packed.content, headers={"content-type": BINARY}
        )
    assert unpacked.status_code == 200, unpacked.text
    assert unpacked.content == turn
    assert json.loads(unpacked.headers["x-sigma-report"])["bytes_out"] == len(turn)
    assert int(unpacked.headers["content-length"]) == len(turn)
    # No X-Request-Id from the client: the server's id is the call id, 32 hex digits.
    request_id = unpacked.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    (line,) = _access_lines(logs)
    assert line["path"] == "/v1/sigma/decompress" and line["status"] == 200


def test_new_ids_are_32_hex_digits_and_distinct() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
