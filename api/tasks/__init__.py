"""Durable tasks: ``/v1/tasks`` (submit, get, cancel, events).

The routes are in ``api.tasks.routes`` (wired by ``api.app``); the package exports the wire models, so the
SDK can import them without Litestar.
"""

from api.tasks.schemas import (
    TaskCreated,
    TaskCreateRequest,
    TaskRecord,
)

__all__ = (
    "TaskCreateRequest",
    "TaskCreated",
    "TaskRecord",
)
