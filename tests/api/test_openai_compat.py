"""The OpenAI-compatible routes, driven by the real ``openai`` package against ``neurectomy serve``.

Everything runs for real: openai client → HTTP → orchestrator → NATS → generator (Ryot, Gemma 3 270M)
or embedder (ΣVAULT's all-MiniLM-L6-v2). Token budgets are small on purpose (2 shared cores).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
from openai import OpenAI

PROMPT = "The days of the week are Monday, Tuesday,"
CHAT = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def client(service: str) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{service}/v1", api_key="unused-on-loopback", max_retries=0, timeout=60) as c:
        yield c


def test_models_list_names_the_generator_and_embedding_models(client: OpenAI, service: str) -> None:
    served = httpx.get(f"{service}/health", timeout=30).json()["model"]
    ids = [m.id for m in client.models.list()]
    assert served in ids
    assert "all-MiniLM-L6-v2" in ids
    assert client.models.retrieve(served).id == served
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_chat_completion(client: OpenAI, service: str) -> None:
    served = httpx.get(f"{service}/health", timeout=30).json()["model"]
    result = client.chat.completions.create(
        model="anything",
        messages=CHAT,  # type: ignore[arg-type]
        max_tokens=6,
        temperature=0,
        seed=7,
    )
    choice = result.choices[0]
    assert result.object == "chat.completion"
    assert result.model == served
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = result.usage
    assert usage is not None
    assert 0 < usage.completion_tokens <= 6
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens is not None
    assert 0 <= usage.prompt_tokens_details.cached_tokens <= usage.prompt_tokens
    if choice.finish_reason == "length":
        assert usage.completion_tokens == 6


def test_chat_stream_with_include_usage(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="anything",
            messages=CHAT,  # type: ignore[arg-type]
            max_tokens=5,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    *body, finish, usage_chunk = chunks
    text = "".join(c.choices[0].delta.content or "" for c in body)
    assert text
    assert all(c.object == "chat.completion.chunk" and c.usage is None for c in body)
    assert finish.choices[0].finish_reason in ("stop", "length")
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert 0 < usage_chunk.usage.completion_tokens <= 5
    assert len({c.id for c in chunks}) == 1


def test_completion_and_its_stream(client: OpenAI) -> None:
    result = client.completions.create(model="anything", prompt=PROMPT, max_tokens=5, temperature=0)
    assert result.object == "text_completion"
    assert result.choices[0].text
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None and result.usage.completion_tokens == 5

    chunks = list(
        client.completions.create(model="anything", prompt=PROMPT, max_tokens=5, temperature=0, stream=True)
    )
    assert "".join(c.choices[0].text for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)  # no include_usage: no usage chunk


@pytest.mark.parametrize("stop", ["e", ["e", "E"]])
def test_stop_sequences_end_the_completion(client: OpenAI, stop: str | list[str]) -> None:
    result = client.completions.create(
        model="anything", prompt=PROMPT, max_tokens=16, temperature=0, stop=stop
    )
    text = result.choices[0].text
    assert result.choices[0].finish_reason == "stop"
    assert "e" not in text and "E" not in text
    assert result.usage is not None and result.usage.completion_tokens < 16


def test_raw_sse_is_exactly_openai_framing(service: str) -> None:
    body = {"model": "x", "prompt": "Hello", "max_tokens": 3, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{service}/v1/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0].removeprefix("data: "))["object"] == "text_completion"


def test_json_schema_response_format_is_valid_json(client: OpenAI) -> None:
    # Grammar-constrained decoding is the slow path here (seconds per token on 2 busy cores): keep the
    # document short (8-character name, no extra keys) and give it more time than the default.
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    result = client.with_options(timeout=110).chat.completions.create(
        model="anything",
        messages=[{"role": "user", "content": "Give a person as JSON."}],
        max_tokens=40,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )
    assert result.choices[0].finish_reason == "stop"
    value = json.loads(result.choices[0].message.content or "")
    assert set(value) == {"name", "age"}
    assert isinstance(value["name"], str) and len(value["name"]) <= 8
    assert isinstance(value["age"], int)


def test_embeddings_are_384d_unit_vectors_that_rank_by_meaning(client: OpenAI) -> None:
    texts = [
        "The invoice must be paid by Friday.",
        "Payment of the bill is due at the end of the week.",
        "Our cat sleeps on the warm windowsill.",
    ]
    result = client.embeddings.create(model="text-embedding-3-small", input=texts)  # base64 on the wire
    assert result.model == "all-MiniLM-L6-v2"
    vectors = np.array([d.embedding for d in sorted(result.data, key=lambda d: d.index)])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    assert result.usage.prompt_tokens > len(texts) * 2

    single = client.embeddings.create(model="m", input=texts[2], encoding_format="float")
    assert len(single.data) == 1
    np.testing.assert_allclose(single.data[0].embedding, vectors[2], atol=1e-5)


def test_errors_raise_the_openai_packages_typed_exceptions(client: OpenAI, service: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="m", messages=CHAT, n=17)  # type: ignore[arg-type]
    assert info.value.status_code == 400
    assert info.value.param == "n"  # type: ignore[attr-defined]
    assert info.value.type == "invalid_request_error"

    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="m", prompt="x", temperature=5, stream=True)
    assert info.value.param == "temperature"  # type: ignore[attr-defined]

    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="m", input=["fine", "   "])
    assert info.value.param == "input[1]"  # type: ignore[attr-defined]

    # Our own routes keep our error shape.
    mine = httpx.post(f"{service}/v1/generate", json={"prompt": "x", "n": 2}, timeout=30).json()
    assert mine["error"]["code"] == "bad_request" and "request_id" in mine


def test_request_fields_map_onto_the_generator_input() -> None:
    from api.openai._chat import chat_input
    from api.openai.schemas import ChatCompletionRequest

    body = ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
                },
            ],
            "max_tokens": 99,
            "max_completion_tokens": 7,
            "stop": "END",
            "top_k": 5,
            "response_format": {"type": "json_object"},
        }
    )
    inp, plan = chat_input(body)
    assert plan is None  # no tools: a plain answer
    assert [(m.role, m.content) for m in inp.messages or []] == [
        ("system", "Be brief."),
        ("user", "Hi there"),
    ]
    assert inp.max_tokens == 7
    assert inp.stop == ["END"]
    assert inp.top_k == 5
    assert inp.json_schema == {"type": "object"}  # json_object: any JSON object, grammar-constrained
