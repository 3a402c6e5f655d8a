"""A real ``neurectomy serve`` with its own private nats-server and auth on, shared by the trust tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore
from neurectomy.server.natsserver import CREDENTIALS_FILE_NAME, NatsCredentials
from neurectomy.testing import start_serve, stop_serve


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
