"""The HTTP API (Litestar): routes, auth, limits, metrics, error mapping, OpenAPI at ``/schema``.

One package per feature (``api.generate``, ``api.openai``, ``api.agents``, ``api.tasks``, ``api.vault``,
``api.sigma``, ``api.keys``, ``api.ws``, ``api.system``), each with its ``routes`` and ``schemas``; the
cross-cutting parts (``app``, ``errors``, auth, limits, metrics, request ids, tracing) at this level.
The names below load on first use, so importing a feature's schemas (as the SDK does) loads no Litestar.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api._auth import AuthConfig, KeyVerifier, Principal
    from api._kv_store import KeyValueStore
    from api._limits import LimitsConfig
    from api._metrics import Metrics
    from api.app import create_app

__all__ = ("AuthConfig", "KeyValueStore", "KeyVerifier", "LimitsConfig", "Metrics", "Principal", "create_app")

_MODULE_OF = {
    "AuthConfig": "api._auth",
    "KeyVerifier": "api._auth",
    "Principal": "api._auth",
    "KeyValueStore": "api._kv_store",
    "LimitsConfig": "api._limits",
    "Metrics": "api._metrics",
    "create_app": "api.app",
}


def __getattr__(name: str) -> object:
    """Load a public name from its module on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'api' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, with the public ones not loaded yet."""
    return [*globals(), *__all__]
