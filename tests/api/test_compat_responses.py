"""OpenAI's Responses API (``POST /v1/responses``) driven by the real ``openai`` package.

What the package sends and expects (``openai/resources/responses``, ``openai/types/responses``,
``openai/lib/streaming/responses``): a ``response`` object with ``output`` items and ``usage``; a stream
of typed events with increasing ``sequence_number`` that ends with ``response.completed`` or
``response.incomplete``; earlier ``output`` items sent back in ``input`` with ``function_call_output``.
The model is the packaged Gemma 3 270M base model: the tests check shapes and guarantees, not quality.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from openai import OpenAI

from tests.api.test_openai_surface import WEATHER as CHAT_WEATHER

pytestmark = pytest.mark.slow

WEATHER = {"type": "function", **CHAT_WEATHER["function"], "strict": True}
"""The chat tests' ``get_weather`` as the Responses API's flat function tool."""


@pytest.fixture(scope="module")
def client(service: str) -> Iterator[OpenAI]:
    c = OpenAI(base_url=f"{service}/v1", api_key="local", timeout=120)
    try:
        yield c
    finally:
        c.close()


def test_text_response_and_its_event_stream(client: OpenAI) -> None:
    ask = {"model": "gpt-4.1", "instructions": "Answer briefly.", "input": "Say hello", "temperature": 0.0}
    whole = client.responses.create(**ask, max_output_tokens=4)  # type: ignore[call-overload]
    assert whole.object == "response" and whole.id.startswith("resp_")
    assert whole.output[0].type == "message" and whole.output_text
    assert whole.usage is not None and 0 < whole.usage.output_tokens <= 4
    assert whole.usage.total_tokens == whole.usage.input_tokens + whole.usage.output_tokens
    if whole.status == "incomplete":
        assert whole.incomplete_details is not None
        assert whole.incomplete_details.reason == "max_output_tokens"
    else:
        assert whole.status == "completed"

    events = list(client.responses.create(**ask, max_output_tokens=4, stream=True))  # type: ignore[call-overload]
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert deltas == done.text == events[-1].response.output_text  # type: ignore[union-attr]
    assert deltas == whole.output_text  # greedy: the same text streamed or not


def test_function_call_round_trip_and_streamed_call(client: OpenAI) -> None:
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.responses.create(
        model="m",
        input=ask,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        max_output_tokens=40,
    )
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather" and first.status == "completed"
    assert isinstance(json.loads(call.arguments)["city"], str)  # grammar-constrained to the schema
    # The documented follow-up: the earlier output items back in input, plus the call's result.
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "18 degrees, sunny"}
    second = client.responses.create(
        model="m",
        input=[*ask, *first.output, result],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="none",
        max_output_tokens=3,
    )
    assert second.output[0].type == "message"

    events = list(
        client.responses.create(
            model="m",
            input=ask,  # type: ignore[arg-type]
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "function", "name": "get_weather"},
            max_output_tokens=40,
            stream=True,
        )
    )
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert isinstance(json.loads(done.arguments)["city"], str)
    assert events[-1].type == "response.completed"
    assert events[-1].response.output[0].arguments == done.arguments  # type: ignore[union-attr]


def test_unserved_requests_name_the_field(client: OpenAI) -> None:
    image = [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AA"}]}]
    cases = [
        ({"input": image}, "input[0].content[0]"),
        ({"input": "Hi", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "Hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": [{"role": "robot", "content": "Hi"}]}, "input[0].role"),
        # The Vercel AI SDK's Responses provider (store defaults to true) sends earlier answers as
        # {"type": "item_reference", "id": ...}: nothing is stored here, so the error says what to send.
        (
            {"input": [{"role": "user", "content": "Hi"}, {"type": "item_reference", "id": "msg_1"}]},
            "input[1]",
        ),
    ]
    for fields, param in cases:
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="m", **fields)  # type: ignore[call-overload]
        assert info.value.param == param, fields  # type: ignore[attr-defined]
    assert "store = false" in info.value.message
