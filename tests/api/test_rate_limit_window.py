"""The in-process fixed-window rate limiter: counts, 429 with its headers, window reset, bounded memory.

The windows are counted by the ``limits`` library's fixed window over
:class:`api._window_store.WindowStore`. The shared
(JetStream KV) storage is checked against the same contract in ``test_shared_state.py``, with two apps,
and through a real ``neurectomy serve`` in ``test_auth_limits_metrics.py``; here the clock is moved by
patching the ``time`` the middleware and the storage read, so that a window's end is
reached without waiting.
"""

from __future__ import annotations

import anyio
import httpx
import pytest
from litestar import Litestar, get

from api import _limits, _window_store
from api._limits import LimitsConfig, RateLimitMiddleware, rate_limit_middleware
from api._window_store import SWEEP_EVERY, WindowStore
from api.errors import EXCEPTION_HANDLERS

pytestmark = pytest.mark.anyio


@get("/v1/thing")
async def thing() -> dict[str, bool]:
    return {"ok": True}


@get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


def _app(limiter: RateLimitMiddleware) -> Litestar:
    return Litestar(
        route_handlers=[thing, health],
        middleware=[limiter],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        logging_config=None,
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A clock for the middleware and the window storage; move it by adding to ``clock[0]``."""
    now = [1_000_000.0]
    monkeypatch.setattr(_limits, "time", lambda: now[0])
    monkeypatch.setattr(_window_store, "time", lambda: now[0])
    return now


async def test_a_window_allows_its_limit_then_refuses_until_it_ends(clock: list[float]) -> None:
    limiter = rate_limit_middleware(LimitsConfig(rate_limit=3, rate_window="minute"))
    assert isinstance(limiter, RateLimitMiddleware) and isinstance(limiter.storage, WindowStore)
    transport = httpx.ASGITransport(app=_app(limiter), client=("10.0.0.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        allowed = [await client.get("/v1/thing") for _ in range(3)]
        assert [r.status_code for r in allowed] == [200, 200, 200]
        assert [r.headers["ratelimit-remaining"] for r in allowed] == ["2", "1", "0"]
        assert allowed[0].headers["ratelimit-policy"] == "3; w=60"
        assert allowed[0].headers["ratelimit-limit"] == "3"
        assert allowed[0].headers["ratelimit-reset"] == "60"
        clock[0] += 20
        refused = await client.get("/v1/thing")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "40"
        assert refused.headers["ratelimit-remaining"] == "0" and refused.headers["ratelimit-reset"] == "40"
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "3 requests per 60 s" in refused.json()["error"]["message"]
        assert (await client.get("/health")).status_code == 200  # open paths are not counted
        clock[0] += 40  # the window ends: a fresh one
        again = await client.get("/v1/thing")
        assert again.status_code == 200 and again.headers["ratelimit-remaining"] == "2"
        assert again.headers["ratelimit-reset"] == "60"


async def test_each_caller_has_its_own_window() -> None:
    limiter = RateLimitMiddleware(LimitsConfig(rate_limit=1, rate_window="hour"), WindowStore())
    app = _app(limiter)
    for address, expected in (("10.0.0.1", 200), ("10.0.0.1", 429), ("10.0.0.2", 200)):
        transport = httpx.ASGITransport(app=app, client=(address, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/v1/thing")
            assert response.status_code == expected, address
            assert response.headers["ratelimit-policy"] == "1; w=3600"


async def test_concurrent_requests_of_one_caller_never_exceed_the_limit() -> None:
    limiter = RateLimitMiddleware(LimitsConfig(rate_limit=5, rate_window="hour"), WindowStore())
    transport = httpx.ASGITransport(app=_app(limiter), client=("10.0.0.9", 4000))
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def call() -> None:
            statuses.append((await client.get("/v1/thing")).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(call)
    assert sorted(statuses) == [200] * 5 + [429] * 7


async def test_expired_windows_are_swept(clock: list[float]) -> None:
    limiter = RateLimitMiddleware(LimitsConfig(rate_limit=5, rate_window="second"), WindowStore())
    storage = limiter.storage
    assert isinstance(storage, WindowStore)
    for i in range(1000):
        await limiter.count(f"ip:caller-{i}")
    assert len(storage.windows) == 1000
    clock[0] += 2  # every window is over: the next sweep (after SWEEP_EVERY new callers) drops them all
    for i in range(SWEEP_EVERY):
        assert await limiter.count(f"ip:late-{i}") == (4, 1)
    assert len(storage.windows) == SWEEP_EVERY  # only the late callers' windows are left
    assert all("/ip:late-" in k for k in storage.windows)
