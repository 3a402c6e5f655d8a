"""A raw ``application/octet-stream`` answer that skips Litestar's generic response conversion.

The raw ΣLANG routes (``POST /v1/sigma/compress`` and ``/decompress`` with an octet-stream body) answer
bytes and one header per request, a turn at a time. Litestar's ``Response`` → ``ASGIResponse`` path
renders the content by media type, merges header dictionaries into a ``MutableScopeHeaders`` and
encodes them again (10-13 µs of CPU per raw turn here, measured in-process). :class:`RawResponse`
is a ``Response`` (so handlers, ``after_request`` hooks and the OpenAPI schema see the same type) whose
:meth:`~RawResponse.to_asgi_response` builds the encoded header list once: the same headers, in the same
order, as Litestar's path gives (the response's own, then ``content-type``, then ``content-length``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

BINARY = "application/octet-stream"
_CONTENT_TYPE = (b"content-type", BINARY.encode())


class _RawASGI:
    """The ASGI answer of a :class:`RawResponse`: status, encoded headers and one body message."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response start, then the whole body."""
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": self.status,
            "headers": self.headers,
        }
        await send(start)
        body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": self.body, "more_body": False}
        await send(body)


class RawResponse(Response[bytes]):
    """``bytes`` answered as ``application/octet-stream`` (status 200) with extra ``headers``.

    Args:
        content: The body, bytes.
        headers: Response headers (names lower-case ASCII, values Latin-1), sent before
            ``content-type`` and ``content-length``.
    """

    __slots__ = ()

    def __init__(self, content: bytes, *, headers: dict[str, str]) -> None:
        # Response.__init__ normalises every option this answer never sets; set the slots it reads.
        self.content = content
        self.headers = headers
        self.background = None
        self.cookies = []
        self.encoding = "utf-8"
        self.media_type = BINARY
        self.status_code = 200
        self.response_type_encoders = {}

    def to_asgi_response(  # type: ignore[override]
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> _RawASGI:
        """The ASGI answer: the handler's ``headers`` (if any) under this response's, then type and length.

        Litestar passes the route's defaults (``background``, ``cookies``, ``status_code``, ...) in
        ``options``; the raw routes set none, and a response that was given any falls back to Litestar's
        own conversion.
        """
        if app is not None or any(options.get(k) for k in ("background", "cookies", "encoded_headers")):
            return super().to_asgi_response(app, request, headers=headers, **options)  # type: ignore[return-value]
        merged = {**headers, **self.headers} if headers else self.headers
        encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in merged.items()]
        encoded += [_CONTENT_TYPE, (b"content-length", str(len(self.content)).encode())]
        return _RawASGI(200, encoded, self.content)
