"""Limits of the wire, in one place: how big a NATS message may be, and the room kept around a payload.

Constants and one formula, importing nothing: the embedded nats-server is started with
:data:`NATS_MAX_PAYLOAD_BYTES`, agents refuse outputs and the API refuses requests that would not fit in one
message with :data:`ENVELOPE_RESERVE_BYTES` to spare. A joined nats-server may have another
``max_payload``; the runtime reads the connected server's (``Bus.max_payload``) and passes it down, so these
are defaults.

An agent also refuses a JSON input larger than its ``Agent.max_input_bytes`` before decoding it
(:data:`DEFAULT_MAX_INPUT_BYTES` unless it declares more, e.g. :func:`text_input_bytes` of its longest
texts): decoding runs on the event loop and costs up to ~0.3 µs per byte of pathological JSON
(docs/collective.md, "Large inputs are decoded on the loop").
"""

from __future__ import annotations

__all__ = (
    "DEFAULT_MAX_INPUT_BYTES",
    "ENVELOPE_RESERVE_BYTES",
    "JSON_TEXT_BYTES_PER_CHAR",
    "NATS_MAX_PAYLOAD_BYTES",
    "text_input_bytes",
)

NATS_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
"""Largest NATS message the embedded nats-server accepts (its ``max_payload``), in bytes (8 MiB;
nats-server's own default is 1 MiB)."""

ENVELOPE_RESERVE_BYTES = 64 * 1024
"""Room kept in a NATS message for what travels around a payload, in bytes: NATS headers (request id,
deadline, tenant, trace), the JSON envelope of the wire protocol (``End{type, seq, output}``) and small
fields beside the payload (e.g. a compression report)."""

DEFAULT_MAX_INPUT_BYTES = 64 * 1024
"""Largest JSON input (the request's payload before a binary attachment) an agent takes unless it declares
its own ``max_input_bytes``, in bytes (64 KiB). The worst shape (a list of nested empty lists: a Python
object per 2 bytes) decodes on the loaded 2-core machine, garbage collections included, in a median of
7-15 ms at 64 KiB, 16-34 ms at 128 KiB, 51-55 ms at 256 KiB and 210-310 ms at 1 MiB (two runs of
``benchmarks/input_limit.py``; ~110-290 ns per byte, growing with the size; strings ~5 ns per byte)."""

JSON_TEXT_BYTES_PER_CHAR = 4
"""Most bytes one character of a text takes in JSON as the service writes it (UTF-8, unescaped:
``pydantic_core.to_json``); ``\\n``, ``\\"`` and ``\\\\`` take 2. Control characters written as
``\\u00XX`` take 6, so a text made of them can reach the byte limit before the character limit."""


def text_input_bytes(*chars: int) -> int:
    """The byte limit of a JSON input whose text fields hold at most ``chars`` characters each.

    Args:
        chars: Each text field's character limit (e.g. ``MAX_TEXT_CHARS``).

    Returns:
        :data:`JSON_TEXT_BYTES_PER_CHAR` bytes per character of every field, plus
        :data:`ENVELOPE_RESERVE_BYTES` for the other fields and the JSON around them, in bytes.
    """
    return JSON_TEXT_BYTES_PER_CHAR * sum(chars) + ENVELOPE_RESERVE_BYTES
