"""The pushed stream path (`api._push`) under real clients and faults: real uvicorn, NATS, agent and model.

One stack per module and event loop (uvloop, as ``serve`` runs, and asyncio's own loop): the generator
agent (Gemma 3 270M, every decode step its own chunk so that the events are the same run after run), an
orchestrator and the app behind uvicorn, and a second app whose requests have a 3 s deadline. A thin ASGI
wrapper can change the app's ``send`` per request (header ``x-test-send``): hold it on a gate (what
uvicorn's flow control does for a slow client), pass a bare ``yield`` (``asyncio.sleep(0)``) or take an
anyio lock in it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import ollama
import openai
import pytest
import uvicorn

import api.openai.routes as openai_routes
from agents import AgentRunner, Bus, GeneratorAgent
from agents.errors import NoRespondersError
from agents.protocol import GenerateOutput
from api import create_app
from api._sse import sse_response
from bridges import RyotBridge
from neurectomy.server.natsserver import EmbeddedNats
from neurectomy.testing import free_port
from orchestrator import Orchestrator
from orchestrator.config import OrchestratorConfig
from ryot import RyotEngine

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

LONG = "Write a very long story about a lighthouse keeper, the sea and the ships that pass."
SHORT_DEADLINE_S = 3.0


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param(("asyncio", {"use_uvloop": False}), id="asyncio"),
    ],
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


class Recorder:
    """The app's metrics as the orchestrator's observer, with every call counted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.first_tokens = 0
        self.inter_tokens = 0
        self.generations = 0
        self.hops: list[str] = []

    def hop(self, team: str, agent: str, outcome: str, seconds: float) -> None:
        if agent == "generator":
            self.hops.append(outcome)
        self.inner.hop(team, agent, outcome, seconds)

    def first_token(self, seconds: float) -> None:
        self.first_tokens += 1
        self.inner.first_token(seconds)

    def inter_token(self, seconds: float) -> None:
        self.inter_tokens += 1
        self.inner.inter_token(seconds)

    def generation(self, output: GenerateOutput) -> None:
        self.generations += 1
        self.inner.generation(output)


@dataclass
class SendModes:
    """The ASGI wrapper's state: gates by name, and what the held sends did."""

    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    def wrap(self, app: Any) -> Any:
        async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
            mode = dict(scope.get("headers", ())).get(b"x-test-send", b"").decode()
            if scope["type"] != "http" or not mode:
                await app(scope, receive, send)
                return

            async def modified(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.body" and message.get("more_body"):
                    if mode.startswith("gate:"):
                        name = mode.removeprefix("gate:")
                        self.held[name] = self.held.get(name, 0) + 1
                        await self.gates[name].wait()
                    elif mode == "sleep0":
                        await asyncio.sleep(0)
                    elif mode == "anyio-lock":
                        async with self.lock:
                            pass
                await send(message)

            await app(scope, receive, modified)

        return wrapped


@dataclass
class Stack:
    url: str
    short_url: str
    engine: RyotEngine
    recorder: Recorder
    modes: SendModes
    loop_errors: list[dict[str, Any]]
    app: Any
    orchestrator: Orchestrator

    async def idle(self, tasks_before: int | None = None) -> None:
        """Wait until the model runs nothing (and the loop's tasks are back to ``tasks_before``)."""
        with anyio.fail_after(30):
            while self.engine.active or self.engine.queue_depth:
                await anyio.sleep(0.02)
            while tasks_before is not None and len(asyncio.all_tasks()) > tasks_before:
                await anyio.sleep(0.02)


async def _serve(app: Any, tg: Any) -> tuple[uvicorn.Server, anyio.Event, str]:
    """Serve ``app`` with uvicorn on a free port: the server, an event set when it has shut down, its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None, access_log=False)
    )
    stopped = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve()
        finally:
            stopped.set()

    tg.start_soon(serve)
    with anyio.fail_after(20):
        while not server.started:
            await anyio.sleep(0.01)
    return server, stopped, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
async def stack(nats_server: EmbeddedNats, engine: RyotEngine, anyio_backend: Any) -> AsyncIterator[Stack]:
    loop = asyncio.get_running_loop()
    assert ("uvloop" in type(loop).__module__) == anyio_backend[1]["use_uvloop"]  # one stack per loop
    loop_errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: loop_errors.append(context))
    async with await Bus.connect(nats_server.url, name="tests-push-faults") as bus:
        async with anyio.create_task_group() as tg:
            runner = AgentRunner(bus, GeneratorAgent(RyotBridge(engine, chunk_interval_s=0)), concurrency=4)
            await tg.start(runner.run)
            orchestrator = Orchestrator(bus)
            await tg.start(orchestrator.run)
            short = Orchestrator(bus, OrchestratorConfig(default_deadline_s=SHORT_DEADLINE_S))
            await tg.start(short.run)
            app = create_app(orchestrator)
            recorder = Recorder(orchestrator.observer)
            orchestrator.observer = recorder
            modes = SendModes()
            server, stopped, url = await _serve(modes.wrap(app), tg)
            short_server, short_stopped, short_url = await _serve(create_app(short), tg)
            try:
                yield Stack(url, short_url, engine, recorder, modes, loop_errors, app, orchestrator)
            finally:
                server.should_exit = short_server.should_exit = True
                with anyio.fail_after(30):  # uvicorn closes its connections before the loop closes
                    await stopped.wait()
                    await short_stopped.wait()
                tg.cancel_scope.cancel()
    loop.set_exception_handler(previous)


def uncollected_combination(params: dict[str, Any]) -> bool:
    """On asyncio's own loop each check runs for the native route only (uvloop, serve's loop, runs all).

    Read by ``tests/api/conftest.py``: these combinations are deselected, not collected.
    """
    return not params["anyio_backend"][1]["use_uvloop"] and (
        params.get("route", "generate") != "generate" or "end" in params
    )


@pytest.fixture
def checked(stack: Stack) -> Iterator[Stack]:
    """The stack, with no error reported to the event loop (e.g. "Task was destroyed but it is pending")."""
    stack.loop_errors.clear()
    yield stack
    assert stack.loop_errors == []


# ----------------------------------------------------------------- routes and their events

ROUTES: dict[str, tuple[str, dict[str, Any]]] = {
    "generate": ("/v1/generate", {"prompt": LONG, "stream": True}),
    "openai-chat": (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": LONG}], "stream": True},
    ),
    "openai-text": ("/v1/completions", {"prompt": LONG, "stream": True}),
    "ollama-generate": ("/api/generate", {"prompt": LONG, "raw": True}),
    "ollama-chat": ("/api/chat", {"messages": [{"role": "user", "content": LONG}]}),
}


def _body(route: str, max_tokens: int, **more: Any) -> dict[str, Any]:
    path, body = ROUTES[route]
    body = {**body, **more} if route == "generate" else {"model": "x", **body, **more}
    if path.startswith("/api/"):
        body["options"] = {"num_predict": max_tokens, "temperature": 0, "seed": 1}
    else:
        body.update(max_tokens=max_tokens, temperature=0, seed=1)
    return body


def _events(route: str, raw: bytes) -> list[Any]:
    """The stream's events: SSE ``(event, data)`` pairs, or the NDJSON objects."""
    text = raw.decode()
    if ROUTES[route][0].startswith("/api/"):
        return [json.loads(line) for line in text.splitlines() if line]
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in re.split(r"\r?\n", block))
        events.append((fields.get("event"), fields["data"]))
    return events


def _is_delta(route: str, event: Any) -> bool:
    if route.startswith("ollama"):
        return event.get("done") is False
    if route == "generate":
        return bool(event[0] == "token")
    data = event[1]
    if data == "[DONE]":
        return False
    choices = json.loads(data).get("choices") or [{}]
    text = choices[0]["text"] if route == "openai-text" else (choices[0].get("delta") or {}).get("content")
    return bool(choices[0].get("finish_reason") is None and text)


def _is_error(route: str, event: Any) -> bool:
    if route.startswith("ollama"):
        return "error" in event
    if route == "generate":
        return bool(event[0] == "error")
    return event[1] != "[DONE]" and "error" in json.loads(event[1])


def _complete(route: str, raw: bytes) -> bytes:
    """The whole events of ``raw`` (what comes before the last event separator)."""
    ends = [m.end() for m in re.finditer(rb"\n" if route.startswith("ollama") else rb"\r?\n\r?\n", raw)]
    return raw[: ends[-1]] if ends else b""


async def _read_deltas(route: str, response: httpx.Response, n: int) -> bytes:
    """Read the response until ``n`` delta events have come; the bytes read."""
    raw = b""
    async for part in response.aiter_raw():
        raw += part
        if sum(_is_delta(route, e) for e in _events(route, _complete(route, raw))) >= n:
            return raw
    raise AssertionError(f"the stream ended before {n} deltas: {raw[-300:]!r}")


def _same_events(route: str, a: bytes, b: bytes) -> bool:
    """The same bytes but for what differs between two requests: ids, time stamps and durations, cached
    prompt tokens (the second request reuses the first one's prefix)."""

    def norm(raw: bytes) -> bytes:
        raw = re.sub(rb'"(created(_at)?|id|cached_tokens)": ?("[^"]*"|\d+)', b"T", raw)
        return re.sub(rb'"(\w+_duration|\w+_s)": ?[0-9.e+-]+', b"D", raw)

    return norm(a) == norm(b)


# ----------------------------------------------------------------- tests


@pytest.mark.parametrize("route", list(ROUTES))
async def test_client_disconnect_mid_stream_cancels_the_generation_and_leaks_no_task(
    checked: Stack, route: str
) -> None:
    stack = checked
    await stack.idle()
    tasks_before = len(asyncio.all_tasks())
    hops = len(stack.recorder.hops)
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as client:
        async with client.stream("POST", ROUTES[route][0], json=_body(route, 2000)) as response:
            assert response.status_code == 200
            await _read_deltas(route, response, 3)
            assert stack.engine.active == 1  # still generating when the client leaves
    await stack.idle(tasks_before)  # cancelled on the agent: the model runs nothing, no task is left
    with anyio.fail_after(10):  # (OpenAI and Ollama first ask for the model "x": a not_found hop)
        while "cancelled" not in stack.recorder.hops[hops:]:
            await anyio.sleep(0.02)
    assert stack.recorder.hops[hops:][-1] == "cancelled"


@pytest.mark.parametrize("route", ["generate", "openai-chat", "ollama-chat"])
async def test_a_held_send_queues_later_tokens_and_writes_them_in_order(checked: Stack, route: str) -> None:
    stack, name = checked, f"release-{route}"
    stack.modes.gates[name] = asyncio.Event()
    path = ROUTES[route][0]
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as client:
        whole = await client.post(path, json=_body(route, 16), headers={"x-test-send": "plain"})
        inter = stack.recorder.inter_tokens
        headers = {"x-test-send": f"gate:{name}"}
        async with client.stream("POST", path, json=_body(route, 16), headers=headers) as response:
            with anyio.fail_after(60):  # tokens keep coming while the first write is held
                while stack.recorder.inter_tokens < inter + 5:
                    await anyio.sleep(0.02)
            assert stack.modes.held[name] == 1  # one send waits; the later bodies queue behind it
            stack.modes.gates[name].set()
            raw = await response.aread()
    assert _same_events(route, raw, whole.content)
    assert not _is_error(route, _events(route, raw)[-1])


@pytest.mark.parametrize("route", ["generate", "openai-text", "ollama-generate"])
async def test_a_slow_client_that_leaves_while_its_send_is_held_cancels_the_generation(
    checked: Stack, route: str
) -> None:
    stack, name = checked, f"leave-{route}"
    stack.modes.gates[name] = asyncio.Event()
    await stack.idle()
    tasks_before = len(asyncio.all_tasks())
    hops = len(stack.recorder.hops)
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as client:
        headers = {"x-test-send": f"gate:{name}"}
        async with client.stream("POST", ROUTES[route][0], json=_body(route, 2000), headers=headers):
            inter = stack.recorder.inter_tokens
            with anyio.fail_after(60):
                while stack.recorder.inter_tokens < inter + 3:  # more tokens arrive while the send is held
                    await anyio.sleep(0.02)
    await stack.idle(tasks_before)
    assert stack.modes.held[name] == 1
    with anyio.fail_after(10):
        while "cancelled" not in stack.recorder.hops[hops:]:
            await anyio.sleep(0.02)


@pytest.mark.parametrize("route", ["generate", "openai-chat", "ollama-generate"])
async def test_a_send_that_yields_bare_completes_the_stream(checked: Stack, route: str) -> None:
    path = ROUTES[route][0]
    async with httpx.AsyncClient(base_url=checked.url, timeout=60) as client:
        plain = await client.post(path, json=_body(route, 8), headers={"x-test-send": "plain"})
        yielding = await client.post(path, json=_body(route, 8), headers={"x-test-send": "sleep0"})
    assert _same_events(route, yielding.content, plain.content)
    assert not _is_error(route, _events(route, yielding.content)[-1])


async def test_a_send_that_cannot_resume_outside_its_task_fails_the_response_visibly(checked: Stack) -> None:
    """An anyio cancel scope in ``send`` (anyio.Lock) cannot resume outside its task: the client is told."""
    await checked.idle()
    async with httpx.AsyncClient(base_url=checked.url, timeout=60) as client:
        headers = {"x-test-send": "anyio-lock"}
        with pytest.raises(httpx.RemoteProtocolError):  # the body ends without its last chunk
            async with client.stream(
                "POST", "/v1/generate", json=_body("generate", 2000), headers=headers
            ) as response:
                await response.aread()
    await checked.idle()  # and the generation was cancelled


@pytest.mark.parametrize("route", list(ROUTES))
async def test_the_deadline_mid_stream_ends_it_with_the_formats_error_event(
    checked: Stack, route: str
) -> None:
    body = _body(route, 2000)
    base = checked.url if route == "generate" else checked.short_url
    if route == "generate":
        body["timeout_s"] = SHORT_DEADLINE_S
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        response = await client.post(ROUTES[route][0], json=body)
    assert response.status_code == 200
    events = _events(route, response.content)
    assert any(_is_delta(route, e) for e in events)
    last = events[-1]
    assert _is_error(route, last), last
    if route.startswith("ollama"):
        message = last["error"]
    else:
        error = json.loads(last[1])["error"]
        assert error["code"] == "timeout"  # DeadlineExceededError's wire code
        message = error["message"]
    # whichever saw it first (bridge, agent, orchestrator) says so; none names a NATS inbox
    assert re.search(r"deadline passed|did not finish within", message), message
    assert "_INBOX" not in message
    await checked.idle()


def _pull_openai(chunks: Any, choices: Any, streams: Any, prompt_choices: list[int]) -> Any:
    """The OpenAI routes' pull path (``_sse``, kept for n > 1) for one choice too."""
    return sse_response(openai_routes._sse(chunks, choices, streams, prompt_choices))


END_CASES = {
    "stop": {"stop": ["ships"], "max_tokens": 40},  # the model writes "... the sea and the ships that pass."
    "length": {"max_tokens": 5},
}


@pytest.mark.parametrize("end", list(END_CASES))
@pytest.mark.parametrize("route", ["openai-chat", "openai-text"])
async def test_openai_pushed_bytes_are_the_pull_paths(
    checked: Stack, route: str, end: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {**_body(route, 0), **END_CASES[end], "stream_options": {"include_usage": True}}
    async with httpx.AsyncClient(base_url=checked.url, timeout=60) as client:
        pushed = await client.post(ROUTES[route][0], json=body)
        with monkeypatch.context() as patch:
            patch.setattr(openai_routes, "_stream_response", _pull_openai)
            pulled = await client.post(ROUTES[route][0], json=body)
    assert _same_events(route, pushed.content, pulled.content)
    *_, finish, usage, done = _events(route, pushed.content)
    assert json.loads(finish[1])["choices"][0]["finish_reason"] == end
    assert json.loads(usage[1])["usage"]["completion_tokens"] > 0
    assert done == (None, "[DONE]")


@pytest.mark.parametrize("end", list(END_CASES))
async def test_generate_stream_ends_with_the_non_streamed_answer(checked: Stack, end: str) -> None:
    body = {**_body("generate", 0), **END_CASES[end]}
    async with httpx.AsyncClient(base_url=checked.url, timeout=60) as client:
        streamed = await client.post("/v1/generate", json=body)
        whole = await client.post("/v1/generate", json={**body, "stream": False})
    *tokens, (kind, data) = _events("generate", streamed.content)
    assert kind == "done" and {k for k, _ in tokens} == {"token"}
    done, answer = json.loads(data), whole.json()
    assert "".join(json.loads(d)["text"] for _, d in tokens) == done["text"] == answer["text"]
    assert done["finish_reason"] == answer["finish_reason"] == end
    assert done["usage"]["completion_tokens"] == answer["usage"]["completion_tokens"]


@pytest.mark.parametrize("end", list(END_CASES))
@pytest.mark.parametrize("route", ["ollama-generate", "ollama-chat"])
async def test_ollama_stream_ends_with_the_non_streamed_answer(checked: Stack, route: str, end: str) -> None:
    case = END_CASES[end]
    body = _body(route, case["max_tokens"])
    body["options"]["stop"] = case.get("stop", [])
    async with httpx.AsyncClient(base_url=checked.url, timeout=60) as client:
        streamed = await client.post(ROUTES[route][0], json=body)
        whole = (await client.post(ROUTES[route][0], json={**body, "stream": False})).json()
    *parts, last = _events(route, streamed.content)
    key = "response" if route == "ollama-generate" else "message"

    def text(obj: dict[str, Any]) -> str:
        return str(obj[key] if key == "response" else obj[key]["content"])

    assert all(p["done"] is False for p in parts) and last["done"] is True
    assert "".join(text(p) for p in parts) == text(whole) and text(last) == ""
    assert last["done_reason"] == whole["done_reason"] == end
    assert (
        last["eval_count"] == whole["eval_count"] and last["prompt_eval_count"] == whole["prompt_eval_count"]
    )


async def test_a_pushed_stream_is_measured_once(checked: Stack) -> None:
    recorder = checked.recorder
    before = (recorder.first_tokens, recorder.inter_tokens, recorder.generations, len(recorder.hops))
    async with httpx.AsyncClient(base_url=checked.url, timeout=60) as client:
        response = await client.post("/v1/generate", json=_body("generate", 12))
    deltas = sum(kind == "token" for kind, _ in _events("generate", response.content))
    assert deltas >= 2
    assert recorder.first_tokens - before[0] == 1  # TTFT
    assert recorder.inter_tokens - before[1] == deltas - 1  # one inter-token latency per later event
    assert recorder.generations - before[2] == 1  # token counters
    assert recorder.hops[before[3] :] == ["ok"]  # the hop, once


async def test_openai_sdk_reads_a_pushed_stream_and_leaving_it_cancels_the_generation(checked: Stack) -> None:
    messages: Any = [{"role": "user", "content": LONG}]
    async with openai.AsyncOpenAI(base_url=f"{checked.url}/v1", api_key="unused", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="x",
            messages=messages,
            max_tokens=40,
            temperature=0,
            stop=["ships"],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        *body, finish, usage = chunks
        assert body[0].choices[0].delta.role == "assistant"
        assert "lighthouse" in "".join(c.choices[0].delta.content or "" for c in body)
        assert finish.choices[0].finish_reason == "stop"
        assert usage.usage is not None and usage.usage.completion_tokens > 0
        long = await client.completions.create(model="x", prompt=LONG, max_tokens=2000, stream=True)
        async with long:
            n = 0
            async for _ in long:
                n += 1
                if n == 3:
                    break  # leaving the SDK's stream closes the connection
    await checked.idle()
    with anyio.fail_after(10):
        while checked.recorder.hops[-1] != "cancelled":
            await anyio.sleep(0.02)


async def test_ollama_client_reads_a_pushed_stream(checked: Stack) -> None:
    async with ollama.AsyncClient(host=checked.url, timeout=60) as client:
        await _ollama_streams(client)


async def _ollama_streams(client: ollama.AsyncClient) -> None:
    options = {"num_predict": 6, "temperature": 0, "seed": 1}
    parts = [
        p async for p in await client.generate(model="x", prompt=LONG, raw=True, options=options, stream=True)
    ]
    whole = await client.generate(model="x", prompt=LONG, raw=True, options=options, stream=False)
    assert parts[-1].done and parts[-1].done_reason == "length" and parts[-1].eval_count == 6
    assert "".join(p.response for p in parts) == whole.response
    chat = [
        p
        async for p in await client.chat(
            model="x", messages=[{"role": "user", "content": LONG}], options=options, stream=True
        )
    ]
    assert chat[-1].done and chat[-1].eval_count == 6 and "".join(p.message.content or "" for p in chat)


async def test_a_failure_after_the_stream_started_but_before_the_response_cancels_the_generation(
    checked: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OpenAI routes look up the served model's name after the first token (once, then cached)."""

    async def discovery_fails() -> list[Any]:
        raise NoRespondersError("discovery failed (injected)")

    monkeypatch.setattr(checked.app.state, "openai_model", None, raising=False)
    monkeypatch.setattr(checked.orchestrator, "agents", discovery_fails)
    hops = len(checked.recorder.hops)
    async with httpx.AsyncClient(base_url=checked.url, timeout=60) as client:
        response = await client.post(ROUTES["openai-chat"][0], json=_body("openai-chat", 2000))
    assert response.status_code == 503
    await checked.idle()  # the generation that had started was cancelled
    assert checked.recorder.hops[hops:][-1] == "cancelled"


async def test_a_held_stream_does_not_hold_the_others_on_the_same_connection(checked: Stack) -> None:
    """Every stream's chunks arrive in the one NATS read loop: a held send must not block the next stream."""
    name = "other-streams"
    checked.modes.gates[name] = asyncio.Event()
    async with httpx.AsyncClient(base_url=checked.url, timeout=60) as client:
        headers = {"x-test-send": f"gate:{name}"}
        async with client.stream("POST", "/v1/generate", json=_body("generate", 2000), headers=headers):
            with anyio.fail_after(60):
                while not checked.modes.held.get(name):
                    await anyio.sleep(0.02)
            other = await client.post("/v1/generate", json=_body("generate", 8))  # while the first is held
            assert checked.modes.held[name] == 1 and not checked.modes.gates[name].is_set()
    events = _events("generate", other.content)
    assert events[-1][0] == "done" and json.loads(events[-1][1])["usage"]["completion_tokens"] == 8
    await checked.idle()
