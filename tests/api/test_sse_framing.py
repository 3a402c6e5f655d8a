"""Every event stream of the API, read raw from ``neurectomy serve`` and parsed with httpx-sse.

One framing for all (``api._sse``): LF line ends, each event ended by an empty line, no CR anywhere.
Each route's events are also checked for what its clients rely on (names, order, the terminator).
Ollama's ``/api/chat`` and ``/api/generate`` stream NDJSON, not SSE: their lines are checked as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource, ServerSentEvent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def http(service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service, timeout=120) as c:
        yield c


def _framed(raw: bytes) -> list[ServerSentEvent]:
    """The events of an SSE body, after checking its framing."""
    assert raw and b"\r" not in raw, "one framing: LF only"
    assert raw.endswith(b"\n\n"), "the last event is ended by an empty line"
    for block in raw[:-2].split(b"\n\n"):
        assert block and all(line.startswith((b"event: ", b"data: ")) for line in block.split(b"\n")), block
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    events = list(EventSource(response).iter_sse())
    assert len(events) == raw.count(b"\n\n")
    return events


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> list[ServerSentEvent]:
    with http.stream("POST", path, json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return _framed(r.read())


def test_chat_completions_stream(http: httpx.Client) -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "Count: one, two,"}],
        "max_tokens": 4,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = _post(http, "/v1/chat/completions", body)
    assert {e.event for e in events} == {"message"}
    assert events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1


def test_completions_stream_of_two_choices(http: httpx.Client) -> None:
    body = {"model": "m", "prompt": "One, two,", "max_tokens": 3, "temperature": 0, "n": 2, "stream": True}
    events = _post(http, "/v1/completions", body)
    assert events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    assert {c["choices"][0]["index"] for c in chunks} == {0, 1}
    finished = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]]
    assert len(finished) == 2


def test_responses_stream(http: httpx.Client) -> None:
    events = _post(
        http, "/v1/responses", {"model": "m", "input": "One, two,", "max_output_tokens": 4, "stream": True}
    )
    data = [e.json() for e in events]
    assert [e.event for e in events] == [d["type"] for d in data]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    assert data[0]["type"] == "response.created"
    assert data[-1]["type"] in ("response.completed", "response.incomplete")


def test_generate_stream(http: httpx.Client) -> None:
    events = _post(
        http, "/v1/generate", {"prompt": "One, two,", "max_tokens": 4, "temperature": 0, "stream": True}
    )
    assert events[-1].event == "done" and {e.event for e in events[:-1]} == {"token"}
    text = "".join(e.json()["text"] for e in events[:-1])
    assert text == events[-1].json()["text"]


def test_llama_server_completion_stream(http: httpx.Client) -> None:
    events = _post(
        http, "/completion", {"prompt": "One, two,", "n_predict": 4, "temperature": 0, "stream": True}
    )
    data = [e.json() for e in events]
    assert [d["stop"] for d in data] == [False] * (len(data) - 1) + [True]
    assert data[-1]["tokens_predicted"] >= 1


def test_task_events(http: httpx.Client) -> None:
    plan = {"steps": [{"id": "s", "agent": "statistician", "input": {"values": [2, 4]}}]}
    created = http.post("/v1/tasks", json={"plan": plan})
    assert created.status_code in (200, 202), created.text
    task_id = created.json()["id"]
    with http.stream("GET", f"/v1/tasks/{task_id}/events") as r:
        assert r.status_code == 200
        events = _framed(r.read())  # the stream ends after a terminal status
    assert {e.event for e in events} == {"task"}
    assert events[-1].json()["status"] == "succeeded"


def test_dashboard_events(http: httpx.Client) -> None:
    with http.stream("GET", "/v1/dashboard/events") as r:
        assert r.status_code == 200
        raw = b""
        for part in r.iter_bytes():
            raw += part
            if b"\n\n" in raw:
                break
    first = _framed(raw[: raw.index(b"\n\n") + 2])
    assert [e.event for e in first] == ["snapshot"] and "models" in first[0].json()


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
def test_ollama_streams_are_ndjson(http: httpx.Client, path: str) -> None:
    body: dict[str, Any] = {"model": "m", "options": {"num_predict": 3, "temperature": 0}}
    body |= (
        {"prompt": "One, two,"}
        if path == "/api/generate"
        else {"messages": [{"role": "user", "content": "Hi"}]}
    )
    with http.stream("POST", path, json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        lines = r.read().split(b"\n")
    assert lines[-1] == b""
    objects = [json.loads(line) for line in lines[:-1]]
    assert [o["done"] for o in objects] == [False] * (len(objects) - 1) + [True]
