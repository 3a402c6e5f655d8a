"""A cold prompt's time to first token, stage by stage: raw llama-cpp-python against ``RyotEngine``.

One process, one GGUF (Gemma 3 270M Q4_K_M), the same compute threads. Each round makes new engines
(their slots as after a service start), then sends ``--prompts`` prompts never seen before, of
``benchmarks/llm_path.py``'s cold shape ("<topic> are fascinating. Write a long essay about them.", 13
tokens), each prompt to every side (raw and each variant's engine; separate contexts, so it is new to
each), the order rotated from prompt to prompt. Both sides run with the libgomp settings ``import ryot``
sets (this script imports ``ryot`` before ``llama_cpp``), so the OpenMP spin count is the same on both;
``--spin`` runs the whole comparison under another ``GOMP_SPINCOUNT`` (in a child process: libgomp reads
it once, when it loads). The engine's token is awaited on an event, not by polling: a third runnable
thread during a 2-thread prefill on 2 cores slows it by ~15 % (docs/ryot.md).

Stamps (``time.perf_counter``), wrapped around the functions named by this script, per request:

- raw: the call → ``llama_decode`` entered (tokenization, prefix check, batch) → returned (the C call)
  → the first chunk yielded (sampling, detokenization);
- engine: the call → ``submit`` returned (tokenization, validation, queueing) → admission entered
  (``_start``: the worker woke) → admission done (slot, sampler, KV trim) → ``llama_decode`` entered
  (batch built) → returned → the first token sampled → the sink holds it (delivery).

Plus the process CPU time of the ``llama_decode`` call and the rows it evaluated. Each variant
(``--variants``) is a ``RyotEngine`` configuration (``default``: as the service configures it; the
others change one thing, see :data:`VARIANTS`). Prints medians (and p25/p75) per stage and, paired by
prompt, each engine's ratio to and difference from raw, ms.

    PYTHONPATH=$PWD python benchmarks/ryot_cold.py --rounds 6 --prompts 6 --variants default unprimed
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import ryot  # noqa: F401 - first: ryot's kernel and OpenMP defaults, before llama.cpp (libgomp) loads

# isort: split
import llama_cpp
import llama_cpp.llama_cpp as llama_low

from ryot import Finished, RyotConfig, RyotEngine, SamplingParams, TokenChunk
from ryot._engine import RyotEngine as _Engine
from ryot._llama import Sampler
from ryot.models import default_model_path

WORDS = (
    "Lighthouses Volcanoes Penguins Railways Glaciers Bees Comets Deserts Harbours Orchards Bridges "
    "Caves Rivers Forests Islands Canals Mountains Windmills Castles Libraries Markets Gardens Tunnels "
    "Lakes Meadows Beaches Reefs Prairies Canyons Fjords Lagoons Marshes Vineyards Quarries Observatories "
    "Monasteries Aqueducts Lighthouses2 Ferries Satellites Telescopes Clocks Compasses Kites Lanterns "
    "Bicycles Typewriters Violins Pianos Trumpets Drums Harps Looms Anvils Kilns Furnaces Mills Dams"
).split()

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "unprimed": {"prime": False},
    "parallel1": {"parallel": 1},
    "nctx512": {"n_ctx": 512},
    "nocache": {"prefix_cache_bytes": 0},
    "repack": {"repack": True},
    "draft0": {"draft_max": 0},
}
"""RyotConfig overrides per variant (``default``: the service's configuration; ``prime``: False starts
the engine without the BOS token in its slots, as before ``RyotEngine._prime_slots``)."""


class _Unprimed(RyotEngine):
    """The engine without the BOS token in its slots at start (as before ``_prime_slots``)."""

    def _prime_slots(self) -> None:
        return None


def _engine(base: RyotConfig, variant: str) -> RyotEngine:
    overrides = dict(VARIANTS[variant])
    kind = RyotEngine if overrides.pop("prime", True) else _Unprimed
    return kind(base.model_copy(update=overrides))


class Stamps:
    """Named ``perf_counter`` stamps of the request being measured (first stamp of a name wins)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}
        self.decode_ms: list[float] = []
        self.decode_rows: list[int] = []
        self.decode_cpu_ms: list[float] = []

    def mark(self, name: str) -> None:
        self.t.setdefault(name, time.perf_counter())


CURRENT = Stamps()


def _wrap_decode() -> None:
    """Stamp every ``llama_decode`` (raw: ``llama_cpp.llama_cpp``; engine: ``llama_cpp``)."""
    inner = llama_low.llama_decode

    def decode(ctx: Any, batch: Any) -> int:
        CURRENT.mark("decode_in")
        t0, c0 = time.perf_counter(), time.process_time()
        rc = int(inner(ctx, batch))
        CURRENT.decode_ms.append((time.perf_counter() - t0) * 1e3)
        CURRENT.decode_cpu_ms.append((time.process_time() - c0) * 1e3)
        CURRENT.decode_rows.append(int(batch.n_tokens))
        CURRENT.mark("decode_out")
        return rc

    llama_low.llama_decode = decode
    llama_cpp.llama_decode = decode  # type: ignore[attr-defined]


def _wrap_engine() -> None:
    start = _Engine._start
    sample = Sampler.sample

    def _start(self: Any, job: Any, free: Any) -> None:
        CURRENT.mark("admit_in")
        start(self, job, free)
        CURRENT.mark("admit_out")

    def _sample(self: Any, ctx: Any, index: int) -> int:
        token = sample(self, ctx, index)
        CURRENT.mark("sampled")
        return token

    _Engine._start = _start  # type: ignore[method-assign]
    Sampler.sample = _sample  # type: ignore[method-assign]


def raw_once(llm: llama_cpp.Llama, prompt: str) -> dict[str, float]:
    """Stage times (ms) of one raw streamed completion's first token."""
    global CURRENT
    CURRENT = s = Stamps()
    s.mark("call")
    stream: Iterator[Any] = llm.create_completion(prompt, max_tokens=2, temperature=0.0, stream=True)  # type: ignore[assignment]
    next(stream)
    s.mark("first")
    for _ in stream:
        pass
    t = s.t
    return {
        "to decode (tokenize, batch)": (t["decode_in"] - t["call"]) * 1e3,
        "llama_decode": s.decode_ms[0],
        "llama_decode CPU (process)": s.decode_cpu_ms[0],
        "sample + deliver": (t["first"] - t["decode_out"]) * 1e3,
        "TTFT": (t["first"] - t["call"]) * 1e3,
        "prefill rows": s.decode_rows[0],
    }


def engine_once(engine: RyotEngine, prompt: str) -> dict[str, float]:
    """Stage times (ms) of one engine request's first token."""
    global CURRENT
    CURRENT = s = Stamps()
    got: list[float] = []
    done = threading.Event()

    def sink(event: object) -> None:
        if isinstance(event, TokenChunk) and not got:
            got.append(time.perf_counter())
        if isinstance(event, Finished):
            done.set()

    s.mark("call")
    handle = engine.submit(prompt, SamplingParams(max_tokens=2, temperature=0.0), sink)
    s.mark("submitted")
    del handle
    done.wait()  # one wake-up at the end: this thread stays off the cores while the engine computes
    t = s.t
    first = got[0]
    out = {
        "submit (tokenize, queue)": (t["submitted"] - t["call"]) * 1e3,
        "worker wake-up": (t["admit_in"] - t["submitted"]) * 1e3,
        "admission": (t["admit_out"] - t["admit_in"]) * 1e3,
        "to decode (batch built)": (t["decode_in"] - t["admit_out"]) * 1e3,
        "llama_decode": s.decode_ms[0],
        "llama_decode CPU (process)": s.decode_cpu_ms[0],
        "sample": (t["sampled"] - t["decode_out"]) * 1e3,
        "deliver": (first - t["sampled"]) * 1e3,
        "TTFT": (first - t["call"]) * 1e3,
        "prefill rows": s.decode_rows[0],
    }
    return out


def _summary(rows: list[dict[str, float]]) -> dict[str, tuple[float, float, float]]:
    out = {}
    for key in rows[0]:
        values = sorted(r[key] for r in rows)
        q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        out[key] = (q[0], statistics.median(values), q[2])
    return out


def _print(name: str, rows: list[dict[str, float]]) -> dict[str, tuple[float, float, float]]:
    summary = _summary(rows)
    print(f"  {name} ({len(rows)} prompts): median ms [p25, p75]")
    for key, (lo, mid, hi) in summary.items():
        print(f"    {key:<30} {mid:8.2f}  [{lo:7.2f}, {hi:7.2f}]")
    return summary


def run(args: argparse.Namespace) -> None:
    """Measure and print (in this process)."""
    _wrap_decode()
    _wrap_engine()
    path = default_model_path()
    base = RyotConfig(n_threads=args.threads)
    threads = base.resolved_threads()
    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=base.n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        swa_full=True,
        verbose=False,
    )
    print(
        f"{path.name}, {threads} threads, GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    prompts = [f"{w} are fascinating. Write a long essay about them." for w in WORDS]
    if args.prompts * args.rounds > len(prompts):
        prompts += [f"{w} and {v} are fascinating. Write about them." for w in WORDS for v in WORDS if v != w]
    names = ["raw", *(f"engine {v}" for v in args.variants)]
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for r in range(args.rounds):  # new engines each round: their slots start as the service's do
        engines = {v: _engine(base, v) for v in args.variants}
        sides: dict[str, Callable[[str], dict[str, float]]] = {"raw": lambda p: raw_once(llm, p)}
        for v, engine in engines.items():
            sides[f"engine {v}"] = lambda p, e=engine: engine_once(e, p)
        try:
            for side in sides.values():  # llama.cpp's first decode of a context allocates: not timed
                side(f"Warm up the kernels {r}.")
            for i, prompt in enumerate(prompts[r * args.prompts : (r + 1) * args.prompts]):
                # the same new prompt on every side, the order rotated
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    time.sleep(args.gap_s)
                    rows[name].append(sides[name](prompt))
        finally:
            for engine in engines.values():
                engine.close()
    summaries = {
        name: _print(name + (f" {VARIANTS[name[7:]] or '(as the service)'}" if name != "raw" else ""), r)
        for name, r in rows.items()
    }
    print(
        f"paired by prompt, median of (side ÷ raw) and (side − raw), load average {os.getloadavg()[0]:.2f}:"
    )
    for name in names[1:]:
        for key in ("TTFT", "llama_decode", "llama_decode CPU (process)"):
            ratios = [e[key] / r[key] for e, r in zip(rows[name], rows["raw"], strict=True)]
            diffs = [e[key] - r[key] for e, r in zip(rows[name], rows["raw"], strict=True)]
            print(
                f"  {name:<16} {key:<28} {statistics.median(ratios):.3f}  {statistics.median(diffs):+7.2f} ms"
                f"  (medians {summaries[name][key][1]:.2f} vs {summaries['raw'][key][1]:.2f})"
            )
    llm.close()


def main() -> None:
    """Parse the arguments; run in this process, or in a child with ``--spin``'s libgomp spin count."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=6, help="new prompts per round (each to every side)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each with new engines")
    parser.add_argument("--threads", type=int, default=None, help="compute threads (default: the service's)")
    parser.add_argument("--variants", nargs="+", default=["default"], choices=sorted(VARIANTS))
    parser.add_argument("--gap-s", type=float, default=0.05, help="pause before each request, seconds")
    parser.add_argument("--spin", type=int, default=None, help="run in a child with this GOMP_SPINCOUNT")
    args = parser.parse_args()
    if args.spin is not None and os.environ.get("GOMP_SPINCOUNT") != str(args.spin):
        env = {**os.environ, "GOMP_SPINCOUNT": str(args.spin)}
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))  # noqa: S603 - this script again
    run(args)


if __name__ == "__main__":
    main()
