"""Ollama's API beside OpenAI's, driven by the real ``ollama`` package against ``neurectomy serve``.

Also llama-server's ``/tokenize``, ``/detokenize`` and ``/props``. The model is the packaged Gemma 3
270M base model; the tests check shapes and guarantees (schema-valid output, exact counts), not quality.
"""

from __future__ import annotations

import json

import httpx
import ollama
import pytest

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 20}},
            "required": ["city"],
        },
    },
}


def test_tags_show_ps_and_version(ollama_client: ollama.Client, service: str, served_model: str) -> None:
    names = [m.model for m in ollama_client.list().models]
    assert served_model in names and "all-MiniLM-L6-v2" in names
    shown = ollama_client.show(served_model)
    assert shown.capabilities is not None and "completion" in shown.capabilities
    assert shown.details is not None and shown.details.format == "gguf"
    with pytest.raises(ollama.ResponseError) as info:
        ollama_client.show("no-such-model")
    assert info.value.status_code == 404
    ollama_client.generate(
        model=served_model, prompt="Hi", options={"num_predict": 1}
    )  # loads it if it was not
    loaded = ollama_client.ps().models
    assert served_model in [m.model for m in loaded]
    assert httpx.get(f"{service}/api/version", timeout=30).json()["version"]


def test_generate_streams_ndjson_by_default(ollama_client: ollama.Client, service: str) -> None:
    options = {"num_predict": 5, "temperature": 0, "seed": 3}
    parts = list(
        ollama_client.generate(model="llama3.2", prompt="One, two,", raw=True, options=options, stream=True)
    )
    assert parts[-1].done and parts[-1].done_reason in ("stop", "length")
    assert parts[-1].eval_count is not None and 0 < parts[-1].eval_count <= 5
    assert parts[-1].prompt_eval_count and parts[-1].total_duration and parts[-1].total_duration > 0
    whole = ollama_client.generate(
        model="llama3.2", prompt="One, two,", raw=True, options=options, stream=False
    )
    assert "".join(p.response for p in parts) == whole.response
    # No "stream" in the body: Ollama's default is a stream of JSON lines.
    with httpx.stream(
        "POST",
        f"{service}/api/generate",
        json={"model": "x", "prompt": "Hi", "options": {"num_predict": 2}},
        timeout=60,
    ) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[-1]["done"] is True and all(not line["done"] for line in lines[:-1])


def test_chat_with_format_schema_and_stop(ollama_client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string", "maxLength": 12}},
        "required": ["colour"],
    }
    answer = ollama_client.chat(
        model="m",
        messages=[{"role": "user", "content": "Name a colour as JSON."}],
        format=schema,
        options={"num_predict": 24, "temperature": 0},
    )
    assert answer.message.role == "assistant"
    assert isinstance(json.loads(answer.message.content or "")["colour"], str)
    stopped = ollama_client.chat(
        model="m",
        messages=[{"role": "user", "content": "Count: 1, 2, 3, 4, 5"}],
        options={"num_predict": 12, "temperature": 0, "stop": [","]},
    )
    assert "," not in (stopped.message.content or "")


def test_chat_tools_answer_text_or_a_valid_call(ollama_client: ollama.Client) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    answer = ollama_client.chat(
        model="m", messages=messages, tools=[WEATHER], options={"num_predict": 40, "temperature": 0}
    )
    calls = answer.message.tool_calls or []
    if calls:
        assert calls[0].function.name == "get_weather"
        assert isinstance(calls[0].function.arguments["city"], str)
        messages += [
            {"role": "assistant", "content": "", "tool_calls": [c.model_dump() for c in calls]},
            {"role": "tool", "content": '{"temperature_c": 21}', "tool_name": "get_weather"},
        ]
    else:
        assert answer.message.content and not answer.message.content.startswith("<")
        messages += [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
            },
            {"role": "tool", "content": '{"temperature_c": 21}', "tool_name": "get_weather"},
        ]
    follow_up = ollama_client.chat(model="m", messages=messages, options={"num_predict": 6, "temperature": 0})
    assert follow_up.done and follow_up.message.content is not None
    streamed = list(
        ollama_client.chat(
            model="m",
            messages=messages[:1],
            tools=[WEATHER],
            stream=True,
            options={"num_predict": 8, "temperature": 0},
        )
    )
    assert streamed[-1].done


def test_embed_and_legacy_embeddings(ollama_client: ollama.Client) -> None:
    out = ollama_client.embed(model="all-minilm", input=["hello world", "goodbye"])
    assert len(out.embeddings) == 2 and len(out.embeddings[0]) == 384
    legacy = ollama_client.embeddings(model="all-minilm", prompt="hello world")
    assert max(abs(a - b) for a, b in zip(legacy.embedding, out.embeddings[0], strict=True)) < 1e-4
    long = "word " * 400
    assert len(ollama_client.embed(model="m", input=long).embeddings) == 1  # truncate defaults to true
    with pytest.raises(ollama.ResponseError) as info:
        ollama_client.embed(model="m", input=long, truncate=False)
    assert info.value.status_code == 400 and "256" in info.value.error


def test_errors_are_ollama_shaped(service: str) -> None:
    bad_role = {"model": "m", "messages": [{"role": "robot", "content": "Hi"}]}
    response = httpx.post(f"{service}/api/chat", json=bad_role, timeout=30)
    assert response.status_code == 400
    assert "messages" in response.json()["error"]
    # `curl -X POST .../api/chat` with no -d: a message a person can act on, not "data: 'data'".
    response = httpx.post(f"{service}/api/chat", timeout=30)
    assert response.status_code == 400
    assert response.json() == {"error": "the request body is missing: send a JSON object"}
    # Out of the service's ranges: a 400 naming the option (these were 500s before).
    too_long = {"model": "m", "prompt": "Hi", "stream": False, "options": {"num_predict": 100_000}}
    response = httpx.post(f"{service}/api/generate", json=too_long, timeout=30)
    assert response.status_code == 400 and response.json()["error"].startswith("options.num_predict: ")


def test_probes_load_requests_and_unserved_management(
    ollama_client: ollama.Client, service: str, served_model: str
) -> None:
    # Ollama's server/routes.go: r.HEAD("/", ...), r.HEAD("/api/version", ...), r.HEAD("/api/tags", ...);
    # the ollama CLI's heartbeat is HEAD / and expects 200.
    for path in ("/", "/api/version", "/api/tags"):
        response = httpx.head(f"{service}{path}", timeout=30)
        assert (response.status_code, response.content) == (200, b""), path
    # docs/api.md "Load a model": `{"model": ..., "messages": []}` (and /api/generate without a prompt)
    # answers one object with done_reason "load"; ollama-python's chat(model) sends exactly that.
    loaded = ollama_client.chat(model="llama3.2", messages=[])
    assert loaded.done and loaded.done_reason == "load" and loaded.message.content == ""
    assert loaded.model == served_model
    generated = ollama_client.generate(model="llama3.2", keep_alive=0)  # "unload": accepted, the model stays
    assert generated.done and generated.done_reason == "load" and generated.response == ""
    assert served_model in [m.model for m in ollama_client.ps().models]
    # ollama-python's pull/delete raise ResponseError(body["error"], status): a reason, not a crash.
    with pytest.raises(ollama.ResponseError) as info:
        ollama_client.pull("llama3.2")
    assert info.value.status_code == 501 and info.value.error.startswith("pulling models is not supported")
    with pytest.raises(ollama.ResponseError) as info:
        ollama_client.delete("llama3.2")
    assert info.value.status_code == 501 and "GET /api/tags" in info.value.error


def test_llama_server_tokenize_detokenize_props(service: str) -> None:
    ids = httpx.post(f"{service}/tokenize", json={"content": "Hello world"}, timeout=30).json()["tokens"]
    assert ids and all(isinstance(t, int) for t in ids)
    pieces = httpx.post(
        f"{service}/tokenize", json={"content": "Hello world", "with_pieces": True}, timeout=30
    ).json()
    assert "".join(p["piece"] for p in pieces["tokens"]) == "Hello world"
    assert (
        httpx.post(f"{service}/detokenize", json={"tokens": ids}, timeout=30).json()["content"]
        == "Hello world"
    )
    props = httpx.get(f"{service}/props", timeout=30).json()
    assert props["default_generation_settings"]["n_ctx"] > 0 and props["total_slots"] >= 1


def test_llama_server_completion_json_and_stream(service: str) -> None:
    # llama.cpp tools/server/README.md "POST /completion"; Continue's llama.cpp provider posts this body
    # with stream true and reads `content` from each `data:` event until `stop` is true.
    body = {"prompt": "One, two,", "n_predict": 4, "temperature": 0, "stop": ["\n\n"], "cache_prompt": True}
    whole = httpx.post(f"{service}/completion", json=body, timeout=60).json()
    assert whole["stop"] is True and whole["content"]
    assert 0 < whole["tokens_predicted"] <= 4 and whole["tokens_evaluated"] > 0
    assert (
        whole["stop_type"] in ("limit", "word")
        and whole["timings"]["predicted_n"] == whole["tokens_predicted"]
    )
    with httpx.stream("POST", f"{service}/completion", json={**body, "stream": True}, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [e["stop"] for e in events] == [False] * (len(events) - 1) + [True]
    assert "".join(e["content"] for e in events) == whole["content"]  # greedy: the same text
    tokens = httpx.post(f"{service}/tokenize", json={"content": "One, two,"}, timeout=30).json()["tokens"]
    by_ids = httpx.post(f"{service}/completion", json={**body, "prompt": tokens}, timeout=60).json()
    assert by_ids["tokens_predicted"] > 0
    for fields, field in (({"n_probs": 3}, "n_probs"), ({"n_predict": 100_000}, "n_predict")):
        refused = httpx.post(f"{service}/completion", json={"prompt": "x", **fields}, timeout=30)
        assert refused.status_code == 400 and refused.json()["error"]["field"] == field
