"""The ΣLANG RSU store under the codec: `DiskRSUStore` (SQLite) against `MemoryRSUStore`, side by side.

``PYTHONPATH=$PWD python -m benchmarks.sigma_store [--runs 5] [--prefill N] [--baseline DIR]``

The session corpus of ``benchmarks/sigmalang.py --max-turn-bytes 14000`` (~10 KB turns) is compressed
the way the REST batch route gathers it: each request holds the next turn of up to 16 conversations of
one tenant, compressed in one store transaction (as `bridges.sigma.SigmaBridge.compress_many` does).
``--prefill N`` first stores N random 2 KB RSUs per tenant, as a store that has served for a while
holds (a fresh store hides costs that grow with it). Reported per store: compression speed in MB/s of
this process's CPU time (median of ``--runs``; CPU time, as the machine is shared), the store's
CPU time per message by operation (µs), and the bytes the process wrote (``wchar`` of
``/proc/self/io``: SQLite's WAL and database writes, Linux) per input byte. ``--baseline DIR`` runs
the same in a subprocess with another checkout first on ``PYTHONPATH`` (e.g. the previous version)
and prints it alongside.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import sigmalang
from benchmarks.sigma_corpus import build_sessions
from sigmalang.chunking import rsu_id

BATCH_CONVERSATIONS = 16
_OPS = ("put_many", "acquire", "get_many", "release")


def batches(max_turn_bytes: int) -> list[list[tuple[str, str, bytes]]]:
    """``(tenant, stream, message)`` per request: the next turn of up to 16 conversations of a tenant."""
    sessions = build_sessions(7, tenants=4, sessions_per_tenant=32, turns=(4, 14), source="stdlib")
    short = [replace(s, turns=tuple(t for t in s.turns if len(t) <= max_turn_bytes)) for s in sessions]
    sessions = [s for s in short if s.turns]
    out: list[list[tuple[str, str, bytes]]] = []
    by_tenant: dict[str, list[Any]] = {}
    for s in sessions:
        by_tenant.setdefault(s.tenant, []).append(s)
    for tenant, group in by_tenant.items():
        for g in range(0, len(group), BATCH_CONVERSATIONS):
            ids = group[g : g + BATCH_CONVERSATIONS]
            for k in range(max(len(s.turns) for s in ids)):
                out.append([(tenant, s.session_id, s.turns[k]) for s in ids if k < len(s.turns)])
    return out


@contextlib.contextmanager
def timed_store(store: Any, spent: Counter[str]) -> Iterator[None]:
    """Add each store operation's thread CPU time to ``spent`` (the commit of a batch as ``commit``)."""
    originals: dict[str, Callable[..., Any]] = {op: getattr(store, op) for op in (*_OPS, "transaction")}

    def wrap(op: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t = time.thread_time()
            try:
                return originals[op](*args, **kwargs)
            finally:
                spent[op] += time.thread_time() - t

        return run

    @contextlib.contextmanager
    def transaction() -> Iterator[None]:
        with originals["transaction"]():
            yield
            t = time.thread_time()  # the block's end: what follows in __exit__ is the commit
        spent["commit"] += time.thread_time() - t

    for op in _OPS:
        setattr(store, op, wrap(op))
    store.transaction = transaction
    try:
        yield
    finally:
        for op in (*_OPS, "transaction"):
            delattr(store, op)  # back to the class's methods


def _written() -> int:
    """Bytes this process has passed to write calls (``wchar`` of ``/proc/self/io``; 0 elsewhere)."""
    try:
        with open("/proc/self/io") as io:
            return next(int(line.split()[1]) for line in io if line.startswith("wchar"))
    except OSError:
        return 0


def measure(kind: str, runs: int, prefill: int, max_turn_bytes: int) -> dict[str, Any]:
    """Median CPU MB/s and store µs per message of ``runs`` runs, a fresh store each."""
    work = batches(max_turn_bytes)
    total = sum(len(m) for b in work for _, _, m in b)
    messages = sum(len(b) for b in work)
    speeds: list[float] = []
    per_op: list[Counter[str]] = []
    written: list[int] = []
    tenants = sorted({t for b in work for t, _, _ in b})
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            store: Any = sigmalang.DiskRSUStore(Path(tmp) / "rsu.db") if kind == "disk" else None
            codec = sigmalang.SigmaCodec(store=store)
            for tenant in tenants:  # what a store that has served for a while holds
                filler = [os.urandom(2048) for _ in range(prefill)]
                with codec.store.transaction():
                    for i in range(0, len(filler), 500):
                        codec.store.put_many(tenant, [(rsu_id(f), f) for f in filler[i : i + 500]])
            spent: Counter[str] = Counter()
            with timed_store(codec.store, spent):
                t0, w0 = time.process_time(), _written()
                for batch in work:
                    with codec.store.transaction():
                        for tenant, stream, message in batch:
                            codec.compress(message, tenant=tenant, stream=stream)
                speeds.append(total / (time.process_time() - t0) / 1e6)
                written.append(_written() - w0)
            per_op.append(spent)
            codec.store.close()
    return {
        "mb_s": statistics.median(speeds),
        "us_per_message": {
            op: statistics.median(c[op] for c in per_op) / messages * 1e6 for op in (*_OPS, "commit")
        },
        "written_per_input_byte": statistics.median(written) / total,
        "messages": messages,
        "mb": total / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prefill", type=int, default=0, metavar="N", help="random RSUs per tenant first")
    parser.add_argument("--max-turn-bytes", type=int, default=14000)
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="also run with this checkout first")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a baseline child's output
    args = parser.parse_args()
    rows: list[tuple[str, str, dict[str, Any]]] = []
    if args.baseline is not None:
        # This file run with the other checkout's packages (its directory first on sys.path).
        argv = ["--json", "--runs", str(args.runs), "--prefill", str(args.prefill)]
        argv += ["--max-turn-bytes", str(args.max_turn_bytes)]
        run = f"runpy.run_path({__file__!r}, run_name='__main__')"
        code = f"import runpy, sys; sys.argv = {[__file__, *argv]!r}; {run}"
        child = subprocess.run(  # noqa: S603 - our own script
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONPATH": str(args.baseline)},
            cwd=args.baseline,
            capture_output=True,
            check=True,
        )
        rows += [(str(args.baseline), k, v) for k, v in json.loads(child.stdout).items()]
    mine = {kind: measure(kind, args.runs, args.prefill, args.max_turn_bytes) for kind in ("memory", "disk")}
    if args.json:
        print(json.dumps(mine))
        return
    rows += [("this checkout", k, v) for k, v in mine.items()]
    first = rows[-1][2]
    print(
        f"{first['messages']} messages, {first['mb']:.2f} MB, batches of <= {BATCH_CONVERSATIONS}; "
        f"prefill {args.prefill} RSUs per tenant; median of {args.runs} runs, CPU time"
    )
    header = "  ".join(f"{op:>9}" for op in (*_OPS, "commit"))
    print(f"{'code':<28} {'store':<7} {'MB/s':>6}  {header}  written/input")
    for code, kind, r in rows:
        us = "  ".join(f"{r['us_per_message'][op]:>7.1f}us" for op in (*_OPS, "commit"))
        print(f"{code[-28:]:<28} {kind:<7} {r['mb_s']:>6.1f}  {us}  {r['written_per_input_byte']:>12.2f}")


if __name__ == "__main__":
    main()
