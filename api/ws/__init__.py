"""The WebSocket endpoint ``/v1/ws``: generation and chat frames with cancel.

The routes are in ``api.ws.routes`` (wired by ``api.app``); the package exports the wire models, so the
SDK can import them without Litestar.
"""

from api.ws.schemas import (
    MAX_FRAME_ID_CHARS,
    CancelFrame,
    ChatFrame,
    ClientFrame,
    DoneFrame,
    ErrorFrame,
    GenerateFrame,
    PingFrame,
    PongFrame,
    TokenFrame,
    client_frame_adapter,
)

__all__ = (
    "MAX_FRAME_ID_CHARS",
    "CancelFrame",
    "ChatFrame",
    "ClientFrame",
    "DoneFrame",
    "ErrorFrame",
    "GenerateFrame",
    "PingFrame",
    "PongFrame",
    "TokenFrame",
    "client_frame_adapter",
)
