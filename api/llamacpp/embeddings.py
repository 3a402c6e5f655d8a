"""llama-server's native ``POST /embeddings`` (and its legacy ``/embedding``); ``/v1/embeddings`` is OpenAI's.

llama-server (``tools/server/server.cpp``, ``handle_embeddings_impl`` with ``OAICOMPAT_TYPE_NONE``) reads
the text from ``input`` or ``content`` (a string, or a list of strings) and answers a JSON array with one
``{"index": i, "embedding": [[...]]}`` per input: with a pooling model, the pooled, L2-normalised vector
wrapped in a list (``embd_normalize`` 2, its default). Here the vectors are all-MiniLM-L6-v2's (384-d, mean
pooled, L2-normalised), computed by the Storage team's ``embedder`` agent; an input over the model's
256-token window is refused (400 naming ``input[i]``), as the OpenAI route does.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.datastructures import State
from litestar.params import JSONBody
from pydantic import BaseModel, ConfigDict, Field

from agents.errors import BadInputError
from agents.storage.wire import MAX_EMBED_TEXTS
from api._embedder import call_embedder, input_index
from api.generate.schemas import MAX_PROMPT_CHARS

__all__ = ("LlamaEmbeddingRequest", "embedding_alias", "native_embeddings")

_Text = str | list[str]


class LlamaEmbeddingRequest(BaseModel):
    """Body of ``POST /embeddings``: ``input`` or ``content`` (unknown fields ignored, as llama-server)."""

    model_config = ConfigDict(extra="ignore")

    input: _Text | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    content: _Text | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    """llama-server's older name of ``input`` (``input`` wins when both are given)."""

    def texts(self) -> tuple[list[str], str]:
        """The texts to embed and the field they came from.

        Raises:
            BadInputError: Neither ``input`` nor ``content``, no text, or more than 256 texts.
        """
        field = "input" if self.input is not None else "content"
        given = self.input if self.input is not None else self.content
        if given is None:
            raise BadInputError('"input" or "content" must be provided', field="input")
        texts = [given] if isinstance(given, str) else list(given)
        if not texts:
            raise BadInputError("must hold at least one text", field=field)
        if len(texts) > MAX_EMBED_TEXTS:
            raise BadInputError(f"holds {len(texts)} texts, over the limit of {MAX_EMBED_TEXTS}", field=field)
        return texts, field


async def _native_embeddings(
    data: JSONBody[LlamaEmbeddingRequest], request: Request[Any, Any, Any], state: State
) -> list[dict[str, Any]]:
    """``[{"index": i, "embedding": [vector]}, ...]`` of each text, as llama-server's native route answers.

    Errors: 400 no text, over 256 texts or an input over the model's window, 429, 503, 504.
    """
    texts, field = data.texts()
    try:
        out = await call_embedder(request, state, texts, truncate=False)
    except BadInputError as exc:  # the agent names texts.<i>; the client sent input[<i>] (or content)
        index = input_index(exc.field)
        raise type(exc)(exc.message, field=field if index is None else f"{field}[{index}]") from None
    return [{"index": i, "embedding": [vector]} for i, vector in enumerate(out.vectors)]


native_embeddings = post("/embeddings", status_code=200, summary="llama-server-compatible embeddings")(
    _native_embeddings
)
embedding_alias = post("/embedding", status_code=200, include_in_schema=False)(_native_embeddings)
"""llama-server's legacy ``POST /embedding``: the same function (listed once in the schema)."""
