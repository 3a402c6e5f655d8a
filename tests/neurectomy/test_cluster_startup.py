"""Start-up against a NATS cluster whose JetStream is not ready yet, and errors that waiting cannot fix.

* ``serve`` started while only one of three cluster nodes runs (no quorum: JetStream has no meta leader)
  logs that it waits for JetStream, and once the other two nodes join it comes up and runs a durable task
  on the R3 streams it created.
* The wait is bounded: a set-up call against the lone node gives up after its timeout with an error that
  says what it waited for.
* Errors that waiting cannot fix fail at once, with their message: JetStream not enabled, credentials
  without permission for the JetStream API, more replicas than the cluster has nodes (while "no suitable
  peers for placement, peer offline" is waited for), and a configuration JetStream refuses (``serve`` with
  ``nats.stream_replicas`` 3 on a server that is not clustered ends with one line naming it, no
  traceback).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import nats.js.errors
import pytest
from structlog.testing import capture_logs

from agents import Bus, NatsAuth
from agents.errors import AgentFailedError, ForbiddenError
from agents.jetstream import JetStream, JetStreamNotReadyError, JetStreamUnavailableError
from agents.jetstream._base import translated
from neurectomy import Client
from neurectomy.server.natsserver import EmbeddedNats, nats_server_binary
from neurectomy.testing import free_port, spawn_serve, stop_serve, wait_healthy
from tests.neurectomy.conftest import Node, kill_all, new_cluster, wait_formed

WAITING = "waiting for JetStream"


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[Node]]:
    """Three nodes of one cluster, none started (each test starts what it needs)."""
    root = tmp_path / "cluster"
    root.mkdir()
    cluster = new_cluster(root)
    try:
        yield cluster
    finally:
        kill_all(cluster)


def _log_events(path: Path, event: str) -> list[dict[str, Any]]:
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


def _wait_for_log(proc: subprocess.Popen[bytes], path: Path, event: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not _log_events(path, event):
        assert proc.poll() is None, f"serve exited with {proc.returncode}: {path.read_text()}"
        assert time.monotonic() < deadline, f"no {event!r} in the log: {path.read_text()}"
        time.sleep(0.1)


@pytest.mark.slow
def test_serve_waits_for_a_cluster_without_quorum_then_runs_a_durable_task(
    nodes: list[Node], tmp_path: Path
) -> None:
    nodes[0].start()  # one of three: no quorum, so no JetStream meta leader can be elected
    state = tmp_path / "serve"
    state.mkdir()
    urls = ",".join(n.url for n in nodes)
    proc, url = spawn_serve(
        state,
        "--nats-url",
        urls,
        "--teams",
        "analysis",
        env={"NEURECTOMY_NATS__STREAM_REPLICAS": "3"},
    )
    try:
        _wait_for_log(proc, state / "serve.log", WAITING)
        assert nodes[0].meta_leader() is None  # what it waited for was really missing
        for node in nodes[1:]:
            node.start()
        wait_healthy(proc, url, state)

        waits = _log_events(state / "serve.log", WAITING)
        first = waits[0]
        assert first["waiting_for"] == "create stream NEURECTOMY_TASKS", first
        assert first["attempt"] == 1 and first["timeout_s"] == 60.0, first
        assert "JetStream" in first["error"], first
        attempts = [w["attempt"] for w in waits if w["waiting_for"] == first["waiting_for"]]
        assert attempts == list(range(1, len(attempts) + 1)), attempts  # one line per attempt, in order

        with Client(url, timeout_s=60) as client:
            plan = {
                "name": "after-quorum",
                "steps": [{"id": "s", "agent": "statistician", "input": {"values": [1, 2, 6]}}],
                "output": {"mean": "${steps.s.mean}"},
            }
            submitted = client.tasks.submit(plan=plan)
            record = client.tasks.wait(submitted.id, timeout_s=60)
        assert (record.status, record.result) == ("succeeded", {"mean": 3}), record
        streams = nodes[0].streams()
        assert streams["NEURECTOMY_TASKS"]["config"]["num_replicas"] == 3, streams.keys()
    finally:
        code = stop_serve(proc)
    assert code == 0, (state / "serve.log").read_text()[-3000:]  # and it stops cleanly


@pytest.mark.anyio
async def test_setup_gives_up_after_its_timeout_naming_what_it_waited_for(nodes: list[Node]) -> None:
    nodes[0].start()
    async with await Bus.connect(nodes[0].url, name="lone") as bus:
        bus.jetstream_startup_timeout_s = 3.0
        js = JetStream(bus, timeout_s=1.0)
        with capture_logs() as logs, pytest.raises(JetStreamNotReadyError) as caught:
            await js.ensure_stream("LONELY", ["lonely.>"], work_queue=True)
    assert caught.value.message.startswith("create stream LONELY: JetStream not ready after "), caught.value
    assert "(timeout 3 s)" in caught.value.message
    waits = [e for e in logs if e["event"] == WAITING]
    assert waits and all(e["waiting_for"] == "create stream LONELY" for e in waits), logs
    assert [e["attempt"] for e in waits] == list(range(1, len(waits) + 1))


@pytest.mark.anyio
async def test_more_replicas_than_nodes_fails_at_once_and_a_peer_offline_is_waited_for(
    nodes: list[Node],
) -> None:
    for node in nodes:
        node.start()
    wait_formed(nodes)
    async with await Bus.connect(nodes[0].url, name="r4") as bus:
        js = JetStream(bus, timeout_s=5.0)
        js.replicas = 4
        # nats-server answers R4 on three nodes with err_code 10005 and no reason: waiting cannot fix it.
        with capture_logs() as logs, pytest.raises(AgentFailedError) as caught, anyio.fail_after(30):
            await js.ensure_stream("FOUR", ["four.>"], work_queue=True)
    assert caught.value.message == "create stream FOUR: JetStream refused: no suitable peers for placement"
    assert not [e for e in logs if e["event"] == WAITING], logs
    # The same code with the reason a cluster gives while a node is still joining (seen in a full run of
    # the test above; not reproducible on demand) is a wait, not a refusal.
    with pytest.raises(JetStreamNotReadyError), translated("create stream NEURECTOMY_TASKS"):
        raise nats.js.errors.BadRequestError(
            code=400, err_code=10005, description="no suitable peers for placement, peer offline"
        )


@contextmanager
def _plain_server(tmp_path: Path, config: str) -> Iterator[str]:
    """A nats-server (not clustered) with ``config`` after its ``listen`` line; yields its URL."""
    port = free_port()
    conf = tmp_path / "plain.conf"
    conf.write_text(f'listen: "127.0.0.1:{port}"\n{config}')
    with (tmp_path / "plain.log").open("wb") as log:
        proc = subprocess.Popen([str(nats_server_binary()), "-c", str(conf)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while "Server is ready" not in (tmp_path / "plain.log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "plain.log").read_text()
            time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def denying_server(tmp_path: Path) -> Iterator[str]:
    """JetStream on; its only user may not create streams."""
    with _plain_server(
        tmp_path,
        f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
        'authorization { users: [ { user: "app", password: "app", '
        'permissions: { publish: { deny: ["$JS.API.STREAM.CREATE.>"] } } } ] }\n',
    ) as url:
        yield url


@pytest.mark.anyio
async def test_setup_without_jetstream_fails_at_once(tmp_path: Path) -> None:
    with _plain_server(tmp_path, "") as url:  # JetStream not enabled
        async with await Bus.connect(url, name="no-js") as bus:
            js = JetStream(bus, timeout_s=1.0)
            with (
                capture_logs() as logs,
                pytest.raises(JetStreamUnavailableError) as caught,
                anyio.fail_after(30),
            ):
                await js.ensure_key_value("nothing")
    assert not isinstance(caught.value, JetStreamNotReadyError), caught.value
    assert caught.value.message == "open KV bucket nothing: JetStream is not available"
    assert not [e for e in logs if e["event"] == WAITING], logs


@pytest.mark.anyio
async def test_setup_without_permission_fails_at_once_with_the_servers_message(denying_server: str) -> None:
    auth = NatsAuth(user="app", password="app")
    async with await Bus.connect(denying_server, name="denied", auth=auth) as bus:
        assert bus.jetstream_startup_timeout_s == 60.0  # the default wait, which must not be used here
        js = JetStream(bus, timeout_s=1.0)
        with capture_logs() as logs, pytest.raises(ForbiddenError) as caught, anyio.fail_after(30):
            await js.ensure_stream("DENIED", ["denied.>"], work_queue=True)
    assert caught.value.message == (
        "create stream DENIED: NATS refused: nats: permissions violation for publish to "
        '"$js.api.stream.create.denied"'
    )
    assert not [e for e in logs if e["event"] == WAITING], logs  # no attempt was repeated


def test_serve_with_a_refused_configuration_ends_at_once_with_one_line(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    state = tmp_path / "serve"
    state.mkdir()
    proc, _ = spawn_serve(
        state,
        "--nats-url",
        nats_server.url,
        "--teams",
        "none",
        env={"NEURECTOMY_NATS__STREAM_REPLICAS": "3"},  # a single, not clustered, server refuses R3
    )
    try:
        assert proc.wait(timeout=120) == 1
    finally:
        stop_serve(proc)
    lines = (state / "serve.log").read_text().splitlines()
    assert lines[-1] == (
        "serve: create stream NEURECTOMY_TASKS: JetStream refused: replicas > 1 not supported in "
        "non-clustered mode"
    ), lines[-5:]
    assert not [ln for ln in lines if "Traceback" in ln or WAITING in ln], lines
