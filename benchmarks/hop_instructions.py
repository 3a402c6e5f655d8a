"""Instructions per call of the ``serve``-shape hop, counted by valgrind's cachegrind (not a test).

The CPU time per call that ``benchmarks/orchestrator.py`` reports for the ``serve`` shape moves by ±20 %
from run to run on the shared 2-core VM (other processes, cache and frequency effects), more than most
single changes to the hop save. The number of instructions a call executes hardly moves (±1k of ~210k
between runs), so a change of 2 % shows: this counts them, for one or more source trees side by side.

Method: a child process of this script runs the ``serve`` shape of ``benchmarks/orchestrator.py`` (taken
from the tree measured: its ``start_serve_shape``, an orchestrator and a no-op agent in one process and
event loop, requests and answers handed over locally, a real nats-server) and makes ``--warm`` calls, then
N calls of ``Orchestrator.invoke`` at ``--inflight`` in flight, under ``valgrind --tool=cachegrind
--cache-sim=no`` (instruction counts only). The totals for N = ``--calls`` and N = ``--calls`` / 5 are
subtracted and divided by the difference in calls: start-up, imports and warm-up cancel out. nats-server
runs in its own process and is not counted (in this shape it sees no message per call).

Stages (``--stages``), each cumulative, the later part of the call replaced by a stub that answers at once,
which locates the instructions (valgrind cannot attribute them to Python functions):

- ``harness``: the calling loop and ``CallContext.with_timeout`` alone (``invoke`` not called);
- ``route``: ``Orchestrator.invoke`` → ``Router.invoke`` with ``call_for_output`` answering at once;
- ``call``: the call object as well (``AgentCall``, the request's JSON, the inbox, the ``End``'s
  validation) with ``Inbox.request`` answering at once with the ``End``'s bytes;
- ``full``: the whole call against the no-op agent.

The stubs replace functions and methods of modules that are compiled when built: count the stages before
``full`` with ``--modes python`` (a compiled caller does not see a replaced module attribute, and a compiled
class refuses a replaced method).

Each tree runs as built (with the call path's modules compiled by mypyc when its ``make setup`` built them,
``agents/_compiled.py``) and, with ``--modes built python``, also with ``NEURECTOMY_COMPILED=0``; each line
says which ran.

Instructions are not time (cache misses, branches), but in this pure-Python path they track it: use this
to decide whether a change lowers the work per call, and ``benchmarks/orchestrator.py`` (interleaved runs)
for what it does to calls/s.

    .venv/bin/python benchmarks/hop_instructions.py --trees /tmp/main-copy .   # about 1 min per tree
    .venv/bin/python benchmarks/hop_instructions.py --trees . --modes python built python built
    .venv/bin/python benchmarks/hop_instructions.py --trees . --stages harness route call full --modes python
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

STAGES = ("harness", "route", "call", "full")
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(tree: Path, stage: str, calls: int, warm: int, inflight: int, python: bool) -> tuple[int, str]:
    """Instructions the child executes for ``calls`` calls at ``stage`` in ``tree`` (one valgrind run).

    Also how its call path ran (``compiled`` or ``python``); ``python`` forces the latter.

    Raises:
        RuntimeError: valgrind's summary is missing (the child failed: its output is in the message).
    """
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if python:
        env["NEURECTOMY_COMPILED"] = "0"
    argv = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        stage,
        "--calls",
        str(calls),
        "--warm",
        str(warm),
        "--inflight",
        str(inflight),
    ]
    done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, check=False)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(
            f"{tree} {stage}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    ran = "compiled" if "call path: compiled" in done.stdout else "python"
    return int(found.group(1).replace(",", "")), ran


def per_call(tree: Path, stage: str, calls: int, warm: int, inflight: int, python: bool) -> tuple[float, str]:
    """Instructions per call: the difference of ``calls`` and ``calls // 5`` calls, divided by theirs."""
    many, ran = count(tree, stage, calls, warm, inflight, python)
    few, _ = count(tree, stage, calls // 5, warm, inflight, python)
    return (many - few) / (calls - calls // 5), ran


def child(stage: str, calls: int, warm: int, inflight: int) -> None:
    """Run the ``serve`` shape of the tree on ``PYTHONPATH`` and make the calls (under valgrind)."""
    # This file's folder must not shadow the `orchestrator` package: take the tree's benchmark by path.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    tree = Path(os.environ["PYTHONPATH"]).resolve()
    spec = importlib.util.spec_from_file_location(
        "bench_orchestrator", tree / "benchmarks" / "orchestrator.py"
    )
    assert spec is not None and spec.loader is not None
    bench: Any = importlib.util.module_from_spec(spec)
    sys.modules["bench_orchestrator"] = bench
    spec.loader.exec_module(bench)

    from contextlib import AsyncExitStack

    import anyio

    from agents._call import _wire_json
    from agents._message import new_message
    from agents.eventloop import backend_options, loop_name
    from orchestrator import CallContext

    bench.configure_logging("json", "warning")
    if stage == "route":
        import orchestrator._route as route

        async def answered(*_: object, **__: object) -> dict[str, Any]:
            return {"ok": True}

        route.call_for_output = answered  # type: ignore[assignment]
    elif stage == "call":
        import agents._inbox as inbox

        end = _wire_json("end", 0, "output", {"ok": True})

        async def request(self: Any, subject: str, data: bytes, **_: object) -> Any:
            return new_message(self._reply_subject, end, {}, "")

        inbox.Inbox.request = request  # type: ignore[method-assign]

    async def main() -> None:
        with tempfile.TemporaryDirectory() as work:
            server = bench.EmbeddedNats(Path(work) / "nats")
            await server.start()
            try:
                async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
                    serve = await bench.start_serve_shape(server.url, stack, tg)
                    orch, agent = serve.orch, bench.ServeNoopAgent.name
                    with anyio.fail_after(60):
                        while not orch.monitor.healthy(agent):
                            await orch.monitor.next_beat()

                    async def invoke() -> object:
                        ctx = CallContext.with_timeout(30)
                        if stage == "harness":
                            return ctx
                        return await orch.invoke(agent, bench.NOOP_PAYLOAD, ctx)

                    await bench.throughput(invoke, warm, inflight)
                    await bench.throughput(invoke, calls, inflight)
                    tg.cancel_scope.cancel()
            finally:
                await server.stop()

    anyio.run(main, backend_options=backend_options(loop_name(None)))
    try:
        from agents._compiled import status
    except ImportError:  # a tree from before the compiled call path
        return
    print("call path: compiled" if status().active else "call path: python")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trees", type=Path, nargs="+", default=[Path(".")], help="source trees to count")
    parser.add_argument(
        "--stages", nargs="+", choices=STAGES, default=["full"], help="how much of the call runs"
    )
    parser.add_argument(
        "--calls", type=int, default=5000, help="calls of the long run (the short one: a fifth)"
    )
    parser.add_argument("--warm", type=int, default=500, help="calls before counting starts")
    parser.add_argument("--inflight", type=int, default=64, help="calls in flight")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=("built", "python"),
        default=["built"],
        help="for each tree: as built, and/or with NEURECTOMY_COMPILED=0",
    )
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.calls, args.warm, args.inflight)
        return
    few = args.calls // 5
    print(
        f"instructions per serve-shape invoke at {args.inflight} in flight"
        f" (cachegrind; {args.calls} − {few} calls)"
    )
    for stage in args.stages:
        for tree in args.trees:
            for mode in args.modes:
                n, ran = per_call(
                    tree.resolve(), stage, args.calls, args.warm, args.inflight, mode == "python"
                )
                print(f"{stage:8s} {n:>10,.0f}  {ran:8s}  {tree}", flush=True)


if __name__ == "__main__":
    main()
