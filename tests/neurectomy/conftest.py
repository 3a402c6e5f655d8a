"""A real ``neurectomy serve`` with its own private nats-server and auth on, shared by the trust tests;
a NATS cluster on loopback (:class:`Node`, :func:`new_cluster`, :func:`wait_formed`) for the cluster tests."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore
from neurectomy.server.natsserver import CREDENTIALS_FILE_NAME, NatsCredentials, nats_server_binary
from neurectomy.testing import free_port, start_serve, stop_serve


@dataclass(frozen=True)
class Service:
    """The running service: its URL, state directory and API keys (tenant ``acme``: write, admin;
    tenant ``globex``: write)."""

    url: str
    state_dir: Path
    write_key: str
    admin_key: str
    other_key: str

    @property
    def nats_url(self) -> str:
        log = (self.state_dir / "nats" / "nats-server.log").read_text()
        line = next(ln for ln in log.splitlines() if "Listening for client connections" in ln)
        return f"nats://127.0.0.1:{line.rsplit(':', 1)[1]}"

    @staticmethod
    def bearer(token: str, **extra: str) -> dict[str, str]:
        """Request headers with ``Authorization: Bearer <token>``."""
        return {"Authorization": f"Bearer {token}", **extra}

    def credentials(self) -> NatsCredentials:
        return NatsCredentials(self.state_dir / "nats" / CREDENTIALS_FILE_NAME)


@pytest.fixture(scope="session")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    state = tmp_path_factory.mktemp("trust-state")
    keys = KeyStore(state / KEYS_FILE_NAME)
    write = keys.create("acme", "read,write").token
    admin = keys.create("acme", "read,write,admin").token
    other = keys.create("globex", "read,write").token
    proc, url = start_serve(state, env={"NEURECTOMY_AUTH__ENABLED": "true"})
    try:
        yield Service(url, state, write, admin, other)
    finally:
        stop_serve(proc)


class Node:
    """One nats-server of the cluster (client, route and monitoring ports fixed for restarts)."""

    def __init__(self, name: str, root: Path, ports: dict[str, int], routes: list[int]) -> None:
        self.name, self.dir, self.ports = name, root / name, ports
        self.dir.mkdir()
        routes_conf = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes)
        (self.dir / "nats.conf").write_text(
            f'server_name: "{name}"\nlisten: "127.0.0.1:{ports["client"]}"\n'
            f'http: "127.0.0.1:{ports["http"]}"\njetstream {{ store_dir: "{self.dir / "js"}" }}\n'
            f'cluster {{ name: "neurectomy", listen: "127.0.0.1:{ports["route"]}", '
            f"routes: [{routes_conf}] }}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.ports['client']}"

    def start(self) -> None:
        with (self.dir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(nats_server_binary()), "-c", str(self.dir / "nats.conf")], stdout=log, stderr=log
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def monitor(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.ports['http']}{path}", timeout=2)

    def meta_leader(self) -> str | None:
        """The JetStream meta leader this node knows (``/jsz`` ``meta_cluster.leader``), if any."""
        leader = self.monitor("/jsz").json().get("meta_cluster", {}).get("leader")
        return str(leader) if leader else None

    def wait_current(self, timeout_s: float = 60) -> None:
        """Until ``/healthz`` answers 200 (JetStream is up and every stream and consumer is current) and the
        node knows its JetStream meta leader (``/jsz``): JetStream API requests through it are answered."""
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process is not None and self.process.poll() is None, (
                self.dir / "server.log"
            ).read_text()
            try:
                if self.monitor("/healthz").status_code == 200 and self.meta_leader() is not None:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (
                f"{self.name} not current: {(self.dir / 'server.log').read_text()[-3000:]}"
            )
            time.sleep(0.1)

    def streams(self) -> dict[str, dict[str, Any]]:
        """This node's copy of each stream: ``name -> {"config": ..., "state": ..., "cluster": ...}``."""
        body = self.monitor("/jsz?accounts=true&streams=true&config=true").json()
        return {
            s["name"]: s for a in body.get("account_details", []) for s in a.get("stream_detail", []) or []
        }


def new_cluster(root: Path, size: int = 3) -> list[Node]:
    """``size`` nats-server nodes of one JetStream cluster, configured (routes to each other), not started."""
    ports = [{"client": free_port(), "route": free_port(), "http": free_port()} for _ in range(size)]
    return [Node(f"n{i + 1}", root, p, [q["route"] for q in ports]) for i, p in enumerate(ports)]


def wait_formed(nodes: list[Node], timeout_s: float = 60) -> None:
    """Until every node is current (:meth:`Node.wait_current`) and all name the same meta leader."""
    deadline = time.monotonic() + timeout_s
    for node in nodes:
        node.wait_current(timeout_s)
    while len({node.meta_leader() for node in nodes}) != 1:
        assert time.monotonic() < deadline, {node.name: node.meta_leader() for node in nodes}
        time.sleep(0.1)


def kill_all(nodes: list[Node]) -> None:
    """SIGKILL every node still running."""
    for node in nodes:
        node.kill()
