"""What an SDK resource needs of its client: a way to send a request and to open an event stream.

The clients (:class:`~neurectomy.sdk.client.Client`, :class:`~neurectomy.sdk.client.AsyncClient`) pass
their bound methods; a resource never sees the client itself.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Protocol

import httpx
from httpx_sse import EventSource

__all__ = ("AsyncOpenEvents", "AsyncSend", "OpenEvents", "Send")


class Send(Protocol):
    """Sends one request and returns its response; raises the typed ``APIError`` for an error status.

    Args:
        method: HTTP method (``"GET"``, ``"POST"``, ...).
        path: Path below the base URL (``"/v1/tasks"``).
        **kwargs: Passed to ``httpx.Client.request`` (``json``, ``params``, ``content``, ``headers``, ...).
    """

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...


class AsyncSend(Protocol):
    """The awaitable :class:`Send`."""

    async def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...


class OpenEvents(Protocol):
    """Opens a server-sent event stream; raises the typed ``APIError`` when the server refuses it.

    Args:
        method: HTTP method.
        path: Path below the base URL.
        **kwargs: Passed to ``httpx_sse.connect_sse`` (``timeout``, ``json``, ...).
    """

    def __call__(self, method: str, path: str, **kwargs: Any) -> AbstractContextManager[EventSource]: ...


class AsyncOpenEvents(Protocol):
    """The asynchronous :class:`OpenEvents`."""

    def __call__(self, method: str, path: str, **kwargs: Any) -> AbstractAsyncContextManager[EventSource]: ...
