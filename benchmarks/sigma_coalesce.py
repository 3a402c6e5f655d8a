"""The event-loop CPU of `api.sigma._coalesce.CompressCoalescer` per message, its compressor call stubbed.

``PYTHONPATH=$PWD python -m benchmarks.sigma_coalesce [--rounds 5] [--messages 2000] [--baseline DIR]``

What ``POST /v1/sigma/compress`` spends in the coalescer around its compressor call, without the HTTP
stack, NATS, the agent and the codec: the orchestrator is a stub whose ``call`` answers at once (a
report and a 1,000-byte frame per message, the compressor's attachment layout). Three ways, CPU time of
this process's (only) thread per message, on the event loop ``serve`` runs (``agents.eventloop``:
uvloop when installed):

* **direct**: `api.sigma._coalesce.compress_messages` for one message (the call the coalescer makes);
* **lone**: ``coalescer.compress`` one message at a time (each lane idle when it arrives: one turn per
  request, sequential);
* **grouped**: a message alone, then ``--members`` messages of the same lane that arrive while its
  call is held in flight (sent as one group when it ends), per message; includes a task per message
  (a request's own task in the service).

``--baseline DIR`` runs the same with another checkout's packages (e.g. ``git archive main``) in a
child process, alternating the two trees round by round (baseline, this, baseline, ...), and prints the
medians side by side with their ratio. Timing goals live here, not in the tests
(``tests/api/test_sigma_coalesce.py`` checks the behaviour).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from agents.compression.wire import pack_parts, unpack_parts
from agents.eventloop import backend_options, loop_name
from agents.protocol import Attached
from api.sigma._coalesce import CompressCoalescer, compress_messages
from orchestrator import CallContext

WAYS = ("direct", "lone", "grouped")
MESSAGE = bytes(range(256)) * 40
"""One ~10 KB turn (10,240 bytes)."""
REPORT = b'{"bytes_in":10240,"bytes_out":1000,"ratio":10.24}'
FRAME = b"f" * 1000


class _Stub:
    """An orchestrator whose compressor answers at once; held while ``gate`` is set and not open."""

    def __init__(self) -> None:
        self.gate: anyio.Event | None = None

    async def call(self, team: str, agent: str, payload: Attached, ctx: CallContext, **_: Any) -> Attached:
        n = len(unpack_parts(payload.attachment, 1000))
        if self.gate is not None:
            await self.gate.wait()
        return Attached({"count": n}, pack_parts([b"[" + b",".join([REPORT] * n) + b"]", *[FRAME] * n]))


def _context() -> CallContext:
    return CallContext.with_timeout(30.0, tenant="bench")


async def _round(way: str, messages: int, members: int) -> float:
    """CPU µs per message of one round of ``way``."""
    stub = _Stub()
    async with CompressCoalescer(stub) as coalescer:  # type: ignore[arg-type]

        async def one() -> None:
            await coalescer.compress(MESSAGE, _context(), stream="s", level=None, dedup=True)

        started = time.thread_time()
        if way == "direct":
            for _ in range(messages):
                await compress_messages(stub, [MESSAGE], ["s"], _context(), level=None, dedup=True)  # type: ignore[arg-type]
        elif way == "lone":
            for _ in range(messages):
                await one()
        else:
            for _ in range(messages // (members + 1)):
                stub.gate = anyio.Event()
                async with anyio.create_task_group() as tg:
                    for _ in range(members + 1):
                        tg.start_soon(one)
                    # The first call is held: the rest join its lane's group (each a checkpoint away).
                    while coalescer.pending < members:  # noqa: ASYNC110 - the coalescer has no event for it
                        await anyio.lowlevel.checkpoint()
                    gate, stub.gate = stub.gate, None
                    gate.set()
            messages = messages // (members + 1) * (members + 1)
        return (time.thread_time() - started) / messages * 1e6


def measure(rounds: int, messages: int, members: int) -> dict[str, list[float]]:
    """µs per message of each way, one value per round (ways interleaved within a round)."""
    out: dict[str, list[float]] = {way: [] for way in WAYS}

    async def run() -> None:
        await _round("lone", 200, members)  # warm-up
        for _ in range(rounds):
            for way in WAYS:
                out[way].append(await _round(way, messages, members))

    anyio.run(run, backend_options=backend_options(loop_name(None)))  # the service's loop
    return out


def _child(tree: Path, messages: int, members: int) -> dict[str, list[float]]:
    """One round in a child process with ``tree``'s packages first on the path."""
    argv = [__file__, "--json", "--rounds", "1", "--messages", str(messages), "--members", str(members)]
    code = f"import runpy, sys; sys.argv = {argv!r}; runpy.run_path({__file__!r}, run_name='__main__')"
    done = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree,
        capture_output=True,
        check=True,
    )
    result: dict[str, list[float]] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000, help="messages per way and round")
    parser.add_argument("--members", type=int, default=8, help="messages joining a held call (grouped)")
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="also this checkout, alternating")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a child's output
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.rounds, args.messages, args.members)))
        return
    if args.baseline is None:
        trees: dict[str, dict[str, list[float]]] = {
            "this checkout": measure(args.rounds, args.messages, args.members)
        }
    else:
        here = Path(__file__).resolve().parent.parent
        trees = {str(args.baseline): {w: [] for w in WAYS}, "this checkout": {w: [] for w in WAYS}}
        for _ in range(args.rounds):
            for name, tree in ((str(args.baseline), args.baseline), ("this checkout", here)):
                for way, values in _child(tree, args.messages, args.members).items():
                    trees[name][way] += values
    print(f"CPU µs per message, median of {args.rounds} rounds of {args.messages} (min-max)")
    print(f"{'code':<32} " + "  ".join(f"{way:>20}" for way in WAYS))
    for name, got in trees.items():
        cells = [f"{statistics.median(v):7.1f} ({min(v):.0f}-{max(v):.0f})" for v in got.values()]
        print(f"{name:<32} " + "  ".join(f"{c:>20}" for c in cells))
    if len(trees) == 2:
        base, mine = trees.values()
        ratios = [statistics.median(mine[w]) / statistics.median(base[w]) for w in WAYS]
        print(f"{'this ÷ baseline':<32} " + "  ".join(f"{r:>20.2f}" for r in ratios))


if __name__ == "__main__":
    main()
