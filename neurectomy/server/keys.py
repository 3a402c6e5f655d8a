"""The API key store: random bearer tokens, kept only as SHA-256 digests in a 0600 JSON file.

A key looks like ``nrk_<id>_<secret>``: ``id`` is 8 hex characters (public, shown by ``keys list``),
``secret`` is 32 random bytes in URL-safe base64 (``secrets.token_urlsafe(32)``, 256 bits). The token is
shown once, at creation; the file holds its SHA-256 digest. A fast unkeyed hash is enough here: the
tokens are uniformly random with 256 bits of entropy, so there is nothing to guess from a digest (slow
password hashes such as scrypt/argon2 exist for low-entropy human passwords). Digests are compared in
constant time (``hmac.compare_digest``).

The file is rewritten atomically (temporary file + ``os.replace``), created with mode 0600, and re-read
by a running server whenever its modification time or size changes, so ``neurectomy keys create`` and
``revoke`` take effect on a running ``serve`` without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCOPES = ("read", "write", "admin")
"""Scopes a key can hold: ``read`` for GET, ``write`` for POST/DELETE, ``admin`` for key, rotation and
snapshot routes. Scopes do not imply each other."""
TOKEN_PREFIX = "nrk_"  # noqa: S105 - a prefix, not a secret
KEYS_FILE_NAME = "api-keys.json"
ADMIN_TOKEN_FILE_NAME = "admin-token"  # noqa: S105 - a file name
ADMIN_TOKEN_PREFIX = "nra_"  # noqa: S105 - a prefix, not a secret


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def local_admin_token(state_dir: Path) -> str:
    """The local admin token of the installation at ``state_dir``, made on first use (file mode 0600).

    With auth off (a loopback-only service) the HTTP key routes need ``Authorization: Bearer <token>``;
    only a local user who can read ``<state_dir>/admin-token`` holds it (``neurectomy keys admin-token``
    prints it). A file readable by others is refused rather than trusted.

    Raises:
        PermissionError: The token file is readable or writable by group or others.
    """
    path = state_dir / ADMIN_TOKEN_FILE_NAME
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        token = f"{ADMIN_TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
        _write_private(path, token.encode())
        return token
    if mode & 0o077:
        raise PermissionError(
            f"{path} is accessible to group or others (mode {mode & 0o777:o}); chmod 600 it"
        )
    return path.read_text().strip()


class KeyStoreError(ValueError):
    """An invalid request to the key store (unknown id, bad tenant or scope)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key as stored (never the token itself).

    Attributes:
        id: Public identifier (8 hex characters), also part of the token.
        tenant: Tenant every call made with the key runs in.
        scopes: Granted scopes, a subset of :data:`SCOPES`.
        digest: SHA-256 of the full token, hex.
        created_at: Unix time, seconds.
        revoked_at: Unix time of revocation, seconds; ``None`` while valid.
        name: Optional human label.
    """

    id: str
    tenant: str
    scopes: tuple[str, ...]
    digest: str
    created_at: float
    revoked_at: float | None = None
    name: str = ""

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked."""
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A freshly created key: the stored record and the token (shown once, then only its digest is kept)."""

    key: ApiKey
    token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _validate_tenant(tenant: str) -> None:
    ok = 1 <= len(tenant) <= 64 and tenant[0].isalnum() and tenant.isascii()
    if not ok or not all(c.isalnum() or c in "_.-" for c in tenant):
        raise KeyStoreError(
            f"tenant {tenant!r} must be 1-64 characters of letters, digits, '_', '.', '-', starting "
            "with a letter or digit"
        )


def parse_scopes(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Scopes from ``"read,write"`` (or a sequence), deduplicated in :data:`SCOPES` order.

    Raises:
        KeyStoreError: An unknown scope, or none at all.
    """
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    unknown = sorted(set(items) - set(SCOPES))
    if unknown or not items:
        raise KeyStoreError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {items}")
    return tuple(s for s in SCOPES if s in items)


def key_from_dict(raw: dict[str, Any]) -> ApiKey:
    """An :class:`ApiKey` from its JSON form (``dataclasses.asdict`` of it; ``scopes`` a list)."""
    return ApiKey(**{**raw, "scopes": tuple(raw["scopes"])})


def revoked(key: ApiKey) -> ApiKey:
    """``key`` marked revoked now (unchanged if it already was)."""
    if key.revoked:
        return key
    return ApiKey(**{**asdict(key), "scopes": key.scopes, "revoked_at": time.time()})


def token_key_id(token: str) -> str | None:
    """The key id a token names (``nrk_<id>_<secret>``), or ``None`` for a token of another kind."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    return token[len(TOKEN_PREFIX) :].split("_", 1)[0]


def matches(key: ApiKey | None, token: str) -> bool:
    """Whether ``key`` is valid (present, not revoked) and ``token`` is its token (constant-time)."""
    return key is not None and not key.revoked and hmac.compare_digest(key.digest, _digest(token))


def new_key(
    tenant: str,
    scopes: str | tuple[str, ...] | list[str],
    *,
    name: str = "",
    taken: Callable[[str], bool] = lambda _: False,
) -> CreatedKey:
    """A new random key for ``tenant`` with ``scopes`` (its id not ``taken``), not stored anywhere yet.

    Raises:
        KeyStoreError: Invalid tenant or scopes.
    """
    _validate_tenant(tenant)
    granted = parse_scopes(scopes)
    key_id = secrets.token_hex(4)
    while taken(key_id):  # pragma: no cover - 1 in 4 billion
        key_id = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=key_id, tenant=tenant, scopes=granted, digest=_digest(token), created_at=time.time(), name=name
    )
    return CreatedKey(key=key, token=token)


@dataclass
class KeyStore:
    """API keys of one Neurectomy installation, in ``path`` (usually ``<state_dir>/api-keys.json``).

    Args:
        path: The JSON file (created on the first write, mode 0600).
    """

    path: Path
    _keys: dict[str, ApiKey] = field(default_factory=dict, init=False, repr=False)
    _seen: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._keys, self._seen = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._seen:
            return
        raw = json.loads(self.path.read_text() or "{}")
        self._keys = {k["id"]: key_from_dict(k) for k in raw.get("keys", [])}
        self._seen = stamp

    def _write(self) -> None:
        data = json.dumps({"version": 1, "keys": [asdict(k) for k in self._keys.values()]}, indent=1)
        _write_private(self.path, data.encode())
        self._seen = None

    def create(self, tenant: str, scopes: str | tuple[str, ...] | list[str], *, name: str = "") -> CreatedKey:
        """Create a key for ``tenant`` with ``scopes``; the returned token is not stored anywhere.

        Raises:
            KeyStoreError: Invalid tenant or scopes.
        """
        with self._lock:
            self._reload()
            created = new_key(tenant, scopes, name=name, taken=self._keys.__contains__)
            self._keys[created.key.id] = created.key
            self._write()
        return created

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (kept in the file, marked revoked); revoking twice is a no-op.

        Raises:
            KeyStoreError: No key has this id.
        """
        with self._lock:
            self._reload()
            key = self._keys.get(key_id)
            if key is None:
                raise KeyStoreError(f"no API key with id {key_id!r}")
            if not key.revoked:
                key = revoked(key)
                self._keys[key_id] = key
                self._write()
            return key

    def list_keys(self) -> list[ApiKey]:
        """Every key (revoked ones included), oldest first."""
        with self._lock:
            self._reload()
            return sorted(self._keys.values(), key=lambda k: k.created_at)

    def verify(self, token: str) -> ApiKey | None:
        """The valid (not revoked) key whose token this is, or ``None``."""
        key_id = token_key_id(token)
        if key_id is None:
            return None
        with self._lock:
            self._reload()
            key = self._keys.get(key_id)
        return key if matches(key, token) else None

    def stamp(self) -> tuple[int, int] | None:
        """The file's ``(mtime_ns, size)`` now (``None`` without a file): a change means keys changed."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)
