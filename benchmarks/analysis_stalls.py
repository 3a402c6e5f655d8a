"""Event-loop stalls of the Analysis team's agents on their largest accepted inputs.

Each case calls one agent's ``handle`` (the code the service runs, limiters as ``serve`` builds them) on
an input at or near the agent's size limit, while a sampler task on the same event loop sleeps 10 ms at
a time and records how late each wake-up comes (the lag). It prints, per case, the worst and the p99 lag,
the median lag (what every wake-up of the loop paid while the call ran: the wait for the GIL), the call's
wall time and the CPU time this process spent during the call (``time.process_time``: the
work a worker process does is not in it). Every agent is warmed up first with a small input (imports,
lexicons, the worker process start), so the numbers are for a warm service.

A lag far above the 10 ms period means the event loop could not run for that long: every coroutine of
the process (the API's ``/health`` beside the agents, NATS pings) waited as long. Pure Python in a thread
lets the loop in every 5 ms (``sys.getswitchinterval()``); one long C call holding the GIL (a regex over
a huge string, ``ast.parse``, a C extension) does not; work done on the loop itself blocks it outright.

``--concurrent N`` puts N calls of each case in flight at once (the runtime runs two per agent instance).
``--trees A B --rounds R`` runs the cases against two checkouts interleaved (A B A B ..., each run a fresh
process with that checkout first on ``PYTHONPATH``) and prints the median of each figure per tree and
the ratio B/A: on a loaded machine only an interleaved comparison means anything::

    python benchmarks/analysis_stalls.py sentiment entities --freeze --concurrent 2 \
        --trees /tmp/main-copy . --rounds 3

``--decode`` measures the other stall of a large input instead: decoding (``pydantic_core.from_json``, as
the agents' accept path does) and validating an input of the NATS max payload, on the event loop and in a
worker thread, for a few shapes of JSON. pydantic-core's Rust decoder keeps the GIL for the whole call,
so a thread does not spare the loop: its worst lag is the decode's time either way.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and benchmarks/vault.py would shadow `vault`.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import anyio  # noqa: E402
import anyio.to_thread  # noqa: E402

import agents.analysis as analysis  # noqa: E402
from agents._call import Call  # noqa: E402
from agents.analysis import ANALYSIS_PROCESSES, ANALYSIS_THREADS, AnalysisAgent  # noqa: E402

PERIOD_S = 0.010
"""The sampler's sleep, in seconds."""

_WORDS = (
    "the service answers every request quickly and the team loves it but the old queue was terrible "
    "slow and broken so we replaced it with a great new design that works well under heavy load while "
    "some users still complain about awful latency spikes at night when backups run on the same disk"
).split()


def prose(chars: int, seed: int = 0) -> str:
    """English-like prose of about ``chars`` characters: sentences of 8-25 words, capitalised, with dots."""
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < chars:
        sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 25)))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", ".", "!", "?"]) + " "
        out.append(sentence)
        size += len(sentence)
    return "".join(out)[:chars]


def entity_text(chars: int) -> str:
    """Prose dense with entities: e-mails, URLs, phones, dates, money, percentages and names."""
    unit = (
        "Ada Lovelace wrote to ada@example.org on 5 May 2023 at 4:15 pm about https://example.com/x?y=1 "
        "and www.python.org; call +1 650-253-0000 or (212) 555-0123. The Bank of England paid $1,500.25 "
        "and EUR 3 million, up 12.5% from March 3rd, 2022. "
    )
    return (unit * (chars // len(unit) + 1))[:chars]


def python_source(chars: int) -> str:
    """Python source of about ``chars`` characters: classes with branchy methods and imports."""
    parts: list[str] = []
    size, i = 0, 0
    while size < chars:
        block = (
            f"import os.path as p{i}\nfrom collections import OrderedDict as O{i}\n\n\n"
            f"class Thing{i}(Base):\n    '''Doc.'''\n\n"
            f"    def method_{i}(self, a, b=1, *args, key=None, **kw):\n"
            f"        if a > b and key:\n            return [x for x in args if x]\n"
            f"        elif a < 0:\n            for j in range(a):\n                if j % 2:\n"
            f"                    b += j\n        while b:\n            b -= 1\n        return b\n\n\n"
        )
        parts.append(block)
        size += len(block)
        i += 1
    return "".join(parts)


def cases(limit: int) -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, agent name, input)`` for each measured call."""
    from agents.analysis._similarity import MAX_CANDIDATES, MAX_SIMILARITY_CHARS  # noqa: PLC0415

    entity_limit = analysis.MAX_ENTITY_TEXT_CHARS
    text = prose(limit)
    return [
        ("sentiment prose", "sentiment", {"text": text}),
        ("sentiment 20k chars whole", "sentiment", {"text": prose(20_000, 1)}),
        ("keywords prose n=3", "keyword-extractor", {"text": text}),
        ("keywords prose n=5 top 100", "keyword-extractor", {"text": text, "max_ngram": 5, "top_k": 100}),
        ("keywords 'Aa-'*", "keyword-extractor", {"text": ("Aa-" * limit)[:limit]}),
        ("entities dense", "entity-extractor", {"text": entity_text(entity_limit)}),
        ("entities prose", "entity-extractor", {"text": prose(entity_limit)}),
        ("entities 'a@'*", "entity-extractor", {"text": ("a@" * entity_limit)[:entity_limit]}),
        (
            "entities fr dates",
            "entity-extractor",
            {"text": entity_text(entity_limit), "date_languages": ["fr"]},
        ),
        ("language prose", "language-detector", {"text": text}),
        ("code", "code-analyzer", {"code": python_source(limit)[:limit].rsplit("\n\n\n", 1)[0] + "\n"}),
        ("statistician text", "statistician", {"text": ("1 " * limit)[:limit]}),
        ("statistician values", "statistician", {"values": [float(i % 997) for i in range(200_000)]}),
        ("quality prose", "quality-critic", {"text": text}),
        (
            "similarity 256 candidates",
            "similarity",
            {
                "text": prose(MAX_SIMILARITY_CHARS, 2),
                "candidates": [prose(MAX_SIMILARITY_CHARS, 3 + i) for i in range(MAX_CANDIDATES)],
            },
        ),
    ]


WARM_UP: dict[str, dict[str, Any]] = {
    "sentiment": {"text": "A fine day."},
    "keyword-extractor": {"text": "Solar panels convert sunlight into electricity."},
    "entity-extractor": {"text": "Mail ada@example.org on 5 May 2023.", "date_languages": ["en", "fr"]},
    "language-detector": {"text": "Ceci est une phrase en français."},
    "code-analyzer": {"code": "def f(x):\n    return x\n"},
    "statistician": {"values": [1.0, 2.0, 3.0]},
    "quality-critic": {"text": "A short text to warm up."},
    "similarity": {"text": "hello world", "other": "hi world"},
}


WARM_UP_LONG: dict[str, dict[str, Any]] = {
    "sentiment": {"text": "A fine day. " * 100},
    "entity-extractor": {"text": "Mail ada@example.org on 5 May 2023. " * 40},
}
"""A second warm-up for agents that send long texts to the worker process: its start is not measured."""


def make_call(agent: AnalysisAgent, payload: dict[str, Any]) -> Call:
    """A :class:`Call` as the agent's worker hands it over (input validated, ten minutes of deadline)."""
    assert agent.input_model is not None
    model = agent.input_model.model_validate(payload)
    return Call("bench", model, time.time() + 600, "t", "trace", "inbox", None)  # type: ignore[arg-type]


async def measured(
    run: Callable[[], Any], *, watch_gc: bool = True
) -> tuple[float, float, float, float, float, float]:
    """``(worst, p99, p50 lag, wall, CPU, longest gc)`` of ``await run()``, in seconds, sampler running.

    The longest gc is the longest garbage collection of this process during the call (it holds the GIL
    throughout, whichever thread triggered it). ``watch_gc=False`` installs no ``gc.callbacks`` hook: the
    hook is Python code, and running it lets a thread waiting for the GIL in, even in the middle of a C
    call that holds it (a decode), which the service, without the hook, does not do.
    """
    lags: list[float] = []
    done = anyio.Event()
    gc_started, gc_longest = [0.0], [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_longest[0] = max(gc_longest[0], time.perf_counter() - gc_started[0])

    async def sample() -> None:
        while not done.is_set():
            before = anyio.current_time()
            await anyio.sleep(PERIOD_S)
            lags.append(anyio.current_time() - before - PERIOD_S)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sample)
        await anyio.sleep(PERIOD_S)
        hooks = [on_gc] if watch_gc else []
        gc.callbacks.extend(hooks)
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            await run()
        finally:
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            for hook in hooks:
                gc.callbacks.remove(hook)
            done.set()
    lags.sort()
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0.0
    p50 = lags[len(lags) // 2] if lags else 0.0
    return (max(lags, default=0.0), p99, p50, wall, cpu, gc_longest[0])


async def main(only: list[str], limit: int, concurrent: int, freeze: bool, as_json: bool) -> None:
    from agents.analysis import MiniLMEmbedding, SimilarityAgent  # noqa: PLC0415

    selected = [c for c in cases(limit) if not only or any(o in c[0] for o in only)]
    wanted = {name for _, name, _ in selected}
    threads, processes = anyio.CapacityLimiter(ANALYSIS_THREADS), anyio.CapacityLimiter(ANALYSIS_PROCESSES)
    team: dict[str, AnalysisAgent] = {}
    for cls in analysis.ANALYSIS_AGENTS:
        if cls.name not in wanted:
            continue
        if cls is SimilarityAgent:
            embedding = MiniLMEmbedding(timeout_s=600)
            await embedding.load()
            team[cls.name] = SimilarityAgent(embedding, limiter=threads, processes=processes)
        else:
            team[cls.name] = cls(limiter=threads, processes=processes)
    for name, agent in team.items():
        await agent.handle(make_call(agent, WARM_UP[name]))
        await agent.handle(make_call(agent, {**WARM_UP[name], **WARM_UP_LONG.get(name, {})}))
    if freeze:  # the start-up heap out of the collector's reach: full collections then scan only the rest
        gc.collect()
        gc.freeze()
    head = f"{'case':<28} {'worst lag ms':>12} {'p99 lag ms':>11} {'p50 lag ms':>11} {'wall s':>8}"
    head += f" {'CPU here s':>11}"
    if not as_json:
        print(head + f" {'longest gc ms':>14}")
    for label, name, payload in selected:
        agent = team[name]
        call = make_call(agent, payload)

        async def run(agent: AnalysisAgent = agent, call: Call = call) -> None:
            async with anyio.create_task_group() as tg:
                for _ in range(concurrent):
                    tg.start_soon(agent.handle, call)

        worst, p99, p50, wall, cpu, gc_s = await measured(run)
        if as_json:
            print(
                json.dumps({"case": label, "worst": worst, "p99": p99, "p50": p50, "wall": wall}), flush=True
            )
            continue
        row = f"{label:<28} {worst * 1e3:>12.0f} {p99 * 1e3:>11.0f} {p50 * 1e3:>11.1f}"
        print(row + f" {wall:>8.2f} {cpu:>11.2f} {gc_s * 1e3:>14.0f}", flush=True)


def compare(trees: list[str], rounds: int, argv: list[str]) -> None:
    """Run this script on each tree in turn, ``rounds`` times (A B A B ...); print medians and ratios."""
    results: dict[str, dict[str, dict[str, list[float]]]] = {t: {} for t in trees}
    for r in range(rounds):
        for tree in trees:
            env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
            out = subprocess.run(
                [sys.executable, __file__, *argv, "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for line in out.splitlines():
                if line.startswith("{"):
                    row = json.loads(line)
                    per_case = results[tree].setdefault(row["case"], {})
                    for key in ("worst", "p50", "wall"):
                        per_case.setdefault(key, []).append(row[key])
            print(f"round {r + 1}/{rounds} {tree} done", file=sys.stderr, flush=True)
    a, b = trees
    print(f"{'case':<28} {'figure':<10} {a[-14:]:>14} {b[-14:]:>14} {'B/A':>6}   (medians of {rounds} runs)")
    for case in results[a]:
        for key, unit, scale in (("worst", "lag ms", 1e3), ("p50", "lag ms", 1e3), ("wall", "s", 1.0)):
            ma = statistics.median(results[a][case][key]) * scale
            mb = statistics.median(results[b].get(case, {}).get(key, [math.nan])) * scale
            ratio = mb / ma if ma > 0 else math.nan
            print(f"{case:<28} {key + ' ' + unit:<10} {ma:>14.1f} {mb:>14.1f} {ratio:>6.2f}")


DECODE_SHAPES: dict[str, Callable[[int], dict[str, Any]]] = {
    "ascii text": lambda n: {"text": "x" * (n - 20)},
    "escaped text": lambda n: {"text": "\n" * ((n - 20) // 2)},
    "numbers": lambda n: {"values": [1.5] * ((n - 20) // 5)},
    "objects (unknown field)": lambda n: {"text": "a", "x": [{"a": 1}] * ((n - 30) // 9)},
}
"""JSON inputs of about ``n`` bytes: one long string, one escape-dense string, a list of numbers, and a list
of small objects in a field the agent does not know (refused only after the whole input is decoded)."""


async def decode_stalls() -> None:
    """The event loop's worst lag while an input of the NATS max payload is decoded and validated."""
    import pydantic_core  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415

    from agents.analysis import SentimentInput, StatsInput  # noqa: PLC0415
    from agents.limits import ENVELOPE_RESERVE_BYTES, NATS_MAX_PAYLOAD_BYTES  # noqa: PLC0415

    size = NATS_MAX_PAYLOAD_BYTES - ENVELOPE_RESERVE_BYTES

    def decode(body: bytes, model: Any) -> None:
        try:
            model.model_validate(pydantic_core.from_json(body))
        except ValidationError:
            pass

    print(f"{'input':<26} {'MB':>5} {'where':<7} {'worst lag ms':>12} {'p50 lag ms':>11} {'wall ms':>8}")
    for label, shape in DECODE_SHAPES.items():
        body = json.dumps(shape(size)).encode()
        model = StatsInput if "numbers" in label else SentimentInput
        for where in ("loop", "thread", "loop", "thread"):

            async def run(body: bytes = body, model: Any = model, where: str = where) -> None:
                if where == "loop":
                    decode(body, model)
                else:
                    await anyio.to_thread.run_sync(decode, body, model)

            worst, _, p50, wall, _, _ = await measured(run, watch_gc=False)
            row = f"{label:<26} {len(body) / 1e6:>5.1f} {where:<7} {worst * 1e3:>12.0f} {p50 * 1e3:>11.1f}"
            print(row + f" {wall * 1e3:>8.0f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="Only the cases whose label holds one of these.")
    parser.add_argument("--chars", type=int, default=analysis.MAX_TEXT_CHARS, help="Text size limit.")
    parser.add_argument("--concurrent", type=int, default=1, help="Calls at once per case (same input).")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() after the warm-up.")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--trees", nargs=2, metavar=("A", "B"), help="Compare two checkouts, interleaved.")
    parser.add_argument("--rounds", type=int, default=3, help="Runs per tree with --trees.")
    parser.add_argument("--decode", action="store_true", help="Decode stalls of a max-payload input.")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trees:
        passed = [*args.only, "--chars", str(args.chars), "--concurrent", str(args.concurrent)]
        passed += ["--loop", args.loop] + (["--freeze"] if args.freeze else [])
        compare(args.trees, args.rounds, passed)
    elif args.decode:
        anyio.run(decode_stalls, backend_options={"use_uvloop": args.loop == "uvloop"})
    else:
        anyio.run(
            main,
            args.only,
            args.chars,
            args.concurrent,
            args.freeze,
            args.json,
            backend_options={"use_uvloop": args.loop == "uvloop"},
        )
