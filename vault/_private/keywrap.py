"""The ``keyring.json`` document's crypto: KEK ids, wrapping under the KEK, the file's MAC, reading it.

The key hierarchy is described in :mod:`vault._private.keyring`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import (
    IntegrityError,
)

__all__ = (
    "KEYRING_NAME",
    "LOCAL_VERSIONS_FROM",
    "FORMAT",
    "kek_aad",
    "kek_id",
    "log_key",
    "mac_key",
    "read_document",
    "salvage_keys",
    "unwrap",
    "wrap",
    "wrap_aad",
)

KEYRING_NAME = "keyring.json"
LOCAL_VERSIONS_FROM = 2**31
"""First data-key version of keys a replicated vault creates on its own (see ``reserve_local_versions``)."""
FORMAT = 2


def kek_id(kek: bytes) -> str:
    """Public fingerprint of a KEK (HMAC of a constant; reveals nothing about the key)."""
    return hmac.new(kek, b"svault/kek-id/v1", hashlib.sha256).hexdigest()[:16]


def mac_key(kek: bytes) -> bytes:
    return hmac.new(kek, b"svault/keyring-mac/v1", hashlib.sha256).digest()


def log_key(kek: bytes) -> bytes:
    return hmac.new(kek, b"svault/record-log-mac/v1", hashlib.sha256).digest()


def wrap_aad(tenant: str, version: int) -> bytes:
    return b"svault/data-key/v1\x00" + tenant.encode() + b"\x00" + str(version).encode()


def kek_aad(old_id: str) -> bytes:
    return b"svault/previous-kek/v1\x00" + old_id.encode()


def wrap(kek: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, plaintext, aad)


def unwrap(kek: bytes, wrapped: bytes, aad: bytes) -> bytes | None:
    try:
        return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)
    except (InvalidTag, ValueError):
        return None


def read_document(path: Path) -> tuple[dict[str, Any], bytes]:
    """The parsed keyring document and its raw bytes.

    Raises:
        IntegrityError: The file is not a keyring (names the byte where JSON parsing failed).
    """
    raw = path.read_bytes()
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise IntegrityError(path, f"keyring is not valid JSON: {exc.msg}", exc.pos) from None
    except ValueError as exc:
        raise IntegrityError(path, f"keyring is not valid JSON: {exc}") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("body"), dict)
        or not isinstance(doc.get("mac"), str)
    ):
        raise IntegrityError(path, "not a keyring file (body or mac missing)")
    return doc, raw


def salvage_keys(
    doc: dict[str, Any], raw: bytes, kek: bytes, path: Path
) -> tuple[dict[int, tuple[str, bytes]], list[tuple[int | None, str]]]:
    """Every data key of a keyring document that still unwraps under ``kek``, ignoring its HMAC.

    Returns:
        ``version → (tenant, data key)``, and ``(offset, reason)`` for each key or check that failed.
    """
    problems: list[tuple[int | None, str]] = []
    body = doc["body"]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    mac = hmac.new(mac_key(kek), canonical, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, str(doc.get("mac"))):
        problems.append((None, "keyring HMAC does not verify (file altered); keeping the keys that unwrap"))
    found: dict[int, tuple[str, bytes]] = {}
    tenants = body.get("tenants") if isinstance(body.get("tenants"), dict) else {}
    for tenant, entry in (tenants or {}).items():
        keys = entry.get("keys") if isinstance(entry, dict) else None
        for version, text in (keys if isinstance(keys, dict) else {}).items():
            try:
                key = unwrap(kek, base64.b64decode(text), wrap_aad(str(tenant), int(version)))
            except (ValueError, TypeError):
                key = None
            if key is None:
                problems.append((raw.find(str(text).encode()), f"data key {version} does not unwrap"))
            else:
                found[int(version)] = (str(tenant), key)
    return found, problems
