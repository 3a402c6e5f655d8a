"""API state shared through JetStream KV: API keys and rate-limit counts seen alike by two API apps.

Each "API" is a full app (``create_app``) with a NATS connection, a key cache and a store of its own,
on the session's real nats-server (JetStream on); nothing is shared between the two but the server.
The cluster test (``tests/neurectomy/test_cluster_e2e.py``) checks keys across two real
``serve --teams none`` processes too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from litestar.stores.memory import MemoryStore

from agents import Bus
from agents.jetstream import JetStream
from agents.roster import ROSTER
from api import AuthConfig, KeyValueStore, LimitsConfig, create_app
from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore
from neurectomy.server.natsserver import EmbeddedNats
from neurectomy.server.shared_keys import SharedKeyStore
from orchestrator import Orchestrator

pytestmark = pytest.mark.anyio

ROUTE = "/v1/agents/statistician"  # needs the read scope; answered from the roster, no agent needed
LIMIT = 5


@dataclass
class Api:
    client: httpx.AsyncClient
    keys: SharedKeyStore
    file: KeyStore


async def _apis(
    stack: AsyncExitStack, tg: anyio.abc.TaskGroup, url: str, root: Path, *, limits: LimitsConfig | None
) -> list[Api]:
    apis = []
    for name in ("api1", "api2"):
        bus = await stack.enter_async_context(await Bus.connect(url, name=name))
        js = JetStream(bus)
        file = KeyStore(root / name / KEYS_FILE_NAME)
        keys = await SharedKeyStore.open(js, file)
        await tg.start(keys.run)
        store = await KeyValueStore.open(js) if limits is not None else None
        app = create_app(
            Orchestrator(bus, specs=ROSTER),
            auth=AuthConfig(enabled=True),
            keys=keys,
            limits=limits,
            rate_limit_store=store,
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://neurectomy.test")
        await stack.enter_async_context(client)
        apis.append(Api(client, keys, file))
    return apis


@pytest.fixture
async def two_apis(nats_server: EmbeddedNats, tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    async with AsyncExitStack() as stack, anyio.create_task_group() as tg:

        async def make(limits: LimitsConfig | None = None) -> list[Api]:
            return await _apis(stack, tg, nats_server.url, tmp_path, limits=limits)

        yield make
        tg.cancel_scope.cancel()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _until_status(client: httpx.AsyncClient, token: str, status: int, *, within_s: float) -> float:
    """Seconds until ``ROUTE`` answers ``status`` for ``token``; fails past ``within_s``."""
    start = time.monotonic()
    while True:
        got = (await client.get(ROUTE, headers=bearer(token))).status_code
        elapsed = time.monotonic() - start
        if got == status:
            return elapsed
        assert elapsed < within_s, f"still {got} (not {status}) after {elapsed:.2f} s"
        await anyio.sleep(0.01)


async def test_a_key_made_or_revoked_on_one_api_holds_on_the_other_within_a_second(two_apis) -> None:  # type: ignore[no-untyped-def]
    one, two = await two_apis()
    admin = await one.keys.create("ops", "admin")

    made = await one.client.post(
        "/v1/keys", json={"tenant": "acme", "scopes": ["read"]}, headers=bearer(admin.token)
    )
    assert made.status_code == 201, made.text
    token, key_id = made.json()["token"], made.json()["id"]
    assert (await one.client.get(ROUTE, headers=bearer(token))).status_code == 200  # its own write at once
    await _until_status(two.client, token, 200, within_s=1.0)
    assert [k.id for k in two.keys.list_keys() if k.id == key_id] == [key_id]

    revoked = await one.client.delete(f"/v1/keys/{key_id}", headers=bearer(admin.token))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await one.client.get(ROUTE, headers=bearer(token))).status_code == 401
    await _until_status(two.client, token, 401, within_s=1.0)
    body = (await two.client.get(ROUTE, headers=bearer(token))).json()
    assert "revoked" in body["error"]["message"]

    listed = await two.client.get("/v1/keys", headers=bearer(admin.token))
    stored = next(k for k in listed.json() if k["id"] == key_id)
    assert stored["revoked_at"] is not None and "token" not in stored and "digest" not in stored


async def test_keys_of_the_local_file_are_imported_and_its_revocations_carried_over(two_apis) -> None:  # type: ignore[no-untyped-def]
    one, two = await two_apis()
    local = one.file.create("filed", "read")  # `neurectomy keys create` on API 1's host, server running
    assert (await one.client.get(ROUTE, headers=bearer(local.token))).status_code == 200  # file fallback
    await _until_status(two.client, local.token, 200, within_s=3.0)  # imported within the file poll
    one.file.revoke(local.key.id)
    await _until_status(two.client, local.token, 401, within_s=3.0)
    assert (await one.client.get(ROUTE, headers=bearer(local.token))).status_code == 401


async def test_a_rate_limit_window_is_shared_by_two_apis(two_apis) -> None:  # type: ignore[no-untyped-def]
    one, two = await two_apis(LimitsConfig(rate_limit=LIMIT, rate_window="minute"))
    token = (await one.keys.create("limited", "read")).token
    await _until_status(two.client, token, 200, within_s=1.0)  # one request of the window spent
    statuses = [(await api.client.get(ROUTE, headers=bearer(token))).status_code for api in (one, two) * 2]
    assert statuses == [200, 200, 200, 200]  # 5 of 5, counted across both processes
    refused = await one.client.get(ROUTE, headers=bearer(token))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert (await two.client.get(ROUTE, headers=bearer(token))).status_code == 429

    other = (await two.keys.create("limited", "read")).token  # a window per key
    await _until_status(one.client, other, 200, within_s=1.0)
    results: list[int] = []

    async def call(api: Api) -> None:
        results.append((await api.client.get(ROUTE, headers=bearer(other))).status_code)

    async with anyio.create_task_group() as tg:  # racing processes never both take the last slots
        for i in range(8):
            tg.start_soon(call, (one, two)[i % 2])
    assert sorted(results) == [200] * (LIMIT - 1) + [429] * (8 - LIMIT + 1)


@pytest.fixture(params=["kv", "memory"])
async def store(request: pytest.FixtureRequest, bus: Bus) -> AsyncIterator[object]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        yield await KeyValueStore.open(JetStream(bus), namespace=f"contract-{time.monotonic_ns()}")


async def test_store_contract(store) -> None:  # type: ignore[no-untyped-def]
    """The KV store behaves as Litestar's memory store for every ``Store`` method."""
    assert await store.get("a:b/c") is None and not await store.exists("a:b/c")
    await store.set("a:b/c", "text", expires_in=60)
    await store.set("bytes", b"\x00\xff")
    assert await store.get("a:b/c") == b"text" and await store.get("bytes") == b"\x00\xff"
    assert 58 <= (await store.expires_in("a:b/c")) <= 60
    assert await store.expires_in("bytes") == -1 and await store.exists("bytes")  # no expiry of its own
    assert await store.expires_in("never-there") is None
    await store.set("short", b"x", expires_in=1)
    assert await store.get("short", renew_for=60) == b"x"
    assert (await store.expires_in("short")) > 1  # renewed
    await store.set("gone", b"x", expires_in=1)
    await anyio.sleep(1.1)
    assert await store.get("gone") is None and not await store.exists("gone")
    await store.delete("bytes")
    assert await store.get("bytes") is None
    await store.delete("never-there")
    await store.delete_all()
    assert await store.get("a:b/c") is None and await store.get("short") is None
