"""The Storage team's ``embedder`` agent: texts → all-MiniLM-L6-v2 vectors, with nothing stored.

It shares the team's :class:`~bridges.vault.VaultBridge`, so the vectors are exactly those the vault
indexes and searches with (same model, same normalisation). The API's ``POST /v1/embeddings`` calls it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import anyio

from agents.actor import Call
from agents.errors import BadInputError, ContextLengthExceededError
from agents.limits import NATS_MAX_PAYLOAD_BYTES
from agents.storage._base import StorageAgent
from agents.storage.wire import EmbedInput, EmbedOutput
from vault import MiniLMEmbedder

__all__ = ("EMBEDDING_MODEL", "EmbedderAgent")

EMBEDDING_MODEL = "all-MiniLM-L6-v2"
"""Name of the default embedding model (Reimers & Gurevych, "Sentence-BERT", 2019; 384-d)."""


class EmbedderAgent(StorageAgent):
    """Embeds a batch of texts with the vault's embedder and returns the vectors and token counts.

    Works in no tenant: nothing is read or written, so any caller may use it.
    """

    name = "embedder"
    description = "Turns texts into unit vectors with the vault's embedding model (nothing is stored)."
    capabilities = ("embed", "embeddings")
    input_model: ClassVar[type[EmbedInput]] = EmbedInput
    max_input_bytes = NATS_MAX_PAYLOAD_BYTES  # 256 texts of any length (embedded up to the model's tokens)
    output_model: ClassVar[type[EmbedOutput]] = EmbedOutput
    ops = ("embed",)

    @property
    def model_name(self) -> str:
        """The embedding model's name (``all-MiniLM-L6-v2`` unless the vault was given another embedder)."""
        embedder = self.bridge.vault.embedder
        return EMBEDDING_MODEL if isinstance(embedder, MiniLMEmbedder) else type(embedder).__name__

    def metadata(self) -> dict[str, str]:
        """Engine, vector dimension, model name, and ``internal``: a service, not a member of the team."""
        return {**super().metadata(), "model": self.model_name, "internal": "true"}

    def stats(self) -> dict[str, Any]:
        """Bridge counters, and ``model_facts``: the model's parameters, weights type and files.

        ``model_facts`` is :meth:`vault.MiniLMEmbedder.model_facts` (``{}`` for another embedder); the
        orchestrator's model listing reads it (``orchestrator._models``).
        """
        embedder = self.bridge.vault.embedder
        facts = embedder.model_facts() if isinstance(embedder, MiniLMEmbedder) else {}
        return {**super().stats(), "model_facts": facts}

    async def _decode(self, token_ids: list[list[int]]) -> list[str]:
        embedder = self.bridge.vault.embedder
        if not isinstance(embedder, MiniLMEmbedder):
            raise BadInputError("token ids need the MiniLM embedder", field="token_ids")
        try:
            return await anyio.to_thread.run_sync(embedder.decode, token_ids)
        except ValueError as exc:
            raise BadInputError(str(exc), field="token_ids") from None

    async def work(self, call: Call) -> EmbedOutput:
        """Embed ``call.input.texts`` (an :class:`EmbedInput`).

        Raises:
            BadInputError: A text is empty or only whitespace (the field names its position).
        """
        inp: EmbedInput = call.input
        texts, field = inp.texts, "texts"
        if inp.token_ids is not None:
            texts, field = await self._decode(inp.token_ids), "token_ids"
        if not texts:
            raise BadInputError("give at least one text (or token_ids)", field="texts")
        for i, text in enumerate(texts):
            if not text.strip():
                raise BadInputError("must not be empty or only whitespace", field=f"{field}.{i}")
        embedder = self.bridge.vault.embedder
        if not inp.truncate and isinstance(embedder, MiniLMEmbedder):
            counts, window = await anyio.to_thread.run_sync(embedder.untruncated_tokens, texts)
            for i, n in enumerate(counts):
                if n > window:
                    raise ContextLengthExceededError(
                        f"is {n} tokens, over {self.model_name}'s maximum input length of {window} tokens",
                        field=f"{field}.{i}",
                    )
        vectors, tokens = await self.bridge.embed(texts, timeout_s=self.timeout(call))
        return EmbedOutput(
            model=self.model_name,
            dim=int(vectors.shape[1]),
            vectors=vectors.tolist(),
            tokens=tokens,
        )
