"""Durable tasks through the whole service, with real processes: ``neurectomy serve`` (API, orchestrator,
task worker), agent processes started with ``neurectomy agent``, and a nats-server of the test's own that
the test kills and restarts.

* kill -9 of an agent process in the middle of 200 tasks: every task still succeeds, with the right
  result, and resubmitting them with their idempotency keys returns the same tasks (nothing runs twice);
* NATS stopped: the API refuses with 503 at once (not after waiting for JetStream or an agent); NATS back
  (same port, same JetStream store): calls and new tasks succeed again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from neurectomy import Client
from neurectomy.server.natsserver import EmbeddedNats
from neurectomy.testing import free_port, start_agents, start_serve, stop_serve

pytestmark = pytest.mark.slow

ONLY_INFERENCE = {"NEURECTOMY_TEAMS": json.dumps(["inference"])}


def plan_for(i: int) -> dict[str, Any]:
    """Three statistician steps; the result is checkable: the mean of [i, i+1, i+2] is i+1."""
    return {
        "name": f"job-{i}",
        "steps": [
            {"id": "first", "agent": "statistician", "input": {"values": "${input.values}"}},
            {"id": "second", "agent": "statistician", "input": {"values": ["${steps.first.mean}", 0, 0]}},
            {"id": "third", "agent": "statistician", "input": {"values": ["${steps.first.max}"]}},
        ],
        "output": {"mean": "${steps.first.mean}", "max": "${steps.third.max}"},
    }


def values(i: int) -> dict[str, Any]:
    return {"values": [i, i + 1, i + 2]}


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats", port=free_port())
    anyio.run(server.start)
    try:
        yield server
    finally:
        anyio.run(server.stop)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_kill_9_of_an_agent_process_mid_run_loses_no_task(nats: EmbeddedNats, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    serve, url = start_serve(state, "--nats-url", nats.url, env=ONLY_INFERENCE)
    agents_a = agents_b = None
    try:
        a_dir, b_dir = tmp_path / "a", tmp_path / "b"
        a_dir.mkdir(), b_dir.mkdir()
        agents_a = start_agents(a_dir, "analysis", nats.url, "--agent", "statistician", expect=1)
        agents_b = start_agents(b_dir, "analysis", nats.url, "--agent", "statistician", expect=1)
        with Client(url, timeout_s=30) as client:
            ids = [
                client.tasks.submit(plan=plan_for(i), input=values(i), idempotency_key=f"job-{i}").id
                for i in range(200)
            ]
            assert len(set(ids)) == 200
            deadline = time.monotonic() + 60
            while sum(client.tasks.get(t).status == "succeeded" for t in ids[:40]) < 20:
                assert time.monotonic() < deadline, "tasks did not start"
                time.sleep(0.05)
            _kill(agents_a)  # mid-run: tasks are queued, running and done
            records = [client.tasks.wait(t, timeout_s=120) for t in ids]
            assert [r.status for r in records] == ["succeeded"] * 200, [
                (r.id, r.status, r.error) for r in records if r.status != "succeeded"
            ]
            for i, record in enumerate(records):
                assert record.result == {"mean": i + 1, "max": i + 2}
                assert [s.status for s in record.steps] == ["succeeded"] * 3
            again = [
                client.tasks.submit(plan=plan_for(i), input=values(i), idempotency_key=f"job-{i}")
                for i in range(200)
            ]
            assert [a.id for a in again] == ids and not any(a.created for a in again)
    finally:
        for proc in (agents_a, agents_b):
            if proc is not None:
                _kill(proc)
        stop_serve(serve)


def test_nats_outage_answers_503_fast_and_work_resumes(nats: EmbeddedNats, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    serve, url = start_serve(state, "--nats-url", nats.url, env=ONLY_INFERENCE)
    agents = None
    try:
        agents = start_agents(tmp_path, "analysis", nats.url, "--agent", "statistician", expect=1)
        with Client(url, timeout_s=30) as client:
            assert client.agents.call("statistician", {"values": [1, 2, 3]}).output["mean"] == 2
            anyio.run(nats.stop)
            # Refused at once because the connection is down (the message says so), not at the end of a
            # wait: for JetStream's answer (a 503 "did not answer" after its 5 s timeout), or for an agent
            # to accept the call (a 504 after the orchestrator's accept timeout).
            for method, path, body in (
                ("POST", "/v1/agents/statistician", {"input": {"values": [1]}}),
                ("POST", "/v1/tasks", {"plan": plan_for(1), "input": {"values": [1, 2, 3]}}),
            ):
                response = httpx.request(method, f"{url}{path}", json=body, timeout=90)
                assert response.status_code == 503, response.text
                assert "not connected" in response.json()["error"]["message"], response.text
            anyio.run(nats.start)  # same port, same JetStream store
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.agents.call("statistician", {"values": [4, 6]}).output["mean"] == 5:
                        break
                except Exception:  # noqa: S110 - reconnecting; retried until the deadline
                    pass
                assert time.monotonic() < deadline, "the service did not recover after NATS came back"
                time.sleep(0.2)
            task = client.tasks.submit(plan=plan_for(7), input={"values": [7, 8, 9]})
            assert client.tasks.wait(task.id, timeout_s=60).result == {"mean": 8, "max": 9}
    finally:
        if agents is not None:
            _kill(agents)
        stop_serve(serve)
