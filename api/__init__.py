"""The HTTP API (Litestar): routes, error mapping, OpenAPI at ``/schema``."""

from api.app import create_app

__all__ = ("create_app",)
