"""The SDK retries idempotent requests on 429/503 (honouring Retry-After), and only those."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from neurectomy import BusyError, Client

AGENTS = [
    {
        "name": "generator",
        "team": "inference",
        "description": "d",
        "subject": "neurectomy.agent.inference.generator",
        "capabilities": [],
        "replicas": 1,
        "in_flight": 0,
        "mailbox_depth": 0,
        "requests": 0,
        "metadata": {},
    }
]


class _Flaky(BaseHTTPRequestHandler):
    """Answers 429 (Retry-After: 0) to the first ``busy`` requests, then 200."""

    busy = 2
    calls: list[str] = []  # noqa: RUF012

    def _answer(self) -> None:
        type(self).calls.append(self.command)
        if len(type(self).calls) <= type(self).busy:
            body = json.dumps({"error": {"code": "busy", "message": "queue full", "field": None}}).encode()
            self.send_response(429)
            self.send_header("Retry-After", "0")
        else:
            body = json.dumps(AGENTS).encode()
            self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer  # noqa: N815
    do_POST = _answer  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    _Flaky.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_get_is_retried_until_it_succeeds(flaky: str) -> None:
    with Client(flaky) as client:
        agents = client.agents()
    assert [a.name for a in agents] == ["generator"]
    assert _Flaky.calls == ["GET", "GET", "GET"]


def test_post_is_not_retried(flaky: str) -> None:
    with Client(flaky) as client, pytest.raises(BusyError) as info:
        client.generate("Hi", max_tokens=1)
    assert info.value.retry_after_s == 0.0
    assert _Flaky.calls == ["POST"]
