"""API state shared through JetStream KV: API keys and rate-limit counts seen alike by two API apps.

Each "API" is a full app (``create_app``) with a NATS connection, a key cache and a store of its own,
on the session's real nats-server (JetStream on); nothing is shared between the two but the server.
The cluster test (``tests/neurectomy/test_cluster_e2e.py``) checks keys across two real
``serve --teams none`` processes too.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import anyio
import httpx
import pytest
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage, memory
from limits.aio.strategies import FixedWindowRateLimiter

from agents import Bus
from agents.jetstream import JetStream
from agents.roster import ROSTER
from api import AuthConfig, KeyValueStore, LimitsConfig, _kv_store, _window_store, create_app
from api._kv_store import MAX_CAS_ATTEMPTS, CounterContendedError
from api._limits import WindowCounter
from api._window_store import WindowStore
from neurectomy.server import shared_keys
from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore
from neurectomy.server.natsserver import EmbeddedNats
from neurectomy.server.shared_keys import SharedKeyStore
from orchestrator import Orchestrator

pytestmark = pytest.mark.anyio

ROUTE = "/v1/agents/statistician"  # needs the read scope; answered from the roster, no agent needed
LIMIT = 5
ARRIVES_WITHIN_S = 20.0
"""How long a change made on one API may take to hold on the other, seconds: the KV watch delivers it in
milliseconds (seconds on a starved machine). The periodic re-read is switched off in these tests
(``two_apis``), so a change the watch does not carry never arrives and fails the wait."""


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
async def two_apis(
    nats_server: EmbeddedNats, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., object]]:
    monkeypatch.setattr(shared_keys, "RESYNC_S", math.inf)  # the watch alone carries changes between APIs
    async with AsyncExitStack() as stack, anyio.create_task_group() as tg:

        async def make(limits: LimitsConfig | None = None) -> list[Api]:
            return await _apis(stack, tg, nats_server.url, tmp_path, limits=limits)

        yield make
        tg.cancel_scope.cancel()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _until_status(client: httpx.AsyncClient, token: str, status: int) -> float:
    """Seconds until ``ROUTE`` answers ``status`` for ``token``; fails past :data:`ARRIVES_WITHIN_S`."""
    start = time.monotonic()
    while True:
        got = (await client.get(ROUTE, headers=bearer(token))).status_code
        elapsed = time.monotonic() - start
        if got == status:
            return elapsed
        assert elapsed < ARRIVES_WITHIN_S, f"still {got} (not {status}) after {elapsed:.2f} s"
        await anyio.sleep(0.01)


async def test_a_key_made_or_revoked_on_one_api_holds_on_the_other_through_the_watch(two_apis) -> None:  # type: ignore[no-untyped-def]
    one, two = await two_apis()
    admin = await one.keys.create("ops", "admin")

    made = await one.client.post(
        "/v1/keys", json={"tenant": "acme", "scopes": ["read"]}, headers=bearer(admin.token)
    )
    assert made.status_code == 201, made.text
    token, key_id = made.json()["token"], made.json()["id"]
    assert (await one.client.get(ROUTE, headers=bearer(token))).status_code == 200  # its own write at once
    await _until_status(two.client, token, 200)
    assert [k.id for k in two.keys.list_keys() if k.id == key_id] == [key_id]

    revoked = await one.client.delete(f"/v1/keys/{key_id}", headers=bearer(admin.token))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await one.client.get(ROUTE, headers=bearer(token))).status_code == 401
    await _until_status(two.client, token, 401)
    body = (await two.client.get(ROUTE, headers=bearer(token))).json()
    assert "revoked" in body["error"]["message"]

    listed = await two.client.get("/v1/keys", headers=bearer(admin.token))
    stored = next(k for k in listed.json() if k["id"] == key_id)
    assert stored["revoked_at"] is not None and "token" not in stored and "digest" not in stored


async def test_keys_of_the_local_file_are_imported_and_its_revocations_carried_over(two_apis) -> None:  # type: ignore[no-untyped-def]
    one, two = await two_apis()
    local = one.file.create("filed", "read")  # `neurectomy keys create` on API 1's host, server running
    assert (await one.client.get(ROUTE, headers=bearer(local.token))).status_code == 200  # file fallback
    await _until_status(two.client, local.token, 200)  # imported at API 1's next file poll (1 s)
    one.file.revoke(local.key.id)
    await _until_status(two.client, local.token, 401)
    assert (await one.client.get(ROUTE, headers=bearer(local.token))).status_code == 401


async def test_a_rate_limit_window_is_shared_by_two_apis(two_apis) -> None:  # type: ignore[no-untyped-def]
    one, two = await two_apis(LimitsConfig(rate_limit=LIMIT, rate_window="minute"))
    token = (await one.keys.create("limited", "read")).token
    await _until_status(two.client, token, 200)  # one request of the window spent
    statuses = [(await api.client.get(ROUTE, headers=bearer(token))).status_code for api in (one, two) * 2]
    assert statuses == [200, 200, 200, 200]  # 5 of 5, counted across both processes
    refused = await one.client.get(ROUTE, headers=bearer(token))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert (await two.client.get(ROUTE, headers=bearer(token))).status_code == 429

    other = (await two.keys.create("limited", "read")).token  # a window per key
    await _until_status(one.client, other, 200)
    results: list[int] = []

    async def call(api: Api) -> None:
        results.append((await api.client.get(ROUTE, headers=bearer(other))).status_code)

    async with anyio.create_task_group() as tg:  # racing processes never both take the last slots
        for i in range(8):
            tg.start_soon(call, (one, two)[i % 2])
    assert sorted(results) == [200] * (LIMIT - 1) + [429] * (8 - LIMIT + 1)


@pytest.fixture(params=["kv", "window", "memory"])
async def storage(
    request: pytest.FixtureRequest, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Storage, list[float]]]:
    """A ``limits`` storage (ours on JetStream KV or in memory, or ``limits``' own) and its clock."""
    now = [time.time()]
    monkeypatch.setattr(_kv_store, "time", lambda: now[0])
    monkeypatch.setattr(memory, "time", SimpleNamespace(time=lambda: now[0]))
    monkeypatch.setattr(_window_store, "time", lambda: now[0])
    if request.param == "memory":
        yield MemoryStorage(), now
    elif request.param == "window":
        yield WindowStore(), now
    else:
        yield await KeyValueStore.open(JetStream(bus), namespace=f"contract-{time.monotonic_ns()}"), now


async def test_storage_contract(storage: tuple[Storage, list[float]]) -> None:
    """Our KV and in-memory storages behave as ``limits``' memory storage for the fixed-window interface."""
    store, clock = storage
    key = "LIMITER/api_key:key:k1/3/1/minute"  # any characters, as limits builds keys
    assert await store.check() is True
    assert await store.get(key) == 0 and await store.get_expiry(key) == clock[0]  # absent: 0, ends now
    assert await store.incr(key, 60) == 1
    expiry = await store.get_expiry(key)
    assert expiry == pytest.approx(clock[0] + 60)
    clock[0] += 10
    assert await store.incr(key, 60) == 2 and await store.incr(key, 60, amount=3) == 5
    assert await store.get(key) == 5 and await store.get_expiry(key) == expiry  # a fixed window's end
    assert await store.incr("other", 1) == 1 and await store.get("other") == 1  # keys count apart
    clock[0] = expiry  # the window is over: counted afresh from now
    assert await store.get(key) == 0
    assert await store.incr(key, 60) == 1 and await store.get_expiry(key) == pytest.approx(clock[0] + 60)
    await store.clear(key)
    assert await store.get(key) == 0
    await store.clear("never-there")

    async def count() -> None:
        counts.append(await store.incr("raced", 60))

    counts: list[int] = []
    async with anyio.create_task_group() as tg:  # concurrent counts are never lost or repeated
        for _ in range(12):
            tg.start_soon(count)
    assert sorted(counts) == list(range(1, 13)) and await store.get("raced") == 12

    limiter, item = FixedWindowRateLimiter(store), RateLimitItemPerMinute(2)  # the strategy over it
    assert [await limiter.hit(item, "caller") for _ in range(3)] == [True, True, False]
    stats = await limiter.get_window_stats(item, "caller")
    assert stats.remaining == 0 and stats.reset_time == pytest.approx(clock[0] + 60)
    await store.reset()
    assert await store.get("raced") == 0 and await limiter.hit(item, "caller")
    if not isinstance(store, MemoryStorage):  # ours: a count and its window's end from one write
        assert isinstance(store, WindowCounter)
        assert await store.incr_window("both", 60) == (1, pytest.approx(clock[0] + 60))
        clock[0] += 5
        assert await store.incr_window("both", 60, amount=2) == (3, pytest.approx(clock[0] + 55))
        assert await store.get("both") == 3


async def test_a_count_lost_to_other_processes_every_time_is_refused(bus: Bus) -> None:
    """Past ``MAX_CAS_ATTEMPTS`` lost compare-and-sets the count gives up with a named error."""
    store = await KeyValueStore.open(JetStream(bus), namespace=f"contended-{time.monotonic_ns()}")
    other = KeyValueStore(store._bucket, namespace=store.namespace)  # "another process" on the same bucket
    read = store._read

    async def read_then_lose(key: str) -> tuple[object, int]:
        got = await read(key)
        await other.incr(key, 60)  # another process counts between our read and our write
        return got

    store._read = read_then_lose  # type: ignore[method-assign]
    with pytest.raises(CounterContendedError) as raised:
        await store.incr("hot", 60)
    assert raised.value.attempts == MAX_CAS_ATTEMPTS and "hot" in str(raised.value)
    assert await other.get("hot") == MAX_CAS_ATTEMPTS  # none of ours counted, none of theirs lost
