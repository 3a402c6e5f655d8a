"""``TaskQueue.list_tasks`` (behind ``GET /v1/tasks``) on the real nats-server: newest first, the tenant's
tasks only, a status filter, and cursor paging that neither repeats nor skips a task."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from agents.errors import BadInputError
from agents.messaging import Bus
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator._task_models import TaskConfig, TaskRequest
from orchestrator._task_store import TaskQueue

pytestmark = pytest.mark.anyio
PLAN = {"name": "echo", "steps": [{"id": "echo", "agent": "formatter", "input": {"x": "${input.x}"}}]}


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    async with await Bus.connect(nats_server.url, name="test-task-list") as connected:
        yield connected


@pytest.fixture
async def queue(bus: Bus) -> TaskQueue:
    tag = uuid.uuid4().hex[:10]
    config = TaskConfig(
        stream=f"L_{tag}",
        dead_letter_stream=f"LD_{tag}",
        bucket=f"list-{tag}",
        subject_prefix=f"l{tag}.tasks",
    )
    return await TaskQueue.open(bus, config)


def request(x: int) -> TaskRequest:
    return TaskRequest.model_validate({"plan": PLAN, "input": {"x": x}})


async def test_pages_are_newest_first_per_tenant_without_gaps_or_repeats(queue: TaskQueue) -> None:
    mine = [(await queue.submit(request(i), tenant="acme", idempotency_key=f"k{i}"))[0].id for i in range(7)]
    await queue.submit(request(99), tenant="globex")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = await queue.list_tasks("acme", limit=3, cursor=cursor)
        pages += 1
        assert len(page) <= 3
        seen += [r.id for r in page]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(mine))  # newest first, every task once, no other tenant's
    assert await queue.list_tasks("nobody") == ([], None)


async def test_status_filter_and_bad_cursor(queue: TaskQueue) -> None:
    kept, _ = await queue.submit(request(1), tenant="acme")
    cancelled, _ = await queue.submit(request(2), tenant="acme")
    await queue.cancel(cancelled.id, "acme")
    page, _ = await queue.list_tasks("acme", status="cancelled")
    assert [r.id for r in page] == [cancelled.id]
    page, _ = await queue.list_tasks("acme", status="queued")
    assert [r.id for r in page] == [kept.id]
    with pytest.raises(BadInputError) as info:
        await queue.list_tasks("acme", cursor="not-a-cursor")
    assert info.value.field == "cursor"
