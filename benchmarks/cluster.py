"""Scale-out of a CPU-bound agent over worker processes: requests/s with 1 and with 2 workers (not a test).

Starts the real nats-server (``EmbeddedNats``, temp dir), then ``neurectomy agent --team analysis
--agent code-analyzer`` worker processes (radon's cyclomatic complexity, maintainability index and
Halstead metrics of a Python module: pure-Python CPU work, one core per process because of the GIL).
This process is the caller: an :class:`~orchestrator.Orchestrator` with its heartbeat monitor, so every
call goes through the router (least-loaded healthy replica), ``--inflight`` calls at a time.

For each run, 1 worker, then a second worker process joins the same queue group and the same load runs
again; the table shows median requests/s over runs and the ratio 2 workers / 1 worker. The ceiling is
the machine: with N cores, the caller and nats-server share them with the workers, so on a 2-core
machine the ratio stays well under 2 (the load average before each run is printed; compare ratios
measured in the same run, not absolutes across days).

Then ΣVAULT search over Storage replicas on the JetStream record log (``vault_log.mode: jetstream``, one
KEK): ``neurectomy agent --team storage`` processes, ``--records`` records written once through the
archivist (1 replica), then ``--searches`` text searches (k=10; each embeds its query with all-MiniLM-L6-v2
on the replica: CPU work) ``--inflight`` at a time, with 1 replica and again once a second replica has
caught up from the stream; the table shows latency p50/p99 (ms) and searches/s side by side.

    .venv/bin/python benchmarks/cluster.py --quick       # smoke run
    .venv/bin/python benchmarks/cluster.py --runs 3 --requests 400
    .venv/bin/python benchmarks/cluster.py --skip-analysis --records 2000 --searches 400   # vault only
"""

from __future__ import annotations

import argparse
import base64
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its siblings would shadow the packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import anyio  # noqa: E402
import psutil  # noqa: E402

from agents import Bus  # noqa: E402
from agents.roster import ROSTER  # noqa: E402
from neurectomy.server.natsserver import EmbeddedNats  # noqa: E402
from neurectomy.testing import start_agents, stop_serve  # noqa: E402
from orchestrator import CallContext, Orchestrator  # noqa: E402

SOURCE = (Path(__file__).parents[1] / "orchestrator" / "_route.py").read_text()
"""The payload: a ~300-line Python module of this project."""


async def _load(url: str, *, workers: int, requests: int, inflight: int) -> tuple[float, list[int]]:
    """Requests/s of ``requests`` code-analyzer calls, ``inflight`` at a time, once ``workers`` are seen;
    and the requests each worker has received so far (warm-up included), from ``$SRV.STATS``."""
    async with await Bus.connect(url, name="bench-cluster") as bus:
        orch = Orchestrator(bus, specs=ROSTER, semantic=False)
        async with anyio.create_task_group() as tg:
            await tg.start(orch.run)
            with anyio.fail_after(30):  # every worker's heartbeat has arrived
                while len(orch.monitor.healthy("code-analyzer")) < workers:  # noqa: ASYNC110 - polled state
                    await anyio.sleep(0.05)
            payload = {"code": SOURCE}
            for _ in range(workers * 2):  # warm-up: imports and first-call costs in every worker
                await orch.call("analysis", "code-analyzer", payload, CallContext.with_timeout(30))
            remaining = requests
            started = time.perf_counter()

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    await orch.call("analysis", "code-analyzer", payload, CallContext.with_timeout(60))

            async with anyio.create_task_group() as load:
                for _ in range(inflight):
                    load.start_soon(worker)
            elapsed = time.perf_counter() - started
            stats = await bus.discover("STATS", timeout_s=1.0)
            tg.cancel_scope.cancel()
    shares = sorted(
        sum(int(e.get("num_requests", 0)) for e in a.get("endpoints") or [])
        for a in stats
        if a.get("name") == "code-analyzer"
    )
    return requests / elapsed, shares


TOPICS = (
    "harbour",
    "invoice",
    "database",
    "weather",
    "recipe",
    "concert",
    "garden",
    "server",
    "train",
    "cat",
)
VAULT_ENV = {"NEURECTOMY_VAULT_LOG__MODE": "jetstream"}


async def _vault_fill(url: str, records: int) -> int:
    """Write ``records`` records (batches of 100) through the archivist; the last write's sequence."""
    async with await Bus.connect(url, name="bench-vault-fill") as bus:
        orch = Orchestrator(bus, specs=ROSTER, semantic=False)
        async with anyio.create_task_group() as tg:
            await tg.start(orch.run)
            sequence = 0
            for start in range(0, records, 100):
                batch = [
                    {
                        "id": f"r{i}",
                        "text": f"Note {i} about the {TOPICS[i % len(TOPICS)]}: item {i * 7 % 101}.",
                    }
                    for i in range(start, min(start + 100, records))
                ]
                out = await orch.call(
                    "storage", "archivist", {"records": batch}, CallContext.with_timeout(120)
                )
                sequence = int(out["sequence"])
            tg.cancel_scope.cancel()
    return sequence


async def _vault_search(
    url: str, *, replicas: int, searches: int, inflight: int, after: int
) -> tuple[list[float], float]:
    """Latencies (ms) of ``searches`` retriever calls, ``inflight`` at a time, once ``replicas`` are seen."""
    async with await Bus.connect(url, name="bench-vault-search") as bus:
        orch = Orchestrator(bus, specs=ROSTER, semantic=False)
        async with anyio.create_task_group() as tg:
            await tg.start(orch.run)
            with anyio.fail_after(60):
                while len(orch.monitor.healthy("retriever")) < replicas:  # noqa: ASYNC110 - polled state
                    await anyio.sleep(0.05)
            latencies: list[float] = []

            async def one(i: int) -> None:
                payload = {
                    "query": f"what about the {TOPICS[i % len(TOPICS)]}?",
                    "k": 10,
                    "after_sequence": after,
                }
                t0 = time.perf_counter()
                await orch.call("storage", "retriever", payload, CallContext.with_timeout(60))
                latencies.append((time.perf_counter() - t0) * 1000)

            for i in range(replicas * 4):  # warm-up
                await one(i)
            latencies.clear()
            remaining = iter(range(searches))
            started = time.perf_counter()

            async def worker() -> None:
                for i in remaining:
                    await one(i)

            async with anyio.create_task_group() as load:
                for _ in range(inflight):
                    load.start_soon(worker)
            elapsed = time.perf_counter() - started
            tg.cancel_scope.cancel()
    return latencies, searches / elapsed


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def vault_bench(url: str, root: Path, *, records: int, searches: int, inflight: int) -> None:
    """Print vault search p50/p99 and searches/s with 1 and 2 Storage replicas."""
    env = {**VAULT_ENV, "NEURECTOMY_VAULT_KEK": base64.b64encode(os.urandom(32)).decode()}
    procs: list[subprocess.Popen[bytes]] = []
    rows = []
    after = 0
    try:
        for replicas in (1, 2):
            d = root / f"storage{replicas}"
            d.mkdir()
            procs.append(start_agents(d, "storage", url, expect=9, env=env, timeout_s=300))
            if replicas == 1:
                filled = time.perf_counter()
                after = anyio.run(_vault_fill, url, records)
                print(f"{records} records written in {time.perf_counter() - filled:.1f} s", file=sys.stderr)
            load = os.getloadavg()[0]
            latencies, rate = anyio.run(
                functools.partial(
                    _vault_search, url, replicas=replicas, searches=searches, inflight=inflight, after=after
                )
            )
            rows.append((replicas, _percentile(latencies, 0.5), _percentile(latencies, 0.99), rate, load))
    finally:
        for p in procs:
            stop_serve(p)
    print(f"\nvault search (text query, k=10, {records} records, {searches} searches, {inflight} in flight)")
    print(f"{'replicas':>8} {'p50 ms':>8} {'p99 ms':>8} {'search/s':>9} {'ratio':>6} {'load':>5}")
    for replicas, p50, p99, rate, load in rows:
        print(f"{replicas:>8} {p50:>8.1f} {p99:>8.1f} {rate:>9.1f} {rate / rows[0][3]:>6.2f} {load:>5.2f}")


def main() -> None:
    """Parse arguments, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="1 run of 100 requests")
    parser.add_argument("--records", type=int, default=2000, help="vault records written")
    parser.add_argument("--searches", type=int, default=300, help="vault searches per replica count")
    parser.add_argument("--skip-analysis", action="store_true", help="only the vault benchmark")
    parser.add_argument("--skip-vault", action="store_true", help="only the code-analyzer benchmark")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.requests, args.records, args.searches = 1, 100, 300, 100
    results: dict[int, list[float]] = {1: [], 2: []}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = EmbeddedNats(root / "nats")
        anyio.run(server.start)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            if not args.skip_vault:
                vault_bench(
                    server.url, root, records=args.records, searches=args.searches, inflight=args.inflight
                )
            for run in range(0 if args.skip_analysis else args.runs):
                for workers in (1, 2):
                    while len(procs) < workers:
                        d = root / f"w{run}-{len(procs)}"
                        d.mkdir()
                        procs.append(
                            start_agents(d, "analysis", server.url, "--agent", "code-analyzer", expect=1)
                        )
                    loads.append(os.getloadavg()[0])
                    rate, shares = anyio.run(
                        lambda w=workers: _load(
                            server.url, workers=w, requests=args.requests, inflight=args.inflight
                        )
                    )
                    results[workers].append(rate)
                    print(
                        f"run {run + 1}: {workers} worker(s): {rate:.1f} req/s; "
                        f"requests per worker so far: {shares}",
                        file=sys.stderr,
                    )
                for p in procs:
                    stop_serve(p)
                procs.clear()
        finally:
            for p in procs:
                stop_serve(p)
            anyio.run(server.stop)
    if args.skip_analysis:
        return
    one, two = statistics.median(results[1]), statistics.median(results[2])
    print(
        f"\ncode-analyzer (radon on a {len(SOURCE):,}-character module), {args.requests} requests, "
        f"{args.inflight} in flight, median of {args.runs} run(s)"
    )
    print(
        f"cores: {psutil.cpu_count(logical=True)}, 1-min load average before runs: "
        f"{', '.join(f'{x:.2f}' for x in loads)}"
    )
    print(f"{'workers':>8} {'req/s':>10} {'ratio':>7}")
    print(f"{1:>8} {one:>10.1f} {1.0:>7.2f}")
    print(f"{2:>8} {two:>10.1f} {two / one:>7.2f}")


if __name__ == "__main__":
    main()
