"""LLM path: raw llama-cpp-python vs the full Neurectomy service, same GGUF and threads, in one run.

Service path: HTTP (SSE) → Litestar → orchestrator → NATS → generator agent → bridge → Ryot worker.
Raw path: ``Llama.create_completion(stream=True)`` in this process (llama-cpp-python's high-level API
is not thread safe, so concurrent raw requests run one after another behind a lock, which is what an
application using it directly gets).

Sections (each prints service and raw side by side, with ratios):

1. Single stream, interleaved raw/service runs on the same prompts: TTFT on a cold prompt (nothing
   shared but BOS) and a warm one (same prompt again: KV prefix reuse), decode tok/s
   ((tokens − 1) / (last − first token time)). Medians of ``--runs``. Each timed request (here and in
   section 3) starts once neither side still spins from the last one (:func:`settle`).
2. Concurrency (``--concurrency 1 2 4 8``): N streams at once: aggregate tok/s (all tokens / wall time),
   the service's aggregate over one raw stream's decode rate in the same round (raw streams run one
   after another), and p95 inter-token latency; medians of ``--concurrency-runs`` interleaved rounds.
   Each round also runs llama.cpp's batch ceiling for N sequences (:class:`Ceiling`: the low-level API,
   one ``llama_decode`` per step for all sequences, same prompts, greedy, no service) and Ryot's engine
   in this process (:class:`EngineSide`: no API, no NATS), and prints engine ÷ ceiling and service ÷
   ceiling, medians of the per-round ratios. Greedy identity under concurrency is checked on all three:
   the service's and the engine's texts against the same prompt served alone, and the ceiling's tokens
   against the same prompt decoded alone by llama.cpp (with weight repacking, llama.cpp's default, the
   ceiling's own batched tokens differ from its alone tokens; the ceiling uses the service's setting).
3. Prefix-cache hit: a ~256-token shared prefix, then requests adding 8 new tokens: TTFT p50.
4. Speculative decoding by prompt lookup, on a prompt whose continuation copies a paragraph: decode
   tok/s without and with it (raw: llama-cpp-python's ``LlamaPromptLookupDecoding``; service:
   ``"speculative": true``), and how many of the service's texts are the same both ways.
5. Memory (``--memory-requests``): the service's RSS before and after that many short requests, and
   what it holds beyond the model and its KV cache (``memory_bytes`` of ``GET /v1/models``).
6. Holes (``holes``): llama.cpp's decode step time for sequence layouts with holes, out of order, and
   with placeholders filling the holes (the one-micro-batch rule of ``ryot/_schedule.py``).

Service CPU per streamed token: around the service's runs, the CPU time of its threads
(``/proc/<pid>/task/*/schedstat``, exact nanoseconds) by part: the event loop (API, orchestrator, agents,
nats-py), the engine (Ryot's ``ryot-worker`` thread and llama.cpp's compute threads, which inherit its
name), other threads and the nats-server child; the service's overhead is all but the engine, divided by
the tokens streamed meanwhile (:class:`CpuMeter`). The service's idle CPU (heartbeats, JetStream
consumers, timers; ms per second, measured for ``--idle-s`` before the sections) is part of it: on a
loaded machine a run takes longer and carries more of it, so it is printed too, with the per-token figure
net of it. The service streams text on a time budget (``--chunk-interval``, the setting
``generator.chunk_interval_s``): its first text and its end go at once, later text at most every interval,
several tokens per SSE event; "p95 gap between token events" then measures that interval, not decode.
Section 2 also checks that each greedy text under concurrency equals the same prompt's text served
alone. ``--sections`` picks sections.

``--service-env NAME=VALUE ...`` sets the service's environment only (e.g. ``OMP_WAIT_POLICY=active``
or ``NEURECTOMY_RYOT__N_THREADS=1``): this process imports ``llama_cpp`` before ``ryot``, so its raw side,
ceiling and in-process engine keep libgomp's default spinning whatever the service uses (docs/ryot.md,
Threads and OpenMP).

The service runs with only the Inference team (``NEURECTOMY_TEAMS=["inference"]``) unless
``--all-teams``, so that its memory is the LLM path's.

    python benchmarks/llm_path.py --runs 7 --max-tokens 64
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
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# benchmarks/sigmalang.py and benchmarks/vault.py would shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import llama_cpp  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
from llama_cpp.llama_speculative import LlamaPromptLookupDecoding  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import track  # noqa: E402
from rich.table import Table  # noqa: E402

from neurectomy.testing import start_serve, stop_serve  # noqa: E402
from ryot import RyotConfig, RyotEngine, SamplingParams, default_model_path, physical_cores  # noqa: E402

TOPICS = ["Lighthouses", "Volcanoes", "Penguins", "Railways", "Glaciers", "Bees", "Comets", "Deserts"]
WARM_PROMPT = "Write a long, detailed story about a sailor who finds a map."
COPY_PROMPT = (
    "Copy the paragraph exactly.\n\nParagraph {i}: The harbour master keeps a ledger of every ship that "
    "enters the port: its name, its flag, its cargo, the berth it is given and the hour it leaves. The "
    "ledger is checked each evening against the customs papers, and any difference is reported to the "
    "port authority before midnight.\n\nCopy {i}: The harbour master keeps a ledger"
)
SHARED_PREFIX = (
    "You are a careful assistant for a shipping company. Answer questions about cargo, routes, ports, "
    "customs and schedules. Be precise, cite the relevant rule when you can, and say so when you do not "
    "know. Company rules: containers over 30 tonnes need a permit; refrigerated cargo is checked every "
    "six hours; hazardous goods travel only on approved routes; customs papers are filed 48 hours before "
    "arrival; delays over 12 hours are reported to the client; port fees are charged per day after the "
    "second day; damaged goods are photographed on arrival; every container has a seal number that is "
    "recorded at loading and at unloading; drivers rest 45 minutes after four and a half hours. "
) * 2


SECTIONS = ("single", "concurrency", "prefix", "speculative", "memory", "holes")


@dataclass
class Stream:
    """Timestamps of one streamed completion."""

    started: float
    stamps: list[float] = field(default_factory=list)
    tokens: int = 0
    done_at: float = 0.0
    engine_ttft_s: float | None = None
    """Queue wait + TTFT inside the Ryot engine (service only: from the final event's timings)."""
    text: str = ""

    @property
    def ttft_s(self) -> float:
        """Until the first token event (or the final event, when the only token decoded to no text)."""
        return (self.stamps[0] if self.stamps else self.done_at) - self.started

    @property
    def decode_tok_s(self) -> float | None:
        span = self.stamps[-1] - self.stamps[0] if self.stamps else 0.0
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else None

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]


class Raw:
    """llama-cpp-python in this process; one request at a time."""

    def __init__(self, threads: int, n_ctx: int, *, prompt_lookup: bool = False) -> None:
        # prompt_lookup: llama-cpp-python's own prompt-lookup speculative decoding (draft 8 tokens)
        self.threads, self.n_ctx = threads, n_ctx
        self.llm = llama_cpp.Llama(
            model_path=str(default_model_path()),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            swa_full=True,
            draft_model=LlamaPromptLookupDecoding(num_pred_tokens=8) if prompt_lookup else None,
            verbose=False,
        )
        self.lock = threading.Lock()

    def run(self, prompt: str, max_tokens: int) -> Stream:
        with self.lock:
            s = Stream(time.perf_counter())
            for chunk in self.llm.create_completion(
                prompt, max_tokens=max_tokens, temperature=0.0, stream=True
            ):
                s.stamps.append(time.perf_counter())
                s.text += chunk["choices"][0]["text"]  # type: ignore[index]
            s.tokens = len(s.stamps)
            return s


def fan_out(n: int, one: Callable[[int], None]) -> float:
    """Run ``one(0) … one(n - 1)`` in ``n`` threads at once; the wall time until all end, seconds."""
    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


class Ceiling:
    """llama.cpp's own batch ceiling: the low-level ``llama_cpp`` API, no service, greedy.

    One context per sequence count, made from ``llama_context_default_params()`` with ``n_seq_max``
    sequences (one KV stream each, ``swa_full``), the service's ``n_ctx`` per sequence and its weight
    layout (``repack``: llama.cpp's default repacks, the service's default does not); the prompts are
    prefilled in one ``llama_decode`` and every later step decodes the next token of all live sequences
    in one ``llama_decode``. :meth:`alone` decodes one prompt by itself, to check whether batching
    changes llama.cpp's own greedy tokens.
    """

    def __init__(self, threads: int, n_ctx_seq: int, counts: list[int], *, repack: bool) -> None:
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        params.use_extra_bufts = repack
        self.repack = repack
        self.model = llama_cpp.llama_model_load_from_file(str(default_model_path()).encode(), params)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_seq = n_ctx_seq
        self.contexts: dict[int, object] = {}
        for n in sorted({1, *counts}):
            cp = llama_cpp.llama_context_default_params()
            cp.n_ctx = n_ctx_seq * n
            cp.n_batch = cp.n_ubatch = 512
            cp.n_seq_max = n
            cp.n_threads = cp.n_threads_batch = threads
            cp.swa_full = True
            cp.kv_unified = False
            self.contexts[n] = llama_cpp.llama_init_from_model(self.model, cp)
        self.batch = llama_cpp.llama_batch_init(512, 0, 1)
        self._alone: dict[tuple[int, int], list[int]] = {}

    def _tokens(self, text: str) -> list[int]:
        data = text.encode()
        buf = (llama_cpp.llama_token * (len(data) + 8))()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, len(buf), True, False)
        return list(buf[:n])

    def _decode(self, ctx: object, items: list[tuple[int, int, int, bool]]) -> None:
        b = self.batch
        for i, (token, pos, seq, logits) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, logits
            b.seq_id[i][0] = seq
        b.n_tokens = len(items)
        if llama_cpp.llama_decode(ctx, b) != 0:
            raise RuntimeError("llama_decode failed")

    def run(self, n: int, max_tokens: int) -> tuple[float, list[list[int]]]:
        """Aggregate tok/s of ``n`` sequences (all tokens / wall time from the first prefill) with the
        prompts of :func:`concurrent_prompt`, and each sequence's greedy tokens."""
        return self._generate(self.contexts[n], [concurrent_prompt(i) for i in range(n)], max_tokens)

    def alone(self, i: int, max_tokens: int) -> list[int]:
        """Greedy tokens of :func:`concurrent_prompt` ``(i)`` decoded by itself (computed once)."""
        key = (i, max_tokens)
        if key not in self._alone:
            self._alone[key] = self._generate(self.contexts[1], [concurrent_prompt(i)], max_tokens)[1][0]
        return self._alone[key]

    def step_ms(self, layouts: dict[str, list[int]], reps: int) -> dict[str, float]:
        """Median milliseconds of one decode step of one token for each sequence id in each layout.

        Layouts are measured interleaved, ``reps`` times, in the largest context after 32 tokens in
        every sequence. Shows what llama.cpp's micro-batch split costs (see ``ryot/_schedule.py``):
        sequences 0, 1, 3 take two passes; 0, 1, 2, 3 with 2 a placeholder one.
        """
        n = max(self.contexts)
        ctx = self.contexts[n]
        memory = llama_cpp.llama_get_memory(ctx)
        llama_cpp.llama_memory_clear(memory, True)
        pos = [0] * n
        for _ in range(32):
            self._decode(ctx, [(100 + s, pos[s], s, True) for s in range(n)])
            pos = [p + 1 for p in pos]
        times: dict[str, list[float]] = {name: [] for name in layouts}
        for _ in range(reps):
            for name, seqs in layouts.items():
                started = time.perf_counter()
                self._decode(ctx, [(100 + s, pos[s], s, True) for s in seqs])
                times[name].append((time.perf_counter() - started) * 1e3)
                for s in seqs:
                    llama_cpp.llama_memory_seq_rm(memory, s, pos[s], -1)
        return {name: statistics.median(v) for name, v in times.items()}

    def _generate(self, ctx: object, texts: list[str], max_tokens: int) -> tuple[float, list[list[int]]]:
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        prompts = [self._tokens(t) for t in texts]
        out: list[list[int]] = [[] for _ in prompts]
        started = time.perf_counter()
        items = [(t, pos, seq, pos == len(p) - 1) for seq, p in enumerate(prompts) for pos, t in enumerate(p)]
        self._decode(ctx, items)
        rows = [i for i, item in enumerate(items) if item[3]]  # logits row of each sequence
        positions = [len(p) for p in prompts]
        live = list(range(len(prompts)))
        total = 0
        for k in range(max_tokens):
            step = []
            for seq, row in zip(live, rows, strict=True):
                logits = np.ctypeslib.as_array(
                    llama_cpp.llama_get_logits_ith(ctx, row), shape=(self.n_vocab,)
                )
                token = int(logits.argmax())
                total += 1
                if not llama_cpp.llama_vocab_is_eog(self.vocab, token):
                    out[seq].append(token)
                    step.append((token, positions[seq], seq, True))
                    positions[seq] += 1
            if not step or k == max_tokens - 1:
                break
            live = [item[2] for item in step]
            rows = list(range(len(step)))
            self._decode(ctx, step)
        return total / (time.perf_counter() - started), out


class EngineSide:
    """Ryot's engine in this process, without API, orchestrator or NATS: the service's engine settings
    (``parallel`` raised to the largest concurrency measured, if below), greedy, one thread per request.

    Between the ceiling and the service: engine ÷ ceiling is what the continuous-batching worker costs
    (scheduling, sampling, events), service ÷ engine what the path around it costs.

    Made on first use: its worker's first ``llama_decode`` (the engine primes its slots when it starts)
    adds a second libgomp team of compute threads to this process, which slowed the raw side's cold TTFT
    here from ~46 to ~77 ms (docs/ryot.md, "The cold prompt's prefill, stage by stage"); the single-stream
    and prefix sections never use it.
    """

    def __init__(self, config: RyotConfig, parallel: int) -> None:
        self.config = config.model_copy(update={"parallel": max(config.parallel, parallel)})
        self._engine: RyotEngine | None = None
        self.alone: dict[str, str] = {}

    @property
    def engine(self) -> RyotEngine:
        """The engine, made on first use."""
        if self._engine is None:
            self._engine = RyotEngine(self.config)
        return self._engine

    def close(self) -> None:
        """Close the engine if it was made."""
        if self._engine is not None:
            self._engine.close()

    def run(self, n: int, max_tokens: int) -> tuple[float, list[tuple[str, str]]]:
        """Aggregate tok/s of ``n`` simultaneous requests and (prompt, text) of each."""
        params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
        results: list[tuple[str, str, int]] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            done = self.engine.generate(concurrent_prompt(i), params)
            with lock:
                results.append((concurrent_prompt(i), done.text, done.usage.completion_tokens))

        wall = fan_out(n, one)
        return sum(r[2] for r in results) / wall, [(p, t) for p, t, _ in results]

    def text_alone(self, prompt: str, max_tokens: int) -> str:
        """Greedy text of ``prompt`` served alone (computed once)."""
        if prompt not in self.alone:
            params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
            self.alone[prompt] = self.engine.generate(prompt, params).text
        return self.alone[prompt]


class CpuMeter:
    """CPU seconds of the service's processes by part, from ``/proc/<pid>/task/<tid>/schedstat`` (Linux).

    ``schedstat``'s first field is the task's time on a CPU in nanoseconds, exact, unlike the
    tick-sampled utime/stime of ``stat``. Parts: ``event loop`` (the main thread, which runs the API,
    the orchestrator, the agents and nats-py), ``engine`` (the Ryot worker thread and llama.cpp's
    compute threads, which inherit its OS name ``ryot-worker``), ``other threads`` (worker-thread
    offloads, ...) and ``nats-server`` (its child process, all threads). The service's own overhead is
    everything but ``engine``.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid

    @staticmethod
    def _tasks(pid: int) -> list[tuple[int, str, float]]:
        """(tid, name, CPU seconds) of every thread of ``pid``."""
        out = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            base = f"/proc/{pid}/task/{tid}"
            try:
                name = Path(f"{base}/comm").read_text().strip()
                ns = int(Path(f"{base}/schedstat").read_text().split()[0])
            except (OSError, ValueError):
                continue  # the thread ended meanwhile (none of the measured ones do)
            out.append((int(tid), name, ns / 1e9))
        return out

    def sample(self) -> dict[str, float]:
        """Seconds of CPU used so far by each part."""
        parts = dict.fromkeys(("event loop", "engine", "other threads", "nats-server"), 0.0)
        for tid, name, seconds in self._tasks(self.pid):
            part = "event loop" if tid == self.pid else "engine" if name == "ryot-worker" else "other threads"
            parts[part] += seconds
        for child in psutil.Process(self.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                part = "nats-server" if "nats" in child.name() else "other threads"
                parts[part] += sum(seconds for _, _, seconds in self._tasks(child.pid))
        return parts

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """CPU seconds by part between two samples."""
        return {k: after[k] - before[k] for k in after}


def service_cpu_ms(used: dict[str, float], tokens: int) -> float:
    """Service CPU (everything but the engine) per streamed token, in milliseconds."""
    return sum(v for k, v in used.items() if k != "engine") / max(tokens, 1) * 1e3


def idle_cpu_ms_per_s(meter: CpuMeter, seconds: float) -> float:
    """The idle service's CPU (everything but the engine) in milliseconds per second, over ``seconds``."""
    before, started = meter.sample(), time.perf_counter()
    time.sleep(seconds)
    used = CpuMeter.delta(before, meter.sample())
    return service_cpu_ms(used, 1) / (time.perf_counter() - started)


SETTLE_WINDOW_S = 0.002
SETTLE_CPU_S = 0.0002
SETTLE_MAX_S = 0.5


def settle() -> float:
    """Wait until neither side still burns CPU from its last request; the seconds waited.

    After a request, llama.cpp's compute threads spin before they sleep (libgomp's ``GOMP_SPINCOUNT``:
    300,000 by default, which this process's raw side keeps; the service sets 10,000): measured here,
    a raw llama-cpp-python completion's two compute threads used 8–10 ms of CPU in the 10 ms after it
    returned. On 2 cores the next request, the other side's, would share the cores with that spinning,
    and the single-stream and prefix sections always start a service request right after a raw one. So
    before each timed request both processes (this one without its main thread, and the service with
    nats-server) must use less than ``SETTLE_CPU_S`` of CPU in a ``SETTLE_WINDOW_S`` window, at most
    ``SETTLE_MAX_S`` of waiting (on a machine busy with other work the window may never be that quiet).
    The service and its nats-server are this process's children, so one :class:`CpuMeter` of this
    process sees both sides; its ``event loop`` part (this main thread, which waits here) is left out.
    """
    started = time.perf_counter()
    me = CpuMeter(os.getpid())

    def busy() -> float:
        parts = me.sample()
        return sum(parts.values()) - parts["event loop"]

    while True:
        before = busy()
        time.sleep(SETTLE_WINDOW_S)
        after = busy()
        waited = time.perf_counter() - started
        if after - before < SETTLE_CPU_S or waited >= SETTLE_MAX_S:
            return waited


class Service:
    """The service over HTTP with Server-Sent Events."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=300, limits=httpx.Limits(max_connections=32))

    def model_memory(self) -> int:
        """Bytes of the loaded models as ``GET /v1/models`` reports them: GGUF size + KV cache of the
        sequences + prefix cache in use."""
        listed = self.client.get("/v1/models").raise_for_status().json()["data"]
        return sum(int(m.get("memory_bytes") or 0) for m in listed if m.get("kind") == "generation")

    def run(self, prompt: str, max_tokens: int, *, speculative: bool = False) -> Stream:
        body = {
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": True,
            "speculative": speculative,
        }
        s = Stream(time.perf_counter())
        with self.client.stream("POST", "/v1/generate", json=body) as response:
            response.raise_for_status()
            event = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                    if event == "token":
                        s.stamps.append(time.perf_counter())
                elif line.startswith("data: ") and event == "done":
                    done = json.loads(line[6:])
                    s.tokens = done["usage"]["completion_tokens"]
                    s.engine_ttft_s = done["timings"]["queue_s"] + done["timings"]["ttft_s"]
                    s.text = done["text"]
        return s


def median(values: Sequence[float | None]) -> float:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else float("nan")


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values, default=float("nan"))


def concurrent_prompt(i: int) -> str:
    """The prompt of stream ``i`` of a concurrency round (also the ceiling's sequence ``i``)."""
    return f"{TOPICS[i % len(TOPICS)]} {i}: write a long essay about them."


def concurrent(
    run: object, n: int, max_tokens: int
) -> tuple[float, float, float, int, list[tuple[str, str]], int]:
    """Aggregate tok/s, p95 inter-token latency (s), median per-stream decode tok/s, total tokens,
    (prompt, text) of each of ``n`` simultaneous streams and the number of token events (SSE events of
    the service; one per token for the raw side)."""
    streams: list[Stream] = []
    texts: list[tuple[str, str]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        s = run(concurrent_prompt(i), max_tokens)  # type: ignore[operator]
        with lock:
            streams.append(s)
            texts.append((concurrent_prompt(i), s.text))

    wall = fan_out(n, one)
    gaps = [g for s in streams for g in s.gaps()]
    tokens = sum(s.tokens for s in streams)
    events = sum(len(s.stamps) for s in streams)
    return tokens / wall, p95(gaps), median([s.decode_tok_s for s in streams]), tokens, texts, events


@dataclass
class CpuTally:
    """CPU seconds by part (:class:`CpuMeter`) and the tokens streamed meanwhile."""

    used: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    wall_s: float = 0.0
    events: int = 0
    """Token events (SSE ``token`` events) meanwhile: each costs the path behind the bridge once."""

    def add(self, used: dict[str, float], tokens: int, wall_s: float, events: int = 0) -> None:
        for k, v in used.items():
            self.used[k] = self.used.get(k, 0.0) + v
        self.tokens += tokens
        self.wall_s += wall_s
        self.events += events

    def net_ms(self, idle_ms_per_s: float) -> float:
        """Service CPU per token (ms) less the idle service's CPU over the same wall time."""
        return service_cpu_ms(self.used, self.tokens) - idle_ms_per_s * self.wall_s / max(self.tokens, 1)

    def describe(self) -> str:
        per = {k: v / max(self.tokens, 1) * 1e3 for k, v in self.used.items()}
        return ", ".join(f"{k} {v:.3f}" for k, v in per.items()) + (
            f"; {self.events / max(self.tokens, 1):.2f} token events per token"
        )


class Bench:
    """One run of the sections: the raw side, the service, llama.cpp's ceiling and the result table."""

    def __init__(
        self,
        args: argparse.Namespace,
        raw: Raw,
        ceiling: Ceiling,
        engine: EngineSide,
        proc: subprocess.Popen[bytes],
        url: str,
    ) -> None:
        self.args = args
        self.raw = raw
        self.ceiling = ceiling
        self.engine = engine
        self.proc = proc
        self.svc = Service(url)
        self.meter = CpuMeter(proc.pid)
        self.console = Console(width=150)
        self.table = Table(
            title=f"LLM path: raw llama-cpp-python vs Neurectomy (Gemma 3 270M Q4_K_M, {raw.threads} threads)"
        )
        for col in ("metric", "raw", "service", "service − raw", "service / raw"):
            self.table.add_column(col, justify="right", no_wrap=True)
        self.idle_ms_per_s = 0.0
        """The idle service's CPU (everything but the engine), milliseconds per second."""
        self.alone: dict[str, str] = {}
        """Greedy text of each concurrency prompt served alone (to compare with the same under load)."""
        self.unsettled = 0
        """Timed requests started after :func:`settle` gave up waiting for quiet (a busy machine)."""

    def settle(self) -> None:
        """:func:`settle` before a timed request; a wait that ran out is counted (:attr:`unsettled`)."""
        if settle() >= SETTLE_MAX_S:
            self.unsettled += 1

    def row(self, name: str, r: float, s: float, fmt: str = ".1f") -> None:
        self.table.add_row(name, f"{r:{fmt}}", f"{s:{fmt}}", f"{s - r:+{fmt}}", f"{s / r:.3f}")

    def note(self, name: str, value: str) -> None:
        self.table.add_row(name, "", value, "", "")

    def metered(self, tally: CpuTally, run: object, *args: object) -> object:
        """``run(*args)`` with the service's CPU meanwhile added to ``tally`` (tokens: from the result)."""
        before, started = self.meter.sample(), time.perf_counter()
        out = run(*args)  # type: ignore[operator]
        used = CpuMeter.delta(before, self.meter.sample())
        tokens = out.tokens if isinstance(out, Stream) else out[3]  # type: ignore[index]
        events = len(out.stamps) if isinstance(out, Stream) else out[5]  # type: ignore[index]
        tally.add(used, tokens, time.perf_counter() - started, events)
        return out

    def single(self) -> None:
        """1. Single stream: TTFT cold and warm, decode tok/s, service CPU per token."""
        args, raw, svc = self.args, self.raw, self.svc
        tally = CpuTally()
        runs: dict[str, dict[str, list[Stream]]] = {k: {"raw": [], "svc": []} for k in ("cold", "warm")}
        for i in range(args.runs):
            cold = f"{TOPICS[i % len(TOPICS)]} are fascinating. Write a long essay about them."
            self.settle()
            runs["cold"]["raw"].append(raw.run(cold, args.max_tokens))
            self.settle()
            runs["cold"]["svc"].append(self.metered(tally, svc.run, cold, args.max_tokens))  # type: ignore[arg-type]
            raw.run(WARM_PROMPT, args.max_tokens)  # the second of each pair is fully prefix-cached
            self.settle()
            runs["warm"]["raw"].append(raw.run(WARM_PROMPT, args.max_tokens))
            svc.run(WARM_PROMPT, args.max_tokens)
            self.settle()
            runs["warm"]["svc"].append(self.metered(tally, svc.run, WARM_PROMPT, args.max_tokens))  # type: ignore[arg-type]
            self.console.print(f"single stream: run {i + 1}/{args.runs}", style="dim")
        for kind in ("cold", "warm"):
            self.row(
                f"TTFT {kind} (ms)",
                median([s.ttft_s * 1e3 for s in runs[kind]["raw"]]),
                median([s.ttft_s * 1e3 for s in runs[kind]["svc"]]),
            )
            engine = median([s.engine_ttft_s * 1e3 for s in runs[kind]["svc"] if s.engine_ttft_s is not None])
            self.note(f"  of which in the engine (queue + prefill), {kind}", f"{engine:.1f}")
            # per request (TTFT less its own engine time): the service's path alone, which a loaded
            # machine disturbs far less than the difference of two requests' TTFTs
            timed = [s for s in runs[kind]["svc"] if s.engine_ttft_s is not None]
            outside = [(s.ttft_s - (s.engine_ttft_s or 0.0)) * 1e3 for s in timed]
            self.note(f"  outside the engine (median per request), {kind}", f"{median(outside):.1f}")
        self.row(
            "decode, 1 stream (tok/s)",
            median([s.decode_tok_s for k in runs for s in runs[k]["raw"]]),
            median([s.decode_tok_s for k in runs for s in runs[k]["svc"]]),
        )
        self.note("service CPU per token, 1 stream (ms)", f"{service_cpu_ms(tally.used, tally.tokens):.3f}")
        self.note("  net of the idle service's CPU (ms)", f"{tally.net_ms(self.idle_ms_per_s):.3f}")
        self.console.print(f"1 stream: CPU ms per token by part: {tally.describe()}", style="dim")

    def concurrency(self, n: int) -> None:
        """2. ``n`` streams at once, interleaved with raw streams and llama.cpp's ceiling for ``n``."""
        args, raw, svc, ceiling = self.args, self.raw, self.svc, self.ceiling
        prompts = [concurrent_prompt(i) for i in range(n)]
        for p in prompts:  # greedy text of each prompt served alone, for the identity check
            if p not in self.alone:
                self.alone[p] = svc.run(p, args.max_tokens).text
        ceiling.run(n, 4)  # warm-up of this context
        engine = self.engine
        for p in prompts:
            engine.text_alone(p, args.max_tokens)
        tally = CpuTally()
        rounds = []
        for _ in range(max(args.concurrency_runs, 1)):  # interleaved, like the single-stream runs
            r = concurrent(raw.run, n, args.max_tokens)
            s = self.metered(tally, concurrent, svc.run, n, args.max_tokens)
            c = ceiling.run(n, args.max_tokens)
            e = engine.run(n, args.max_tokens)
            rounds.append((r, s, c, e))
        raws, svcs = [r[0] for r in rounds], [r[1] for r in rounds]
        r_rate, s_rate = median([r[0] for r in raws]), median([s[0] for s in svcs])  # type: ignore[index]
        r_p95, s_p95 = median([r[1] for r in raws]), median([s[1] for s in svcs])  # type: ignore[index]
        c_rate, e_rate = median([c[0] for *_, c, _ in rounds]), median([e[0] for *_, e in rounds])
        # raw streams run one after another, so their decode rate is one raw stream's, measured in the
        # same round as the service's streams: the ratio is robust to this machine's drifting speed
        gain = median([s[0] / r[2] for r, s, *_ in rounds])  # type: ignore[index]
        of_ceiling = median([s[0] / c[0] for _, s, c, _ in rounds])  # type: ignore[index]
        engine_of_ceiling = median([e[0] / c[0] for *_, c, e in rounds])
        texts = [t for _, s, *_ in rounds for t in s[4]]  # type: ignore[index]
        same = sum(self.alone[p] == t for p, t in texts)
        e_texts = [t for *_, e in rounds for t in e[1]]
        e_same = sum(engine.text_alone(p, args.max_tokens) == t for p, t in e_texts)
        c_same = sum(
            tokens == ceiling.alone(i, args.max_tokens)
            for *_, c, _ in rounds
            for i, tokens in enumerate(c[1])
        )
        self.row(f"{n} streams: aggregate tok/s", r_rate, s_rate)
        self.note(f"{n} streams: service aggregate ÷ 1 raw stream", f"{gain:.2f}")
        self.note(f"{n} streams: llama.cpp batch ceiling tok/s", f"{c_rate:.1f}")
        self.note(f"{n} streams: Ryot engine in-process tok/s", f"{e_rate:.1f}")
        self.note(f"{n} streams: engine ÷ ceiling (per round)", f"{engine_of_ceiling:.3f}")
        self.note(f"{n} streams: service ÷ ceiling (per round)", f"{of_ceiling:.3f}")
        self.row(f"{n} streams: p95 gap between token events (ms)", r_p95 * 1e3, s_p95 * 1e3)
        self.note(
            f"{n} streams: service CPU per token (ms)", f"{service_cpu_ms(tally.used, tally.tokens):.3f}"
        )
        self.note("  net of the idle service's CPU (ms)", f"{tally.net_ms(self.idle_ms_per_s):.3f}")
        self.note(f"{n} streams: greedy texts = the same prompt alone", f"{same} of {len(texts)}")
        self.note(f"{n} streams: engine in-process, texts = alone", f"{e_same} of {len(e_texts)}")
        self.note(f"{n} streams: llama.cpp ceiling, tokens = alone", f"{c_same} of {n * len(rounds)}")
        self.console.print(
            f"concurrency {n}: service {s_rate:.1f} tok/s, engine {e_rate:.1f}, ceiling {c_rate:.1f}, "
            f"service ÷ ceiling {of_ceiling:.3f}, engine ÷ ceiling {engine_of_ceiling:.3f}; "
            f"CPU ms per token by part: {tally.describe()}",
            style="dim",
        )

    def holes(self) -> None:
        """6. What llama.cpp's micro-batch split costs: decode steps with holes or out of order."""
        if max(self.ceiling.contexts) < 8:
            return
        layouts = {
            "0..7": list(range(8)),
            "0..3": [0, 1, 2, 3],
            "0, 1, 3 (two passes)": [0, 1, 3],
            "0, 1, 2, 3 with 2 a placeholder": [0, 1, 2, 3],
            "0, 2, 4, 6 (four passes)": [0, 2, 4, 6],
            "0..6 with 1, 3, 5 placeholders": list(range(7)),
            "3, 2, 1, 0 (four passes)": [3, 2, 1, 0],
        }
        for name, ms in self.ceiling.step_ms(layouts, max(self.args.runs, 5)).items():
            self.note(f"decode step, sequences {name} (ms)", f"{ms:.1f}")

    def prefix(self) -> None:
        """3. Prefix-cache hit: shared ~256-token prefix, 8 new tokens each time."""
        raw, svc = self.raw, self.svc
        raw.run(SHARED_PREFIX + "Question 0: hello?", 1)
        svc.run(SHARED_PREFIX + "Question 0: hello?", 1)
        hits_r, hits_s = [], []
        for i in range(1, self.args.runs + 1):
            question = f"Q{i}: fees on day {i + 2}?"  # about 8 new tokens after the shared prefix
            self.settle()
            hits_r.append(raw.run(SHARED_PREFIX + question, 2).ttft_s * 1e3)
            self.settle()
            hits_s.append(svc.run(SHARED_PREFIX + question, 2).ttft_s * 1e3)
        self.row("TTFT, 256-token prefix hit (ms)", median(hits_r), median(hits_s))

    def speculative(self) -> None:
        """4. Speculative decoding by prompt lookup, on a prompt whose continuation copies its text."""
        raw, svc, args = self.raw, self.svc, self.args
        raw_lookup = Raw(raw.threads, raw.n_ctx, prompt_lookup=True)
        spec: dict[str, list[Stream]] = {k: [] for k in ("raw", "raw_lookup", "svc", "svc_lookup")}
        for i in range(args.runs):
            prompt = COPY_PROMPT.format(i=i)
            spec["raw"].append(raw.run(prompt, args.max_tokens))
            spec["raw_lookup"].append(raw_lookup.run(prompt, args.max_tokens))
            spec["svc"].append(svc.run(prompt, args.max_tokens))
            spec["svc_lookup"].append(svc.run(prompt, args.max_tokens, speculative=True))
        del raw_lookup
        for name, r, s in (("plain", "raw", "svc"), ("prompt lookup", "raw_lookup", "svc_lookup")):
            self.row(
                f"copying text: decode tok/s, {name}",
                median([x.decode_tok_s for x in spec[r]]),
                median([x.decode_tok_s for x in spec[s]]),
            )
        same = sum(a.text == b.text for a, b in zip(spec["svc"], spec["svc_lookup"], strict=True))
        self.note("  service texts with prompt lookup = without", f"{same} of {len(spec['svc'])}")

    def memory(self) -> None:
        """5. The service's RSS before and after ``--memory-requests`` short requests."""
        n = self.args.memory_requests
        if not n:
            return
        rss = psutil.Process(self.proc.pid)
        before = rss.memory_info().rss / 2**20
        for i in track(range(n), description="memory: requests", console=self.console):
            self.svc.run(f"Request {i}: say something short.", 4)
        after = rss.memory_info().rss / 2**20
        model_kv = self.svc.model_memory() / 2**20
        self.table.add_row(
            f"service RSS before/after {n} requests (MiB)",
            "",
            f"{before:.0f} → {after:.0f}",
            f"{after - before:+.0f}",
            "",
        )
        self.note("service RSS − (model + KV cache) (MiB)", f"{after - model_kv:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--concurrency-runs", type=int, default=3, help="interleaved rounds per level")
    parser.add_argument("--memory-requests", type=int, default=1000)
    parser.add_argument("--all-teams", action="store_true", help="serve every team, not only inference")
    parser.add_argument("--idle-s", type=float, default=3.0, help="seconds to measure the idle service")
    parser.add_argument(
        "--chunk-interval",
        type=float,
        default=None,
        help="the service's generator.chunk_interval_s in seconds (default: the service's default)",
    )
    parser.add_argument(
        "--sections", nargs="*", choices=SECTIONS, default=list(SECTIONS), help="default: all"
    )
    parser.add_argument(
        "--service-env",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="environment of the service only, e.g. OMP_WAIT_POLICY=active NEURECTOMY_RYOT__N_THREADS=1 "
        "(the raw side, the ceiling and the in-process engine keep this process's environment)",
    )
    parser.add_argument(
        "--ceiling-repack",
        action="store_true",
        help="build the batch ceiling with llama.cpp's default weight repacking (faster batched kernels) "
        "instead of the service's layout (repack off, see RyotConfig.repack)",
    )
    args = parser.parse_args()
    threads = physical_cores()
    config = RyotConfig()
    print(
        f"model {default_model_path().name}, {threads} threads, n_ctx {config.n_ctx}, "
        f"parallel {config.parallel}, {args.runs} runs, {args.max_tokens} tokens, "
        f"ceiling weight repacking {'on' if args.ceiling_repack or config.repack else 'off'}, "
        f"load average {os.getloadavg()[0]:.2f} before the run"
        + (f", service environment {' '.join(args.service_env)}" if args.service_env else "")
    )
    raw = Raw(threads, config.n_ctx)
    ceiling = Ceiling(threads, config.n_ctx, args.concurrency, repack=args.ceiling_repack or config.repack)
    engine = EngineSide(config, max(args.concurrency, default=1))
    state = Path(tempfile.mkdtemp(prefix="neurectomy-bench-"))
    os.environ.setdefault("NEURECTOMY_LOG_LEVEL", "warning")
    if not args.all_teams:
        os.environ["NEURECTOMY_TEAMS"] = '["inference"]'
    if args.chunk_interval is not None:
        os.environ["NEURECTOMY_GENERATOR__CHUNK_INTERVAL_S"] = str(args.chunk_interval)
    service_env = dict(item.split("=", 1) for item in args.service_env)
    proc, url = start_serve(state, env=service_env)
    try:
        bench = Bench(args, raw, ceiling, engine, proc, url)
        raw.run("Warm-up.", 4)
        bench.svc.run("Warm-up.", 4)
        bench.idle_ms_per_s = idle_cpu_ms_per_s(bench.meter, args.idle_s)
        bench.note("service idle CPU (ms per second)", f"{bench.idle_ms_per_s:.2f}")
        if "single" in args.sections:
            bench.single()
        if "concurrency" in args.sections:
            for n in args.concurrency:
                bench.concurrency(n)
        if "prefix" in args.sections:
            bench.prefix()
        if bench.unsettled:
            bench.note("timed requests started before both sides were quiet", str(bench.unsettled))
        if "speculative" in args.sections:
            bench.speculative()
        if "memory" in args.sections:
            bench.memory()
        if "holes" in args.sections:
            bench.holes()
    finally:
        stop_serve(proc)
        engine.close()
        subprocess.run(["rm", "-rf", str(state)], check=False)
    bench.console.print(bench.table)
    bench.console.print(
        f"Load average after the run: {os.getloadavg()[0]:.2f} (2 cores; other work on the machine skews "
        "absolute rates, the interleaved ratios less).\n"
        "Targets: TTFT ≤ raw + 3 ms (cold, warm and prefix hit); service ÷ llama.cpp batch ceiling "
        "≥ 0.95 at 4 and 8 streams; service CPU per streamed token ≤ 0.25 ms; "
        "greedy texts under concurrency = alone; "
        "no memory drift; RSS ≤ model + KV cache + 150 MB."
    )


if __name__ == "__main__":
    main()
