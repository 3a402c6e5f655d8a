"""Tool calling on the OpenAI-compatible chat route: messages with tool calls and results in, calls out.

How a request with ``tools`` becomes a generation:

* **Prompt.** The tools (name, description, JSON Schema of the arguments) and the call format are
  described in a system message; earlier assistant calls are rendered as ``<tool_call>{"name": ...,
  "arguments": {...}}`` lines and ``tool`` results as ``<tool_response>`` user turns, so that any chat
  template (which knows only system/user/assistant) can render the conversation.
* **Decision rule.** ``tool_choice``:

  - ``none`` (or no tools): a plain text answer; the tools are not shown to the model.
  - ``required``, a named function, or ``allowed_tools`` with mode ``required``: the whole answer is
    grammar-constrained to one call ``{"name": <one of the allowed tools>, "arguments": <valid for its
    parameters schema>}``, so the answer is always a schema-valid call (unless ``max_tokens`` cuts it
    off: then ``finish_reason`` is ``length`` and the partial text is the content).
  - ``auto`` (the default with tools): a constrained choice made by the model's own likelihoods at its
    first token: the grammar allows either ``<tool_call>`` followed by such a call, or a text answer
    whose first character is anything but ``<``. Whatever the model finds likelier wins; nothing is
    hard-coded about when to call. The packaged Gemma 3 270M is a base model with no chat or
    tool-use tuning, so its choice is often poor (it tends to answer in text): use ``required`` or a
    named function when a call is needed.

* **Answer.** A call becomes ``message.tool_calls`` (``content: null``) with a fresh ``call_…`` id and
  ``function.arguments`` as a JSON text, and ``finish_reason: "tool_calls"``. ``parallel_tool_calls``
  is accepted; at most one call is made per answer (the reference allows fewer calls than requested).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from agents.errors import BadInputError
from agents.protocol import TOOL_CALL_TAG, ChatMessageIn, ToolMode
from api.openai.schemas import (
    AllowedToolsChoice,
    AssistantMessage,
    ChatCompletionRequest,
    FunctionDefinition,
    FunctionMessage,
    NamedToolChoice,
    SystemMessage,
    ToolMessage,
    UserMessage,
)

__all__ = ("ToolCallParse", "ToolPlan", "parse_call", "plan_tools", "render_messages")

_NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """What a request's tools ask of the generator.

    Attributes:
        mode: ``auto`` (text or a tagged call) or ``required`` (one call).
        schema: JSON Schema of a call: ``{"name": const, "arguments": parameters}``, one per allowed tool
            (``anyOf`` for several).
        tools: The tools the model may call (after ``tool_choice`` narrowed them).
    """

    mode: ToolMode
    schema: dict[str, Any]
    tools: tuple[FunctionDefinition, ...]


def _functions(body: ChatCompletionRequest) -> list[FunctionDefinition]:
    if body.tools is not None and body.functions is not None:
        raise BadInputError("give tools or the deprecated functions, not both", field="functions")
    if body.tools is not None:
        return [t.function for t in body.tools]
    return list(body.functions or [])


def _choice(body: ChatCompletionRequest) -> tuple[str, set[str] | None]:
    """``(mode, allowed names)`` from ``tool_choice`` (or the deprecated ``function_call``)."""
    choice = body.tool_choice
    if choice is None and body.function_call is not None:
        fc = body.function_call
        return (fc, None) if isinstance(fc, str) else ("required", {fc.name})
    if choice is None:
        return "auto", None
    if isinstance(choice, str):
        return choice, None
    if isinstance(choice, NamedToolChoice):
        return "required", {choice.function.name}
    assert isinstance(choice, AllowedToolsChoice)
    names: set[str] = set()
    for i, tool in enumerate(choice.allowed_tools.tools):
        name = (tool.get("function") or {}).get("name") if isinstance(tool.get("function"), dict) else None
        if not isinstance(name, str):
            raise BadInputError(
                "must be {'type': 'function', 'function': {'name': ...}}",
                field=f"tool_choice.allowed_tools.tools[{i}]",
            )
        names.add(name)
    return choice.allowed_tools.mode, names


def _call_schema(fn: FunctionDefinition) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": fn.name}, "arguments": fn.parameters or _NO_ARGUMENTS},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def plan_tools(body: ChatCompletionRequest) -> ToolPlan | None:
    """The tool plan of ``body``; ``None`` when the answer is plain text (no tools, or ``none``).

    Raises:
        BadInputError: ``tool_choice`` names a tool not in ``tools`` (``param`` ``tool_choice``), or
            ``required`` without tools.
    """
    functions = _functions(body)
    mode, allowed = _choice(body)
    if mode == "none":
        return None
    if not functions:
        if body.tool_choice is not None and body.tool_choice != "auto":
            raise BadInputError("names tools but the request has no tools", field="tool_choice")
        return None
    known = {fn.name for fn in functions}
    if allowed is not None:
        missing = sorted(allowed - known)
        if missing:
            raise BadInputError(f"names {', '.join(missing)}, not among the tools", field="tool_choice")
        functions = [fn for fn in functions if fn.name in allowed]
    calls = [_call_schema(fn) for fn in functions]
    schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
    return ToolPlan("required" if mode == "required" else "auto", schema, tuple(functions))


def _tools_prompt(plan: ToolPlan) -> str:
    listed = "\n".join(
        json.dumps(
            {
                "name": fn.name,
                "description": fn.description or "",
                "parameters": fn.parameters or _NO_ARGUMENTS,
            },
            ensure_ascii=False,
        )
        for fn in plan.tools
    )
    call = '{"name": <tool name>, "arguments": <arguments object>}'
    how = (
        f"Answer with one tool call: {call}."
        if plan.mode == "required"
        else f"To call a tool, answer with {TOOL_CALL_TAG} followed by {call}; otherwise answer in text."
    )
    return f"You can call these tools:\n{listed}\n{how}"


def _text_of(message: Any, i: int) -> str:
    """The text of message ``i``; parts that are not text are refused, naming the part."""
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    out: list[str] = []
    for j, part in enumerate(content):
        text = part.as_text()
        if text is None:
            raise BadInputError(
                f"content parts of type {part.type!r} are not served (text only)",
                field=f"messages[{i}].content[{j}]",
            )
        out.append(text)
    return "".join(out)


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def render_messages(body: ChatCompletionRequest, plan: ToolPlan | None) -> list[ChatMessageIn]:
    """The conversation as system/user/assistant messages any chat template can render.

    Consecutive messages of one role are joined (some templates insist on alternating roles).

    Raises:
        BadInputError: A content part that is not text, or a ``tool`` message answering no earlier call.
    """
    names: dict[str, str] = {}
    rendered: list[tuple[str, str]] = []
    if plan is not None:
        rendered.append(("system", _tools_prompt(plan)))
    for i, m in enumerate(body.messages):
        if isinstance(m, SystemMessage):
            rendered.append(("system", _text_of(m, i)))
        elif isinstance(m, UserMessage):
            rendered.append(("user", _text_of(m, i)))
        elif isinstance(m, AssistantMessage):
            calls = [(c.id, c.function) for c in m.tool_calls or []]
            if m.function_call is not None:
                calls.append((m.function_call.name, m.function_call))
            lines = [_text_of(m, i)] if m.content else []
            for call_id, fn in calls:
                names[call_id] = fn.name
                payload = {"name": fn.name, "arguments": _arguments(fn.arguments)}
                lines.append(TOOL_CALL_TAG + json.dumps(payload, ensure_ascii=False))
            rendered.append(("assistant", "\n".join(lines)))
        elif isinstance(m, ToolMessage):
            name = names.get(m.tool_call_id)
            if name is None:
                raise BadInputError(
                    f"answers tool call {m.tool_call_id!r}, which no earlier assistant message made",
                    field=f"messages[{i}].tool_call_id",
                )
            rendered.append(("user", f'<tool_response name="{name}">\n{_text_of(m, i)}\n</tool_response>'))
        else:
            assert isinstance(m, FunctionMessage)
            rendered.append(
                ("user", f'<tool_response name="{m.name or ""}">\n{m.content or ""}\n</tool_response>')
            )
    merged: list[ChatMessageIn] = []
    for role, text in rendered:
        if merged and merged[-1].role == role:
            merged[-1] = ChatMessageIn(role=role, content=f"{merged[-1].content}\n\n{text}")  # type: ignore[arg-type,unused-ignore]
        else:
            merged.append(ChatMessageIn(role=role, content=text))  # type: ignore[arg-type]
    return merged


@dataclass(frozen=True, slots=True)
class ToolCallParse:
    """A generated answer read back: a call, or text.

    Attributes:
        call: OpenAI's ``tool_calls`` entry (``id``, ``type``, ``function``), or ``None``.
        text: The text answer when there is no call (also a call cut short by ``max_tokens``).
    """

    call: dict[str, Any] | None
    text: str


def new_call_id() -> str:
    """A fresh tool call id (``call_`` and 24 random hex digits, like OpenAI's)."""
    return f"call_{secrets.token_hex(12)}"


def parse_call(plan: ToolPlan, text: str) -> ToolCallParse:
    """Read the generated ``text`` of a tool-calling request (see the module docstring)."""
    body = text
    if plan.mode == "auto":
        if not text.startswith(TOOL_CALL_TAG):
            return ToolCallParse(None, text)
        body = text[len(TOOL_CALL_TAG) :]
    try:
        call = json.loads(body)
        name, arguments = call["name"], call["arguments"]
    except (ValueError, KeyError, TypeError):
        return ToolCallParse(None, text)  # cut off by max_tokens before the JSON was complete
    function = {"name": str(name), "arguments": json.dumps(arguments, ensure_ascii=False)}
    return ToolCallParse({"id": new_call_id(), "type": "function", "function": function}, "")
