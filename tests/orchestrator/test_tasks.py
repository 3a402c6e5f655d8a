"""Durable tasks on the real nats-server with JetStream: submit, run, cancel, priorities, dead letters,
backpressure, and a worker killed with SIGKILL mid-batch."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from agents.errors import AgentBusyError, AgentFailedError, BadInputError, NotFoundError
from agents.jetstream import JetStream
from agents.messaging import Bus
from agents.plans import PlanOutcome, StepReport
from bridges.tenant_seal import VaultSealer
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator._task_models import TaskConfig, TaskRecord, TaskRequest
from orchestrator._task_reconcile import TaskReconciler
from orchestrator._task_store import TaskQueue, idempotency_kv_key
from orchestrator._task_worker import Executor, ProgressFn, TaskJournal, TaskWorker
from vault import Vault

pytestmark = pytest.mark.anyio
WORKER_SCRIPT = Path(__file__).with_name("task_worker_proc.py")
PLAN = {"name": "echo", "steps": [{"id": "echo", "agent": "formatter", "input": {"x": "${input.x}"}}]}


def unique_config(**overrides: Any) -> TaskConfig:
    tag = uuid.uuid4().hex[:10]
    base: dict[str, Any] = {
        "stream": f"T_{tag}",
        "dead_letter_stream": f"TD_{tag}",
        "bucket": f"tasks-{tag}",
        "subject_prefix": f"t{tag}.tasks",
        "ack_wait_s": 5.0,
        "idle_poll_s": 0.2,
        "retry_delay_s": 0.1,
        "shutdown_grace_s": 1.0,
    }
    return TaskConfig(**{**base, **overrides})


def plan_request(x: Any = 1, priority: str = "normal") -> TaskRequest:
    return TaskRequest.model_validate({"plan": PLAN, "input": {"x": x}, "priority": priority})


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    async with await Bus.connect(nats_server.url, name="test-tasks") as connected:
        yield connected


def echo_executor(log: list[str] | None = None, seconds: float = 0.0) -> Executor:
    async def execute(record: TaskRecord, progress: ProgressFn) -> PlanOutcome:
        if log is not None:
            log.append(record.id)
        await progress([StepReport(id="echo", status="running")])
        await anyio.sleep(seconds)
        step = StepReport(id="echo", status="succeeded", output=record.input)
        return PlanOutcome(plan="echo", status="succeeded", output=record.input, steps=[step])

    return execute


WorkerFactory = Callable[..., AbstractAsyncContextManager[TaskWorker]]


@pytest.fixture
def worker(bus: Bus) -> WorkerFactory:
    @asynccontextmanager
    async def run(execute: Executor, config: TaskConfig, **kwargs: Any) -> AsyncIterator[TaskWorker]:
        w = TaskWorker(bus, execute, config, **kwargs)
        async with anyio.create_task_group() as tg:
            await tg.start(w.run)
            yield w
            tg.cancel_scope.cancel()

    return run


async def wait_terminal(
    queue: TaskQueue, task_id: str, tenant: str = "acme", timeout_s: float = 10
) -> TaskRecord:
    with anyio.fail_after(timeout_s):
        async with aclosing(queue.watch(task_id, tenant)) as records:
            async for record in records:
                last = record
    return last


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 10) -> None:
    with anyio.fail_after(timeout_s):
        while not await predicate():
            await anyio.sleep(0.02)


async def test_submit_runs_and_stores_the_result(bus: Bus, worker: WorkerFactory) -> None:
    config = unique_config()
    queue = await TaskQueue.open(bus, config)
    record, created = await queue.submit(plan_request(x=42), tenant="acme")
    assert created and record.status == "queued" and len(record.id) == 32
    async with worker(echo_executor(), config):
        done = await wait_terminal(queue, record.id)
    assert done.status == "succeeded"
    assert done.result == {"x": 42}
    assert [s.status for s in done.steps] == ["succeeded"]
    assert done.attempts == 1 and done.error is None and not done.dead_lettered
    assert (await queue.get(record.id, "acme")).status == "succeeded"


async def test_bad_plan_is_refused_at_submit(bus: Bus) -> None:
    queue = await TaskQueue.open(bus, unique_config())
    bad = TaskRequest.model_validate({"plan": {"steps": [{"id": "a", "agent": "x", "input": "${steps.b}"}]}})
    with pytest.raises(BadInputError) as info:
        await queue.submit(bad, tenant="acme")
    assert info.value.field is not None and info.value.field.startswith("plan")


async def test_idempotency_key_returns_the_first_task(bus: Bus) -> None:
    queue = await TaskQueue.open(bus, unique_config())
    first, created1 = await queue.submit(plan_request(1), tenant="acme", idempotency_key="order-7")
    again, created2 = await queue.submit(plan_request(2), tenant="acme", idempotency_key="order-7")
    other, created3 = await queue.submit(plan_request(1), tenant="globex", idempotency_key="order-7")
    assert created1 and not created2 and created3
    assert again.id == first.id and again.input == {"x": 1}
    assert other.id != first.id


async def test_other_tenants_task_is_not_found(bus: Bus) -> None:
    queue = await TaskQueue.open(bus, unique_config())
    record, _ = await queue.submit(plan_request(), tenant="acme")
    with pytest.raises(NotFoundError):
        await queue.get(record.id, "globex")
    with pytest.raises(NotFoundError):
        await queue.cancel(record.id, "globex")
    with pytest.raises(NotFoundError):
        await queue.get(uuid.uuid4().hex, "acme")
    with pytest.raises(NotFoundError):
        await queue.get("../etc", "acme")
    assert (await queue.get(record.id, "acme")).status == "queued"


async def test_cancel_stops_a_running_task(bus: Bus, worker: WorkerFactory) -> None:
    config = unique_config()
    queue = await TaskQueue.open(bus, config)
    started, saw_cancel = anyio.Event(), anyio.Event()

    async def slow(record: TaskRecord, progress: ProgressFn) -> PlanOutcome:
        await progress([StepReport(id="echo", status="running")])
        started.set()
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            saw_cancel.set()
            raise
        raise AssertionError("not cancelled")

    async with worker(slow, config) as w:
        record, _ = await queue.submit(plan_request(), tenant="acme")
        with anyio.fail_after(10):
            await started.wait()
        cancelled = await queue.cancel(record.id, "acme")
        assert cancelled.status == "cancelled"
        with anyio.fail_after(5):
            await saw_cancel.wait()
        await wait_for(lambda: _zero(w))
    final = await queue.get(record.id, "acme")
    assert final.status == "cancelled" and final.attempts == 1
    assert (await queue.cancel(record.id, "acme")).status == "cancelled"  # no-op on a finished task


async def _zero(w: TaskWorker) -> bool:
    return w.running == 0


async def test_cancel_of_a_queued_task_means_it_never_runs(bus: Bus, worker: WorkerFactory) -> None:
    config = unique_config()
    queue = await TaskQueue.open(bus, config)
    record, _ = await queue.submit(plan_request(), tenant="acme")
    await queue.cancel(record.id, "acme")
    ran: list[str] = []
    async with worker(echo_executor(ran), config):
        js = JetStream(bus)
        await wait_for(lambda: _empty(js, config.stream))
    assert ran == []
    assert (await queue.get(record.id, "acme")).status == "cancelled"


async def _empty(js: JetStream, stream: str) -> bool:
    return await js.message_count(stream) == 0


async def test_high_priority_runs_before_queued_low_ones(bus: Bus, worker: WorkerFactory) -> None:
    config = unique_config(concurrency=1)
    queue = await TaskQueue.open(bus, config)
    order: list[Any] = []
    release = anyio.Event()

    async def execute(record: TaskRecord, progress: ProgressFn) -> PlanOutcome:
        order.append(record.input["x"])
        if record.input["x"] == "blocker":
            await release.wait()
        return PlanOutcome(plan="p", status="succeeded", output=None, steps=[])

    async with worker(execute, config):
        blocker, _ = await queue.submit(plan_request("blocker"), tenant="acme")
        await wait_for(lambda: _is_running(queue, blocker.id))
        lows = [(await queue.submit(plan_request(f"low{i}", "low"), tenant="acme"))[0] for i in range(3)]
        high, _ = await queue.submit(plan_request("high", "high"), tenant="acme")
        release.set()
        for task in [*lows, high]:
            assert (await wait_terminal(queue, task.id)).status == "succeeded"
    assert order == ["blocker", "high", "low0", "low1", "low2"]


async def _true(value: bool) -> bool:
    return value


async def _is_running(queue: TaskQueue, task_id: str) -> bool:
    return (await queue.get(task_id, "acme")).status == "running"


async def test_infrastructure_errors_dead_letter_after_max_attempts(bus: Bus, worker: WorkerFactory) -> None:
    config = unique_config(max_attempts=2)
    queue = await TaskQueue.open(bus, config)
    calls: list[str] = []

    async def broken(record: TaskRecord, progress: ProgressFn) -> PlanOutcome:
        calls.append(record.id)
        raise ConnectionError("agent bus down")

    record, _ = await queue.submit(plan_request(), tenant="acme")
    async with worker(broken, config):
        final = await wait_terminal(queue, record.id)
    assert final.status == "failed" and final.dead_lettered
    assert final.attempts == 2 and calls == [record.id, record.id]
    assert final.error is not None and "after 2 attempt" in final.error["message"]
    assert "agent bus down" in final.error["message"]
    js = JetStream(bus)
    assert await js.message_count(config.dead_letter_stream) == 1
    dead = await js.last_message(config.dead_letter_stream, config.dead_letter_subject)
    assert json.loads(dead.data)["task"]["id"] == record.id
    assert await js.message_count(config.stream) == 0


async def test_a_quiet_worker_takes_new_tasks_and_redeliveries_without_its_long_poll(
    bus: Bus, worker: WorkerFactory
) -> None:
    # An hour between looks when the queue is empty: new tasks come by the doorbell, and a task nakked
    # for a retry keeps the worker on its short poll (the queue holds a message it is not running).
    config = unique_config(quiet_poll_s=3600.0)
    queue = await TaskQueue.open(bus, config)
    calls: list[str] = []
    workers: list[TaskWorker] = []

    async def flaky(record: TaskRecord, progress: ProgressFn) -> PlanOutcome:
        calls.append(record.id)
        if len(calls) == 1:
            # fail only once the worker waits quietly (the queue holds this task alone, and it runs it)
            await wait_for(lambda: _true(workers[0].idle_wait_s == config.quiet_poll_s))
            raise ConnectionError("agent bus down")
        return await echo_executor()(record, progress)

    async with worker(flaky, config) as w:
        workers.append(w)
        first, _ = await queue.submit(plan_request(x=1), tenant="acme")
        done = await wait_terminal(queue, first.id)
        assert done.status == "succeeded" and done.attempts == 2  # the retry was picked up
        second, _ = await queue.submit(plan_request(x=2), tenant="acme")  # the worker is quiet again
        assert (await wait_terminal(queue, second.id)).result == {"x": 2}
    assert calls == [first.id, first.id, second.id]


async def test_task_errors_fail_at_once_without_retry(bus: Bus, worker: WorkerFactory) -> None:
    config = unique_config()
    queue = await TaskQueue.open(bus, config)
    calls: list[str] = []

    async def refuses(record: TaskRecord, progress: ProgressFn) -> PlanOutcome:
        calls.append(record.id)
        raise BadInputError("no such agent", field="plan.steps.0.agent")

    record, _ = await queue.submit(plan_request(), tenant="acme")
    async with worker(refuses, config):
        final = await wait_terminal(queue, record.id)
    assert final.status == "failed" and not final.dead_lettered and len(calls) == 1
    assert final.error == {"code": "bad_request", "message": "no such agent", "field": "plan.steps.0.agent"}


async def test_delivery_after_a_crash_on_the_last_attempt_is_dead_lettered(
    bus: Bus, worker: WorkerFactory
) -> None:
    config = unique_config(max_attempts=1, shutdown_grace_s=0.0)
    queue = await TaskQueue.open(bus, config)
    started = anyio.Event()

    async def hangs(record: TaskRecord, progress: ProgressFn) -> PlanOutcome:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError

    record, _ = await queue.submit(plan_request(), tenant="acme")
    async with worker(hangs, config):  # stopped with no grace: the run is abandoned, like a crash
        with anyio.fail_after(10):
            await started.wait()
    assert (await queue.get(record.id, "acme")).status == "running"
    async with worker(echo_executor(), config):
        final = await wait_terminal(queue, record.id)
    assert final.status == "failed" and final.dead_lettered
    assert final.error is not None and "after 1 attempt" in final.error["message"]


async def test_full_queue_refuses_with_busy(bus: Bus) -> None:
    config = unique_config(max_queued=2)
    queue = await TaskQueue.open(bus, config)
    await queue.submit(plan_request(1), tenant="acme")
    await queue.submit(plan_request(2), tenant="acme", idempotency_key="k")
    with pytest.raises(AgentBusyError):
        await queue.submit(plan_request(3), tenant="acme", idempotency_key="k3")
    # the refused task left nothing behind: its idempotency key is free again
    with pytest.raises(AgentBusyError):
        await queue.submit(plan_request(3), tenant="acme", idempotency_key="k3")


async def test_worker_killed_mid_batch_every_task_completes_exactly_once(
    bus: Bus, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    config = unique_config(ack_wait_s=2.0, concurrency=4, kv_history=64, idle_poll_s=0.2)
    queue = await TaskQueue.open(bus, config)
    tasks = [(await queue.submit(plan_request(i), tenant="acme"))[0] for i in range(100)]
    log_file = tmp_path / "executions.log"
    log_file.touch()

    proc = await anyio.open_process(
        [sys.executable, str(WORKER_SCRIPT), nats_server.url, config.model_dump_json(), str(log_file)],
        cwd=Path(__file__).parents[2],
    )
    try:
        with anyio.fail_after(30):
            while len(log_file.read_text().splitlines()) < 25:
                await anyio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    killed_pid = str(proc.pid)

    async def execute(record: TaskRecord, progress: ProgressFn) -> PlanOutcome:
        with log_file.open("a") as f:
            f.write(f"{os.getpid()} {record.id}\n")
        await anyio.sleep(0.05)
        step = StepReport(id="echo", status="succeeded", output=record.input)
        return PlanOutcome(plan="echo", status="succeeded", output=record.input, steps=[step])

    w = TaskWorker(bus, execute, config, name="survivor")
    async with anyio.create_task_group() as tg:
        await tg.start(w.run)
        for task in tasks:
            final = await wait_terminal(queue, task.id, timeout_s=30)
            assert final.status == "succeeded", final
            assert final.result == task.input
        tg.cancel_scope.cancel()

    runs: dict[str, list[str]] = {}
    for line in log_file.read_text().splitlines():
        pid, task_id = line.split()
        runs.setdefault(task_id, []).append(pid)
    assert set(runs) == {t.id for t in tasks}
    by_killed = Counter(pid == killed_pid for pids in runs.values() for pid in pids)
    assert by_killed[True] >= 25 and by_killed[False] > 0
    rerun = {task_id: pids for task_id, pids in runs.items() if len(pids) > 1}
    # only the tasks in flight at the kill ran twice: once in the killed worker, once in the survivor
    assert len(rerun) <= config.concurrency
    for pids in rerun.values():
        assert pids[0] == killed_pid and pids[1:] == [str(os.getpid())]
    for task in tasks:
        history = [TaskRecord.model_validate_json(e.value) for e in await queue_history(queue, task.id)]
        statuses = [r.status for r in history]
        assert statuses.count("succeeded") == 1 and statuses[-1] == "succeeded"  # result stored once
        claims = [r.attempts for r in history if r.status == "running"]
        final = history[-1]
        assert claims == sorted(claims) and set(claims) == set(range(1, final.attempts + 1))
        assert len(runs[task.id]) <= final.attempts  # no run after the result was recorded


async def queue_history(queue: TaskQueue, task_id: str) -> list[Any]:
    return await queue._store.kv.history(task_id)


# --------------------------------------------------------------------------- faults (issue 14)


async def test_idempotency_keys_of_colliding_tenant_names_stay_separate(bus: Bus) -> None:
    queue = await TaskQueue.open(bus, unique_config())
    # Before: "a.b" was stored under the token "h-" + sha256("a.b")[:40], which a tenant could be named.
    dotted = "a.b"
    lookalike = "h-" + hashlib.sha256(dotted.encode()).hexdigest()[:40]
    first, created1 = await queue.submit(plan_request(1), tenant=dotted, idempotency_key="k")
    second, created2 = await queue.submit(plan_request(2), tenant=lookalike, idempotency_key="k")
    assert created1 and created2 and first.id != second.id
    again, created3 = await queue.submit(plan_request(3), tenant=lookalike, idempotency_key="k")
    assert not created3 and again.id == second.id and again.input == {"x": 2}
    assert idempotency_kv_key(dotted, "k") != idempotency_kv_key(lookalike, "k")


async def test_reconciler_publishes_a_record_left_without_a_message(bus: Bus, worker: WorkerFactory) -> None:
    """The state a crash between storing the record and publishing it leaves: the task runs once."""
    # Within the grace a submit may still be publishing: a grace no stall of a busy machine outlasts. Past
    # it: a reconciler of the same tasks whose grace (10 ms) has passed by the time it looks, so that
    # neither check depends on how long the steps in between take.
    config = unique_config(reconcile_grace_s=300)
    queue = await TaskQueue.open(bus, config)
    store = queue._store
    now = time.time()
    record = TaskRecord(
        id=uuid.uuid4().hex, tenant="acme", plan=PLAN, input={"x": 5}, created_at=now, updated_at=now
    )
    assert await store.create(record)  # and no publish: the submit "crashed" here
    assert (await TaskReconciler(bus, config).reconcile()).requeued == 0  # within the grace
    reconciler = TaskReconciler(bus, config.model_copy(update={"reconcile_grace_s": 0.01}))
    ran: list[str] = []
    async with worker(echo_executor(ran), config):
        with anyio.fail_after(10):
            while (await reconciler.reconcile()).requeued == 0:
                await anyio.sleep(0.05)
        final = await wait_terminal(queue, record.id)
        assert (await reconciler.reconcile()).requeued == 0  # finished: nothing more to do
    assert final.status == "succeeded" and final.result == {"x": 5} and final.attempts == 1
    assert ran == [record.id]
    assert await store.kv.keys(f"open.{record.id}") == []  # its marker is gone


async def _stuck_running(queue: TaskQueue, attempts: int) -> TaskRecord:
    """A record a worker claimed and then died with, on a delivery JetStream will not repeat."""
    now = time.time()
    record = TaskRecord(
        id=uuid.uuid4().hex,
        tenant="acme",
        status="running",
        plan=PLAN,
        input={"x": 9},
        attempts=attempts,
        lease_until=now - 60,
        created_at=now - 120,
        updated_at=now - 60,
    )
    assert await queue._store.create(record)
    return record


async def test_reconciler_requeues_a_running_record_past_its_lease(bus: Bus, worker: WorkerFactory) -> None:
    config = unique_config(max_attempts=3)
    queue = await TaskQueue.open(bus, config)
    record = await _stuck_running(queue, attempts=1)
    report = await TaskReconciler(bus, config).reconcile()
    assert report.requeued == 1 and report.dead_lettered == 0
    requeued = await queue.get(record.id, "acme")
    assert requeued.status == "queued" and requeued.error is not None
    assert requeued.error["code"] == "lease_expired"
    async with worker(echo_executor(), config):
        final = await wait_terminal(queue, record.id)
    assert final.status == "succeeded" and final.attempts == 2 and final.result == {"x": 9}


async def test_reconciler_dead_letters_a_running_record_without_attempts_left(bus: Bus) -> None:
    config = unique_config(max_attempts=2)
    queue = await TaskQueue.open(bus, config)
    record = await _stuck_running(queue, attempts=2)
    report = await TaskReconciler(bus, config).reconcile()
    assert report.dead_lettered == 1 and report.requeued == 0
    final = await queue.get(record.id, "acme")
    assert final.status == "failed" and final.dead_lettered
    assert final.error is not None and "after 2 attempt" in final.error["message"]
    js = JetStream(bus)
    dead = await js.last_message(config.dead_letter_stream, config.dead_letter_subject)
    assert json.loads(dead.data)["task"]["id"] == record.id
    assert (await TaskReconciler(bus, config).reconcile()).open == 0


async def test_a_redelivered_task_resumes_from_its_journaled_steps(bus: Bus, worker: WorkerFactory) -> None:
    """The worker's journal: a step journaled by a run that then died is not run by the next run."""
    config = unique_config(ack_wait_s=1.0, shutdown_grace_s=0.0)
    queue = await TaskQueue.open(bus, config)
    record, _ = await queue.submit(plan_request(), tenant="acme")
    ran: list[tuple[int, str]] = []
    journaled = anyio.Event()

    async def two_steps(record: TaskRecord, journal: TaskJournal) -> PlanOutcome:
        done = {s.id: s for s in record.steps if s.status == "succeeded"}
        reports = [done.get(sid, StepReport(id=sid)) for sid in ("one", "two")]
        for report in reports:
            if report.id in done:
                continue
            ran.append((record.attempts, report.id))
            report.status, report.output = "succeeded", f"{report.id}@{record.attempts}"
            await journal.commit(reports)
            if record.attempts == 1:  # the first run "dies" after journaling step one
                journaled.set()
                await anyio.sleep_forever()
        return PlanOutcome(plan="p", status="succeeded", output=[r.output for r in reports], steps=reports)

    async with worker(two_steps, config):  # stopped without grace: the run is abandoned, like a crash
        with anyio.fail_after(10):
            await journaled.wait()
    async with worker(two_steps, config):
        final = await wait_terminal(queue, record.id)
    assert ran == [(1, "one"), (2, "two")]
    assert final.status == "succeeded" and final.attempts == 2
    assert [s.output for s in final.steps] == ["one@1", "two@2"]


async def test_sealed_records_hold_no_plaintext_and_are_shredded_with_the_tenant(
    bus: Bus, worker: WorkerFactory, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    canary = "canary-" + uuid.uuid4().hex
    config = unique_config()
    with Vault(tmp_path / "vault") as v:
        sealer = VaultSealer(v)
        queue = await TaskQueue.open(bus, config, sealer=sealer)
        record, _ = await queue.submit(plan_request(canary), tenant="acme", idempotency_key=canary)
        async with worker(echo_executor(), config, sealer=sealer):
            final = await wait_terminal(queue, record.id)
        assert final.status == "succeeded" and final.result == {"x": canary}
        raw = (await queue._store.kv.get(record.id)).value
        assert canary.encode() not in raw and json.loads(raw)["status"] == "succeeded"
        leaks = [
            p for p in nats_server.store_dir.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()
        ]
        assert leaks == []
        # A sealed blob does not open as another task's record.
        other, _ = await queue.submit(plan_request(1), tenant="acme")
        forged = json.loads((await queue._store.kv.get(other.id)).value)
        forged["sealed"] = json.loads(raw)["sealed"]
        with pytest.raises(AgentFailedError):
            await queue._store.codec.decode(json.dumps(forged).encode())
        listed, _ = await queue.list_tasks("acme", status="succeeded")
        assert [(r.id, r.result) for r in listed] == [(record.id, {"x": canary})]  # opened for the list
        v.delete_tenant("acme")  # crypto-shred: the task's data key is gone
        with pytest.raises(NotFoundError):
            await queue.get(record.id, "acme")
        assert (await queue.list_tasks("acme"))[0] == []
