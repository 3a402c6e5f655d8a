"""The rest of OpenAI's surface, with the real ``openai`` package against ``neurectomy serve``.

Tool calls (a round trip, streamed and not), log probabilities, ``n``, ``logit_bias``, token prompts,
multi-prompt completions, token input for embeddings, penalties, and the error shapes. The model is the
packaged Gemma 3 270M base model: the tests check what the server guarantees (schema-valid calls under
``required``, real log probabilities, ...), not the quality of its answers. Budgets are small (2 cores).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

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
            "additionalProperties": False,
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def client(service: str) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{service}/v1", api_key="unused-on-loopback", max_retries=0, timeout=120) as c:
        yield c


def _valid_call(arguments: str) -> dict[str, Any]:
    args = json.loads(arguments)
    assert isinstance(args, dict) and set(args) == {"city"} and isinstance(args["city"], str)
    return args


def test_required_tool_call_round_trip(client: OpenAI) -> None:
    first = client.chat.completions.create(
        model="m",
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=48,
        temperature=0,  # type: ignore[list-item,arg-type]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    _valid_call(call.function.arguments)

    # The result goes back as a `tool` message after the assistant's call (content: null).
    history: list[Any] = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature_c": 21}'},
    ]
    second = client.chat.completions.create(
        model="m",
        messages=history,
        tools=[WEATHER],
        tool_choice="none",
        max_tokens=8,
        temperature=0,  # type: ignore[list-item,arg-type]
    )
    assert second.choices[0].message.tool_calls is None
    assert second.choices[0].message.content
    assert second.choices[0].finish_reason in ("stop", "length")


def test_named_tool_call_streamed(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m",
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        max_tokens=48,
        temperature=0,
        stream=True,
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                assert tc.index == 0
                name += tc.function.name or "" if tc.function else ""
                arguments += tc.function.arguments or "" if tc.function else ""
            finish = choice.finish_reason or finish
    assert name == "get_weather"
    _valid_call(arguments)
    assert finish == "tool_calls"


def test_auto_tool_choice_answers_text_or_a_valid_call(client: OpenAI) -> None:
    result = client.chat.completions.create(
        model="m",
        messages=ASK,
        tools=[WEATHER],
        max_tokens=24,
        temperature=0,  # type: ignore[list-item,arg-type]
    )
    choice = result.choices[0]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        _valid_call(choice.message.tool_calls[0].function.arguments)
    else:
        assert choice.message.content and not choice.message.content.startswith("<")
        assert choice.finish_reason in ("stop", "length")


def test_logprobs_are_the_models_and_n_choices_differ_by_seed(client: OpenAI) -> None:
    result = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Count: one, two,"}],
        max_tokens=4,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
        n=2,
    )
    assert [c.index for c in result.choices] == [0, 1]
    assert result.system_fingerprint and result.system_fingerprint.startswith("fp_")
    texts = {c.message.content for c in result.choices}
    assert len(texts) == 1  # greedy: both choices decode the same text side by side
    for choice in result.choices:
        assert choice.logprobs is not None and choice.logprobs.content
        entries = choice.logprobs.content
        assert "".join(e.token for e in entries) == choice.message.content
        for e in entries:
            assert e.logprob <= 0.0 and len(e.top_logprobs) == 3
            assert e.top_logprobs[0].token == e.token  # greedy picks the likeliest token
            assert e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob
            assert sum(math.exp(t.logprob) for t in e.top_logprobs) <= 1.0 + 1e-4
            assert bytes(e.bytes or []).decode("utf-8", errors="replace") == e.token
    assert result.usage is not None
    assert result.usage.completion_tokens == sum(
        len(c.logprobs.content) for c in result.choices if c.logprobs
    )


def test_logit_bias_bans_the_greedy_token(client: OpenAI, service: str) -> None:
    prompt = "The capital of France is"
    plain = client.completions.create(model="m", prompt=prompt, max_tokens=1, temperature=0, logprobs=1)
    assert plain.choices[0].logprobs is not None
    top = plain.choices[0].text
    ids = httpx.post(f"{service}/tokenize", json={"content": top, "add_special": False}, timeout=30).json()[
        "tokens"
    ]
    assert len(ids) == 1
    banned = client.completions.create(
        model="m", prompt=prompt, max_tokens=1, temperature=0, logit_bias={str(ids[0]): -100}
    )
    assert banned.choices[0].text != top


def test_token_prompts_and_multiple_prompts(client: OpenAI, service: str) -> None:
    text = "One, two, three,"
    ids = httpx.post(f"{service}/tokenize", json={"content": text}, timeout=30).json()["tokens"]
    by_text = client.completions.create(model="m", prompt=text, max_tokens=3, temperature=0)
    by_ids = client.completions.create(model="m", prompt=ids, max_tokens=3, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text
    both = client.completions.create(
        model="m", prompt=[text, "Red, green,"], max_tokens=3, temperature=0, n=2
    )
    assert [c.index for c in both.choices] == [0, 1, 2, 3]
    assert both.choices[0].text == both.choices[1].text == by_text.choices[0].text
    echoed = client.completions.create(model="m", prompt=text, max_tokens=2, temperature=0, echo=True)
    assert echoed.choices[0].text.startswith(text)


def test_penalties_change_a_repetitive_greedy_text(client: OpenAI) -> None:
    prompt = "la la la la la la la la"
    plain = client.completions.create(model="m", prompt=prompt, max_tokens=12, temperature=0)
    penalised = client.completions.create(
        model="m", prompt=prompt, max_tokens=12, temperature=0, frequency_penalty=2.0, presence_penalty=2.0
    )
    assert plain.choices[0].text != penalised.choices[0].text


def test_embeddings_take_token_ids_and_refuse_over_long_input(client: OpenAI) -> None:
    by_text = client.embeddings.create(model="m", input="hello world", encoding_format="float")
    # all-MiniLM-L6-v2's WordPiece ids of "hello world" ([CLS]/[SEP] added by the embedder).
    by_ids = client.embeddings.create(model="m", input=[7592, 2088], encoding_format="float")
    assert (
        max(abs(a - b) for a, b in zip(by_text.data[0].embedding, by_ids.data[0].embedding, strict=True))
        < 1e-4
    )
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="m", input=["short", "word " * 400])
    assert info.value.code == "context_length_exceeded"
    assert info.value.param == "input[1]"  # type: ignore[attr-defined]
    assert "256" in info.value.message


def test_newer_and_harmless_fields_are_accepted(service: str) -> None:
    body = {
        "model": "m",
        "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_completion_tokens": 2,
        "tools": None,
        "tool_choice": None,
        "user": "u-1",
        "metadata": {"k": "v"},
        "store": False,
        "service_tier": "auto",
        "stream": True,
        "stream_options": {"include_usage": True, "include_obfuscation": False},
    }
    with httpx.stream("POST", f"{service}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][6:])["usage"]["completion_tokens"] <= 2


def test_errors_have_openai_params_and_codes(client: OpenAI, service: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="m",
            messages=[*ASK, {"role": "user", "content": 5}],
            max_tokens=1,  # type: ignore[list-item]
        )
    assert info.value.param == "messages[1].content"  # type: ignore[attr-defined]

    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="m", messages=ASK, max_tokens=30000)  # type: ignore[arg-type]
    assert info.value.code == "context_length_exceeded"
    assert info.value.param == "messages"  # type: ignore[attr-defined]

    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="m",
            messages=ASK,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}},  # type: ignore[list-item,arg-type]
        )
    assert info.value.param == "tool_choice"  # type: ignore[attr-defined]

    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="m", messages=ASK, extra_body={"no_such_field": 1})  # type: ignore[arg-type]
    assert info.value.param == "no_such_field"  # type: ignore[attr-defined]

    # A curl script that forgot -d: OpenAI's shape and a message naming the missing body.
    response = httpx.post(f"{service}/v1/chat/completions", timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "the request body is missing: send a JSON object"
    assert response.json()["error"]["type"] == "invalid_request_error"
