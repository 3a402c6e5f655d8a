"""The in-process fixed-window rate limiter: counts, 429 with its headers, window reset, bounded memory.

The shared (JetStream KV) limiter is checked against two apps in ``test_shared_state.py`` and through a
real ``neurectomy serve`` in ``test_auth_limits_metrics.py``; here the clock is moved by patching the
module's ``time`` so that a window's end is reached without waiting.
"""

from __future__ import annotations

import httpx
import pytest
from litestar import Litestar, get

from api import _limits
from api._limits import PRUNE_EVERY, LimitsConfig, LocalRateLimitMiddleware, rate_limit_middleware
from api.errors import EXCEPTION_HANDLERS

pytestmark = pytest.mark.anyio


@get("/v1/thing")
async def thing() -> dict[str, bool]:
    return {"ok": True}


@get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


def _app(limiter: LocalRateLimitMiddleware) -> Litestar:
    return Litestar(
        route_handlers=[thing, health],
        middleware=[limiter],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        logging_config=None,
    )


async def test_a_window_allows_its_limit_then_refuses_until_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(_limits, "time", lambda: now[0])
    limiter = rate_limit_middleware(LimitsConfig(rate_limit=3, rate_window="minute"))
    assert isinstance(limiter, LocalRateLimitMiddleware)
    transport = httpx.ASGITransport(app=_app(limiter), client=("10.0.0.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        allowed = [await client.get("/v1/thing") for _ in range(3)]
        assert [r.status_code for r in allowed] == [200, 200, 200]
        assert [r.headers["ratelimit-remaining"] for r in allowed] == ["2", "1", "0"]
        assert allowed[0].headers["ratelimit-policy"] == "3; w=60"
        assert allowed[0].headers["ratelimit-limit"] == "3"
        assert allowed[0].headers["ratelimit-reset"] == "60"
        now[0] += 20
        refused = await client.get("/v1/thing")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "40"
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "3 requests per 60 s" in refused.json()["error"]["message"]
        assert (await client.get("/health")).status_code == 200  # open paths are not counted
        now[0] += 40  # the window ends: a fresh one
        again = await client.get("/v1/thing")
        assert again.status_code == 200 and again.headers["ratelimit-remaining"] == "2"


async def test_each_caller_has_its_own_window() -> None:
    limiter = LocalRateLimitMiddleware(LimitsConfig(rate_limit=1, rate_window="hour"))
    app = _app(limiter)
    for address, expected in (("10.0.0.1", 200), ("10.0.0.1", 429), ("10.0.0.2", 200)):
        transport = httpx.ASGITransport(app=app, client=(address, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/v1/thing")).status_code == expected, address


async def test_expired_windows_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [2_000_000.0]
    monkeypatch.setattr(_limits, "time", lambda: now[0])
    limiter = LocalRateLimitMiddleware(LimitsConfig(rate_limit=5, rate_window="second"))
    for i in range(PRUNE_EVERY):
        await limiter.count(f"ip:caller-{i}")
    assert len(limiter._windows) == PRUNE_EVERY
    now[0] += 2  # every window is over
    window = await limiter.count("ip:late")
    assert window.count == 1
    assert set(limiter._windows) == {"ip:late"}  # the expired ones went when the next caller came
