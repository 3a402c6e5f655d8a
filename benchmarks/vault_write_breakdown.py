"""Where ΣVAULT's long writes go: a per-``put_many`` breakdown of the write path (a diagnostic, not a test).

Runs the workload of ``vault_stalls.py`` (random 384-d vectors in batches, HNSW past ``--threshold``, a
snapshot every ``--snapshot-every`` WAL entries) with timers wrapped around the vault's internals: the lock
wait, sealing, the segment and WAL writes, fsync, the index/pending update and the backpressure wait of
every write, the background thread's lock holds and long FAISS adds, and a 1 ms heartbeat thread whose
lateness shows when no Python thread could run (the GIL held, or the process starved). Prints the slowest
writes with what overlapped them, and per-phase p50/p99/max. It patches private names: it follows them.

    python benchmarks/vault_write_breakdown.py --records 100000 --threshold 20000 --snapshot-every 10000
"""

import argparse
import base64
import collections
import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and benchmarks/vault.py would shadow `vault`.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import numpy as np  # noqa: E402

from vault import DurabilityConfig, IndexConfig, NewRecord, Vault, VaultConfig  # noqa: E402
from vault._private import background, pending, segment, storage, tenant, wal  # noqa: E402

T = threading.local()
EVENTS = []  # (t, thread, what, dur_ms)
clock = time.perf_counter


def phase(name):
    def deco(fn):
        def wrapped(*a, **k):
            t = clock()
            try:
                return fn(*a, **k)
            finally:
                d = clock() - t
                acc = getattr(T, "acc", None)
                if acc is not None:
                    acc[name] += d
                if threading.current_thread().name != "MainThread" and d > 0.005:
                    EVENTS.append((t, threading.current_thread().name, name, d * 1000))

        return wrapped

    return deco


class TimedLock:
    def __init__(self, inner):
        self._inner = inner
        self._depth = threading.local()

    def acquire(self, blocking=True, timeout=-1):
        t = clock()
        ok = self._inner.acquire(blocking, timeout)
        if ok:
            d = getattr(self._depth, "n", 0)
            if d == 0:
                self._depth.t0 = clock()
                up = 2 if sys._getframe(1).f_code.co_name == "__enter__" else 1  # `with lock:`
                caller, outer = sys._getframe(up).f_code.co_name, sys._getframe(up + 1).f_code.co_name
                self._depth.where = f"{caller}<{outer}"
                acc = getattr(T, "acc", None)
                if acc is not None:
                    acc["lock_wait"] += clock() - t
            self._depth.n = d + 1
        return ok

    def release(self):
        self._depth.n -= 1
        if self._depth.n == 0:
            held = clock() - self._depth.t0
            if threading.current_thread().name != "MainThread" and held > 0.003:
                name = threading.current_thread().name
                EVENTS.append((self._depth.t0, name, "LOCK " + self._depth.where, held * 1000))
        self._inner.release()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *a):
        self.release()


_fsync = os.fsync


def timed_fsync(fd):
    t = clock()
    _fsync(fd)
    d = clock() - t
    acc = getattr(T, "acc", None)
    if acc is not None:
        acc["fsync"] += d
    elif d > 0.005:
        EVENTS.append((t, threading.current_thread().name, "fsync", d * 1000))


os.fsync = timed_fsync
storage.Storage.seal = phase("seal")(storage.Storage.seal)
segment.SegmentFile.stage = phase("stage")(segment.SegmentFile.stage)
wal.write_all = phase("wal_write")(wal.write_all)
tenant.TenantState.put_many = phase("apply")(tenant.TenantState.put_many)
pending.PendingVectors.add = phase("pending_add")(pending.PendingVectors.add)
background.BackgroundWork._wait_for_drain = phase("drain_wait")(background.BackgroundWork._wait_for_drain)
background.BackgroundWork._make_room = phase("make_room")(background.BackgroundWork._make_room)
background.BackgroundWork._schedule_builds = phase("schedule")(background.BackgroundWork._schedule_builds)
background.BackgroundWork._maybe_snapshot = phase("maybe_snap")(background.BackgroundWork._maybe_snapshot)
from vault._private import index as vindex  # noqa: E402

vindex.VectorIndex.add = phase("index_add")(vindex.VectorIndex.add)
try:  # the block-wise flat index (absent in versions whose flat index is FAISS's)
    from vault._private import flat as vflat  # noqa: E402

    vflat.FlatIndex.add = phase("flat_add")(vflat.FlatIndex.add)
except ImportError:
    pass

HEART = []
_GC_START = {}


def gc_pauses(phase, info):
    """Record garbage collections longer than 5 ms (they hold the GIL: every thread waits)."""
    if phase == "start":
        _GC_START["t"] = clock()
    elif "t" in _GC_START:
        d = clock() - _GC_START.pop("t")
        if d > 0.005:
            name = threading.current_thread().name
            EVENTS.append((clock() - d, name, f"GC gen{info['generation']}", d * 1000))


gc.callbacks.append(gc_pauses)


def heartbeat(stop):
    while not stop.is_set():
        t = clock()
        time.sleep(0.001)
        late = clock() - t - 0.001
        if late > 0.005:
            HEART.append((t, late * 1000))


class P:
    dim = 384

    def embed(self, texts):
        raise AssertionError


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--threshold", type=int, default=20_000)
    ap.add_argument("--snapshot-every", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--settle", action="store_true")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--no-join", action="store_true", help="close without waiting for the HNSW build")
    args = ap.parse_args()
    os.environ.setdefault("NEURECTOMY_VAULT_KEK", base64.b64encode(os.urandom(32)).decode())
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.records, 384)).astype(np.float32)
    cfg = VaultConfig(
        index=IndexConfig(hnsw_threshold=args.threshold),
        durability=DurabilityConfig(snapshot_every_writes=args.snapshot_every),
    )
    stop = threading.Event()
    hb = threading.Thread(target=heartbeat, args=(stop,), name="heartbeat", daemon=True)
    hb.start()
    writes = []
    with tempfile.TemporaryDirectory() as tmp:
        v = Vault(Path(tmp) / "v", config=cfg, embedder=P())
        v._lock = TimedLock(v._lock)
        t_start = clock()
        for s in range(0, args.records, args.batch):
            end = min(s + args.batch, args.records)
            batch = [NewRecord(text=f"r{i}", id=f"r{i}", embedding=vectors[i]) for i in range(s, end)]
            T.acc = collections.defaultdict(float)
            t = clock()
            v.put_many("bench", batch)
            d = clock() - t
            acc, T.acc = T.acc, None
            writes.append((t, d * 1000, dict(acc), len(v._storage.tenants["bench"].pending)))
            if args.settle and s < args.threshold <= s + args.batch:
                v.join_background()
        t_end = clock()
        if not args.no_join:
            v.join_background()
        v.close()
    stop.set()
    ms = sorted(w[1] for w in writes)
    p99 = ms[int(0.99 * (len(ms) - 1))]
    print(f"p50 {ms[len(ms) // 2]:.1f} p99 {p99:.1f} max {ms[-1]:.1f}  total {sum(ms) / 1000:.1f}s")
    print(f"write loop {t_end - t_start:.1f} s")
    for t, d, acc, pend in sorted(writes, key=lambda w: -w[1])[: args.top]:
        ranked = sorted(acc.items(), key=lambda kv: -kv[1])
        parts = " ".join(f"{k}={v * 1000:.1f}" for k, v in ranked if v * 1000 >= 0.5)
        ev = [e for e in EVENTS if e[0] < t + d / 1000 and e[0] + e[3] / 1000 > t]
        hbs = [h for h in HEART if t - 0.01 < h[0] < t + d / 1000]
        print(f"@{t - t_start:7.2f}s {d:7.1f} ms pend={pend:5d} | {parts}")
        for e in ev[:6]:
            print(f"      bg {e[1]} {e[2]} {e[3]:.1f} ms (start {e[0] - t_start:+.3f})")
        if hbs:
            print(f"      heartbeat late max {max(h[1] for h in hbs):.1f} ms x{len(hbs)}")
    # phase percentiles
    keys = sorted({k for w in writes for k in w[2]})
    for k in keys:
        vals = sorted(w[2].get(k, 0) * 1000 for w in writes)
        p99 = vals[int(0.99 * (len(vals) - 1))]
        print(f"phase {k:12s} p50 {vals[len(vals) // 2]:6.2f} p99 {p99:6.2f} max {vals[-1]:7.1f}")
    big = sorted(EVENTS, key=lambda e: -e[3])[:15]
    print("longest background events:")
    for e in big:
        print(f"   {e[0] - t_start:7.2f}s {e[1]} {e[2]} {e[3]:.1f} ms")
    print(
        "heartbeat late > 20ms:",
        sum(1 for h in HEART if h[1] > 20),
        "max",
        max((h[1] for h in HEART), default=0),
    )


if __name__ == "__main__":
    main()
