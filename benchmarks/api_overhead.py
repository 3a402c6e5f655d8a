"""The API's fixed cost per request: CPU microseconds of a cheap route, bare Litestar vs Neurectomy's app.

Two apps serve the same three routes (``GET /v1/bench/ping`` answering ``{"ok": true}``,
``POST /v1/bench/echo`` taking ``{"text": "..."}`` and answering its length, and
``POST /v1/sigma/compress?stream=...`` with a 10 KB ``application/octet-stream`` body answering 1,000
bytes and an ``X-Sigma-Report`` header: ΣLANG one turn per request), so everything but the app's
wiring is equal:

* **bare**: ``Litestar(route_handlers=[ping, echo, compress])``, nothing else (its ``compress`` reads
  the body and answers the frame and the header);
* **ours**: :func:`api.create_app` as ``neurectomy serve`` builds it off loopback — auth on (an API
  key from a real key file, ``read,write``), a per-key rate limit (10⁹ a minute, never reached;
  ``--rate-limit 0``: none), the host/origin guard, request ids, tracing configured as ``serve``
  configures it (in-memory buffer, 1 % of requests sampled), metrics and the per-request JSON access
  log line (to ``/dev/null``) — with the first two routes added by ``app.register``; ``compress`` is
  the app's own route (query parameters, body read, call context, raw answer) with the compressor call
  replaced by an answer made at once (``api.sigma.routes._compress_one``): the API's fixed cost of a
  turn, without the coalescer, NATS and the codec.

Litestar's own rate limiter (before this benchmark's change) re-encoded one time stamp per request
counted in the current window, so its cost grows with the requests in the window: compare trees with
the same ``--requests`` and ``--rate-limit``.

Each is measured two ways, interleaved round by round (bare, ours, bare, ours, ...), and the median
over rounds is printed with the ratio ours ÷ bare:

* **in-process**: the ASGI app called directly by a minimal driver (no HTTP parsing, no socket),
  ``time.process_time()`` around ``--requests`` sequential requests: the app's own CPU per request;
* **uvicorn**: the app served by uvicorn (``serve``'s settings: uvloop/httptools when installed) in a
  child process, a keep-alive ``httpx`` client in this process sending ``--requests`` sequential
  requests; the server process's CPU (user + system, from ``/proc`` via psutil) per request.

CPU time is used rather than wall time because a loaded machine disturbs it less. To compare two
source trees, run the script once per tree with ``PYTHONPATH`` pointing at it (the child server
inherits it), alternating the trees.

Usage: ``PYTHONPATH=$PWD python benchmarks/api_overhead.py [--requests 2000] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Run as a file, this directory would come first on the path and its ``orchestrator.py`` would shadow the
# package; drop it (the project comes from ``PYTHONPATH``, which also lets two source trees be compared).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import anyio  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402
from litestar import Litestar, Request, Response, get, post  # noqa: E402
from pydantic import BaseModel  # noqa: E402

KINDS = ("bare", "ours")
RATE_LIMIT = {"per_minute": 1_000_000_000}
"""Requests per minute per key of "ours" (``--rate-limit``; 0: no rate limiting)."""
TURN = bytes(range(256)) * 40
"""The body of a compress request: 10,240 bytes."""
REPORT = '{"bytes_in": 10240, "bytes_out": 1000, "ratio": 10.24}'
"""The ``X-Sigma-Report`` of the stubbed compressor's answers."""
ROUTES = (
    ("GET", "/v1/bench/ping", b""),
    ("POST", "/v1/bench/echo", b'{"text":"hello, fixed cost"}'),
    ("POST", "/v1/sigma/compress?stream=conversation-1", TURN),
)
BINARY = "application/octet-stream"


class EchoIn(BaseModel):
    """The echo route's body."""

    text: str


@get("/v1/bench/ping", summary="Benchmark: constant answer")
async def ping() -> dict[str, bool]:
    """``{"ok": true}``."""
    return {"ok": True}


@post("/v1/bench/echo", summary="Benchmark: length of a small body", status_code=200)
async def echo(data: EchoIn) -> dict[str, int]:
    """``{"length": len(text)}``."""
    return {"length": len(data.text)}


@post("/v1/sigma/compress", status_code=200)
async def bare_compress(request: Request[Any, Any, Any], stream: str | None = None) -> Response[bytes]:
    """The first 1,000 bytes of the body with a report header (what ours answers, minus the work)."""
    body = await request.body()
    return Response(body[:1000], media_type=BINARY, headers={"x-sigma-report": REPORT})


async def _stub_compress(state: Any, message: bytes, ctx: Any, **options: Any) -> tuple[bytes, bytes]:
    """Stands in for ``api.sigma.routes._compress_one``: the report and the first 1,000 bytes, at once."""
    return REPORT.encode(), message[:1000]


async def build(kind: str, work: Path) -> tuple[Litestar, dict[str, str], contextlib.AsyncExitStack]:
    """The app of ``kind`` and the headers its requests carry (an exit stack owning NATS and its bus)."""
    stack = contextlib.AsyncExitStack()
    if kind == "bare":
        return Litestar(route_handlers=[ping, echo, bare_compress], logging_config=None), {}, stack
    from agents import Bus, tracing
    from api import AuthConfig, LimitsConfig, create_app
    from api._origin import default_allowed_hosts
    from api.sigma import routes as sigma_routes
    from neurectomy.server.keys import KeyStore
    from neurectomy.server.logs import configure_logging
    from neurectomy.server.natsserver import EmbeddedNats
    from orchestrator import Orchestrator

    configure_logging("json", "info", stream=_null_stream())
    tracing.configure("neurectomy-api")
    server = await stack.enter_async_context(EmbeddedNats(work / "nats"))
    bus = await stack.enter_async_context(await Bus.connect(server.url, name="api-overhead"))
    sigma_routes._compress_one = _stub_compress  # type: ignore[assignment]
    keys = KeyStore(work / "api-keys.json")
    token = keys.create("bench", "read,write").token
    app = create_app(
        Orchestrator(bus),
        auth=AuthConfig(enabled=True),
        keys=keys,
        limits=LimitsConfig(rate_limit=RATE_LIMIT["per_minute"], rate_window="minute"),
        allowed_hosts=default_allowed_hosts("127.0.0.1"),
    )
    app.register(ping)
    app.register(echo)
    return app, {"authorization": f"Bearer {token}"}, stack


def _content_type(body: bytes) -> str:
    return BINARY if body is TURN else "application/json"


def _scope(method: str, target: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    path, _, query = target.partition("?")
    raw = [(b"host", b"127.0.0.1:8420"), *((k.encode(), v.encode()) for k, v in headers.items())]
    if body:
        raw += [(b"content-type", _content_type(body).encode()), (b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8420),
    }


async def _drive(app: Litestar, scope: dict[str, Any], body: bytes) -> int:
    """Call ``app`` with one request; its response status."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status


def _null_stream() -> Any:
    """``/dev/null`` for the access log lines (open for the process's life)."""
    return open(os.devnull, "w")  # noqa: SIM115


async def in_process(kind: str, requests: int) -> dict[str, float]:
    """CPU µs per request of each route, the app called directly (after a warm-up)."""
    with tempfile.TemporaryDirectory() as tmp:
        app, headers, stack = await build(kind, Path(tmp))
        async with stack:
            out: dict[str, float] = {}
            for method, path, body in ROUTES:

                async def once(method: str = method, path: str = path, body: bytes = body) -> None:
                    status = await _drive(app, _scope(method, path, headers, body), body)
                    if status != 200:
                        raise RuntimeError(f"{kind} {method} {path} answered {status}")

                for _ in range(min(200, requests)):
                    await once()
                started = time.process_time()
                for _ in range(requests):
                    await once()
                out[f"{method} {path}"] = (time.process_time() - started) / requests * 1e6
            return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _child_server(kind: str) -> Iterator[tuple[str, psutil.Process, dict[str, str]]]:
    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603 - this interpreter running this file
        [
            sys.executable,
            __file__,
            "--serve",
            kind,
            "--port",
            str(port),
            "--rate-limit",
            str(RATE_LIMIT["per_minute"]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the child prints its headers once its app is built
        if line.split()[:1] != ["headers"]:
            raise RuntimeError(f"the {kind} server did not start")
        headers = dict(h.split("=", 1) for h in line.split()[1:] if "=" in h)
        headers = {k: v.replace("+", " ") for k, v in headers.items()}
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # the socket is bound once uvicorn has started
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the {kind} server is not listening") from None
                time.sleep(0.05)
        yield url, psutil.Process(proc.pid), headers
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def served(kind: str, requests: int) -> dict[str, float]:
    """Server CPU µs per request of each route, served by uvicorn in a child process."""
    out: dict[str, float] = {}
    with _child_server(kind) as (url, proc, headers), httpx.Client(base_url=url, headers=headers) as client:
        for method, path, body in ROUTES:
            content = body or None
            extra = {"content-type": _content_type(body)} if body else {}
            for _ in range(min(200, requests)):
                client.request(method, path, content=content, headers=extra).raise_for_status()
            before = proc.cpu_times()
            for _ in range(requests):
                client.request(method, path, content=content, headers=extra).raise_for_status()
            after = proc.cpu_times()
            cpu = (after.user - before.user) + (after.system - before.system)
            out[f"{method} {path}"] = cpu / requests * 1e6
    return out


def serve_child(kind: str, port: int) -> None:
    """The child: build the app, announce its headers on stdout, serve until terminated."""
    import uvicorn

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            app, headers, stack = await build(kind, Path(tmp))
            async with stack:
                print("headers", *(f"{k}={v.replace(' ', '+')}" for k, v in headers.items()), flush=True)
                config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
                await uvicorn.Server(config).serve()

    anyio.run(main)


def main() -> None:
    """Run the rounds and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per route and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-uvicorn", action="store_true", help="only the in-process measurement")
    parser.add_argument(
        "--rate-limit", type=int, default=RATE_LIMIT["per_minute"], help="per key and minute (0: off)"
    )
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    RATE_LIMIT["per_minute"] = args.rate_limit
    if args.serve:
        serve_child(args.serve, args.port)
        return
    ways = ("in-process",) if args.no_uvicorn else ("in-process", "uvicorn")
    results: dict[tuple[str, str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for way in ways:
            for kind in KINDS:
                if way == "in-process":
                    got = anyio.run(in_process, kind, args.requests)
                else:
                    got = served(kind, args.requests)
                for route, us in got.items():
                    results.setdefault((way, route, kind), []).append(us)
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"CPU µs per request, median of {args.rounds} interleaved rounds of {args.requests} requests")
    width = max(len(f"{m} {p}") for m, p, _ in ROUTES)
    print(f"{'way':<11} {'route':<{width}} {'bare':>8} {'ours':>8} {'ours÷bare':>10} {'ours−bare':>10}")
    for way in ways:
        for method, path, _ in ROUTES:
            route = f"{method} {path}"
            bare = statistics.median(results[(way, route, "bare")])
            ours = statistics.median(results[(way, route, "ours")])
            print(
                f"{way:<11} {route:<{width}} {bare:8.1f} {ours:8.1f} {ours / bare:10.2f} {ours - bare:10.1f}"
            )


if __name__ == "__main__":
    main()
