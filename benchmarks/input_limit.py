"""What an agent's ``max_input_bytes`` spares the event loop: decode times, and a refusal before and after.

``--decode`` (default) times ``pydantic_core.from_json``, the decode the agents' accept path runs on the
event loop, on pathological JSON of each ``--sizes`` (bytes): one long string, an escape-dense string,
lists of numbers, of small objects, of empty objects and of (nested) empty lists. The heap is frozen
first (``gc.freeze()``, as ``neurectomy serve`` does after start-up); each figure is the median and the
worst of ``--repeat`` decodes, in ms, and the last column the worst shape's cost per byte. This is what
:data:`agents.limits.DEFAULT_MAX_INPUT_BYTES` was chosen from.

``--gc-paused`` times the same decodes with the garbage collector on and paused around them
(:func:`agents._decode.from_json`, what the accept path and the API run), interleaved, medians in ms.

``--refusal --trees A B --rounds R`` sends an agent (a real ``AgentRunner`` over a real nats-server,
with the default limit and a pydantic input model that refuses unknown fields, like the roster's)
``--calls`` inputs of the NATS max payload, a list of small objects in a field it does not know, and
records how long the refusal takes and the worst lag of a sampler task (1 ms sleeps) on the agent's
event loop meanwhile; each run is a fresh process with that checkout first on ``PYTHONPATH``, A and B
interleaved (A B A B ...), medians of the runs and the ratio B/A::

    git archive main | tar -x -C /tmp/main-copy
    python benchmarks/input_limit.py --refusal --trees /tmp/main-copy . --rounds 5
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and benchmarks/vault.py would shadow `vault`.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import anyio  # noqa: E402
import pydantic_core  # noqa: E402


def _repeat(unit: bytes, size: int, head: bytes = b'{"x":[', tail: bytes = b"]}") -> bytes:
    """``head`` + ``unit,unit,...`` + ``tail``, about ``size`` bytes."""
    count = (size - len(head) - len(tail)) // (len(unit) + 1)
    return head + b",".join([unit] * count) + tail


SHAPES: dict[str, Callable[[int], bytes]] = {
    "ascii text": lambda n: b'{"text":"' + b"x" * (n - 11) + b'"}',
    "escaped text": lambda n: b'{"text":"' + b"\\n" * ((n - 11) // 2) + b'"}',
    "numbers 1.5": lambda n: _repeat(b"1.5", n),
    "integers 0": lambda n: _repeat(b"0", n),
    'objects {"a":1}': lambda n: _repeat(b'{"a":1}', n),
    "empty objects": lambda n: _repeat(b"{}", n),
    "empty lists": lambda n: _repeat(b"[]", n),
    "lists [0]": lambda n: _repeat(b"[0]", n),
    "nested [[[]]]": lambda n: _repeat(b"[[[]]]", n),
}
"""Pathological JSON inputs of about ``n`` bytes."""


def paused_times(sizes: list[int], repeat: int) -> None:
    """Print the median decode time of every shape at every size, collector on → paused (interleaved)."""
    from agents._decode import from_json  # noqa: PLC0415

    gc.collect()
    gc.freeze()
    print(f"{'shape':<18} " + " ".join(f"{f'{s // 1024} KiB on → paused ms':>24}" for s in sizes))
    for label, shape in SHAPES.items():
        cells = []
        for size in sizes:
            body = shape(size)
            on: list[float] = []
            paused: list[float] = []
            for _ in range(repeat):
                for decode, times in ((pydantic_core.from_json, on), (from_json, paused)):
                    started = time.perf_counter()
                    decode(body)
                    times.append(time.perf_counter() - started)
            cells.append(f"{statistics.median(on) * 1e3:.1f} → {statistics.median(paused) * 1e3:.1f}")
        print(f"{label:<18} " + " ".join(f"{c:>24}" for c in cells), flush=True)


def decode_times(sizes: list[int], repeat: int) -> None:
    """Print the median and worst decode time of every shape at every size."""
    gc.collect()
    gc.freeze()
    print(f"{'shape':<18} " + " ".join(f"{f'{s // 1024} KiB med/max ms':>22}" for s in sizes))
    worst = dict.fromkeys(sizes, 0.0)
    for label, shape in SHAPES.items():
        cells = []
        for size in sizes:
            body = shape(size)
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                pydantic_core.from_json(body)
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            worst[size] = max(worst[size], median)
            cells.append(f"{median * 1e3:>10.1f} / {max(times) * 1e3:>8.1f}")
        print(f"{label:<18} " + " ".join(f"{c:>22}" for c in cells), flush=True)
    row = " ".join(f"{f'{worst[s] * 1e3:.1f} ms, {worst[s] * 1e9 / s:.0f} ns/B':>22}" for s in sizes)
    print(f"{'worst median':<18} {row}")


async def refusals(calls: int) -> None:
    """One run of ``--refusal``: JSON lines ``{"refusal_s", "worst_lag_s"}``, one per call."""
    from pydantic import BaseModel, ConfigDict  # noqa: PLC0415

    from agents import Agent, AgentRunner, Bus, Call  # noqa: PLC0415
    from agents.limits import ENVELOPE_RESERVE_BYTES, NATS_MAX_PAYLOAD_BYTES  # noqa: PLC0415
    from agents.protocol import Reply, agent_subject  # noqa: PLC0415
    from neurectomy.server.natsserver import EmbeddedNats  # noqa: PLC0415
    from orchestrator import CallContext  # noqa: PLC0415

    class TextInput(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        text: str

    class Echo(Agent):
        name = "bench-echo"
        team = "analysis"
        description = "Echoes its text."
        input_model = TextInput

        async def handle(self, call: Call) -> Mapping[str, Any]:
            return {"text": call.input.text}

    body = _repeat(b'{"a":1}', NATS_MAX_PAYLOAD_BYTES - ENVELOPE_RESERVE_BYTES, head=b'{"text":"a","x":[')
    pydantic_core.from_json(body)  # well-formed
    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp))
        await server.start()
        try:
            async with await Bus.connect(server.url, name="bench") as bus, anyio.create_task_group() as tg:
                await tg.start(AgentRunner(bus, Echo()).run)
                subject = agent_subject(Echo.team, Echo.name)
                for _ in range(calls):
                    lags: list[float] = []
                    done = anyio.Event()

                    async def sample(lags: list[float] = lags, done: anyio.Event = done) -> None:
                        while not done.is_set():
                            before = time.perf_counter()
                            await anyio.sleep(0.001)
                            lags.append(time.perf_counter() - before - 0.001)

                    tg.start_soon(sample)
                    await anyio.sleep(0.01)
                    headers = CallContext.with_timeout(120).headers()
                    started = time.perf_counter()
                    async with bus.inbox() as box:
                        reply = await box.request(subject, body, headers=headers, timeout_s=120)
                        refused = bool(reply.headers and reply.headers.get("Nats-Service-Error-Code"))
                        if not refused and "type" not in pydantic_core.from_json(reply.data):
                            assert Reply.model_validate_json(reply.data).ok
                            await box.next(120)  # accepted: the Error follows (else it was the reply)
                    elapsed = time.perf_counter() - started
                    done.set()
                    await anyio.sleep(0.01)
                    print(json.dumps({"refusal_s": elapsed, "worst_lag_s": max(lags)}), flush=True)
                tg.cancel_scope.cancel()
        finally:
            await server.stop()


def compare(trees: list[str], rounds: int, calls: int) -> None:
    """Run ``--refusal`` against each tree, interleaved, and print medians and ratios."""
    figures: dict[str, dict[str, list[float]]] = {t: {"refusal_s": [], "worst_lag_s": []} for t in trees}
    for r in range(rounds):
        for tree in trees:
            env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
            cmd = [sys.executable, __file__, "--refusal-run", "--calls", str(calls)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                if line.startswith("{"):
                    for key, value in json.loads(line).items():
                        figures[tree][key].append(value)
            print(f"round {r + 1}/{rounds} {tree} done", file=sys.stderr, flush=True)
    a, b = trees
    print(
        f"{'figure (ms)':<22} {a[-16:]:>16} {b[-16:]:>16} {'B/A':>8}   (medians of {rounds} x {calls} calls)"
    )
    for key in ("refusal_s", "worst_lag_s"):
        ma, mb = (statistics.median(figures[t][key]) * 1e3 for t in trees)
        print(f"{key:<22} {ma:>16.1f} {mb:>16.1f} {mb / ma:>8.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64 << 10, 128 << 10, 256 << 10, 1 << 20])
    parser.add_argument("--repeat", type=int, default=9, help="Decodes per shape and size.")
    parser.add_argument("--refusal", action="store_true", help="Refusals of a max-payload input, A/B.")
    parser.add_argument(
        "--gc-paused", action="store_true", help="Decodes with the collector on and paused (agents._decode)."
    )
    parser.add_argument("--refusal-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trees", nargs=2, metavar=("A", "B"), help="Checkouts to compare (--refusal).")
    parser.add_argument("--rounds", type=int, default=5, help="Runs per tree (--refusal).")
    parser.add_argument("--calls", type=int, default=3, help="Max-payload inputs per run (--refusal).")
    args = parser.parse_args()
    if args.refusal_run:
        from agents.eventloop import backend_options  # the event loop ``serve`` runs

        anyio.run(refusals, args.calls, backend_options=backend_options())
    elif args.refusal:
        if not args.trees:
            parser.error("--refusal needs --trees A B")
        compare(args.trees, args.rounds, args.calls)
    elif args.gc_paused:
        paused_times(args.sizes, args.repeat)
    else:
        decode_times(args.sizes, args.repeat)
