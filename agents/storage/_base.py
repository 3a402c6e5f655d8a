"""The base of the Storage team's agents and the one mapping from ΣVAULT exceptions to wire errors.

Every agent shares the bridge, its declared output model (published as its output JSON schema and the
type :meth:`StorageAgent.work` returns), the size check of its output against the NATS max payload,
and :func:`vault_error`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import structlog
from pydantic import BaseModel

from agents.actor import Agent, Call
from agents.errors import (
    AgentBusyError,
    AgentError,
    AgentFailedError,
    BadInputError,
    DeadlineExceededError,
    InsufficientStorageError,
    NotFoundError,
    TooLargeError,
)
from agents.limits import ENVELOPE_RESERVE_BYTES, NATS_MAX_PAYLOAD_BYTES
from agents.storage._log import RecordLog
from bridges.errors import BridgeTimeoutError
from bridges.vault import VaultBridge
from vault import (
    EmptyTextError,
    IntegrityError,
    KeyEncryptionKeyError,
    RecordNotFoundError,
    RecordTooLargeError,
    TenantNotFoundError,
    VaultClosedError,
    VaultDeadlineError,
    VaultError,
    VaultInputError,
    VaultLockedError,
    VaultStorageError,
)
from vault import InsufficientStorageError as VaultFullError

__all__ = ("StorageAgent", "vault_error")

log = structlog.get_logger("neurectomy.agents.storage")


def vault_error(exc: Exception, *, fields: Mapping[str, str] | None = None) -> AgentError:
    """The wire error for a ΣVAULT or bridge exception (the one place this mapping lives).

    Args:
        exc: What the vault or the bridge raised.
        fields: Renames the vault's field names to the agent's input names (e.g. ``{"where":
            "filters"}``); a value may hold ``{position}``, the record's index in a batch.

    Returns:
        ``RecordNotFoundError``/``TenantNotFoundError`` → :class:`NotFoundError`;
        ``RecordTooLargeError`` → :class:`TooLargeError` stating size and limit; other input errors →
        :class:`BadInputError` naming the field; ``IntegrityError`` → :class:`AgentFailedError` naming the
        file; a full disk → :class:`InsufficientStorageError` naming the file (HTTP 507); another write
        error → :class:`AgentFailedError` naming the file; a KEK that cannot rotate → :class:`BadInputError`
        on ``scope``; closed/locked vault → :class:`AgentBusyError`; bridge timeout or a write that could
        not commit before its deadline → :class:`DeadlineExceededError`; anything else →
        :class:`AgentFailedError`.
    """
    rename = fields or {}

    def field_of(name: str) -> str:
        return rename.get(name, name).format(position=getattr(exc, "position", 0))

    if isinstance(exc, RecordTooLargeError):
        return TooLargeError(
            f"record is {exc.size_bytes} bytes of text + JSON metadata, over the limit of "
            f"{exc.limit_bytes} bytes (vault.max_record_bytes)",
            field=field_of(exc.field),
        )
    if isinstance(exc, EmptyTextError):
        return BadInputError("must not be empty or only whitespace", field=field_of(exc.field))
    if isinstance(exc, VaultInputError):
        return BadInputError(exc.reason, field=field_of(exc.field))
    if isinstance(exc, RecordNotFoundError):
        return NotFoundError(f"no record {exc.record_id!r} in tenant {exc.tenant!r}", field="id")
    if isinstance(exc, TenantNotFoundError):
        return NotFoundError(
            f"tenant {exc.tenant!r} has no data (never written, or shredded)", field="tenant"
        )
    if isinstance(exc, IntegrityError):
        log.error("vault integrity check failed", file=str(exc.path), offset=exc.offset, reason=exc.reason)
        return AgentFailedError(f"vault integrity check failed: {exc}")
    if isinstance(exc, VaultFullError):
        log.error("vault storage full", file=str(exc.path), reason=exc.reason)
        return InsufficientStorageError(f"vault storage is full: {exc}")
    if isinstance(exc, VaultStorageError):
        log.error("vault write failed", file=str(exc.path), reason=exc.reason)
        return AgentFailedError(f"vault write failed: {exc}")
    if isinstance(exc, VaultDeadlineError):
        return DeadlineExceededError(str(exc))
    if isinstance(exc, KeyEncryptionKeyError):
        return BadInputError(f"cannot rotate the key-encryption key: {exc}", field="scope")
    if isinstance(exc, VaultClosedError | VaultLockedError):
        return AgentBusyError(f"vault unavailable: {exc}")
    if isinstance(exc, BridgeTimeoutError):
        return DeadlineExceededError(str(exc))
    return AgentFailedError(f"{type(exc).__name__}: {exc}")


class StorageAgent(Agent):
    """Base of the Storage team: one vault call (or a few) per request, through a :class:`VaultBridge`.

    Subclasses declare ``output_model`` (required: it is the output JSON schema ``GET /v1/agents/{name}``
    serves) and implement :meth:`work`, which returns an instance of it; vault and bridge exceptions
    become wire errors through :func:`vault_error`, and an output larger than a NATS message is refused
    with ``too_large``.

    Args:
        bridge: The vault bridge (shared by the team's agents in a process).
        max_payload_bytes: Largest NATS message, in bytes (``Bus.max_payload``).
        log: The replicated record log (``vault_log.mode: jetstream``); ``None``: the vault's file WAL.

    Raises:
        TypeError: The subclass declares no ``output_model``.
    """

    team = "storage"
    bridges = ("vault",)
    text_input: ClassVar[str | None] = None
    text_output: ClassVar[str | None] = None
    ops: ClassVar[tuple[str, ...]] = ()
    """Bridge operations this agent performs (their counters go into ``$SRV.STATS``)."""
    fields: ClassVar[Mapping[str, str]] = {}
    """Vault field name → this agent's input field name, for error messages."""

    output_model: ClassVar[type[BaseModel] | None] = None

    def __init__(
        self,
        bridge: VaultBridge,
        *,
        max_payload_bytes: int = NATS_MAX_PAYLOAD_BYTES,
        log: RecordLog | None = None,
    ) -> None:
        if self.output_model is None:
            raise TypeError(f"{type(self).__name__} declares no output_model (a Storage agent must)")
        self.bridge = bridge
        self.max_payload_bytes = max_payload_bytes
        self.log = log

    async def caught_up(self, call: Call, sequence: int | None) -> None:
        """Wait until this replica has applied the caller's write ``sequence`` (no-op without a log).

        Raises:
            LogBehindError: It has not within the wait allowed (503: retry).
        """
        if self.log is not None:
            await self.log.caught_up(sequence, self.timeout(call))

    def metadata(self) -> dict[str, str]:
        """The engine and vector dimension."""
        return {"engine": "vault", "dim": str(self.bridge.dim)}

    def stats(self) -> dict[str, Any]:
        """Bridge counters of this agent's operations."""
        return self.bridge.metrics.as_dict(self.ops)

    @staticmethod
    def timeout(call: Call) -> float:
        """Seconds the vault call may take: what is left of the call's deadline."""
        return max(call.remaining_s(), 0.001)

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Run :meth:`work`, mapping vault errors to wire errors and refusing oversized outputs.

        Raises:
            AgentError: The mapped vault error, or :class:`TooLargeError` for an output over the limit.
        """
        try:
            output = await self.work(call)
        except (VaultError, BridgeTimeoutError) as exc:
            raise vault_error(exc, fields=self.fields) from exc
        size = len(output.model_dump_json().encode())
        if size > self.max_payload_bytes - ENVELOPE_RESERVE_BYTES:
            raise TooLargeError(
                f"the result is {size} bytes of JSON, over the NATS max payload of "
                f"{self.max_payload_bytes} bytes; ask for less (e.g. a smaller k)"
            )
        return output.model_dump()

    @abstractmethod
    async def work(self, call: Call) -> BaseModel:
        """Do the agent's work for ``call`` (its ``input`` already validated); return the output.

        Returns:
            An instance of the agent's ``output_model``.

        Raises:
            AgentError: Input the vault was not asked about (e.g. which fields were given).
            VaultError: Anything the vault refused (mapped by :meth:`handle`).
        """
