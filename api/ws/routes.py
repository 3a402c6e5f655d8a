"""``GET /v1/ws``: WebSocket chat, several streamed generations on one socket.

The frames are described in :mod:`api.ws.schemas`. One connection owns an anyio task group holding:

- the reader (the handler itself): decodes and validates each client frame; answers ``ping``, starts a
  generation task for ``chat``/``generate``, cancels one for ``cancel``;
- one writer task, the only one that sends on the socket, draining a bounded outbox (a slow client
  slows its own generations down instead of growing a buffer);
- one task per running generation, inside its own cancel scope. Leaving the orchestrator stream closes
  the call, which publishes a cancel to the agent, so its model slot is free within one decode step.

A ``cancel`` frame cancels that generation's scope; a closed socket cancels the whole task group, so
every generation of the socket stops.
"""

from __future__ import annotations

import json
import re
import uuid
from contextlib import aclosing
from typing import Any, cast

import anyio
import structlog
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from litestar import Request, WebSocket, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.status_codes import WS_1008_POLICY_VIOLATION
from pydantic import BaseModel, ValidationError

from agents.errors import AgentError
from agents.protocol import GenerateInput, GenerateOutput
from api._request import call_id_of, request_id_of, scopes_of, tenant_of
from api._trace import trace_id_of
from api.generate.routes import _response
from api.ws.schemas import (
    MAX_FRAME_ID_CHARS,
    CancelFrame,
    ChatFrame,
    DoneFrame,
    ErrorFrame,
    GenerateFrame,
    PingFrame,
    PongFrame,
    TokenFrame,
    client_frame_adapter,
)
from orchestrator import Orchestrator, TextDelta

log = structlog.get_logger("neurectomy.api")

MAX_GENERATIONS_PER_SOCKET = 8
"""Generations one socket may run at once; one more is refused with an ``error`` frame (``busy``)."""
OUTBOX_FRAMES = 64
"""Server frames that may wait for a slow client before the socket's generations pause."""
_INPUT_FIELDS = set(GenerateInput.model_fields)
_SUBJECT_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
"""Request ids that can be a single NATS subject token (the agent's cancel subject ends with one)."""


def _error(
    code: str, message: str, *, field: str | None = None, id: str | None = None, request_id: str | None = None
) -> ErrorFrame:
    return ErrorFrame(id=id, code=code, message=message, field=field, request_id=request_id)


def _invalid_frame(exc: ValidationError, raw: Any) -> ErrorFrame:
    """The first validation error of a client frame, naming its field as the HTTP API does."""
    first = exc.errors(include_url=False)[0]
    loc = first["loc"][1:]  # the first element is the frame type (the discriminator's tag)
    field: str | None = "type"
    message = "must be one of 'chat', 'generate', 'cancel', 'ping'"
    if first["type"] not in ("union_tag_not_found", "union_tag_invalid"):
        field, message = ".".join(str(p) for p in loc) or None, first["msg"]
    frame_id = raw.get("id") if isinstance(raw, dict) else None
    return _error(
        "bad_request",
        f"{field}: {message}" if field else message,
        field=field,
        id=frame_id if isinstance(frame_id, str) and len(frame_id) <= MAX_FRAME_ID_CHARS else None,
    )


def _done(frame_id: str, request_id: str, out: GenerateOutput) -> DoneFrame:
    """The ``done`` frame: the body of a non-streamed ``POST /v1/generate``, named by the frame id."""
    body = _response(request_id, out).model_dump(exclude={"id"})
    return DoneFrame.model_validate({**body, "id": frame_id, "request_id": request_id})


class _Connection:
    """One accepted socket: its reader, its writer and its running generations.

    Args:
        socket: The accepted WebSocket.
        orchestrator: Runs the generations.
        request_id: Request id of the connection; generation ``n`` runs as ``<request_id>-<n>``.
        tenant: Tenant every generation of the socket runs for.
        trace_id: Trace id of the handshake, carried by every generation of the socket (each
            generation's own request id when empty).
        call_id: Server-generated id of the socket's calls over NATS (generation ``n``: ``<call_id>-<n>``);
            never the client's ``X-Request-Id``, so another client cannot cancel them.
        scopes: The credential's scopes, carried by every call.
    """

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        orchestrator: Orchestrator,
        *,
        request_id: str,
        tenant: str,
        trace_id: str = "",
        call_id: str = "",
        scopes: frozenset[str] = frozenset(),
    ) -> None:
        self.socket = socket
        self.call_id = call_id or uuid.uuid4().hex
        self.scopes = scopes
        self.orchestrator = orchestrator
        self.request_id = request_id
        self.tenant = tenant
        self.trace_id = trace_id
        self.generations: dict[str, anyio.CancelScope] = {}
        self.started = 0
        self.outbox: MemoryObjectSendStream[BaseModel]

    async def run(self) -> None:
        """Serve the socket until the client closes it; then stop every generation it started."""
        send, receive = anyio.create_memory_object_stream[BaseModel](OUTBOX_FRAMES)
        self.outbox = send
        async with send, anyio.create_task_group() as tg:
            tg.start_soon(self._write, receive, tg)
            await self._read(tg)
            tg.cancel_scope.cancel()  # the client is gone: stop its generations and the writer

    async def _write(self, frames: MemoryObjectReceiveStream[BaseModel], tg: TaskGroup) -> None:
        async with frames:
            async for frame in frames:
                try:
                    await self.socket.send_text(frame.model_dump_json())
                except (WebSocketDisconnect, OSError):  # OSError: the server's ClientDisconnected
                    tg.cancel_scope.cancel()
                    return

    async def _read(self, tg: TaskGroup) -> None:
        while True:
            event = await self.socket.receive()
            if event["type"] == "websocket.disconnect":
                return
            text, binary = event.get("text"), event.get("bytes")
            await self._handle(
                text if isinstance(text, str) else binary if isinstance(binary, bytes) else b"", tg
            )

    async def _handle(self, data: str | bytes, tg: TaskGroup) -> None:
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            await self.outbox.send(_error("bad_request", f"the frame is not JSON: {exc}"))
            return
        if not isinstance(raw, dict):
            await self.outbox.send(_error("bad_request", "the frame must be a JSON object"))
            return
        try:
            frame = client_frame_adapter.validate_python(raw)
        except ValidationError as exc:
            await self.outbox.send(_invalid_frame(exc, raw))
            return
        if isinstance(frame, PingFrame):
            await self.outbox.send(PongFrame(id=frame.id))
        elif isinstance(frame, CancelFrame):
            scope = self.generations.get(frame.id)
            if scope is None:
                await self.outbox.send(
                    _error("not_found", "no generation with this id is running", field="id", id=frame.id)
                )
            else:
                scope.cancel()
        elif frame.id in self.generations:
            await self.outbox.send(
                _error("bad_request", "a generation with this id is running", field="id", id=frame.id)
            )
        elif len(self.generations) >= MAX_GENERATIONS_PER_SOCKET:
            await self.outbox.send(
                _error(
                    "busy",
                    f"at most {MAX_GENERATIONS_PER_SOCKET} generations may run on one socket",
                    id=frame.id,
                )
            )
        else:
            scope = anyio.CancelScope()
            self.generations[frame.id] = scope
            self.started += 1
            tg.start_soon(self._generate, frame, scope, f"{self.request_id}-{self.started}")

    async def _generate(
        self, frame: ChatFrame | GenerateFrame, scope: anyio.CancelScope, request_id: str
    ) -> None:
        """Stream one generation into the outbox; it ends with one ``done`` or ``error`` frame."""
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self._stream(frame, scope, request_id)

    async def _stream(
        self, frame: ChatFrame | GenerateFrame, scope: anyio.CancelScope, request_id: str
    ) -> None:
        finished = False
        try:
            with scope:
                ctx = self.orchestrator.context(
                    timeout_s=frame.timeout_s,
                    request_id=f"{self.call_id}-{request_id.rpartition('-')[2]}",
                    tenant=self.tenant,
                    trace_id=self.trace_id,
                    scopes=self.scopes,
                )
                inp = GenerateInput.model_validate(frame.model_dump(include=_INPUT_FIELDS, exclude_none=True))
                events = self.orchestrator.generate_stream(inp, ctx)
                # Leaving this block early (cancel frame, closed socket) closes the call: the agent stops.
                async with aclosing(events):
                    async for event in events:
                        if isinstance(event, TextDelta):
                            await self.outbox.send(TokenFrame(id=frame.id, text=event.text))
                        else:
                            await self.outbox.send(_done(frame.id, request_id, event))
                            finished = True
            if not finished:
                cancelled = scope.cancel_called
                log.info(
                    "generation cancelled by the client" if cancelled else "generation ended without output"
                )
                await self.outbox.send(
                    _error(
                        "cancelled" if cancelled else "stream_broken",
                        "cancelled by the client" if cancelled else "the generator ended without an output",
                        id=frame.id,
                        request_id=request_id,
                    )
                )
        except AgentError as exc:  # refused or failed: bad input, busy, no responders, deadline, ...
            log.info("generation failed", code=exc.code, error=exc.message)
            await self.outbox.send(
                _error(exc.code, exc.message, field=exc.field, id=frame.id, request_id=request_id)
            )
        except Exception as exc:  # a bug: the socket and its other generations go on
            log.exception("generation failed unexpectedly", error=f"{type(exc).__name__}: {exc}")
            await self.outbox.send(_error("internal", "internal error", id=frame.id, request_id=request_id))
        finally:
            del self.generations[frame.id]


@websocket("/v1/ws", name="ws")
async def ws_chat(socket: WebSocket[Any, Any, Any], state: State) -> None:
    """WebSocket chat: ``chat``/``generate`` frames stream ``token`` frames, then ``done`` or ``error``.

    Frames are described in :mod:`api.ws.schemas`. A bad frame is answered with an ``error`` frame that
    names the field; the socket stays open. Closing the socket cancels its running generations. The
    tenant comes from ``X-Neurectomy-Tenant`` of the handshake (an invalid one closes the socket with
    1008 after an ``error`` frame).
    """
    # These helpers read only the scope and the headers, which the handshake has as a request does.
    handshake = cast("Request[Any, Any, Any]", socket)
    request_id, trace_id = request_id_of(handshake), trace_id_of(handshake)
    if not _SUBJECT_SAFE_ID.match(request_id):  # a client's X-Request-Id may hold spaces or dots
        request_id = uuid.uuid4().hex
    await socket.accept()
    try:
        tenant = tenant_of(handshake)
    except AgentError as exc:
        await socket.send_text(_error(exc.code, exc.message, field=exc.field).model_dump_json())
        await socket.close(WS_1008_POLICY_VIOLATION, exc.message[:120])
        return
    orchestrator: Orchestrator = state.orchestrator
    log.info("websocket connected", tenant=tenant)
    await _Connection(
        socket,
        orchestrator,
        request_id=request_id,
        tenant=tenant,
        trace_id=trace_id,
        call_id=call_id_of(handshake),
        scopes=scopes_of(handshake),
    ).run()
    log.info("websocket closed")


ROUTES = (ws_chat,)
