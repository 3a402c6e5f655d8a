"""ΣLANG in-process speed, this checkout against a baseline checkout, with a frame-identity check.

Each measurement runs in a child process whose ``PYTHONPATH`` starts with one checkout, so both codecs
compress the same corpus (built by this checkout's `benchmarks` package) with the same secret: every
frame of the branch must equal the baseline's byte for byte (the speed work changes no format). Runs
are interleaved (baseline, branch, baseline, ...) and timed on the child's CPU clock; the table gives
medians of compression and decompression speed (input MB/s) and their ratios.

Draws (as in `benchmarks/sigmalang.py`): ``default`` (rag corpus, seed 7), ``short`` (packages text,
seed 23, 8 tenants x 3 sessions of 2-6 turns), ``window`` (window corpus, seed 5, 5 x 5 sessions),
``coding`` (coding corpus, seed 7, 4 x 8 sessions of 4-12 turns).
Codec: ΣLANG with a trained dictionary (the benchmark's first ΣLANG row), or ``--dictionary generic``
without one (the REST default), memory or disk store. ``--config JSON`` / ``--baseline-config JSON``
set `SigmaConfig` fields of each side, e.g. ``--baseline . --baseline-config
'{"auto_dictionary_min_new_bytes": 0}'`` compares this checkout with and without automatic dictionaries
(whose training is waited for after each message, so its CPU counts in compression).
``--read-reports`` also reads every report's savings inside the timed loop, as the service does (a
codec that measures the attribution when it is first read pays for it there). ``--passes N`` times N
passes in each process, each with a new codec and store (the same frames), and keeps the fastest of
each: a pass of the window draw's decoding is ~10 ms, which one preemption on a loaded machine moves
by half. ``--frames-may-differ``
is for a deliberate change of the encoder: the frames are then not required to match, and the table
gives both checkouts' ratios (every frame of both is still decoded and compared with its message).

Usage::

    PYTHONPATH=$PWD python -m benchmarks.sigma_speed --baseline /tmp/main --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DRAWS = ("default", "short", "window", "coding")
STORES = ("memory", "disk")
_SECRET = b"sigma-speed-benchmark-secret-32b"


def _sessions(draw: str) -> tuple[list[tuple[str, str, bytes]], list[bytes]]:
    if draw == "coding":
        from benchmarks.sigma_corpus_coding import build_coding_sessions

        sessions = build_coding_sessions(7, tenants=4, sessions_per_tenant=8, turns=(4, 12))
        training = build_coding_sessions(1007, tenants=2, sessions_per_tenant=4, turns=(4, 12))
    elif draw == "window":
        from benchmarks.sigma_corpus_window import build_window_sessions

        sessions = build_window_sessions(5, tenants=5, sessions_per_tenant=5, turns=(3, 9))
        training = build_window_sessions(1005, tenants=2, sessions_per_tenant=4, turns=(3, 9))
    else:
        from benchmarks.sigma_corpus import build_sessions

        seed, source = (23, "packages") if draw == "short" else (7, "stdlib")
        shape = {"tenants": 8, "sessions_per_tenant": 3, "turns": (2, 6)} if draw == "short" else {}
        sessions = build_sessions(seed, source=source, **shape)  # type: ignore[arg-type]
        training = build_sessions(seed + 1000, tenants=2, sessions_per_tenant=4, source=source)
    items = [(s.tenant, s.session_id, m) for s in sessions for m in s.turns]
    return items, [m for s in training for m in s.turns]


def _worker(
    draw: str,
    store_kind: str,
    cache: str,
    read_reports: str = "0",
    passes: str = "1",
    dictionary_kind: str = "trained",
    config: str = "{}",
) -> None:
    here = str(Path(__file__).resolve().parent)  # sys.path[0] when run as a script: its sigmalang.py
    sys.path[:] = [p for p in sys.path if p and str(Path(p).resolve()) != here]
    import sigmalang

    saved = Path(cache) / f"{draw}.json"  # the first run's corpus, reused by every later run
    if saved.exists():
        loaded = json.loads(saved.read_text())
        items = [(t, s, bytes.fromhex(m)) for t, s, m in loaded["items"]]
        training = [bytes.fromhex(m) for m in loaded["training"]]
    else:
        items, training = _sessions(draw)
        dump = {"items": [(t, s, m.hex()) for t, s, m in items], "training": [m.hex() for m in training]}
        saved.write_text(json.dumps(dump))
    dictionary = sigmalang.train_dictionary(training) if dictionary_kind == "trained" else None
    cfg = sigmalang.SigmaConfig(**json.loads(config))
    total = sum(len(m) for _, _, m in items)
    best_c = best_d = float("inf")
    digests = set()
    for _ in range(int(passes)):  # each pass a new store and codec: the same frames, timed again
        with tempfile.TemporaryDirectory() as tmp:
            store = sigmalang.DiskRSUStore(Path(tmp) / "rsu.db") if store_kind == "disk" else None
            codec = sigmalang.SigmaCodec(store=store, secret=_SECRET, config=cfg)
            if dictionary is not None:
                codec.dictionaries.add(dictionary)
            # Automatic dictionary training (where the checkout has it) is waited for after each
            # message: its CPU counts in compression, and every pass makes the same frames
            idle = getattr(codec, "wait_auto_dictionaries", lambda: True)
            t0 = time.process_time()
            results = []
            for t, s, m in items:
                results.append(codec.compress(m, tenant=t, stream=s))
                idle()
            if read_reports == "1":
                saved = sum(
                    r.report.dedup_saved + r.report.entropy_saved + r.report.dictionary_saved for r in results
                )
            t1 = time.process_time()
            frames = [r.frame for r in results]
            out = [codec.decompress(f, tenant=t) for f, (t, _, _) in zip(frames, items, strict=True)]
            t2 = time.process_time()
            if store is not None:
                store.close()
            getattr(codec, "close", lambda: None)()
        if out != [m for _, _, m in items]:
            raise SystemExit("round trip failed")
        if read_reports == "1" and saved != sum(
            r.report.bytes_in - r.report.bytes_out + r.report.framing for r in results
        ):
            raise SystemExit("attribution does not add up")
        best_c, best_d = min(best_c, t1 - t0), min(best_d, t2 - t1)
        digests.add(hashlib.sha256(b"".join(hashlib.sha256(f).digest() for f in frames)).hexdigest())
    if len(digests) != 1:
        raise SystemExit("passes made different frames")
    print(
        json.dumps(
            {
                "compress": total / best_c / 1e6,
                "decode": total / best_d / 1e6,
                "frames": digests.pop(),
                "bytes_in": total,
                "bytes_out": sum(map(len, frames)),
            }
        )
    )


def _run(
    tree: Path,
    draw: str,
    store_kind: str,
    cache: str,
    read_reports: bool,
    passes: int,
    dictionary_kind: str = "trained",
    config: str = "{}",
) -> dict[str, float | str]:
    # Run as a script: sys.path[0] is this directory, so `sigmalang` (and the corpus builders) come
    # from `tree`, first on PYTHONPATH.
    env = dict(os.environ, PYTHONPATH=str(tree), HF_HUB_OFFLINE="1")
    got = subprocess.run(  # noqa: S603 - our own interpreter on our own script
        [
            sys.executable,
            __file__,
            "--worker",
            draw,
            store_kind,
            cache,
            "1" if read_reports else "0",
            str(passes),
            dictionary_kind,
            config,
        ],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float | str] = json.loads(got.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Run the A/B and print the table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="checkout to compare with")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--draws", default=",".join(DRAWS))
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--read-reports", action="store_true", help="read every report's savings, timed")
    parser.add_argument(
        "--frames-may-differ", action="store_true", help="a deliberate encoder change: compare ratios instead"
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=1,
        help="passes per process (each with a new codec and store); the fastest is kept",
    )
    parser.add_argument(
        "--dictionary",
        choices=("trained", "generic"),
        default="trained",
        help="trained: a shared dictionary trained on another seed; generic: none (the REST default)",
    )
    parser.add_argument(
        "--config", default="{}", metavar="JSON", help="SigmaConfig fields of this checkout's codec"
    )
    parser.add_argument(
        "--baseline-config", default="{}", metavar="JSON", help="SigmaConfig fields of the baseline's codec"
    )
    parser.add_argument(
        "--worker",
        nargs=7,
        metavar=("DRAW", "STORE", "CACHE", "READ", "PASSES", "DICT", "CONFIG"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.worker:
        _worker(*args.worker)
        return
    here = Path(__file__).resolve().parent.parent
    if args.baseline is None:
        parser.error("--baseline is required")
    trees = {"baseline": args.baseline.resolve(), "branch": here}
    print(f"load average: {os.getloadavg()}")
    print(
        "draw     store   baseline c/d MB/s   branch c/d MB/s   ratio c/d   ratio (baseline → branch)"
        "   frames identical"
    )
    failed = False
    cache = tempfile.mkdtemp(prefix="sigma-speed-")
    for draw in args.draws.split(","):
        for store_kind in args.stores.split(","):
            got: dict[str, list[dict[str, float | str]]] = {"baseline": [], "branch": []}
            for _ in range(args.runs):
                for name, tree in trees.items():
                    config = args.baseline_config if name == "baseline" else args.config
                    got[name].append(
                        _run(
                            tree,
                            draw,
                            store_kind,
                            cache,
                            args.read_reports,
                            args.passes,
                            args.dictionary,
                            config,
                        )
                    )
            med = {
                name: (
                    statistics.median(float(r["compress"]) for r in runs),
                    statistics.median(float(r["decode"]) for r in runs),
                )
                for name, runs in got.items()
            }
            same = {r["frames"] for runs in got.values() for r in runs}
            failed |= len(same) != 1 and not args.frames_may_differ
            ratio = {n: float(r[0]["bytes_in"]) / float(r[0]["bytes_out"]) for n, r in got.items()}
            (bc, bd), (nc, nd) = med["baseline"], med["branch"]
            print(
                f"{draw:8} {store_kind:7} {bc:7.1f} / {bd:6.1f}     {nc:7.1f} / {nd:6.1f}"
                f"    {nc / bc:.2f} / {nd / bd:.2f}"
                f"   {ratio['baseline']:7.3f}x → {ratio['branch']:7.3f}x"
                f"  {'yes' if len(same) == 1 else 'NO'}",
                flush=True,
            )
    if failed:
        raise SystemExit("frames differ between the baseline and this checkout")


if __name__ == "__main__":
    main()
