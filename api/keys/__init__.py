"""API keys: ``/v1/keys`` (create, list, revoke; admin scope).

The routes are in ``api.keys.routes`` (wired by ``api.app``); the package exports the wire models, so the
SDK can import them without Litestar.
"""

from api.keys.schemas import (
    KeyCreated,
    KeyCreateRequest,
    KeyOut,
)

__all__ = (
    "KeyCreateRequest",
    "KeyCreated",
    "KeyOut",
)
