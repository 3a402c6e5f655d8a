"""A Neurectomy cluster on loopback: three nats-server processes clustered with JetStream (R3), two
``serve --teams none`` API processes and an Analysis agent process, all joining through a list of server
URLs with ``nats.stream_replicas`` 3.

Durable tasks are submitted through API 1 and read through API 2; under that load one NATS node is
killed with SIGKILL: every task still succeeds exactly once (one record per submission, the right
result, each agent step run once), and the node, restarted on its store, catches up (its ``/healthz``,
which requires every stream and consumer to be current, answers 200 and its copy of the task bucket
holds what the others hold).

API keys are shared through JetStream KV: a key created and revoked through API 1 is listed so by API 2
through its KV watch, not at its periodic re-read of the bucket.

On the same cluster (one start-up for the module), the Storage team runs twice, as two ``neurectomy agent
--team storage`` processes with their own state directories, one KEK and ``vault_log.mode: jetstream``:
records written through API 1 are found (get and search) through API 2 on whichever replica answers;
one Storage process is killed with SIGKILL under writes and every acknowledged record stays readable;
restarted on its state directory, it catches up from its local cache and the stream, and serves every
record alone once the other replica is stopped.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from neurectomy import Client, TaskRecord, UnavailableError
from neurectomy.server.shared_keys import RESYNC_S
from neurectomy.testing import start_agents, start_serve, stop_serve
from tests.neurectomy.conftest import Node, kill_all, new_cluster, wait_formed

pytestmark = pytest.mark.slow

TASKS = 60
REPLICAS = {"NEURECTOMY_NATS__STREAM_REPLICAS": "3"}
WATCHED_WITHIN_S = RESYNC_S / 3
"""How long API 2 may take to show a change made through API 1, seconds: its KV watch delivers it in
milliseconds (seconds on a starved machine). Without the watch a change arrives only at API 2's re-read of
the whole bucket, every :data:`~neurectomy.server.shared_keys.RESYNC_S` (30 s) or more: a re-read may
happen to fall within this bound after the key's creation, but then the revocation, made at once after,
waits for the next one, over 20 s later, and fails it."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    nodes = new_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        for n in nodes:
            n.start()
        wait_formed(nodes)  # JetStream answers (a meta leader all agree on) before any process starts
        yield nodes
    finally:
        kill_all(nodes)


def plan_for(i: int) -> dict[str, Any]:
    """Two statistician steps; the result is checkable: the mean of [i, i+1, i+2] is i+1."""
    return {
        "name": f"job-{i}",
        "steps": [
            {"id": "first", "agent": "statistician", "input": {"values": [i, i + 1, i + 2]}},
            {"id": "second", "agent": "statistician", "input": {"values": ["${steps.first.max}"]}},
        ],
        "output": {"mean": "${steps.first.mean}", "max": "${steps.second.max}"},
    }


def _statistician_requests(client: Client) -> int:
    return next(a.requests for a in client.agents.list() if a.name == "statistician")


def _wait_through_failover(client: Client, task_id: str, *, deadline: float) -> TaskRecord:
    """The task's final record; a 503 while this API reconnects to a surviving NATS node is waited out
    (what must hold is that the task completes exactly once, not that the API never answers 503)."""
    while True:
        try:
            return client.tasks.wait(task_id, timeout_s=max(deadline - time.monotonic(), 1))
        except UnavailableError:
            assert time.monotonic() < deadline, "the API did not reconnect to the cluster"
            time.sleep(0.2)


def _keys_are_shared(url1: str, dir1: Path, url2: str, dir2: Path) -> None:
    """A key created, then revoked, through API 1 shows so in API 2's list through API 2's KV watch (each
    process's key cache follows the KV bucket; each is managed with its own local admin token)."""
    admin1 = {"Authorization": f"Bearer {(dir1 / 'admin-token').read_text().strip()}"}
    admin2 = {"Authorization": f"Bearer {(dir2 / 'admin-token').read_text().strip()}"}
    made = httpx.post(f"{url1}/v1/keys", json={"tenant": "acme", "scopes": ["read"]}, headers=admin1)
    assert made.status_code == 201, made.text
    key_id = made.json()["id"]

    def on_api2() -> dict[str, Any] | None:
        listed = httpx.get(f"{url2}/v1/keys", headers=admin2, timeout=5)
        assert listed.status_code == 200, listed.text
        return next((k for k in listed.json() if k["id"] == key_id), None)

    deadline = time.monotonic() + WATCHED_WITHIN_S
    while on_api2() is None:
        assert time.monotonic() < deadline, f"API 2 did not see the new key in {WATCHED_WITHIN_S} s"
        time.sleep(0.02)
    assert httpx.delete(f"{url1}/v1/keys/{key_id}", headers=admin1).status_code == 200
    deadline = time.monotonic() + WATCHED_WITHIN_S
    while (on_api2() or {}).get("revoked_at") is None:
        assert time.monotonic() < deadline, f"API 2 did not see the revocation in {WATCHED_WITHIN_S} s"
        time.sleep(0.02)


def test_tasks_survive_the_loss_of_a_nats_node(cluster: list[Node], tmp_path: Path) -> None:
    urls = ",".join(n.url for n in cluster)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        dirs = [tmp_path / d for d in ("api1", "api2", "agents")]
        for d in dirs:
            d.mkdir()
        api1, url1 = start_serve(dirs[0], "--nats-url", urls, "--teams", "none", env=REPLICAS)
        procs.append(api1)
        api2, url2 = start_serve(dirs[1], "--nats-url", urls, "--teams", "none", env=REPLICAS)
        procs.append(api2)
        procs.append(
            start_agents(dirs[2], "analysis", urls, "--agent", "statistician", expect=1, env=REPLICAS)
        )
        health = httpx.get(f"{url1}/health", timeout=5).json()
        assert (health["status"], health["model_loaded"]) == ("ok", False)  # no local generator needed

        replicas = {name: s["config"]["num_replicas"] for name, s in cluster[0].streams().items()}
        assert replicas and all(r == 3 for r in replicas.values()), replicas  # tasks stream, DLQ and KV
        assert "KV_neurectomy_api_keys" in replicas  # the API keys bucket, shared by both APIs

        _keys_are_shared(url1, dirs[0], url2, dirs[1])

        with Client(url1, timeout_s=30) as one, Client(url2, timeout_s=30) as two:
            before = _statistician_requests(two)
            ids = [one.tasks.submit(plan=plan_for(i), idempotency_key=f"job-{i}").id for i in range(TASKS)]
            deadline = time.monotonic() + 60
            while sum(two.tasks.get(t).status == "succeeded" for t in ids[:20]) < 5:
                assert time.monotonic() < deadline, "tasks did not start"
                time.sleep(0.05)
            victim = cluster[1]
            victim.kill()  # under load: tasks queued, running and done
            records = [_wait_through_failover(two, t, deadline=time.monotonic() + 120) for t in ids]
            assert [r.status for r in records] == ["succeeded"] * TASKS, [
                (r.id, r.status, r.error) for r in records if r.status != "succeeded"
            ]
            assert [r.result for r in records] == [{"mean": i + 1, "max": i + 2} for i in range(TASKS)]
            again = [two.tasks.submit(plan=plan_for(i), idempotency_key=f"job-{i}") for i in range(TASKS)]
            assert [a.id for a in again] == ids and not any(a.created for a in again)
            assert _statistician_requests(two) - before == 2 * TASKS  # every step ran once

            victim.start()  # same store directory: it must catch up with what it missed
            victim.wait_current()
            survivor = cluster[0].streams()
            deadline = time.monotonic() + 30
            while True:
                mine = victim.streams()
                same = {n: (s["state"]["messages"], s["state"]["last_seq"]) for n, s in mine.items()} == {
                    n: (s["state"]["messages"], s["state"]["last_seq"]) for n, s in survivor.items()
                }
                if same:
                    break
                assert time.monotonic() < deadline, (mine, survivor)
                time.sleep(0.1)
    finally:
        for proc in procs:
            stop_serve(proc)


VAULT_LOG = {
    **REPLICAS,
    "NEURECTOMY_VAULT_LOG__MODE": "jetstream",
    "NEURECTOMY_VAULT_KEK": base64.b64encode(os.urandom(32)).decode(),  # one KEK, as from one Secret
}
STORAGE_AGENTS = 9  # the eight of the team and the embedder


class Writer(threading.Thread):
    """Writes one record per request through an API until stopped; keeps what was acknowledged."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.acked: dict[str, int] = {}  # record id -> sequence
        self.failed: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            i = 0
            while not self.stop.is_set():
                rid = f"w{i}"
                record = {
                    "id": rid,
                    "text": f"Load test note number {i} about the harbour.",
                    "metadata": {"i": i},
                }
                try:
                    r = http.post(
                        "/v1/vault/records", json={"records": [record]}, headers={"Idempotency-Key": rid}
                    )
                    if r.status_code == 200:
                        self.acked[rid] = r.json()["sequence"]
                    else:
                        self.failed.append(f"{rid}: {r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failed.append(f"{rid}: {exc!r}")
                i += 1


def _get(http: httpx.Client, rid: str, after: int, *, deadline: float) -> httpx.Response:
    """GET a record with ``after_sequence``; a 503 (a replica behind, or failing over) is retried."""
    while True:
        r = http.get(f"/v1/vault/records/{rid}", params={"after_sequence": after})
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_two_storage_replicas_serve_one_vault_through_the_stream(cluster: list[Node], tmp_path: Path) -> None:
    urls = ",".join(n.url for n in cluster)
    procs: list[subprocess.Popen[bytes]] = []
    dirs = {d: tmp_path / d for d in ("api1", "api2", "s1", "s2")}
    for d in dirs.values():
        d.mkdir()
    try:
        api1, url1 = start_serve(dirs["api1"], "--nats-url", urls, "--teams", "none", env=VAULT_LOG)
        api2, url2 = start_serve(dirs["api2"], "--nats-url", urls, "--teams", "none", env=VAULT_LOG)
        s1 = start_agents(dirs["s1"], "storage", urls, expect=STORAGE_AGENTS, env=VAULT_LOG)
        s2 = start_agents(dirs["s2"], "storage", urls, expect=STORAGE_AGENTS, env=VAULT_LOG)
        procs += [api1, api2, s1, s2]
        assert cluster[0].streams()["VAULT_LOG"]["config"]["num_replicas"] == 3

        with httpx.Client(base_url=url1, timeout=60) as one, httpx.Client(base_url=url2, timeout=60) as two:
            texts = {
                "invoice": "The invoice must be paid by Friday or a late fee applies.",
                "cat": "Our cat sleeps on the warm windowsill every afternoon.",
                "leak": "A memory leak in the server caused it to crash every night.",
            }
            stored = one.post(
                "/v1/vault/records", json={"records": [{"id": k, "text": t} for k, t in texts.items()]}
            )
            assert stored.status_code == 200, stored.text
            seq = stored.json()["sequence"]
            for _ in range(6):  # the router spreads these over both replicas; each must see the write
                for rid, text in texts.items():
                    got = _get(two, rid, seq, deadline=time.monotonic() + 30)
                    assert got.status_code == 200 and got.json()["text"] == text, got.text
                found = two.post(
                    "/v1/vault/search", json={"query": "when is the bill due?", "k": 1, "after_sequence": seq}
                )
                assert found.status_code == 200 and found.json()["hits"][0]["id"] == "invoice", found.text

            with Client(url1, timeout_s=60) as sdk1, Client(url2, timeout_s=60) as sdk2:
                sdk1.vault.add("The ferry leaves the harbour at noon.", id="ferry")
                assert sdk1.vault.last_sequence is not None and sdk1.vault.last_sequence > seq
                assert (
                    sdk1.vault.get("ferry").text == "The ferry leaves the harbour at noon."
                )  # its own write
                other = sdk2.vault.get("ferry", after_sequence=sdk1.vault.last_sequence)  # another client's
                assert other.text == "The ferry leaves the harbour at noon."

            writer = Writer(url1)
            writer.start()
            deadline = time.monotonic() + 60
            while len(writer.acked) < 15:
                assert time.monotonic() < deadline and writer.is_alive(), writer.failed
                time.sleep(0.05)
            s1.send_signal(signal.SIGKILL)  # under writes
            s1.wait()
            at_kill = len(writer.acked)
            while len(writer.acked) < at_kill + 15:  # writes keep being acknowledged by the survivor
                assert time.monotonic() < deadline + 60, writer.failed
                time.sleep(0.05)
            writer.stop.set()
            writer.join(60)
            last = max(writer.acked.values())
            for rid in writer.acked:  # every acknowledged record is readable
                got = _get(two, rid, last, deadline=time.monotonic() + 30)
                assert got.status_code == 200 and got.json()["metadata"] == {"i": int(rid[1:])}, got.text

            s1 = start_agents(dirs["s1"], "storage", urls, expect=STORAGE_AGENTS, env=VAULT_LOG)
            procs.append(s1)  # started: it has caught up with the stream from its local cache
            stop_serve(s2)  # now only the restarted replica answers
            for rid in [*texts, *writer.acked]:
                got = _get(two, rid, last, deadline=time.monotonic() + 30)
                assert got.status_code == 200, (rid, got.text)
            found = two.post("/v1/vault/search", json={"query": "harbour note", "k": 5})
            assert found.status_code == 200 and len(found.json()["hits"]) == 5, found.text
    finally:
        for proc in procs:
            stop_serve(proc)
