"""The HTTP API (Litestar): routes, auth, limits, metrics, error mapping, OpenAPI at ``/schema``."""

from api._auth import AuthConfig, KeyVerifier, Principal
from api._limits import LimitsConfig
from api._metrics import Metrics
from api.app import create_app

__all__ = ("AuthConfig", "KeyVerifier", "LimitsConfig", "Metrics", "Principal", "create_app")
