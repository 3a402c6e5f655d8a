"""The Storage team's ``embedder`` agent called for an API route: one call path for every embeddings route.

OpenAI's ``POST /v1/embeddings``, Ollama's ``/api/embed`` and ``/api/embeddings`` and llama-server's native
``POST /embeddings`` each check and shape their own bodies, then embed through :func:`call_embedder`; an
input the agent refuses names it ``texts.<i>`` (or ``token_ids.<i>``), which :func:`input_index` reads so
that each route can name the field its client sent.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State

from agents.storage.wire import EmbedInput, EmbedOutput
from api._request import call_context
from orchestrator import Orchestrator

__all__ = ("call_embedder", "input_index")


async def call_embedder(
    request: Request[Any, Any, Any],
    state: State,
    texts: list[str],
    *,
    truncate: bool,
    token_ids: list[list[int]] | None = None,
) -> EmbedOutput:
    """The vectors of ``texts`` (or of ``token_ids``), from the Storage team's ``embedder`` (nothing stored).

    Args:
        request: The route's request (its credential, tenant and deadline travel with the call).
        state: The app's state (its orchestrator).
        texts: The texts to embed (empty when ``token_ids`` are given).
        truncate: Cut an input over the model's window (else the agent refuses it).
        token_ids: Inputs already tokenised with the embedding model's vocabulary, or None.

    Raises:
        BadInputError: The agent refused an input; its field is ``texts.<i>`` / ``token_ids.<i>``.
        AgentError: Any other failure of the call (429, 503, 504 at the API).
    """
    orchestrator: Orchestrator = state.orchestrator
    payload = EmbedInput(texts=texts, token_ids=token_ids, truncate=truncate).model_dump(exclude_none=True)
    ctx = call_context(orchestrator, request)
    raw = await orchestrator.call("storage", "embedder", payload, ctx, idempotent=True)
    return EmbedOutput.model_validate(raw)


def input_index(agent_field: str | None) -> str | None:
    """The ``<i>`` of the embedder's ``texts.<i>`` / ``token_ids.<i>`` error field (digits), or None."""
    _, _, index = (agent_field or "").partition(".")
    return index if index.isdigit() else None
