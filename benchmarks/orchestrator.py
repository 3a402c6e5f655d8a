"""The orchestrator's own cost: one hop, selection, plan steps — next to raw nats-py (not a test).

Starts the real nats-server (``neurectomy.server.natsserver.EmbeddedNats``, temp dir) and two child processes
of this script: ``--serve-agent`` (an :class:`~agents.actor.AgentRunner` of a no-op agent, mailbox 1,024,
concurrency 64; plus the Storage team's ``embedder`` over a throw-away ΣVAULT unless ``--no-embedder``)
and ``--serve-raw`` (a bare nats-py responder replying 100 bytes). This process is the caller.

Sections (each printed with targets from the issue and pass/miss):

1. **Hop.** ``Orchestrator.invoke("noop")`` with the heartbeat monitor running (so the call goes to the
   instance's direct subject; a call that ends at once is answered by its ``End`` alone, in the accept's
   place: two messages, as raw request/reply) versus raw
   ``nc.request`` of 100 bytes. Latency p50/p99 and requests/s at 1 in flight (``--requests``
   sequential calls, in blocks of 250 alternating raw/orchestrator), requests/s at ``--inflight`` in
   flight (``--throughput-requests`` calls from that many workers in an anyio task group, ABBA order).
   Also the CPU time (user + system, from ``psutil``) per request of the caller, the responder and
   nats-server, which shows which process limits the throughput on a small machine.

   **1b. The ``serve`` shape**, in the same blocks (four sides alternating): ``neurectomy serve`` runs the
   orchestrator and the agents in one process and event loop, so this process also runs a no-op agent
   (``noop-serve``) and an orchestrator for it, each on its own :class:`~agents.messaging.Bus` (as
   ``serve`` has one per NATS role) with ``local_replies`` on both and ``local_requests`` on the
   orchestrator's, set as ``neurectomy/server/runtime.py`` sets them: request and answer skip nats-server
   (checked on a probe call through the local-delivery counters; the benchmark stops if they do not).
   Its raw baseline is a nats-py requester and responder in this process (two connections, one loop).
   The caller's process CPU includes the responder's here.
2. **Selection** over the roster (``agents.roster.ROSTER``; while that cannot be imported, every team
   package that can): ``select(agent=...)``, ``select(capability=...)``, and lexical goal selection
   (``Orchestrator(..., semantic=False)``). Semantic goal selection no longer goes over NATS: it is the
   planner's in-process intent router, measured by ``benchmarks/planning.py``; the rows marked
   ``semantic (embedder)`` appear only for a roster that still lists an ``embedder`` (``ROSTER`` does
   not). The selecting orchestrator does not run the heartbeat monitor, so every roster agent is a
   candidate (with the monitor running, agents without a live instance are left out).
   ``--embedder-torch-threads 1`` pins the embedder's torch to one thread: on this 2-core machine with
   another busy process, torch's default (one thread per core) made one short query ~490 ms instead of
   ~20 ms.
3. **Plan steps.** A 5-step linear plan of no-op steps (each referencing the previous step's output)
   with ``run_plan`` versus 5 sequential ``invoke`` calls, alternating; overhead per step =
   (plan − 5 × invoke) / 5. Also the plan runner alone (its router replaced by one that answers at
   once, no NATS): the CPU cost of the plan machinery per step.

Everything is repeated ``--runs`` times; the tables show medians over runs. The machine's other load
shows up directly in these numbers: run it on an idle machine, and compare ratios more than absolutes.

    .venv/bin/python benchmarks/orchestrator.py --quick          # smoke run, under a minute
    .venv/bin/python benchmarks/orchestrator.py --runs 3 --json orchestrator.json
    .venv/bin/python benchmarks/orchestrator.py --profile caller # cProfile of 2,000 sequential invokes

``--hop-only`` runs section 1 alone (a quick A/B of the hop: about 20 s per run, both shapes).

``--loop uvloop|asyncio`` runs every process here (caller, agent, raw responder) on that event loop;
the default is the service's (``agents.eventloop``: uvloop when installed, or ``$NEURECTOMY_EVENT_LOOP``).

``--traced`` records OpenTelemetry spans in the caller and the agent (as ``neurectomy serve`` and
``neurectomy agent`` do, no exporter): compare a run with and without it for the per-hop cost of tracing.

``--profile caller`` profiles this process (orchestrator side; agent in its child process);
``--profile both`` runs the agent in this process too, so both sides of the hop are in the profile;
``--profile caller64`` profiles 10,000 invokes at ``--inflight`` in flight; ``--profile agent64`` profiles
the agent side of 10,000 invokes at ``--inflight`` in flight (this process is the agent, a child the caller);
``--profile plan`` profiles 400 five-step plans (caller side); ``--profile serve64`` profiles 10,000 invokes
at ``--inflight`` in flight in the ``serve`` shape (both sides in this process, local requests and replies).
Each prints the top ``--profile-top`` (25) functions by cumulative time and by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import importlib
import json
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

# Run as a script, this file's folder comes first on sys.path and this file would shadow `orchestrator`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import anyio  # noqa: E402
import nats  # noqa: E402
import nats.errors  # noqa: E402
import psutil  # noqa: E402
from anyio.abc import TaskGroup  # noqa: E402
from opentelemetry import context as otel_context  # noqa: E402
from opentelemetry import trace  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from agents import tracing  # noqa: E402
from agents.actor import Agent, AgentRunner, Call  # noqa: E402
from agents.collective import AgentSpec, spec_of  # noqa: E402
from agents.eventloop import ENV_VAR as ENV_LOOP  # noqa: E402
from agents.eventloop import backend_options, loop_name  # noqa: E402
from agents.messaging import Bus  # noqa: E402
from agents.plans import Plan, parse_plan  # noqa: E402
from neurectomy.server.logs import configure_logging  # noqa: E402
from neurectomy.server.natsserver import EmbeddedNats  # noqa: E402
from orchestrator import CallContext, Invocation, Orchestrator  # noqa: E402
from orchestrator._plans import PlanRunner  # noqa: E402

RAW_SUBJECT = "bench.raw.echo"
SERVE_RAW_SUBJECT = "bench.raw.serve"  # the raw responder in this process (its own subject)
PAYLOAD_BYTES = 100
RAW_PAYLOAD = b"x" * PAYLOAD_BYTES
NOOP_PAYLOAD = {"pad": "x" * (PAYLOAD_BYTES - 11)}  # 100 bytes as JSON, like the raw request
PLAN_STEPS = 5
SEQ_BLOCK = 250
PROFILE_CALLS = 2000
FINDINGS = "raw nats-py here (FINDINGS.md): 2,592 req/s sequential (p50 355 µs, p99 600 µs), 37,800 req/s @64"

GOALS = [
    "summarize this article",
    "find the keywords",
    "translate to French",
    "store this document",
    "search my notes for the invoice",
    "vote on the best answer",
    "what is the sentiment of this review",
    "detect the language of this text",
    "compress this long conversation",
    "decompress the archived payload",
    "extract the email addresses and dates",
    "compare these two paragraphs for similarity",
    "compute the median and outliers of these numbers",
    "check this answer for hallucinations",
    "answer my question from my documents",
    "format the result as a markdown table",
    "rotate the encryption key",
    "take a snapshot of the vault",
    "review this python function for complexity",
    "merge the answers of several agents",
]

_PR_SET_PDEATHSIG = 1


class NoopAgent(Agent):
    """Does nothing: the hop's cost alone."""

    name = "noop"
    team = "bench"
    description = "Returns at once without doing anything (benchmark)."
    capabilities = ("noop",)
    text_input = None
    text_output = None

    async def handle(self, call: Call) -> Mapping[str, Any]:
        return {"ok": True}


class ServeNoopAgent(NoopAgent):
    """The no-op agent of the ``serve`` shape, in this process.

    It has a name of its own, so the separate-process shape's orchestrator never routes to it.
    """

    name = "noop-serve"
    capabilities = ("noop-serve",)


# ----------------------------------------------------------------------------- child processes
async def serve_agent(
    url: str, embedder_dir: str | None, torch_threads: int | None, traced: bool = False
) -> None:
    """Run the no-op agent (and the embedder over a fresh vault in ``embedder_dir``) until killed."""
    if traced:
        tracing.configure("bench-agent")
    async with await Bus.connect(url, name="bench-agent") as bus, anyio.create_task_group() as tg:
        runner = AgentRunner(bus, NoopAgent(), mailbox_size=1024, concurrency=64)
        await tg.start(runner.run)
        if embedder_dir:
            from agents.storage import EmbedderAgent
            from bridges.vault import VaultBridge

            if torch_threads:
                import torch

                torch.set_num_threads(torch_threads)
            bridge = await VaultBridge.open(Path(embedder_dir), timeout_s=60, max_threads=2)
            embed = AgentRunner(bus, EmbedderAgent(bridge, max_payload_bytes=bus.max_payload), concurrency=2)
            await tg.start(embed.run)
        await anyio.sleep_forever()


async def raw_responder(url: str, subject: str, name: str) -> Any:
    """A bare nats-py connection answering every request on ``subject`` with 100 bytes (close it after)."""
    nc = await nats.connect(url, name=name)
    reply = b"y" * PAYLOAD_BYTES

    async def on_msg(msg: Any) -> None:
        await msg.respond(reply)

    await nc.subscribe(subject, cb=on_msg)
    await nc.flush()
    return nc


async def serve_raw(url: str) -> None:
    """The raw child process: a :func:`raw_responder` on ``RAW_SUBJECT`` until killed."""
    await raw_responder(url, RAW_SUBJECT, "bench-raw")
    await anyio.sleep_forever()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Children:
    """Child processes, each in its own process group; :meth:`kill_all` is synchronous (safe on Ctrl-C)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, label: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{label}.log").open("wb")
        proc = subprocess.Popen(  # noqa: ASYNC220 - from the loop's thread on purpose (PDEATHSIG)
            [sys.executable, str(Path(__file__).resolve()), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
        log.close()
        self.procs.append(proc)
        return proc

    def check(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in self.log_dir.glob("*.log"))
                raise RuntimeError(f"a child process exited with code {proc.returncode}:\n{logs}")

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# ----------------------------------------------------------------------------- measuring
def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100), nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else float("nan")


Fn = Callable[[], Awaitable[object]]


async def timed(fn: Fn, n: int, out: list[float]) -> float:
    """Call ``fn`` ``n`` times one after another; append each latency (µs) to ``out``; return seconds."""
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await fn()
        out.append((time.perf_counter_ns() - t0) / 1e3)
    return time.perf_counter() - started


async def throughput(fn: Fn, total: int, inflight: int) -> float:
    """Requests/s of ``total`` calls made by ``inflight`` workers at once."""
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await fn()

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(inflight):
            tg.start_soon(worker)
    return total / (time.perf_counter() - started)


def load_roster() -> tuple[tuple[AgentSpec, ...], str]:
    """``agents.roster.ROSTER``, or every team whose package imports (and says which are missing)."""
    try:
        from agents.roster import ROSTER

        return tuple(ROSTER), f"agents.roster.ROSTER ({len(ROSTER)} agents)"
    except Exception as exc:  # a colleague's team package may be half-written
        reason = f"{type(exc).__name__}: {exc}"
    specs: list[AgentSpec] = []
    missing: list[str] = []
    for module, attr in (
        ("agents.inference", "INFERENCE_AGENTS"),
        ("agents.compression", "COMPRESSION_AGENTS"),
        ("agents.analysis", "ANALYSIS_AGENTS"),
        ("agents.synthesis", "SYNTHESIS_AGENTS"),
    ):
        try:
            specs += [spec_of(cls) for cls in getattr(importlib.import_module(module), attr)]
        except Exception:
            missing.append(module)
    from agents import storage

    storage_classes: list[type[Agent]] = [
        storage.ArchivistAgent,
        storage.RetrieverAgent,
        storage.FetcherAgent,
        storage.EraserAgent,
        storage.KeyWardenAgent,
        storage.IndexerAgent,
        storage.SnapshotterAgent,
        storage.VaultStatsAgent,
        storage.EmbedderAgent,
    ]
    specs += [spec_of(cls) for cls in storage_classes]
    if "agents.inference" in missing:
        try:
            from agents.inference import GeneratorAgent

            specs.append(spec_of(GeneratorAgent))
        except Exception:
            pass
    return tuple(specs), f"partial roster: {len(specs)} agents (ROSTER: {reason}; missing {missing})"


def linear_plan() -> Plan:
    steps: list[dict[str, Any]] = [{"id": "s1", "agent": "noop", "input": {"text": "${input.text}"}}]
    for i in range(2, PLAN_STEPS + 1):
        steps.append({"id": f"s{i}", "agent": "noop", "input": {"prev": f"${{steps.s{i - 1}.ok}}"}})
    return parse_plan({"name": "bench-linear", "steps": steps, "output": f"${{steps.s{PLAN_STEPS}}}"})


class InstantRouter:
    """Stands in for the router: every call succeeds at once, so a plan's own machinery is all that runs."""

    async def invoke(
        self,
        agent: str,
        payload: Mapping[str, Any],
        ctx: CallContext,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
    ) -> Invocation:
        return Invocation({"ok": True}, agent, NoopAgent.team, 1)

    def authorise(self, agent: str, payload: Mapping[str, Any], ctx: CallContext) -> None:
        """Every step is allowed (the real check is the router's; this measures the plan machinery)."""


class Results:
    """Per-run values of every metric: ``data[metric] = [run 1, run 2, ...]``."""

    def __init__(self) -> None:
        self.data: dict[str, list[float]] = {}
        self.notes: dict[str, str] = {}
        self.choices: dict[str, tuple[str, str]] = {}

    def add(self, metric: str, value: float) -> None:
        self.data.setdefault(metric, []).append(value)

    def med(self, metric: str) -> float:
        return median(self.data.get(metric, []))


class CpuMeter:
    """CPU seconds (user + system) of the processes taking part, to split a request's cost among them."""

    def __init__(self, **procs: psutil.Process) -> None:
        self.procs = procs

    def sample(self) -> dict[str, float]:
        out = {}
        for name, proc in self.procs.items():
            t = proc.cpu_times()
            out[name] = t.user + t.system
        return out

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: after[k] - before[k] for k in before}


async def wait_for(cond: Callable[[], bool], children: Children, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        children.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s} s")
        await anyio.sleep(0.1)


# ----------------------------------------------------------------------------- the benchmark
async def bench(args: argparse.Namespace, console: Console, work: Path, children: Children) -> Results:
    res = Results()
    roster, roster_note = load_roster()
    res.notes["roster"] = roster_note
    has_embedder = not args.no_embedder and any(s.name == "embedder" for s in roster)
    server = EmbeddedNats(work / "nats")
    await server.start()
    try:
        agent_args = ["--serve-agent", "--nats-url", server.url, *(["--traced"] if args.traced else [])]
        if args.traced:  # every call below runs inside one recorded trace: each hop makes 2 spans
            tracing.configure("bench-caller", tracing.TracingConfig(sample_ratio=1.0))
            root = tracing.tracer("bench").start_span("bench", attributes={tracing.ENTRY_ATTRIBUTE: True})
            otel_context.attach(trace.set_span_in_context(root))
            res.notes["tracing"] = "on: a client span per hop here, a server span per call in the agent"
        if has_embedder:
            agent_args += ["--embedder-dir", str(work / "vault")]
            if args.embedder_torch_threads:
                agent_args += ["--embedder-torch-threads", str(args.embedder_torch_threads)]
                res.notes["embedder"] = f"torch threads {args.embedder_torch_threads}"
        agent = children.spawn("agent", *agent_args)
        raw = children.spawn("raw", "--serve-raw", "--nats-url", server.url)
        assert server.process is not None
        cpu = CpuMeter(
            caller=psutil.Process(),
            agent=psutil.Process(agent.pid),
            raw=psutil.Process(raw.pid),
            server=psutil.Process(server.process.pid),
        )
        nc = await nats.connect(server.url, name="bench-raw-requester")
        async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
            stack.push_async_callback(nc.close)
            bus = await stack.enter_async_context(await Bus.connect(server.url, name="bench-orchestrator"))
            orch = Orchestrator(bus, specs=(spec_of(NoopAgent),))
            await tg.start(orch.run)
            serve = await start_serve_shape(server.url, stack, tg)
            with console.status("waiting for the agent process (and the embedder's model)"):
                await wait_for(lambda: bool(orch.monitor.healthy("noop")), children, "noop agent", 60)
                await wait_for(
                    lambda: bool(serve.orch.monitor.healthy(ServeNoopAgent.name)), children, "serve noop", 60
                )
                if has_embedder:
                    await wait_for(lambda: bool(orch.monitor.healthy("embedder")), children, "embedder", 180)
                await wait_raw(nc, children)
                await wait_raw(serve.nc, children, SERVE_RAW_SUBJECT)
            await measure(args, console, res, bus, nc, orch, serve, roster, has_embedder, cpu)
            tg.cancel_scope.cancel()
    finally:
        await server.stop()
    return res


class ServeShape:
    """The hop as ``neurectomy serve`` runs it: orchestrator and agent in this process and event loop.

    Attributes:
        orch: The orchestrator, on its own bus with ``local_requests`` and ``local_replies`` on (the
            runtime's ``api`` role connection).
        nc: The raw nats-py requester whose responder (``SERVE_RAW_SUBJECT``) is in this process too.
    """

    def __init__(self, orch: Orchestrator, nc: Any) -> None:
        self.orch = orch
        self.nc = nc


async def start_serve_shape(url: str, stack: AsyncExitStack, tg: TaskGroup) -> ServeShape:
    """Start the ``serve`` shape's agent, orchestrator and raw pair in this process (closed by ``stack``).

    Each side has its own connection, as ``serve`` has one per NATS role with the private server; the
    flags are set through the same attributes as ``neurectomy/server/runtime.py`` does: ``local_replies``
    on every role bus, ``local_requests`` on the roles that may publish to agent subjects (``api`` here,
    not ``agent``).
    """
    agent_bus = await stack.enter_async_context(await Bus.connect(url, name="bench-serve-agent"))
    api_bus = await stack.enter_async_context(await Bus.connect(url, name="bench-serve-api"))
    for role_bus in (agent_bus, api_bus):
        role_bus.local_replies = True
    api_bus.local_requests = True
    runner = AgentRunner(agent_bus, ServeNoopAgent(), mailbox_size=1024, concurrency=64)
    await tg.start(runner.run)
    orch = Orchestrator(api_bus, specs=(spec_of(ServeNoopAgent),))
    await tg.start(orch.run)
    responder = await raw_responder(url, SERVE_RAW_SUBJECT, "bench-serve-raw-responder")
    stack.push_async_callback(responder.close)
    nc = await nats.connect(url, name="bench-serve-raw-requester")
    stack.push_async_callback(nc.close)
    return ServeShape(orch, nc)


async def wait_raw(nc: Any, children: Children, subject: str = RAW_SUBJECT) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            await nc.request(subject, RAW_PAYLOAD, timeout=1)
            return
        except nats.errors.NoRespondersError:
            children.check()
            if time.monotonic() > deadline:
                raise
            await anyio.sleep(0.1)


async def measure(
    args: argparse.Namespace,
    console: Console,
    res: Results,
    bus: Bus,
    nc: Any,
    orch: Orchestrator,
    serve: ServeShape,
    roster: tuple[AgentSpec, ...],
    has_embedder: bool,
    cpu: CpuMeter,
) -> None:
    async def raw_call() -> object:
        return await nc.request(RAW_SUBJECT, RAW_PAYLOAD, timeout=10)

    async def orch_call() -> object:
        return await orch.invoke("noop", NOOP_PAYLOAD, CallContext.with_timeout(30))

    async def serve_raw_call() -> object:
        return await serve.nc.request(SERVE_RAW_SUBJECT, RAW_PAYLOAD, timeout=10)

    async def serve_orch_call() -> object:
        return await serve.orch.invoke(ServeNoopAgent.name, NOOP_PAYLOAD, CallContext.with_timeout(30))

    plan = linear_plan()

    async def plan_call() -> object:
        outcome = await orch.run_plan(plan, {"text": "hello"}, CallContext.with_timeout(30))
        if outcome.status != "succeeded":
            raise RuntimeError(f"plan {outcome.status}: {outcome.error}")
        return outcome

    stub_runner = PlanRunner(cast(Any, InstantRouter()), orch.selector)

    async def stub_plan_call() -> object:
        return await stub_runner.run(plan, {"text": "hello"}, CallContext.with_timeout(30))

    async def five_invokes() -> object:
        for _ in range(PLAN_STEPS):
            await orch_call()
        return None

    probe = await orch.invoke("noop", NOOP_PAYLOAD, CallContext.with_timeout(30))
    direct = bool(orch.monitor.healthy("noop"))
    res.notes["path"] = f"direct subject ({probe.attempts} attempt)" if direct else "shared subject"
    requests_before, replies_before = Bus.local_requests_delivered(), Bus.local_deliveries()
    await serve_orch_call()
    local = (Bus.local_requests_delivered() - requests_before, Bus.local_deliveries() - replies_before)
    if local != (1, 1):  # the serve shape must skip nats-server both ways, or its numbers mean nothing
        raise RuntimeError(
            f"serve shape: {local[0]} local requests and {local[1]} local replies, not 1 and 1"
        )
    res.notes["serve path"] = "request and answer handed over in process (1 local request, 1 local reply)"
    hop_sides: list[tuple[str, Fn]] = [
        ("raw", raw_call),
        ("orch", orch_call),
        ("serve raw", serve_raw_call),
        ("serve orch", serve_orch_call),
    ]
    for _, warm_fn in hop_sides:
        await timed(warm_fn, 300, [])
        await throughput(warm_fn, 1000, args.inflight)

    if args.hop_only:  # sections 2 and 3 are not run
        roster, has_embedder = (spec_of(NoopAgent),), False
    sel = Orchestrator(bus, specs=roster, semantic=True)
    lex = Orchestrator(bus, specs=roster, semantic=False)
    names = [s.name for s in roster]
    caps = sorted({c for s in roster for c in s.capabilities})
    if has_embedder:
        warm = await sel.select(goal=GOALS[0])  # embeds the roster's descriptions once
        res.notes["goal method"] = warm.method
    choices = {} if args.hop_only else {g: (await lex.select(goal=g)).agent for g in GOALS}
    if has_embedder:
        for g in GOALS:
            res.choices[g] = ((await sel.select(goal=g)).agent, choices[g])

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("runs", total=args.runs * 3)
        for run in range(args.runs):
            sides = list(hop_sides)
            if run % 2:
                sides.reverse()
            # 1. hop: sequential, in alternating blocks
            lat: dict[str, list[float]] = {side: [] for side, _ in sides}
            spent = dict.fromkeys(lat, 0.0)
            used: dict[str, dict[str, float]] = {side: {} for side in lat}
            done = 0
            while done < args.requests:
                n = min(SEQ_BLOCK, args.requests - done)
                for side, fn in sides:
                    before = cpu.sample()
                    spent[side] += await timed(fn, n, lat[side])
                    for k, v in cpu.spent(before, cpu.sample()).items():
                        used[side][k] = used[side].get(k, 0.0) + v
                done += n
            for side in lat:
                res.add(f"{side} p50 us", pct(lat[side], 50))
                res.add(f"{side} p99 us", pct(lat[side], 99))
                res.add(f"{side} rps 1", args.requests / spent[side])
                add_cpu(res, side, "1", used[side], args.requests)
            # ... and many in flight, ABBA
            rates: dict[str, list[float]] = {side: [] for side in lat}
            used = {side: {} for side in lat}
            half = max(1, args.throughput_requests // 2)
            for side, fn in [*sides, *reversed(sides)]:
                before = cpu.sample()
                rates[side].append(await throughput(fn, half, args.inflight))
                for k, v in cpu.spent(before, cpu.sample()).items():
                    used[side][k] = used[side].get(k, 0.0) + v
            for side in lat:
                res.add(f"{side} rps n", median(rates[side]))
                add_cpu(res, side, "n", used[side], 2 * half)
            progress.advance(task)
            if args.hop_only:
                progress.advance(task, 2)
                continue

            # 3. plan steps
            plan_us: list[float] = []
            inv_us: list[float] = []
            raw_us: list[float] = []
            for _ in range(args.plans):
                await timed(plan_call, 1, plan_us)
                await timed(five_invokes, 1, inv_us)
                await timed(raw_call, 1, raw_us)
            stub_us: list[float] = []
            await timed(stub_plan_call, args.plans, stub_us)
            res.add("plan stub per step us", median(stub_us) / PLAN_STEPS)
            p, i, r = median(plan_us), median(inv_us), median(raw_us)
            res.add("plan per step us", p / PLAN_STEPS)
            res.add("invoke us", i / PLAN_STEPS)
            res.add("plan raw us", r)
            res.add("plan overhead us", (p - i) / PLAN_STEPS)
            progress.advance(task)

            # 2. selection
            await select_run(args, res, sel, lex, names, caps, has_embedder, run)
            progress.advance(task)


def add_cpu(res: Results, side: str, mode: str, used: dict[str, float], requests: int) -> None:
    """CPU µs per request of the caller, the responder (agent or raw child) and nats-server.

    A ``serve`` side's responder is in the caller's process: its CPU is in the caller's, none recorded apart.
    """
    res.add(f"{side} cpu caller {mode} us", used["caller"] / requests * 1e6)
    if not side.startswith("serve"):
        responder = used["agent"] if side == "orch" else used["raw"]
        res.add(f"{side} cpu responder {mode} us", responder / requests * 1e6)
    res.add(f"{side} cpu server {mode} us", used["server"] / requests * 1e6)


async def select_run(
    args: argparse.Namespace,
    res: Results,
    sel: Orchestrator,
    lex: Orchestrator,
    names: list[str],
    caps: list[str],
    has_embedder: bool,
    run: int,
) -> None:
    n = args.selections

    async def series(make: Callable[[int], Awaitable[object]], count: int) -> list[float]:
        out: list[float] = []
        for k in range(count):
            t0 = time.perf_counter_ns()
            await make(k)
            out.append((time.perf_counter_ns() - t0) / 1e3)
        return out

    kinds: dict[str, list[float]] = {
        "name": await series(lambda k: sel.select(agent=names[k % len(names)]), n),
        "capability": await series(lambda k: sel.select(capability=caps[k % len(caps)]), n),
        "lexical": await series(lambda k: lex.select(goal=GOALS[k % len(GOALS)]), n),
    }
    if has_embedder:
        # a goal never seen before (the embedder computes it), then goals from the cache
        kinds["semantic new"] = await series(
            lambda k: sel.select(goal=f"{GOALS[k % len(GOALS)]} (request {run}-{k})"),
            max(20, n // 10),
        )
        kinds["semantic cached"] = await series(lambda k: sel.select(goal=GOALS[k % len(GOALS)]), n)
    for kind, values in kinds.items():
        res.add(f"select {kind} p50 us", pct(values, 50))
        res.add(f"select {kind} p99 us", pct(values, 99))


# ----------------------------------------------------------------------------- report
def verdict(ok: bool) -> str:
    return "[green]pass[/green]" if ok else "[red]miss[/red]"


def hop_table(res: Results, args: argparse.Namespace, shape: str) -> Table:
    """Section 1's table for one shape: ``""`` (separate processes) or ``"serve "`` (one process)."""
    m = res.med
    raw, orch = f"{shape}raw", f"{shape}orch"
    if shape:
        title = (
            "1b. One hop in the `serve` shape: orchestrator and agent in this process and event loop "
            "(local requests and replies) vs raw nats-py requester and responder in one process"
        )
        caption = "CPU of the caller's process includes the responder's (agent or raw responder)"
    else:
        title = "1. One hop: Orchestrator.invoke vs raw nats-py request/reply, separate processes"
        caption = FINDINGS
    hop = Table(title=f"{title} (medians of {args.runs} runs)", caption=caption)
    for col in ("metric", "raw nats-py", "orchestrator", "orch / raw", "target", "verdict"):
        hop.add_column(col, justify="right", no_wrap=True)
    p50_ratio = m(f"{orch} p50 us") / m(f"{raw} p50 us")
    hop.add_row(
        "latency p50, 1 in flight (µs)",
        f"{m(f'{raw} p50 us'):.0f}",
        f"{m(f'{orch} p50 us'):.0f}",
        f"{p50_ratio:.2f}",
        "≤ 1.3× raw",
        verdict(p50_ratio <= 1.3),
    )
    hop.add_row(
        "latency p99, 1 in flight (µs)",
        f"{m(f'{raw} p99 us'):.0f}",
        f"{m(f'{orch} p99 us'):.0f}",
        f"{m(f'{orch} p99 us') / m(f'{raw} p99 us'):.2f}",
        "",
        "",
    )
    hop.add_row(
        "requests/s, 1 in flight",
        f"{m(f'{raw} rps 1'):,.0f}",
        f"{m(f'{orch} rps 1'):,.0f}",
        f"{m(f'{orch} rps 1') / m(f'{raw} rps 1'):.2f}",
        "",
        "",
    )
    hop.add_row(
        f"requests/s, {args.inflight} in flight",
        f"{m(f'{raw} rps n'):,.0f}",
        f"{m(f'{orch} rps n'):,.0f}",
        f"{m(f'{orch} rps n') / m(f'{raw} rps n'):.2f}",
        "≥ 20,000/s",
        verdict(m(f"{orch} rps n") >= 20_000),
    )
    whos = ("caller", "server") if shape else ("caller", "responder", "server")
    for mode, label in (("1", "1 in flight"), ("n", f"{args.inflight} in flight")):
        for who in whos:
            r, o = m(f"{raw} cpu {who} {mode} us"), m(f"{orch} cpu {who} {mode} us")
            name = "caller's process" if shape and who == "caller" else who
            hop.add_row(f"CPU µs/request, {name}, {label}", f"{r:.0f}", f"{o:.0f}", f"{o / r:.2f}", "", "")
    return hop


def report(console: Console, res: Results, args: argparse.Namespace) -> None:
    m = res.med
    console.print(hop_table(res, args, ""))
    console.print(hop_table(res, args, "serve "))
    if args.hop_only:
        return

    sel = Table(title=f"2. Selection (one call of Orchestrator.select; medians of {args.runs} runs)")
    for col in ("selection", "p50 (µs)", "p99 (µs)", "target p99", "verdict"):
        sel.add_column(col, justify="right", no_wrap=True)
    rows = [
        ("by name", "name", 500.0),
        ("by capability", "capability", 500.0),
        ("goal, semantic, first seen (embedded over NATS)", "semantic new", 5000.0),
        ("goal, semantic, repeated (cached embedding)", "semantic cached", 5000.0),
        ("goal, lexical (semantic=False)", "lexical", 5000.0),
    ]
    for label, kind, target in rows:
        p50, p99 = m(f"select {kind} p50 us"), m(f"select {kind} p99 us")
        if p99 != p99:
            sel.add_row(label, "n/a", "n/a", f"≤ {target / 1000:g} ms", "not run")
            continue
        sel.add_row(label, f"{p50:,.1f}", f"{p99:,.1f}", f"≤ {target / 1000:g} ms", verdict(p99 <= target))
    console.print(sel)
    goals = res.choices
    if goals:
        trade = Table(title="Which agent each goal selects (the trade-off of lexical selection)")
        for col in ("goal", "semantic (embedder)", "lexical"):
            trade.add_column(col, no_wrap=True)
        for goal, (semantic, lexical) in goals.items():
            mark = "" if semantic == lexical else " [yellow]≠[/yellow]"
            trade.add_row(goal, semantic, lexical + mark)
        console.print(trade)

    plan = Table(
        title=f"3. A {PLAN_STEPS}-step linear plan of no-op steps (medians of {args.plans} plans, "
        f"then of {args.runs} runs)"
    )
    for col in ("metric", "µs", "vs raw request", "target", "verdict"):
        plan.add_column(col, justify="right", no_wrap=True)
    raw = m("plan raw us")
    plan.add_row("raw nats-py request (interleaved)", f"{raw:.0f}", "1.00", "", "")
    plan.add_row(
        "invoke (5 sequential, per call)", f"{m('invoke us'):.0f}", f"{m('invoke us') / raw:.2f}", "", ""
    )
    plan.add_row(
        "run_plan, per step", f"{m('plan per step us'):.0f}", f"{m('plan per step us') / raw:.2f}", "", ""
    )
    overhead = m("plan overhead us")
    plan.add_row(
        "plan overhead per step (plan − 5 × invoke) / 5",
        f"{overhead:.0f}",
        "",
        "≤ 100 µs",
        verdict(overhead <= 100),
    )
    plan.add_row(
        "plan machinery alone, per step (router stubbed: no NATS)",
        f"{m('plan stub per step us'):.0f}",
        "",
        "",
        "",
    )
    console.print(plan)
    for key, note in res.notes.items():
        console.print(f"[dim]{key}: {note}[/dim]")


def profile(args: argparse.Namespace, console: Console, work: Path, children: Children) -> None:
    """cProfile of ``PROFILE_CALLS`` sequential invokes; the top ``--profile-top`` by cumulative, own time."""

    async def main() -> None:
        server = EmbeddedNats(work / "nats")
        await server.start()
        try:
            async with await Bus.connect(server.url, name="bench-profile") as bus, AsyncExitStack() as stack:
                async with anyio.create_task_group() as tg:
                    if args.profile in ("both", "agent64"):
                        runner = AgentRunner(bus, NoopAgent(), mailbox_size=1024, concurrency=64)
                        await tg.start(runner.run)
                    if args.profile == "agent64":
                        await profile_agent(args, console, children, server.url)
                        tg.cancel_scope.cancel()
                        return
                    if args.profile == "serve64":
                        serve = await start_serve_shape(server.url, stack, tg)
                        orch, target = serve.orch, ServeNoopAgent.name
                    else:
                        children.spawn("agent", "--serve-agent", "--nats-url", server.url)
                        orch, target = Orchestrator(bus, specs=(spec_of(NoopAgent),)), "noop"
                        await tg.start(orch.run)
                    await wait_for(lambda: bool(orch.monitor.healthy(target)), children, "noop agent", 60)
                    plan = linear_plan()

                    async def invoke() -> object:
                        return await orch.invoke(target, NOOP_PAYLOAD, CallContext.with_timeout(30))

                    async def one() -> None:
                        if args.profile in ("caller64", "serve64"):
                            await throughput(invoke, PROFILE_CALLS, args.inflight)
                        elif args.profile == "plan":
                            await orch.run_plan(plan, {"text": "hello"}, CallContext.with_timeout(30))
                        else:
                            await orch.invoke("noop", NOOP_PAYLOAD, CallContext.with_timeout(30))

                    calls = {"plan": PROFILE_CALLS // PLAN_STEPS, "caller64": 5, "serve64": 5}.get(
                        args.profile, PROFILE_CALLS
                    )
                    for _ in range(calls // 5):
                        await one()
                    prof = cProfile.Profile()
                    started = time.perf_counter()
                    prof.enable()
                    for _ in range(calls):
                        await one()
                    prof.disable()
                    wall = time.perf_counter() - started
                    what = {
                        "plan": f"{calls} plans of {PLAN_STEPS} steps",
                        "caller64": f"{calls} × {PROFILE_CALLS} invokes at {args.inflight} in flight",
                        "serve64": f"{calls} × {PROFILE_CALLS} invokes at {args.inflight} in flight, serve",
                    }.get(args.profile, f"{calls} invokes")
                    console.print(
                        f"{what}, sequential ({args.profile}): {wall:.2f} s under the profiler, "
                        f"{wall / calls * 1e6:.0f} µs each"
                    )
                    stats = pstats.Stats(prof, stream=sys.stdout)
                    stats.strip_dirs().sort_stats("cumulative").print_stats(args.profile_top)
                    stats.sort_stats("tottime").print_stats(args.profile_top)
                    tg.cancel_scope.cancel()
        finally:
            await server.stop()

    anyio.run(main, backend_options=backend_options(args.loop))


async def profile_agent(args: argparse.Namespace, console: Console, children: Children, url: str) -> None:
    """cProfile of this process as the agent while a child process invokes it at ``--inflight``."""
    prof = cProfile.Profile()
    calls = 5 * PROFILE_CALLS
    prof.enable()
    started = time.perf_counter()
    driver = children.spawn(
        "driver", "--drive", str(calls), "--inflight", str(args.inflight), "--nats-url", url
    )
    await anyio.to_thread.run_sync(driver.wait)
    prof.disable()
    wall = time.perf_counter() - started
    if driver.returncode:
        children.check()
    console.print(
        f"agent side of {calls} invokes at {args.inflight} in flight: {wall:.2f} s (driver start included)"
    )
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.strip_dirs().sort_stats("cumulative").print_stats(args.profile_top)
    stats.sort_stats("tottime").print_stats(args.profile_top)


async def drive(url: str, calls: int, inflight: int) -> None:
    """The caller of ``--profile agent64``: ``calls`` invokes at ``inflight`` in flight, then exit."""
    async with await Bus.connect(url, name="bench-driver") as bus, anyio.create_task_group() as tg:
        orch = Orchestrator(bus, specs=(spec_of(NoopAgent),))
        await tg.start(orch.run)
        while not orch.monitor.healthy("noop"):
            await orch.monitor.next_beat()

        async def invoke() -> object:
            return await orch.invoke("noop", NOOP_PAYLOAD, CallContext.with_timeout(30))

        await throughput(invoke, calls, inflight)
        tg.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per side per run")
    parser.add_argument("--throughput-requests", type=int, default=10_000, help="per side per run")
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--plans", type=int, default=200, help="plans (and 5-invoke series) per run")
    parser.add_argument("--selections", type=int, default=1000, help="select() calls per kind per run")
    parser.add_argument("--no-embedder", action="store_true", help="skip semantic selection (no model)")
    parser.add_argument(
        "--embedder-torch-threads",
        type=int,
        help="torch intra-op threads of the embedder (default: torch's, one per core)",
    )
    parser.add_argument("--quick", action="store_true", help="small counts, 2 runs: a smoke run")
    parser.add_argument("--hop-only", action="store_true", help="only section 1 (the hop)")
    parser.add_argument(
        "--traced", action="store_true", help="record OpenTelemetry spans in both processes (no exporter)"
    )
    parser.add_argument("--json", type=Path, help="save every run's values and the medians here")
    parser.add_argument(
        "--profile",
        choices=("caller", "caller64", "both", "plan", "agent64", "serve64"),
        help="only profile (see above)",
    )
    parser.add_argument("--profile-top", type=int, default=25, help="functions listed per profile table")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        help="event loop of every process here (default: the service's, agents.eventloop)",
    )
    parser.add_argument("--serve-agent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-raw", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nats-url", help=argparse.SUPPRESS)
    parser.add_argument("--embedder-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging("json", "warning")
    args.loop = loop_name(args.loop)
    os.environ[ENV_LOOP] = args.loop  # the children run on the same loop
    loop = backend_options(args.loop)
    if args.serve_agent:
        anyio.run(
            serve_agent,
            args.nats_url,
            args.embedder_dir,
            args.embedder_torch_threads,
            args.traced,
            backend_options=loop,
        )
        return
    if args.serve_raw:
        anyio.run(serve_raw, args.nats_url, backend_options=loop)
        return
    if args.drive:
        anyio.run(drive, args.nats_url, args.drive, args.inflight, backend_options=loop)
        return
    # Ctrl-C (and SIGTERM) raise KeyboardInterrupt, even when started with SIGINT ignored (``cmd &``),
    # so the finally below always stops the children and the nats-server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.quick:
        args.runs, args.requests, args.throughput_requests = 2, 500, 2000
        args.plans, args.selections = 30, 200
    console = Console(width=160)
    load = os.getloadavg()
    console.print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"{args.runs} runs, {args.requests} sequential + {args.throughput_requests} @{args.inflight} "
        f"requests per side, {args.plans} plans, {args.selections} selections per kind; "
        f"event loop {args.loop} in every process"
    )
    work = Path(tempfile.mkdtemp(prefix="neurectomy-bench-orch-"))
    children = Children(work)
    try:
        if args.profile:
            profile(args, console, work, children)
            return
        res = anyio.run(bench, args, console, work, children, backend_options=loop)
    except KeyboardInterrupt:
        console.print("interrupted: child processes and nats-server stopped")
        sys.exit(130)
    finally:
        children.kill_all()
        shutil.rmtree(work, ignore_errors=True)
    report(console, res, args)
    end_load = os.getloadavg()
    console.print(
        f"[dim]load average at the end: {end_load[0]:.2f} {end_load[1]:.2f} {end_load[2]:.2f}[/dim]"
    )
    if args.json:
        out = {
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "load_average_start": load,
            "load_average_end": end_load,
            "runs": res.data,
            "medians": {k: res.med(k) for k in res.data},
            "notes": res.notes,
            "goal_choices": {g: {"semantic": a, "lexical": b} for g, (a, b) in res.choices.items()},
        }
        args.json.write_text(json.dumps(out, indent=2))
        console.print(f"saved {args.json}")


if __name__ == "__main__":
    main()
