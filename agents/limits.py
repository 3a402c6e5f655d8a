"""Limits of the wire, in one place: how big a NATS message may be, and the room kept around a payload.

Pure constants, importing nothing: the embedded nats-server is started with :data:`NATS_MAX_PAYLOAD_BYTES`,
agents refuse outputs and the API refuses requests that would not fit in one message with
:data:`ENVELOPE_RESERVE_BYTES` to spare. A joined nats-server may have another ``max_payload``; the
runtime reads the connected server's (``Bus.max_payload``) and passes it down, so these are defaults.
"""

from __future__ import annotations

__all__ = ("ENVELOPE_RESERVE_BYTES", "NATS_MAX_PAYLOAD_BYTES")

NATS_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
"""Largest NATS message the embedded nats-server accepts (its ``max_payload``), in bytes (8 MiB;
nats-server's own default is 1 MiB)."""

ENVELOPE_RESERVE_BYTES = 64 * 1024
"""Room kept in a NATS message for what travels around a payload, in bytes: NATS headers (request id,
deadline, tenant, trace), the JSON envelope of the wire protocol (``End{type, seq, output}``) and small
fields beside the payload (e.g. a compression report)."""
