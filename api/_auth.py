"""Authentication and authorisation: API keys and JWT bearer tokens, scopes, tenant binding.

Off by default when the API binds a loopback address, on otherwise (``AuthConfig.enabled`` forces either
way). When on, every route but ``/health``, ``/schema*`` and ``/metrics`` needs
``Authorization: Bearer <token>`` where the token is

* an API key ``nrk_<id>_<secret>`` from the key store (``neurectomy keys create``), or
* a JWT checked with Litestar's JWT support (:mod:`litestar.security.jwt`, PyJWT underneath): HS256 with
  ``jwt_secret`` or RS256 with ``jwt_public_key``; ``sub`` is required, ``exp``/``nbf`` are verified,
  the ``tenant`` claim gives the tenant and the ``scope`` claim (space-separated string, RFC 8693 §4.2,
  or a list) the scopes.

Scopes: ``GET`` needs ``read``; ``POST``/``PUT``/``PATCH``/``DELETE`` and WebSockets need ``write``; key
rotation, snapshots and compaction need ``admin``. The tenant of every call comes from the credential: an
``X-Neurectomy-Tenant`` header or a ``{tenant}`` path parameter naming another tenant is refused (403).

Failures are ``NotAuthorizedException`` (401, with ``WWW-Authenticate: Bearer``) and
``PermissionDeniedException`` (403), shaped like every other error by :mod:`api.errors`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import jwt
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.authentication import AuthenticationResult
from litestar.openapi.spec import Components, SecurityScheme
from litestar.security.jwt import JWTAuthenticationMiddleware, Token
from pydantic import BaseModel, ConfigDict, SecretStr

OPEN_PATHS = ("^/health$", "^/schema", "^/metrics$")
"""Routes served without credentials (regular expressions on the path)."""
ADMIN_PATHS = re.compile(r"^/v1/(vault/keys/|vault/snapshots|vault/compact|keys)")
"""Routes that need the ``admin`` scope whatever their method."""
API_KEY_PREFIX = "nrk_"
TENANT_HEADER = "x-neurectomy-tenant"
_TENANT_HEADER_RAW = TENANT_HEADER.encode()
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="neurectomy"'}


class AuthConfig(BaseModel):
    """Who may call the API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool | None = None
    """``None``: on when the API binds a non-loopback address, off on loopback; ``True``/``False`` force."""
    jwt_secret: SecretStr | None = None
    """Shared secret for HS256 JWTs (``None``: HS256 tokens are not accepted)."""
    jwt_public_key: str | None = None
    """PEM public key for RS256 JWTs; takes precedence over ``jwt_secret``."""
    jwt_public_key_file: Path | None = None
    """A file holding the PEM public key (instead of ``jwt_public_key``)."""
    jwt_audience: str | None = None
    """Required ``aud`` claim, if set."""
    jwt_issuer: str | None = None
    """Required ``iss`` claim, if set."""
    tenant_claim: str = "tenant"
    """JWT claim naming the tenant."""
    scope_claim: str = "scope"
    """JWT claim holding the scopes (space-separated string or list)."""

    def enabled_for(self, host: str) -> bool:
        """Whether auth is on for an API bound to ``host``."""
        if self.enabled is not None:
            return self.enabled
        return not is_loopback(host)

    def jwt_key(self) -> tuple[str, Literal["RS256", "HS256"]] | None:
        """The JWT verification key and algorithm, or ``None`` when JWTs are not configured."""
        if self.jwt_public_key_file is not None:
            return self.jwt_public_key_file.read_text(), "RS256"
        if self.jwt_public_key:
            return self.jwt_public_key, "RS256"
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value(), "HS256"
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts local connections."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class VerifiedKey(Protocol):
    """What a key verifier returns for a valid API key."""

    @property
    def id(self) -> str:
        """Public key id."""
        ...

    @property
    def tenant(self) -> str:
        """Tenant the key is bound to."""
        ...

    @property
    def scopes(self) -> tuple[str, ...]:
        """Granted scopes."""
        ...


class KeyVerifier(Protocol):
    """Checks API key tokens (``neurectomy.server.keys.KeyStore`` is the real one)."""

    def verify(self, token: str) -> VerifiedKey | None:
        """The valid key ``token`` belongs to, or ``None`` (unknown, wrong or revoked)."""
        ...


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    Attributes:
        subject: ``key:<id>`` for API keys, the ``sub`` claim for JWTs.
        tenant: Tenant every call of the request runs in.
        scopes: Granted scopes.
        via: ``api_key`` or ``jwt``.
    """

    subject: str
    tenant: str
    scopes: frozenset[str]
    via: Literal["api_key", "jwt"]


def required_scope(scope_type: str, method: str, path: str) -> str:
    """The scope a request needs: ``admin`` for admin routes, ``read`` for GET/HEAD, ``write`` otherwise."""
    if ADMIN_PATHS.match(path):
        return "admin"
    if scope_type == "http" and method in ("GET", "HEAD"):
        return "read"
    return "write"


def _jwt_reason(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, jwt.ExpiredSignatureError):
        return "the JWT has expired"
    if isinstance(cause, jwt.InvalidSignatureError):
        return "the JWT signature does not verify"
    if isinstance(cause, jwt.ImmatureSignatureError):
        return "the JWT is not valid yet (nbf)"
    if isinstance(cause, jwt.InvalidAudienceError | jwt.InvalidIssuerError):
        return f"the JWT was not issued for this service: {cause}"
    if isinstance(cause, jwt.InvalidAlgorithmError):
        return "the JWT is signed with an algorithm this service does not accept"
    if isinstance(cause, KeyError):
        return "the JWT has no 'sub' claim"
    return f"the bearer token is neither a valid API key nor a valid JWT ({cause or exc})"


class BearerAuthMiddleware(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware, extended with API keys, scopes and tenant binding."""

    def __init__(
        self, *args: Any, keys: KeyVerifier | None, jwt_enabled: bool, config: AuthConfig, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.keys = keys
        self.jwt_enabled = jwt_enabled
        self.config = config

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """Authenticate the bearer token, then check the route's scope and the tenant.

        Raises:
            NotAuthorizedException: No, malformed, unknown, revoked, expired or badly signed credentials.
            PermissionDeniedException: Missing scope, or a tenant header/path naming another tenant.
        """
        header = _header(connection.scope, b"authorization")
        if not header:
            raise NotAuthorizedException(
                "authentication required: send 'Authorization: Bearer <API key or JWT>'", headers=_CHALLENGE
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException(
                "the Authorization header must be 'Bearer <token>'", headers=_CHALLENGE
            )
        if token.startswith(API_KEY_PREFIX):
            key = self.keys.verify(token) if self.keys is not None else None
            if key is None:
                raise NotAuthorizedException("unknown or revoked API key", headers=_CHALLENGE)
            principal = Principal(f"key:{key.id}", key.tenant, frozenset(key.scopes), "api_key")
            result = AuthenticationResult(user=principal, auth=key.id)
        elif not self.jwt_enabled:
            raise NotAuthorizedException(
                "unknown API key (tokens start with 'nrk_'); JWT bearer tokens are not configured",
                headers=_CHALLENGE,
            )
        else:
            try:
                result = await self.authenticate_token(encoded_token=token, connection=connection)
            except NotAuthorizedException as exc:
                raise NotAuthorizedException(_jwt_reason(exc), headers=_CHALLENGE) from None
        self._authorise(connection, result.user)
        return result

    def _authorise(self, connection: ASGIConnection[Any, Any, Any, Any], principal: Principal) -> None:
        scope_type = str(connection.scope["type"])
        method = str(connection.scope.get("method", "GET"))
        needed = required_scope(scope_type, method, connection.scope["path"])
        if needed not in principal.scopes:
            have = ",".join(sorted(principal.scopes)) or "none"
            raise PermissionDeniedException(
                f"{method} {connection.scope['path']} needs the '{needed}' scope; this credential has: {have}"
            )
        header = _header(connection.scope, _TENANT_HEADER_RAW)
        if header is not None and header != principal.tenant:
            raise PermissionDeniedException(
                f"X-Neurectomy-Tenant is {header!r} but the credential is bound to tenant "
                f"{principal.tenant!r}"
            )
        path_tenant = (connection.scope.get("path_params") or {}).get("tenant")
        if path_tenant is not None and path_tenant != principal.tenant:
            raise PermissionDeniedException(
                f"the path names tenant {path_tenant!r} but the credential is bound to tenant "
                f"{principal.tenant!r}"
            )


def _header(scope: Any, name: bytes) -> str | None:
    """The value of the raw header ``name`` (lower case, as ASGI gives names), the first one if repeated."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _scopes_from_claim(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(str(v) for v in value)
    return frozenset()


def _principal_from_jwt(config: AuthConfig) -> Any:
    async def retrieve(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
        tenant = token.extras.get(config.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise NotAuthorizedException(f"the JWT has no {config.tenant_claim!r} claim", headers=_CHALLENGE)
        scopes = _scopes_from_claim(token.extras.get(config.scope_claim, token.extras.get("scopes")))
        return Principal(token.sub, tenant, scopes, "jwt")

    return retrieve


def auth_middleware(config: AuthConfig, keys: KeyVerifier | None) -> DefineMiddleware:
    """The middleware enforcing ``config`` (add it only when auth is on).

    Args:
        config: JWT settings and claim names.
        keys: Verifier of API keys (``None``: only JWTs are accepted).
    """
    jwt_key = config.jwt_key()
    secret, algorithm = jwt_key if jwt_key is not None else ("unused: JWTs are not configured", "HS256")
    audience: Sequence[str] | None = [config.jwt_audience] if config.jwt_audience else None
    issuer: Sequence[str] | None = [config.jwt_issuer] if config.jwt_issuer else None
    return DefineMiddleware(
        BearerAuthMiddleware,
        algorithm=algorithm,
        auth_header="Authorization",
        exclude=list(OPEN_PATHS),
        exclude_http_methods=None,
        exclude_opt_key="exclude_from_auth",
        retrieve_user_handler=_principal_from_jwt(config),
        scopes=None,
        token_secret=secret,
        token_audience=audience,
        token_issuer=issuer,
        keys=keys,
        jwt_enabled=jwt_key is not None,
        config=config,
    )


def openapi_security() -> dict[str, Any]:
    """``OpenAPIConfig`` arguments declaring bearer auth (API key or JWT) for the schema."""
    scheme = SecurityScheme(
        type="http", scheme="bearer", description="An API key (nrk_...) or a JWT (HS256/RS256)."
    )
    return {
        "components": Components(security_schemes={"bearer": scheme}),
        "security": [{"bearer": []}],
    }
