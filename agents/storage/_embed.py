"""The Storage team's ``embedder`` agent: texts → all-MiniLM-L6-v2 vectors, with nothing stored.

It shares the team's :class:`~bridges.vault.VaultBridge`, so the vectors are exactly those the vault
indexes and searches with (same model, same normalisation). The API's ``POST /v1/embeddings`` calls it.
"""

from __future__ import annotations

from typing import ClassVar

from agents.actor import Call
from agents.errors import BadInputError
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
    output_model: ClassVar[type[EmbedOutput]] = EmbedOutput
    ops = ("embed",)

    @property
    def model_name(self) -> str:
        """The embedding model's name (``all-MiniLM-L6-v2`` unless the vault was given another embedder)."""
        embedder = self.bridge.vault.embedder
        return EMBEDDING_MODEL if isinstance(embedder, MiniLMEmbedder) else type(embedder).__name__

    def metadata(self) -> dict[str, str]:
        """Engine, vector dimension and model name."""
        return {**super().metadata(), "model": self.model_name}

    async def work(self, call: Call) -> EmbedOutput:
        """Embed ``call.input.texts`` (an :class:`EmbedInput`).

        Raises:
            BadInputError: A text is empty or only whitespace (the field names its position).
        """
        inp: EmbedInput = call.input
        for i, text in enumerate(inp.texts):
            if not text.strip():
                raise BadInputError("must not be empty or only whitespace", field=f"texts.{i}")
        vectors, tokens = await self.bridge.embed(inp.texts, timeout_s=self.timeout(call))
        return EmbedOutput(
            model=self.model_name,
            dim=int(vectors.shape[1]),
            vectors=vectors.tolist(),
            tokens=tokens,
        )
