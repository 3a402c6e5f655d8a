"""The trust boundary against a real ``neurectomy serve`` (its own private nats-server, auth on).

* a foreign ``Host`` (DNS rebinding) and a foreign ``Origin`` are refused before any handler;
* a ``write`` key gets 403 from every admin operation, whatever the path: ``POST /v1/agents/{name}``,
  plans in ``/v1/tasks`` (at submit, and at run for a step whose agent is chosen later),
  ``workflow-runner``, and a raw NATS request that skips the router (the agent checks too);
* NATS refuses a connection without credentials, and a role cannot publish what it may not;
* one caller's tiny deadlines do not open the generator's breaker for everyone;
* a client reusing another caller's ``X-Request-Id`` cannot cancel that caller's generation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agents import Bus, ForbiddenError
from agents.messaging import Message
from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore
from orchestrator import CallContext
from orchestrator._dispatch import call_for_output

if TYPE_CHECKING:
    from tests.neurectomy.conftest import Service

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


def test_a_foreign_host_or_origin_is_refused_before_any_handler(secured: Service) -> None:
    body = {"tenant": "x", "scopes": ["admin"]}
    rebound = httpx.post(f"{secured.url}/v1/keys", json=body, headers={"Host": "evil.test"}, timeout=10)
    assert rebound.status_code == 400, rebound.text
    assert rebound.json()["error"]["field"] == "Host"
    # Even the right credential does not get through a foreign Host.
    with_admin = httpx.post(
        f"{secured.url}/v1/keys",
        json=body,
        headers=secured.bearer(secured.admin_key, Host="evil.test:8420"),
        timeout=10,
    )
    assert with_admin.status_code == 400
    assert KeyStore(secured.state_dir / KEYS_FILE_NAME).list_keys()[-1].tenant == "globex"  # nothing made
    assert httpx.get(f"{secured.url}/health", headers={"Host": "evil.test"}, timeout=10).status_code == 400
    port = secured.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert httpx.get(f"{secured.url}/health", headers={"Host": host}, timeout=10).status_code == 200
    # A page of another site cannot post with the right Host either (a form's text/plain body).
    cross = httpx.post(
        f"{secured.url}/v1/agents/sentiment",
        content=json.dumps({"input": "great"}),
        headers=secured.bearer(
            secured.write_key, Origin="http://evil.test", **{"Content-Type": "text/plain"}
        ),
        timeout=10,
    )
    assert cross.status_code == 403 and cross.json()["error"]["field"] == "Origin"
    # CORS is off by default: a preflight gets no Access-Control-Allow-Origin.
    preflight = httpx.options(
        f"{secured.url}/v1/generate",
        headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_a_websocket_from_a_foreign_origin_is_refused(secured: Service) -> None:
    ws = secured.url.replace("http://", "ws://") + "/v1/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws,
            origin="http://evil.test",
            additional_headers=secured.bearer(secured.write_key),
        ):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    async with connect(
        ws, additional_headers=secured.bearer(secured.write_key)
    ) as ok:  # no Origin: not a browser
        await ok.send(json.dumps({"type": "ping", "id": "1"}))
        assert json.loads(await ok.recv())["type"] in ("pong", "error")


ADMIN_CALLS = [
    ("snapshotter", {"op": "restore", "name": "s1"}),
    ("snapshotter", {"op": "list"}),
    ("snapshotter", {}),
    ("key-warden", {"scope": "kek"}),
    ("key-warden", {"scope": "data_key"}),
    ("indexer", {"op": "compact"}),
    ("rsu-manager", {"action": "gc"}),
    ("rsu-manager", {"action": "release", "frame": "AAAA"}),
]


def test_a_write_key_gets_403_from_every_admin_operation_on_every_path(secured: Service) -> None:
    with httpx.Client(base_url=secured.url, headers=secured.bearer(secured.write_key), timeout=60) as http:
        for agent, payload in ADMIN_CALLS:
            # Also with input the agent would refuse: authorisation comes before validation.
            for body in (payload, {**payload, "unexpected": 1}):
                direct = http.post(f"/v1/agents/{agent}", json={"input": body})
                assert direct.status_code == 403, (agent, body, direct.text)
                assert "admin" in direct.json()["error"]["message"]
            plan = {"steps": [{"id": "s", "agent": agent, "input": payload}]}
            task = http.post("/v1/tasks", json={"plan": plan})
            assert task.status_code == 403, (agent, task.text)
            assert task.json()["error"]["field"] == "plan.steps.s"
            flow = http.post("/v1/agents/workflow-runner", json={"input": {"plan": plan}})
            assert flow.status_code == 403, (agent, flow.text)
        # An operation given by reference needs the agent's strictest scope.
        ref = {"steps": [{"id": "s", "agent": "indexer", "input": {"op": "${input.op}"}}]}
        assert http.post("/v1/tasks", json={"plan": ref, "input": {"op": "status"}}).status_code == 403
        as_yaml = "steps:\n  - id: s\n    agent: key-warden\n    input: {scope: kek}\n"
        assert http.post("/v1/tasks", json={"plan": as_yaml}).status_code == 403
        # A capability step is authorised once its agent is chosen: the task fails, nothing rotates.
        chosen = {"steps": [{"id": "s", "capability": "rotate-kek", "input": {"scope": "kek"}, "retries": 0}]}
        submitted = http.post("/v1/tasks", json={"plan": chosen})
        assert submitted.status_code == 202, submitted.text
        record = wait_task(http, submitted.json()["id"])
        assert record["status"] == "failed" and record["error"]["code"] == "forbidden", record
        # The scope is per operation: the same key may read the index status.
        status = http.post("/v1/agents/indexer", json={"input": {"op": "status"}})
        assert status.status_code == 200 and status.json()["output"]["op"] == "status"
    with httpx.Client(base_url=secured.url, headers=secured.bearer(secured.admin_key), timeout=60) as http:
        listed = http.post("/v1/agents/snapshotter", json={"input": {"op": "list"}})
        assert listed.status_code == 200 and listed.json()["output"]["op"] == "list"


def wait_task(http: httpx.Client, task_id: str, timeout_s: float = 60) -> dict[str, object]:
    with http.stream("GET", f"/v1/tasks/{task_id}/events", timeout=timeout_s) as events:
        record: dict[str, object] = {}
        for line in events.iter_lines():
            if line.startswith("data:"):
                record = json.loads(line[5:])
        return record


async def test_the_agent_enforces_the_scope_header_itself(secured: Service) -> None:
    """A request that skips the router (straight to the agent's subject) is refused by the agent."""
    creds = secured.credentials()
    async with await Bus.connect(secured.nats_url, name="test-api", auth=creds.auth("api")) as bus:
        ctx = CallContext.with_timeout(10, tenant="acme", scopes=frozenset({"read", "write"}))
        with pytest.raises(ForbiddenError) as refused:
            await call_for_output(
                bus, "storage", "snapshotter", {"op": "restore", "name": "s1"}, ctx,
                accept_timeout_s=5, observer=None,
            )  # fmt: skip
        assert "admin" in refused.value.message
        listed = await call_for_output(
            bus, "storage", "snapshotter", {"op": "list"},
            CallContext.with_timeout(10, tenant="acme"), accept_timeout_s=5, observer=None,
        )  # fmt: skip
        assert listed["op"] == "list"


async def test_nats_refuses_strangers_and_holds_each_role_to_its_permissions(secured: Service) -> None:
    with pytest.raises(ConnectionError, match="Authorization Violation"):
        await Bus.connect(secured.nats_url, name="stranger")
    creds = secured.credentials()
    with pytest.raises(ConnectionError, match="Authorization Violation"):
        wrong = creds.auth("api")
        await Bus.connect(secured.nats_url, name="guess", auth=type(wrong)(user="api", password="guess"))
    async with (
        await Bus.connect(secured.nats_url, name="api", auth=creds.auth("api")) as api,
        await Bus.connect(secured.nats_url, name="agent", auth=creds.auth("agent")) as agent,
        await Bus.connect(secured.nats_url, name="composer", auth=creds.auth("composer")) as listener,
    ):
        for subject, publisher, allowed_publisher in (
            ("neurectomy.cancel.someone-else", agent, api),  # an agent cannot cancel anyone's call
            ("neurectomy.agent.storage.fetcher", agent, api),  # nor call an agent with a forged tenant
            ("neurectomy.heartbeat.storage.fetcher", api, agent),  # the API cannot pose as an agent
        ):
            got: list[Message] = []
            arrived = anyio.Event()

            async def record(msg: Message, got: list[Message] = got, arrived: anyio.Event = arrived) -> None:
                got.append(msg)
                if msg.data == b"marker":
                    arrived.set()

            async with listener.subscription(subject, record):
                await listener.flush()
                await publisher.publish(subject, b"forbidden", {"Neurectomy-Tenant": "acme"})
                await publisher.flush()
                await allowed_publisher.publish(subject, b"marker")
                with anyio.fail_after(10):
                    await arrived.wait()
            assert [m.data for m in got] == [b"marker"], subject


def test_tiny_deadlines_do_not_open_the_breaker_for_others(secured: Service) -> None:
    with httpx.Client(base_url=secured.url, timeout=120) as http:
        tiny = {"input": {"prompt": "Hello", "max_tokens": 8}, "timeout_s": 0.001, "retries": 0}
        codes = [
            http.post(
                "/v1/agents/generator", json=tiny, headers=secured.bearer(secured.other_key)
            ).status_code
            for _ in range(8)
        ]
        assert set(codes) == {504}, codes
        agents = http.get("/v1/agents", headers=secured.bearer(secured.write_key)).json()
        generator = next(a for a in agents if a["name"] == "generator")
        assert generator["health"] == "up", generator
        normal = {"input": {"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}}
        answered = http.post("/v1/agents/generator", json=normal, headers=secured.bearer(secured.write_key))
        assert answered.status_code == 200, answered.text
        assert answered.json()["agent"] == "generator"


@pytest.mark.timeout(300)
def test_a_reused_request_id_does_not_cancel_another_callers_call(secured: Service) -> None:
    body = {"prompt": "Count slowly: one, two, three,", "max_tokens": 48, "temperature": 0, "stream": True}
    with httpx.Client(base_url=secured.url, timeout=120) as http:
        headers_b = secured.bearer(secured.other_key, **{"X-Request-Id": "shared-id"})
        headers_a = secured.bearer(secured.write_key, **{"X-Request-Id": "shared-id"})
        with http.stream("POST", "/v1/generate", json=body, headers=headers_b) as attacker:
            attacker_lines = attacker.iter_lines()
            assert first_token(attacker_lines)
            with http.stream("POST", "/v1/generate", json=body, headers=headers_a) as victim:
                victim_lines = victim.iter_lines()
                assert first_token(victim_lines)
                attacker.close()  # the attacker's call is cancelled (its cancel goes out now)
                done = None
                event = ""
                for line in victim_lines:
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event in ("done", "error"):
                        done = (event, json.loads(line[5:]))
                        break
    assert done is not None and done[0] == "done", done
    assert done[1]["finish_reason"] != "cancelled", done
    assert done[1]["usage"]["completion_tokens"] > 2


def first_token(lines: Iterator[str]) -> bool:
    deadline = time.monotonic() + 60
    for line in lines:
        if line.startswith("event: token"):
            return True
        if time.monotonic() > deadline:
            break
    return False


def test_chat_sessions_belong_to_their_tenant(secured: Service) -> None:
    body = {"input": {"session": "shared-name", "message": "Hi", "max_tokens": 2, "temperature": 0}}
    with httpx.Client(base_url=secured.url, timeout=120) as http:

        def turn(key: str) -> int:
            answer = http.post("/v1/agents/chat", json=body, headers=secured.bearer(key))
            assert answer.status_code == 200, answer.text
            return int(answer.json()["output"]["turn"])

        assert [turn(secured.write_key), turn(secured.write_key)] == [1, 2]
        assert turn(secured.other_key) == 1  # another tenant's session of the same name starts afresh
