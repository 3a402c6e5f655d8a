"""What the ``similarity`` agent needs from an embedder, and a light one that needs no vault.

:class:`TextEmbedder` is the one method the agent calls. :class:`bridges.vault.VaultBridge` satisfies it
(so in a process that runs the Storage team the agent can share the team's bridge and model), and so does
:class:`MiniLMEmbedding`: all-MiniLM-L6-v2 (`vault.MiniLMEmbedder`) on its own, without opening a vault
(no data directory, no key-encryption key, no lock), for a process that runs only the Analysis team.
Both produce the same vectors: same model, same normalisation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.to_thread
import numpy as np
from numpy.typing import NDArray

from bridges.errors import BridgeTimeoutError
from vault import MiniLMEmbedder

if TYPE_CHECKING:
    from bridges.vault import VaultBridge

__all__ = ("EMBEDDING_MODEL", "MiniLMEmbedding", "TextEmbedder")

EMBEDDING_MODEL = "all-MiniLM-L6-v2"
"""The sentence embedder (Reimers & Gurevych, "Sentence-BERT", EMNLP 2019; 384-d, L2-normalised)."""


class TextEmbedder(Protocol):
    """Embeds texts asynchronously (implemented by :class:`bridges.vault.VaultBridge`)."""

    async def embed(
        self, texts: Sequence[str], *, timeout_s: float | None = None
    ) -> tuple[NDArray[np.float32], list[int]]:
        """Embed ``texts``.

        Args:
            texts: ``n`` non-empty strings.
            timeout_s: Upper bound of the call, in seconds.

        Returns:
            ``(vectors, tokens)``: a ``(n, dim)`` float32 array with L2-normalised rows, and the tokens
            the model read per text (after truncation).

        Raises:
            BridgeTimeoutError: The call exceeded its timeout.
        """
        ...


class MiniLMEmbedding:
    """all-MiniLM-L6-v2 behind :class:`TextEmbedder`, in worker threads, without a vault.

    Args:
        embedder: The model (loaded lazily on the first call unless :meth:`load` ran).
        timeout_s: Default upper bound of one call, in seconds.
        max_threads: Embedding calls that may run in threads at once (the model serialises its forward
            passes; more threads only queue).
    """

    def __init__(
        self, embedder: MiniLMEmbedder | None = None, *, timeout_s: float = 60.0, max_threads: int = 1
    ) -> None:
        self.embedder = embedder or MiniLMEmbedder()
        self.timeout_s = timeout_s
        self.calls = 0
        self.seconds_total = 0.0
        self._limiter = anyio.CapacityLimiter(max_threads)

    async def load(self) -> None:
        """Load the model now, in a thread (about 0.5 s plus the torch import)."""
        await anyio.to_thread.run_sync(self.embedder.load)

    async def embed(
        self, texts: Sequence[str], *, timeout_s: float | None = None
    ) -> tuple[NDArray[np.float32], list[int]]:
        """Embed ``texts``; see :meth:`TextEmbedder.embed`.

        Raises:
            BridgeTimeoutError: The call exceeded ``timeout_s`` (or the default).
        """
        limit = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        batch = list(texts)

        def run() -> tuple[NDArray[np.float32], list[int]]:
            return self.embedder.embed(batch), self.embedder.count_tokens(batch)

        started = time.perf_counter()
        self.calls += 1
        try:
            with anyio.fail_after(max(limit, 0.0)):
                return await anyio.to_thread.run_sync(run, abandon_on_cancel=True, limiter=self._limiter)
        except TimeoutError:
            raise BridgeTimeoutError("embed", limit) from None
        finally:
            self.seconds_total += time.perf_counter() - started


if TYPE_CHECKING:  # both embedders satisfy the protocol (checked by mypy only)
    _vault_bridge: type[TextEmbedder] = VaultBridge
    _minilm: type[TextEmbedder] = MiniLMEmbedding
