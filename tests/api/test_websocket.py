"""WebSocket chat (``/v1/ws``) against the real ``neurectomy serve``, with the ``websockets`` client."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from neurectomy.settings import Settings
from ryot import RyotEngine

pytestmark = pytest.mark.anyio

QUEUED_S = 5.0
"""A request that waited longer than this for a model slot was queued behind a long generation (which
would hold its slot for minutes); a free slot is normally taken within one decode step."""
LONG_PROMPT = "Write a very long story about a lighthouse keeper, the sea and the ships that pass."


def ws_url(service: str) -> str:
    return service.replace("http://", "ws://", 1) + "/v1/ws"


async def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def recv(ws: ClientConnection, timeout_s: float = 60) -> dict[str, Any]:
    with anyio.fail_after(timeout_s):
        frame: dict[str, Any] = json.loads(await ws.recv())
    return frame


async def until_ended(ws: ClientConnection, ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Frames per generation id until each of ``ids`` got its ``done`` or ``error`` frame."""
    frames: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    open_ids = set(ids)
    while open_ids:
        frame = await recv(ws)
        assert frame["id"] in frames, frame
        assert frame["id"] in open_ids, f"frame after the end of its generation: {frame}"
        frames[frame["id"]].append(frame)
        if frame["type"] in ("done", "error"):
            open_ids.discard(frame["id"])
    return frames


async def start_long_generations(ws: ClientConnection, n: int) -> list[str]:
    """Start ``n`` long generations and wait for a token of each: then they all hold a model slot."""
    ids = [f"long-{i}" for i in range(n)]
    for frame_id in ids:
        await send(ws, {"type": "generate", "id": frame_id, "prompt": LONG_PROMPT, "max_tokens": 2000})
    streaming: set[str] = set()
    while streaming != set(ids):
        frame = await recv(ws)
        assert frame["type"] == "token", frame
        streaming.add(frame["id"])
    return ids


async def test_chat_streams_tokens_then_done_with_usage(service: str) -> None:
    async with connect(ws_url(service)) as ws:
        await send(
            ws,
            {
                "type": "chat",
                "id": "c1",
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 8,
                "temperature": 0,
            },
        )
        frames = (await until_ended(ws, {"c1"}))["c1"]
    *tokens, done = frames
    assert done["type"] == "done", done
    assert tokens and {t["type"] for t in tokens} == {"token"}
    assert "".join(t["text"] for t in tokens) == done["text"]
    usage = done["usage"]
    assert 1 <= usage["completion_tokens"] <= 8 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert done["finish_reason"] in ("stop", "length")
    assert done["model"] and done["request_id"]


async def test_generate_and_chat_run_side_by_side_on_one_socket(service: str, engine: RyotEngine) -> None:
    prompt = "The largest planet in the solar system is"
    async with connect(ws_url(service)) as ws:
        await send(ws, {"type": "generate", "id": "g", "prompt": prompt, "max_tokens": 6, "temperature": 0})
        await send(
            ws,
            {"type": "chat", "id": "c", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6},
        )
        frames = await until_ended(ws, {"g", "c"})
    for frame_id in ("g", "c"):
        *tokens, done = frames[frame_id]
        assert done["type"] == "done", done
        assert "".join(t["text"] for t in tokens) == done["text"]
    assert frames["g"][-1]["usage"]["prompt_tokens"] == len(engine.tokenize(prompt))
    assert frames["g"][-1]["usage"]["completion_tokens"] == 6
    assert frames["g"][-1]["request_id"] != frames["c"][-1]["request_id"]


async def test_ping_pong(service: str) -> None:
    async with connect(ws_url(service)) as ws:
        await send(ws, {"type": "ping"})
        assert await recv(ws, 10) == {"type": "pong", "id": None}
        await send(ws, {"type": "ping", "id": "p7"})
        assert await recv(ws, 10) == {"type": "pong", "id": "p7"}


async def test_cancel_stops_that_generation_and_frees_its_model_slot(service: str) -> None:
    slots = Settings().ryot.parallel  # the service runs with the same settings
    async with connect(ws_url(service)) as ws:
        ids = await start_long_generations(ws, slots)  # every model slot is busy now
        cancelled, kept = ids[:-1], ids[-1]
        for frame_id in cancelled:
            await send(ws, {"type": "cancel", "id": frame_id})
        frames: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        while not all(frames[i] and frames[i][-1]["type"] in ("done", "error") for i in cancelled):
            frame = await recv(ws)
            seen = frames[frame["id"]]
            assert not seen or seen[-1]["type"] == "token", f"frame after the end of its generation: {frame}"
            seen.append(frame)
        for frame_id in cancelled:
            end = frames[frame_id][-1]
            assert end["type"] == "error" and end["code"] == "cancelled", end
            assert len(frames[frame_id]) < 2000
        # A new request on the same socket gets a model slot at once: the cancelled ones freed theirs.
        # (Had they kept their slots, it would have queued behind 2000-token generations for minutes.)
        await send(ws, {"type": "generate", "id": "quick", "prompt": "Hi", "max_tokens": 2})
        frames["quick"] = []
        while not frames["quick"] or frames["quick"][-1]["type"] not in ("done", "error"):
            frame = await recv(ws)
            frames[frame["id"]].append(frame)
        quick = frames["quick"][-1]
        assert quick["type"] == "done", quick
        assert quick["timings"]["queue_s"] < QUEUED_S, quick
        # The generation that was not cancelled still streams.
        kept_tokens = len(frames[kept])
        while len(frames[kept]) < kept_tokens + 3:
            frame = await recv(ws)
            assert frame["id"] == kept and frame["type"] == "token", frame
            frames[kept].append(frame)
        await send(ws, {"type": "cancel", "id": kept})
        end = (await until_ended(ws, {kept}))[kept][-1]
        assert end["code"] == "cancelled"
        await send(ws, {"type": "ping"})
        assert (await recv(ws, 10))["type"] == "pong"


async def test_closing_the_socket_cancels_its_generations_and_frees_the_model(service: str) -> None:
    slots = Settings().ryot.parallel
    # A client's request id with a space and a dot: not usable in a NATS subject as it is.
    async with connect(ws_url(service), additional_headers={"X-Request-Id": "ide session.7 a"}) as ws:
        await start_long_generations(ws, slots)
    # The socket is closed mid-stream, with every model slot busy. Had its generations kept running,
    # this request would queue behind 2000-token generations for minutes.
    async with httpx.AsyncClient(base_url=service, timeout=60) as client:
        response = await client.post("/v1/generate", json={"prompt": "Hi", "max_tokens": 2})
    assert response.status_code == 200, response.text
    assert response.json()["timings"]["queue_s"] < QUEUED_S


@pytest.mark.parametrize(
    ("raw", "code", "field", "frame_id"),
    [
        ("{not json", "bad_request", None, None),
        ("[1, 2]", "bad_request", None, None),
        ("{}", "bad_request", "type", None),
        ('{"type": "dance"}', "bad_request", "type", None),
        ('{"type": "chat", "id": "x"}', "bad_request", "messages", "x"),
        (
            '{"type": "chat", "id": "x", "messages": [{"role": "robot", "content": "Hi"}]}',
            "bad_request",
            "messages.0.role",
            "x",
        ),
        (
            '{"type": "generate", "id": "x", "prompt": "Hi", "max_tokens": -1}',
            "bad_request",
            "max_tokens",
            "x",
        ),
        (
            '{"type": "generate", "id": "x", "prompt": "Hi", "temperature": "hot"}',
            "bad_request",
            "temperature",
            "x",
        ),
        ('{"type": "generate", "prompt": "Hi"}', "bad_request", "id", None),
        ('{"type": "generate", "id": "x", "prompt": ""}', "bad_request", "prompt", "x"),
        ('{"type": "generate", "id": "x", "prompt": "Hi", "bogus": 1}', "bad_request", "bogus", "x"),
        ('{"type": "cancel", "id": "nothing-running"}', "not_found", "id", "nothing-running"),
        (json.dumps({"type": "cancel", "id": "x" * 129}), "bad_request", "id", None),  # too long to echo
        # Valid for the frame schema, refused by the generator agent (beyond the context window).
        (
            '{"type": "generate", "id": "x", "prompt": "Hi", "max_tokens": 8000}',
            "context_length_exceeded",
            "max_tokens",
            "x",
        ),
        (b"\xff\xfe not utf-8", "bad_request", None, None),
    ],
)
async def test_bad_frames_get_an_error_frame_naming_the_field(
    service: str, raw: str | bytes, code: str, field: str | None, frame_id: str | None
) -> None:
    async with connect(ws_url(service)) as ws:
        await ws.send(raw)
        error = await recv(ws, 30)
        assert error["type"] == "error", error
        assert (error["code"], error["field"], error["id"]) == (code, field, frame_id), error
        assert error["message"]
        await send(ws, {"type": "ping"})  # the socket survives
        assert (await recv(ws, 10))["type"] == "pong"


async def test_a_running_id_cannot_be_reused(service: str) -> None:
    async with connect(ws_url(service)) as ws:
        await send(ws, {"type": "generate", "id": "same", "prompt": "Hello", "max_tokens": 24})
        await send(ws, {"type": "generate", "id": "same", "prompt": "Hello", "max_tokens": 24})
        frames = [await recv(ws)]
        while frames[-1]["type"] != "done":
            frames.append(await recv(ws))
        refused = [f for f in frames if f["type"] == "error"]
        assert len(refused) == 1 and refused[0]["field"] == "id", frames
        assert frames[-1]["type"] == "done", frames  # the first one ran to its end


async def test_invalid_tenant_closes_the_socket_with_an_error_frame(service: str) -> None:
    async with connect(ws_url(service), additional_headers={"X-Neurectomy-Tenant": "../etc"}) as ws:
        error = await recv(ws, 10)
        assert (error["type"], error["code"], error["field"]) == (
            "error",
            "bad_request",
            "X-Neurectomy-Tenant",
        )
        with anyio.fail_after(10):
            await ws.wait_closed()
        assert ws.close_code == 1008
