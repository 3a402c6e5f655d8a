"""llama.cpp server's utility routes (``tools/server/README.md`` of llama.cpp), with the same shapes.

=====================  ========================================================================
``POST /tokenize``      ``{"content", "add_special", "with_pieces"}`` → ``{"tokens": [...]}``
``POST /detokenize``    ``{"tokens": [...]}`` → ``{"content": "..."}``
``GET  /props``         the default model: context window, slots, chat template, build
``POST /completion``    a completion in llama-server's shape (:mod:`api.llamacpp.completion`); also
                        ``/completions``, as llama-server (``/v1/completions`` is OpenAI's)
``POST /embeddings``    llama-server's native embeddings (:mod:`api.llamacpp.embeddings`); also
                        ``/embedding`` (``/v1/embeddings`` is OpenAI's)
=====================  ========================================================================

llama-server's ``GET /models`` and ``POST /chat/completions`` (without ``/v1``) answer as OpenAI's: they
are :mod:`api.openai`'s handlers, mounted at the root as well.

Tokens are the default generation model's (the Inference team's ``tokenizer`` agent does the work).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.datastructures import State
from litestar.params import JSONBody
from pydantic import BaseModel, ConfigDict, Field

from api._request import call_context
from api.llamacpp.completion import completion, completions_alias
from api.llamacpp.embeddings import embedding_alias, native_embeddings
from orchestrator import Orchestrator

__all__ = ("ROUTES", "DetokenizeRequest", "TokenizeRequest")

_MAX_TOKENS = 100_000


class TokenizeRequest(BaseModel):
    """Body of ``POST /tokenize``."""

    model_config = ConfigDict(extra="ignore")

    content: str = Field(max_length=200_000)
    add_special: bool = False
    """Prepend the beginning-of-sequence token (llama-server's default: false)."""
    with_pieces: bool = False
    """Answer ``[{"id", "piece"}, ...]`` instead of ids."""


class DetokenizeRequest(BaseModel):
    """Body of ``POST /detokenize``."""

    model_config = ConfigDict(extra="ignore")

    tokens: list[int] = Field(max_length=_MAX_TOKENS)


@post("/tokenize", status_code=200, summary="llama-server-compatible tokenization")
async def tokenize(
    data: JSONBody[TokenizeRequest], request: Request[Any, Any, Any], state: State
) -> dict[str, Any]:
    """The default model's token ids of ``content`` (with their text when ``with_pieces``)."""
    orchestrator: Orchestrator = state.orchestrator
    payload = {"text": data.content, "add_bos": data.add_special, "pieces": data.with_pieces}
    ctx = call_context(orchestrator, request)
    out = await orchestrator.call("inference", "tokenizer", payload, ctx, idempotent=True)
    tokens: list[int] = out.get("tokens") or []
    if data.with_pieces:
        return {
            "tokens": [{"id": t, "piece": p} for t, p in zip(tokens, out.get("pieces") or [], strict=True)]
        }
    return {"tokens": tokens}


@post("/detokenize", status_code=200, summary="llama-server-compatible detokenization")
async def detokenize(
    data: JSONBody[DetokenizeRequest], request: Request[Any, Any, Any], state: State
) -> dict[str, Any]:
    """The text of the default model's token ids."""
    orchestrator: Orchestrator = state.orchestrator
    if not data.tokens:
        return {"content": ""}
    ctx = call_context(orchestrator, request)
    out = await orchestrator.call("inference", "tokenizer", {"tokens": data.tokens}, ctx, idempotent=True)
    return {"content": out.get("text") or ""}


@get("/props", summary="llama-server-compatible server properties")
async def props(state: State) -> dict[str, Any]:
    """The default generation model: ``model_path`` (its name), ``n_ctx``, ``total_slots``, ..."""
    orchestrator: Orchestrator = state.orchestrator
    models = [m for m in await orchestrator.models() if m.kind == "generation"]
    default = next((m for m in models if m.default), models[0] if models else None)
    n_ctx = default.n_ctx if default is not None else None
    return {
        "default_generation_settings": {"n_ctx": n_ctx, "params": {}},
        "total_slots": default.parallel if default is not None else 0,
        "model_path": default.id if default is not None else "",
        "model_alias": default.id if default is not None else "",
        "modalities": {"vision": False, "audio": False},
        "chat_template": "",
        "build_info": "neurectomy 0.1.0",
    }


ROUTES = (
    Router(
        path="/",
        route_handlers=[
            tokenize,
            detokenize,
            props,
            completion,
            completions_alias,
            native_embeddings,
            embedding_alias,
        ],
        tags=["llama-server-compatible"],
    ),
)
"""The llama-server-compatible router."""
