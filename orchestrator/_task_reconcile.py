"""The task reconciler: finds records stuck ``queued`` or ``running`` and requeues or dead-letters them.

JetStream redelivers a task whose worker died, but two windows are outside its reach:

* a submit that crashed after storing the record and before publishing it leaves a ``queued`` record
  without a message: nothing will ever run it;
* a worker that crashed on the last delivery JetStream allows (``max_deliver``), for instance while
  dead-lettering, leaves a ``running`` record that is never delivered again.

Every ``reconcile_interval_s`` the reconciler reads the ``open.<id>`` markers (the unfinished tasks, see
:mod:`orchestrator._task_store`) and, for each record:

* terminal (or gone, two scans in a row) → drops the marker;
* ``queued``, no message on its subject, last written more than ``reconcile_grace_s`` ago → publishes
  it again (after a compare-and-set write, so two reconcilers publish once);
* ``running`` with its lease (``lease_until``, renewed by the owning worker's heartbeat) expired for
  more than ``ack_wait_s`` (JetStream's redelivery had its turn) → with attempts left, back to
  ``queued`` with a fresh message (any exhausted message removed); without, dead-lettered.

All writes are compare-and-set, so a worker that was only slow loses ownership and stops; running
several reconcilers (one per serve process) is safe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
import structlog
from anyio.abc import TaskStatus

from agents.errors import AgentError, NotFoundError
from agents.jetstream import JetStreamUnavailableError
from agents.messaging import Bus
from orchestrator._task_models import TaskConfig, TaskRecord, error_dict
from orchestrator._task_seal import Sealer, TaskHead
from orchestrator._task_store import OPEN_PREFIX, TaskStore

__all__ = ("ReconcileReport", "TaskReconciler")

log = structlog.get_logger("neurectomy.tasks")


@dataclass(slots=True)
class ReconcileReport:
    """What one pass did.

    Attributes:
        open: Unfinished-task markers seen.
        requeued: Tasks published again (stuck ``queued``, or ``running`` past their lease).
        dead_lettered: Tasks ``running`` past their lease with no attempt left.
        closed: Markers dropped (task finished or gone).
    """

    open: int = 0
    requeued: int = 0
    dead_lettered: int = 0
    closed: int = 0


class TaskReconciler:
    """Looks after unfinished tasks (see the module docstring).

    Start it with ``await tg.start(reconciler.run)``; cancel the task group to stop it.

    Args:
        bus: Connected bus (not closed by the reconciler).
        config: The task configuration (the same as the queue's and the workers').
        sealer: Opens and seals records (the same as the queue's).
    """

    def __init__(self, bus: Bus, config: TaskConfig | None = None, *, sealer: Sealer | None = None) -> None:
        self._bus = bus
        self.config = config or TaskConfig()
        self._sealer = sealer
        self._store: TaskStore | None = None
        self._missing: set[str] = set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Reconcile every ``reconcile_interval_s`` until cancelled; a failed pass is logged and retried.

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer at start.
        """
        task_status.started()
        while True:
            try:
                report = await self.reconcile()
            except AgentError as exc:
                log.warning("task reconciliation failed", error=str(exc))
            else:
                if report.requeued or report.dead_lettered:
                    log.warning(
                        "stuck tasks reconciled", requeued=report.requeued, dead_lettered=report.dead_lettered
                    )
            await anyio.sleep(self.config.reconcile_interval_s)

    async def reconcile(self) -> ReconcileReport:
        """One pass over the unfinished tasks.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        if self._store is None:
            self._store = await TaskStore.open(self._bus, self.config, sealer=self._sealer)
        store = self._store
        report = ReconcileReport()
        keys = await store.kv.keys(OPEN_PREFIX + "*")
        report.open = len(keys)
        missing: set[str] = set()
        for key in keys:
            task_id = key.removeprefix(OPEN_PREFIX)
            try:
                entry = await store.kv.get(task_id)
            except NotFoundError:
                if task_id in self._missing:  # gone two passes in a row: not a submit in progress
                    await store.close_marker(task_id)
                    report.closed += 1
                else:
                    missing.add(task_id)
                continue
            try:
                head = store.codec.head(entry.value)
                if head.status in ("succeeded", "failed", "cancelled"):
                    await store.close_marker(task_id)
                    report.closed += 1
                elif head.status == "queued":
                    report.requeued += await self._queued(store, head)
                elif head.status == "running":
                    requeued, buried = await self._running(store, head)
                    report.requeued += requeued
                    report.dead_lettered += buried
            except NotFoundError:  # its data was erased with its tenant: nothing left to run
                await store.close_marker(task_id)
                report.closed += 1
            except JetStreamUnavailableError:
                raise
            except AgentError as exc:  # one unreadable record must not stop the others
                log.warning("task not reconciled", task=task_id, error=str(exc))
        self._missing = missing
        return report

    async def _message_seq(self, store: TaskStore, head: TaskHead) -> int | None:
        subject = self.config.queue_subject(head.priority, head.id)
        try:
            return (await store.js.last_message(self.config.stream, subject)).seq
        except NotFoundError:
            return None

    async def _queued(self, store: TaskStore, head: TaskHead) -> int:
        if time.time() - head.updated_at < self.config.reconcile_grace_s:
            return 0
        if await self._message_seq(store, head) is not None:
            return 0  # waiting its turn in the queue
        record, revision = await store.load(head.id)

        def touch(current: TaskRecord) -> TaskRecord | None:
            same = current.status == "queued" and current.updated_at == record.updated_at
            return current.changed() if same else None

        record, revision, wrote = await store.mutate(record, revision, touch)
        if not wrote:
            return 0
        await store.publish(record, msg_id=f"{record.id}-r{revision}")
        log.warning("task had no message; queued again", task=record.id)
        return 1

    async def _running(self, store: TaskStore, head: TaskHead) -> tuple[int, int]:
        lease = head.lease_until if head.lease_until is not None else head.updated_at + self.config.ack_wait_s
        if time.time() < lease + self.config.ack_wait_s:
            return 0, 0
        record, revision = await store.load(head.id)
        seq = await self._message_seq(store, head)
        if record.attempts >= self.config.max_attempts:
            last = record.error or error_dict("lease_expired", "its worker stopped answering")
            buried = await store.dead_letter(record, revision, last, attempts=record.attempts)
            if buried.dead_lettered:
                if seq is not None:
                    await store.js.delete_message(self.config.stream, seq)
                await store.close_marker(record.id)
                log.error("stuck task dead-lettered", task=record.id, attempts=record.attempts)
                return 0, 1
            return 0, 0

        def requeue(current: TaskRecord) -> TaskRecord | None:
            stuck = current.status == "running" and current.attempts == record.attempts
            if not stuck or current.lease_until != record.lease_until:
                return None
            error = error_dict("lease_expired", "its worker stopped answering; queued again")
            return current.changed(status="queued", lease_until=None, error=error)

        record, revision, wrote = await store.mutate(record, revision, requeue)
        if not wrote:
            return 0, 0
        if seq is not None:
            await store.js.delete_message(self.config.stream, seq)
        await store.publish(record, msg_id=f"{record.id}-r{revision}")
        log.warning("task past its lease; queued again", task=record.id, attempts=record.attempts)
        return 1, 0
