"""Bodies of ``/v1/tasks``: submit a goal or a plan, read, cancel and follow a durable task.

Shared with the SDK. The task record is the orchestrator's own model (`orchestrator.TaskRecord`), so the
server and the clients cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator._task_models import Priority, TaskRecord

__all__ = ("TaskCreateRequest", "TaskCreated", "TaskList", "TaskRecord")


class TaskCreateRequest(BaseModel):
    """Body of ``POST /v1/tasks``: ``{"goal": text}``, or ``{"plan": object or YAML, "input": {...}}``."""

    model_config = ConfigDict(extra="forbid")

    goal: str | None = Field(default=None, min_length=1, max_length=100_000)
    """Free text; the planner agent turns it into a plan."""
    plan: dict[str, Any] | str | None = None
    """A plan (see ``agents.plans``), as an object or as YAML/JSON text."""
    input: dict[str, Any] = Field(default_factory=dict)
    """What the plan's ``${input.*}`` references read."""
    priority: Priority = "normal"
    """``high`` tasks start before ``normal`` ones, ``normal`` before ``low``."""
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    """A repeated submit with the same key (and tenant) returns the first task (also: the
    ``Idempotency-Key`` header)."""

    @model_validator(mode="after")
    def _goal_or_plan(self) -> TaskCreateRequest:
        if (self.goal is None) == (self.plan is None):
            raise ValueError("give exactly one of goal and plan")
        return self


class TaskCreated(BaseModel):
    """Answer of ``POST /v1/tasks`` (status 202; 200 when an idempotency key found an earlier task)."""

    id: str
    status: str
    created: bool
    """False: an earlier submit with the same idempotency key; ``id`` is that task's."""


class TaskList(BaseModel):
    """Answer of ``GET /v1/tasks``: one page of the caller's tasks, newest first."""

    tasks: list[TaskRecord]
    next_cursor: str | None = None
    """Pass as ``cursor`` for the next page; ``None`` on the last page."""
