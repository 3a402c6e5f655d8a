"""What a pathological JSON body costs the other requests of ``neurectomy serve``.

A real ``neurectomy serve`` (its private nats-server, all agents, the API) per checkout; one client posts a
pathological body of about ``--size`` bytes (4 MiB, the API's ``max_body_bytes``, by default) to each kind
of route, while a probe thread asks ``GET /health`` every 5 ms. Per route and shape it records the POST's
status and time and the worst ``/health`` latency meanwhile (the API shares its event loop with the
agents, so this is the loop's stall as a client sees it). Shapes are the worst ones of
``benchmarks/input_limit.py``: nested empty lists, lists ``[0]`` and small objects, each in the route's
list field (or its agent input). Checkouts run interleaved (A B A B ...), each a fresh ``serve`` with that
checkout first on ``PYTHONPATH``; medians of the rounds and the ratio B/A::

    git archive main | tar -x -C /tmp/main-copy
    python benchmarks/pathological_bodies.py --trees /tmp/main-copy . --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and benchmarks/vault.py would shadow `vault`.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import httpx  # noqa: E402


def _items(unit: bytes, size: int, head: bytes, tail: bytes) -> bytes:
    count = (size - len(head) - len(tail)) // (len(unit) + 1)
    return head + b",".join([unit] * count) + tail


SHAPES = {"nested [[]]": b"[[]]", "lists [0]": b"[0]", 'objects {"a":1}': b'{"a":1}'}
"""Pathological list items (a Python container per 2-4 bytes)."""

ROUTES: dict[str, tuple[str, bytes, bytes]] = {
    "agents/aggregator": ("/v1/agents/aggregator", b'{"input":{"mode":"concat","items":[', b"]}}"),
    "chat/completions": ("/v1/chat/completions", b'{"model":"m","messages":[', b"]}"),
    "sigma/compress": ("/v1/sigma/compress", b'{"data":"aGk=","junk":[', b"]}"),
    "vault/records": ("/v1/vault/records", b'{"records":[', b"]}"),
    "agents/fetcher": ("/v1/agents/fetcher", b'{"input":{"id":"x","junk":[', b"]}}"),
}
"""Route label → path, the body before the items and after them."""


class Probe:
    """A thread asking ``GET /health`` every 5 ms, keeping each probe's start and end."""

    def __init__(self, url: str) -> None:
        self.url, self.probes, self._stop = url, list[tuple[float, float]](), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                client.get("/health")
                self.probes.append((started, time.perf_counter()))
                time.sleep(0.005)

    def worst_ms(self, start: float, end: float) -> float:
        """The longest probe overlapping ``[start, end]``, in ms, once a probe started after ``end`` ended."""
        while not any(s > end for s, _ in self.probes[-3:]):
            time.sleep(0.01)
        overlapping = [e - s for s, e in self.probes if e >= start and s <= end]
        return max(overlapping, default=0.0) * 1e3

    def stop(self) -> None:
        """End the thread."""
        self._stop.set()
        self._thread.join()


def one_tree(size: int, out: Path, only: str) -> None:
    """In a checkout's process: start ``serve``, post every route × shape, write the results to ``out``."""
    from neurectomy.testing import start_serve, stop_serve

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as state:
        proc, url = start_serve(Path(state))
        try:
            probe = Probe(url)
            with httpx.Client(base_url=url, timeout=120) as client:
                client.get("/health")
                for route, (path, head, tail) in ROUTES.items():
                    for shape, unit in SHAPES.items():
                        if only not in f"{route} | {shape}":
                            continue
                        body = _items(unit, size, head, tail)
                        time.sleep(0.2)
                        started = time.perf_counter()
                        answer = client.post(path, content=body, headers={"content-type": "application/json"})
                        ended = time.perf_counter()
                        results[f"{route} | {shape}"] = {
                            "status": answer.status_code,
                            "post_ms": (ended - started) * 1e3,
                            "health_worst_ms": probe.worst_ms(started, ended),
                        }
            probe.stop()
        finally:
            stop_serve(proc)
    out.write_text(json.dumps(results))


def compare(trees: list[Path], rounds: int, size: int, only: str) -> None:
    """Run every tree ``rounds`` times, interleaved; print medians and ratios."""
    runs: dict[Path, list[dict[str, dict[str, float]]]] = {t: [] for t in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for tree in trees:
                out = Path(tmp) / f"{r}-{len(runs[tree])}-{tree.name}.json"
                env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
                subprocess.run(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--one",
                        str(out),
                        "--size",
                        str(size),
                        "--only",
                        only,
                    ],
                    env=env,
                    check=True,
                    cwd=tree,
                )
                runs[tree].append(json.loads(out.read_text()))
                print(f"round {r + 1} {tree}: done (load {os.getloadavg()[0]:.1f})", flush=True)
    med: Callable[[Path, str, str], float] = lambda t, k, m: statistics.median(x[k][m] for x in runs[t])  # noqa: E731
    a, b = trees[0], trees[-1]
    print(f"\n{size} bytes; medians of {rounds} rounds; A={a} B={b}")
    head = f"{'status A/B':>10} {'POST ms A/B':>18} {'/health worst ms A/B':>22} {'B/A':>6}"
    print(f"{'route | shape':<40} {head}")
    for key in runs[a][0]:
        st = f"{int(med(a, key, 'status'))}/{int(med(b, key, 'status'))}"
        post = f"{med(a, key, 'post_ms'):.0f}/{med(b, key, 'post_ms'):.0f}"
        ha, hb = med(a, key, "health_worst_ms"), med(b, key, "health_worst_ms")
        print(f"{key:<40} {st:>10} {post:>18} {f'{ha:.0f}/{hb:.0f}':>22} {hb / max(ha, 0.1):>6.2f}")


def main() -> None:
    """Parse the arguments; run one tree (``--one``) or compare trees."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trees", nargs="+", type=Path, default=[Path(".")])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=4 * 1024 * 1024 - 4096)
    parser.add_argument("--only", default="", help="Only the cases whose 'route | shape' contains this.")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_tree(args.size, args.one, args.only)
    else:
        compare(args.trees, args.rounds, args.size, args.only)


if __name__ == "__main__":
    main()
