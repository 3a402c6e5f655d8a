"""``/v1/keys``: create, list and revoke API keys over HTTP.

A credential is never minted without a credential: with auth on, these routes need the ``admin`` scope;
with auth off (a loopback-only service, where every other route is open) they need the local admin
token, ``Authorization: Bearer <token>`` with the token of ``<state_dir>/admin-token`` (mode 0600, made by
``serve``; ``neurectomy keys admin-token`` prints it), so neither a web page nor another local user who
cannot read the state directory can create a key that stays valid once auth is switched on.

The same store as ``neurectomy keys create|revoke|list``; a new key's token is in the creation response
only. Errors: 400 for a bad tenant or scope (naming the field), 401 without the admin token, 403 with a
wrong one, 404 for an unknown key id, 404 when the server runs without a key store.
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Awaitable
from typing import Any, Protocol

from litestar import delete, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody

from agents.errors import BadInputError, NotFoundError
from api._auth import Principal
from api.keys.schemas import KeyCreated, KeyCreateRequest, KeyOut

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="neurectomy-admin"'}


class StoredKey(Protocol):
    """An API key record (``neurectomy.server.keys.ApiKey``)."""

    id: str
    tenant: str
    scopes: tuple[str, ...]
    name: str
    created_at: float
    revoked_at: float | None


class NewKey(Protocol):
    """A created key and its one-time token (``neurectomy.server.keys.CreatedKey``)."""

    key: Any
    token: str


class KeyAdmin(Protocol):
    """Manages API keys.

    ``neurectomy.server.keys.KeyStore`` on one host; on a cluster
    ``neurectomy.server.shared_keys.SharedKeyStore``, whose ``create``/``revoke`` are coroutines.
    """

    def create(self, tenant: str, scopes: list[str], *, name: str = "") -> NewKey | Awaitable[NewKey]:
        """Create a key; ``ValueError`` for a bad tenant or scope."""
        ...

    def revoke(self, key_id: str) -> Any:
        """Revoke a key (or a coroutine doing it); ``ValueError`` when no key has this id."""
        ...

    def list_keys(self) -> list[Any]:
        """Every key, oldest first."""
        ...


def key_admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Require the local admin token when auth is off (before the body is read).

    With auth on, the auth middleware has already required the ``admin`` scope.
    """
    if not isinstance(connection.scope.get("user"), Principal):
        _check_admin_token(
            connection.app.state.get("admin_token"), connection.headers.get("authorization", "")
        )


def _admin(state: State) -> KeyAdmin:
    keys = state.get("keys")
    if keys is None or not hasattr(keys, "create"):
        raise NotFoundError("this server has no API key store", field="keys")
    return keys  # type: ignore[no-any-return]


def _check_admin_token(expected: str | None, header: str) -> None:
    """Raise unless ``header`` is ``Bearer <expected>`` (compared in constant time)."""
    if not expected:
        raise PermissionDeniedException(
            "API keys cannot be managed over HTTP on this server (auth is off and there is no local admin "
            "token): use `neurectomy keys create` on the server's host"
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException(
            "managing API keys needs 'Authorization: Bearer <local admin token>' "
            "(`neurectomy keys admin-token` prints it)",
            headers=_CHALLENGE,
        )
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise PermissionDeniedException("the bearer token is not this server's local admin token")


async def _resolved(value: Any) -> Any:
    """``value``, awaited first if the store returned a coroutine (a store on JetStream KV)."""
    return await value if inspect.isawaitable(value) else value


def _out(key: StoredKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        tenant=key.tenant,
        scopes=list(key.scopes),
        name=key.name,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@get("/v1/keys", summary="List API keys (admin)", guards=[key_admin_guard])
async def list_keys(state: State) -> list[KeyOut]:
    """Every key, revoked ones included, oldest first (never the tokens)."""
    return [_out(k) for k in _admin(state).list_keys()]


@post("/v1/keys", summary="Create an API key (admin)", status_code=201, guards=[key_admin_guard])
async def create_key(state: State, data: JSONBody[KeyCreateRequest]) -> KeyCreated:
    """Create a key for ``data.tenant`` with ``data.scopes``; the token is in this response only."""
    try:
        created = await _resolved(_admin(state).create(data.tenant, data.scopes, name=data.name))
    except ValueError as exc:
        field = "scopes" if "scope" in str(exc) else "tenant"
        raise BadInputError(str(exc), field=field) from None
    return KeyCreated(**_out(created.key).model_dump(), token=created.token)


@delete(
    "/v1/keys/{key_id:str}", summary="Revoke an API key (admin)", status_code=200, guards=[key_admin_guard]
)
async def revoke_key(state: State, key_id: FromPath[str]) -> KeyOut:
    """Revoke ``key_id`` (revoking twice is a no-op); 404 if no key has this id."""
    admin = _admin(state)
    if not any(k.id == key_id for k in admin.list_keys()):
        raise NotFoundError(f"no API key with id {key_id!r}", field="key_id")
    return _out(await _resolved(admin.revoke(key_id)))


ROUTES = (list_keys, create_key, revoke_key)
