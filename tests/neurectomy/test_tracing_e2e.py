"""One ``POST /v1/tasks`` request traced across processes: the API, the orchestrator and two agent processes.

``neurectomy serve`` (API, orchestrator, task worker; inference team only) and two ``neurectomy agent``
processes (Analysis: ``statistician``; Compression: ``compressor``) join one nats-server. The task's plan
runs one step in each agent process; the agent processes ship their spans over NATS to the API process,
whose ``/v1/traces/{id}`` must then hold the whole request under the trace id the API answered with.
"""

from __future__ import annotations

import base64
import secrets
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

PLAN = {
    "name": "traced",
    "steps": [
        {"id": "stats", "agent": "statistician", "input": {"values": "${input.values}"}},
        {"id": "pack", "agent": "compressor", "input": {"data": "${input.data}"}, "after": ["stats"]},
    ],
}


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats", port=free_port())
    anyio.run(server.start)
    try:
        yield server
    finally:
        anyio.run(server.stop)


def _wait_for_spans(url: str, trace_id: str, names: set[str], timeout_s: float = 30) -> list[dict[str, Any]]:
    """The trace's spans once every name in ``names`` is among them (agent spans arrive by NATS)."""
    deadline = time.monotonic() + timeout_s
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/v1/traces/{trace_id}", timeout=10)
        if answer.status_code == 200:
            spans = answer.json()
            if names <= {s["name"] for s in spans}:
                return spans
        time.sleep(0.1)
    raise AssertionError(f"spans {names - {s['name'] for s in spans}} never arrived; got {spans}")


def test_one_task_request_is_one_trace_across_api_orchestrator_and_two_agent_processes(
    nats: EmbeddedNats, tmp_path: Path
) -> None:
    dirs = {name: tmp_path / name for name in ("serve", "analysis", "compression")}
    for path in dirs.values():
        path.mkdir()
    serve, url = start_serve(dirs["serve"], "--nats-url", nats.url, env={"NEURECTOMY_TEAMS": '["inference"]'})
    procs = []
    try:
        procs.append(
            start_agents(dirs["analysis"], "analysis", nats.url, "--agent", "statistician", expect=1)
        )
        procs.append(
            start_agents(dirs["compression"], "compression", nats.url, "--agent", "compressor", expect=1)
        )
        data = base64.b64encode(b"the same words, the same words, the same words").decode()
        # Without an exporter the server records 1 % of requests; a sampled traceparent asks for this one.
        trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
        submitted = httpx.post(
            f"{url}/v1/tasks",
            json={"plan": PLAN, "input": {"values": [1, 2, 3], "data": data}},
            headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
            timeout=30,
        )
        assert submitted.status_code == 202, submitted.text
        assert submitted.headers["x-trace-id"] == trace_id
        task_id = submitted.json()["id"]
        deadline = time.monotonic() + 60
        while (record := httpx.get(f"{url}/v1/tasks/{task_id}", timeout=10).json())["status"] != "succeeded":
            assert record["status"] in ("queued", "running"), record
            assert time.monotonic() < deadline, record
            time.sleep(0.05)

        spans = _wait_for_spans(url, trace_id, {"agent statistician", "agent compressor"})
        assert {s["trace_id"] for s in spans} == {trace_id}
        by_name = {s["name"]: s for s in spans}
        by_id = {s["span_id"]: s for s in spans}

        def parent(name: str) -> dict[str, Any]:
            return by_id[by_name[name]["parent_id"]]

        # The chain, from the HTTP request down to each agent's handler in its own process.
        assert by_name["POST /v1/tasks"]["parent_id"] == caller_span  # the caller's span, not kept here
        assert parent("task")["name"] == "POST /v1/tasks"
        assert parent("plan traced")["name"] == "task"
        for step, agent in (("stats", "statistician"), ("pack", "compressor")):
            assert parent(f"step {step}")["name"] == "plan traced"
            assert parent(f"nats {agent}")["name"] == f"step {step}"
            assert parent(f"agent {agent}")["name"] == f"nats {agent}"
            assert by_name[f"nats {agent}"]["kind"] == "client"
            assert by_name[f"agent {agent}"]["kind"] == "server"
        # Processes and components: the API and the orchestrator (one process), two agent processes.
        assert by_name["POST /v1/tasks"]["scope"] == "neurectomy.api"
        assert {by_name[n]["scope"] for n in ("task", "plan traced", "step stats", "nats compressor")} == {
            "neurectomy.orchestrator"
        }
        services = {n: (by_name[n]["service"], by_name[n]["instance"]) for n in by_name}
        assert services["agent statistician"][0] == "neurectomy-agents-analysis"
        assert services["agent compressor"][0] == "neurectomy-agents-compression"
        instances = {services[n][1] for n in ("POST /v1/tasks", "agent statistician", "agent compressor")}
        assert len(instances) == 3, services
        # Order in time: the step "pack" runs after "stats" (its ``after``), each handler inside its hop.
        assert by_name["step pack"]["start_ns"] >= by_name["step stats"]["end_ns"]
        for agent in ("statistician", "compressor"):
            hop, handler = by_name[f"nats {agent}"], by_name[f"agent {agent}"]
            assert hop["start_ns"] <= handler["start_ns"] + 5_000_000  # clocks of one host; 5 ms slack
            assert by_name[f"agent {agent}"]["status"] != "error"
        unsampled = httpx.get(f"{url}/v1/agents", headers={"traceparent": f"00-{'a' * 32}-{'b' * 16}-00"})
        assert unsampled.status_code == 200 and unsampled.headers["x-trace-id"] == "a" * 32
        listed = httpx.get(f"{url}/v1/traces", params={"limit": 100}, timeout=10).json()
        assert "a" * 32 not in {r["trace_id"] for r in listed}  # the caller said: do not record
        row = next(r for r in listed if r["trace_id"] == trace_id)
        assert row["root"] == "POST /v1/tasks"
        assert {"neurectomy-api", "neurectomy-agents-analysis", "neurectomy-agents-compression"} <= set(
            row["services"]
        )
        assert httpx.get(f"{url}/v1/traces/{'0' * 31}1", timeout=10).status_code == 404
    finally:
        for proc in procs:
            stop_serve(proc)
        stop_serve(serve)
