"""``POST /v1/responses``: OpenAI's Responses API, served by translating it into a chat completion.

A request becomes a :class:`~api.openai.schemas.ChatCompletionRequest` (``instructions`` → a system
message, input items → messages, flat function ``tools`` → chat tools, ``text.format`` →
``response_format``), then runs like ``/v1/chat/completions`` (same generator, model fallback, grammar).
The answer is a ``response`` object whose ``output`` holds one ``message`` (``output_text``) or one
``function_call`` item; ``status`` is ``incomplete`` (``incomplete_details.reason: "max_output_tokens"``)
when the token budget ended it. Nothing is stored: ``GET /v1/responses/{id}`` and
``previous_response_id`` are not served (send the earlier output items back in ``input`` instead, which
the ``openai`` package's examples do).

Streaming follows the reference's event order: ``response.created``, ``response.in_progress``,
``response.output_item.added``, ``response.content_part.added``, ``response.output_text.delta`` …,
``response.output_text.done``, ``response.content_part.done``, ``response.output_item.done``,
``response.completed`` (or ``response.incomplete``), each as ``event: <type>`` + ``data: {...}`` with a
``sequence_number``; no ``[DONE]``. With tools the answer is sent once complete (a call is only known
whole at the end), as ``response.function_call_arguments.delta``/``.done`` for a call. An error after
the start is an ``error`` event.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from litestar import Request, Response, Router, post
from litestar.datastructures import State
from litestar.params import JSONBody
from pydantic import BaseModel, ValidationError

from agents.errors import AgentError, BadInputError, ContextLengthExceededError, StreamBrokenError
from agents.protocol import GenerateOutput
from api._request import call_context, request_id_of
from api._sse import sse_event, sse_response
from api.openai._chat import chat_input
from api.openai._errors import OPENAI_EXCEPTION_HANDLERS, openai_param
from api.openai._generation import generate_all, start_streams
from api.openai.responses.schemas import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputContentPart,
    InputMessageItem,
    ResponsesRequest,
)
from api.openai.schemas import ChatCompletionRequest
from api.openai.tools import ToolPlan, parse_call
from orchestrator import Orchestrator, TextDelta

__all__ = ("ROUTES", "chat_request")

_M = TypeVar("_M", bound=BaseModel)


# ----------------------------------------------------------------- request → chat completion request
def _checked(model: type[_M], raw: dict[str, Any], where: str) -> _M:
    """``raw`` validated as ``model``.

    An error names the field under ``where`` (``input.2`` → ``input.2.role``, which the OpenAI error
    handler shows as ``input[2].role``).
    """
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        path = ".".join(p for p in (where, loc) if p) or None
        raise BadInputError(str(first["msg"]), field=path) from None


def _kind(value: Any) -> str:
    """A client-sent ``type`` for an error message (cut: hostile input is not echoed at length)."""
    return repr(value)[:60]


def _text(content: str | list[InputContentPart], where: str) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for j, part in enumerate(content):
        text = part.as_text()
        if text is None:
            raise BadInputError(
                f"content parts of type {_kind(part.type)} are not served (text only)", field=f"{where}.{j}"
            )
        parts.append(text)
    return "".join(parts)


def _messages(body: ResponsesRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if body.instructions:
        out.append({"role": "system", "content": body.instructions})
    if isinstance(body.input, str):
        return [*out, {"role": "user", "content": body.input}]
    if len(body.input) > 256:
        raise BadInputError(f"holds {len(body.input)} items, over the limit of 256", field="input")
    for i, raw in enumerate(body.input):
        kind, where = raw.get("type", "message"), f"input.{i}"
        if kind == "message":
            msg = _checked(InputMessageItem, raw, where)
            out.append({"role": msg.role, "content": _text(msg.content, f"{where}.content")})
        elif kind == "function_call":
            call = _checked(FunctionCallItem, raw, where)
            entry = {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            if out and out[-1]["role"] == "assistant" and out[-1].get("tool_calls"):
                out[-1]["tool_calls"].append(entry)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [entry]})
        elif kind == "function_call_output":
            result = _checked(FunctionCallOutputItem, raw, where)
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": result.call_id,
                    "content": _text(result.output, f"{where}.output"),
                }
            )
        elif kind == "item_reference":
            raise BadInputError(
                "item_reference needs stored responses, which this server does not keep: send the item "
                "itself (the Vercel AI SDK does with providerOptions.openai.store = false)",
                field=where,
            )
        elif kind != "reasoning":  # a reasoning item of an earlier response: nothing to replay
            raise BadInputError(f"input items of type {_kind(kind)} are not served", field=where)
    return out


def _tools(body: ResponsesRequest) -> list[dict[str, Any]] | None:
    if body.tools is None:
        return None
    tools = []
    for i, tool in enumerate(body.tools):
        if tool.get("type") != "function":
            raise BadInputError(
                f"tools of type {_kind(tool.get('type'))} are not served (function only)",
                field=f"tools.{i}.type",
            )
        fn = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
        tools.append({"type": "function", "function": fn})
    return tools


def _tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    if choice is None or isinstance(choice, str):
        return choice
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if choice.get("type") == "allowed_tools":
        tools = choice.get("tools")
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise BadInputError(
                'must be a list of {"type": "function", "name": ...}', field="tool_choice.tools"
            )
        named = [{"type": "function", "function": {"name": t.get("name")}} for t in tools]
        return {"type": "allowed_tools", "allowed_tools": {"mode": choice.get("mode"), "tools": named}}
    raise BadInputError(f"tool_choice of type {_kind(choice.get('type'))} is not served", field="tool_choice")


def _response_format(body: ResponsesRequest) -> dict[str, Any] | None:
    fmt = body.text.format if body.text else None
    if not fmt or fmt.get("type") in ("text", "json_object"):
        return fmt
    if fmt.get("type") == "json_schema":
        spec = {k: fmt[k] for k in ("name", "description", "schema", "strict") if k in fmt}
        return {"type": "json_schema", "json_schema": spec}
    raise BadInputError(f"format of type {_kind(fmt.get('type'))} is not served", field="text.format")


def _not_served(body: ResponsesRequest) -> None:
    for name in ("previous_response_id", "conversation", "prompt"):
        if getattr(body, name) is not None:
            raise BadInputError(f"{name} is not served: responses are not stored", field=name)
    if body.background:
        raise BadInputError("background responses are not served", field="background")
    if body.top_logprobs:
        raise BadInputError(
            "not served on /v1/responses (use /v1/chat/completions logprobs)", field="top_logprobs"
        )


def chat_request(body: ResponsesRequest) -> ChatCompletionRequest:
    """``body`` as the chat completion request it means.

    Raises:
        BadInputError: A field asks for something not served (named in OpenAI's notation).
    """
    _not_served(body)
    chat = {
        "model": body.model,
        "messages": _messages(body),
        "max_completion_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "tools": _tools(body),
        "tool_choice": _tool_choice(body.tool_choice),
        "parallel_tool_calls": body.parallel_tool_calls,
        "response_format": _response_format(body),
    }
    return _checked(ChatCompletionRequest, {k: v for k, v in chat.items() if v is not None}, "")


# ----------------------------------------------------------------- GenerateOutput → response object
def _usage(out: GenerateOutput) -> dict[str, Any]:
    u = out.usage
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    }


def _item(rid: str, out: GenerateOutput, plan: ToolPlan | None) -> dict[str, Any]:
    """The output item: a ``function_call`` when the answer is a call, else a ``message``."""
    if plan is not None:
        call = parse_call(plan, out.text).call
        if call is not None:
            fn = call["function"]
            return {
                "type": "function_call",
                "id": f"fc_{rid}",
                "call_id": call["id"],
                "name": fn["name"],
                "arguments": fn["arguments"],
                "status": "completed",
            }
    status = "incomplete" if out.finish_reason == "length" else "completed"
    text = {"type": "output_text", "text": out.text, "annotations": [], "logprobs": []}
    return {"type": "message", "id": f"msg_{rid}", "status": status, "role": "assistant", "content": [text]}


class _Shape:
    """The ``response`` object of one request, at each stage (in progress, then done)."""

    def __init__(self, rid: str, body: ResponsesRequest) -> None:
        self.rid, self.body, self.created = rid, body, int(time.time())

    def response(self, model: str, out: GenerateOutput | None, items: list[dict[str, Any]]) -> dict[str, Any]:
        body = self.body
        status = "in_progress"
        if out is not None:
            status = "incomplete" if out.finish_reason == "length" else "completed"
        return {
            "id": f"resp_{self.rid}",
            "object": "response",
            "created_at": self.created,
            "status": status,
            "completed_at": int(time.time()) if out is not None else None,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "model": model,
            "output": items,
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": body.temperature,
            "text": {"format": (body.text.format if body.text else None) or {"type": "text"}},
            "tool_choice": body.tool_choice or ("auto" if body.tools else "none"),
            "tools": body.tools or [],
            "top_p": body.top_p,
            "truncation": "disabled",
            "usage": _usage(out) if out is not None else None,
            "user": body.user,
            "metadata": body.metadata or {},
        }


class _Events:
    """Server-sent events of a streamed response, numbered by ``sequence_number``."""

    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse_event(json.dumps(data, ensure_ascii=False), kind)


def _item_events(event: _Events, item: dict[str, Any], deltas: list[str]) -> list[bytes]:
    """The events from ``output_item.added`` to ``output_item.done`` of output item 0."""
    where = {"item_id": item["id"], "output_index": 0}
    if item["type"] == "function_call":
        return [
            event(
                "response.output_item.added",
                output_index=0,
                item={**item, "arguments": "", "status": "in_progress"},
            ),
            event("response.function_call_arguments.delta", **where, delta=item["arguments"]),
            event("response.function_call_arguments.done", **where, arguments=item["arguments"]),
            event("response.output_item.done", output_index=0, item=item),
        ]
    part = item["content"][0]
    return [
        *_text_start(event, item),
        *(
            event("response.output_text.delta", **where, content_index=0, delta=d, logprobs=[])
            for d in deltas
        ),
        *_text_end(event, item, part),
    ]


def _text_start(event: _Events, item: dict[str, Any]) -> list[bytes]:
    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    where = {"item_id": item["id"], "output_index": 0}
    return [
        event(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "content": []},
        ),
        event("response.content_part.added", **where, content_index=0, part=empty),
    ]


def _text_end(event: _Events, item: dict[str, Any], part: dict[str, Any]) -> list[bytes]:
    where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    return [
        event("response.output_text.done", **where, text=part["text"], logprobs=[]),
        event("response.content_part.done", **where, part=part),
        event("response.output_item.done", output_index=0, item=item),
    ]


async def _stream(
    shape: _Shape, model: str, plan: ToolPlan | None, first: Any, rest: AsyncIterator[Any], aclose: Any
) -> AsyncIterator[bytes]:
    event = _Events()
    try:
        yield event("response.created", response=shape.response(model, None, []))
        yield event("response.in_progress", response=shape.response(model, None, []))
        rid = shape.rid
        placeholder = {"type": "message", "id": f"msg_{rid}", "status": "in_progress", "role": "assistant"}
        out: GenerateOutput | None = None
        deltas: list[str] = []
        if plan is None:
            for data in _text_start(event, {**placeholder, "content": []}):
                yield data
        pending = [first]
        async for ev in _chain(pending, rest):
            if isinstance(ev, TextDelta):
                if not ev.text:
                    continue
                if plan is None:
                    where = {"item_id": f"msg_{rid}", "output_index": 0, "content_index": 0}
                    yield event("response.output_text.delta", **where, delta=ev.text, logprobs=[])
                else:
                    deltas.append(ev.text)
            else:
                out = ev
        if out is None:
            raise StreamBrokenError("generator stream ended without an output")
        item = _item(rid, out, plan)
        parts = (
            _text_end(event, item, item["content"][0])
            if plan is None
            else _item_events(event, item, ["".join(deltas)])
        )
        for data in parts:
            yield data
        done = shape.response(out.model, out, [item])
        yield event(f"response.{done['status']}", response=done)
    except AgentError as exc:
        yield event("error", code=exc.code, message=exc.message, param=openai_param(exc.field))
    finally:
        await aclose()


async def _chain(first: list[Any], rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    for ev in first:
        yield ev
    async for ev in rest:
        yield ev


# ----------------------------------------------------------------- route
@post("/responses", status_code=200, summary="OpenAI-compatible Responses API (JSON or SSE events)")
async def create_response(
    data: JSONBody[ResponsesRequest], request: Request[Any, Any, Any], state: State
) -> Response[Any]:
    """A response by the ``generator`` agent, shaped like OpenAI's Responses API (see the module docstring).

    Errors (OpenAI's shape): 400 invalid or unserved field (``param`` names it, e.g. ``input[1].content[0]``),
    429 busy, 503 no generator running, 504 deadline passed.
    """
    inp, plan = chat_input(chat_request(data))
    orchestrator: Orchestrator = state.orchestrator
    ctx = call_context(orchestrator, request)
    shape = _Shape(request_id_of(request), data)
    try:
        if not data.stream:
            out = (await generate_all(request, orchestrator, ctx, [inp], data.model))[0]
            return Response(shape.response(out.model, out, [_item(shape.rid, out, plan)]))
        streams, model = await start_streams(request, orchestrator, ctx, [inp], data.model)
    except ContextLengthExceededError as exc:
        raise ContextLengthExceededError(exc.message, field="input") from None
    first, stream = streams[0]
    return sse_response(_stream(shape, model, plan, first, stream, stream.aclose))


ROUTES = (
    Router(
        path="/v1",
        route_handlers=[create_response],
        exception_handlers=OPENAI_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        tags=["OpenAI-compatible"],
    ),
)
"""The Responses API router (registered with the other OpenAI-compatible routes)."""
