"""The Python SDK: typed sync and async clients of the HTTP API (httpx, httpx-sse).

::

    from neurectomy import Client

    with Client() as client:                       # http://127.0.0.1:8420
        print(client.generate("Hello", max_tokens=16).text)
        for event in client.stream("Once upon a time", max_tokens=64):
            print(event.text if isinstance(event, TokenEvent) else event.usage)

Parts: the retry policy (:mod:`neurectomy.sdk._retry`) and what is sent and read
(:mod:`neurectomy.sdk._wire`); the resources (``client.vault``, ``client.tasks``, ...) live in their
own modules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from httpx_sse import EventSource, aconnect_sse, connect_sse

from api.generate.schemas import ChatMessage, GenerateResponse, Health
from api.openai.schemas import ModelList, ModelObject
from neurectomy.sdk._collective import (
    AgentsResource,
    AsyncAgentsResource,
    AsyncKeysResource,
    AsyncTasksResource,
    KeysResource,
    TasksResource,
)
from neurectomy.sdk._retry import _IDEMPOTENT, _async_retrying, _connect_failed, _retryable, _retrying
from neurectomy.sdk._retry import DEFAULT_MAX_RETRIES as DEFAULT_MAX_RETRIES
from neurectomy.sdk._retry import RETRY_ATTEMPTS as RETRY_ATTEMPTS
from neurectomy.sdk._sigma import AsyncSigmaResource, SigmaResource
from neurectomy.sdk._transport import DEFAULT_URL as DEFAULT_URL
from neurectomy.sdk._transport import transport_errors
from neurectomy.sdk._vault import AsyncVaultResource, VaultResource
from neurectomy.sdk._wire import StreamEvent as StreamEvent
from neurectomy.sdk._wire import Timeout as Timeout
from neurectomy.sdk._wire import _body, _embedding_body, _error, _event, _http_args, _timeout, _vectors


class Client:
    """Synchronous client.

    Args:
        base_url: Where the service listens (default: ``$NEURECTOMY_BASE_URL``, else
            ``http://127.0.0.1:8420``).
        timeout_s: Default timeout of a whole request, in seconds (each call can pass ``timeout``).
        api_key: Sent as a bearer token (default: ``$NEURECTOMY_API_KEY``; none when unset).
        max_retries: Extra tries of a request whose connection could not be made (any method) or of
            an idempotent one (GET, HEAD, DELETE) answered 429 or 503, honouring ``Retry-After``.
        transport: An httpx transport (e.g. ``httpx.ASGITransport`` or ``httpx.MockTransport`` in tests).
    Raises (from every call):
        APIError: The server answered with an error status (typed by status, see :mod:`.errors`).
        APIConnectionError: No answer (refused, reset, DNS, ...); APITimeoutError: none in time.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout_s: float = 120.0,
        api_key: str | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.max_retries = max_retries
        self._http = httpx.Client(transport=transport, **_http_args(base_url, timeout_s, api_key))
        self.base_url = str(self._http.base_url).rstrip("/")
        self.sigma = SigmaResource(self._send)
        self.vault = VaultResource(self._send)
        """ΣVAULT: records, search, shredding, keys, stats (see :class:`VaultResource`)."""
        self.agents = AgentsResource(self._send)
        """The collective: ``client.agents()`` lists them; ``.get``, ``.call``, ``.select``."""
        self.tasks = TasksResource(self._send, self._open_events)
        """Durable tasks: ``.submit``, ``.get``, ``.cancel``, ``.events``, ``.wait``."""
        self.keys = KeysResource(self._send)
        """API keys: ``.create``, ``.list``, ``.revoke`` (admin)."""

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise _error(response, response.content)
        return response

    @contextmanager
    def _open_events(self, method: str, path: str, **kwargs: Any) -> Iterator[EventSource]:
        """Open a server-sent event stream; raise the typed :class:`APIError` for an error status."""
        with transport_errors(self.base_url), connect_sse(self._http, method, path, **kwargs) as source:
            if source.response.status_code >= 400:
                raise _error(source.response, source.response.read())
            yield source

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; raise the typed :class:`APIError` for an error status.

        Retried (at most ``max_retries`` times) when the connection could not be made, and for
        idempotent methods (GET, HEAD, DELETE) on 429 and 503, honouring ``Retry-After``.
        """
        retryable = _retryable if method.upper() in _IDEMPOTENT else _connect_failed
        for attempt in _retrying(self.max_retries, retryable):
            with attempt, transport_errors(self.base_url):
                return self._check(self._http.request(method, path, **kwargs))
        raise AssertionError("unreachable")  # pragma: no cover - tenacity re-raises the last error

    def models(self, *, timeout: Timeout = None) -> list[ModelObject]:
        """The served models with their status (``GET /v1/models``).

        Generation models in configuration order, then the embedding model; pass an ``id`` as
        ``model=`` to :meth:`generate` or :meth:`stream`.
        """
        response = self._send("GET", "/v1/models", timeout=_timeout(timeout))
        return ModelList.model_validate_json(response.content).data

    def generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[ChatMessage | dict[str, str]] | None = None,
        timeout: Timeout = None,
        **options: Any,
    ) -> GenerateResponse:
        """Generate a completion; ``options`` are the :class:`api.generate.schemas.GenerateRequest` fields.

        ``timeout`` (seconds) bounds this call on the client side; ``timeout_s`` is the server's deadline.

        Raises:
            BadRequestError: The arguments are invalid (checked before sending, or by the server).
            APIError: 429, 503, 504, ... from the server.
            APIConnectionError: No answer (APITimeoutError: none within the timeout).
        """
        body = _body(prompt, messages, False, options)
        response = self._send("POST", "/v1/generate", json=body, timeout=_timeout(timeout))
        return GenerateResponse.model_validate_json(response.content)

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[ChatMessage | dict[str, str]] | None = None,
        timeout: Timeout = None,
        **options: Any,
    ) -> Iterator[StreamEvent]:
        """Stream a completion: :class:`TokenEvent` items, then one :class:`GenerateResponse`.

        Closing the iterator early closes the connection, which cancels the generation on the server.

        Raises:
            APIError: The server refused the request.
            StreamError: The stream ended with an error event.
        """
        body = _body(prompt, messages, True, options)
        with self._open_events("POST", "/v1/generate", json=body, timeout=_timeout(timeout)) as source:
            for sse in source.iter_sse():
                event = _event(sse)
                if event is not None:
                    yield event
                if isinstance(event, GenerateResponse):
                    return

    def chat(self, messages: Sequence[ChatMessage | dict[str, str]], **options: Any) -> GenerateResponse:
        """Answer a conversation with the model's chat template (see :meth:`generate` for ``options``)."""
        return self.generate(messages=messages, **options)

    def embeddings(self, texts: str | Sequence[str], *, timeout: Timeout = None) -> list[list[float]]:
        """Sentence embeddings (all-MiniLM-L6-v2): one unit-length vector of 384 floats per text, in order.

        Raises:
            BadRequestError: No text, an empty text, or more than 256 texts.
        """
        body = _embedding_body(texts)
        return _vectors(self._send("POST", "/v1/embeddings", json=body, timeout=_timeout(timeout)).json())

    def health(self, *, timeout: Timeout = None) -> Health:
        """Service health (also when degraded: no exception for 503 here)."""
        with transport_errors(self.base_url):
            return Health.model_validate_json(self._http.get("/health", timeout=_timeout(timeout)).content)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient:
    """Asynchronous client (same methods and arguments as :class:`Client`, awaitable)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout_s: float = 120.0,
        api_key: str | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_retries = max_retries
        self._http = httpx.AsyncClient(transport=transport, **_http_args(base_url, timeout_s, api_key))
        self.base_url = str(self._http.base_url).rstrip("/")
        self.sigma = AsyncSigmaResource(self._send)
        self.vault = AsyncVaultResource(self._send)
        """ΣVAULT calls (see :class:`AsyncVaultResource`)."""
        self.agents = AsyncAgentsResource(self._send)
        """See :attr:`Client.agents`."""
        self.tasks = AsyncTasksResource(self._send, self._open_events)
        """See :attr:`Client.tasks`."""
        self.keys = AsyncKeysResource(self._send)
        """See :attr:`Client.keys`."""

    async def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise _error(response, await response.aread())
        return response

    @asynccontextmanager
    async def _open_events(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[EventSource]:
        """See :meth:`Client._open_events`."""
        with transport_errors(self.base_url):
            async with aconnect_sse(self._http, method, path, **kwargs) as source:
                if source.response.status_code >= 400:
                    raise _error(source.response, await source.response.aread())
                yield source

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """See :meth:`Client._send` (same retries)."""
        retryable = _retryable if method.upper() in _IDEMPOTENT else _connect_failed
        async for attempt in _async_retrying(self.max_retries, retryable):
            with attempt, transport_errors(self.base_url):
                return await self._check(await self._http.request(method, path, **kwargs))
        raise AssertionError("unreachable")  # pragma: no cover - tenacity re-raises the last error

    async def models(self, *, timeout: Timeout = None) -> list[ModelObject]:  # noqa: ASYNC109 - a per-call client timeout
        """See :meth:`Client.models`."""
        response = await self._send("GET", "/v1/models", timeout=_timeout(timeout))
        return ModelList.model_validate_json(response.content).data

    async def generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[ChatMessage | dict[str, str]] | None = None,
        timeout: Timeout = None,  # noqa: ASYNC109 - a per-call client timeout
        **options: Any,
    ) -> GenerateResponse:
        """See :meth:`Client.generate`."""
        body = _body(prompt, messages, False, options)
        response = await self._send("POST", "/v1/generate", json=body, timeout=_timeout(timeout))
        return GenerateResponse.model_validate_json(response.content)

    async def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[ChatMessage | dict[str, str]] | None = None,
        timeout: Timeout = None,  # noqa: ASYNC109 - a per-call client timeout
        **options: Any,
    ) -> AsyncIterator[StreamEvent]:
        """See :meth:`Client.stream`."""
        body = _body(prompt, messages, True, options)
        async with self._open_events("POST", "/v1/generate", json=body, timeout=_timeout(timeout)) as source:
            async for sse in source.aiter_sse():
                event = _event(sse)
                if event is not None:
                    yield event
                if isinstance(event, GenerateResponse):
                    return

    async def chat(
        self, messages: Sequence[ChatMessage | dict[str, str]], **options: Any
    ) -> GenerateResponse:
        """See :meth:`Client.chat`."""
        return await self.generate(messages=messages, **options)

    async def embeddings(self, texts: str | Sequence[str], *, timeout: Timeout = None) -> list[list[float]]:  # noqa: ASYNC109 - a per-call client timeout
        """See :meth:`Client.embeddings`."""
        body = _embedding_body(texts)
        response = await self._send("POST", "/v1/embeddings", json=body, timeout=_timeout(timeout))
        return _vectors(response.json())

    async def health(self, *, timeout: Timeout = None) -> Health:  # noqa: ASYNC109 - a per-call client timeout
        """See :meth:`Client.health`."""
        with transport_errors(self.base_url):
            response = await self._http.get("/health", timeout=_timeout(timeout))
        return Health.model_validate_json(response.content)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
