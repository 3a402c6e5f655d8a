"""Generator outputs in OpenAI's response shapes: choices, usage, log probabilities, stream chunks.

One place for the JSON OpenAI clients read, for both routes (``chat.completion`` / ``text_completion``)
and both modes (whole answer, SSE chunks).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.protocol import GenerateOutput
from api._sse import SSE_END, sse_data_prefix
from api.openai.tools import ToolPlan, parse_call

__all__ = ("Chunks", "Kind", "chat_logprobs", "completion_body", "finish_reason", "fingerprint", "usage")

Kind = Literal["chat", "text"]
_CHUNK_END = b"}" + SSE_END
"""The end of a chunk event: its JSON object's ``}`` and the event's end."""
_VERSION = "0.1.0"


def fingerprint(model: str) -> str:
    """``system_fingerprint``: changes when the served model or the server's version changes."""
    return "fp_" + hashlib.sha256(f"neurectomy {_VERSION} {model}".encode()).hexdigest()[:10]


def usage(outputs: Sequence[GenerateOutput], prompts: Sequence[int]) -> dict[str, Any]:
    """OpenAI's ``usage`` of several choices: each prompt counted once, every completion token counted.

    Args:
        outputs: The generator outputs, one per choice.
        prompts: Index (into ``outputs``) of one choice per distinct prompt.
    """
    prompt = sum(outputs[i].usage.prompt_tokens for i in prompts)
    cached = sum(outputs[i].usage.cached_tokens for i in prompts)
    completion = sum(o.usage.completion_tokens for o in outputs)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def finish_reason(out: GenerateOutput) -> str:
    """``length`` when ``max_tokens`` ended it, else ``stop``."""
    return "length" if out.finish_reason == "length" else "stop"


def chat_logprobs(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A chat choice's ``logprobs``: ``{"content": [...], "refusal": null}``."""
    return {"content": list(entries), "refusal": None}


@dataclass(slots=True)
class TextLogprobs:
    """The legacy completions ``logprobs`` object, built token by token.

    Attributes:
        offset: Character offset of the next token in the choice's ``text``.
    """

    offset: int = 0
    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[dict[str, float]] = field(default_factory=list)
    text_offset: list[int] = field(default_factory=list)

    def add(self, entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Append ``entries``; the legacy object of just these (for a stream chunk)."""
        part = TextLogprobs(self.offset)
        for e in entries:
            for target in (self, part):
                target.tokens.append(e["token"])
                target.token_logprobs.append(e["logprob"])
                target.top_logprobs.append({t["token"]: t["logprob"] for t in e.get("top_logprobs", [])})
                target.text_offset.append(self.offset)
            self.offset += len(e["token"])
        return part.as_dict()

    def as_dict(self) -> dict[str, Any]:
        """``{"tokens", "token_logprobs", "top_logprobs", "text_offset"}``."""
        return {
            "tokens": self.tokens,
            "token_logprobs": self.token_logprobs,
            "top_logprobs": self.top_logprobs,
            "text_offset": self.text_offset,
        }


def _entries(out: GenerateOutput) -> list[dict[str, Any]]:
    return [e.model_dump() for e in out.logprobs or []]


def chat_choice(index: int, out: GenerateOutput, plan: ToolPlan | None, logprobs: bool) -> dict[str, Any]:
    """One choice of a ``chat.completion``: the message (text, or a tool call), finish reason, logprobs."""
    message: dict[str, Any] = {"role": "assistant", "content": out.text, "refusal": None}
    reason = finish_reason(out)
    if plan is not None:
        parsed = parse_call(plan, out.text)
        if parsed.call is not None:
            message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [parsed.call]}
            reason = "tool_calls"
    return {
        "index": index,
        "message": message,
        "logprobs": chat_logprobs(_entries(out)) if logprobs else None,
        "finish_reason": reason,
    }


def text_choice(index: int, out: GenerateOutput, echo: str | None, logprobs: bool) -> dict[str, Any]:
    """One choice of a ``text_completion`` (``echo``: the prompt text to put before the completion)."""
    lp: dict[str, Any] | None = None
    if logprobs:
        legacy = TextLogprobs(len(echo or ""))
        legacy.add(_entries(out))
        lp = legacy.as_dict()
    return {
        "index": index,
        "text": (echo or "") + out.text,
        "logprobs": lp,
        "finish_reason": finish_reason(out),
    }


def completion_body(
    kind: Kind, cid: str, created: int, choices: list[dict[str, Any]], model: str, usage_: dict[str, Any]
) -> dict[str, Any]:
    """The whole (non-streamed) response."""
    return {
        "id": cid,
        "object": "chat.completion" if kind == "chat" else "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint(model),
        "choices": choices,
        "usage": usage_,
    }


class Chunks:
    """Builds the SSE chunks of one streamed completion.

    OpenAI's ``chat.completion.chunk`` objects for chat, ``text_completion`` objects for completions.
    The fields every chunk repeats (id, object, created, model, fingerprint) are encoded once: a chunk
    encodes only its ``choices`` (and ``usage``), the bytes the whole object's ``json.dumps`` writes.
    """

    def __init__(self, kind: Kind, cid: str, created: int, model: str, *, include_usage: bool) -> None:
        self.kind = kind
        self.cid = cid
        self.created = created
        self.model = model
        self.include_usage = include_usage
        head = {
            "id": cid,
            "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
            "created": created,
            "model": model,
            "system_fingerprint": fingerprint(model),
            "choices": None,
        }
        encoded = json.dumps(head, ensure_ascii=False)
        self._head = sse_data_prefix() + encoded[: -len("null}")].encode()
        """``data: {"id": ..., "choices": `` (the object up to its choices)."""

    def chat(
        self,
        index: int,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        logprobs: list[dict[str, Any]] | None = None,
    ) -> bytes:
        """A chat chunk for choice ``index``: ``delta`` (role, content or tool_calls), finish, logprobs."""
        lp = chat_logprobs(logprobs) if logprobs is not None else None
        choice = {"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish_reason}
        return self._data([choice], None)

    def text(
        self, index: int, text: str, finish_reason: str | None = None, logprobs: dict[str, Any] | None = None
    ) -> bytes:
        """A completions chunk for choice ``index``."""
        choice = {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}
        return self._data([choice], None)

    def usage(self, usage_: dict[str, Any]) -> bytes:
        """The extra chunk of ``stream_options.include_usage``: empty ``choices``, the usage."""
        return self._data([], usage_)

    def _data(self, choices: list[dict[str, Any]], usage_: dict[str, Any] | None) -> bytes:
        tail = json.dumps(choices, ensure_ascii=False)
        if self.include_usage:
            tail += ', "usage": ' + json.dumps(usage_, ensure_ascii=False)
        return self._head + tail.encode() + _CHUNK_END


class ChatChoiceStream:
    """The chunks of one streamed chat choice, with tool calls read back from the generated text.

    Text is streamed as it comes. A tool call is sent whole in one ``tool_calls`` delta when the
    generation ends (its JSON is only known complete then); with ``tool_choice`` ``auto`` the text is
    held back only while it could still be the start of the call tag.
    """

    def __init__(self, chunks: Chunks, index: int, plan: ToolPlan | None, *, logprobs: bool) -> None:
        self.chunks = chunks
        self.index = index
        self.plan = plan
        self.logprobs = logprobs
        self.state: Literal["text", "undecided", "call"] = (
            "text" if plan is None else ("call" if plan.mode == "required" else "undecided")
        )
        self.held = ""

    def start(self) -> bytes:
        """The first chunk: the assistant role."""
        return self.chunks.chat(self.index, {"role": "assistant", "content": ""})

    def delta(self, text: str, entries: list[dict[str, Any]]) -> list[bytes]:
        """Chunks for generated ``text`` (and its tokens' log probabilities)."""
        from agents.protocol import TOOL_CALL_TAG

        if self.state == "undecided":
            self.held += text
            if self.held.startswith(TOOL_CALL_TAG):
                self.state = "call"
            elif not TOOL_CALL_TAG.startswith(self.held):
                self.state, text, self.held = "text", self.held, ""
        elif self.state == "call":
            self.held += text
        if self.state != "text" or not (text or entries):
            return []
        return [self.chunks.chat(self.index, {"content": text}, logprobs=entries if self.logprobs else None)]

    def finish(self, out: GenerateOutput) -> list[bytes]:
        """The closing chunks: a tool call (or the held-back text), then the finish reason."""
        out_chunks: list[bytes] = []
        reason = finish_reason(out)
        if self.state != "text" and self.plan is not None:
            parsed = parse_call(self.plan, self.held)
            if parsed.call is not None:
                call = {"index": 0, **parsed.call}
                out_chunks.append(self.chunks.chat(self.index, {"tool_calls": [call]}))
                reason = "tool_calls"
            elif self.held:
                out_chunks.append(self.chunks.chat(self.index, {"content": self.held}))
        out_chunks.append(self.chunks.chat(self.index, {}, reason))
        return out_chunks


class TextChoiceStream:
    """The chunks of one streamed completions choice (``echo`` sends the prompt first)."""

    def __init__(self, chunks: Chunks, index: int, echo: str | None, *, logprobs: bool) -> None:
        self.chunks = chunks
        self.index = index
        self.echo = echo
        self.legacy = TextLogprobs(len(echo or "")) if logprobs else None

    def start(self) -> bytes | None:
        """The echoed prompt, if asked for."""
        return self.chunks.text(self.index, self.echo) if self.echo else None

    def delta(self, text: str, entries: list[dict[str, Any]]) -> list[bytes]:
        """A chunk for generated ``text``."""
        lp = self.legacy.add(entries) if self.legacy is not None and entries else None
        if not text and lp is None:
            return []
        return [self.chunks.text(self.index, text, logprobs=lp)]

    def finish(self, out: GenerateOutput) -> list[bytes]:
        """The chunk with the finish reason."""
        return [self.chunks.text(self.index, "", finish_reason(out))]
