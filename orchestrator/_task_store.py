"""Durable tasks, the submitting side: records in a JetStream KV bucket, work in a work-queue stream.

A task is submitted once and answered at once (its id); workers (:mod:`orchestrator._task_worker`) run
it later and record per-step progress and the result. Layout on JetStream (names from
:class:`TaskConfig`):

* KV bucket ``neurectomy-tasks``: key ``<task id>`` → :class:`TaskRecord` (the source of truth; the
  tenant's data in it sealed, see :mod:`orchestrator._task_seal`); key
  ``idem.<sha256(tenant)>.<sha256(idempotency key)>`` → the task id (hashing the tenant keeps any two
  tenant names apart, whatever characters they hold); key ``open.<task id>`` → empty, while the task is
  not finished (the reconciler's index of the tasks to look after, :mod:`orchestrator._task_reconcile`).
* Work-queue stream ``NEURECTOMY_TASKS`` (file storage, ``max_queued`` messages, discard new): subjects
  ``neurectomy.tasks.queue.<high|normal|low>.<task id>``; a message carries the task id (``Nats-Msg-Id``
  = task id, so a repeated publish within the duplicate window is dropped); the per-task subject lets
  the reconciler see whether a task has a message.
* Stream ``NEURECTOMY_TASKS_DEAD`` (subject ``neurectomy.tasks.dead``): tasks that exhausted their
  attempts.
* Core subject ``neurectomy.tasks.cancel.<id>``: tells the worker running a task to stop now.

Every write of a record is compare-and-set on the key's revision, so concurrent writers (a cancel and a
worker, two workers after a redelivery) can never overwrite each other; the record is written before the
message is published, so a worker always finds it. A submit answers once the publish is acked; a crash
between the record and the publish leaves a ``queued`` record without a message, which the reconciler
publishes (the task runs once).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing

import anyio
from opentelemetry import trace

from agents.errors import AgentFailedError, BadInputError, NotFoundError, TooLargeError
from agents.jetstream import JetStreamUnavailableError
from agents.messaging import Bus
from agents.plans import PlanError, parse_plan
from agents.tracing import traceparent
from orchestrator._faults import crash_point
from orchestrator._task_models import (
    PRIORITIES,
    TERMINAL_STATUSES,
    Priority,
    TaskConfig,
    TaskRecord,
    TaskRequest,
    TaskStatus,
    error_dict,
    record_error,
)
from orchestrator._task_records import OPEN_PREFIX as OPEN_PREFIX
from orchestrator._task_records import TaskStore
from orchestrator._task_seal import Sealer, TaskHead


def idempotency_kv_key(tenant: str, key: str) -> str:
    """KV key of a tenant's idempotency key: both hashed (SHA-256), so no two tenants can share one."""
    return f"idem.{hashlib.sha256(tenant.encode()).hexdigest()}.{hashlib.sha256(key.encode()).hexdigest()}"


class TaskQueue:
    """Submit, read, cancel and watch durable tasks.

    Create with :meth:`open`. Every method takes the caller's tenant; another tenant's task behaves
    exactly like a missing one.
    """

    def __init__(self, bus: Bus, store: TaskStore) -> None:
        self._bus = bus
        self._store = store
        self.config = store.config

    @classmethod
    async def open(
        cls, bus: Bus, config: TaskConfig | None = None, *, sealer: Sealer | None = None
    ) -> TaskQueue:
        """A queue on ``bus``; creates the streams and the bucket if missing.

        Args:
            bus: Connected bus.
            config: Names and limits.
            sealer: Seals the tenant's data in records (``None``: stored in clear).

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        return cls(bus, await TaskStore.open(bus, config or TaskConfig(), sealer=sealer))

    def _online(self) -> None:
        """Refuse at once while the NATS connection is down (instead of waiting out JetStream timeouts).

        Raises:
            JetStreamUnavailableError: Not connected to NATS.
        """
        if not self._bus.is_connected:
            raise JetStreamUnavailableError("task queue: NATS is not connected")

    async def _publish(self, record: TaskRecord) -> None:
        await self._store.publish(record)

    async def submit(
        self,
        request: TaskRequest,
        *,
        tenant: str,
        idempotency_key: str | None = None,
        scopes: Iterable[str] = ("read", "write", "admin"),
    ) -> tuple[TaskRecord, bool]:
        """Store and queue a task; it is durable when this returns.

        Args:
            request: Goal or plan (validated here: a bad plan is refused now, not run).
            tenant: The caller's tenant.
            idempotency_key: With the same key and tenant, a repeated submit returns the first task.
            scopes: The caller's scopes, stored with the task: its run is authorised against them.

        Returns:
            The queued record, and ``True`` if it was created (``False``: an earlier submit with the same
            idempotency key).

        Raises:
            BadInputError: The plan is invalid (``field`` names where).
            TooLargeError: The record exceeds ``max_input_bytes``.
            AgentBusyError: The queue holds ``max_queued`` tasks already (answer 429).
            JetStreamUnavailableError: JetStream did not answer (answer 503).
        """
        self._online()
        if request.plan is not None:
            try:
                parse_plan(request.plan)
            except PlanError as exc:
                raise BadInputError(str(exc).split(": ", 1)[-1], field=exc.field) from None
        now = time.time()
        record = TaskRecord(
            id=uuid.uuid4().hex,
            tenant=tenant,
            priority=request.priority,
            goal=request.goal,
            plan=request.plan,
            input=request.input,
            idempotency_key=idempotency_key,
            scopes=tuple(sorted(set(scopes))),
            created_at=now,
            updated_at=now,
            traceparent=traceparent(trace.get_current_span()),
        )
        size = len(record.model_dump_json().encode())
        if size > self.config.max_input_bytes:
            raise TooLargeError(
                f"the task is {size} bytes as JSON; at most {self.config.max_input_bytes} are accepted"
            )
        kv = self._store.kv
        if not await self._store.create(record):  # pragma: no cover - uuid4 collision
            raise AgentFailedError("task id collision; submit again")
        if idempotency_key is not None:
            idem = idempotency_kv_key(tenant, idempotency_key)
            while await kv.create(idem, record.id.encode()) is None:
                existing, idem_revision = await self._existing(idem)
                if existing is not None:
                    await kv.delete(record.id)
                    await self._store.close_marker(record.id)
                    return existing, False
                if await kv.update(idem, record.id.encode(), revision=idem_revision) is not None:
                    break
        crash_point("task-recorded")
        try:
            await self._publish(record)
        except BaseException:
            await self._forget(record)
            raise
        return record, True

    async def _existing(self, idem: str) -> tuple[TaskRecord | None, int]:
        """The task an idempotency key points at (re-queued if its publish may have been lost).

        Returns:
            The task (``None`` if it no longer exists: the caller re-points the key) and the key's
            revision.
        """
        try:
            entry = await self._store.kv.get(idem)
        except NotFoundError:  # removed meanwhile (a refused submit): free again
            return None, 0
        try:
            record, _ = await self._store.load(entry.value.decode())
        except NotFoundError:
            return None, entry.revision
        if record.status == "queued" and record.attempts == 0:
            # The first submit may have died between its KV write and its publish; publishing again is
            # harmless within the duplicate window (same Nats-Msg-Id), so do it while it is open.
            if time.time() - record.created_at < self.config.duplicate_window_s * 0.9:
                await self._publish(record)
        return record, entry.revision

    async def _forget(self, record: TaskRecord) -> None:
        """Remove a record whose publish failed (best effort), and its idempotency key."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(self.config.fetch_timeout_s):
            try:
                await self._store.kv.delete(record.id)
                await self._store.kv.delete(OPEN_PREFIX + record.id)
                if record.idempotency_key is not None:
                    await self._store.kv.delete(idempotency_kv_key(record.tenant, record.idempotency_key))
            except Exception:  # noqa: S110 - best effort; the original error is what matters
                pass

    async def get(self, task_id: str, tenant: str) -> TaskRecord:
        """The record of a task.

        Raises:
            NotFoundError: No such task, or it belongs to another tenant.
            JetStreamUnavailableError: JetStream did not answer.
        """
        self._online()
        record, _ = await self._load_for(task_id, tenant)
        return record

    async def _load_for(self, task_id: str, tenant: str) -> tuple[TaskRecord, int]:
        record, revision = await self._store.load(task_id)
        if record.tenant != tenant:
            raise NotFoundError(f"no task {task_id!r}", field="id")
        return record, revision

    async def cancel(self, task_id: str, tenant: str) -> TaskRecord:
        """Cancel a task: a queued one never runs, a running one stops at once.

        Cancelling a finished task changes nothing and returns its record.

        Raises:
            NotFoundError: No such task, or it belongs to another tenant.
            JetStreamUnavailableError: JetStream did not answer.
        """
        self._online()
        record, revision = await self._load_for(task_id, tenant)

        def cancelled(current: TaskRecord) -> TaskRecord | None:
            if current.terminal:
                return None
            return current.changed(
                status="cancelled", error=error_dict("cancelled", "cancelled by the caller")
            )

        record, _, wrote = await self._store.mutate(record, revision, cancelled)
        if wrote:
            await self._bus.publish(self.config.cancel_subject(task_id), b"")
            await self._store.close_marker(task_id)
        return record

    async def list_tasks(
        self, tenant: str, *, status: TaskStatus | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[TaskRecord], str | None]:
        """The tenant's tasks, newest first, one page at a time.

        Args:
            tenant: The caller's tenant (only its tasks are listed).
            status: Only tasks with this status.
            limit: Most tasks returned.
            cursor: ``next_cursor`` of the previous page (``None``: the first page).

        Returns:
            The page, and the cursor of the next page (``None`` when this is the last).

        Raises:
            BadInputError: The cursor is malformed (field ``cursor``).
            JetStreamUnavailableError: JetStream did not answer.
        """
        self._online()
        after: tuple[float, str] | None = None
        if cursor is not None:
            created, _, task_id = cursor.partition("_")
            try:
                after = (-float(created), task_id)
            except ValueError:
                raise BadInputError("not a cursor returned by this endpoint", field="cursor") from None
            if not re.fullmatch(r"[0-9a-f]{32}", task_id):
                raise BadInputError("not a cursor returned by this endpoint", field="cursor")
        codec = self._store.codec
        found: list[tuple[TaskHead, bytes]] = []
        for entry in await self._store.kv.latest():
            if entry.key.startswith(("idem.", OPEN_PREFIX)):
                continue
            try:  # the clear fields are enough to filter: only the page is opened
                head = codec.head(entry.value)
            except AgentFailedError:
                continue
            if head.tenant != tenant or (status is not None and head.status != status):
                continue
            if after is not None and (-head.created_at, head.id) <= after:
                continue
            found.append((head, entry.value))
        found.sort(key=lambda f: (-f[0].created_at, f[0].id))
        records: list[TaskRecord] = []
        for _, value in found[:limit]:
            try:
                records.append(await codec.decode(value))
            except NotFoundError:  # erased with its tenant's data key
                continue
        more = len(found) > limit
        last = found[min(limit, len(found)) - 1][0] if found else None
        return records, (f"{last.created_at!r}_{last.id}" if more and last is not None else None)

    async def watch(self, task_id: str, tenant: str) -> AsyncGenerator[TaskRecord, None]:
        """The task's record now, then each new version, ending after a terminal status.

        Close the generator (``contextlib.aclosing``) to stop early.

        Raises:
            NotFoundError: No such task, or it belongs to another tenant.
            JetStreamUnavailableError: JetStream did not answer.
        """
        self._online()
        first, _ = await self._load_for(task_id, tenant)
        if first.terminal:
            yield first
            return
        async with aclosing(self._store.kv.watch(task_id)) as entries:
            async for entry in entries:
                record = await self._store.codec.decode(entry.value)
                yield record
                if record.terminal:
                    return


__all__ = (  # the models are re-exported: callers import them from here too
    "PRIORITIES",
    "TERMINAL_STATUSES",
    "Priority",
    "TaskConfig",
    "TaskQueue",
    "TaskRecord",
    "TaskRequest",
    "TaskStatus",
    "TaskStore",
    "error_dict",
    "idempotency_kv_key",
    "record_error",
)
