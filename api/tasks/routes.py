"""``/v1/tasks``: durable tasks on JetStream.

``POST /v1/tasks`` stores the task (KV bucket) and queues it (work-queue stream) before answering 202
with its id; ``GET /v1/tasks/{id}`` gives status, per-step progress and result; ``DELETE`` cancels it
(a running plan's steps are told to stop); ``GET /v1/tasks`` lists the tenant's tasks newest first
(``status`` filter, ``limit``, ``cursor`` paging); ``GET /v1/tasks/{id}/events`` streams the record as
server-sent events (``event: task``) each time it changes, ending after a terminal status.

Tasks belong to the caller's tenant: another tenant's id is 404. Errors: 400 bad body or plan (field
named), 404 unknown task, 413 task too large, 429 queue full, 503 JetStream unavailable.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import Stream

from agents.errors import BadInputError, NoRespondersError
from agents.plans import PlanError, parse_plan
from api._offload import off_loop
from api._request import call_context, scopes_of, tenant_of
from api._sse import sse_event, sse_response
from api.tasks.schemas import TaskCreated, TaskCreateRequest, TaskList, TaskRecord
from orchestrator import Orchestrator, TaskQueue, TaskRequest, TaskStatus

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_PAGE = 200
"""Most tasks one ``GET /v1/tasks`` page holds."""


def _queue(state: State) -> TaskQueue:
    queue = state.get("tasks")
    if queue is None:
        raise NoRespondersError("durable tasks are unavailable: this server has no JetStream task queue")
    return queue  # type: ignore[no-any-return]


@post("/v1/tasks", summary="Submit a durable task (a goal or a plan)", status_code=202)
async def submit_task(
    state: State, request: Request[Any, Any, Any], data: JSONBody[TaskCreateRequest]
) -> Response[TaskCreated]:
    """Store and queue the task; 202 with its id (200 with the earlier task for a repeated key).

    A plan is parsed off the event loop; every step that names its agent is authorised now (403 for a
    step the credential's scopes do not cover), and each step again when it runs.
    """
    plan: dict[str, Any] | None = None
    if data.plan is not None:
        try:
            parsed = await off_loop(parse_plan, data.plan, field="plan")
        except PlanError as exc:
            raise BadInputError(str(exc).split(": ", 1)[-1], field=exc.field) from None
        orchestrator: Orchestrator = state.orchestrator
        orchestrator.plans.authorise(parsed, call_context(orchestrator, request))
        plan = (
            parsed.model_dump(mode="json", exclude_defaults=True) if isinstance(data.plan, str) else data.plan
        )
    key = data.idempotency_key or request.headers.get(IDEMPOTENCY_HEADER) or None
    try:
        task_request = TaskRequest(goal=data.goal, plan=plan, input=data.input, priority=data.priority)
    except ValueError as exc:
        raise BadInputError(str(exc), field="input") from None
    record, created = await _queue(state).submit(
        task_request, tenant=tenant_of(request), idempotency_key=key, scopes=scopes_of(request)
    )
    return Response(
        TaskCreated(id=record.id, status=record.status, created=created), status_code=202 if created else 200
    )


@get("/v1/tasks", summary="List the caller's tasks, newest first (filter by status, paged)")
async def list_tasks(
    state: State,
    request: Request[Any, Any, Any],
    status: Annotated[TaskStatus | None, Parameter(description="Only tasks with this status.")] = None,
    limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE, description="Most tasks in the page.")] = 50,
    cursor: Annotated[
        str | None, Parameter(max_length=128, description="next_cursor of the previous page.")
    ] = None,
) -> TaskList:
    """One page of the tenant's tasks; ``next_cursor`` continues it (400 names a bad ``cursor``)."""
    tasks, next_cursor = await _queue(state).list_tasks(
        tenant_of(request), status=status, limit=limit, cursor=cursor
    )
    return TaskList(tasks=tasks, next_cursor=next_cursor)


@get("/v1/tasks/{task_id:str}", summary="A task's status, per-step progress and result")
async def get_task(state: State, request: Request[Any, Any, Any], task_id: FromPath[str]) -> TaskRecord:
    """The task's record (404 for unknown ids and other tenants' tasks)."""
    return await _queue(state).get(task_id, tenant_of(request))


@delete("/v1/tasks/{task_id:str}", summary="Cancel a task", status_code=200)
async def cancel_task(state: State, request: Request[Any, Any, Any], task_id: FromPath[str]) -> TaskRecord:
    """Cancel: a queued task never runs, a running one stops now; a finished one is returned unchanged."""
    return await _queue(state).cancel(task_id, tenant_of(request))


@get("/v1/tasks/{task_id:str}/events", summary="Follow a task as server-sent events")
async def task_events(state: State, request: Request[Any, Any, Any], task_id: FromPath[str]) -> Stream:
    """``event: task`` with the record as JSON on every change; the stream ends after a terminal status."""
    queue = _queue(state)
    tenant = tenant_of(request)
    await queue.get(task_id, tenant)  # 404 before the stream starts

    async def events() -> AsyncGenerator[bytes, None]:
        async with aclosing(queue.watch(task_id, tenant)) as records:
            async for record in records:
                yield sse_event(record.model_dump_json(), "task")

    return sse_response(events())


ROUTES = (submit_task, list_tasks, get_task, cancel_task, task_events)
