"""A task worker in its own process, for the crash test (killed with SIGKILL mid-batch).

Usage: python task_worker_proc.py NATS_URL CONFIG_JSON LOG_FILE

Each execution appends ``<pid> <task id>`` to LOG_FILE before it runs (50 ms per task).
"""

from __future__ import annotations

import os
import sys

import anyio

from agents.messaging import Bus
from agents.plans import PlanOutcome, StepReport
from orchestrator._task_models import TaskConfig, TaskRecord
from orchestrator._task_worker import ProgressFn, TaskWorker


def make_executor(log_file: str, seconds: float = 0.05):
    async def execute(record: TaskRecord, progress: ProgressFn) -> PlanOutcome:
        with open(log_file, "a") as f:
            f.write(f"{os.getpid()} {record.id}\n")
        await progress([StepReport(id="echo", status="running")])
        await anyio.sleep(seconds)
        step = StepReport(id="echo", status="succeeded", output=record.input)
        return PlanOutcome(plan="echo", status="succeeded", output=record.input, steps=[step])

    return execute


async def main(url: str, config_json: str, log_file: str) -> None:
    config = TaskConfig.model_validate_json(config_json)
    async with await Bus.connect(url, name="task-worker-proc") as bus:
        worker = TaskWorker(bus, make_executor(log_file), config, name=f"proc-{os.getpid()}")
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            print("ready", flush=True)


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
