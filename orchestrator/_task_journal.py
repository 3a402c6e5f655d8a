"""Durable tasks' executor side: the executor's signature, one run's state, and the journal it writes to.

Part of :mod:`orchestrator._task_worker` (whose docstring states the exactly-once and resume rules): a
journal write is a compare-and-set on the task's record made only while the run owns the task, and it
never undoes a finished step (:func:`merge_steps`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel

from agents.jetstream import JsMessage
from agents.plans import PlanOutcome, StepReport
from orchestrator._task_models import TaskRecord
from orchestrator._task_records import TaskStore

__all__ = ("Executor", "ProgressFn", "TaskJournal", "merge_steps")

ProgressFn = Callable[[list[StepReport]], Awaitable[None]]
"""Called by an executor with the steps' reports whenever they change (returns at once)."""


def merge_steps(stored: list[StepReport], new: list[StepReport]) -> list[StepReport]:
    """``new`` reports, except that a step ``stored`` as succeeded stays as stored (never undone)."""
    done = {s.id: s for s in stored if s.status == "succeeded"}
    return [s if s.status == "succeeded" or s.id not in done else done[s.id] for s in new]


class TaskJournal:
    """What an executor reports to: progress (throttled, returns at once) and the durable journal.

    Calling it (``await journal(steps)``) is progress, as a :data:`ProgressFn`. :meth:`commit` and
    :meth:`plan_made` write the record now and return once it is stored.
    """

    def __init__(self, store: TaskStore, run: _Run) -> None:
        self._store = store
        self._run = run

    async def __call__(self, steps: list[StepReport]) -> None:
        """Note the steps' reports; a background writer stores them at most every ``progress_interval_s``."""
        self._run.steps = merge_steps(self._run.steps, [s.model_copy() for s in steps])
        self._run.dirty.set()

    async def commit(self, steps: list[StepReport]) -> None:
        """Store the steps' reports (the finished steps' outputs) in the record before returning.

        Raises:
            JetStreamUnavailableError: JetStream did not answer (the task is retried).
            anyio.get_cancelled_exc_class(): This run no longer owns the task (cancelled or taken over).
        """
        await self(steps)
        await self._write(lambda current: {"steps": merge_steps(current.steps, self._run.steps)})

    async def plan_made(self, plan: dict[str, Any]) -> None:
        """Store the plan made for a goal task, so that a later run resumes this plan.

        Raises:
            JetStreamUnavailableError: JetStream did not answer (the task is retried).
            anyio.get_cancelled_exc_class(): This run no longer owns the task.
        """
        await self._write(lambda current: {"planned": plan})

    async def _write(self, update: Callable[[TaskRecord], dict[str, Any]]) -> None:
        run = self._run

        def change(current: TaskRecord) -> TaskRecord | None:
            return current.changed(**update(current)) if run.owns(current) else None

        record, revision, _ = await self._store.mutate(run.record, run.revision, change)
        run.record, run.revision = record, revision
        if not run.owns(record):
            run.scope.cancel()
            await anyio.lowlevel.checkpoint()


Executor = Callable[[TaskRecord, TaskJournal], Awaitable[PlanOutcome]]
"""Runs one task (the orchestrator's plan runner) and returns its outcome; the journal takes progress
(a :data:`ProgressFn`) and the durable per-step journal."""


class _Run:
    """One delivery being run: the attempt it owns and the latest progress."""

    def __init__(self, record: TaskRecord, revision: int, msg: JsMessage) -> None:
        self.record = record
        self.revision = revision
        self.msg = msg
        self.attempt = record.attempts
        self.steps: list[StepReport] = list(record.steps)
        self.dirty = anyio.Event()
        self.scope = anyio.CancelScope()

    def owns(self, record: TaskRecord) -> bool:
        return record.status == "running" and record.attempts == self.attempt
