"""Durable tasks' records: typed, compare-and-set access to the KV bucket and the work-queue streams.

Part of :mod:`orchestrator._task_store` (whose docstring draws the layout on JetStream); shared by the
submitting side (:class:`orchestrator._task_store.TaskQueue`), the worker and the reconciler.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import anyio

from agents.errors import AgentError, NotFoundError
from agents.jetstream import JetStream, KeyValueBucket
from agents.messaging import Bus
from orchestrator._task_models import TaskConfig, TaskRecord, error_dict
from orchestrator._task_seal import Sealer, TaskCodec

__all__ = ("OPEN_PREFIX", "TaskStore")

OPEN_PREFIX = "open."
"""KV key prefix of the markers of unfinished tasks."""


class TaskStore:
    """Typed, compare-and-set access to task records (shared by :class:`TaskQueue` and the worker).

    Create with :meth:`open`, which creates the streams and the bucket if they are missing.
    """

    def __init__(
        self, js: JetStream, kv: KeyValueBucket, config: TaskConfig, codec: TaskCodec | None = None
    ) -> None:
        self.js = js
        self.kv = kv
        self.config = config
        self.codec = codec or TaskCodec()

    @classmethod
    async def open(cls, bus: Bus, config: TaskConfig, *, sealer: Sealer | None = None) -> TaskStore:
        """Ensure the work-queue stream, the dead-letter stream and the KV bucket exist.

        Args:
            bus: Connected bus.
            config: Names and limits.
            sealer: Seals the tenant's data in records (``None``: stored in clear).

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        js = JetStream(bus, timeout_s=config.fetch_timeout_s)
        await js.ensure_stream(
            config.stream,
            [f"{config.subject_prefix}.queue.>"],
            work_queue=True,
            max_msgs=config.max_queued,
            duplicate_window_s=config.duplicate_window_s,
        )
        await js.ensure_stream(
            config.dead_letter_stream,
            [config.dead_letter_subject],
            work_queue=False,
            max_age_s=config.retention_s,
        )
        kv = await js.ensure_key_value(config.bucket, history=config.kv_history, ttl_s=config.retention_s)
        return cls(js, kv, config, TaskCodec(sealer))

    async def load(self, task_id: str) -> tuple[TaskRecord, int]:
        """The record of ``task_id`` and its revision.

        Raises:
            NotFoundError: No such task (or its tenant was deleted: its data key is gone).
            AgentFailedError: The stored record is unreadable.
            JetStreamUnavailableError: JetStream did not answer.
        """
        if not re.fullmatch(r"[0-9a-f]{32}", task_id):
            raise NotFoundError(f"no task {task_id!r}", field="id")
        try:
            entry = await self.kv.get(task_id)
        except NotFoundError:
            raise NotFoundError(f"no task {task_id!r}", field="id") from None
        return await self.codec.decode(entry.value), entry.revision

    async def create(self, record: TaskRecord) -> bool:
        """Store a new record (and its ``open.`` marker first); ``False`` if the id exists.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        await self.kv.create(OPEN_PREFIX + record.id, b"")
        return await self.kv.create(record.id, await self.codec.encode(record)) is not None

    async def close_marker(self, task_id: str) -> None:
        """Drop the ``open.`` marker of a finished task (best effort: the reconciler drops leftovers)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(self.config.fetch_timeout_s):
            try:
                await self.kv.delete(OPEN_PREFIX + task_id)
            except AgentError:
                pass

    async def publish(self, record: TaskRecord, *, msg_id: str | None = None) -> None:
        """Publish ``record``'s message to the work queue (``Nats-Msg-Id`` = ``msg_id`` or the task id).

        Raises:
            AgentBusyError: The queue is full.
            JetStreamUnavailableError: JetStream did not answer.
        """
        await self.js.publish(
            self.config.queue_subject(record.priority, record.id),
            record.id.encode(),
            stream=self.config.stream,
            msg_id=msg_id or record.id,
            headers={"Neurectomy-Tenant": record.tenant},
        )

    async def mutate(
        self, record: TaskRecord, revision: int, change: Callable[[TaskRecord], TaskRecord | None]
    ) -> tuple[TaskRecord, int, bool]:
        """Store ``change(record)`` with compare-and-set; on a conflict reload and apply it again.

        ``change`` sees the current record each time and returns the new one, or ``None`` to write
        nothing.

        Returns:
            The current record, its revision, and whether this call wrote it.

        Raises:
            NotFoundError: The record disappeared.
            JetStreamUnavailableError: JetStream did not answer.
        """
        while True:
            new = change(record)
            if new is None:
                return record, revision, False
            written = await self.kv.update(record.id, await self.codec.encode(new), revision=revision)
            if written is not None:
                return new, written, True
            record, revision = await self.load(record.id)

    async def dead_letter(
        self, record: TaskRecord, revision: int, last_error: dict[str, Any] | None, *, attempts: int
    ) -> TaskRecord:
        """Publish the task to the dead-letter stream, then mark it failed and ``dead_lettered``.

        The dead letter holds the record as stored (sealed) and is published with ``Nats-Msg-Id``
        ``<id>-dead``, so doing this twice (a crash in between) leaves one dead letter.

        Returns:
            The current record (unchanged if it was terminal meanwhile).

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        cfg = self.config
        detail = f"; last error: {last_error['message']}" if last_error else ""
        error = error_dict("dead_lettered", f"gave up after {attempts} attempt(s){detail}")

        def bury(current: TaskRecord) -> TaskRecord | None:
            if current.terminal:
                return None
            return current.changed(status="failed", error=error, dead_lettered=True, lease_until=None)

        buried = bury(record) or record
        body = {"task": json.loads(await self.codec.encode(buried)), "error": {"code": "dead_lettered"}}
        await self.js.publish(
            cfg.dead_letter_subject,
            json.dumps(body).encode(),
            stream=cfg.dead_letter_stream,
            msg_id=f"{record.id}-dead",
            headers={"Neurectomy-Task": record.id, "Neurectomy-Tenant": record.tenant},
        )
        record, _, _ = await self.mutate(record, revision, bury)
        return record
