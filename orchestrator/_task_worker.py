"""Durable tasks, the running side: pull tasks from JetStream, run them, record the result, then ack.

Exactly-once completion rests on three rules:

1. the result is stored in the KV record (compare-and-set) *before* the message is acked;
2. a delivery whose record is already terminal is acked and skipped (a redelivery after a crash between
   storing and acking);
3. a worker writes a record only while it owns the run: status ``running`` and ``attempts`` equal to the
   attempt it claimed. A redelivery to another worker claims a new attempt, so a stalled first worker
   loses every later compare-and-set and stops; two workers can never both store a terminal result.

A worker killed mid-task acks nothing, so JetStream redelivers the task after ``ack_wait_s`` and another
worker runs it again (its record says ``running`` with the old attempt, which is not terminal).

**Resume, not restart.** The executor gets a :class:`TaskJournal`: besides throttled progress, it
journals each finished step's output into the record (a compare-and-set write, awaited before the
step's dependents start) and, for a goal, the plan the planner made. A later run of the same task (a
redelivery after a crash, or a retry) finds them in ``record.steps`` / ``record.planned`` and runs only
the steps that had not finished, so a side-effecting step that finished is never run again. Journal
writes never undo a finished step (:func:`merge_steps`), whatever order writes land in.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.lowlevel
import structlog
from anyio.abc import TaskGroup, TaskStatus

from agents.errors import AgentBusyError, AgentError, NoRespondersError, NotFoundError
from agents.jetstream import JsMessage, PullConsumer
from agents.messaging import Bus, Message
from agents.plans import PlanOutcome
from orchestrator._task_journal import Executor, ProgressFn, TaskJournal, _Run, merge_steps
from orchestrator._task_models import PRIORITIES, TaskConfig, TaskRecord, error_dict, record_error
from orchestrator._task_seal import Sealer
from orchestrator._task_store import TaskStore

log = structlog.get_logger("neurectomy.tasks")


RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # StreamBrokenError and InstanceLostError included
    TimeoutError,  # DeadlineExceededError included
    NoRespondersError,  # JetStreamUnavailableError included
    AgentBusyError,
    OSError,
)
"""Infrastructure errors: the task is retried (redelivered) up to ``max_attempts`` runs. Any other
exception is the task's fault (a bad plan, an agent refusing its input): the task fails at once."""


class TaskWorker:
    """Runs durable tasks from the JetStream work queue.

    Start it with ``await tg.start(worker.run)``; cancel the task group to stop it.

    **Fetch loop.** Each priority has its own durable pull consumer (``tasks-high``, ``tasks-normal``,
    ``tasks-low``, filtered on its queue subject). When a run slot is free the worker asks the consumers
    in priority order with ``no_wait`` pull requests (each answered at once: a message or "no
    messages"), so a high task is always taken before normal and low ones, and no pull request lingers
    on the server holding a message the worker cannot run yet. When all three are empty it sleeps until
    a *doorbell* rings: a plain core-NATS subscription on the queue subjects, which receives every task
    published, so a new task starts within a round trip of its publish (well under 100 ms), without
    busy-spinning. Redeliveries (ack-wait expiry, nak delays) publish nothing, so an idle worker also
    looks every ``idle_poll_s`` seconds while the work queue holds messages it is not running itself
    (waiting for a redelivery, or running elsewhere); when it holds none, nothing can come back without
    a publish, and the worker looks only every ``quiet_poll_s`` seconds (a doorbell missed while the
    connection was down).

    **Ack and redelivery.** See the module docstring; while a task runs the worker sends in-progress
    acks every ``ack_wait_s / 3`` seconds (so a long task is not redelivered) and re-reads the record
    (so a cancel or a lost ownership stops it even if the cancel message was missed). An infrastructure
    error (:data:`RETRYABLE_ERRORS`) naks the message with ``retry_delay_s`` and sets the record back to
    ``queued``; on the last attempt, or on a delivery beyond ``max_attempts`` (the extra delivery the
    consumer allows after a crash on the last attempt), the task is published to the dead-letter stream,
    marked failed with ``dead_lettered``, and acked.

    **Shutdown.** Cancelling :meth:`run` stops fetching at once; running tasks get ``shutdown_grace_s``
    seconds to finish, then they are stopped and nakked (redelivered at once to another worker).

    Args:
        bus: Connected bus (not closed by the worker).
        execute: Runs one task; it calls the progress function as steps change.
        config: Streams, bucket and limits (must match the submitting :class:`TaskQueue`'s).
        name: Label for logs.
        sealer: Seals the tenant's data in records (the same as the :class:`TaskQueue`'s).
    """

    def __init__(
        self,
        bus: Bus,
        execute: Executor,
        config: TaskConfig | None = None,
        *,
        name: str = "worker",
        sealer: Sealer | None = None,
    ) -> None:
        self._bus = bus
        self._execute = execute
        self.config = config or TaskConfig()
        self.name = name
        self._sealer = sealer
        self._runs: dict[str, _Run] = {}
        self._handlers: set[anyio.CancelScope] = set()
        self._wake = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self.idle_wait_s: float | None = None
        """How long the idle worker waits for its doorbell now, in seconds (``None`` while it fetches)."""

    @property
    def running(self) -> int:
        """Tasks this worker is running now."""
        return len(self._handlers)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Fetch and run tasks until cancelled (see the class docstring).

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer at start.
        """
        cfg = self.config
        store = await TaskStore.open(self._bus, cfg, sealer=self._sealer)
        async with AsyncExitStack() as stack:
            consumers: list[PullConsumer] = []
            for priority in PRIORITIES:
                consumer = await store.js.pull_consumer(
                    cfg.stream,
                    f"tasks-{priority}",
                    filter_subject=cfg.queue_subject(priority),
                    ack_wait_s=cfg.ack_wait_s,
                    max_deliver=cfg.max_attempts + 1,
                )
                stack.push_async_callback(consumer.aclose)
                consumers.append(consumer)
            await stack.enter_async_context(
                self._bus.subscription(f"{cfg.subject_prefix}.queue.>", self._ring)
            )
            await stack.enter_async_context(
                self._bus.subscription(f"{cfg.subject_prefix}.cancel.*", self._on_cancel)
            )
            async with anyio.create_task_group() as tg:
                task_status.started()
                log.info("task worker started", worker=self.name, stream=cfg.stream)
                try:
                    await self._fetch_loop(store, consumers, tg)
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._shutdown()

    async def _ring(self, _: Message) -> None:
        self._wake.set()

    async def _on_cancel(self, msg: Message) -> None:
        run = self._runs.get(msg.subject.rsplit(".", 1)[-1])
        if run is not None:
            log.info("task cancelled by the caller", task=run.record.id, worker=self.name)
            run.scope.cancel()

    async def _shutdown(self) -> None:
        if self._handlers:
            log.info("task worker stopping", worker=self.name, running=len(self._handlers))
            with anyio.move_on_after(self.config.shutdown_grace_s):
                await self._idle.wait()
        for scope in list(self._handlers):
            scope.cancel()

    async def _fetch_loop(self, store: TaskStore, consumers: list[PullConsumer], tg: TaskGroup) -> None:
        cfg = self.config
        slots = anyio.Semaphore(cfg.concurrency)
        while True:
            await slots.acquire()
            self._wake = anyio.Event()  # rings from now on count; older ones are covered by this look
            msg: JsMessage | None = None
            try:
                for consumer in consumers:
                    msg = await consumer.next(timeout_s=cfg.fetch_timeout_s)
                    if msg is not None:
                        break
            except AgentError as exc:
                log.warning("task fetch failed", worker=self.name, error=str(exc))
                slots.release()
                await anyio.sleep(cfg.idle_poll_s)
                continue
            if msg is None:
                slots.release()
                self.idle_wait_s = await self._idle_wait_s(store)
                with anyio.move_on_after(self.idle_wait_s):
                    await self._wake.wait()
                self.idle_wait_s = None
                continue
            tg.start_soon(self._handle, store, msg, slots)

    async def _idle_wait_s(self, store: TaskStore) -> float:
        """How long the worker may wait for the doorbell after finding no task it could take.

        ``quiet_poll_s`` when the work queue holds no message but those this worker is running (nothing
        can be redelivered: only a publish, which rings, brings work), else ``idle_poll_s``.
        """
        try:
            outstanding = await store.js.message_count(self.config.stream)
        except AgentError:
            return self.config.idle_poll_s
        return self.config.quiet_poll_s if outstanding <= self.running else self.config.idle_poll_s

    async def _handle(self, store: TaskStore, msg: JsMessage, slots: anyio.Semaphore) -> None:
        scope = anyio.CancelScope(shield=True)  # shutdown cancels it explicitly, after the grace period
        self._handlers.add(scope)
        self._idle = anyio.Event()
        try:
            with scope:
                await self._process(store, msg)
            if scope.cancelled_caught:  # shutdown: hand the task to another worker now
                with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                    await _settle(msg.nak())
        except AgentError as exc:  # infrastructure: hand it back for redelivery once NATS answers again
            log.warning("task left for redelivery", worker=self.name, error=str(exc))
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.config.ack_wait_s):
                while not self._bus.is_connected:  # noqa: ASYNC110 - the bus has no reconnect event
                    await anyio.sleep(0.05)
                await _settle(msg.nak())  # at once, instead of after ack_wait_s
        except Exception:  # a bug: keep the worker alive, the task is redelivered
            log.exception("task handler failed; left for redelivery", worker=self.name)
        finally:
            self._handlers.discard(scope)
            if not self._handlers:
                self._idle.set()
            slots.release()
            # A task handed back (nak) stays in the queue for its redelivery: the fetch loop must not go
            # on waiting as if the queue held only this worker's tasks (its wait is chosen again).
            self._wake.set()

    async def _process(self, store: TaskStore, msg: JsMessage) -> None:
        cfg = self.config
        task_id = msg.data.decode(errors="replace")
        try:
            record, revision = await store.load(task_id)
        except NotFoundError:  # expired, or its submit was refused after all
            await msg.ack()
            return
        if record.terminal:  # already done (a redelivery after the result was stored) or cancelled
            await msg.ack()
            await store.close_marker(task_id)
            return
        if msg.num_delivered > cfg.max_attempts or record.attempts >= cfg.max_attempts:
            await self._dead_letter(store, record, revision, msg, record.error)
            return

        def claim(current: TaskRecord) -> TaskRecord | None:
            if current.terminal:
                return None
            return current.changed(
                status="running", attempts=current.attempts + 1, lease_until=time.time() + cfg.ack_wait_s
            )

        record, revision, claimed = await store.mutate(record, revision, claim)
        if not claimed:
            await msg.ack()  # cancelled or finished meanwhile
            return
        run = _Run(record, revision, msg)
        self._runs[task_id] = run
        try:
            await self._execute_run(store, run)
        finally:
            self._runs.pop(task_id, None)

    async def _execute_run(self, store: TaskStore, run: _Run) -> None:
        cfg = self.config
        outcome: PlanOutcome | None = None
        failure: Exception | None = None
        log.info("task started", task=run.record.id, attempt=run.attempt, worker=self.name)
        with run.scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._heartbeat, store, run)
                tg.start_soon(self._flush_progress, store, run)
                try:
                    outcome = await self._execute(run.record, TaskJournal(store, run))
                except Exception as exc:
                    failure = exc
                tg.cancel_scope.cancel()
        if failure is not None and isinstance(failure, RETRYABLE_ERRORS):
            if max(run.msg.num_delivered, run.attempt) >= cfg.max_attempts:
                await self._dead_letter(store, run.record, run.revision, run.msg, record_error(failure))
                return
            await self._retry_later(store, run, failure)
            return
        if failure is not None:
            log.warning("task failed", task=run.record.id, error=repr(failure), worker=self.name)

        def finish(current: TaskRecord) -> TaskRecord | None:
            if current.status == "cancelled" and current.attempts == run.attempt:
                return current.changed(steps=run.steps) if current.steps != run.steps else None
            if not run.owns(current):
                return None
            steps = merge_steps(current.steps, outcome.steps if outcome is not None else run.steps)
            if outcome is not None:
                return current.changed(
                    status=outcome.status,
                    result=outcome.output,
                    steps=steps,
                    error=outcome.error,
                    lease_until=None,
                )
            if failure is not None:
                return current.changed(
                    status="failed", steps=steps, error=record_error(failure), lease_until=None
                )
            return current.changed(  # cancelled (by the caller) without a cancel record: store it
                status="cancelled",
                steps=steps,
                error=error_dict("cancelled", "cancelled by the caller"),
                lease_until=None,
            )

        record, _, _ = await store.mutate(run.record, run.revision, finish)
        if record.terminal:
            await run.msg.ack()
            await store.close_marker(record.id)
            log.info("task finished", task=record.id, status=record.status, worker=self.name)
        else:  # another delivery owns it now: this one is stale, leave it
            log.warning("task taken over by another delivery", task=record.id, worker=self.name)

    async def _retry_later(self, store: TaskStore, run: _Run, failure: Exception) -> None:
        def requeue(current: TaskRecord) -> TaskRecord | None:
            if not run.owns(current):
                return None
            return current.changed(
                status="queued",
                steps=merge_steps(current.steps, run.steps),
                error=record_error(failure),
                lease_until=None,
            )

        record, _, wrote = await store.mutate(run.record, run.revision, requeue)
        log.warning(
            "task attempt failed; retrying",
            task=record.id,
            attempt=run.attempt,
            error=repr(failure),
            worker=self.name,
        )
        if wrote:
            await run.msg.nak(self.config.retry_delay_s)
        elif record.terminal:
            await run.msg.ack()

    async def _dead_letter(
        self,
        store: TaskStore,
        record: TaskRecord,
        revision: int,
        msg: JsMessage,
        last_error: dict[str, Any] | None,
    ) -> None:
        attempts = max(record.attempts, min(msg.num_delivered, self.config.max_attempts))
        record = await store.dead_letter(record, revision, last_error, attempts=attempts)
        await msg.ack()
        await store.close_marker(record.id)
        log.error("task dead-lettered", task=record.id, attempts=attempts, worker=self.name)

    async def _flush_progress(self, store: TaskStore, run: _Run) -> None:
        """Store the latest progress, at most once per ``progress_interval_s``."""
        while True:
            await run.dirty.wait()
            run.dirty = anyio.Event()
            await self._write_progress(store, run)
            await anyio.sleep(self.config.progress_interval_s)

    async def _write_progress(self, store: TaskStore, run: _Run) -> None:
        steps = run.steps

        def update(current: TaskRecord) -> TaskRecord | None:
            merged = merge_steps(current.steps, steps)
            if not run.owns(current) or current.steps == merged:
                return None
            return current.changed(steps=merged)

        try:
            record, revision, _ = await store.mutate(run.record, run.revision, update)
        except AgentError as exc:
            log.warning("task progress not stored", task=run.record.id, error=str(exc))
            return
        run.record, run.revision = record, revision
        if not run.owns(record):  # cancelled, or another delivery took it over
            run.scope.cancel()

    async def _heartbeat(self, store: TaskStore, run: _Run) -> None:
        """Keep the message from being redelivered, renew the lease, notice cancels written to the record."""
        lease_s = self.config.ack_wait_s
        interval = max(0.05, lease_s / 3)

        def renew(current: TaskRecord) -> TaskRecord | None:
            return current.changed(lease_until=time.time() + lease_s) if run.owns(current) else None

        while True:
            await anyio.sleep(interval)
            try:
                await run.msg.in_progress()
                record, revision, _ = await store.mutate(run.record, run.revision, renew)
            except AgentError as exc:
                log.warning("task heartbeat failed", task=run.record.id, error=str(exc))
                continue
            run.record, run.revision = record, revision
            if not run.owns(record):
                run.scope.cancel()


async def _settle(action: Awaitable[None]) -> None:
    try:
        await action
    except AgentError as exc:
        log.warning("task message not settled", error=str(exc))


__all__ = ("RETRYABLE_ERRORS", "Executor", "ProgressFn", "TaskJournal", "TaskWorker", "merge_steps")
