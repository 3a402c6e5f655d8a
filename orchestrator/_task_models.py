"""Durable tasks: the record, the request and the configuration (see :mod:`orchestrator._task_store`)."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.plans import PlanError, StepReport

Priority = Literal["high", "normal", "low"]
TaskStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "needs_clarification"]
PRIORITIES: tuple[Priority, ...] = ("high", "normal", "low")
"""Priorities, the most urgent first."""
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "needs_clarification"})
"""Statuses a task never leaves (``needs_clarification``: the planner was not sure; nothing ran)."""


class TaskConfig(BaseModel):
    """Where durable tasks live on JetStream and how workers run them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stream: str = Field(default="NEURECTOMY_TASKS", pattern=r"^[A-Za-z0-9_-]+$")
    """Work-queue stream of submitted tasks."""
    dead_letter_stream: str = Field(default="NEURECTOMY_TASKS_DEAD", pattern=r"^[A-Za-z0-9_-]+$")
    """Stream of the tasks that exhausted their attempts."""
    bucket: str = Field(default="neurectomy-tasks", pattern=r"^[A-Za-z0-9_-]+$")
    """KV bucket of task records."""
    subject_prefix: str = Field(default="neurectomy.tasks", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    """Prefix of the queue, cancel and dead-letter subjects."""
    max_queued: int = Field(default=10_000, ge=1)
    """Most tasks waiting or running (stream ``max_msgs``); more are refused with ``AgentBusyError``."""
    ack_wait_s: float = Field(default=30.0, gt=0)
    """Seconds without an ack or in-progress signal before JetStream redelivers a task."""
    max_attempts: int = Field(default=3, ge=1, le=100)
    """Most runs of one task; the consumer allows one more delivery, to dead-letter after a crash."""
    retry_delay_s: float = Field(default=1.0, ge=0)
    """Delay of the redelivery after an infrastructure error, in seconds."""
    concurrency: int = Field(default=4, ge=1, le=1024)
    """Tasks one worker runs at once."""
    idle_poll_s: float = Field(default=1.0, gt=0)
    """An idle worker looks for work at least this often while the queue holds tasks it is not running
    (waiting for a redelivery, which publishes nothing, or running elsewhere), in seconds."""
    quiet_poll_s: float = Field(default=30.0, gt=0)
    """An idle worker looks for work at least this often when the queue holds no task but its own (new
    tasks ring its doorbell at once; this covers a doorbell missed during a reconnect), in seconds."""
    fetch_timeout_s: float = Field(default=2.0, gt=0)
    """Deadline of one pull request and of each JetStream API call, in seconds."""
    progress_interval_s: float = Field(default=0.1, gt=0)
    """Least time between two progress writes of one task (0.1 s: at most 10 writes/s), in seconds."""
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    """On shutdown, running tasks get this long to finish before they are left for redelivery."""
    retention_s: float = Field(default=7 * 86_400.0, gt=0)
    """Records and dead letters expire this long after their last write, in seconds."""
    kv_history: int = Field(default=5, ge=1, le=64)
    """Revisions kept per record (an audit trail of its transitions)."""
    duplicate_window_s: float = Field(default=120.0, gt=0)
    """A submit repeated within this window is not queued twice (``Nats-Msg-Id``), in seconds."""
    max_input_bytes: int = Field(default=512 * 1024, ge=1024)
    """Largest record (goal or plan plus input, as JSON) accepted at submit, in bytes."""
    reconcile_interval_s: float = Field(default=10.0, gt=0)
    """How often the reconciler looks for stuck records, in seconds."""
    reconcile_grace_s: float = Field(default=10.0, gt=0)
    """A ``queued`` record with no message this long after its last write is stuck, in seconds (a
    submit publishes within ``fetch_timeout_s`` of writing the record)."""

    def queue_subject(self, priority: Priority, task_id: str = "*") -> str:
        """Subject of ``task_id``'s message on the work queue for ``priority`` (``*``: all of them)."""
        return f"{self.subject_prefix}.queue.{priority}.{task_id}"

    def cancel_subject(self, task_id: str) -> str:
        """Core NATS subject that tells the worker running ``task_id`` to stop."""
        return f"{self.subject_prefix}.cancel.{task_id}"

    @property
    def dead_letter_subject(self) -> str:
        """Subject of the dead-letter stream."""
        return f"{self.subject_prefix}.dead"


class TaskRequest(BaseModel):
    """What a user submits: a goal for the planner, or a plan and its input.

    Attributes:
        goal: Free text for the planner (exactly one of goal and plan).
        plan: A plan (see :mod:`agents.plans`); validated at submit.
        input: The plan's input (only with ``plan``).
        priority: ``high``, ``normal`` or ``low``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    goal: str | None = Field(default=None, min_length=1, max_length=100_000)
    plan: dict[str, Any] | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = "normal"

    @model_validator(mode="after")
    def _goal_or_plan(self) -> TaskRequest:
        if (self.goal is None) == (self.plan is None):
            raise ValueError("give exactly one of goal and plan")
        if self.goal is not None and self.input:
            raise ValueError("input goes with a plan, not with a goal")
        return self


class TaskRecord(BaseModel):
    """The state of one task, as stored in the KV bucket.

    Attributes:
        id: Task id (32 hex characters).
        tenant: Tenant that submitted it; other tenants never see it.
        status: ``queued`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled`` |
            ``needs_clarification`` (a retry after an infrastructure error goes back to ``queued``).
        priority: ``high``, ``normal`` or ``low``.
        goal: The goal, for a goal task.
        plan: The plan, for a plan task.
        input: The plan's input.
        idempotency_key: The caller's idempotency key, if any.
        attempts: Runs started so far.
        steps: Per-step progress of the current or last run.
        result: The output, once succeeded.
        error: ``{"code", "message", "field"}`` of a failure (or of the last failed attempt).
        created_at: Unix time of the submit, in seconds.
        updated_at: Unix time of the last write, in seconds.
        dead_lettered: It exhausted its attempts and was moved to the dead-letter stream.
        scopes: The submitter's scopes; every step of the run is authorised against them.
        lease_until: While ``running``: Unix time until which the worker that claimed it holds it (renewed
            by its heartbeat every ``ack_wait_s / 3``); past it (and ``ack_wait_s`` more, the redelivery's
            turn) the reconciler requeues or dead-letters the task.
        planned: For a goal task, ``{"plan", "input"}``: the plan the planner made and the input it took
            from the goal, journaled before its first step: a redelivery runs this plan again (resuming
            it) instead of planning anew.
        traceparent: W3C ``traceparent`` of the submitting request (its runs join that trace).
    """

    model_config = ConfigDict(extra="ignore")  # a newer server's record never breaks an older SDK

    id: str
    tenant: str
    status: TaskStatus = "queued"
    priority: Priority = "normal"
    goal: str | None = None
    plan: dict[str, Any] | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    attempts: int = 0
    steps: list[StepReport] = Field(default_factory=list)
    result: Any = None
    error: dict[str, Any] | None = None
    created_at: float
    updated_at: float
    dead_lettered: bool = False
    scopes: tuple[str, ...] = ("read", "write", "admin")
    lease_until: float | None = None
    planned: dict[str, Any] | None = None
    traceparent: str = ""

    @property
    def terminal(self) -> bool:
        """The status is final (succeeded, failed, cancelled or needs_clarification)."""
        return self.status in TERMINAL_STATUSES

    def changed(self, **update: Any) -> TaskRecord:
        """A copy with ``update`` applied and ``updated_at`` set to now."""
        return self.model_copy(update={**update, "updated_at": time.time()})


def error_dict(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The ``{"code", "message", "field"}`` form of an error stored in a record."""
    return {"code": code, "message": message, "field": field}


def record_error(exc: BaseException) -> dict[str, Any]:
    """The stored ``error`` of an exception (wire code for agent errors, ``internal`` otherwise)."""
    code = getattr(exc, "code", None)
    field = getattr(exc, "field", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if not isinstance(code, str):
        code = "bad_request" if isinstance(exc, PlanError | ValidationError) else "internal"
    return error_dict(code, str(message), field if isinstance(field, str) else None)


__all__ = (
    "PRIORITIES",
    "TERMINAL_STATUSES",
    "Priority",
    "TaskConfig",
    "TaskRecord",
    "TaskRequest",
    "TaskStatus",
    "error_dict",
    "record_error",
)
