"""ΣLANG benchmark: ratio and speed against zstd-3, zstd-19, zstd-19 + dictionary, whole-session zstd-19.

Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/sigmalang.py [--runs 3] [--seed 7] [--tenants 4]
[--sessions-per-tenant 8] [--turns 4 14] [--messages 2000] [--source stdlib|packages]
[--corpus rag|window|coding] [--attribution] [--lossy] [--rest]
[--rest-baseline DIR] [--rest-ways WAY,...] [--rest-repeats N] [--rest-split] [--sealed] [--clock wall|cpu]
[--max-turn-bytes N]``

Corpora (deterministic, nothing downloaded):

- sessions (`benchmarks/sigma_corpus.py`): multi-turn RAG agent sessions built from text that ships
  with Python (standard-library docstrings as retrieved documents, tool schemas from its function
  signatures, system prompts from ``pydoc_data.topics``); every turn re-sends the system prompt, the
  tool schemas and the whole history with the retrieved passages. Sessions belong to tenants.
  ``--source packages``: an independent draw, documents and system prompts from the docstrings of the
  installed third-party packages instead.
- ``--corpus window`` (`benchmarks/sigma_corpus_window.py`): an independent generator the codec was
  not tuned on: Messages-API requests (compact JSON, UTF-8 kept) with a sliding history window and a
  per-turn header, documents from comment blocks of Python source.
- ``--corpus coding`` (`benchmarks/sigma_corpus_coding.py`): coding agents of another shape: installed
  packages' source files read through JSON tool calls and results, Ollama / Anthropic / OpenAI
  envelopes (pretty-printed, sorted keys, JSON inside JSON), histories summarised or truncated at the
  front, some prose in other languages.
- messages: agent JSON envelopes of 200 B-4 KB (task requests, results, stream chunks, errors).

Dictionaries are trained on a *separate* corpus made with another seed. Per-message codecs compress
each message on its own; "zstd-19 over whole sessions" compresses each session's turns concatenated;
ΣLANG uses one `SigmaCodec` for the whole corpus (each session's turns as one stream of its tenant),
as the service does, with a fresh store for every timed run: with the trained dictionary, with the
shipped generic one and each tenant's dictionary trained from its own traffic (what a REST client
gets: `sigmalang.autotrain`), with the generic one only (what a REST client got before), and with
none. Ratios are total input bytes / total output bytes; speeds are input MB (1e6 bytes) per second,
medians over the runs. Every output is decoded and compared byte for byte. ``--lossy`` adds the
context optimiser in Ryot tokens; ``--rest`` posts the sessions to a real ``neurectomy serve`` (no
trained dictionary there);
``--rest-baseline DIR`` also posts them, every way, to a service run from another checkout (the
previous version), with the service's CPU time per request next to each speed (and, of it, the API
process's event loop thread); ``--rest-ways`` keeps
only some ways (e.g. ``across,across-pipelined``, the issue's target) and ``--rest-repeats N`` starts
the services N times, baseline and this checkout interleaved (a REST way takes well under a second on
this corpus, so one run is noisy on a shared machine: compare medians); ``--rest-split`` also runs this
checkout with the Compression team in a ``neurectomy agent`` process of its own beside ``serve``.
``--sealed`` adds ΣLANG over an on-disk `DiskRSUStore` (the service's store) without and with RSUs sealed
by a real vault's per-tenant AES-256-GCM keys (`bridges.tenant_seal.VaultChunkSealer`), trained dictionary.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import zstandard
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sigmalang  # noqa: E402
from benchmarks.sigma_corpus import Session  # noqa: E402
from benchmarks.sigma_draw import add_draw_arguments, draw  # noqa: E402

try:
    import brotli  # type: ignore[import-untyped,unused-ignore]
except ImportError:  # optional baseline
    brotli = None

NO_AUTO = {"auto_dictionary_min_new_bytes": 0}
"""`SigmaConfig` fields of the rows without automatic dictionaries (comparable with earlier rounds)."""

CLOCK: Callable[[], float] = time.perf_counter
"""The in-process timer: wall time, or with ``--clock cpu`` this process's CPU time (on a shared,
loaded machine wall time measures the other work too; the codecs are single-threaded)."""

WORDS = (
    "agent task request result error retry timeout queue stream token model prompt context document "
    "search index vector embedding cache memory tenant key record payload schema tool call function "
    "argument return value status pending running done failed cancel deadline trace span latency "
    "throughput batch decode prefill the a of to and in is for on with that this by from as at be are "
    "it or an was will can not if we you they data user system answer question summary report file "
    "path line code test build deploy server client network message header reply subject team plan "
    "step node graph edge weight score rank query filter sort limit offset page count total size "
    "compress decompress store fetch delete rotate snapshot journal log metric health check ready "
    "alpha beta gamma delta production staging region cluster replica shard partition leader follower "
    "invoice customer order product price currency amount discount shipping address country city"
).split()
TOOLS = (
    "search_documents",
    "fetch_record",
    "store_record",
    "run_sql",
    "http_get",
    "summarize",
    "translate",
    "classify",
    "extract_entities",
    "send_email",
    "create_ticket",
    "get_weather",
    "calculator",
    "code_interpreter",
    "list_files",
    "read_file",
    "write_file",
    "schedule_job",
)


def zipf_words(rng: random.Random, n: int) -> str:
    weights = [1.0 / (i + 1) for i in range(len(WORDS))]
    return " ".join(rng.choices(WORDS, weights=weights, k=n))


def sentence(rng: random.Random) -> str:
    text = zipf_words(rng, rng.randint(6, 18))
    if rng.random() < 0.3:
        text += f" {rng.randint(0, 10_000)}"
    return text[0].upper() + text[1:] + "."


def paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(sentence(rng) for _ in range(sentences))


def ident(rng: random.Random, n: int = 12) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


def make_message(rng: random.Random) -> bytes:
    kind = rng.choice(["task.request", "task.result", "stream.chunk", "task.error", "agent.stats"])
    team = rng.choice(["inference", "compression", "storage", "analysis", "synthesis"])
    msg: dict[str, object] = {
        "id": f"req-{ident(rng)}",
        "type": kind,
        "agent": f"neurectomy.agent.{team}.{rng.choice(['generator', 'retriever', 'compressor', 'planner'])}",
        "tenant": f"tenant-{rng.randint(1, 40)}",
        "trace_id": ident(rng, 32),
        "deadline_ms": rng.choice([1000, 5000, 30000]),
        "ts": 1_760_000_000 + rng.randint(0, 10_000_000),
    }
    if kind == "task.request":
        msg["payload"] = {"prompt": paragraph(rng, rng.randint(1, 6)), "max_tokens": rng.choice([64, 256])}
    elif kind == "task.result":
        msg["payload"] = {
            "text": paragraph(rng, rng.randint(1, 10)),
            "usage": {"prompt_tokens": rng.randint(5, 900), "completion_tokens": rng.randint(1, 300)},
            "finish_reason": rng.choice(["stop", "length"]),
        }
    elif kind == "stream.chunk":
        msg["payload"] = {"index": rng.randint(0, 500), "delta": zipf_words(rng, rng.randint(1, 12))}
    elif kind == "task.error":
        msg["payload"] = {
            "code": rng.choice(["TIMEOUT", "NO_RESPONDERS", "OVERLOADED"]),
            "detail": sentence(rng),
        }
    else:
        msg["payload"] = {
            "num_requests": rng.randint(0, 10**6),
            "average_processing_time": rng.random(),
            "endpoints": [{"name": n, "queue_group": n, "errors": rng.randint(0, 9)} for n in TOOLS[:4]],
        }
    data = json.dumps(msg).encode()
    return data if 200 <= len(data) <= 4096 else make_message(rng)


def messages_corpus(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    return [make_message(rng) for _ in range(n)]


def tool_schema(rng: random.Random, name: str) -> dict[str, object]:
    props = {
        f"{rng.choice(WORDS)}_{i}": {
            "type": rng.choice(["string", "integer", "boolean"]),
            "description": sentence(rng),
        }
        for i in range(rng.randint(2, 5))
    }
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": paragraph(rng, 2),
            "parameters": {"type": "object", "properties": props, "required": list(props)[:1]},
        },
    }


def sessions_corpus(seed: int, n_sessions: int) -> list[bytes]:
    rng = random.Random(seed)
    systems = [paragraph(rng, 12) for _ in range(4)]
    tools = [tool_schema(rng, name) for name in TOOLS]
    docs = [{"id": f"doc-{i}", "text": paragraph(rng, rng.randint(4, 10))} for i in range(80)]
    turns: list[bytes] = []
    for s in range(n_sessions):
        system = systems[s % len(systems)]
        history: list[dict[str, str]] = [{"role": "system", "content": system}]
        session_tools = tools[: rng.randint(8, len(tools))]
        for _ in range(rng.randint(6, 16)):
            history.append({"role": "user", "content": paragraph(rng, rng.randint(1, 3))})
            retrieved = rng.sample(docs, 3)
            request = {
                "model": "gemma-3-270m",
                "messages": history,
                "tools": session_tools,
                "context": {"retrieved": retrieved},
                "temperature": 0.2,
            }
            turns.append(json.dumps(request).encode())
            history.append({"role": "assistant", "content": paragraph(rng, rng.randint(1, 4))})
    return turns


@dataclass
class Outcome:
    ratio: float
    mb_s: float
    small_ratio: float | None
    dedup_share: float | None = None
    decode_mb_s: float | None = None


Codec = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]


def check(corpus: Sequence[bytes], frames: Sequence[bytes], dec: Callable[[bytes], bytes]) -> float:
    """Decode every frame, compare byte for byte; return decode speed, input MB/s."""
    t0 = CLOCK()
    bad = sum(1 for m, f in zip(corpus, frames, strict=True) if dec(f) != m)
    elapsed = CLOCK() - t0
    if bad:
        raise SystemExit(f"round trip failed for {bad} of {len(corpus)} inputs")
    return sum(map(len, corpus)) / elapsed / 1e6


def summarize(corpus: Sequence[bytes], frames: Sequence[bytes], speeds: list[float]) -> Outcome:
    small = [(m, f) for m, f in zip(corpus, frames, strict=True) if len(m) < 1024]
    small_ratio = sum(len(m) for m, _ in small) / sum(len(f) for _, f in small) if small else None
    return Outcome(sum(map(len, corpus)) / sum(map(len, frames)), statistics.median(speeds), small_ratio)


def run_per_message(corpus: Sequence[bytes], make: Callable[[], Codec], runs: int) -> Outcome:
    speeds, dspeeds = [], []
    frames: list[bytes] = []
    for _ in range(runs):
        enc, dec = make()
        t0 = CLOCK()
        frames = [enc(m) for m in corpus]
        speeds.append(sum(map(len, corpus)) / (CLOCK() - t0) / 1e6)
        dspeeds.append(check(corpus, frames, dec))
    outcome = summarize(corpus, frames, speeds)
    outcome.decode_mb_s = statistics.median(dspeeds)
    return outcome


def run_whole_sessions(sessions: Sequence[Session], level: int, runs: int) -> Outcome:
    """zstd over each session's turns concatenated: what no per-message codec can see."""
    corpus = [m for s in sessions for m in s.turns]
    speeds = []
    out = 0
    for _ in range(runs):
        c = zstandard.ZstdCompressor(level=level)
        t0 = CLOCK()
        blobs = [c.compress(b"".join(s.turns)) for s in sessions]
        speeds.append(sum(map(len, corpus)) / (CLOCK() - t0) / 1e6)
        d = zstandard.ZstdDecompressor()
        if any(d.decompress(b) != b"".join(s.turns) for b, s in zip(blobs, sessions, strict=True)):
            raise SystemExit("whole-session round trip failed")
        out = sum(map(len, blobs))
    return Outcome(sum(map(len, corpus)) / out, statistics.median(speeds), None)


def run_sigma(
    items: Sequence[tuple[str, str | None, bytes]],
    training: Sequence[bytes] | None,
    runs: int,
    *,
    generic: bool = True,
    auto: bool = False,
    store: Callable[[], sigmalang.RSUStore] | None = None,
) -> Outcome:
    """One `SigmaCodec` for the corpus (fresh store per run): each item is (tenant, stream, message).

    `training` None: no trained dictionary; `generic` False: not even the shipped generic dictionary;
    `auto`: each tenant's dictionary trained from its own traffic (`SigmaConfig.auto_dictionary_*`
    defaults), the training waited for after each message (its CPU counts in the compression speed,
    and the frames do not depend on the thread's timing). `training` None with `auto` is what a REST
    client gets. `store`: makes each run's store (default: in memory).
    """
    corpus = [m for _, _, m in items]
    speeds, dspeeds = [], []
    frames: list[bytes] = []
    reports: list[sigmalang.CompressionReport] = []
    dictionary = sigmalang.train_dictionary(training) if training is not None else None
    for _ in range(runs):
        codec = sigmalang.SigmaCodec(
            store=store() if store is not None else None,
            config=sigmalang.SigmaConfig(generic_dictionary=generic, **({} if auto else NO_AUTO)),
        )
        if dictionary is not None:
            codec.dictionaries.add(dictionary)
        t0 = CLOCK()
        results = []
        for t, s, m in items:
            results.append(codec.compress(m, tenant=t, stream=s))
            if auto:
                codec.wait_auto_dictionaries()
        speeds.append(sum(map(len, corpus)) / (CLOCK() - t0) / 1e6)
        codec.close()
        frames = [r.frame for r in results]
        reports = [r.report for r in results]
        tenants = iter([t for t, _, _ in items])

        def decode(
            frame: bytes, codec: sigmalang.SigmaCodec = codec, tenants: Iterator[str] = tenants
        ) -> bytes:
            return codec.decompress(frame, tenant=next(tenants))

        dspeeds.append(check(corpus, frames, decode))
    outcome = summarize(corpus, frames, speeds)
    outcome.decode_mb_s = statistics.median(dspeeds)
    gross = sum(r.dedup_saved + r.dictionary_saved + r.entropy_saved for r in reports)
    outcome.dedup_share = sum(r.dedup_saved for r in reports) / gross if gross else 0.0
    return outcome


def disk_rows(
    session_items: Sequence[tuple[str, str | None, bytes]],
    session_training: Sequence[bytes],
    message_items: Sequence[tuple[str, str | None, bytes]],
    message_training: Sequence[bytes],
    runs: int,
) -> list[tuple[str, Outcome | None, Outcome]]:
    """ΣLANG + trained dict over a fresh `DiskRSUStore` per run, unsealed and sealed with a real vault."""
    import tempfile

    from bridges.tenant_seal import VaultChunkSealer
    from vault import Vault

    out: list[tuple[str, Outcome | None, Outcome]] = []
    with tempfile.TemporaryDirectory() as tmp, Vault(Path(tmp) / "vault") as v:
        made = iter(range(1_000_000))
        for label, sealer in (
            ("ΣLANG + trained dict, disk store", None),
            ("… disk store, sealed", VaultChunkSealer(v)),
        ):

            def store(sealer: VaultChunkSealer | None = sealer) -> sigmalang.RSUStore:
                return sigmalang.DiskRSUStore(Path(tmp) / f"rsu-{next(made)}.db", sealer=sealer)

            out.append(
                (
                    label,
                    run_sigma(session_items, session_training, runs, store=store),
                    run_sigma(message_items, message_training, runs, store=store),
                )
            )
    return out


def zstd_codec(level: int, dict_training: Sequence[bytes] | None = None) -> Callable[[], Codec]:
    zdict = None
    if dict_training is not None:
        zdict = zstandard.train_dictionary(32 * 1024, list(dict_training), level=level)

    def make() -> Codec:
        c = zstandard.ZstdCompressor(level=level, dict_data=zdict)
        d = zstandard.ZstdDecompressor(dict_data=zdict)
        return c.compress, d.decompress

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=2000)
    add_draw_arguments(parser)
    parser.add_argument(
        "--attribution", action="store_true", help="also where ΣLANG's bytes go, by segment of the sessions"
    )
    parser.add_argument("--rest", action="store_true", help="also post the sessions to a real service")
    parser.add_argument(
        "--rest-baseline",
        type=Path,
        metavar="DIR",
        help="with --rest: also run the service from this checkout (e.g. the previous version), same corpus",
    )
    parser.add_argument(
        "--rest-ways",
        default="all",
        metavar="WAY,...",
        help="with --rest: only these ways (raw, json, concurrent, batch, batch-binary, across, "
        "across-pipelined); default all",
    )
    parser.add_argument(
        "--rest-repeats",
        type=int,
        default=1,
        metavar="N",
        help="with --rest: start the service(s) N times, baseline and this checkout interleaved",
    )
    parser.add_argument(
        "--rest-split",
        action="store_true",
        help="with --rest: also this checkout with the Compression team in its own process",
    )
    parser.add_argument("--sealed", action="store_true", help="also ΣLANG on disk, unsealed and sealed")
    parser.add_argument("--lossy", action="store_true", help="also the context optimiser, in Ryot tokens")
    parser.add_argument(
        "--max-turn-bytes",
        type=int,
        metavar="N",
        help="keep only the turns of at most N bytes (each session's first ones), e.g. for ~10 KB turns",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time in-process runs by wall time or by this process's CPU time (REST is always wall)",
    )
    args = parser.parse_args()
    global CLOCK  # noqa: PLW0603 - one switch for every timed run
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    sessions = draw(args)
    training_sessions = draw(args, training=True)
    if args.max_turn_bytes is not None:  # a session's first turns: the short ones
        sessions = [
            replace(s, turns=kept)
            for s in sessions
            if (kept := tuple(t for t in s.turns if len(t) <= args.max_turn_bytes))
        ]
    session_items = [(s.tenant, s.session_id, m) for s in sessions for m in s.turns]
    session_corpus = [m for _, _, m in session_items]
    session_training = [m for s in training_sessions for m in s.turns]
    messages = messages_corpus(1, args.messages)
    message_items: list[tuple[str, str | None, bytes]] = [("bench", None, m) for m in messages]
    message_training = messages_corpus(1001, 1000)

    console = Console(width=160)
    for name, corpus in (("sessions", session_corpus), ("messages", messages)):
        sizes = sorted(map(len, corpus))
        console.print(
            f"[bold]{name}[/]: {len(corpus)} inputs, {sum(sizes) / 1e6:.2f} MB, "
            f"median {sizes[len(sizes) // 2]} B, {sum(s < 1024 for s in sizes)} under 1 KB"
        )
    console.print(
        f"sessions: {len(sessions)} sessions of {args.tenants} tenants, {args.corpus} corpus"
        f"{f' from {args.source} text' if args.corpus == 'rag' else ''} "
        f"(seed {args.seed}); dictionaries trained on seed {args.seed + 1000}"
    )

    rows: list[tuple[str, Outcome | None, Outcome]] = [
        (
            "zstd-3",
            run_per_message(session_corpus, zstd_codec(3), args.runs),
            run_per_message(messages, zstd_codec(3), args.runs),
        ),
        (
            "zstd-19",
            run_per_message(session_corpus, zstd_codec(19), args.runs),
            run_per_message(messages, zstd_codec(19), args.runs),
        ),
        (
            "zstd-19 + trained dict",
            run_per_message(session_corpus, zstd_codec(19, session_training), args.runs),
            run_per_message(messages, zstd_codec(19, message_training), args.runs),
        ),
        ("zstd-19 over whole sessions", run_whole_sessions(sessions, 19, args.runs), None),  # type: ignore[list-item]
        (
            "ΣLANG (per message, per tenant) + trained dict",
            run_sigma(session_items, session_training, args.runs),
            run_sigma(message_items, message_training, args.runs),
        ),
        (
            "ΣLANG, generic, then auto-trained per tenant (REST default)",
            run_sigma(session_items, None, args.runs, auto=True),
            run_sigma(message_items, None, args.runs, auto=True),
        ),
        (
            "ΣLANG, generic dict only (REST clients before)",
            run_sigma(session_items, None, args.runs),
            run_sigma(message_items, None, args.runs),
        ),
        (
            "ΣLANG, no dictionary at all",
            run_sigma(session_items, None, args.runs, generic=False),
            run_sigma(message_items, None, args.runs, generic=False),
        ),
    ]
    if args.sealed:
        rows += disk_rows(session_items, session_training, message_items, message_training, args.runs)
    whole = rows[3][1]
    table = Table(
        title=f"ΣLANG vs zstd (median of {args.runs} runs, {args.clock} clock, every message decoded exactly)"
    )
    for column in (
        "codec",
        "sessions ratio",
        "vs whole-session zstd-19",
        "sessions MB/s",
        "decode MB/s",
        "dedup share",
        "messages ratio",
        "messages MB/s",
    ):
        table.add_column(column, justify="left" if column == "codec" else "right")
    for label, s, m in rows:
        assert s is not None and whole is not None
        table.add_row(
            label,
            f"{s.ratio:.2f}x",
            f"{s.ratio / whole.ratio:.2f}",
            f"{s.mb_s:.1f}",
            f"{s.decode_mb_s:.1f}" if s.decode_mb_s else "-",
            f"{s.dedup_share:.0%}" if s.dedup_share is not None else "-",
            f"{m.ratio:.2f}x" if m is not None else "-",
            f"{m.mb_s:.1f}" if m is not None else "-",
        )
    console.print(table)
    if args.attribution:
        print_attribution(console, sessions)
    if args.lossy:
        print_lossy(console, sessions)
    if args.rest:
        from benchmarks.sigma_rest import WAYS, run_rest

        rest = Table(
            title="ΣLANG through REST (one client; machine shared); target: >= 10 MB/s for ~10 KB turns"
        )
        columns = (
            "service",
            "how",
            "requests",
            "mean turn B",
            "ratio",
            "MB/s",
            "CPU ms/request",
            "of it, API loop",
            "client CPU ms",
        )
        for column in columns:
            rest.add_column(column, justify="left" if column in ("service", "how") else "right")
        runs: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
        services: list[tuple[str, Path | None, bool]] = [("this checkout", None, False)]
        if args.rest_baseline is not None:
            services.insert(0, (str(args.rest_baseline), args.rest_baseline, False))
        if args.rest_split:
            services.append(("this checkout, Compression in its own process", None, True))
        ways = WAYS if args.rest_ways == "all" else tuple(args.rest_ways.split(","))
        if unknown := set(ways) - set(WAYS):
            parser.error(f"--rest-ways: unknown {sorted(unknown)}; choose from {', '.join(WAYS)}")
        for name, code, split in [s for _ in range(args.rest_repeats) for s in services]:
            for o in run_rest(sessions, code, ways=ways, split=split):
                rest.add_row(
                    name,
                    o.label,
                    str(o.requests),
                    f"{o.mean_turn_bytes:,.0f}",
                    f"{o.ratio:.2f}x",
                    f"{o.mb_s:.1f}",
                    f"{o.cpu_ms:.2f}",
                    f"{o.loop_cpu_ms:.2f}",
                    f"{o.client_cpu_ms:.2f}",
                )
                runs.setdefault((name, o.label), []).append(
                    (o.mb_s, o.cpu_ms, o.client_cpu_ms, o.loop_cpu_ms)
                )
        console.print(rest)
        if args.rest_repeats > 1:
            medians = Table(title=f"ΣLANG through REST: medians of {args.rest_repeats} runs (interleaved)")
            for column in (
                "service",
                "how",
                "MB/s (min-max)",
                "CPU ms/request",
                "of it, API loop",
                "client CPU ms",
            ):
                medians.add_column(column, justify="left" if column in ("service", "how") else "right")
            for (name, label), got in runs.items():
                speeds = [g[0] for g in got]
                medians.add_row(
                    name,
                    label,
                    f"{statistics.median(speeds):.1f} ({min(speeds):.1f}-{max(speeds):.1f})",
                    f"{statistics.median(g[1] for g in got):.2f}",
                    f"{statistics.median(g[3] for g in got):.2f}",
                    f"{statistics.median(g[2] for g in got):.2f}",
                )
            console.print(medians)


def segment_of(sessions: Sequence[Session]) -> list[str]:
    """Each turn's segment: first turn of the tenant's first session, first turn of a later one, later."""
    seen: set[str] = set()
    out: list[str] = []
    for s in sessions:
        first = (
            "first turn of a tenant's first session"
            if s.tenant not in seen
            else "first turn of a later session"
        )
        out += [first] + ["later turns of a session"] * (len(s.turns) - 1)
        seen.add(s.tenant)
    return out


def stream_costs(groups: Sequence[tuple[str, Sequence[int]]], corpus: Sequence[bytes]) -> list[int]:
    """Bytes zstd-19 adds for each turn of a stream over the turns of each group, flushed per turn.

    `groups` names, per stream, the indexes of its turns in `corpus` (in order); the cost of a turn is
    how much the stream grows when it is written and flushed (a block boundary), so the costs of a
    stream add up to its compressed size.
    """
    costs = [0] * len(corpus)
    for _, indexes in groups:
        c = zstandard.ZstdCompressor(level=19).compressobj()
        for i in indexes:
            costs[i] = len(c.compress(corpus[i])) + len(c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
    return costs


def print_attribution(console: Console, sessions: Sequence[Session]) -> None:
    """Where ΣLANG's output bytes go on the sessions, by segment, next to causal zstd-19 streams.

    ΣLANG: the generic dictionary only (automatic dictionaries off, as before they existed).
    "Whole-tenant stream": zstd-19 over all of a tenant's turns in arrival order, one stream, flushed
    after each turn: the most any causal LZ codec that sees the tenant's traffic (and nothing else)
    gets at that level. "Whole-session stream": the same per session (the issue's baseline, turn by
    turn).
    """
    items = [(s.tenant, s.session_id, m) for s in sessions for m in s.turns]
    corpus = [m for _, _, m in items]
    segments = segment_of(sessions)
    codec = sigmalang.SigmaCodec(config=sigmalang.SigmaConfig(**NO_AUTO))
    reports = [codec.compress(m, tenant=t, stream=s).report for t, s, m in items]
    by_tenant: dict[str, list[int]] = {}
    by_session: dict[str, list[int]] = {}
    for i, (t, s, _) in enumerate(items):
        by_tenant.setdefault(t, []).append(i)
        by_session.setdefault(s, []).append(i)
    tenant_costs = stream_costs(list(by_tenant.items()), corpus)
    session_costs = stream_costs(list(by_session.items()), corpus)
    out_total = sum(r.bytes_out for r in reports)
    table = Table(title="Where ΣLANG's bytes go (generic dictionary), with zstd-19 streams flushed per turn")
    for column in (
        "segment",
        "turns",
        "input B",
        "new B (chunks not held)",
        "ΣLANG B",
        "share",
        "ΣLANG ratio",
        "whole-tenant stream B",
        "whole-session stream B",
    ):
        table.add_column(column, justify="left" if column == "segment" else "right")
    for name in dict.fromkeys(segments):
        idx = [i for i, seg in enumerate(segments) if seg == name]
        b_in = sum(len(corpus[i]) for i in idx)
        b_out = sum(reports[i].bytes_out for i in idx)
        table.add_row(
            name,
            str(len(idx)),
            f"{b_in:,}",
            f"{sum(reports[i].literal_bytes for i in idx):,}",
            f"{b_out:,}",
            f"{b_out / out_total:.0%}",
            f"{b_in / b_out:.2f}x",
            f"{sum(tenant_costs[i] for i in idx):,}",
            f"{sum(session_costs[i] for i in idx):,}",
        )
    b_in = sum(map(len, corpus))
    framing = sum(r.framing for r in reports)
    table.add_row(
        "all",
        str(len(corpus)),
        f"{b_in:,}",
        f"{sum(r.literal_bytes for r in reports):,}",
        f"{out_total:,} (framing {framing:,})",
        "100%",
        f"{b_in / out_total:.2f}x",
        f"{sum(tenant_costs):,} ({b_in / sum(tenant_costs):.2f}x)",
        f"{sum(session_costs):,} ({b_in / sum(session_costs):.2f}x)",
    )
    console.print(table)


def print_lossy(console: Console, sessions: Sequence[Session]) -> None:
    """The lossy optimiser on each session's last turn (25% of its tokens), next to the lossless codec.

    The codec compresses the request bytes; the optimiser fits the messages' text (what the LLM reads)
    to a quarter of its tokens, with the last 300 characters as the query.

    Tokens are Ryot's (the default model's tokenizer, vocabulary only). The optimiser's output is not
    the input: its ratio is a token saving of a lossy rewrite, never a lossless ratio.
    """
    from neurectomy.settings import Settings
    from ryot import Tokenizer

    tokenizer = Tokenizer(Settings().ryot.default_entry().path)
    codec = sigmalang.SigmaCodec(count_tokens=tokenizer.count)
    tin = tout = lossless_in = lossless_out = bytes_in = bytes_out = 0
    for s in sessions:
        for turn in s.turns:
            result = codec.compress(turn, tenant=s.tenant, stream=s.session_id)
        last = "\n\n".join(
            str(m.get("content") or "") for m in json.loads(s.turns[-1])["messages"]
        )  # the text an LLM reads: the messages' contents
        fitted = sigmalang.optimize_context(
            last, budget_tokens=tokenizer.count(last) // 4, count_tokens=tokenizer.count, query=last[-300:]
        )
        tin, tout = tin + fitted.tokens_in, tout + fitted.tokens_out
        r = result.report
        lossless_in += r.tokens_in or 0
        lossless_out += r.tokens_out or 0
        bytes_in, bytes_out = bytes_in + r.bytes_in, bytes_out + r.bytes_out
    table = Table(title="Last turn of each session in Ryot tokens (codec: the request; optimiser: its text)")
    for column in ("method", "tokens in", "tokens out", "token ratio", "byte ratio", "lossless"):
        table.add_column(column, justify="left" if column == "method" else "right")
    table.add_row(
        "ΣLANG frame (new text + 1 per context RSU)",
        str(lossless_in),
        str(lossless_out),
        f"{lossless_in / lossless_out:.2f}x",
        f"{bytes_in / bytes_out:.2f}x",
        "yes",
    )
    table.add_row(
        "context optimiser to 25% (extractive)", str(tin), str(tout), f"{tin / tout:.2f}x", "-", "NO (lossy)"
    )
    console.print(table)


if __name__ == "__main__":
    main()
