"""Settings, subjects and the read-your-writes error of ΣVAULT's record log (:mod:`agents.storage._log`)."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.errors import NoRespondersError

__all__ = ("LogBehindError", "VaultLogConfig", "tenant_subject")


class VaultLogConfig(BaseModel):
    """Where ΣVAULT's records are logged: the embedded file WAL, or a replicated JetStream stream."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["file", "jetstream"] = "file"
    """``file``: one Storage process owns the vault (its WAL is the log); ``jetstream``: any number of
    Storage replicas share the stream below (a cluster)."""
    stream: str = "VAULT_LOG"
    """Name of the record-log stream."""
    subject_prefix: str = "neurectomy.vault.log"
    """Subjects of the stream: ``<prefix>.<tenant hash>``."""
    keyring_bucket: str = "vault_keyring"
    """KV bucket of the wrapped data keys."""
    read_wait_s: float = Field(default=5.0, gt=0)
    """Longest wait of a read for a replica to apply the caller's ``after_sequence``, in seconds."""
    catch_up_timeout_s: float = Field(default=600.0, gt=0)
    """Longest catch-up at start before the agents serve anyway (logged), in seconds."""


class LogBehindError(NoRespondersError):
    """This replica has not applied the sequence the caller asked for in time (503: retry)."""


def tenant_subject(prefix: str, tenant: str) -> str:
    """The log subject of ``tenant``: ``<prefix>.<first 32 hex digits of sha256(tenant)>``."""
    return f"{prefix}.{hashlib.sha256(tenant.encode()).hexdigest()[:32]}"
