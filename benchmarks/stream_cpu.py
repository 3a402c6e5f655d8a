"""Service CPU per streamed token, two source trees side by side: interleaved rounds on two services.

Starts one ``neurectomy serve`` per tree (``PYTHONPATH`` set to the tree; each with its own nats-server,
only the Inference team), then runs rounds of ``--streams`` simultaneous ``POST /v1/generate`` SSE streams
of ``--max-tokens`` tokens on each service in turn (the order alternates between rounds), and measures
each service's CPU by part around each round from ``/proc/<pid>/task/*/schedstat`` (exact nanoseconds;
:class:`llm_path.CpuMeter`: event loop, engine, other threads, nats-server). The service's overhead is
everything but the engine, per streamed token. Each service's idle CPU (heartbeats, JetStream timers) is
measured for ``--idle-s`` before and after the rounds, and the per-token figure is also printed net of it.
Token events per token say how many tokens each SSE event carried (``generator.chunk_interval_s``): the
path behind the bridge runs once per event.

Both services run at the same time under the same load, so the comparison holds on a busy machine better
than two separate runs; CPU time is less sensitive to load than wall time, but a loaded machine decodes
slowly and then sends every token as its own event (see docs/ryot.md).

A tree may carry environment variables of its own: ``/path/to/tree@NAME=VALUE,NAME2=VALUE2``.

    git archive main | tar -x -C /tmp/main-tree
    python benchmarks/stream_cpu.py --trees /tmp/main-tree . --rounds 4 --streams 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

# benchmarks/sigmalang.py and benchmarks/vault.py would shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from llm_path import CpuMeter  # noqa: E402

from neurectomy.testing import start_serve, stop_serve  # noqa: E402


def overhead_s(used: dict[str, float]) -> float:
    """CPU seconds of everything but the engine."""
    return sum(v for k, v in used.items() if k != "engine")


def idle_ms_per_s(meter: CpuMeter, seconds: float) -> float:
    """The idle service's CPU (everything but the engine), milliseconds per second."""
    before, started = meter.sample(), time.perf_counter()
    time.sleep(seconds)
    return overhead_s(CpuMeter.delta(before, meter.sample())) / (time.perf_counter() - started) * 1e3


def stream(client: httpx.Client, prompt: str, max_tokens: int) -> tuple[int, int]:
    """One SSE generation: (completion tokens, token events)."""
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "stream": True}
    tokens = events = 0
    with client.stream("POST", "/v1/generate", json=body) as response:
        response.raise_for_status()
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
                events += event == "token"
            elif line.startswith("data: ") and event == "done":
                tokens = json.loads(line[6:])["usage"]["completion_tokens"]
    return tokens, events


def fan_out(client: httpx.Client, round_no: int, n: int, max_tokens: int) -> list[tuple[int, int]]:
    """``n`` simultaneous streams (distinct prompts): each one's (completion tokens, token events)."""
    results: list[tuple[int, int]] = []

    def one(i: int) -> None:
        results.append(
            stream(client, f"Write a long story about sailor {round_no}-{i} who finds a map.", max_tokens)
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trees", nargs=2, required=True, metavar="TREE", help="two source trees (A, B)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per service (order alternates)")
    parser.add_argument("--streams", type=int, default=1, help="simultaneous streams per round")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--idle-s", type=float, default=3.0)
    args = parser.parse_args()
    os.environ.setdefault("NEURECTOMY_LOG_LEVEL", "warning")
    os.environ["NEURECTOMY_TEAMS"] = '["inference"]'
    services: list[tuple[str, object, httpx.Client, CpuMeter]] = []
    try:
        for tree in args.trees:
            path, _, env_list = tree.partition("@")
            env = dict(item.split("=", 1) for item in env_list.split(",") if item)
            # PYTHONSAFEPATH: ``python -m`` would put the current directory first on sys.path, so a run
            # from a tree's root would start that tree's code for both services.
            proc, url = start_serve(
                Path(tempfile.mkdtemp(prefix="stream-cpu-")),
                env={"PYTHONPATH": path, "PYTHONSAFEPATH": "1", **env},
            )
            client = httpx.Client(base_url=url, timeout=300, limits=httpx.Limits(max_connections=32))
            services.append((tree, proc, client, CpuMeter(proc.pid)))
            stream(client, "Warm-up.", 8)
        idle = {tree: [idle_ms_per_s(meter, args.idle_s)] for tree, _, _, meter in services}
        rows: dict[str, list[tuple[dict[str, float], int, int, float]]] = {tree: [] for tree, *_ in services}
        for r in range(args.rounds):
            for tree, _, client, meter in services if r % 2 == 0 else services[::-1]:
                before, started = meter.sample(), time.perf_counter()
                results = fan_out(client, r, args.streams, args.max_tokens)
                wall = time.perf_counter() - started
                used = CpuMeter.delta(before, meter.sample())
                rows[tree].append((used, sum(t for t, _ in results), sum(e for _, e in results), wall))
        for tree, _, _, meter in services:
            idle[tree].append(idle_ms_per_s(meter, args.idle_s))
    finally:
        for _, proc, _, _ in services:
            stop_serve(proc)  # type: ignore[arg-type]
    print(
        f"{args.streams} stream(s) × {args.max_tokens} tokens, {args.rounds} interleaved rounds per tree; "
        f"load average {os.getloadavg()[0]:.2f} at the end (2 cores)"
    )
    for tree, runs in rows.items():
        idle_rate = statistics.mean(idle[tree])
        gross = [overhead_s(used) / tokens * 1e3 for used, tokens, _, _ in runs]
        net = [g - idle_rate * wall / tokens for g, (_, tokens, _, wall) in zip(gross, runs, strict=True)]
        parts = {
            k: statistics.median(used[k] / tokens * 1e3 for used, tokens, _, _ in runs) for k in runs[0][0]
        }
        print(
            f"{tree}: service CPU per token {statistics.median(gross):.3f} ms, net of idle "
            f"{statistics.median(net):.3f} ms (rounds {' '.join(f'{x:.3f}' for x in net)}); idle "
            f"{' / '.join(f'{x:.2f}' for x in idle[tree])} ms/s; "
            f"{statistics.median(e / t for _, t, e, _ in runs):.2f} token events per token; "
            f"{statistics.median(t / w for _, t, _, w in runs):.1f} tok/s; by part (ms per token): "
            + ", ".join(f"{k} {v:.3f}" for k, v in parts.items())
        )


if __name__ == "__main__":
    main()
