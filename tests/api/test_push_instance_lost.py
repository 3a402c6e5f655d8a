"""A pushed stream whose generator instance dies mid-stream, and the trace of a pushed stream.

``neurectomy serve`` without its own Inference team and one ``neurectomy agent --team inference --agent
generator`` process join one nats-server; the agent process is killed (SIGKILL: no last message, no
drain) while three streams (the native SSE, OpenAI's SSE, Ollama's NDJSON) are being written. Each must
end with its format's error event once the instance's heartbeats stop.
"""

from __future__ import annotations

import json
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from neurectomy.server.natsserver import EmbeddedNats
from neurectomy.testing import free_port, start_agents, start_serve, stop_serve

pytestmark = pytest.mark.slow

LONG = "Write a very long story about a lighthouse keeper, the sea and the ships that pass."
STREAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "generate": ("/v1/generate", {"prompt": LONG, "stream": True, "max_tokens": 4000}),
    "openai": (
        "/v1/chat/completions",
        {"model": "x", "messages": [{"role": "user", "content": LONG}], "stream": True, "max_tokens": 4000},
    ),
    "ollama": (
        "/api/generate",
        {"model": "x", "prompt": LONG, "raw": True, "options": {"num_predict": 4000}},
    ),
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(serve's URL, the nats URL, a state directory for agent processes)."""
    nats = EmbeddedNats(tmp_path_factory.mktemp("nats"), port=free_port())
    anyio.run(nats.start)
    try:
        serve_dir = tmp_path_factory.mktemp("serve")
        # any team but Inference: ΣLANG's serve is healthy in a third of the Analysis team's time (no MiniLM
        # to load; 22-24 vs 67-84 s on a loaded 2-core machine), which left little of the first test's 120 s
        teams = {"NEURECTOMY_TEAMS": '["compression"]'}
        proc, url = start_serve(serve_dir, "--nats-url", nats.url, env=teams)
        try:
            yield url, nats.url, tmp_path_factory.mktemp("agents")
        finally:
            stop_serve(proc)
    finally:
        anyio.run(nats.stop)


def _stream(url: str, name: str, started: threading.Event, out: dict[str, Any]) -> None:
    """Read one stream to its end; signal once it has text; put its last line in ``out``."""
    path, body = STREAMS[name]
    lines: list[str] = []
    try:
        with httpx.stream("POST", f"{url}{path}", json=body, timeout=120) as response:
            out[f"{name}-status"] = response.status_code
            for line in response.iter_lines():
                if line:
                    lines.append(line)
                    if len(lines) >= 6:
                        started.set()
    except httpx.HTTPError as exc:
        out[f"{name}-exception"] = exc
    finally:
        started.set()
        out[name] = lines


def _wait_for_generator(url: str) -> None:
    """Wait until the orchestrator has seen the generator's heartbeat (so that it can tell when it stops)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "generator" in [a["name"] for a in httpx.get(f"{url}/v1/agents", timeout=10).json()]:
            return
        time.sleep(0.1)
    raise AssertionError("the generator never showed up in /v1/agents")


def test_a_generator_killed_mid_stream_ends_each_format_with_its_error_event(
    cluster: tuple[str, str, Path],
) -> None:
    url, nats_url, agents_dir = cluster
    agent = start_agents(agents_dir, "inference", nats_url, "--agent", "generator", expect=1)
    try:
        _wait_for_generator(url)
        out: dict[str, Any] = {}
        threads, started = [], []
        for name in STREAMS:
            event = threading.Event()
            thread = threading.Thread(target=_stream, args=(url, name, event, out), daemon=True)
            thread.start()
            threads.append(thread)
            started.append(event)
        for event in started:
            assert event.wait(60)
        assert not any(name in out for name in STREAMS)  # all still streaming
        killed_at = time.monotonic()
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        for thread in threads:
            thread.join(60)
        ended_s = time.monotonic() - killed_at
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
    assert ended_s < 20  # the heartbeats' TTL and the push path's probe window, not the 120 s deadline
    for name in STREAMS:
        assert out[f"{name}-status"] == 200 and f"{name}-exception" not in out, out
    generate = out["generate"]
    assert generate[-2:] == ["event: error", generate[-1]] and generate[-1].startswith("data: ")
    error = json.loads(generate[-1].removeprefix("data: "))["error"]
    assert (
        error["code"] == "stream_broken" and "stopped sending heartbeats" in error["message"]
    )  # InstanceLostError
    openai = json.loads(out["openai"][-1].removeprefix("data: "))
    assert (
        openai["error"]["code"] == "stream_broken"
        and "stopped sending heartbeats" in openai["error"]["message"]
    )
    assert "data: [DONE]" not in out["openai"]
    ollama = json.loads(out["ollama"][-1])
    assert set(ollama) == {"error"} and "stopped sending heartbeats" in ollama["error"]


def _hop_spans(url: str, trace_id: str) -> list[dict[str, Any]]:
    """The trace's ``nats generator`` spans (the API process's own: they are in its buffer once ended)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/v1/traces/{trace_id}", timeout=10)
        hops = (
            [s for s in answer.json() if s["name"] == "nats generator"] if answer.status_code == 200 else []
        )
        if hops:
            return hops
        time.sleep(0.05)
    raise AssertionError(f"no hop span in trace {trace_id}")


def test_a_pushed_stream_ends_its_hop_span_once_ok_or_failed(cluster: tuple[str, str, Path]) -> None:
    url, nats_url, agents_dir = cluster
    agent = start_agents(agents_dir, "inference", nats_url, "--agent", "generator", expect=1)
    try:
        _wait_for_generator(url)
        done_trace, left_trace = secrets.token_hex(16), secrets.token_hex(16)
        body = {"prompt": "Hello", "max_tokens": 6, "stream": True}
        headers = {"traceparent": f"00-{done_trace}-{secrets.token_hex(8)}-01"}
        with httpx.stream("POST", f"{url}/v1/generate", json=body, headers=headers, timeout=60) as response:
            lines = [line for line in response.iter_lines() if line]
        assert lines[-2] == "event: done"
        headers = {"traceparent": f"00-{left_trace}-{secrets.token_hex(8)}-01"}
        body = {"prompt": LONG, "max_tokens": 4000, "stream": True}
        with httpx.stream("POST", f"{url}/v1/generate", json=body, headers=headers, timeout=60) as response:
            for n, _ in enumerate(response.iter_lines()):
                if n == 6:
                    break  # the client leaves mid-stream
        (done,), (left,) = _hop_spans(url, done_trace), _hop_spans(url, left_trace)
    finally:
        agent.terminate()
        agent.wait(20)
    assert done["end_ns"] >= done["start_ns"] > 0 and done["status"] == "unset"
    assert left["end_ns"] >= left["start_ns"] > 0 and left["status"] == "error"  # cancelled by the client
