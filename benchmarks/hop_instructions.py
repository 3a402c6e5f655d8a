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

``--stages distributed`` counts the distributed shape instead (``neurectomy agent``: caller, agent and
nats-server in three processes, every message through nats-server): the benchmark's no-op agent
(``NoopAgent``, 64 workers) in one child and an orchestrator making the calls in another, each under
valgrind, nats-server in a third, not counted; each pair of runs (``--calls`` and a fifth of them) gives
two lines, ``dist-caller`` and ``dist-agent``: each process's instructions per call, counted separately.
The agent's count also holds its idle work (heartbeats, timers) over the longer run's extra seconds
(a few hundred instructions per call at most). ``--stages raw-distributed`` counts raw nats-py's pair the
same way (``benchmarks/orchestrator.py``'s raw responder, ``raw_responder``, in one child; a requester
making ``nc.request`` calls of its 100-byte payload at ``--inflight`` in flight in the other): lines
``raw-caller`` and ``raw-agent``, what the first two lines are compared with. ``--keep DIR`` keeps each
process's cachegrind output there (``<tree name>-<stage>-<role>-<calls>.cg``) for a per-function count of
the difference (``cg_diff`` of the fifth's file and the full one's, then ``cg_annotate``).

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
    .venv/bin/python benchmarks/hop_instructions.py --trees /tmp/main-copy . --stages distributed
    .venv/bin/python benchmarks/hop_instructions.py --trees . --stages distributed raw-distributed --keep cg/
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

STAGES = ("harness", "route", "call", "full", "distributed", "raw-distributed")
ROLES = ("nats", "agent", "caller", "raw-agent", "raw-caller")
"""The children of the ``distributed`` stages (``raw-``: the raw nats-py pair's)."""
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(tree: Path, stage: str, calls: int, warm: int, inflight: int, python: bool) -> tuple[int, str]:
    """Instructions the child executes for ``calls`` calls at ``stage`` in ``tree`` (one valgrind run).

    Also how its call path ran (``compiled`` or ``python``); ``python`` forces the latter.

    Raises:
        RuntimeError: valgrind's summary is missing (the child failed: its output is in the message).
    """
    argv = [
        *_valgrind(),
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
    env = _child_env(tree, python)
    done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, check=False)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(
            f"{tree} {stage}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    ran = "compiled" if "call path: compiled" in done.stdout else "python"
    return int(found.group(1).replace(",", "")), ran


def _child_env(tree: Path, python: bool) -> dict[str, str]:
    """The environment of a child running ``tree`` (as Python when ``python``, else as built)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if python:
        env["NEURECTOMY_COMPILED"] = "0"
    return env


def _valgrind(out: Path | None = None, keep: Path | None = None) -> list[str]:
    """valgrind counting instructions only; its summary in ``out`` (``None``: on stderr).

    ``keep``: where to write cachegrind's per-function counts (``None``: nowhere).
    """
    log = [f"--log-file={out}"] if out is not None else []
    cg = f"--cachegrind-out-file={keep or '/dev/null'}"
    return ["valgrind", "--tool=cachegrind", "--cache-sim=no", cg, *log]


def count_distributed(
    tree: Path,
    calls: int,
    warm: int,
    inflight: int,
    python: bool,
    *,
    raw: bool = False,
    keep: Path | None = None,
) -> tuple[int, int, str]:
    """Instructions of the caller's and of the agent's process for ``calls`` calls (the distributed shape).

    Also how their call path ran (``compiled`` or ``python``, the caller's; the agent's must agree).
    ``raw``: raw nats-py's requester and responder in place of the orchestrator and the agent. ``keep``:
    a folder for the two processes' cachegrind files (see the module docs).

    Raises:
        RuntimeError: A child failed or valgrind's summary is missing (the output is in the message).
    """
    prefix = "raw-" if raw else ""
    stage = f"{prefix}distributed"
    cg = {
        who: keep / f"{tree.name or 'tree'}-{stage}-{who}-{calls}.cg" if keep is not None else None
        for who in ("caller", "agent")
    }
    env = _child_env(tree, python)
    me = [sys.executable, str(Path(__file__).resolve())]
    with tempfile.TemporaryDirectory(prefix="hop-instructions-") as tmp:
        logs = Path(tmp)
        nats = subprocess.Popen(
            [*me, "--child-role", "nats"], cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        try:
            assert nats.stdout is not None
            url = nats.stdout.readline().decode().strip()
            if not url.startswith("nats://"):
                raise RuntimeError(f"{tree}: nats-server did not start (exit {nats.wait()})")
            with (logs / "agent.out").open("wb") as agent_out:
                agent = subprocess.Popen(
                    [*_valgrind(logs / "agent.vg", cg["agent"]), *me, "--child-role", f"{prefix}agent"]
                    + ["--nats-url", url],
                    cwd=tree,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=agent_out,
                    stderr=subprocess.STDOUT,
                )
            try:
                caller = subprocess.run(
                    [
                        *_valgrind(logs / "caller.vg", cg["caller"]),
                        *me,
                        "--child-role",
                        f"{prefix}caller",
                        "--nats-url",
                        url,
                        *("--calls", str(calls), "--warm", str(warm), "--inflight", str(inflight)),
                    ],
                    cwd=tree,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
            finally:
                assert agent.stdin is not None
                agent.stdin.close()  # the agent's child exits at the end of its stdin
                agent.wait(timeout=600)
        finally:
            assert nats.stdin is not None
            nats.stdin.close()
            nats.wait(timeout=60)
        agent_text = (logs / "agent.out").read_text(errors="replace")
        found = [_REFS.search((logs / f"{who}.vg").read_text()) for who in ("caller", "agent")]
        if caller.returncode != 0 or agent.returncode != 0 or None in found:
            raise RuntimeError(
                f"{tree} {stage}: caller exit {caller.returncode}, agent exit {agent.returncode}\n"
                f"{caller.stdout[-2000:]}\n{caller.stderr[-2000:]}\n{agent_text[-2000:]}"
            )
    ran = "compiled" if "call path: compiled" in caller.stdout else "python"
    if ("call path: compiled" in agent_text) != (ran == "compiled"):
        raise RuntimeError(f"{tree} {stage}: the caller's call path ran {ran}, the agent's did not")
    caller_refs, agent_refs = (int(f.group(1).replace(",", "")) for f in found if f is not None)
    return caller_refs, agent_refs, ran


def per_call(tree: Path, stage: str, calls: int, warm: int, inflight: int, python: bool) -> tuple[float, str]:
    """Instructions per call: the difference of ``calls`` and ``calls // 5`` calls, divided by theirs."""
    many, ran = count(tree, stage, calls, warm, inflight, python)
    few, _ = count(tree, stage, calls // 5, warm, inflight, python)
    return (many - few) / (calls - calls // 5), ran


def _tree_bench() -> Any:
    """The ``benchmarks/orchestrator.py`` of the tree on ``PYTHONPATH``, as a module."""
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
    return bench


def _print_call_path() -> None:
    try:
        from agents._compiled import status
    except ImportError:  # a tree from before the compiled call path
        return
    print("call path: compiled" if status().active else "call path: python", flush=True)


def distributed_child(role: str, url: str, calls: int, warm: int, inflight: int) -> None:
    """One process of the ``distributed`` stage: nats-server (prints its URL), the agent or the caller.

    nats-server and the agent run until their stdin ends; the caller makes ``warm`` then ``calls`` calls
    at ``inflight`` in flight and exits.
    """
    bench = _tree_bench()
    import anyio
    import nats
    import nats.errors

    from agents.actor import AgentRunner
    from agents.collective import spec_of
    from agents.eventloop import backend_options, loop_name
    from agents.messaging import Bus
    from orchestrator import CallContext, Orchestrator

    bench.configure_logging("json", "warning")

    async def until_stdin_ends() -> None:
        await anyio.to_thread.run_sync(sys.stdin.buffer.read)

    async def main() -> None:
        if role == "nats":
            with tempfile.TemporaryDirectory() as work:
                server = bench.EmbeddedNats(Path(work) / "nats")
                await server.start()
                try:
                    print(server.url, flush=True)
                    await until_stdin_ends()
                finally:
                    await server.stop()
            return
        if role == "raw-agent":
            nc = await bench.raw_responder(url, bench.RAW_SUBJECT, "count-raw-agent")
            try:
                await until_stdin_ends()
            finally:
                await nc.close()
            return
        if role == "raw-caller":
            nc = await nats.connect(url, name="count-raw-caller")
            try:
                with anyio.fail_after(300):  # the responder starts under valgrind: slowly
                    while True:
                        try:
                            await nc.request(bench.RAW_SUBJECT, bench.RAW_PAYLOAD, timeout=1)
                            break
                        except nats.errors.NoRespondersError:
                            await anyio.sleep(0.2)

                async def request() -> object:
                    return await nc.request(bench.RAW_SUBJECT, bench.RAW_PAYLOAD, timeout=60)

                await bench.throughput(request, warm, inflight)
                await bench.throughput(request, calls, inflight)
            finally:
                await nc.close()
            return
        async with await Bus.connect(url, name=f"count-{role}") as bus, anyio.create_task_group() as tg:
            if role == "agent":
                runner = AgentRunner(bus, bench.NoopAgent(), mailbox_size=1024, concurrency=64)
                await tg.start(runner.run)
                await until_stdin_ends()
            else:
                orch = Orchestrator(bus, specs=(spec_of(bench.NoopAgent),))
                await tg.start(orch.run)
                with anyio.fail_after(300):
                    while not orch.monitor.healthy(bench.NoopAgent.name):
                        await orch.monitor.next_beat()

                async def invoke() -> object:
                    return await orch.invoke(
                        bench.NoopAgent.name, bench.NOOP_PAYLOAD, CallContext.with_timeout(60)
                    )

                await bench.throughput(invoke, warm, inflight)
                await bench.throughput(invoke, calls, inflight)
            tg.cancel_scope.cancel()

    anyio.run(main, backend_options=backend_options(loop_name(None)))
    if role in ("agent", "caller", "raw-agent", "raw-caller"):
        _print_call_path()


def child(stage: str, calls: int, warm: int, inflight: int) -> None:
    """Run the ``serve`` shape of the tree on ``PYTHONPATH`` and make the calls (under valgrind)."""
    bench = _tree_bench()

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
    _print_call_path()


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
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the distributed stages' cachegrind files in this folder"
    )
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--child-role", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--nats-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_role:
        distributed_child(args.child_role, args.nats_url, args.calls, args.warm, args.inflight)
        return
    if args.child:
        child(args.child, args.calls, args.warm, args.inflight)
        return
    few = args.calls // 5
    print(
        f"instructions per invoke at {args.inflight} in flight (serve shape; distributed: per process)"
        f" (cachegrind; {args.calls} − {few} calls)"
    )
    for stage in args.stages:
        for tree in args.trees:
            for mode in args.modes:
                if stage in ("distributed", "raw-distributed"):
                    python, raw = mode == "python", stage == "raw-distributed"
                    if args.keep is not None:
                        args.keep.mkdir(parents=True, exist_ok=True)
                    many, few = (
                        count_distributed(
                            tree.resolve(), n, args.warm, args.inflight, python, raw=raw, keep=args.keep
                        )
                        for n in (args.calls, args.calls // 5)
                    )
                    names = ("raw-caller", "raw-agent") if raw else ("dist-caller", "dist-agent")
                    for i, who in enumerate(names):
                        n = (many[i] - few[i]) / (args.calls - args.calls // 5)
                        print(f"{who:11s} {n:>10,.0f}  {many[2]:8s}  {tree}", flush=True)
                    continue
                n, ran = per_call(
                    tree.resolve(), stage, args.calls, args.warm, args.inflight, mode == "python"
                )
                print(f"{stage:8s} {n:>10,.0f}  {ran:8s}  {tree}", flush=True)


if __name__ == "__main__":
    main()
