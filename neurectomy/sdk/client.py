"""The Python SDK: typed sync and async clients of the HTTP API (httpx, httpx-sse).

::

    from neurectomy import Client

    with Client() as client:                       # http://127.0.0.1:8420
        print(client.generate("Hello", max_tokens=16).text)
        for event in client.stream("Once upon a time", max_tokens=64):
            print(event.text if isinstance(event, TokenEvent) else event.usage)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, aconnect_sse, connect_sse
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from api.generate.schemas import ChatMessage, GenerateRequest, GenerateResponse, Health, TokenEvent
from api.openai.schemas import ModelList, ModelObject
from neurectomy.sdk._collective import (
    AgentsResource,
    AsyncAgentsResource,
    AsyncKeysResource,
    AsyncTasksResource,
    KeysResource,
    TasksResource,
)
from neurectomy.sdk._sigma import AsyncSigmaResource, SigmaResource
from neurectomy.sdk._vault import AsyncVaultResource, VaultResource
from neurectomy.sdk.errors import (
    APIError,
    BadRequestError,
    BusyError,
    StreamError,
    UnavailableError,
    api_error,
)

DEFAULT_URL = "http://127.0.0.1:8420"
_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})
RETRY_ATTEMPTS = 4
"""Tries of an idempotent request that meets 429 or 503 (the first included)."""


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, BusyError | UnavailableError)


def _wait(state: RetryCallState) -> float:
    """``Retry-After`` when the server sent one, else exponential backoff (0.25 s, 0.5 s, 1 s, ...)."""
    exc = state.outcome.exception() if state.outcome is not None else None
    hinted = getattr(exc, "retry_after_s", None)
    backoff = float(wait_exponential(multiplier=0.25, max=4.0)(state))
    return min(float(hinted), 10.0) if hinted else backoff


def _retrying() -> Retrying:
    return Retrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(RETRY_ATTEMPTS),
        wait=_wait,
        reraise=True,
    )


def _async_retrying() -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(RETRY_ATTEMPTS),
        wait=_wait,
        reraise=True,
    )


StreamEvent = TokenEvent | GenerateResponse


def _body(
    prompt: str | None,
    messages: Sequence[ChatMessage | dict[str, str]] | None,
    stream: bool,
    options: dict[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {"stream": stream, **{k: v for k, v in options.items() if v is not None}}
    if prompt is not None:
        body["prompt"] = prompt
    if messages is not None:
        body["messages"] = [m.model_dump() if isinstance(m, ChatMessage) else dict(m) for m in messages]
    try:
        GenerateRequest.model_validate(body)  # fail fast, with the same rules as the server
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise BadRequestError(400, "bad_request", f"{field}: {first['msg']}", field=field) from None
    return body


def _error(response: httpx.Response, content: bytes) -> APIError:
    try:
        detail = json.loads(content)["error"]
        code, message = str(detail["code"]), str(detail["message"])
        field = detail.get("field", detail.get("param"))  # our shape, or OpenAI's on /v1/chat/... routes
        request_id = json.loads(content).get("request_id")
    except (ValueError, KeyError, TypeError):
        code, message, field, request_id = "http_error", content.decode(errors="replace")[:500], None, None
    return api_error(
        response.status_code,
        code,
        message,
        field=field,
        request_id=request_id or response.headers.get("x-request-id"),
        retry_after=response.headers.get("retry-after"),
    )


def _embedding_body(texts: str | Sequence[str]) -> dict[str, Any]:
    return {"model": "all-MiniLM-L6-v2", "input": texts if isinstance(texts, str) else list(texts)}


def _vectors(body: dict[str, Any]) -> list[list[float]]:
    return [[float(x) for x in item["embedding"]] for item in sorted(body["data"], key=lambda d: d["index"])]


def _event(sse: ServerSentEvent) -> StreamEvent | None:
    if sse.event == "token":
        return TokenEvent.model_validate_json(sse.data)
    if sse.event == "done":
        return GenerateResponse.model_validate_json(sse.data)
    if sse.event == "error":
        detail = json.loads(sse.data)["error"]
        raise StreamError(str(detail["code"]), str(detail["message"]))
    return None


class Client:
    """Synchronous client.

    Args:
        base_url: Where the service listens.
        timeout_s: Default timeout of a whole request, in seconds.
        api_key: Sent as a bearer token when set.
    """

    def __init__(
        self, base_url: str = DEFAULT_URL, *, timeout_s: float = 120.0, api_key: str | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, headers=headers)
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
        with connect_sse(self._http, method, path, **kwargs) as source:
            if source.response.status_code >= 400:
                raise _error(source.response, source.response.read())
            yield source

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; raise the typed :class:`APIError` for an error status.

        Idempotent methods (GET, HEAD, DELETE) are retried on 429 and 503, honouring ``Retry-After``.
        """
        if method.upper() not in _IDEMPOTENT:
            return self._check(self._http.request(method, path, **kwargs))
        for attempt in _retrying():
            with attempt:
                return self._check(self._http.request(method, path, **kwargs))
        raise AssertionError("unreachable")  # pragma: no cover - tenacity re-raises the last error

    def models(self) -> list[ModelObject]:
        """The served models with their status (``GET /v1/models``).

        Generation models in configuration order, then the embedding model; pass an ``id`` as
        ``model=`` to :meth:`generate` or :meth:`stream`.
        """
        return ModelList.model_validate_json(self._send("GET", "/v1/models").content).data

    def generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[ChatMessage | dict[str, str]] | None = None,
        **options: Any,
    ) -> GenerateResponse:
        """Generate a completion; ``options`` are the :class:`api.generate.schemas.GenerateRequest` fields.

        Raises:
            BadRequestError: The arguments are invalid (checked before sending, or by the server).
            APIError: 429, 503, 504, ... from the server.
        """
        response = self._check(self._http.post("/v1/generate", json=_body(prompt, messages, False, options)))
        return GenerateResponse.model_validate_json(response.content)

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[ChatMessage | dict[str, str]] | None = None,
        **options: Any,
    ) -> Iterator[StreamEvent]:
        """Stream a completion: :class:`TokenEvent` items, then one :class:`GenerateResponse`.

        Closing the iterator early closes the connection, which cancels the generation on the server.

        Raises:
            APIError: The server refused the request.
            StreamError: The stream ended with an error event.
        """
        body = _body(prompt, messages, True, options)
        with connect_sse(self._http, "POST", "/v1/generate", json=body) as source:
            if source.response.status_code >= 400:
                raise _error(source.response, source.response.read())
            for sse in source.iter_sse():
                event = _event(sse)
                if event is not None:
                    yield event
                if isinstance(event, GenerateResponse):
                    return

    def chat(self, messages: Sequence[ChatMessage | dict[str, str]], **options: Any) -> GenerateResponse:
        """Answer a conversation with the model's chat template (see :meth:`generate` for ``options``)."""
        return self.generate(messages=messages, **options)

    def embeddings(self, texts: str | Sequence[str]) -> list[list[float]]:
        """Sentence embeddings (all-MiniLM-L6-v2): one unit-length vector of 384 floats per text, in order.

        Raises:
            BadRequestError: No text, an empty text, or more than 256 texts.
        """
        return _vectors(self._send("POST", "/v1/embeddings", json=_embedding_body(texts)).json())

    def health(self) -> Health:
        """Service health (also when degraded: no exception for 503 here)."""
        return Health.model_validate_json(self._http.get("/health").content)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient:
    """Asynchronous client (same methods as :class:`Client`, awaitable)."""

    def __init__(
        self, base_url: str = DEFAULT_URL, *, timeout_s: float = 120.0, api_key: str | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, headers=headers)
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
        async with aconnect_sse(self._http, method, path, **kwargs) as source:
            if source.response.status_code >= 400:
                raise _error(source.response, await source.response.aread())
            yield source

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """See :meth:`Client._send` (same retries)."""
        if method.upper() not in _IDEMPOTENT:
            return await self._check(await self._http.request(method, path, **kwargs))
        async for attempt in _async_retrying():
            with attempt:
                return await self._check(await self._http.request(method, path, **kwargs))
        raise AssertionError("unreachable")  # pragma: no cover - tenacity re-raises the last error

    async def models(self) -> list[ModelObject]:
        """See :meth:`Client.models`."""
        return ModelList.model_validate_json((await self._send("GET", "/v1/models")).content).data

    async def generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[ChatMessage | dict[str, str]] | None = None,
        **options: Any,
    ) -> GenerateResponse:
        """See :meth:`Client.generate`."""
        response = await self._check(
            await self._http.post("/v1/generate", json=_body(prompt, messages, False, options))
        )
        return GenerateResponse.model_validate_json(response.content)

    async def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[ChatMessage | dict[str, str]] | None = None,
        **options: Any,
    ) -> AsyncIterator[StreamEvent]:
        """See :meth:`Client.stream`."""
        body = _body(prompt, messages, True, options)
        async with aconnect_sse(self._http, "POST", "/v1/generate", json=body) as source:
            if source.response.status_code >= 400:
                raise _error(source.response, await source.response.aread())
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

    async def embeddings(self, texts: str | Sequence[str]) -> list[list[float]]:
        """See :meth:`Client.embeddings`."""
        return _vectors((await self._send("POST", "/v1/embeddings", json=_embedding_body(texts))).json())

    async def health(self) -> Health:
        """See :meth:`Client.health`."""
        return Health.model_validate_json((await self._http.get("/health")).content)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
