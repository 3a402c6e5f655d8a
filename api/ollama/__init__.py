"""Ollama's HTTP API beside OpenAI's, so that Ollama clients work unchanged.

``/api/chat``, ``/api/generate``, ``/api/embed`` (and the legacy ``/api/embeddings``), ``/api/tags``,
``/api/show``, ``/api/ps``, ``/api/version``; NDJSON streaming (on by default, as Ollama does). The
routes are in ``api.ollama.routes`` (wired by ``api.app``); the request bodies in ``api.ollama.schemas``.
"""

from api.ollama.schemas import (
    OllamaChatRequest,
    OllamaEmbeddingsRequest,
    OllamaEmbedRequest,
    OllamaGenerateRequest,
    OllamaMessage,
    OllamaModelRequest,
)

__all__ = (
    "OllamaChatRequest",
    "OllamaEmbedRequest",
    "OllamaEmbeddingsRequest",
    "OllamaGenerateRequest",
    "OllamaMessage",
    "OllamaModelRequest",
)
