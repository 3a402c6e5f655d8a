"""Prefill cost of one prompt: llama.cpp's repacked weights against the engine's plain ones, and a KV copy.

The engine does not repack weights (``RyotConfig.repack``, for batch invariance: docs/ryot.md), and raw
llama-cpp-python does. This measures what that costs a cold prompt's prefill, interleaved per round and
per prompt length, Gemma 3 270M Q4_K_M:

- ``raw``: llama-cpp-python's ``Llama.eval`` with its defaults (weights repacked, one sequence);
- ``engine``: a context laid out as ``RyotEngine`` builds it (plain weights, ``--parallel`` KV streams of
  ``--n-ctx`` tokens), one prompt in its own ``llama_decode``;
- ``repacked``: the same prompt on a second, repacked load of the model in a one-sequence context (what
  "prefill on repacked weights, decode on plain ones" would run);
- ``kv copy``: the prompt's KV cells copied from one sequence of the engine context to another
  (``llama_state_seq_get_data`` + ``set_data``: what handing a prefilled prompt over would add).

Times are CPU seconds of the calling thread with one compute thread (``time.thread_time``; llama.cpp
then computes on the calling thread), so other load on the machine barely changes them; ``--threads 2``
measures wall time instead. Also prints what the repacked load and its context add to the process's
unique memory (USS).

    PYTHONPATH=$PWD python benchmarks/prefill_kernels.py --rounds 5 --lengths 8 16 64 256 1024
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import llama_cpp
import psutil

import ryot  # noqa: F401 - ryot's kernel and OpenMP defaults, set before llama.cpp's first matmul
from ryot._llama import Batch, Context, Model
from ryot.models import default_model_path

TEXT = (
    "Lighthouses are fascinating. Write a long essay about them, covering history, engineering, "
    "the keepers, famous wrecks and the light itself. "
)


def _uss_mib() -> float:
    return float(psutil.Process().memory_full_info().uss) / 2**20


def main() -> None:
    """Print per prompt length the median milliseconds of each row and the ratios to ``engine``."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians over them)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 13, 16, 64, 256, 1024])
    parser.add_argument("--threads", type=int, default=1, help="compute threads (1: CPU time; else wall)")
    parser.add_argument("--n-ctx", type=int, default=4096, help="tokens per sequence, as RyotConfig.n_ctx")
    parser.add_argument("--parallel", type=int, default=8, help="sequences, as RyotConfig.parallel")
    args = parser.parse_args()
    clock: Callable[[], float] = time.thread_time if args.threads == 1 else time.perf_counter
    path = default_model_path()
    n_batch = 512
    raw = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        swa_full=True,
        verbose=False,
    )
    plain = Model(path, repack=False)
    ctx = Context(
        plain,
        n_ctx_seq=args.n_ctx,
        n_seq=args.parallel,
        n_batch=n_batch,
        n_threads=args.threads,
        swa_full=True,
        n_outputs_max=args.parallel,
    )
    before = _uss_mib()
    repacked = Model(path, repack=True)
    loaded = _uss_mib()
    rctx = Context(
        repacked, n_ctx_seq=args.n_ctx, n_seq=1, n_batch=n_batch, n_threads=args.threads, swa_full=True
    )
    unit = "CPU ms of one thread" if args.threads == 1 else f"wall ms, {args.threads} threads"
    added = f"+{loaded - before:.1f} MiB USS, its one-sequence context +{_uss_mib() - loaded:.1f} MiB"
    print(f"repacked load: {added}; {unit}")
    batch = Batch(n_batch)
    tokens = plain.tokenize((TEXT * 200).encode(), add_special=True, parse_special=False)

    def prefill(c: Context, prompt: list[int]) -> float:
        c.seq_rm(0, 0, -1)
        started = clock()
        for s in range(0, len(prompt), n_batch):
            batch.clear()
            for i, token in enumerate(prompt[s : s + n_batch]):
                batch.add(token, s + i, 0, s + i == len(prompt) - 1)
            if c.decode(batch) != 0:
                raise RuntimeError("llama_decode failed")
        return clock() - started

    def raw_prefill(prompt: list[int]) -> float:
        raw.reset()
        started = clock()
        raw.eval(prompt)
        return clock() - started

    def copy(prompt: list[int]) -> float:
        prefill(ctx, prompt)
        started = clock()
        state = ctx.seq_state(0)
        if state is None or not ctx.set_seq_state(state, 1):
            raise RuntimeError("the KV copy failed")
        return clock() - started

    rows = ("raw", "engine", "repacked", "kv copy")
    times: dict[int, dict[str, list[float]]] = {n: {row: [] for row in rows} for n in args.lengths}
    for _ in range(args.rounds):
        for n in args.lengths:
            prompt = tokens[:n]
            times[n]["raw"].append(raw_prefill(prompt))
            times[n]["engine"].append(prefill(ctx, prompt))
            times[n]["repacked"].append(prefill(rctx, prompt))
            times[n]["kv copy"].append(copy(prompt))
    print(f"{'tokens':>6} " + " ".join(f"{row:>10}" for row in rows) + "  raw/engine  repacked/engine")
    for n in args.lengths:
        med = {row: statistics.median(times[n][row]) * 1e3 for row in rows}
        print(
            f"{n:>6} "
            + " ".join(f"{med[row]:>10.2f}" for row in rows)
            + f"  {med['raw'] / med['engine']:>10.3f}  {med['repacked'] / med['engine']:>15.3f}"
        )


if __name__ == "__main__":
    main()
