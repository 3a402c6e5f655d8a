"""Where the service's CPU per streamed token goes: per token, per token event or per request.

Starts one ``neurectomy serve`` (only the Inference team) per ``generator.chunk_interval_s`` in
``--intervals`` and runs ``--rounds`` rounds of ``--requests`` sequential ``POST /v1/generate`` SSE
streams of ``--max-tokens`` tokens on it. Around each round it reads, for the serve process's main thread
(the event loop) and for nats-server (all its threads), the CPU time and the number of times the thread
was put on a CPU (``/proc/.../schedstat`` fields 1 and 3: exact nanoseconds and timeslices, i.e.
wake-ups plus preemptions) and its voluntary / involuntary context switches (``/proc/.../status``), each
net of the same thread's idle rate measured for ``--idle-s`` before the rounds.

The chunk interval changes how many token events (SSE events, NATS messages, agent chunks) carry the
same tokens, and nothing else, so a least-squares line of net CPU per token against token events per
token over the intervals splits the cost: its slope is the cost of one token event, its intercept the
cost that does not depend on the events (per token, plus each request's fixed cost spread over its
tokens). An intercept near ``fixed_per_request / max_tokens`` means nothing on that thread is paid per
token.

    python benchmarks/stream_cost_split.py --intervals 0 0.04 0.2 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/sigmalang.py and benchmarks/vault.py would shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import psutil  # noqa: E402
from stream_cpu import stream  # noqa: E402

from neurectomy.testing import start_serve, stop_serve  # noqa: E402

Counts = dict[str, float]
"""``cpu_ms``, ``slices``, ``vcs`` (voluntary context switches), ``nvcs`` (involuntary)."""


def thread_counts(pid: int, tid: int) -> Counts:
    """CPU milliseconds, timeslices and context switches of one thread so far."""
    base = f"/proc/{pid}/task/{tid}"
    run_ns, _, slices = (int(x) for x in Path(f"{base}/schedstat").read_text().split())
    status = dict(line.split(":\t", 1) for line in Path(f"{base}/status").read_text().splitlines())
    return {
        "cpu_ms": run_ns / 1e6,
        "slices": slices,
        "vcs": int(status["voluntary_ctxt_switches"]),
        "nvcs": int(status["nonvoluntary_ctxt_switches"]),
    }


def sample(pid: int) -> dict[str, Counts]:
    """Counts of the serve process's main thread (``loop``) and of nats-server (all threads)."""
    out = {"loop": thread_counts(pid, pid)}
    nats = dict.fromkeys(("cpu_ms", "slices", "vcs", "nvcs"), 0.0)
    for child in psutil.Process(pid).children(recursive=True):
        if "nats" in child.name():
            for tid in os.listdir(f"/proc/{child.pid}/task"):
                for k, v in thread_counts(child.pid, int(tid)).items():
                    nats[k] += v
    out["nats"] = nats
    return out


def delta(before: dict[str, Counts], after: dict[str, Counts]) -> dict[str, Counts]:
    """``after - before`` for every part and count."""
    return {part: {k: after[part][k] - before[part][k] for k in after[part]} for part in after}


def measure(interval: float, args: argparse.Namespace) -> list[tuple[float, dict[str, Counts]]]:
    """Rounds on one service: (token events per token, net counts per token by part) each."""
    proc, url = start_serve(
        Path(tempfile.mkdtemp(prefix="stream-split-")),
        env={"PYTHONSAFEPATH": "1", "NEURECTOMY_GENERATOR__CHUNK_INTERVAL_S": str(interval)},
    )
    rows = []
    try:
        client = httpx.Client(base_url=url, timeout=300)
        stream(client, "Warm-up.", 8)
        before, started = sample(proc.pid), time.perf_counter()
        time.sleep(args.idle_s)
        idle = delta(before, sample(proc.pid))
        idle_s = time.perf_counter() - started
        for r in range(args.rounds):
            before, started = sample(proc.pid), time.perf_counter()
            results = [
                stream(client, f"Write a long story about sailor {r}-{i} who finds a map.", args.max_tokens)
                for i in range(args.requests)
            ]
            wall = time.perf_counter() - started
            used = delta(before, sample(proc.pid))
            tokens = sum(t for t, _ in results)
            events = sum(e for _, e in results)
            net = {
                part: {k: (v - idle[part][k] * wall / idle_s) / tokens for k, v in counts.items()}
                for part, counts in used.items()
            }
            rows.append((events / tokens, net))
            print(
                f"interval {interval:g} s, round {r}: {tokens} tokens, {events} token events, "
                f"{tokens / wall:.0f} tok/s; per token, net of idle: "
                + "; ".join(
                    f"{part} {c['cpu_ms']:.3f} ms, {c['slices']:.2f} slices, "
                    f"{c['vcs']:.2f} vcs, {c['nvcs']:.2f} nvcs"
                    for part, c in net.items()
                )
            )
    finally:
        stop_serve(proc)
    return rows


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through ``(x, y)`` points: (slope, intercept)."""
    slope, intercept = statistics.linear_regression([x for x, _ in points], [y for _, y in points])
    return slope, intercept


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--intervals", type=float, nargs="+", default=[0.0, 0.04, 0.2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=3, help="sequential streams per round")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--idle-s", type=float, default=2.0)
    args = parser.parse_args()
    if len(set(args.intervals)) < 2:
        parser.error("--intervals needs at least two distinct values")
    os.environ.setdefault("NEURECTOMY_LOG_LEVEL", "warning")
    os.environ["NEURECTOMY_TEAMS"] = '["inference"]'
    rows = [row for interval in args.intervals for row in measure(interval, args)]
    print(f"load average {os.getloadavg()[0]:.2f} at the end (2 cores)")
    for part in ("loop", "nats"):
        for key, unit in (("cpu_ms", "ms"), ("slices", "slices"), ("vcs", "vcs"), ("nvcs", "nvcs")):
            slope, intercept = fit([(ev, net[part][key]) for ev, net in rows])
            print(
                f"{part} {key}: {slope:.3f} {unit} per token event + {intercept:.3f} {unit} per token "
                f"({intercept * args.max_tokens:.2f} per {args.max_tokens}-token request if all fixed)"
            )


if __name__ == "__main__":
    main()
