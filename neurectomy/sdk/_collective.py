"""``client.agents``, ``client.tasks`` and ``client.keys``: the collective, durable tasks and API keys.

::

    with Client() as client:
        client.agents()                                   # all 40, with replicas, health and load
        client.agents.call("sentiment", "What a lovely day").output
        client.agents.select(goal="pull the keywords out of this text").agent
        task = client.tasks.submit(goal="report on: Our Q3 revenue grew 12 percent.")
        done = client.tasks.wait(task.id, timeout_s=120)  # follows the task's event stream
        for record in client.tasks.events(task.id): ...   # every change, ends when it ends
        client.keys.create("acme", ["read", "write"]).token
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx

from api.agents.schemas import AgentCallResponse, AgentSpecOut, SelectResponse
from api.generate.schemas import AgentOut
from api.keys.schemas import KeyCreated, KeyOut
from api.tasks.schemas import TaskCreated, TaskRecord
from neurectomy.sdk._send import AsyncOpenEvents, AsyncSend, OpenEvents, Send

__all__ = (
    "AgentsResource",
    "AsyncAgentsResource",
    "AsyncKeysResource",
    "AsyncTasksResource",
    "KeysResource",
    "TasksResource",
)

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "needs_clarification"})
"""Task statuses that never change again."""


def _call_body(
    value: str | Mapping[str, Any], timeout_s: float | None, retries: int | None, fallback: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"input": value if isinstance(value, str) else dict(value), "fallback": fallback}
    if timeout_s is not None:
        body["timeout_s"] = timeout_s
    if retries is not None:
        body["retries"] = retries
    return body


def _task_body(
    goal: str | None,
    plan: Mapping[str, Any] | str | None,
    inputs: Mapping[str, Any] | None,
    priority: str,
    idempotency_key: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"priority": priority}
    if goal is not None:
        body["goal"] = goal
    if plan is not None:
        body["plan"] = plan if isinstance(plan, str) else dict(plan)
        body["input"] = dict(inputs or {})
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    return body


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the task did not finish in time")
    return left


class AgentsResource:
    """The agents: list (call the resource itself), describe, call directly, explain selection."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def __call__(self) -> list[AgentOut]:
        """Every agent of the roster with team, replicas, health and load (same as :meth:`list`)."""
        return self.list()

    def list(self) -> list[AgentOut]:
        """Every agent of the roster with team, replicas, health and load."""
        return [AgentOut.model_validate(a) for a in self._send("GET", "/v1/agents").json()]

    def get(self, name: str) -> AgentSpecOut:
        """An agent's description, capabilities and input/output schemas.

        Raises:
            NotFoundError: No agent of that name.
        """
        return AgentSpecOut.model_validate_json(self._send("GET", f"/v1/agents/{name}").content)

    def call(
        self,
        name: str,
        input: str | Mapping[str, Any],  # noqa: A002 - the API's field name
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        fallback: bool = True,
    ) -> AgentCallResponse:
        """Call one agent; a text ``input`` fills the agent's text field.

        Args:
            name: Agent name.
            input: Its input object, or text.
            timeout_s: Deadline of the call, in seconds.
            retries: Extra attempts after timeouts or crashes (server default when None).
            fallback: Whether another agent of the same capability may answer if this one is busy or down.

        Raises:
            BadRequestError: The agent cannot use the input (``field`` is ``input.<field>``).
            NotFoundError: No agent of that name.
            BusyError, UnavailableError, APIError: 429, 503, 504, ...
        """
        body = _call_body(input, timeout_s, retries, fallback)
        return AgentCallResponse.model_validate_json(
            self._send("POST", f"/v1/agents/{name}", json=body).content
        )

    def select(self, goal: str | None = None, *, capability: str | None = None, k: int = 5) -> SelectResponse:
        """Which agent would handle ``goal`` (and/or ``capability``), with every candidate's scores."""
        body = {"goal": goal, "capability": capability, "k": k}
        return SelectResponse.model_validate_json(self._send("POST", "/v1/select", json=body).content)


class TasksResource:
    """Durable tasks: submit, read, cancel, follow, wait."""

    def __init__(self, send: Send, open_events: OpenEvents) -> None:
        self._send = send
        self._open_events = open_events

    def submit(
        self,
        goal: str | None = None,
        *,
        plan: Mapping[str, Any] | str | None = None,
        input: Mapping[str, Any] | None = None,  # noqa: A002 - the API's field name
        priority: str = "normal",
        idempotency_key: str | None = None,
    ) -> TaskCreated:
        """Queue a task: a free-text ``goal`` (planned by the planner agent), or a ``plan`` and its input.

        The task is durable when this returns. With an ``idempotency_key``, submitting again returns the
        first task (``created`` False).

        Raises:
            BadRequestError: Neither or both of goal and plan, or an invalid plan (field named).
            BusyError: The queue is full (429).
            UnavailableError: JetStream is unavailable (503).
        """
        body = _task_body(goal, plan, input, priority, idempotency_key)
        return TaskCreated.model_validate_json(self._send("POST", "/v1/tasks", json=body).content)

    def get(self, task_id: str) -> TaskRecord:
        """The task's status, per-step progress and result (NotFoundError for unknown ids)."""
        return TaskRecord.model_validate_json(self._send("GET", f"/v1/tasks/{task_id}").content)

    def cancel(self, task_id: str) -> TaskRecord:
        """Cancel the task (a running one stops now); returns its record."""
        return TaskRecord.model_validate_json(self._send("DELETE", f"/v1/tasks/{task_id}").content)

    def events(self, task_id: str, *, timeout_s: float | None = None) -> Iterator[TaskRecord]:
        """The task's record now and at every change, ending after a terminal status.

        Raises:
            NotFoundError: No such task.
            TimeoutError: ``timeout_s`` passed before the task ended.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        timeout = httpx.Timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        try:
            with self._open_events("GET", f"/v1/tasks/{task_id}/events", timeout=timeout) as src:
                for sse in src.iter_sse():
                    if sse.event == "task":
                        record = TaskRecord.model_validate_json(sse.data)
                        yield record
                        if record.status in TERMINAL:
                            return
                    _remaining(deadline)
        except httpx.TimeoutException:
            raise TimeoutError(f"task {task_id} did not finish within {timeout_s} s") from None

    def wait(self, task_id: str, *, timeout_s: float | None = None) -> TaskRecord:
        """Block until the task ends and return its final record.

        Raises:
            TimeoutError: ``timeout_s`` passed first.
        """
        last: TaskRecord | None = None
        for record in self.events(task_id, timeout_s=timeout_s):
            last = record
        if last is None or last.status not in TERMINAL:  # the stream broke: ask once more
            last = self.get(task_id)
        if last.status not in TERMINAL:
            raise TimeoutError(f"task {task_id} is still {last.status}")
        return last


class KeysResource:
    """API keys (``admin`` scope when auth is on)."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def create(
        self, tenant: str, scopes: list[str] | tuple[str, ...] = ("read", "write"), *, name: str = ""
    ) -> KeyCreated:
        """Create a key; its ``token`` is in this answer only."""
        body = {"tenant": tenant, "scopes": list(scopes), "name": name}
        return KeyCreated.model_validate_json(self._send("POST", "/v1/keys", json=body).content)

    def list(self) -> list[KeyOut]:
        """Every key, revoked ones included (never the tokens)."""
        return [KeyOut.model_validate(k) for k in self._send("GET", "/v1/keys").json()]

    def revoke(self, key_id: str) -> KeyOut:
        """Revoke a key (NotFoundError for an unknown id)."""
        return KeyOut.model_validate_json(self._send("DELETE", f"/v1/keys/{key_id}").content)


class AsyncAgentsResource:
    """See :class:`AgentsResource`."""

    def __init__(self, send: AsyncSend) -> None:
        self._send = send

    async def __call__(self) -> list[AgentOut]:
        """See :meth:`AgentsResource.list`."""
        return await self.list()

    async def list(self) -> list[AgentOut]:
        """See :meth:`AgentsResource.list`."""
        return [AgentOut.model_validate(a) for a in (await self._send("GET", "/v1/agents")).json()]

    async def get(self, name: str) -> AgentSpecOut:
        """See :meth:`AgentsResource.get`."""
        return AgentSpecOut.model_validate_json((await self._send("GET", f"/v1/agents/{name}")).content)

    async def call(
        self,
        name: str,
        input: str | Mapping[str, Any],  # noqa: A002 - the API's field name
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        fallback: bool = True,
    ) -> AgentCallResponse:
        """See :meth:`AgentsResource.call`."""
        body = _call_body(input, timeout_s, retries, fallback)
        response = await self._send("POST", f"/v1/agents/{name}", json=body)
        return AgentCallResponse.model_validate_json(response.content)

    async def select(
        self, goal: str | None = None, *, capability: str | None = None, k: int = 5
    ) -> SelectResponse:
        """See :meth:`AgentsResource.select`."""
        body = {"goal": goal, "capability": capability, "k": k}
        return SelectResponse.model_validate_json((await self._send("POST", "/v1/select", json=body)).content)


class AsyncTasksResource:
    """See :class:`TasksResource`."""

    def __init__(self, send: AsyncSend, open_events: AsyncOpenEvents) -> None:
        self._send = send
        self._open_events = open_events

    async def submit(
        self,
        goal: str | None = None,
        *,
        plan: Mapping[str, Any] | str | None = None,
        input: Mapping[str, Any] | None = None,  # noqa: A002 - the API's field name
        priority: str = "normal",
        idempotency_key: str | None = None,
    ) -> TaskCreated:
        """See :meth:`TasksResource.submit`."""
        body = _task_body(goal, plan, input, priority, idempotency_key)
        return TaskCreated.model_validate_json((await self._send("POST", "/v1/tasks", json=body)).content)

    async def get(self, task_id: str) -> TaskRecord:
        """See :meth:`TasksResource.get`."""
        return TaskRecord.model_validate_json((await self._send("GET", f"/v1/tasks/{task_id}")).content)

    async def cancel(self, task_id: str) -> TaskRecord:
        """See :meth:`TasksResource.cancel`."""
        return TaskRecord.model_validate_json((await self._send("DELETE", f"/v1/tasks/{task_id}")).content)

    async def events(self, task_id: str, *, timeout_s: float | None = None) -> AsyncIterator[TaskRecord]:
        """See :meth:`TasksResource.events`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        timeout = httpx.Timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        try:
            async with self._open_events("GET", f"/v1/tasks/{task_id}/events", timeout=timeout) as src:
                async for sse in src.aiter_sse():
                    if sse.event == "task":
                        record = TaskRecord.model_validate_json(sse.data)
                        yield record
                        if record.status in TERMINAL:
                            return
                    _remaining(deadline)
        except httpx.TimeoutException:
            raise TimeoutError(f"task {task_id} did not finish within {timeout_s} s") from None

    async def wait(self, task_id: str, *, timeout_s: float | None = None) -> TaskRecord:
        """See :meth:`TasksResource.wait`."""
        last: TaskRecord | None = None
        async for record in self.events(task_id, timeout_s=timeout_s):
            last = record
        if last is None or last.status not in TERMINAL:
            last = await self.get(task_id)
        if last.status not in TERMINAL:
            raise TimeoutError(f"task {task_id} is still {last.status}")
        return last


class AsyncKeysResource:
    """See :class:`KeysResource`."""

    def __init__(self, send: AsyncSend) -> None:
        self._send = send

    async def create(
        self, tenant: str, scopes: list[str] | tuple[str, ...] = ("read", "write"), *, name: str = ""
    ) -> KeyCreated:
        """See :meth:`KeysResource.create`."""
        body = {"tenant": tenant, "scopes": list(scopes), "name": name}
        return KeyCreated.model_validate_json((await self._send("POST", "/v1/keys", json=body)).content)

    async def list(self) -> list[KeyOut]:
        """See :meth:`KeysResource.list`."""
        return [KeyOut.model_validate(k) for k in (await self._send("GET", "/v1/keys")).json()]

    async def revoke(self, key_id: str) -> KeyOut:
        """See :meth:`KeysResource.revoke`."""
        return KeyOut.model_validate_json((await self._send("DELETE", f"/v1/keys/{key_id}")).content)
