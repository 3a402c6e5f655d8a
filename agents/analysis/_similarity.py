"""The ``similarity`` agent: semantic (embedding cosine) and lexical (Jaccard) similarity of texts.

Semantic: cosine of all-MiniLM-L6-v2 sentence embeddings (Reimers & Gurevych, "Sentence-BERT", 2019),
through a :class:`~agents.analysis._embedding.TextEmbedder` (the vault bridge, or the model on its own).
The rows are L2-normalised, so the cosine is their dot product, in [-1, 1]. The model reads at most 256
WordPiece tokens of a text; longer texts are compared on their beginning (``truncated`` says so).

Lexical: Jaccard index of the lower-cased word sets, ``|A ∩ B| / |A ∪ B|`` in [0, 1] (P. Jaccard, 1901):
paraphrases score high on cosine and low on Jaccard. The Jaccard indexes of a call (up to 256 candidates
of 20,000 characters: ~0.5 s of tokenising) are computed in a worker thread, not on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, Field

from agents.actor import Call
from agents.analysis._base import AnalysisAgent, AnalysisInput, AnalysisOutput, check_chars
from agents.analysis._embedding import EMBEDDING_MODEL, TextEmbedder
from agents.analysis._text import words
from agents.errors import BadInputError, DeadlineExceededError
from agents.limits import NATS_MAX_PAYLOAD_BYTES
from bridges.errors import BridgeTimeoutError

__all__ = (
    "MAX_CANDIDATES",
    "MAX_SIMILARITY_CHARS",
    "MODEL_MAX_TOKENS",
    "Match",
    "SimilarityAgent",
    "SimilarityInput",
    "SimilarityOutput",
    "jaccard",
    "jaccard_each",
)

MAX_CANDIDATES = 256
"""Most candidates one call ranks (count)."""
MAX_SIMILARITY_CHARS = 20_000
"""Longest text or candidate, in characters (the model reads only its first 256 tokens anyway)."""
MODEL_MAX_TOKENS = 256
"""Tokens all-MiniLM-L6-v2 reads per text (its ``max_seq_length``); longer texts are truncated."""


def _jaccard_sets(sa: set[str], sb: set[str]) -> float:
    union = sa | sb
    return len(sa & sb) / len(union) if union else 0.0


def jaccard(a: str, b: str) -> float:
    """Jaccard index of the lower-cased word sets of ``a`` and ``b``, in [0, 1] (0.0 if both are empty)."""
    return _jaccard_sets(set(words(a)), set(words(b)))


def jaccard_each(text: str, others: Sequence[str]) -> list[float]:
    """:func:`jaccard` of ``text`` with each of ``others``, in order (``text`` tokenised once; blocking)."""
    base = set(words(text))
    return [_jaccard_sets(base, set(words(other))) for other in others]


class SimilarityInput(AnalysisInput):
    """Input of ``similarity``: ``text`` against either ``other`` or a list of ``candidates``."""

    text: str = Field(min_length=1, description="The text (or query), at most 20,000 characters.")
    other: str | None = Field(default=None, min_length=1, description="A second text to compare with.")
    candidates: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_CANDIDATES, description="Texts to rank against ``text``."
    )
    top_k: int | None = Field(default=None, ge=1, le=MAX_CANDIDATES, description="Only the best k matches.")


class Match(AnalysisOutput):
    """How similar one text is to ``text``."""

    index: int = Field(description="Position in ``candidates`` (0 for ``other``).")
    cosine: float = Field(description="Cosine of the embeddings, in [-1, 1]; higher is more similar.")
    jaccard: float = Field(description="Jaccard index of the word sets, in [0, 1].")
    rank: int = Field(description="1 for the most similar by cosine.")


class SimilarityOutput(AnalysisOutput):
    """Output of ``similarity``: matches ranked by cosine, best first."""

    matches: list[Match]
    best: int = Field(description="Index of the most similar text.")
    cosine: float = Field(description="Cosine of the best match.")
    jaccard: float = Field(description="Jaccard index of the best match.")
    model: str
    truncated: bool = Field(description=f"Some text exceeded the model's {MODEL_MAX_TOKENS} tokens.")
    summary: str


class SimilarityAgent(AnalysisAgent):
    """Compares texts by meaning (all-MiniLM-L6-v2 cosine) and by words (Jaccard), ranking candidates.

    Args:
        embedder: Where the vectors come from: the Storage team's :class:`bridges.vault.VaultBridge`
            or a :class:`~agents.analysis._embedding.MiniLMEmbedding`.
        limiter: See :class:`~agents.analysis._base.AnalysisAgent`.
    """

    name = "similarity"
    description = (
        "Measures how similar two texts are in meaning (embedding cosine) and in wording (Jaccard), or "
        "ranks a list of candidate texts by semantic similarity to a query."
    )
    capabilities = (
        "similarity", "compare", "rank", "match", "semantic", "duplicate", "same", "similar", "alike",
    )  # fmt: skip
    bridges: ClassVar[tuple[str, ...]] = ("vault",)
    input_model: ClassVar[type[BaseModel]] = SimilarityInput
    max_input_bytes = NATS_MAX_PAYLOAD_BYTES  # up to 258 texts of 20,000 characters: only the wire bounds it
    output_model: ClassVar[type[BaseModel]] = SimilarityOutput

    def __init__(self, embedder: TextEmbedder, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.embedder = embedder

    def metadata(self) -> dict[str, str]:
        """The embedding model's name."""
        return {"model": EMBEDDING_MODEL}

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Compare ``text`` with ``other`` or rank ``candidates`` (a :class:`SimilarityInput`).

        Raises:
            BadInputError: Neither or both of ``other`` and ``candidates``; an empty text.
            TooLargeError: A text is longer than 20,000 characters.
            DeadlineExceededError: Embedding did not finish before the deadline.
        """
        inp: SimilarityInput = call.input
        if (inp.other is None) == (inp.candidates is None):
            raise BadInputError("give exactly one of 'other' and 'candidates'", field="candidates")
        named = [("text", inp.text)]
        if inp.other is not None:
            named.append(("other", inp.other))
        else:
            named += [(f"candidates.{i}", c) for i, c in enumerate(inp.candidates or [])]
        for field, text in named:
            check_chars(field, text, MAX_SIMILARITY_CHARS)
            if not text.strip():
                raise BadInputError("must not be empty or only white space", field=field)
        texts = [t for _, t in named]
        try:
            vectors, tokens = await self.embedder.embed(texts, timeout_s=max(call.remaining_s(), 0.001))
        except BridgeTimeoutError as exc:
            raise DeadlineExceededError(str(exc)) from exc
        cosines = np.clip(vectors[1:] @ vectors[0], -1.0, 1.0)
        # Tokenising up to 257 texts of 20,000 characters takes ~0.5 s: not on the event loop.
        lexical = await self.in_thread(jaccard_each, inp.text, texts[1:])
        order = sorted(range(len(cosines)), key=lambda i: -float(cosines[i]))
        matches = [
            Match(index=i, cosine=round(float(cosines[i]), 6), jaccard=lexical[i], rank=r)
            for r, i in enumerate(order, start=1)
        ]
        best = matches[0]
        what = "other" if inp.other is not None else f"candidate {best.index} of {len(matches)}"
        out = SimilarityOutput(
            matches=matches[: inp.top_k] if inp.top_k else matches,
            best=best.index,
            cosine=best.cosine,
            jaccard=best.jaccard,
            model=EMBEDDING_MODEL,
            truncated=any(t >= MODEL_MAX_TOKENS for t in tokens),
            summary=f"best: {what} (cosine {best.cosine:.3f}, jaccard {best.jaccard:.3f})",
        )
        return out.model_dump()
