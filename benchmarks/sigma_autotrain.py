"""ΣLANG's automatic per-tenant dictionaries (`sigmalang.autotrain`): the policy sweep and the latency.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m benchmarks.sigma_autotrain`` with the draw options of
``benchmarks/sigmalang.py`` (``--corpus``, ``--source``, ``--seed``, ``--tenants``,
``--sessions-per-tenant``, ``--turns``) and:

- ``--sweep``: the ratio of the REST default codec (generic dictionary) with each tenant's dictionary
  trained on the **first part of its own traffic** (its first T bytes of new chunks; again each time
  they double, up to R; dictionary size S; samples bounded at B), against the generic dictionary
  alone, on the same turns in the same order. Training is waited for after each message, so the
  frames do not depend on the background thread's timing; "training CPU" is this process's CPU time
  spent in those waits.
- ``--latency`` (default): each ``compress`` call's wall time with the defaults and training **not**
  waited for (as in the service: a background thread), next to the same calls without automatic
  dictionaries: median, p99 and max per call, and the calls that queued a training (their own time,
  and the next three calls', which overlap it), and how many calls and milliseconds after being queued
  a training was done. Replayed at full speed, a tenant's later turns arrive while its training still
  runs (a client waits for its model between turns), so the ratio here is below the sweep's.
- ``--steady RUNS``: compression speed once every tenant is trained (its last automatic dictionary
  registered as its own) against the generic dictionary alone, interleaved, CPU clock.
- ``--training RUNS``: where each training's CPU goes (the trainer thread's CPU clock): zstd's
  trainer (`sigmalang.dictionary.train_dictionary` calls), the held-back check's two coding passes
  (`sigmalang.autotrain._cost`) and the rest, with the defaults, training waited for after each
  message; medians of RUNS runs. The calls are timed by wrapping them (the same functions run).
- ``--drift RUNS``: a drifting stream: each tenant sends the draw's sessions of its tenant, then those
  of another tenant of the draw at ``seed + 1`` (another repository or document set, and for
  ``--corpus coding`` another envelope). The ratio of the whole stream and of its second half with
  the defaults (retrained every ``auto_dictionary_drift_period_bytes`` after the schedule), without
  drift retraining (``auto_dictionary_drift_period_bytes=0``: the dictionary stays after 256 KiB, as
  before) and with the generic dictionary only, training waited for after each message; "training
  CPU" is the process's CPU time in those waits, "compress CPU" in the compress calls, medians of
  RUNS interleaved runs.

Every frame is decoded and compared with its message.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sigmalang  # noqa: E402
from benchmarks.sigma_corpus import Session  # noqa: E402
from benchmarks.sigma_draw import add_draw_arguments, draw  # noqa: E402
from sigmalang import autotrain  # noqa: E402

Item = tuple[str, str, bytes]
K = 1024
POLICIES: tuple[tuple[int, int, int, int], ...] = (  # T, S, B, R (bytes)
    (32 * K, 32 * K, 32 * K, 0),
    (64 * K, 32 * K, 64 * K, 0),
    (128 * K, 32 * K, 128 * K, 0),
    (32 * K, 32 * K, 256 * K, 256 * K),
    (64 * K, 16 * K, 256 * K, 256 * K),
    (64 * K, 32 * K, 256 * K, 256 * K),
    (64 * K, 64 * K, 256 * K, 256 * K),
    (64 * K, 32 * K, 512 * K, 1024 * K),
)


def _run(items: Sequence[Item], config: sigmalang.SigmaConfig) -> tuple[int, float]:
    """Total frame bytes, and CPU seconds spent waiting for trainings."""
    codec = sigmalang.SigmaCodec(config=config)
    out = 0
    waited = 0.0
    for tenant, stream, message in items:
        frame = codec.compress(message, tenant=tenant, stream=stream).frame
        t0 = time.process_time()
        codec.wait_auto_dictionaries()
        waited += time.process_time() - t0
        if codec.decompress(frame, tenant=tenant) != message:
            raise SystemExit("round trip failed")
        out += len(frame)
    codec.close()
    return out, waited


def sweep(items: Sequence[Item]) -> None:
    """Print the ratio of each policy against the generic dictionary alone."""
    total = sum(len(m) for _, _, m in items)
    generic, _ = _run(items, sigmalang.SigmaConfig(auto_dictionary_min_new_bytes=0))
    print(f"generic dictionary only: {total / generic:.2f}x")
    print("T (first)  S (size)  B (samples)  R (retrain to)   ratio    vs generic  training CPU s")
    for t, s, b, r in POLICIES:
        config = sigmalang.SigmaConfig(
            auto_dictionary_min_new_bytes=t,
            auto_dictionary_size_bytes=s,
            auto_dictionary_sample_max_bytes=b,
            auto_dictionary_retrain_max_new_bytes=r,
        )
        out, cpu = _run(items, config)
        print(
            f"{t // K:6} KiB {s // K:5} KiB {b // K:8} KiB {r // K:10} KiB  {total / out:7.2f}x"
            f"  {generic / out - 1:+8.2%}  {cpu:10.2f}",
            flush=True,
        )


def _timed(
    items: Sequence[Item], config: sigmalang.SigmaConfig
) -> tuple[list[float], list[int], int, list[tuple[int, float]]]:
    codec = sigmalang.SigmaCodec(config=config)
    times: list[float] = []
    triggers: list[int] = []
    frames = []
    pending: dict[str, tuple[int, float]] = {}  # tenant -> (call, clock) that queued its training
    lags: list[tuple[int, float]] = []  # calls and seconds from queued to done
    for i, (tenant, stream, message) in enumerate(items):
        before = codec.auto_dictionary_status(tenant)
        t0 = time.perf_counter()
        frames.append(codec.compress(message, tenant=tenant, stream=stream).frame)
        times.append(time.perf_counter() - t0)
        after = codec.auto_dictionary_status(tenant)
        queued = after is not None and after.state == "training"
        if queued and (before is None or before.state != "training"):
            triggers.append(i)
            pending[tenant] = (i, t0)
        for waiting, (j, since) in list(pending.items()):
            status = codec.auto_dictionary_status(waiting)
            if status is None or status.state != "training":
                lags.append((i - j, time.perf_counter() - since))
                del pending[waiting]
    codec.wait_auto_dictionaries()
    for frame, (tenant, _, message) in zip(frames, items, strict=True):
        if codec.decompress(frame, tenant=tenant) != message:
            raise SystemExit("round trip failed")
    codec.close()
    return times, triggers, sum(map(len, frames)), lags


def latency(items: Sequence[Item]) -> None:
    """Print per-call wall times with and without automatic dictionaries (training not waited for)."""
    total = sum(len(m) for _, _, m in items)
    for name, config in (
        ("without automatic dictionaries", sigmalang.SigmaConfig(auto_dictionary_min_new_bytes=0)),
        ("with them (defaults)", sigmalang.SigmaConfig()),
    ):
        times, triggers, out, lags = _timed(items, config)
        ms = sorted(t * 1e3 for t in times)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        line = (
            f"{name:32} {total / out:6.2f}x  per call ms: median {statistics.median(ms):.2f}"
            f"  p99 {p99:.2f}  max {ms[-1]:.2f}"
        )
        if triggers:
            own = [times[i] * 1e3 for i in triggers]
            nxt = [times[j] * 1e3 for i in triggers for j in range(i + 1, min(i + 4, len(times)))]
            line += (
                f"; {len(triggers)} calls queued a training: their median {statistics.median(own):.2f} ms,"
                f" the next 3 calls' median {statistics.median(nxt):.2f} ms"
            )
        if lags:
            line += (
                f"; a training was done {statistics.median(c for c, _ in lags):.0f} calls"
                f" ({statistics.median(s for _, s in lags) * 1e3:.1f} ms) after it was queued (median)"
            )
        print(line, flush=True)


def steady(items: Sequence[Item], runs: int) -> None:
    """Print compression speed once trained: each tenant's final automatic dictionary against none.

    A first pass (defaults, training waited for) leaves each tenant's last automatic dictionary; then
    `runs` interleaved pairs of passes, each with a new codec and store and automatic training off:
    the generic dictionary only, and the generic one with those dictionaries registered as the
    tenants' (what every frame of a tenant uses once it is trained). CPU clock, medians.
    """
    total = sum(len(m) for _, _, m in items)
    first = sigmalang.SigmaCodec()
    for tenant, stream, message in items:
        first.compress(message, tenant=tenant, stream=stream)
        first.wait_auto_dictionaries()
    first.close()
    trained = {t: d for t in {t for t, _, _ in items} if (d := first.dictionaries.own_active(t)) is not None}
    off = sigmalang.SigmaConfig(auto_dictionary_min_new_bytes=0)
    speeds: dict[str, list[float]] = {"generic only": [], "with the tenants' dictionaries": []}
    sizes: dict[str, int] = {}
    for _ in range(runs):
        for name in speeds:
            codec = sigmalang.SigmaCodec(config=off)
            if name != "generic only":
                for tenant, dictionary in trained.items():
                    codec.dictionaries.add(dictionary, tenant=tenant)
            t0 = time.process_time()
            frames = [codec.compress(m, tenant=t, stream=s).frame for t, s, m in items]
            speeds[name].append(total / (time.process_time() - t0) / 1e6)
            sizes[name] = sum(map(len, frames))
    print(f"{len(trained)} tenants trained; compression once trained, MB/s (CPU), median of {runs}:")
    for name, got in speeds.items():
        print(
            f"  {name:32} {statistics.median(got):6.1f} (min {min(got):.1f}, max {max(got):.1f})"
            f"  {total / sizes[name]:.2f}x"
        )
    print("  (the second ratio is in-sample: those dictionaries were trained on these turns' new bytes)")


def _thread_timed(
    name: str, spent: dict[str, list[float]], call: Callable[..., object]
) -> Callable[..., object]:
    """``call``, adding each call's thread CPU seconds to ``spent[name]``."""

    def timed(*args: object, **kwargs: object) -> object:
        t0 = time.thread_time()
        try:
            return call(*args, **kwargs)
        finally:
            spent[name].append(time.thread_time() - t0)

    return timed


def training(items: Sequence[Item], runs: int) -> None:
    """Print the trainer thread's CPU per training, split by what it calls (defaults, waited for)."""
    parts = ("train_dictionary", "_cost")
    originals = {name: getattr(autotrain, name) for name in parts}
    train = autotrain.AutoTrainer._train
    per_run: dict[str, list[float]] = defaultdict(list)  # ms per run
    calls: dict[str, int] = {}
    trainings = kept = 0
    try:
        for _ in range(runs):
            spent: dict[str, list[float]] = defaultdict(list)
            for name in parts:
                setattr(autotrain, name, _thread_timed(name, spent, originals[name]))
            autotrain.AutoTrainer._train = _thread_timed("training", spent, train)  # type: ignore[method-assign]
            codec = sigmalang.SigmaCodec()
            for tenant, stream, message in items:
                codec.compress(message, tenant=tenant, stream=stream)
                codec.wait_auto_dictionaries()
            statuses = [codec.auto_dictionary_status(t) for t in dict.fromkeys(t for t, _, _ in items)]
            trainings = sum(s.trainings for s in statuses if s is not None)
            kept = sum(s.kept for s in statuses if s is not None)
            codec.close()
            for name in (*parts, "training"):
                per_run[name].append(sum(spent[name]) * 1e3)
                calls[name] = len(spent[name])
            per_run["rest"].append(per_run["training"][-1] - sum(per_run[n][-1] for n in parts))
    finally:
        for name in parts:
            setattr(autotrain, name, originals[name])
        autotrain.AutoTrainer._train = train  # type: ignore[method-assign]
    print(f"{trainings} trainings, {kept} kept; trainer thread CPU ms, median of {runs} runs:")
    for name in ("training", *parts, "rest"):
        got = statistics.median(per_run[name])
        count = f"{calls[name]:3} calls" if name in calls else "         "
        print(f"  {name:18} {count}  {got:7.1f} ms in all  {got / max(1, trainings):6.2f} ms per training")


def drifting(sessions: Sequence[Session], later: Sequence[Session]) -> tuple[list[Item], int]:
    """Each tenant's turns of ``sessions``, then another tenant's turns of ``later`` sent as it.

    Returns:
        The items, and how many belong to the first part.
    """
    tenants = list(dict.fromkeys(s.tenant for s in sessions))
    others = list(dict.fromkeys(s.tenant for s in later))
    first = [(s.tenant, s.session_id, m) for s in sessions for m in s.turns]
    renamed = {o: tenants[(i + 1) % len(tenants)] for i, o in enumerate(others[: len(tenants)])}
    second = [
        (renamed[s.tenant], f"drift/{s.session_id}", m) for s in later if s.tenant in renamed for m in s.turns
    ]
    return first + second, len(first)


def drift(items: Sequence[Item], switch: int, runs: int, periods: Sequence[int] = ()) -> None:
    """Print the ratio of the stream and of its second half with and without drift retraining.

    Args:
        items: The stream (`drifting`).
        switch: How many items belong to its first part.
        runs: Interleaved runs (the ratios do not change between runs; the CPU does).
        periods: Drift periods to try besides the default, bytes.
    """
    configs = {
        "generic dictionary only": sigmalang.SigmaConfig(auto_dictionary_min_new_bytes=0),
        "automatic, no drift retraining": sigmalang.SigmaConfig(auto_dictionary_drift_period_bytes=0),
        "automatic, drift retraining (default)": sigmalang.SigmaConfig(),
    }
    for period in periods:
        configs[f"automatic, drift every {period // K} KiB"] = sigmalang.SigmaConfig(
            auto_dictionary_drift_period_bytes=period
        )
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    spent: dict[str, list[float]] = {name: [] for name in configs}
    sizes: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(runs):
        for name, config in configs.items():
            codec = sigmalang.SigmaCodec(config=config)
            out = [0, 0]
            waited = compressing = 0.0
            for i, (tenant, stream, message) in enumerate(items):
                t0 = time.process_time()
                frame = codec.compress(message, tenant=tenant, stream=stream).frame
                t1 = time.process_time()
                codec.wait_auto_dictionaries()
                waited += time.process_time() - t1
                compressing += t1 - t0
                if codec.decompress(frame, tenant=tenant) != message:
                    raise SystemExit("round trip failed")
                out[i >= switch] += len(frame)
            statuses = [codec.auto_dictionary_status(t) for t in dict.fromkeys(t for t, _, _ in items)]
            trainings = sum(s.trainings for s in statuses if s is not None)
            kept = sum(s.kept for s in statuses if s is not None)
            codec.close()
            cpu[name].append(waited)
            spent[name].append(compressing)
            sizes[name] = (out[0], out[1], trainings, kept)
    first = sum(len(m) for _, _, m in items[:switch])
    second = sum(len(m) for _, _, m in items[switch:])
    print(f"first part {first / 1e6:.2f} MB ({switch} turns), second part {second / 1e6:.2f} MB")
    base = sizes["automatic, no drift retraining"]
    print(
        f"{'':38}  whole     second half  vs no drift  trainings kept"
        f"  CPU ms (median of {runs}): training  compress"
    )
    for name, (a, b, trainings, kept) in sizes.items():
        print(
            f"{name:38} {(first + second) / (a + b):7.2f}x  {second / b:7.2f}x  {base[1] / b - 1:+10.2%}"
            f"  {trainings:9} {kept:4}  {statistics.median(cpu[name]) * 1e3:32.1f}"
            f"  {statistics.median(spent[name]) * 1e3:8.1f}",
            flush=True,
        )


def main() -> None:
    """Parse the options and run the sweep or the latency measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_draw_arguments(parser)
    parser.add_argument("--sweep", action="store_true", help="the policy sweep instead of the latency")
    parser.add_argument(
        "--steady", type=int, metavar="RUNS", help="compression speed once trained, RUNS interleaved pairs"
    )
    parser.add_argument(
        "--training", type=int, metavar="RUNS", help="the trainer's CPU per training, split, RUNS runs"
    )
    parser.add_argument(
        "--drift", type=int, metavar="RUNS", help="a drifting stream (the draw, then seed + 1), RUNS runs"
    )
    parser.add_argument(
        "--drift-periods",
        type=int,
        nargs="*",
        default=[],
        metavar="KIB",
        help="with --drift: drift periods to try besides the default, KiB",
    )
    args = parser.parse_args()
    sessions = draw(args)
    if args.drift:
        later = draw(argparse.Namespace(**{**vars(args), "seed": args.seed + 1}))
        items, switch = drifting(sessions, later)
        print(f"{len(items)} turns, {args.corpus} seed {args.seed} then seed {args.seed + 1}")
        drift(items, switch, args.drift, [p * K for p in args.drift_periods])
        return
    items = [(s.tenant, s.session_id, m) for s in sessions for m in s.turns]
    print(
        f"{len(items)} turns, {sum(len(m) for _, _, m in items) / 1e6:.2f} MB, {args.corpus} seed {args.seed}"
    )
    if args.sweep:
        sweep(items)
    elif args.steady:
        steady(items, args.steady)
    elif args.training:
        training(items, args.training)
    else:
        latency(items)


if __name__ == "__main__":
    main()
