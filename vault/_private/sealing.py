"""AES-256-GCM sealing of records and files, and the plaintext layout of a record.

Sealed blob layout (big-endian)::

    key_version u32 | nonce (12 bytes, random) | ciphertext || tag (16 bytes)

Associated data (AAD) binds what the blob is: a record binds tenant, record id and data-key version; a
snapshot file binds tenant, file kind, snapshot generation and data-key version. Moving a blob to another
tenant, id, generation or key version makes authentication fail. GCM with random 96-bit nonces is safe for
well under 2**32 messages per key (NIST SP 800-38D, section 8.3); rotating the data key resets the count.

Record plaintext layout::

    dim u16 | embedding float32[dim] (little-endian) | codec u8 | payload

where payload is the JSON object ``{"t": text, "m": metadata}``, stored raw (codec 0) or compressed with
``sigmalang.compress`` (codec 1) when that is smaller.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from numpy.typing import NDArray

import sigmalang

__all__ = (
    "NONCE_BYTES",
    "InvalidTag",
    "blob_key_version",
    "decode_record",
    "decode_vector",
    "encode_payload",
    "encode_record",
    "file_aad",
    "open_blob",
    "record_aad",
    "seal",
)

NONCE_BYTES = 12
_HEADER = struct.Struct(">I")
_CODEC_RAW = 0
_CODEC_SIGMALANG = 1


def _field(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">I", len(raw)) + raw


def record_aad(tenant: str, record_id: str, key_version: int) -> bytes:
    """Associated data of a sealed record: binds tenant, record id and data-key version."""
    return b"svault/record/v1" + _field(tenant) + _field(record_id) + struct.pack(">I", key_version)


def file_aad(tenant: str, kind: str, generation: int, key_version: int) -> bytes:
    """Associated data of a sealed snapshot file: binds tenant, kind, generation and key version."""
    return b"svault/file/v1" + _field(tenant) + _field(kind) + struct.pack(">QI", generation, key_version)


def seal(key: bytes, key_version: int, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` with AES-256-GCM under a fresh random 96-bit nonce.

    Args:
        key: 32-byte data key.
        key_version: Version of ``key``, stored in clear in front of the blob.
        plaintext: Bytes to seal.
        aad: Associated data (authenticated, not stored).

    Returns:
        The sealed blob (``4 + 12 + len(plaintext) + 16`` bytes).
    """
    nonce = os.urandom(NONCE_BYTES)
    return _HEADER.pack(key_version) + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def blob_key_version(blob: bytes) -> int:
    """Data-key version a sealed blob was made with.

    Raises:
        InvalidTag: The blob is too short to be sealed.
    """
    if len(blob) < _HEADER.size + NONCE_BYTES + 16:
        raise InvalidTag
    return int(_HEADER.unpack_from(blob)[0])


def open_blob(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Authenticate and decrypt a sealed blob.

    Raises:
        InvalidTag: Wrong key, wrong associated data, or altered bytes.
    """
    blob_key_version(blob)
    start = _HEADER.size
    nonce = blob[start : start + NONCE_BYTES]
    return AESGCM(key).decrypt(nonce, blob[start + NONCE_BYTES :], aad)


def encode_payload(text: str, metadata: dict[str, Any]) -> bytes:
    """Canonical JSON of a record's text and metadata (UTF-8, no NaN).

    Raises:
        TypeError: Metadata is not JSON-serialisable.
        ValueError: Metadata holds NaN or infinity, or a circular reference.
    """
    return json.dumps({"t": text, "m": metadata}, ensure_ascii=False, allow_nan=False).encode()


def encode_record(payload: bytes, embedding: NDArray[np.float32]) -> bytes:
    """Plaintext of a record: embedding then (compressed) payload; see the module docstring."""
    compressed = sigmalang.compress(payload)
    if len(compressed) < len(payload):
        codec, body = _CODEC_SIGMALANG, compressed
    else:
        codec, body = _CODEC_RAW, payload
    vector = np.ascontiguousarray(embedding, dtype="<f4")
    return struct.pack(">H", vector.shape[0]) + vector.tobytes() + bytes([codec]) + body


def decode_vector(plaintext: bytes) -> NDArray[np.float32]:
    """Only the ``(dim,)`` float32 embedding of a record plaintext (skips decompression)."""
    (dim,) = struct.unpack_from(">H", plaintext)
    return np.frombuffer(plaintext, dtype="<f4", count=dim, offset=2).astype(np.float32)


def decode_record(plaintext: bytes) -> tuple[str, dict[str, Any], NDArray[np.float32]]:
    """Inverse of :func:`encode_record`.

    Returns:
        ``(text, metadata, embedding)`` with embedding ``(dim,)`` float32.

    Raises:
        ValueError: The plaintext is malformed (cannot happen for an authenticated blob unless the
            format changed).
    """
    (dim,) = struct.unpack_from(">H", plaintext)
    end = 2 + 4 * dim
    if len(plaintext) < end + 1:
        raise ValueError("record plaintext is truncated")
    embedding = np.frombuffer(plaintext, dtype="<f4", count=dim, offset=2).astype(np.float32)
    codec = plaintext[end]
    body = plaintext[end + 1 :]
    if codec == _CODEC_SIGMALANG:
        body = sigmalang.decompress(body)
    elif codec != _CODEC_RAW:
        raise ValueError(f"unknown record codec {codec}")
    obj = json.loads(body)
    return str(obj["t"]), dict(obj["m"]), embedding
