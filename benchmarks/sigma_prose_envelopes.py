"""The three request envelopes of `benchmarks.sigma_corpus_prose`, as their clients serialise them.

- ``openai``: Chat Completions as the Python SDK sends it (``json.dumps`` defaults: ``", "``/``": "``
  separators, non-ASCII as ``\\uXXXX``); tool calls with JSON-string ``arguments``, tool results as
  ``role: tool`` messages whose ``content`` is a JSON list (JSON inside JSON).
- ``anthropic``: Messages API as a JavaScript client sends it (``JSON.stringify``: compact, raw UTF-8);
  ``system`` as a text block with ``cache_control``, ``tool_use`` / ``tool_result`` content blocks.
- ``ollama``: ``/api/chat`` as a Go client sends it (``encoding/json``: compact, raw UTF-8 but ``<``,
  ``>``, ``&``, U+2028 and U+2029 escaped, map keys sorted), tool results as plain text.

Rendering depends only on its arguments: the same history renders to the same messages in every turn
(tool-call ids and request options are derived from the session id, not drawn).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.sigma_corpus_prose import Passage
    from benchmarks.sigma_prose_apps import App

__all__ = ("ENVELOPES", "Exchange", "render")

ENVELOPES = ("openai", "anthropic", "ollama")
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One user question and what followed: the search query (None: no tool), the hits, the answer."""

    question: str
    query: str | None
    hits: list[Passage]
    answer: str


def _digest(*parts: object) -> int:
    return int.from_bytes(
        hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest(), "big"
    )


def _token(n: int, length: int) -> str:
    out = []
    for _ in range(length):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(out)


def _results(sid: str, index: int, hits: list[Passage]) -> list[dict[str, Any]]:
    noise = _digest(sid, index) % 1000 / 1e5
    return [
        {
            "id": p.doc_id,
            "source": p.source,
            "title": p.title,
            "score": round(0.91 - 0.083 * i - noise, 4),
            "text": p.text,
        }
        for i, p in enumerate(hits)
    ]


def _context_block(hits: list[Passage]) -> str:
    return "\n\n".join(f"[{i}] {p.source} \u2014 {p.title}\n{p.text}" for i, p in enumerate(hits, 1))


def _sorted(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted(v) for v in obj]
    return obj


def _messages(envelope: str, app: App, sid: str, history: list[Exchange]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, ex in enumerate(history):
        if app.inline and ex.hits:
            out.append(
                {"role": "user", "content": f"Context:\n{_context_block(ex.hits)}\n\nQuestion: {ex.question}"}
            )
        else:
            out.append({"role": "user", "content": ex.question})
        if ex.query is not None and ex.hits:
            args = {"query": ex.query, "top_k": 4}
            results = _results(sid, index, ex.hits)
            if envelope == "openai":
                call = f"call_{_token(_digest(sid, index, 'call'), 24)}"
                fn = {"name": "search_docs", "arguments": json.dumps(args)}
                out.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"id": call, "type": "function", "function": fn}],
                    }
                )
                out.append({"role": "tool", "tool_call_id": call, "content": json.dumps(results)})
            elif envelope == "anthropic":
                call = f"toolu_01{_token(_digest(sid, index, 'call'), 22)}"
                text = {"type": "text", "text": "I'll search the documentation for that."}
                use = {"type": "tool_use", "id": call, "name": "search_docs", "input": args}
                out.append({"role": "assistant", "content": [text, use]})
                content = json.dumps(results, ensure_ascii=False, separators=(",", ":"))
                out.append(
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": call, "content": content}],
                    }
                )
            else:
                out.append(
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [{"function": {"name": "search_docs", "arguments": _sorted(args)}}],
                    }
                )
                out.append({"role": "tool", "content": _context_block(ex.hits), "tool_name": "search_docs"})
        if ex.answer:
            out.append({"role": "assistant", "content": ex.answer})
    return out


def render(envelope: str, app: App, system: str, history: list[Exchange], sid: str) -> bytes:
    """One request: ``app``'s system prompt and tools, then ``history`` in ``envelope`` (`ENVELOPES`).

    Raises:
        ValueError: Unknown envelope.
    """
    h = _digest(sid, "options")
    messages = _messages(envelope, app, sid, history)
    if envelope == "openai":
        tools = [
            {"type": "function", "function": {"name": n, "description": d, "parameters": p}}
            for n, d, p in app.tools
        ]
        body: dict[str, Any] = {
            "model": ("gpt-4o-mini", "gpt-4.1", "gpt-4o")[h % 3],
            "messages": [{"role": "system", "content": system}, *messages],
            "tools": tools,
            "tool_choice": "auto",
            "temperature": (0.0, 0.2, 0.7)[h // 3 % 3],
            "user": f"user-{h % 100000:05d}",
        }
        return json.dumps(body).encode()
    if envelope == "anthropic":
        body = {
            "model": ("claude-sonnet-4-5", "claude-haiku-4-5")[h % 2],
            "max_tokens": (1024, 2048, 4096)[h // 2 % 3],
            "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": n, "description": d, "input_schema": p} for n, d, p in app.tools],
            "messages": messages,
            "metadata": {"user_id": f"{app.name}:{h % 100000:05d}"},
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    if envelope == "ollama":
        tools = [
            {"type": "function", "function": {"name": n, "description": d, "parameters": _sorted(p)}}
            for n, d, p in app.tools
        ]
        body = {
            "model": ("qwen3:8b", "llama3.1:8b", "mistral-nemo:12b")[h % 3],
            "messages": [{"role": "system", "content": system}, *messages],
            "tools": tools,
            "options": {"num_ctx": 16384, "temperature": (0.1, 0.3)[h // 3 % 2]},
            "stream": False,
            "keep_alive": "10m",
        }
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        for raw, escaped in _GO_ESCAPES.items():
            text = text.replace(raw, escaped)
        return text.encode()
    raise ValueError(f"unknown envelope {envelope!r}; expected one of {ENVELOPES}")
