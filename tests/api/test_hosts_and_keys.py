"""Hosts, origins, CORS and the local admin token, on the real app in-process (real NATS, real key store)."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agents import Bus
from api import create_app
from neurectomy.server.keys import ADMIN_TOKEN_FILE_NAME, KEYS_FILE_NAME, KeyStore, local_admin_token
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator import Orchestrator

pytestmark = pytest.mark.anyio
APP_ORIGIN = "https://app.example"


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    async with await Bus.connect(nats_server.url, name="tests-hosts") as connected:
        yield connected


def client(app: object, host: str = "localhost:8420") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")  # type: ignore[arg-type]


async def test_key_routes_need_the_local_admin_token_when_auth_is_off(bus: Bus, state_dir: Path) -> None:
    token = local_admin_token(state_dir)
    path = state_dir / ADMIN_TOKEN_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and local_admin_token(state_dir) == token  # reused
    keys = KeyStore(state_dir / KEYS_FILE_NAME)
    app = create_app(Orchestrator(bus), keys=keys, admin_token=token, allowed_hosts=("localhost",))
    body = {"tenant": "acme", "scopes": ["admin"]}
    async with client(app) as http:
        missing = await http.post("/v1/keys", json=body)
        assert missing.status_code == 401 and "admin token" in missing.json()["error"]["message"]
        wrong = await http.post("/v1/keys", json=body, headers={"Authorization": "Bearer nra_guess"})
        assert wrong.status_code == 403
        assert (await http.get("/v1/keys")).status_code == 401
        assert keys.list_keys() == []
        made = await http.post("/v1/keys", json=body, headers={"Authorization": f"Bearer {token}"})
        assert made.status_code == 201 and keys.verify(made.json()["token"]) is not None
        # Refused before the body is read: a bad body without the token is 401, not 400.
        assert (await http.post("/v1/keys", json={"tenant": ""})).status_code == 401
    without = create_app(Orchestrator(bus), keys=keys)  # no admin token: never over HTTP with auth off
    async with client(without) as http:
        refused = await http.post("/v1/keys", json=body, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        local_admin_token(state_dir)


async def test_hosts_origins_and_cors(bus: Bus) -> None:
    app = create_app(
        Orchestrator(bus), allowed_hosts=("localhost", "*.example.org"), cors_origins=(APP_ORIGIN,)
    )
    for host, status in (("localhost:1", 200), ("api.example.org", 200), ("example.org", 400), ("evil", 400)):
        async with client(app, host) as http:
            assert (await http.get("/v1/models")).status_code in ((status,) if status == 400 else (200, 503))
    async with client(app) as http:
        preflight = await http.options(
            "/v1/generate",
            headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type,authorization"},
        )  # fmt: skip
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        foreign = await http.options(
            "/v1/generate", headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in foreign.headers
        # An unsafe request from a listed origin goes through (400: the body is empty), others are 403.
        listed = await http.post("/v1/select", json={}, headers={"Origin": APP_ORIGIN})
        assert listed.status_code == 400 and listed.headers["access-control-allow-origin"] == APP_ORIGIN
        other = await http.post("/v1/select", json={}, headers={"Origin": "https://evil.test"})
        assert other.status_code == 403 and other.json()["error"]["field"] == "Origin"
        same = await http.post("/v1/select", json={}, headers={"Origin": "http://localhost:8420"})
        assert same.status_code == 400
