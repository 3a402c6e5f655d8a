"""ΣVAULT's record log on JetStream: every Storage replica serves the same records.

With ``vault_log.mode: jetstream`` a write is sealed on the replica that takes the call
(:class:`vault.LogReplica`), published to the replicated stream ``VAULT_LOG`` (R =
``nats.stream_replicas``; one subject per tenant, ``neurectomy.vault.log.<sha256(tenant)[:32]>``) and
acknowledged to the caller only after JetStream's ack, with the message's stream sequence. Every replica
(the writer included) reads the stream in order with an ordered consumer from the sequence its local
vault has applied, and applies each message to it; the local WAL and snapshots are a cache of the stream
(records, FAISS index and the applied sequence) that makes a restart fast. A replica catches up to the
stream's last sequence before its agents join their queue groups.

Read-your-writes: a write returns its sequence; a read given ``after_sequence`` on a replica that has not
applied it yet waits for it (at most ``read_wait_s`` and the call's deadline), then fails with
:class:`LogBehindError` (503: retry, perhaps on another replica).

Data keys live in the KV bucket ``vault_keyring`` (one key per tenant, compare-and-set), wrapped under the
KEK every replica shares (``NEURECTOMY_VAULT_KEK`` or a mounted key file): the first replica to
``create`` a tenant's key wins and the others install the winner, so two replicas never seal one tenant
under different keys. Key versions come from a counter in the same bucket (CAS), unique cluster-wide.
Deletes and shreds go through the log; a shred removes the tenant's keys from the bucket after its log
message is acknowledged; a data-key rotation is a CAS update of the tenant's keys.
"""

from __future__ import annotations

import functools

import anyio
import anyio.abc
import structlog

from agents.errors import NotFoundError, TooLargeError
from agents.jetstream import (
    JetStream,
    JetStreamUnavailableError,
    KeyValueBucket,
    StoredMessage,
    last_sequence,
    ordered_reader,
)
from agents.storage._log_config import LogBehindError, VaultLogConfig, tenant_subject
from agents.storage._log_keyring import SharedKeyring
from bridges.vault import VaultBridge
from vault import (
    LogReplica,
    NewRecord,
    SealedWrite,
    TenantNotFoundError,
    VaultError,
    VaultStorageError,
)

__all__ = ("LogBehindError", "RecordLog", "VaultLogConfig", "tenant_subject")

log = structlog.get_logger("neurectomy.agents.storage")

_BATCH = 256
"""Most log messages applied with one local commit (count)."""
_ENVELOPE_BYTES = 4096
"""Room left in a NATS message for headers (bytes)."""


class RecordLog(SharedKeyring):
    """One Storage replica's side of the record log: writes go out through it, the stream comes in.

    Args:
        bridge: The replica's vault (a cache of the stream).
        js: JetStream on the replica's bus.
        config: Stream, bucket and waits.
        max_payload_bytes: Largest NATS message (a sealed write beyond it is refused).
    """

    def __init__(
        self, bridge: VaultBridge, js: JetStream, config: VaultLogConfig, *, max_payload_bytes: int
    ) -> None:
        self.bridge = bridge
        self.js = js
        self.config = config
        self.replica = LogReplica(bridge.vault)
        self.max_payload_bytes = max_payload_bytes
        self.applied = 0
        """Stream sequence of the last message applied here."""
        self._advanced = anyio.Event()
        self._keys: KeyValueBucket | None = None
        self._revisions: dict[str, int] = {}
        """Tenant → revision of its keyring entry installed here."""

    # ----------------------------------------------------------------- start and follow
    async def open(self) -> None:
        """Create the stream and the keyring bucket if missing (replicated per ``nats.stream_replicas``).

        A replica whose KEK is not the one the shared keyring was wrapped under is refused here: it could
        apply no message (each fails its MAC) and would serve an empty vault.

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
            vault.KeyEncryptionKeyError: This replica's KEK differs from the cluster's.
        """
        await self.js.ensure_stream(self.config.stream, [f"{self.config.subject_prefix}.>"], work_queue=False)
        self._keys = await self.js.ensure_key_value(self.config.keyring_bucket)
        for name in (await self._keys.keys("tenant.*"))[:1]:
            try:
                entry = await self._keys.get(name)
            except NotFoundError:
                continue
            await self.bridge.offload("log_keys", functools.partial(self.replica.check_kek, entry.value))

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Apply the stream to the vault forever; ``started`` once caught up with its last sequence."""
        self.applied = await self.bridge.offload("log_sequence", lambda: self.replica.sequence)
        target = await last_sequence(self.js, self.config.stream)
        log.info("vault log catching up", applied=self.applied, stream_last=target)
        with anyio.move_on_after(self.config.catch_up_timeout_s) as scope:
            while self.applied < target:
                await self._follow(until=target)
        if scope.cancelled_caught:
            log.error("vault log catch-up timed out; serving anyway", applied=self.applied, target=target)
        log.info("vault log caught up", applied=self.applied)
        task_status.started()
        while True:
            await self._follow(until=None)

    async def _follow(self, *, until: int | None) -> None:
        """Read and apply messages (until ``until`` is applied, or forever); a lost reader is recreated."""
        try:
            reader = await ordered_reader(
                self.js, self.config.stream, f"{self.config.subject_prefix}.>", start_seq=self.applied + 1
            )
        except JetStreamUnavailableError as exc:
            log.warning("vault log unavailable; retrying", error=str(exc))
            await anyio.sleep(0.5)
            return
        try:
            while until is None or self.applied < until:
                await self._apply_batch(await reader.next_batch(max_msgs=_BATCH, timeout_s=1.0))
        except JetStreamUnavailableError as exc:
            log.warning("vault log reader lost; recreating", error=str(exc), applied=self.applied)
            await anyio.sleep(0.2)
        except Exception as exc:  # noqa: BLE001 - the replica must keep following; the next round retries
            log.exception("vault log follower failed; retrying", error=repr(exc), applied=self.applied)
            await anyio.sleep(1.0)
        finally:
            await reader.aclose()

    async def _apply_batch(self, batch: list[StoredMessage]) -> None:
        """Apply the messages received so far with one local commit; one by one if that fails."""
        msgs = [m for m in batch if m.seq > self.applied]
        if len(msgs) > 1:
            try:
                for msg in msgs:
                    await self._install_keys_for(msg.data)
                skipped = await self.bridge.offload(
                    "log_apply", functools.partial(self.replica.apply_many, [(m.data, m.seq) for m in msgs])
                )
                for seq, reason in skipped:
                    log.error("vault log message skipped", seq=seq, error=reason)
                self._advance(msgs[-1].seq)
                return
            except VaultError as exc:  # one message spoils the commit: apply them one by one
                log.warning("vault log batch not applied; one by one", error=str(exc), first=msgs[0].seq)
        for msg in msgs:
            await self._apply(msg)

    def _advance(self, sequence: int) -> None:
        self.applied = sequence
        self._advanced.set()
        self._advanced = anyio.Event()

    async def _apply(self, msg: StoredMessage) -> None:
        while True:
            try:
                await self._install_keys_for(msg.data)
                await self.bridge.offload(
                    "log_apply", functools.partial(self.replica.apply, msg.data, msg.seq)
                )
                break
            except VaultStorageError as exc:  # a full disk: nothing was applied; try again
                log.error("vault log apply failed; retrying", seq=msg.seq, error=str(exc))
                await anyio.sleep(1.0)
            except VaultError as exc:  # not sealed by a replica of this KEK, or damaged: never applies
                log.error("vault log message skipped", seq=msg.seq, subject=msg.subject, error=str(exc))
                break
        self._advance(msg.seq)

    # ----------------------------------------------------------------- waiting
    async def wait_applied(self, sequence: int, timeout_s: float) -> bool:
        """Wait until ``sequence`` is applied here (at most ``timeout_s`` seconds); whether it is."""
        with anyio.move_on_after(max(timeout_s, 0.0)):
            while self.applied < sequence:
                await self._advanced.wait()
        return self.applied >= sequence

    async def caught_up(self, sequence: int | None, timeout_s: float) -> None:
        """Return once ``sequence`` (a caller's earlier write) is applied here.

        Raises:
            LogBehindError: Not applied within ``min(timeout_s, read_wait_s)`` (503: retry).
        """
        if sequence is None or sequence <= self.applied:
            return
        if not await self.wait_applied(sequence, min(timeout_s, self.config.read_wait_s)):
            raise LogBehindError(
                f"this Storage replica has applied the vault log up to {self.applied}, not yet "
                f"{sequence}; retry",
                field="after_sequence",
            )

    # ----------------------------------------------------------------- writes
    async def _publish(self, tenant: str, sealed: SealedWrite, msg_id: str | None) -> int:
        if len(sealed.data) > self.max_payload_bytes - _ENVELOPE_BYTES:
            raise TooLargeError(
                f"the sealed batch is {len(sealed.data)} bytes, over the NATS max payload of "
                f"{self.max_payload_bytes} bytes; send fewer records per call",
                field="records",
            )
        subject = tenant_subject(self.config.subject_prefix, tenant)
        return await self.js.publish(subject, sealed.data, stream=self.config.stream, msg_id=msg_id)

    def _msg_id(self, op: str, tenant: str, key: str | None) -> str | None:
        return None if key is None else f"{op}:{tenant_subject('', tenant).lstrip('.')}:{key}"

    async def put_many(
        self, tenant: str, records: list[NewRecord], *, idempotency_key: str | None, timeout_s: float
    ) -> tuple[list[str], int]:
        """Seal, publish (acknowledged by JetStream), then wait (bounded) for the local apply.

        Returns:
            The record ids and the write's stream sequence.

        Raises:
            TooLargeError: The sealed batch does not fit in one NATS message.
            JetStreamUnavailableError: JetStream did not acknowledge (nothing is acknowledged to the caller).
            VaultInputError: Bad records (as the vault raises them).
        """
        if idempotency_key is not None:
            earlier = await self.bridge.offload(
                "log_done", functools.partial(self.replica.done, tenant, idempotency_key)
            )
            if earlier is not None:
                return list(earlier), self.applied
        await self.ensure_key(tenant)
        sealed = await self.bridge.offload(
            "put_many",
            functools.partial(self.replica.seal_put, tenant, records, idempotency_key=idempotency_key),
            timeout_s=timeout_s,
        )
        sequence = await self._publish(tenant, sealed, self._msg_id("put", tenant, idempotency_key))
        await self.wait_applied(sequence, timeout_s)
        self.bridge.metrics.records_written += len(sealed.result)
        return list(sealed.result), sequence

    async def delete(
        self, tenant: str, record_id: str, *, idempotency_key: str | None, timeout_s: float
    ) -> int:
        """Delete a record through the log; returns the sequence.

        Raises:
            TenantNotFoundError: Unknown tenant.
            RecordNotFoundError: No such record here (pass the write's ``after_sequence`` first).
        """
        if idempotency_key is not None and await self.bridge.offload(
            "log_done", functools.partial(self.replica.done, tenant, idempotency_key)
        ):
            return self.applied
        sealed = await self.bridge.offload(
            "delete",
            functools.partial(self.replica.seal_delete, tenant, record_id, idempotency_key=idempotency_key),
        )
        sequence = await self._publish(tenant, sealed, self._msg_id("delete", tenant, idempotency_key))
        await self.wait_applied(sequence, timeout_s)
        return sequence

    async def shred(self, tenant: str, *, idempotency_key: str | None, timeout_s: float) -> int:
        """Crypto-shred a tenant: the log message first, then its keys leave the keyring bucket.

        Raises:
            TenantNotFoundError: The tenant has no data key (here or in the bucket).
        """
        if idempotency_key is not None and await self.bridge.offload(
            "log_done", functools.partial(self.replica.shredded, tenant, idempotency_key)
        ):
            return self.applied  # a retry of a shred applied already
        entry = await self._entry(tenant)
        if entry is None and tenant not in await self.bridge.offload("tenants", self.bridge.vault.tenants):
            raise TenantNotFoundError(tenant)
        sealed = await self.bridge.offload(
            "delete_tenant",
            functools.partial(self.replica.seal_shred, tenant, idempotency_key=idempotency_key),
        )
        sequence = await self._publish(tenant, sealed, self._msg_id("shred", tenant, idempotency_key))
        if entry is not None:
            await self.keys.delete(self._key_name(tenant))
        self._revisions.pop(tenant, None)
        await self.wait_applied(sequence, timeout_s)
        await self.bridge.tenant_deleted(tenant)
        return sequence
