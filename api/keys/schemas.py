"""Bodies of ``/v1/keys`` (API key management, ``admin`` scope). Pure pydantic, shared with the SDK."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    """Base of response bodies: unknown fields are ignored, so a newer server never breaks an older SDK."""

    model_config = ConfigDict(extra="ignore")


class KeyCreateRequest(_Body):
    """Body of ``POST /v1/keys``."""

    tenant: str = Field(min_length=1, max_length=64)
    """Tenant every call made with the key runs in."""
    scopes: list[str] = Field(default_factory=lambda: ["read", "write"], min_length=1)
    """Any of ``read``, ``write``, ``admin``."""
    name: str = Field(default="", max_length=128)
    """A label for people."""


class KeyOut(_Out):
    """An API key as stored: never the token, only its id."""

    id: str
    tenant: str
    scopes: list[str]
    name: str
    created_at: float
    """Unix time, seconds."""
    revoked_at: float | None
    """Unix time of revocation, seconds; null while valid."""


class KeyCreated(KeyOut):
    """A new key; ``token`` is shown this once (only its SHA-256 digest is stored)."""

    token: str
