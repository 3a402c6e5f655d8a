"""httpx's transport exceptions mapped to the SDK's in one place; the client's defaults from the environment.

httpx raises :class:`httpx.TimeoutException` (connect, read, write, pool) and other
:class:`httpx.TransportError` subclasses (refused, reset, DNS, TLS, protocol) when no HTTP answer
arrives; :func:`transport_errors` turns them into :class:`~neurectomy.sdk.errors.APITimeoutError` and
:class:`~neurectomy.sdk.errors.APIConnectionError` (as httpx itself maps httpcore's in one table).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from neurectomy.sdk.errors import APIConnectionError, APITimeoutError

__all__ = (
    "DEFAULT_URL",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "default_api_key",
    "default_base_url",
    "transport_errors",
)

DEFAULT_URL = "http://127.0.0.1:8420"
ENV_BASE_URL = "NEURECTOMY_BASE_URL"
"""Environment variable with the service's URL (used when the client is given none)."""
ENV_API_KEY = "NEURECTOMY_API_KEY"
"""Environment variable with the API key sent as a bearer token (used when the client is given none)."""


def default_base_url() -> str:
    """``$NEURECTOMY_BASE_URL``, else ``$NEURECTOMY_URL`` (older name), else :data:`DEFAULT_URL`."""
    return os.environ.get(ENV_BASE_URL) or os.environ.get("NEURECTOMY_URL") or DEFAULT_URL


def default_api_key() -> str | None:
    """``$NEURECTOMY_API_KEY``, or ``None`` (no ``Authorization`` header)."""
    return os.environ.get(ENV_API_KEY) or None


def _url(exc: httpx.TransportError, base_url: str) -> str:
    try:
        return str(exc.request.url)
    except RuntimeError:  # the exception carries no request
        return base_url


@contextmanager
def transport_errors(base_url: str) -> Iterator[None]:
    """Re-raise httpx's transport exceptions as the SDK's connection errors.

    Raises:
        APITimeoutError: No answer within the timeout.
        APIConnectionError: Any other failure to get an HTTP answer.
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        raise APITimeoutError(_url(exc, base_url), f"timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise APIConnectionError(_url(exc, base_url), str(exc) or type(exc).__name__) from exc
