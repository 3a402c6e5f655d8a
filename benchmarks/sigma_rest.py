"""ΣLANG through REST: the session corpus posted to a real ``neurectomy serve`` (Inference + Compression).

Eight ways a client sends its turns: one ``POST /v1/sigma/compress`` per turn with a raw
``application/octet-stream`` body (the report comes back in a header), the same with a JSON body
(base64), the raw way with `CONCURRENT_STREAMS` conversations in flight at once (each still posts its
turns in order), the same again with the standard library's ``http.client`` (a keep-alive connection per
thread) instead of httpx, whose CPU per request is a fraction of httpx's (the client shares the
machine's cores with the service), and ``POST /v1/sigma/compress/batch`` with up to `BATCH_TURNS`
consecutive turns of a session per request, as JSON (base64 each) or binary both ways (each turn a u32
little-endian length, then its bytes; ``Accept: application/octet-stream`` for length-prefixed frames
back), and the binary batch gathering the next turn of `BATCH_TURNS` conversations per request
(``streams``: one id per message), as a gateway serving many conversations would, once with one request
at a time and once with `IN_FLIGHT` requests in flight (the groups of conversations posted concurrently,
each group's turns in order). Speeds are input MB (1e6 bytes) per second of wall time; one client,
sequential requests except the concurrent ways; every frame is decoded back through
``/v1/sigma/decompress/batch`` and compared byte for byte. Each way also reports the CPU time the
service spent per request (its process, all threads, and its nats-server), which a loaded machine
disturbs less than wall time, of it the API process's main thread (its event loop), and that of this
process (the client: httpx, on the same cores).
The issue's REST target (>= 10 MB/s for ~10 KB turns, ``--max-turn-bytes 14000``) is met by the
binary batch across conversations; one request per turn pays the fixed cost of an HTTP request per
10 KB, and of an agent call (orchestrator, two NATS messages, a worker thread, a store commit) when
it is alone: concurrent requests of a tenant share compressor calls (`api.sigma._coalesce`), so the
concurrent ways pay that once per group.

``split=True`` runs the service as ``docs/deploy.md`` describes scaling a busy team on one host:
``neurectomy serve`` without the Compression team, and its agents in a ``neurectomy agent --team
compression`` process beside it (same state directory, so the same RSU store file and frame secret).
In one process, the codec's Python work and the API's share one interpreter lock; split, each
process has its own, and the service CPU per request counts both processes (and nats-server).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from api.sigma.schemas import MAX_BATCH_MESSAGES, pack_parts, unpack_parts
from benchmarks.sigma_corpus import Session
from neurectomy.testing import start_serve, stop_serve

__all__ = ("BATCH_TURNS", "CONCURRENT_STREAMS", "IN_FLIGHT", "WAYS", "RestOutcome", "run_rest")

BATCH_TURNS = 16
"""Most turns of one session per batch request."""
CONCURRENT_STREAMS = 16
"""Conversations in flight at once in the concurrent way."""
IN_FLIGHT = 4
"""Requests in flight at once in the pipelined way across conversations."""
BINARY = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class RestOutcome:
    """One way of posting: its compression ratio and speed."""

    label: str
    ratio: float
    mb_s: float
    requests: int
    mean_turn_bytes: float
    cpu_ms: float
    """CPU time of the service (its process and nats-server) per request, milliseconds."""
    client_cpu_ms: float
    """CPU time of this process (the HTTP client, on the same machine) per request, milliseconds."""
    loop_cpu_ms: float = 0.0
    """Of ``cpu_ms``, the API process's main thread (its event loop: HTTP, routes, orchestrator, NATS
    client, and the agents' dispatch when they run in it; not the codec's worker threads), milliseconds."""


def _check(client: httpx.Client, tenant: str, frames: Sequence[bytes], turns: Sequence[bytes]) -> None:
    body = {"frames": [base64.b64encode(f).decode() for f in frames]}
    back = client.post("/v1/sigma/decompress/batch", json=body, headers={"x-neurectomy-tenant": tenant})
    back.raise_for_status()
    if [base64.b64decode(d) for d in back.json()["datas"]] != list(turns):
        raise SystemExit("REST round trip failed")


def _post_turns(client: httpx.Client, way: str, s: Session, headers: dict[str, str]) -> list[bytes]:
    """Post one session's turns the given way; return its frames, in order (one request per turn)."""
    frames: list[bytes] = []
    for turn in s.turns:
        if way == "json":
            body = {"data": base64.b64encode(turn).decode(), "stream": s.session_id}
            r = client.post("/v1/sigma/compress", json=body, headers=headers)
            r.raise_for_status()
            frames.append(base64.b64decode(r.json()["frame"]))
        else:
            r = client.post(
                "/v1/sigma/compress",
                params={"stream": s.session_id},
                content=turn,
                headers={**headers, "content-type": BINARY},
            )
            r.raise_for_status()
            frames.append(r.content)
    return frames


class _StdlibPoster:
    """One keep-alive ``http.client`` connection per thread: a client costing a fraction of httpx's CPU."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._local = threading.local()

    def post(self, s: Session, headers: dict[str, str]) -> list[bytes]:
        """Post one session's turns raw, one request per turn; return its frames."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        frames = []
        path = "/v1/sigma/compress?" + urllib.parse.urlencode({"stream": s.session_id})
        for turn in s.turns:
            conn.request("POST", path, body=turn, headers={**headers, "content-type": BINARY})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise SystemExit(f"{r.status}: {body[:200]!r}")
            frames.append(body)
        return frames


def _post_batches(client: httpx.Client, way: str, s: Session, headers: dict[str, str]) -> list[bytes]:
    """Post one session's turns, `BATCH_TURNS` per request; return its frames, in order."""
    frames: list[bytes] = []
    for i in range(0, len(s.turns), BATCH_TURNS):
        turns = s.turns[i : i + BATCH_TURNS]
        if way == "batch":
            body = {"messages": [base64.b64encode(t).decode() for t in turns], "stream": s.session_id}
            r = client.post("/v1/sigma/compress/batch", json=body, headers=headers)
            r.raise_for_status()
            frames += [base64.b64decode(x["frame"]) for x in r.json()["results"]]
        else:
            r = client.post(
                "/v1/sigma/compress/batch",
                params={"stream": s.session_id},
                content=pack_parts(turns),
                headers={**headers, "content-type": BINARY, "accept": BINARY},
            )
            r.raise_for_status()
            frames += unpack_parts(r.content, MAX_BATCH_MESSAGES + 1)[1:]  # part 0: the reports
    return frames


def _post_group(
    client: httpx.Client, name: str, group: Sequence[Session]
) -> tuple[dict[str, list[bytes]], int]:
    """Post the next turn of each conversation of ``group`` per request, turn by turn (binary both ways)."""
    frames: dict[str, list[bytes]] = {s.session_id: [] for s in group}
    requests = 0
    for k in range(max(len(s.turns) for s in group)):
        live = [s for s in group if k < len(s.turns)]
        r = client.post(
            "/v1/sigma/compress/batch",
            params={"streams": [s.session_id for s in live]},
            content=pack_parts(s.turns[k] for s in live),
            headers={"x-neurectomy-tenant": name, "content-type": BINARY, "accept": BINARY},
        )
        r.raise_for_status()
        requests += 1
        for s, frame in zip(live, unpack_parts(r.content, MAX_BATCH_MESSAGES + 1)[1:], strict=True):
            frames[s.session_id].append(frame)
    return frames, requests


def _post_across(
    client: httpx.Client, sessions: Sequence[Session], tenant: Callable[[Session], str], in_flight: int = 1
) -> tuple[list[list[bytes]], int]:
    """Post the turns of `BATCH_TURNS` conversations per request, turn by turn (binary both ways).

    Each request holds the next turn of each conversation of the group (one tenant per request, as a
    credential is one tenant: the group is taken within a tenant); ``in_flight`` groups are posted at
    once. Returns each session's frames and the number of requests.
    """
    by_tenant: dict[str, list[Session]] = {}
    for s in sessions:
        by_tenant.setdefault(tenant(s), []).append(s)
    groups = [
        (name, group[g : g + BATCH_TURNS])
        for name, group in by_tenant.items()
        for g in range(0, len(group), BATCH_TURNS)
    ]
    with ThreadPoolExecutor(in_flight) as pool:
        posted = list(pool.map(lambda item: _post_group(client, *item), groups))
    frames = {sid: f for made, _ in posted for sid, f in made.items()}
    return [frames[s.session_id] for s in sessions], sum(n for _, n in posted)


def _cpu_s(*procs: psutil.Process) -> float:
    """CPU seconds (user + system) of processes and their children (the service's nats-server)."""
    return sum(sum(p.cpu_times()[:2]) for proc in procs for p in (proc, *proc.children(recursive=True)))


def _thread_cpu_s(proc: psutil.Process, thread_id: int) -> float:
    """CPU seconds (user + system) of one thread of a process (0 if it has gone)."""
    return next((t.user_time + t.system_time for t in proc.threads() if t.id == thread_id), 0.0)


def _start_compression_agent(state_dir: Path, url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``neurectomy agent --team compression`` beside a running serve; returns once it compresses.

    It joins serve's private nats-server (the URL from serve's log, its agent credentials from the
    state directory) and keeps the RSU store in the same file (``nats.shared_state`` off, as on one host).
    """
    log = (state_dir / "serve.log").read_text()
    nats_url = next(json.loads(line)["url"] for line in log.splitlines() if '"nats-server ready"' in line)
    with (state_dir / "agent.log").open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "neurectomy", "agent", "--team", "compression", "--nats-url", nats_url],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                **env,
                "NEURECTOMY_STATE_DIR": str(state_dir),
                "NEURECTOMY_NATS__SHARED_STATE": "false",
                "NEURECTOMY_LOG_FORMAT": "json",
            },
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # the first compression answered: the agents are in place
        if proc.poll() is not None:
            raise RuntimeError(f"the compression agent exited: {(state_dir / 'agent.log').read_text()}")
        got = httpx.post(
            f"{url}/v1/sigma/compress", content=b"warm-up " * 64, headers={"content-type": BINARY}
        )
        if got.status_code == 200:
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the compression agent never answered: {(state_dir / 'agent.log').read_text()}")


WAYS = (
    "raw",
    "json",
    "concurrent",
    "concurrent-stdlib",
    "batch",
    "batch-binary",
    "across",
    "across-pipelined",
)
"""Every way of posting, in the order they run."""
LABELS = {
    "raw": "per turn, octet-stream",
    "json": "per turn, JSON",
    "concurrent": f"per turn, octet-stream, {CONCURRENT_STREAMS} conversations in flight",
    "concurrent-stdlib": f"the same, client http.client ({CONCURRENT_STREAMS} keep-alive connections)",
    "batch": f"batch route, JSON, <= {BATCH_TURNS} turns of a session per request",
    "batch-binary": f"batch route, binary both ways, <= {BATCH_TURNS} turns of a session per request",
    "across": f"batch route, binary both ways, a turn of <= {BATCH_TURNS} conversations per request",
    "across-pipelined": f"the same, {IN_FLIGHT} requests in flight",
}


def run_rest(
    sessions: Sequence[Session],
    code: Path | None = None,
    *,
    binary_batch: bool = True,
    ways: Sequence[str] = WAYS,
    split: bool = False,
) -> list[RestOutcome]:
    """Start a service, post the corpus each way (a fresh tenant name per way), stop it.

    Args:
        sessions: The corpus.
        code: Run the service from this checkout (its directory first on ``PYTHONPATH``, e.g. the
            previous version, for a side-by-side run); default the current code.
        binary_batch: Also post binary batch bodies (services before them answer 400).
        ways: Which ways to post (keys of `LABELS`, in this order); default all of them.
        split: The Compression team in a process of its own beside ``serve`` (see the module).
    """
    total = sum(len(t) for s in sessions for t in s.turns)
    mean_turn = total / sum(len(s.turns) for s in sessions)
    outcomes: list[RestOutcome] = []
    env = {"NEURECTOMY_TEAMS": '["inference"]' if split else '["inference", "compression"]'}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    ways = [w for w in ways if binary_batch or w in WAYS[:5]]
    # ``python -m`` puts its working directory first on sys.path: start the service from `code`.
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(code or Path.cwd()):
        proc, url = start_serve(Path(tmp), env=env)
        agent: subprocess.Popen[bytes] | None = None
        try:
            service = [psutil.Process(proc.pid)]
            if split:
                agent = _start_compression_agent(Path(tmp), url, env)
                service.append(psutil.Process(agent.pid))
            limits = httpx.Limits(max_connections=CONCURRENT_STREAMS)
            with httpx.Client(base_url=url, timeout=120, limits=limits) as client:
                for s in sessions[:4]:  # warm-up (first requests load the codec, store, tokenizer)
                    _post_turns(client, "raw", s, {"x-neurectomy-tenant": "warm-up"})
                for way in ways:
                    post: Callable[[httpx.Client, str, Session, dict[str, str]], list[bytes]]
                    post = _post_batches if way.startswith("batch") else _post_turns

                    def one(
                        s: Session, way: str = way, post: Callable[..., list[bytes]] = post
                    ) -> list[bytes]:
                        return post(client, way, s, {"x-neurectomy-tenant": f"{way}-{s.tenant}"})

                    t0, cpu0, client0 = time.perf_counter(), _cpu_s(*service), time.process_time()
                    loop0 = _thread_cpu_s(service[0], proc.pid)  # the main thread's id is the pid
                    if way.startswith("across"):
                        made, requests = _post_across(
                            client,
                            sessions,
                            lambda s, way=way: f"{way}-{s.tenant}",
                            IN_FLIGHT if way == "across-pipelined" else 1,
                        )
                    elif way == "concurrent":
                        with ThreadPoolExecutor(CONCURRENT_STREAMS) as pool:
                            made = list(pool.map(one, sessions))
                    elif way == "concurrent-stdlib":
                        poster = _StdlibPoster(url)
                        with ThreadPoolExecutor(CONCURRENT_STREAMS) as pool:
                            made = list(
                                pool.map(
                                    lambda s, way=way, poster=poster: poster.post(
                                        s, {"x-neurectomy-tenant": f"{way}-{s.tenant}"}
                                    ),
                                    sessions,
                                )
                            )
                    else:
                        made = [one(s) for s in sessions]
                    elapsed, cpu_s = time.perf_counter() - t0, _cpu_s(*service) - cpu0
                    loop_s = _thread_cpu_s(service[0], proc.pid) - loop0
                    client_s = time.process_time() - client0
                    for s, frames in zip(sessions, made, strict=True):
                        _check(client, f"{way}-{s.tenant}", frames, s.turns)
                    out = sum(len(f) for frames in made for f in frames)
                    if not way.startswith("across"):
                        requests = sum(
                            -(-len(s.turns) // BATCH_TURNS) if way.startswith("batch") else len(s.turns)
                            for s in sessions
                        )
                    outcomes.append(
                        RestOutcome(
                            LABELS[way],
                            total / out,
                            total / elapsed / 1e6,
                            requests,
                            mean_turn,
                            cpu_s / requests * 1000,
                            client_s / requests * 1000,
                            loop_s / requests * 1000,
                        )
                    )
        finally:
            if agent is not None:
                stop_serve(agent)
            stop_serve(proc)
    return outcomes
