"""Request bodies: large JSON decoded with the collector paused; ``POST /v1/agents/{name}`` limited early.

The API decodes a request body on the event loop it shares, in ``neurectomy serve``, with every agent: a
body of many small containers (``[[],[],...]``) within ``api.max_body_bytes`` (4 MiB) stalled the loop
for seconds (docs/collective.md, "Large inputs are decoded on the loop", Round 2). Two things shorten it:

* :class:`JsonRequest`, the app's request class: Litestar's ``Request.json()`` (what decodes a
  ``data: JSONBody[...]`` parameter), with the garbage collector paused for a body of at least
  :data:`agents._decode.GC_PAUSE_MIN_BYTES`; :func:`validate_json` does the same for the routes that
  validate a body themselves (``model_validate_json``).
* :class:`AgentInputLimit`, the middleware of ``POST /v1/agents/{name}``: the agent refuses a JSON input
  longer than its ``max_input_bytes`` before decoding it, but the API decoded the whole body first. A body
  longer than :func:`agent_body_limit` of the agent (its ``Content-Length``, or the bytes received when it
  is streamed) is refused with 413 on ``input`` naming both sizes, before Litestar reads or decodes it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from litestar import Request
from litestar._asgi.utils import wrap_in_exception_handler
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send
from pydantic import BaseModel

from agents._decode import collector_paused
from agents.errors import TooLargeError
from agents.limits import ENVELOPE_RESERVE_BYTES

__all__ = ("ESCAPED_BYTES_PER_BYTE", "AgentInputLimit", "JsonRequest", "agent_body_limit", "validate_json")

M = TypeVar("M", bound=BaseModel)

ESCAPED_BYTES_PER_BYTE = 3
"""Most bytes a client's JSON may spend on one byte of the agent's input as the service re-encodes it
(UTF-8, unescaped): a character outside the BMP is 4 bytes of UTF-8 and 12 as an escaped surrogate pair
(``\\ud83d\\ude00``, what Python's ``json.dumps`` writes by default); one of the BMP 2-3 bytes and 6."""


def agent_body_limit(max_input_bytes: int) -> int:
    """The largest ``POST /v1/agents/{name}`` body whose input an agent of ``max_input_bytes`` may take.

    Args:
        max_input_bytes: The agent's ``max_input_bytes`` (bytes of its JSON input as the service writes it).

    Returns:
        :data:`ESCAPED_BYTES_PER_BYTE` bytes per byte of the input, plus
        :data:`agents.limits.ENVELOPE_RESERVE_BYTES` for the request's other fields, in bytes.
    """
    return ESCAPED_BYTES_PER_BYTE * max_input_bytes + ENVELOPE_RESERVE_BYTES


class JsonRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON body is decoded with the garbage collector paused when it is large."""

    async def json(self) -> Any:
        """The decoded JSON body (cached), decoded as Litestar does (``msgspec``)."""
        body = await self.body()  # read first: the collector is never off across an await that waits
        with collector_paused(len(body)):
            return await super().json()  # the body is cached: this does not wait


def validate_json(model: type[M], body: bytes) -> M:
    """``model.model_validate_json(body)``, with the garbage collector paused when ``body`` is large.

    Raises:
        pydantic.ValidationError: ``body`` is not JSON or not a valid ``model``.
    """
    with collector_paused(len(body)):
        return model.model_validate_json(body)


class AgentInputLimit:
    """Refuses a ``POST /v1/agents/{name}`` body longer than the agent can take, before it is read.

    The route's middleware (Litestar has matched the route: ``path_params`` holds the name). An unknown
    agent passes through (the route answers 404).

    Args:
        app: The route's ASGI app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._checked = wrap_in_exception_handler(self._check)  # answered here: metrics see the 413

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the route behind :meth:`_check`, its refusal answered by the app's exception handlers."""
        await self._checked(scope, receive, send)

    async def _check(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check ``Content-Length``, and count the bytes of a streamed body, against the agent's limit.

        Raises:
            TooLargeError: The body is longer than :func:`agent_body_limit` of the agent (413 on ``input``).
        """
        name = scope.get("path_params", {}).get("name")
        specs = scope["app"].state.orchestrator.selector.specs
        spec = specs.get(name) if scope["type"] == ScopeType.HTTP else None
        if spec is None:
            await self.app(scope, receive, send)
            return
        limit = agent_body_limit(spec.max_input_bytes)

        def refuse(size: int | str) -> TooLargeError:
            return TooLargeError(
                f"request body of {size} bytes; {name} takes at most {spec.max_input_bytes} bytes of JSON "
                f"input, so this route takes at most {limit} bytes",
                field="input",
            )

        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                raise refuse(int(value))
        received = 0

        async def counted() -> ReceiveMessage:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise refuse(f"more than {limit}")
            return message

        await self.app(scope, counted, send)
