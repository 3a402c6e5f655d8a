"""What sealing durable task records costs: submit, read and a journal write, sealed vs in clear (not a test).

Starts the real nats-server (temp dir) and opens a real ΣVAULT (temp dir) whose keyring seals the records
(:class:`bridges.tenant_seal.VaultSealer`: AES-256-GCM in a worker thread). For each of ``--runs`` runs,
in alternating blocks of 50 (clear, sealed, sealed, clear: ABBA), it times sequentially:

* ``submit``: :meth:`TaskQueue.submit` of a plan with a 1 KB input (marker, record, publish);
* ``get``: :meth:`TaskQueue.get` of that task (KV read, open);
* ``journal``: one compare-and-set write of a 5-step record with 1 KB outputs (what each finished
  step of a plan costs).

It prints the median over runs of each p50 in milliseconds and the sealed/clear ratio. The machine's
other load shows up directly in these numbers: compare ratios more than absolutes.

    .venv/bin/python benchmarks/tasks_at_rest.py --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and benchmarks/vault.py would shadow `vault`.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import anyio  # noqa: E402

from agents.messaging import Bus  # noqa: E402
from agents.plans import StepReport  # noqa: E402
from bridges.tenant_seal import VaultSealer  # noqa: E402
from neurectomy.server.natsserver import EmbeddedNats  # noqa: E402
from orchestrator._task_models import TaskConfig, TaskRecord, TaskRequest  # noqa: E402
from orchestrator._task_seal import Sealer  # noqa: E402
from orchestrator._task_store import TaskQueue  # noqa: E402
from vault import Vault  # noqa: E402

PLAN = {"steps": [{"id": f"s{i}", "agent": "formatter", "input": {"x": "${input.x}"}} for i in range(5)]}
BLOCK = 50


async def _block(bus: Bus, sealer: Sealer | None, times: dict[str, list[float]]) -> None:
    tag = uuid.uuid4().hex[:8]
    config = TaskConfig(
        stream=f"B_{tag}", dead_letter_stream=f"BD_{tag}", bucket=f"b-{tag}", subject_prefix=f"b{tag}"
    )
    queue = await TaskQueue.open(bus, config, sealer=sealer)
    store = queue._store
    request = TaskRequest.model_validate({"plan": PLAN, "input": {"x": "y" * 1024}})
    steps = [StepReport(id=f"s{i}", status="succeeded", output={"text": "z" * 1024}) for i in range(5)]
    for _ in range(BLOCK):
        t0 = time.perf_counter()
        record, _ = await queue.submit(request, tenant="acme")
        t1 = time.perf_counter()
        record = await queue.get(record.id, "acme")
        t2 = time.perf_counter()
        loaded, revision = await store.load(record.id)

        def journal(current: TaskRecord) -> TaskRecord:
            return current.changed(steps=steps)

        t3 = time.perf_counter()
        await store.mutate(loaded, revision, journal)
        t4 = time.perf_counter()
        times["submit"].append(t1 - t0)
        times["get"].append(t2 - t1)
        times["journal"].append(t4 - t3)


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            EmbeddedNats(Path(tmp) / "nats") as server,
            await Bus.connect(server.url, name="bench") as bus,
        ):
            with Vault(Path(tmp) / "vault") as v:
                sealer = VaultSealer(v)
                medians: dict[str, dict[str, list[float]]] = {"clear": {}, "sealed": {}}
                for _ in range(runs):
                    per = {m: {"submit": [], "get": [], "journal": []} for m in medians}
                    for mode in ("clear", "sealed", "sealed", "clear"):
                        await _block(bus, sealer if mode == "sealed" else None, per[mode])
                    for mode, times in per.items():
                        for op, values in times.items():
                            medians[mode].setdefault(op, []).append(statistics.median(values) * 1000)
    print(f"{'op':<8} {'clear p50 ms':>13} {'sealed p50 ms':>14} {'ratio':>6}   (median of {runs} runs)")
    for op in ("submit", "get", "journal"):
        clear, sealed = statistics.median(medians["clear"][op]), statistics.median(medians["sealed"][op])
        print(f"{op:<8} {clear:>13.3f} {sealed:>14.3f} {sealed / clear:>6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    anyio.run(main, parser.parse_args().runs)
